using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;

namespace Conveyor.Sqlite.Internal;

/// <summary>
/// The process's single writer for one database file (group commit). Every write request (publish, ack, lease,
/// state, counter, lock) goes into a queue; a dedicated thread takes everything queued, runs it in one
/// <c>BEGIN IMMEDIATE</c> transaction and commits once, then completes each caller. Under load a transaction
/// carries hundreds of requests, so the cost of a commit and of taking SQLite's write lock is shared; when idle a
/// request is committed at once, alone. Callers still await durability: nothing completes before its commit.
/// </summary>
/// <remarks>
/// The thread is a dedicated one because Microsoft.Data.Sqlite is synchronous underneath and a transaction may wait
/// for another process's write lock for up to the busy timeout: that must not hold a thread-pool thread.
/// </remarks>
internal sealed class SqliteWriter
{
    // Bounds a transaction's length, so that other processes get the write lock in between.
    private const int MaxBatch = 512;

    private readonly object _gate = new();
    private readonly SqliteStore _store;
    private readonly StoreConnection _connection;
    private readonly ILogger _logger;
    private readonly Thread _thread;
    private readonly Checkpointer _checkpointer;
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private List<WriteOperation> _pending = [];
    private List<WriteOperation> _batch = [];
    private bool _stopping;
    private bool _idle; // the writer thread waits in Monitor.Wait: only then does a request need to pulse

    public SqliteWriter(SqliteStore store, StoreConnection connection, ILogger logger)
    {
        _checkpointer = new Checkpointer(store, logger);
        _store = store;
        _connection = connection;
        _logger = logger;
        _thread = new Thread(Run) { IsBackground = true, Name = "Conveyor.Sqlite writer" };
        // No ExecutionContext (activities, async locals) of whoever happened to trigger the start.
        _thread.UnsafeStart();
    }

    public Task<TResult> WriteAsync<TState, TResult>(TState state, Func<WriteContext, TState, TResult> execute, CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return Task.FromCanceled<TResult>(cancellationToken);
        }

        var operation = new WriteOperation<TState, TResult>(state, execute, cancellationToken);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_stopping, this);
            _pending.Add(operation);
            if (_idle)
            {
                Monitor.Pulse(_gate);
            }
        }

        return operation.Task;
    }

    /// <summary>Stops taking requests, commits those already queued, and closes the connection.</summary>
    public async Task StopAsync()
    {
        lock (_gate)
        {
            _stopping = true;
            Monitor.Pulse(_gate);
        }

        await _stopped.Task.ConfigureAwait(false);
        await _checkpointer.StopAsync().ConfigureAwait(false);
    }

    private void Run()
    {
        var context = new WriteContext(_connection);
        try
        {
            while (true)
            {
                lock (_gate)
                {
                    while (_pending.Count == 0 && !_stopping)
                    {
                        _idle = true;
                        Monitor.Wait(_gate);
                        _idle = false;
                    }

                    if (_pending.Count == 0)
                    {
                        break;
                    }

                    if (_pending.Count <= MaxBatch)
                    {
                        (_pending, _batch) = (_batch, _pending);
                    }
                    else
                    {
                        _batch.AddRange(_pending.GetRange(0, MaxBatch));
                        _pending.RemoveRange(0, MaxBatch);
                    }
                }

                Process(_batch, context);
                _batch.Clear();
            }
        }
        finally
        {
            _connection.Dispose();
            _stopped.TrySetResult();
        }
    }

    private void Process(List<WriteOperation> batch, WriteContext context)
    {
        var live = 0;
        for (var i = 0; i < batch.Count; i++)
        {
            if (batch[i].CancellationToken.IsCancellationRequested)
            {
                batch[i].Cancel();
            }
            else
            {
                batch[live++] = batch[i];
            }
        }

        batch.RemoveRange(live, batch.Count - live);
        if (live == 0)
        {
            return;
        }

        try
        {
            Commit(batch, context);
        }
        catch (Exception error) when (batch.Count > 1 && !IsBusy(error))
        {
            // One request broke the shared transaction: run each alone, so that only the broken one fails.
            Log.WriteBatchFailed(_logger, error, batch.Count);
            foreach (var operation in batch)
            {
                try
                {
                    Commit([operation], context);
                }
                catch (Exception single)
                {
                    operation.Fail(single);
                }
            }
        }
        catch (Exception error)
        {
            // The write lock could not be had within the busy timeout, or the database failed: every request failed.
            foreach (var operation in batch)
            {
                operation.Fail(error);
            }
        }
    }

    private void Commit(List<WriteOperation> operations, WriteContext context)
    {
        context.Reset();
        _connection.BeginImmediate();
        try
        {
            foreach (var operation in operations)
            {
                operation.Execute(context);
            }

            context.BeforeCommit();
            _connection.Commit();
        }
        catch
        {
            try
            {
                _connection.RollbackIfOpen();
            }
            catch (Exception rollbackError)
            {
                Log.RollbackFailed(_logger, rollbackError);
            }

            throw;
        }

        foreach (var operation in operations)
        {
            operation.Complete();
        }

        _checkpointer.Committed();
        _store.AfterCommit(context);
    }

    private static bool IsBusy(Exception error) =>
        error is SqliteException { SqliteErrorCode: 5 or 6 }; // SQLITE_BUSY, SQLITE_LOCKED
}
