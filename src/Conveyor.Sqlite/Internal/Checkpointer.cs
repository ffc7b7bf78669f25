using Microsoft.Extensions.Logging;

namespace Conveyor.Sqlite.Internal;

/// <summary>
/// Copies the WAL back into the database file on a thread of its own. SQLite's automatic checkpoint runs inside
/// the commit that crosses the threshold, and a checkpoint ends with an fsync of the database file: with it the
/// occasional commit took tens of milliseconds while every other caller of the batch (and, for the write lock,
/// every other process) waited. Here the writer's connection only checkpoints as a last resort (a WAL of 64 MiB),
/// and this thread runs a PASSIVE checkpoint (it never blocks writers or readers) a moment after commits.
/// </summary>
internal sealed class Checkpointer
{
    private static readonly TimeSpan Coalesce = TimeSpan.FromMilliseconds(200);

    private readonly SqliteStore _store;
    private readonly ILogger _logger;
    private readonly object _gate = new();
    private readonly Thread _thread;
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private bool _pending;
    private bool _stopping;

    public Checkpointer(SqliteStore store, ILogger logger)
    {
        _store = store;
        _logger = logger;
        _thread = new Thread(Run) { IsBackground = true, Name = "Conveyor.Sqlite checkpointer" };
        _thread.UnsafeStart();
    }

    /// <summary>Notes that a transaction committed: a checkpoint follows shortly.</summary>
    public void Committed()
    {
        if (Volatile.Read(ref _pending))
        {
            return;
        }

        lock (_gate)
        {
            _pending = true;
            Monitor.Pulse(_gate);
        }
    }

    public Task StopAsync()
    {
        lock (_gate)
        {
            _stopping = true;
            Monitor.Pulse(_gate);
        }

        return _stopped.Task;
    }

    private void Run()
    {
        StoreConnection? connection = null;
        try
        {
            while (true)
            {
                lock (_gate)
                {
                    while (!_pending && !_stopping)
                    {
                        Monitor.Wait(_gate);
                    }

                    if (_stopping)
                    {
                        return;
                    }

                    // Let commits accumulate: one checkpoint (one fsync) for all of them.
                    Monitor.Wait(_gate, Coalesce);
                    if (_stopping)
                    {
                        return;
                    }

                    _pending = false;
                }

                try
                {
                    connection ??= _store.OpenConnection();
                    connection.Execute("PRAGMA wal_checkpoint(PASSIVE);");
                }
                catch (Exception ex)
                {
                    Log.CheckpointFailed(_logger, ex);
                    connection?.Dispose();
                    connection = null;
                }
            }
        }
        finally
        {
            connection?.Dispose();
            _stopped.TrySetResult();
        }
    }
}
