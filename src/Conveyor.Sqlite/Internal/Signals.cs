namespace Conveyor.Sqlite.Internal;

/// <summary>
/// Wakes the consumers of one queue in this process. A consumer takes <see cref="Next"/> before it fetches, so a
/// signal that comes while it fetches is not lost. Signals come from this process's commits at once, and from
/// the poller when another process bumped the queue's version.
/// </summary>
internal sealed class QueueSignal
{
    private readonly Lock _gate = new();
    private TaskCompletionSource _next = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _knownVersion = -1;

    public Task Next
    {
        get
        {
            lock (_gate)
            {
                return _next.Task;
            }
        }
    }

    /// <summary>Records a version of the queue and wakes the consumers when it is newer than the last known one.</summary>
    /// <param name="version">The queue's version, as committed or as read.</param>
    public void Observe(long version)
    {
        TaskCompletionSource? woken = null;
        lock (_gate)
        {
            if (version > _knownVersion)
            {
                _knownVersion = version;
                woken = _next;
                _next = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }
        }

        woken?.TrySetResult();
    }
}

/// <summary>One caller of <c>WaitForChangeAsync</c>. Its timeout and cancellation complete it like a change does,
/// so that a wait that times out (most of a result poller's waits) costs a timer, not an exception.</summary>
internal sealed class StateWaiter(string taskId, long baseline) : IDisposable
{
    private readonly TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private ITimer? _timer;
    private CancellationTokenRegistration _cancellation;

    public string TaskId { get; } = taskId;

    /// <summary>The state change counter the poller had seen when the wait began: a row written with a higher
    /// number was written after that.</summary>
    public long Baseline { get; } = baseline;

    public Task Ended => _changed.Task;

    public void Start(TimeSpan maxWait, TimeProvider timeProvider, CancellationToken cancellationToken)
    {
        if (maxWait != Timeout.InfiniteTimeSpan)
        {
            _timer = timeProvider.CreateTimer(static state => ((StateWaiter)state!).Signal(), this, maxWait, Timeout.InfiniteTimeSpan);
        }

        if (cancellationToken.CanBeCanceled)
        {
            _cancellation = cancellationToken.UnsafeRegister(static state => ((StateWaiter)state!).Signal(), this);
        }
    }

    public void Signal() => _changed.TrySetResult();

    public void Dispose()
    {
        _timer?.Dispose();
        _cancellation.Dispose();
    }
}

/// <summary>The task-state waiters of this process, by task id.</summary>
internal sealed class StateWatcher
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, List<StateWaiter>> _waiters = new(StringComparer.Ordinal);
    private long _lastSeq = -1;

    public bool HasWaiters
    {
        get
        {
            lock (_gate)
            {
                return _waiters.Count > 0;
            }
        }
    }

    public StateWaiter Register(string taskId)
    {
        var waiter = new StateWaiter(taskId, Volatile.Read(ref _lastSeq));
        lock (_gate)
        {
            if (!_waiters.TryGetValue(taskId, out var list))
            {
                list = [];
                _waiters[taskId] = list;
            }

            list.Add(waiter);
        }

        return waiter;
    }

    public void Unregister(StateWaiter waiter)
    {
        lock (_gate)
        {
            if (_waiters.TryGetValue(waiter.TaskId, out var list) && list.Remove(waiter) && list.Count == 0)
            {
                _waiters.Remove(waiter.TaskId);
            }
        }
    }

    /// <summary>Wakes every waiter of a task: this process just committed its state.</summary>
    public void SignalWritten(string taskId)
    {
        List<StateWaiter>? woken;
        lock (_gate)
        {
            _waiters.Remove(taskId, out woken);
        }

        if (woken is not null)
        {
            foreach (var waiter in woken)
            {
                waiter.Signal();
            }
        }
    }

    public string[] WaitedTaskIds()
    {
        lock (_gate)
        {
            return [.. _waiters.Keys];
        }
    }

    /// <summary>Wakes the waiters whose task's row was written after their wait began, as read by the poller.</summary>
    /// <param name="rows">The waited rows' change numbers.</param>
    /// <param name="currentSeq">The counter in the same snapshot.</param>
    public void OnPolled(IEnumerable<(string TaskId, long ChangeSeq)> rows, long currentSeq)
    {
        List<StateWaiter>? woken = null;
        lock (_gate)
        {
            foreach (var (taskId, changeSeq) in rows)
            {
                if (!_waiters.TryGetValue(taskId, out var list))
                {
                    continue;
                }

                for (var i = list.Count - 1; i >= 0; i--)
                {
                    if (changeSeq > list[i].Baseline)
                    {
                        (woken ??= []).Add(list[i]);
                        list.RemoveAt(i);
                    }
                }

                if (list.Count == 0)
                {
                    _waiters.Remove(taskId);
                }
            }
        }

        UpdateSeq(currentSeq);
        if (woken is not null)
        {
            foreach (var waiter in woken)
            {
                waiter.Signal();
            }
        }
    }

    public void UpdateSeq(long currentSeq)
    {
        long seen;
        while ((seen = Volatile.Read(ref _lastSeq)) < currentSeq && Interlocked.CompareExchange(ref _lastSeq, currentSeq, seen) != seen)
        {
        }
    }
}
