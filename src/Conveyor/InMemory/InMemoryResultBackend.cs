using System.Collections.Concurrent;

namespace Conveyor.InMemory;

/// <summary>
/// A result backend inside one process, with expiry on the injected clock and pushed change notifications.
/// </summary>
public sealed class InMemoryResultBackend : IResultBackend
{
    private readonly ConcurrentDictionary<string, Entry<TaskStateRecord>> _states = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Entry<GroupMeta>> _groups = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, GroupProgress> _progress = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, TaskCompletionSource> _waiters = new(StringComparer.Ordinal);
    private readonly TimeProvider _time;

    /// <summary>Creates a backend.</summary>
    /// <param name="resultTtl">How long states and group metas live; the default value is one hour (machinery's).</param>
    /// <param name="timeProvider">The clock for expiry; the system clock when <see langword="null"/>.</param>
    public InMemoryResultBackend(TimeSpan? resultTtl = null, TimeProvider? timeProvider = null)
    {
        ResultTtl = resultTtl ?? TimeSpan.FromHours(1);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(ResultTtl, TimeSpan.Zero, nameof(resultTtl));
        _time = timeProvider ?? TimeProvider.System;
    }

    /// <summary>How long states and group metas live.</summary>
    public TimeSpan ResultTtl { get; }

    /// <inheritdoc/>
    public ResultBackendCapabilities Capabilities => ResultBackendCapabilities.ChangeNotifications | ResultBackendCapabilities.ResultExpiry;

    /// <inheritdoc/>
    public ValueTask SetStateAsync(TaskStateRecord state, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(state);
        var now = _time.GetUtcNow();
        _states.AddOrUpdate(
            state.TaskId,
            static (_, arg) => new Entry<TaskStateRecord>(arg.state, arg.expires),
            static (_, old, arg) => new Entry<TaskStateRecord>(
                old.ExpiresAt > arg.now && old.Value.CreatedAt != default
                    ? new TaskStateRecord
                    {
                        TaskId = arg.state.TaskId,
                        TaskName = arg.state.TaskName,
                        State = arg.state.State,
                        Results = arg.state.Results,
                        Error = arg.state.Error,
                        CreatedAt = old.Value.CreatedAt,
                        Ttl = arg.state.Ttl,
                    }
                    : arg.state,
                arg.expires),
            (state, expires: now + ResultTtl, now));

        if (_waiters.TryRemove(state.TaskId, out var waiter))
        {
            waiter.TrySetResult();
        }

        return ValueTask.CompletedTask;
    }

