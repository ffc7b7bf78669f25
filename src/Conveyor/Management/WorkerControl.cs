using System.Collections.Concurrent;
using Conveyor.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Conveyor;

/// <summary>
/// A worker's copy of the fleet's control state: the revoked task ids and the paused queues, read from the
/// <see cref="IManagementStore"/> in the background (pushed on Redis, polled on SQLite), so the hot path pays a
/// lookup in an in-process set per task and nothing per round trip. Also cancels the running tasks that get
/// revoked, and keeps the worker's heartbeat record.
/// </summary>
internal sealed partial class WorkerControl : IAsyncDisposable
{
    private readonly IManagementStore _store;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly TimeSpan _pollInterval;
    private readonly TimeSpan _heartbeatInterval;
    private readonly ConcurrentDictionary<string, byte> _revoked = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, CancellationTokenSource> _running = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _gate = new();
    private readonly WorkerInfo _identity;
    private HashSet<string> _paused = new(StringComparer.Ordinal);
    private CancellationTokenSource _pauseSignal = new();
    private TaskCompletionSource _resumeSignal = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile bool _anyRevoked;
    private long _cursor;
    private CancellationTokenSource? _loopSource;
    private Task _loops = Task.CompletedTask;

    public WorkerControl(IManagementStore store, WorkerInfo identity, WorkerOptions options, TimeProvider time, ILogger logger)
    {
        _store = store;
        _identity = identity;
        _time = time;
        _logger = logger;
        _pollInterval = options.ControlPollInterval;
        _heartbeatInterval = options.HeartbeatInterval;
    }

    public IManagementStore Store => _store;

    /// <summary>Whether a task id is revoked: one volatile read while nothing is revoked, a set lookup after.</summary>
    public bool IsRevoked(string taskId) => _anyRevoked && _revoked.ContainsKey(taskId);

    public bool IsPaused(string queue)
    {
        lock (_gate)
        {
            return _paused.Contains(queue);
        }
    }

    /// <summary>
    /// Starts following the control state when a management store is configured
    /// (<see cref="WorkerOptions.ManagementStore"/>, else the services'); <see langword="null"/> without one.
    /// </summary>
    public static async Task<WorkerControl?> StartAsync(WorkerOptions options, IServiceProvider? services, WorkerInfo identity, TimeProvider time, ILogger logger, CancellationToken cancellationToken)
    {
        var store = options.ManagementStore ?? services?.GetService(typeof(IManagementStore)) as IManagementStore;
        if (store is null)
        {
            return null;
        }

        var control = new WorkerControl(store, identity, options, time, logger);
        await control.StartAsync(cancellationToken).ConfigureAwait(false);
        return control;
    }

    /// <summary>Reads the control state once (so that a worker knows every revocation before it consumes), then follows it in the background.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        try
        {
            await RefreshAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // The store is down: the worker still works, and the follower below keeps trying.
            Log.ControlReadFailed(_logger, ex, _identity.Name);
        }

