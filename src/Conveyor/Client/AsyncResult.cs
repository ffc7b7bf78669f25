namespace Conveyor;

/// <summary>A handle to a published task's state and results (machinery's <c>result.AsyncResult</c>).</summary>
public sealed class AsyncResult
{
    private readonly ConveyorClient _client;

    internal AsyncResult(Signature signature, ConveyorClient client)
    {
        Signature = signature;
        _client = client;
    }

    /// <summary>The published signature.</summary>
    public Signature Signature { get; }

    /// <summary>The task id.</summary>
    public string TaskId => Signature.Id;

    /// <summary>Reads the task's current state.</summary>
    /// <param name="cancellationToken">Cancels the read.</param>
    /// <returns>The state, or <see langword="null"/> when none is stored.</returns>
    public ValueTask<TaskStateRecord?> GetStateAsync(CancellationToken cancellationToken = default) =>
        _client.Backend.GetStateAsync(TaskId, cancellationToken);

    /// <summary>Waits for the task's final state, without throwing on failure.</summary>
    /// <param name="timeout">How long to wait; <see cref="Timeout.InfiniteTimeSpan"/> for ever.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The final state.</returns>
    /// <exception cref="TimeoutException">The task did not finish in time.</exception>
    public ValueTask<TaskStateRecord> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken = default) =>
        _client.WaitForCompletionAsync(TaskId, timeout, cancellationToken);

    /// <summary>Waits for the task's results.</summary>
    /// <param name="timeout">How long to wait; <see cref="Timeout.InfiniteTimeSpan"/> for ever.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The results.</returns>
    /// <exception cref="TaskFailedException">The task failed; the exception carries its error.</exception>
    /// <exception cref="TimeoutException">The task did not finish in time.</exception>
    public async ValueTask<IReadOnlyList<TaskResult>> GetAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var state = await WaitAsync(timeout, cancellationToken).ConfigureAwait(false);
        return state.State == TaskState.Failure ? throw new TaskFailedException(state) : state.Results ?? [];
    }

    /// <summary>Waits for the task's first result, as <typeparamref name="T"/>.</summary>
    /// <typeparam name="T">The result's CLR type.</typeparam>
    /// <param name="timeout">How long to wait.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The first result.</returns>
    /// <exception cref="TaskFailedException">The task failed.</exception>
    /// <exception cref="InvalidCastException">The task returned no result, or one of another type.</exception>
    public async ValueTask<T> GetValueAsync<T>(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var results = await GetAsync(timeout, cancellationToken).ConfigureAwait(false);
        return results.Count > 0 && results[0].Value is T value
            ? value
            : throw new InvalidCastException($"Task {TaskId} returned {(results.Count == 0 ? "no result" : results[0].ToString())}, not a {typeof(T).Name}.");
    }
}

/// <summary>Handles to a group's members.</summary>
public sealed class GroupResult
{
    internal GroupResult(string groupId, IReadOnlyList<AsyncResult> tasks)
    {
        GroupId = groupId;
        Tasks = tasks;
    }

    /// <summary>The group id.</summary>
    public string GroupId { get; }

    /// <summary>The members, in member order.</summary>
    public IReadOnlyList<AsyncResult> Tasks { get; }

    /// <summary>Waits for every member's results.</summary>
    /// <param name="timeout">How long to wait in all.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>Each member's results, in member order.</returns>
    /// <exception cref="TaskFailedException">A member failed.</exception>
    /// <exception cref="TimeoutException">Not every member finished in time.</exception>
    public async ValueTask<IReadOnlyList<IReadOnlyList<TaskResult>>> GetAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var results = new IReadOnlyList<TaskResult>[Tasks.Count];
        for (var i = 0; i < Tasks.Count; i++)
        {
            results[i] = await Tasks[i].GetAsync(timeout, cancellationToken).ConfigureAwait(false);
        }

        return results;
    }
}

/// <summary>Handles to a chord's members and callback.</summary>
public sealed class ChordResult
{
    internal ChordResult(GroupResult group, AsyncResult callback)
    {
        Group = group;
        Callback = callback;
    }

    /// <summary>The members.</summary>
    public GroupResult Group { get; }

    /// <summary>The callback.</summary>
    public AsyncResult Callback { get; }

    /// <summary>Waits for the callback's results.</summary>
    /// <param name="timeout">How long to wait.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The callback's results.</returns>
    /// <exception cref="TaskFailedException">The callback failed.</exception>
    /// <exception cref="TimeoutException">The callback did not finish in time.</exception>
    public ValueTask<IReadOnlyList<TaskResult>> GetAsync(TimeSpan timeout, CancellationToken cancellationToken = default) =>
        Callback.GetAsync(timeout, cancellationToken);
}

/// <summary>Handles to a chain's tasks.</summary>
public sealed class ChainResult
{
    internal ChainResult(IReadOnlyList<AsyncResult> tasks) => Tasks = tasks;

    /// <summary>The tasks, in order.</summary>
    public IReadOnlyList<AsyncResult> Tasks { get; }

    /// <summary>Waits for the last task's results.</summary>
    /// <param name="timeout">How long to wait.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The last task's results.</returns>
    /// <exception cref="TaskFailedException">A task of the chain failed.</exception>
    /// <exception cref="TimeoutException">The chain did not finish in time.</exception>
    public async ValueTask<IReadOnlyList<TaskResult>> GetAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        IReadOnlyList<TaskResult> last = [];
        foreach (var task in Tasks)
        {
            last = await task.GetAsync(timeout, cancellationToken).ConfigureAwait(false);
        }

        return last;
    }
}
