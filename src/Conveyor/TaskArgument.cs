using System.Globalization;

namespace Conveyor;

/// <summary>
/// One argument of a task: machinery's <c>{"Name","Type","Value"}</c>.
/// </summary>
/// <param name="Type">The machinery type string (see <see cref="MachineryTypes"/>).</param>
/// <param name="Value">The value, as the CLR type that <see cref="MachineryTypes"/> maps <paramref name="Type"/> to.</param>
/// <param name="Name">An optional name; machinery writes an empty string when there is none.</param>
public readonly record struct TaskArgument(string Type, object? Value, string Name = "")
{
    /// <summary>An <c>int64</c> argument.</summary>
    /// <param name="value">The value.</param>
    /// <returns>The argument.</returns>
    public static TaskArgument Int64(long value) => new(MachineryTypes.Int64, value);

    /// <summary>A <c>float64</c> argument.</summary>
    /// <param name="value">The value.</param>
    /// <returns>The argument.</returns>
    public static TaskArgument Float64(double value) => new(MachineryTypes.Float64, value);

    /// <summary>A <c>string</c> argument.</summary>
    /// <param name="value">The value.</param>
    /// <returns>The argument.</returns>
    public static TaskArgument String(string value) => new(MachineryTypes.String, value);

    /// <summary>A <c>bool</c> argument.</summary>
    /// <param name="value">The value.</param>
    /// <returns>The argument.</returns>
    public static TaskArgument Bool(bool value) => new(MachineryTypes.Bool, value);

    /// <summary>An argument whose machinery type is inferred from the CLR type of <typeparamref name="T"/>.</summary>
    /// <typeparam name="T">A CLR type from the <see cref="MachineryTypes"/> table.</typeparam>
    /// <param name="value">The value.</param>
    /// <param name="name">An optional argument name.</param>
    /// <returns>The argument.</returns>
    /// <exception cref="ArgumentException"><typeparamref name="T"/> has no machinery type.</exception>
    public static TaskArgument From<T>(T value, string name = "")
    {
        if (!MachineryTypes.TryGetTypeName(typeof(T), out var typeName))
        {
            throw new ArgumentException($"{typeof(T)} has no machinery type; use one of bool, (u)int8..64, float32/64, string, their arrays, or byte[].", nameof(value));
        }

        return new TaskArgument(typeName, value, name);
    }

    /// <summary>
    /// Parses an argument written <c>TYPE:VALUE</c> with machinery's type strings, as the command line and
    /// configuration write them: <c>int64:2</c>, <c>string:hello</c> (everything after the first colon),
    /// <c>float64:2.5</c>, <c>bool:true</c>, <c>[]string:a,b</c>, <c>[]int64:1,2,3</c>, <c>[]byte:BASE64</c>.
    /// Numbers use the invariant culture. Types go through the closed table in <see cref="MachineryTypes"/>.
    /// </summary>
    /// <param name="text">The argument.</param>
    /// <returns>The typed argument.</returns>
    /// <exception cref="FormatException">The text is not <c>TYPE:VALUE</c>, the type is unknown, or the value does not fit the type; the message says which.</exception>
    public static TaskArgument Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var colon = text.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0)
        {
            throw new FormatException($"argument '{text}' must be TYPE:VALUE, for example int64:2 or string:hello");
        }

        var type = text[..colon];
        var value = text[(colon + 1)..];
        if (!MachineryTypes.TryGetClrType(type, out var clrType))
        {
            throw new FormatException($"argument '{text}': unknown type '{type}'; use bool, int, int8..int64, uint, uint8..uint64, float32, float64, string, []T or []byte");
        }

        try
        {
            if (type == MachineryTypes.Bytes || type == "[]uint8")
            {
                return new TaskArgument(MachineryTypes.Bytes, Convert.FromBase64String(value));
            }

            if (clrType.IsArray)
            {
                var elementType = clrType.GetElementType()!;
                var parts = value.Length == 0 ? [] : value.Split(',');
                var array = Array.CreateInstance(elementType, parts.Length);
                for (var i = 0; i < parts.Length; i++)
                {
                    array.SetValue(ParseScalar(parts[i], elementType), i);
                }

                return new TaskArgument(type, array);
            }

            return new TaskArgument(type, ParseScalar(value, clrType));
        }
        catch (Exception ex) when (ex is FormatException or OverflowException)
        {
            throw new FormatException($"argument '{text}': '{value}' is not a valid {type}", ex);
        }
    }

    private static object ParseScalar(string value, Type type)
    {
        var culture = CultureInfo.InvariantCulture;
        return type switch
        {
            _ when type == typeof(string) => value,
            _ when type == typeof(bool) => bool.Parse(value),
            _ when type == typeof(long) => long.Parse(value, NumberStyles.Integer, culture),
            _ when type == typeof(int) => int.Parse(value, NumberStyles.Integer, culture),
            _ when type == typeof(short) => short.Parse(value, NumberStyles.Integer, culture),
            _ when type == typeof(sbyte) => sbyte.Parse(value, NumberStyles.Integer, culture),
            _ when type == typeof(ulong) => ulong.Parse(value, NumberStyles.Integer, culture),
            _ when type == typeof(uint) => uint.Parse(value, NumberStyles.Integer, culture),
            _ when type == typeof(ushort) => ushort.Parse(value, NumberStyles.Integer, culture),
            _ when type == typeof(byte) => byte.Parse(value, NumberStyles.Integer, culture),
            _ when type == typeof(double) => double.Parse(value, NumberStyles.Float, culture),
            _ when type == typeof(float) => float.Parse(value, NumberStyles.Float, culture),
            _ => throw new FormatException(),
        };
    }

    /// <summary>Tells whether the value was read from a message but does not fit its declared type.</summary>
    /// <remarks>Such an argument is kept as received so the message round-trips; running it fails the task.</remarks>
    public bool IsInvalid => Value is InvalidWireValue;

    /// <inheritdoc/>
    public override string ToString() => $"{Type}:{Value}";
}

/// <summary>A typed result of a task: machinery's <c>{"Type","Value"}</c>.</summary>
/// <param name="Type">The machinery type string (see <see cref="MachineryTypes"/>).</param>
/// <param name="Value">The value, as the CLR type that <see cref="MachineryTypes"/> maps <paramref name="Type"/> to.</param>
public readonly record struct TaskResult(string Type, object? Value)
{
    /// <summary>Turns this result into an argument of the same type, as machinery does when it feeds a callback.</summary>
    /// <returns>The argument.</returns>
    public TaskArgument ToArgument() => new(Type, Value);

    /// <inheritdoc/>
    public override string ToString() => $"{Type}:{Value}";
}

/// <summary>
/// A value that arrived in a message but does not fit its declared machinery type (for example <c>2.0</c> or
/// <c>"2"</c> for an <c>int64</c>, or an unknown type string). It keeps the raw JSON so the message round-trips.
/// </summary>
internal sealed class InvalidWireValue(byte[] rawJson, string reason)
{
    public byte[] RawJson { get; } = rawJson;

    public string Reason { get; } = reason;

    public override string ToString() => System.Text.Encoding.UTF8.GetString(RawJson);
}
