using System.Linq.Expressions;
using System.Reflection;
using System.Runtime.CompilerServices;

namespace Conveyor;

/// <summary>
/// A registered handler: its parameter and result types, checked once at registration, and an invocation
/// compiled once (an expression tree), so that running a task costs no reflection.
/// </summary>
internal sealed class TaskHandler
{
    private enum ParameterKind : byte
    {
        Argument,
        ParamsArray,
        CancellationToken,
        Context,
    }

    private readonly ParameterKind[] _parameterKinds;
    private readonly Type[] _parameterTypes;
    private readonly string[] _parameterTypeNames;
    private readonly int _fixedArgumentCount;
    private readonly bool _hasParams;
    private readonly Func<List<TaskArgument>?, object?, TaskContext, CancellationToken, object?, ValueTask<object?>> _invoke;
    private readonly Func<TaskContext, object>? _instanceFactory;
    private readonly ResultShape _resultShape;
    private readonly string[] _resultTypeNames;

    private enum ResultShape : byte
    {
        None,
        Single,
        Tuple,
        TaskResult,
        TaskResults,
    }

    private TaskHandler(string name, MethodInfo method, object? target, Func<TaskContext, object>? instanceFactory)
    {
        Name = name;
        _instanceFactory = instanceFactory;
        var parameters = method.GetParameters();
        _parameterKinds = new ParameterKind[parameters.Length];
        _parameterTypes = new Type[parameters.Length];
        _parameterTypeNames = new string[parameters.Length];
        for (var i = 0; i < parameters.Length; i++)
        {
            var type = parameters[i].ParameterType;
            _parameterTypes[i] = type;
            if (type == typeof(CancellationToken))
            {
                _parameterKinds[i] = ParameterKind.CancellationToken;
            }
            else if (type == typeof(TaskContext))
            {
                _parameterKinds[i] = ParameterKind.Context;
            }
            else if (i == parameters.Length - 1 && type.IsArray && parameters[i].IsDefined(typeof(ParamArrayAttribute)) &&
                     MachineryTypes.TryGetTypeName(type.GetElementType()!, out var elementName))
            {
                _parameterKinds[i] = ParameterKind.ParamsArray;
                _parameterTypeNames[i] = elementName + "...";
                _hasParams = true;
            }
            else if (MachineryTypes.TryGetTypeName(type, out var typeName))
            {
                _parameterKinds[i] = ParameterKind.Argument;
                _parameterTypeNames[i] = typeName;
                _fixedArgumentCount++;
            }
            else
            {
                throw new ArgumentException(
                    $"Task '{name}': parameter '{parameters[i].Name}' has type {type}, which has no machinery type. " +
                    "Use bool, sbyte/short/int/long, byte/ushort/uint/ulong, float/double, string, arrays of those, byte[], CancellationToken or TaskContext.");
            }
        }

        (_resultShape, _resultTypeNames, var awaitedType) = DescribeResult(name, method.ReturnType);
        _invoke = Compile(method, target, _parameterTypes, _parameterKinds, awaitedType);
        Signature = $"{name}({string.Join(", ", _parameterTypeNames.Where(n => n is not null))})";
    }

    public string Name { get; }

    /// <summary>The handler's shape in machinery's words, for errors: <c>add(int64, int64)</c>.</summary>
    public string Signature { get; }

    public static TaskHandler FromDelegate(string name, Delegate handler) =>
        new(name, handler.Method, handler.Target is null && handler.Method.IsStatic ? null : handler, null);

    public static TaskHandler FromClass(string name, Type handlerType, MethodInfo method, Func<TaskContext, object> factory) =>
        new(name, method, null, factory);

    /// <summary>Checks the message's arguments against the handler and runs it.</summary>
    /// <exception cref="TaskArgumentException">The arguments do not fit.</exception>
    public async ValueTask<IReadOnlyList<TaskResult>> InvokeAsync(Signature signature, TaskContext context, CancellationToken cancellationToken)
    {
        var paramsValue = BindArguments(signature);
        var instance = _instanceFactory?.Invoke(context);
        object? returned;
        try
        {
            returned = await _invoke(signature.ArgsOrNull, paramsValue, context, cancellationToken, instance).ConfigureAwait(false);
        }
        finally
        {
            switch (instance)
            {
                case IAsyncDisposable asyncDisposable: await asyncDisposable.DisposeAsync().ConfigureAwait(false); break;
                case IDisposable disposable: disposable.Dispose(); break;
            }
        }

        return MapResults(returned);
    }

