using Microsoft.Extensions.Logging;

namespace Conveyor.Sqlite.Internal;

/// <summary>
/// Notices writes of other processes. SQLite has no cross-process notification, so one loop per process reads
/// <c>PRAGMA data_version</c> (a counter in the WAL index that changes when any other connection commits; it costs
/// no I/O) and, only when it changed, the queue versions and the task states changed since the last poll (by their
/// change number, so the cost follows the number of changes, not of waiters). The loop runs only while a consumer or a result waiter exists, polls every millisecond while the database
/// changes, and backs off, doubling, to <see cref="SqliteConveyorOptions.MaxPollInterval"/> while it is idle.
/// </summary>
internal sealed class ChangePoller : IAsyncDisposable
{
    private const int MaxChangedRows = 4096;
    private static readonly TimeSpan MinInterval = TimeSpan.FromMilliseconds(1);

    private readonly SqliteStore _store;
    private readonly TimeSpan _maxInterval;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private readonly CancellationTokenSource _stop = new();
    private TaskCompletionSource _subscribed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private StoreConnection? _connection;
    private Task? _loop;
    private int _subscribers;
    private long _lastDataVersion = -1;

    // The state change counter of the last poll's snapshot (not the waiters' baseline, which this process's own
    // commits move ahead): rows with a higher number were written since. -1: unknown.
    private long _polledSeq = -1;

    public ChangePoller(SqliteStore store, TimeSpan maxInterval, ILogger logger)
    {
        _store = store;
        _maxInterval = maxInterval;
        _logger = logger;
    }

    /// <summary>Whether the loop is polling now (someone is subscribed).</summary>
    public bool IsActive => Volatile.Read(ref _subscribers) > 0;

    public void Subscribe()
    {
        lock (_gate)
        {
            if (_stop.IsCancellationRequested)
            {
                return;
            }

            if (_subscribers++ == 0)
            {
                _subscribed.TrySetResult();
            }

            if (_loop is null)
            {
                using (ExecutionContext.SuppressFlow())
                {
                    _loop = Task.Run(RunAsync);
                }
            }
        }
    }

    public void Unsubscribe()
    {
        lock (_gate)
        {
            if (--_subscribers == 0)
            {
                _subscribed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        Task? loop;
        lock (_gate)
        {
            loop = _loop;
            _stop.Cancel();
        }

        if (loop is not null)
        {
            await loop.ConfigureAwait(false);
        }

        _connection?.Dispose();
        _stop.Dispose();
    }

    private async Task RunAsync()
    {
        var token = _stop.Token;
        var interval = MinInterval;
        try
        {
            while (!token.IsCancellationRequested)
            {
                Task subscribed;
                lock (_gate)
                {
                    subscribed = _subscribed.Task;
                }

                if (!subscribed.IsCompleted)
                {
                    // Nobody polled meanwhile: the first poll after the pause looks the awaited rows up.
                    _polledSeq = -1;
                    await subscribed.WaitAsync(token).ConfigureAwait(false);
                    interval = MinInterval;
                }

                await Task.Delay(interval, _store.TimeProvider, token).ConfigureAwait(false);
                bool changed;
                try
                {
                    await _store.EnsureInitializedAsync(token).ConfigureAwait(false);
                    changed = Poll();
                }
                catch (Exception ex) when (!token.IsCancellationRequested && ex is not ObjectDisposedException)
                {
                    // The consumers' own re-check and the waiters' timeouts cover the gap; try again later.
                    Log.PollFailed(_logger, ex);
                    _connection?.Dispose();
                    _connection = null;
                    interval = _maxInterval;
                    continue;
                }

                interval = changed ? MinInterval : TimeSpan.FromTicks(Math.Min(interval.Ticks * 2, _maxInterval.Ticks));
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
        }
        catch (ObjectDisposedException)
        {
            // The store closed.
        }
    }

    private bool Poll()
    {
        var connection = _connection ??= _store.OpenConnection();
        var dataVersion = connection.ScalarInt64("PRAGMA data_version;")!.Value;
        if (dataVersion == _lastDataVersion)
        {
            return false;
        }

        _lastDataVersion = dataVersion;
        if (_store.HasQueueSignals)
        {
            using var reader = connection.Command(Sql.QueueVersions).ExecuteReader();
            while (reader.Read())
            {
                _store.ObserveQueueVersion(reader.GetString(0), reader.GetInt64(1));
            }
        }

        var watcher = _store.StateWatcher;
        if (!watcher.HasWaiters)
        {
            var seq = connection.ScalarInt64(Sql.CurrentStateSeq)!.Value;
            watcher.UpdateSeq(seq);
            _polledSeq = seq;
            return true;
        }

        // The counter and the rows from one snapshot: a row written after it has a higher number.
        connection.Execute("BEGIN;");
        try
        {
            var currentSeq = connection.ScalarInt64(Sql.CurrentStateSeq)!.Value;
            var rows = new List<(string, long)>();
            var complete = false;
            if (_polledSeq >= 0)
            {
                // The rows written since the last poll (of any task): as many as changed, however many are awaited.
                using var reader = connection.Command(Sql.SelectChangedSince).With("$since", _polledSeq).With("$limit", MaxChangedRows).ExecuteReader();
                while (reader.Read())
                {
                    rows.Add((reader.GetString(0), reader.GetInt64(1)));
                }

                complete = rows.Count < MaxChangedRows;
            }

            if (!complete)
            {
                // First poll, or too much changed since: look the awaited rows up instead.
                rows.Clear();
                using var reader = connection.Command(Sql.SelectChangeSeqs).With("$ids", Json.StringArray(watcher.WaitedTaskIds())).ExecuteReader();
                while (reader.Read())
                {
                    rows.Add((reader.GetString(0), reader.GetInt64(1)));
                }
            }

            watcher.OnPolled(rows, currentSeq);
            _polledSeq = currentSeq;
        }
        finally
        {
            connection.Execute("COMMIT;");
        }

        return true;
    }
}