        _loops = Task.WhenAll(FollowAsync(_stop.Token), HeartbeatAsync(_stop.Token));
    }

    /// <summary>A token canceled when the queue gets paused, so the worker's loops stop taking messages.</summary>
    public CancellationToken PauseToken
    {
        get
        {
            lock (_gate)
            {
                return _pauseSignal.Token;
            }
        }
    }

    /// <summary>The record a worker's heartbeat starts from.</summary>
    public static WorkerInfo Describe(string name, string queue, int concurrency, TimeProvider time) => new()
    {
        Name = name,
        Host = Environment.MachineName,
        ProcessId = Environment.ProcessId,
        Queues = [queue],
        Concurrency = concurrency,
        StartedAt = time.GetUtcNow(),
    };

    /// <summary>
    /// Waits while the queue is paused, then returns a token for the worker's loops that is canceled when the
    /// queue gets paused again or the worker stops (the paused check and the token are read together, so a pause
    /// in between is never missed).
    /// </summary>
    public async Task<CancellationToken> WaitForResumeAsync(string queue, CancellationToken stoppingToken)
    {
        while (true)
        {
            await WaitWhilePausedAsync(queue, stoppingToken).ConfigureAwait(false);
            CancellationToken pause;
            lock (_gate)
            {
                if (_paused.Contains(queue))
                {
                    continue;
                }

                pause = _pauseSignal.Token;
            }

            _loopSource?.Dispose();
            _loopSource = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, pause);
            return _loopSource.Token;
        }
    }

    /// <summary>Waits while the queue is paused.</summary>
    public async Task WaitWhilePausedAsync(string queue, CancellationToken cancellationToken)
    {
        while (true)
        {
            Task resumed;
            lock (_gate)
            {
                if (!_paused.Contains(queue))
                {
                    return;
                }

                resumed = _resumeSignal.Task;
            }

            await resumed.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Notes a running task; its token is canceled when it is revoked. Dispose the result when it ends.</summary>
    public RunningTask Track(string taskId, CancellationToken token)
    {
        var source = CancellationTokenSource.CreateLinkedTokenSource(token);
        _running[taskId] = source;
        if (IsRevoked(taskId))
        {
            // Revoked between the delivery check and now.
            source.Cancel();
        }

        return new RunningTask(this, taskId, source);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await _loops.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await _store.RemoveWorkerAsync(_identity.Name, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            // Its record lapses on its own.
            Log.ControlReadFailed(_logger, ex, _identity.Name);
        }

        _stop.Dispose();
        _loopSource?.Dispose();
        lock (_gate)
        {
            _pauseSignal.Dispose();
        }
    }

    private async Task FollowAsync(CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await _store.WaitForControlChangeAsync(_pollInterval, stop).ConfigureAwait(false);
                await RefreshAsync(stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                Log.ControlReadFailed(_logger, ex, _identity.Name);
                try
                {
                    await Task.Delay(TimeSpan.FromSeconds(1), _time, stop).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    private async Task RefreshAsync(CancellationToken cancellationToken)
    {
        var changes = await _store.ReadControlAsync(_cursor, cancellationToken).ConfigureAwait(false);
        _cursor = changes.Cursor;
        foreach (var id in changes.Revoked)
        {
            if (_revoked.TryAdd(id, 0))
            {
                _anyRevoked = true;
                if (_running.TryGetValue(id, out var running))
                {
                    Log.RunningTaskRevoked(_logger, _identity.Name, id);
                    try
                    {
                        await running.CancelAsync().ConfigureAwait(false);
                    }
                    catch (ObjectDisposedException)
                    {
                        // It ended meanwhile.
                    }
                }
            }
        }

        var paused = new HashSet<string>(changes.PausedQueues, StringComparer.Ordinal);
        CancellationTokenSource? toCancel = null;
        TaskCompletionSource? toResume = null;
        lock (_gate)
        {
            var wasPaused = _identity.Queues.Any(_paused.Contains);
            var isPaused = _identity.Queues.Any(paused.Contains);
            _paused = paused;
            if (isPaused && !wasPaused)
            {
                toCancel = _pauseSignal;
                _pauseSignal = new CancellationTokenSource();
                Log.QueuePaused(_logger, _identity.Name, string.Join(',', _identity.Queues));
            }
            else if (!isPaused && wasPaused)
            {
                toResume = _resumeSignal;
                _resumeSignal = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                Log.QueueResumed(_logger, _identity.Name, string.Join(',', _identity.Queues));
            }
        }

        if (toCancel is not null)
        {
            await toCancel.CancelAsync().ConfigureAwait(false);
        }

        toResume?.TrySetResult();
    }

    private async Task HeartbeatAsync(CancellationToken stop)
    {
        var ttl = _heartbeatInterval * 3;
        while (!stop.IsCancellationRequested)
        {
            try
            {
                var now = _time.GetUtcNow();
                await _store.HeartbeatAsync(
                    _identity with
                    {
                        RunningTasks = [.. _running.Keys],
                        Paused = IsAnyPaused(),
                        LastHeartbeat = now,
                    },
                    ttl,
                    stop).ConfigureAwait(false);
                await FlushThroughputAsync(now, stop).ConfigureAwait(false);
                await Task.Delay(_heartbeatInterval, _time, stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                Log.ControlReadFailed(_logger, ex, _identity.Name);
                try
                {
                    await Task.Delay(_heartbeatInterval, _time, stop).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    private bool IsAnyPaused()
    {
        lock (_gate)
        {
            return _identity.Queues.Any(_paused.Contains);
        }
    }

    /// <summary>A tracked running task: its revocable token.</summary>
    internal readonly struct RunningTask(WorkerControl owner, string taskId, CancellationTokenSource source) : IDisposable
    {
        public CancellationToken Token => source.Token;

        /// <summary>Whether it was revoked (its token canceled by a revocation).</summary>
        public bool WasRevoked => source.IsCancellationRequested && owner.IsRevoked(taskId);

        public void Dispose()
        {
            owner._running.TryRemove(new KeyValuePair<string, CancellationTokenSource>(taskId, source));
            source.Dispose();
        }
    }
}
