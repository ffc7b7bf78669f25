using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using System.Reflection;

namespace Conveyor;

/// <summary>
/// The tasks a worker can run, by name. Register a delegate with typed parameters (machinery's types, plus an
/// optional <see cref="CancellationToken"/> and <see cref="TaskContext"/>), sync or async, returning nothing, one
/// value or a tuple of values.
/// </summary>
/// <example>
/// <code>
/// registry.Register("add", (long a, long b) =&gt; a + b);
/// registry.Register("fetch", async (string url, CancellationToken ct) =&gt; await http.GetStringAsync(url, ct));
/// </code>
/// </example>
public sealed class TaskRegistry
{
    private readonly ConcurrentDictionary<string, TaskHandler> _handlers = new(StringComparer.Ordinal);

    /// <summary>Registers a delegate under a task name, replacing any earlier one.</summary>
    /// <param name="name">The task name.</param>
    /// <param name="handler">The handler.</param>
    /// <returns>This registry.</returns>
    /// <exception cref="ArgumentException">A parameter or the result has no machinery type.</exception>
    public TaskRegistry Register(string name, Delegate handler)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(handler);
        _handlers[name] = TaskHandler.FromDelegate(name, handler);
        return this;
    }

    /// <summary>
    /// Registers a handler class under a task name. Its single public instance method named <c>RunAsync</c> (or
    /// <c>Run</c>) is the handler; an instance is made per task by <paramref name="factory"/> and disposed after.
    /// </summary>
    /// <typeparam name="THandler">The handler class.</typeparam>
    /// <param name="name">The task name.</param>
    /// <param name="factory">Makes an instance for a task.</param>
    /// <returns>This registry.</returns>
    /// <exception cref="ArgumentException">No single RunAsync/Run method, or a type has no machinery type.</exception>
    public TaskRegistry RegisterHandler<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicMethods)] THandler>(string name, Func<TaskContext, THandler> factory)
        where THandler : class
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(factory);
        var methods = typeof(THandler).GetMethods(BindingFlags.Public | BindingFlags.Instance)
            .Where(m => m.Name is "RunAsync" or "Run")
            .ToArray();
        if (methods.Length != 1)
        {
            throw new ArgumentException($"{typeof(THandler)} must have exactly one public instance method named RunAsync or Run; it has {methods.Length}.", nameof(THandler));
        }

        _handlers[name] = TaskHandler.FromClass(name, typeof(THandler), methods[0], factory);
        return this;
    }

    /// <summary>Removes a task name.</summary>
    /// <param name="name">The task name.</param>
    /// <returns><see langword="true"/> when it was registered.</returns>
    public bool Unregister(string name) => _handlers.TryRemove(name, out _);

    /// <summary>Tells whether a task name is registered.</summary>
    /// <param name="name">The task name.</param>
    /// <returns><see langword="true"/> when registered.</returns>
    public bool IsRegistered(string name) => _handlers.ContainsKey(name);

    /// <summary>The registered task names.</summary>
    public IReadOnlyCollection<string> Names => [.. _handlers.Keys];

    internal bool TryGet(string name, [NotNullWhen(true)] out TaskHandler? handler) => _handlers.TryGetValue(name, out handler);
}
