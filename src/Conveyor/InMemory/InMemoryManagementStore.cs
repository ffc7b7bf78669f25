using System.Globalization;

namespace Conveyor.InMemory;

/// <summary>
/// The management store of the in-memory broker and backend: lists their messages and states, and keeps the
/// control state (revocations, pauses), worker records and progress in this process. Changes wake the workers
/// at once.
/// </summary>
public sealed partial class InMemoryManagementStore : IManagementStore
{
    private readonly InMemoryBroker _broker;
    private readonly InMemoryResultBackend _backend;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private readonly List<(long Seq, string TaskId, DateTimeOffset ExpiresAt)> _revoked = [];
    private readonly HashSet<string> _paused = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (WorkerInfo Worker, DateTimeOffset ExpiresAt)> _workers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (TaskProgress Progress, DateTimeOffset ExpiresAt)> _progress = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (string TaskId, DateTimeOffset ExpiresAt)> _unique = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (double Tokens, DateTimeOffset At)> _buckets = new(StringComparer.Ordinal);
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _seq;

    /// <summary>Creates the store over an in-memory broker and backend.</summary>
    /// <param name="broker">The broker.</param>
    /// <param name="backend">The backend (its result TTL is the retention).</param>
    /// <param name="timeProvider">The clock; the backend's when <see langword="null"/>.</param>
    public InMemoryManagementStore(InMemoryBroker broker, InMemoryResultBackend backend, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(broker);
        ArgumentNullException.ThrowIfNull(backend);
        _broker = broker;
        _backend = backend;
        _time = timeProvider ?? backend.Time;
    }

    /// <inheritdoc/>
    public ManagementCapabilities Capabilities => ManagementCapabilities.Messages | ManagementCapabilities.States;

    /// <inheritdoc/>
    public TimeSpan Retention => _backend.ResultTtl;

    /// <inheritdoc/>
    public ValueTask<TaskPage> ListMessagesAsync(string queue, TaskQuery query, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(query);
        var all = _broker.Snapshot(queue, query.State).Select(m => m.Summary).Where(s => query.Name is null || s.Name == query.Name);
        return ValueTask.FromResult(Page(all, query));
    }