    /// <summary>
    /// Checks every argument against its parameter (no allocation); returns the array for a <c>params</c>
    /// parameter, or <see langword="null"/>. The compiled call then reads the arguments straight from the list.
    /// </summary>
    private object? BindArguments(Signature signature)
    {
        var args = signature.ArgsOrNull;
        var count = args?.Count ?? 0;
        if (count < _fixedArgumentCount || (!_hasParams && count != _fixedArgumentCount))
        {
            throw new TaskArgumentException(
                $"Task {Signature} takes {(_hasParams ? "at least " : string.Empty)}{_fixedArgumentCount} argument(s), but the message has {count}.");
        }

        object? paramsValue = null;
        var next = 0;
        for (var i = 0; i < _parameterKinds.Length; i++)
        {
            switch (_parameterKinds[i])
            {
                case ParameterKind.Argument:
                    Check(args![next], next, _parameterTypes[i], _parameterTypeNames[i]);
                    next++;
                    break;
                case ParameterKind.ParamsArray when count - next == 1 && args![next].Value?.GetType() == _parameterTypes[i]:
                    // Like C#, a params parameter also takes one array: sum([]int64) and sum(int64, int64, ...) both work.
                    paramsValue = args[next].Value;
                    next++;
                    break;
                case ParameterKind.ParamsArray:
                    var elementType = _parameterTypes[i].GetElementType()!;
                    var elementName = _parameterTypeNames[i][..^3];
                    var array = Array.CreateInstance(elementType, count - next);
                    for (var j = 0; next < count; j++, next++)
                    {
                        array.SetValue(Check(args![next], next, elementType, elementName), j);
                    }

                    paramsValue = array;
                    break;
            }
        }

        return paramsValue;
    }

    private object? Check(TaskArgument argument, int index, Type expected, string expectedName)
    {
        var value = argument.Value;
        if (value is InvalidWireValue invalid)
        {
            throw new TaskArgumentException($"Task {Signature}: argument {index + 1} ({argument.Type}) is invalid: {invalid.Reason}.");
        }

        if (value is null ? expected.IsValueType : value.GetType() != expected)
        {
            throw new TaskArgumentException(
                $"Task {Signature}: argument {index + 1} must be {expectedName}, but the message carries {argument.Type}" +
                (value is null ? " null." : "."));
        }

        return value;
    }

    private TaskResult[] MapResults(object? returned)
    {
        switch (_resultShape)
        {
            case ResultShape.None:
                return [];
            case ResultShape.Single:
                return [new TaskResult(_resultTypeNames[0], returned)];
            case ResultShape.TaskResult:
                return [(TaskResult)returned!];
            case ResultShape.TaskResults:
                return returned is null ? [] : [.. (IEnumerable<TaskResult>)returned];
            default:
                var tuple = (ITuple)returned!;
                var results = new TaskResult[tuple.Length];
                for (var i = 0; i < results.Length; i++)
                {
                    results[i] = new TaskResult(_resultTypeNames[i], tuple[i]);
                }

                return results;
        }
    }

    private static (ResultShape Shape, string[] TypeNames, Type? AwaitedType) DescribeResult(string name, Type returnType)
    {
        var awaited = returnType;
        if (returnType == typeof(void) || returnType == typeof(Task) || returnType == typeof(ValueTask))
        {
            return (ResultShape.None, [], null);
        }

        if (returnType.IsGenericType && (returnType.GetGenericTypeDefinition() == typeof(Task<>) || returnType.GetGenericTypeDefinition() == typeof(ValueTask<>)))
        {
            awaited = returnType.GetGenericArguments()[0];
        }

        if (awaited == typeof(TaskResult))
        {
            return (ResultShape.TaskResult, [], awaited);
        }

        if (typeof(IEnumerable<TaskResult>).IsAssignableFrom(awaited))
        {
            return (ResultShape.TaskResults, [], awaited);
        }

        if (MachineryTypes.TryGetTypeName(awaited, out var single))
        {
            return (ResultShape.Single, [single], awaited);
        }

        if (awaited.IsGenericType && awaited.FullName!.StartsWith("System.ValueTuple`", StringComparison.Ordinal))
        {
            var elements = awaited.GetGenericArguments();
            if (elements.Length <= 7)
            {
                var names = new string[elements.Length];
                for (var i = 0; i < elements.Length; i++)
                {
                    if (!MachineryTypes.TryGetTypeName(elements[i], out var elementName))
                    {
                        throw new ArgumentException($"Task '{name}': result element {i + 1} has type {elements[i]}, which has no machinery type.");
                    }

                    names[i] = elementName;
                }

                return (ResultShape.Tuple, names, awaited);
            }
        }

        throw new ArgumentException(
            $"Task '{name}': the return type {returnType} has no machinery type. Return nothing, a machinery type, a tuple of them, TaskResult or IEnumerable<TaskResult> (optionally as Task<> or ValueTask<>).");
    }