    /// <inheritdoc/>
    public ValueTask<TaskStateRecord?> GetStateAsync(string taskId, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult(Read(_states, taskId));

    /// <inheritdoc/>
    public ValueTask<IReadOnlyList<TaskStateRecord?>> GetStatesAsync(IReadOnlyList<string> taskIds, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(taskIds);
        var states = new TaskStateRecord?[taskIds.Count];
        for (var i = 0; i < states.Length; i++)
        {
            states[i] = Read(_states, taskIds[i]);
        }

        return ValueTask.FromResult<IReadOnlyList<TaskStateRecord?>>(states);
    }

    /// <inheritdoc/>
    public ValueTask InitGroupAsync(GroupMeta meta, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(meta);
        _groups[meta.GroupId] = new Entry<GroupMeta>(meta, _time.GetUtcNow() + ResultTtl);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc/>
    public ValueTask<GroupMeta?> GetGroupMetaAsync(string groupId, CancellationToken cancellationToken = default)
    {
        var meta = Read(_groups, groupId);
        if (meta is not null && _progress.TryGetValue(groupId, out var progress) && progress.Triggered && !meta.ChordTriggered)
        {
            meta = new GroupMeta { GroupId = meta.GroupId, TaskIds = meta.TaskIds, ChordTriggered = true, Lock = meta.Lock, CreatedAt = meta.CreatedAt, Ttl = meta.Ttl };
        }

        return ValueTask.FromResult(meta);
    }

    /// <inheritdoc/>
    public ValueTask<GroupCompletion> CompleteGroupMemberAsync(string groupId, string taskId, bool succeeded, string? traceParent = null, CancellationToken cancellationToken = default)
    {
        var progress = _progress.GetOrAdd(groupId, static _ => new GroupProgress());
        lock (progress)
        {
            var first = progress.Members.Add(taskId);
            if (first && !succeeded)
            {
                progress.Failed++;
            }

            if (first && !string.IsNullOrEmpty(traceParent))
            {
                progress.TraceParents.Add(traceParent);
            }

            // Members that a peer ran are known by their final states only: the cursor moves over them in order.
            var completed = progress.Members.Count;
            if (Read(_groups, groupId) is { } meta && completed < meta.TaskIds.Count)
            {
                while (progress.Scanned < meta.TaskIds.Count)
                {
                    var id = meta.TaskIds[progress.Scanned];
                    if (!progress.Members.Contains(id))
                    {
                        var state = Read(_states, id)?.State;
                        if (state == TaskState.Failure)
                        {
                            progress.PeerFailed++;
                        }
                        else if (state != TaskState.Success)
                        {
                            break;
                        }
                    }

                    progress.Scanned++;
                }

                completed = Math.Max(completed, progress.Scanned);
            }

            return ValueTask.FromResult(new GroupCompletion(completed, progress.Failed + progress.PeerFailed, first, progress.Triggered));
        }
    }

    /// <inheritdoc/>
    public ValueTask<ChordClaim> ClaimChordAsync(string groupId, string claimantId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(claimantId);
        var meta = Read(_groups, groupId) ?? throw new InvalidOperationException($"Chord {groupId} cannot be claimed: its group meta is missing (expired?).");

        var progress = _progress.GetOrAdd(groupId, static _ => new GroupProgress());
        lock (progress)
        {
            if (progress.Triggered || meta.ChordTriggered)
            {
                return ValueTask.FromResult(progress.Claimant == claimantId ? ChordClaim.Resumed : ChordClaim.Lost);
            }

            progress.Triggered = true;
            progress.Claimant = claimantId;
            return ValueTask.FromResult(ChordClaim.Won);
        }
    }

    /// <inheritdoc/>
    public ValueTask<IReadOnlyList<string>> GetGroupMemberTraceParentsAsync(string groupId, int maxCount, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxCount);
        if (!_progress.TryGetValue(groupId, out var progress))
        {
            return ValueTask.FromResult<IReadOnlyList<string>>([]);
        }

        lock (progress)
        {
            return ValueTask.FromResult<IReadOnlyList<string>>([.. progress.TraceParents.Take(maxCount)]);
        }
    }

    /// <inheritdoc/>
    public ValueTask MarkChordTriggeredAsync(string groupId, CancellationToken cancellationToken = default)
    {
        var progress = _progress.GetOrAdd(groupId, static _ => new GroupProgress());
        lock (progress)
        {
            progress.Triggered = true;
            progress.Claimant = null;
        }

        return ValueTask.CompletedTask;
    }

    /// <inheritdoc/>
    public async ValueTask WaitForChangeAsync(string taskId, TimeSpan maxWait, CancellationToken cancellationToken = default)
    {
        var waiter = _waiters.GetOrAdd(taskId, static _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        try
        {
            await waiter.Task.WaitAsync(maxWait, _time, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
        }
    }

    /// <inheritdoc/>
    public ValueTask DeleteStateAsync(string taskId, CancellationToken cancellationToken = default)
    {
        _states.TryRemove(taskId, out _);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc/>
    public ValueTask DeleteGroupAsync(string groupId, CancellationToken cancellationToken = default)
    {
        _groups.TryRemove(groupId, out _);
        _progress.TryRemove(groupId, out _);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc/>
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    /// <summary>The states that have not expired, for the management store.</summary>
    internal IEnumerable<TaskStateRecord> LiveStates()
    {
        var now = _time.GetUtcNow();
        return _states.Values.Where(e => e.ExpiresAt > now).Select(e => e.Value);
    }

    internal TimeProvider Time => _time;

    private T? Read<T>(ConcurrentDictionary<string, Entry<T>> store, string key)
        where T : class
    {
        if (!store.TryGetValue(key, out var entry))
        {
            return null;
        }

        if (entry.ExpiresAt <= _time.GetUtcNow())
        {
            store.TryRemove(new KeyValuePair<string, Entry<T>>(key, entry));
            return null;
        }

        return entry.Value;
    }

    private sealed record Entry<T>(T Value, DateTimeOffset ExpiresAt);

    private sealed class GroupProgress
    {
        public HashSet<string> Members { get; } = new(StringComparer.Ordinal);

        public int Failed { get; set; }

        public List<string> TraceParents { get; } = [];

        public bool Triggered { get; set; }

        /// <summary>Who claimed the chord, until its callback is marked published.</summary>
        public string? Claimant { get; set; }

        /// <summary>Members in member order known to be final (the cursor over peers' states).</summary>
        public int Scanned { get; set; }

        public int PeerFailed { get; set; }
    }
}