    /// <inheritdoc/>
    public ValueTask<IReadOnlyList<(TaskSummary Summary, ReadOnlyMemory<byte> Body)>> FindMessagesAsync(string taskId, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult<IReadOnlyList<(TaskSummary, ReadOnlyMemory<byte>)>>(_broker.Find(taskId));

    /// <inheritdoc/>
    public ValueTask<int> DeleteMessagesAsync(string taskId, CancellationToken cancellationToken = default) => ValueTask.FromResult(_broker.Remove(taskId));

    /// <inheritdoc/>
    public ValueTask<int> RunNowAsync(string taskId, CancellationToken cancellationToken = default) => ValueTask.FromResult(_broker.RunNow(taskId));

    /// <inheritdoc/>
    public ValueTask<TaskPage> ListStatesAsync(TaskQuery query, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(query);
        var states = _backend.LiveStates().Where(query.Matches).OrderByDescending(s => s.CreatedAt).ThenBy(s => s.TaskId, StringComparer.Ordinal).Select(TaskSummary.FromState);
        return ValueTask.FromResult(Page(states, query));
    }

    /// <inheritdoc/>
    public ValueTask RevokeAsync(IReadOnlyList<string> taskIds, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(taskIds);
        lock (_gate)
        {
            var now = _time.GetUtcNow();
            _revoked.RemoveAll(r => r.ExpiresAt <= now);
            foreach (var id in taskIds)
            {
                _revoked.Add((++_seq, id, now + Retention));
            }
        }

        Signal();
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc/>
    public ValueTask SetPausedAsync(string queue, bool paused, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            _ = paused ? _paused.Add(queue) : _paused.Remove(queue);
        }

        Signal();
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc/>
    public ValueTask<ControlChanges> ReadControlAsync(long after, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            var now = _time.GetUtcNow();
            var revoked = _revoked.Where(r => r.Seq > after && r.ExpiresAt > now).Select(r => r.TaskId).ToList();
            return ValueTask.FromResult(new ControlChanges(Math.Max(after == long.MaxValue ? 0 : after, _seq), revoked, [.. _paused.Order(StringComparer.Ordinal)]));
        }
    }

    /// <inheritdoc/>
    public async ValueTask WaitForControlChangeAsync(TimeSpan maxWait, CancellationToken cancellationToken = default)
    {
        Task changed;
        lock (_gate)
        {
            changed = _changed.Task;
        }

        try
        {
            await changed.WaitAsync(maxWait, _time, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
        }
    }

    /// <inheritdoc/>
    public ValueTask HeartbeatAsync(WorkerInfo worker, TimeSpan ttl, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(worker);
        lock (_gate)
        {
            _workers[worker.Name] = (worker, _time.GetUtcNow() + ttl);
        }

        return ValueTask.CompletedTask;
    }

    /// <inheritdoc/>
    public ValueTask RemoveWorkerAsync(string name, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            _workers.Remove(name);
        }

        return ValueTask.CompletedTask;
    }

    /// <inheritdoc/>
    public ValueTask<IReadOnlyList<WorkerInfo>> ListWorkersAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            var now = _time.GetUtcNow();
            return ValueTask.FromResult<IReadOnlyList<WorkerInfo>>([.. _workers.Values.Where(w => w.ExpiresAt > now).Select(w => w.Worker).OrderBy(w => w.Name, StringComparer.Ordinal)]);
        }
    }

    /// <inheritdoc/>
    public ValueTask SetProgressAsync(string taskId, TaskProgress progress, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            _progress[taskId] = (progress, _time.GetUtcNow() + Retention);
        }

        return ValueTask.CompletedTask;
    }

    /// <inheritdoc/>
    public ValueTask<TaskProgress?> GetProgressAsync(string taskId, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            return ValueTask.FromResult(_progress.TryGetValue(taskId, out var p) && p.ExpiresAt > _time.GetUtcNow() ? p.Progress : null);
        }
    }

    /// <inheritdoc/>
    public ValueTask<string?> ClaimUniqueAsync(string key, string taskId, TimeSpan ttl, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            var now = _time.GetUtcNow();
            if (_unique.TryGetValue(key, out var holder) && holder.ExpiresAt > now)
            {
                return ValueTask.FromResult<string?>(holder.TaskId);
            }

            _unique[key] = (taskId, now + ttl);
            return ValueTask.FromResult<string?>(null);
        }
    }

    /// <inheritdoc/>
    public ValueTask ReleaseUniqueAsync(string key, string taskId, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            if (_unique.TryGetValue(key, out var holder) && holder.TaskId == taskId)
            {
                _unique.Remove(key);
            }
        }

        return ValueTask.CompletedTask;
    }

    /// <inheritdoc/>
    public ValueTask<TokenReservation> ReserveTokenAsync(string bucket, double ratePerSecond, int burst, TimeSpan maxWait, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            var now = _time.GetUtcNow();
            var (tokens, at) = _buckets.TryGetValue(bucket, out var b) ? b : (burst, now);
            var reservation = TokenBucket.Reserve(ref tokens, (now - at).TotalMilliseconds, ratePerSecond, burst, maxWait);
            if (reservation.Granted)
            {
                _buckets[bucket] = (tokens, now);
            }

            return ValueTask.FromResult(reservation);
        }
    }

    private static TaskPage Page(IEnumerable<TaskSummary> all, TaskQuery query)
    {
        var skip = query.After is { Length: > 0 } after && int.TryParse(after, NumberStyles.None, CultureInfo.InvariantCulture, out var position) ? position : 0;
        var page = all.Skip(skip).Take(query.Limit + 1).ToList();
        var more = page.Count > query.Limit;
        if (more)
        {
            page.RemoveAt(page.Count - 1);
        }

        return new TaskPage(page, more ? (skip + page.Count).ToString(CultureInfo.InvariantCulture) : null);
    }

    private void Signal()
    {
        TaskCompletionSource changed;
        lock (_gate)
        {
            changed = _changed;
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        changed.TrySetResult();
    }
}