    /// <summary>
    /// Compiles <c>(args, paramsValue, context, token, instance) =&gt; wrap(handler((T0)args[0].Value, ...))</c>:
    /// arguments are unboxed straight from the signature's list, the context and token passed through.
    /// </summary>
    private static Func<List<TaskArgument>?, object?, TaskContext, CancellationToken, object?, ValueTask<object?>> Compile(
        MethodInfo method, object? target, Type[] parameterTypes, ParameterKind[] kinds, Type? awaitedType)
    {
        var args = Expression.Parameter(typeof(List<TaskArgument>), "args");
        var paramsValue = Expression.Parameter(typeof(object), "paramsValue");
        var context = Expression.Parameter(typeof(TaskContext), "context");
        var token = Expression.Parameter(typeof(CancellationToken), "token");
        var instance = Expression.Parameter(typeof(object), "instance");
        var indexer = typeof(List<TaskArgument>).GetProperty("Item")!;
        var arguments = new Expression[parameterTypes.Length];
        var next = 0;
        for (var i = 0; i < parameterTypes.Length; i++)
        {
            arguments[i] = kinds[i] switch
            {
                ParameterKind.CancellationToken => token,
                ParameterKind.Context => context,
                ParameterKind.ParamsArray => Expression.Convert(paramsValue, parameterTypes[i]),
                _ => Expression.Convert(
                    Expression.Property(Expression.Property(args, indexer, Expression.Constant(next++)), nameof(TaskArgument.Value)),
                    parameterTypes[i]),
            };
        }

        Expression call;
        if (target is Delegate handler)
        {
            call = Expression.Invoke(Expression.Constant(handler, handler.GetType()), arguments);
        }
        else if (method.IsStatic)
        {
            call = Expression.Call(method, arguments);
        }
        else
        {
            call = Expression.Call(Expression.Convert(instance, method.DeclaringType!), method, arguments);
        }

        var returnType = method.ReturnType;
        Expression body;
        if (returnType == typeof(void))
        {
            body = Expression.Block(call, Expression.Default(typeof(ValueTask<object?>)));
        }
        else if (returnType == typeof(Task))
        {
            body = Expression.Call(typeof(TaskHandler).GetMethod(nameof(AwaitTask), BindingFlags.NonPublic | BindingFlags.Static)!, call);
        }
        else if (returnType == typeof(ValueTask))
        {
            body = Expression.Call(typeof(TaskHandler).GetMethod(nameof(AwaitValueTask), BindingFlags.NonPublic | BindingFlags.Static)!, call);
        }
        else if (returnType.IsGenericType && returnType.GetGenericTypeDefinition() == typeof(Task<>))
        {
            body = Expression.Call(typeof(TaskHandler).GetMethod(nameof(AwaitTaskOf), BindingFlags.NonPublic | BindingFlags.Static)!.MakeGenericMethod(awaitedType!), call);
        }
        else if (returnType.IsGenericType && returnType.GetGenericTypeDefinition() == typeof(ValueTask<>))
        {
            body = Expression.Call(typeof(TaskHandler).GetMethod(nameof(AwaitValueTaskOf), BindingFlags.NonPublic | BindingFlags.Static)!.MakeGenericMethod(awaitedType!), call);
        }
        else
        {
            body = Expression.New(
                typeof(ValueTask<object?>).GetConstructor([typeof(object)])!,
                Expression.Convert(call, typeof(object)));
        }

        return Expression.Lambda<Func<List<TaskArgument>?, object?, TaskContext, CancellationToken, object?, ValueTask<object?>>>(body, args, paramsValue, context, token, instance).Compile();
    }

    private static ValueTask<object?> AwaitTask(Task task)
    {
        return task.IsCompletedSuccessfully ? default : Slow(task);

        static async ValueTask<object?> Slow(Task task)
        {
            await task.ConfigureAwait(false);
            return null;
        }
    }

    private static ValueTask<object?> AwaitValueTask(ValueTask task)
    {
        return task.IsCompletedSuccessfully ? default : Slow(task);

        static async ValueTask<object?> Slow(ValueTask task)
        {
            await task.ConfigureAwait(false);
            return null;
        }
    }

    private static ValueTask<object?> AwaitTaskOf<T>(Task<T> task)
    {
        return task.IsCompletedSuccessfully ? new ValueTask<object?>(task.Result) : Slow(task);

        static async ValueTask<object?> Slow(Task<T> task) => await task.ConfigureAwait(false);
    }

    private static ValueTask<object?> AwaitValueTaskOf<T>(ValueTask<T> task)
    {
        return task.IsCompletedSuccessfully ? new ValueTask<object?>(task.Result) : Slow(task);

        static async ValueTask<object?> Slow(ValueTask<T> task) => await task.ConfigureAwait(false);
    }
}
