using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;

namespace Conveyor.Sqlite.Internal;

/// <summary>
/// Everything a process keeps for one database file: the writer (one connection, group commit), a small pool of
/// read connections, the poller that notices other processes' writes, and the in-process wake-ups. The broker,
/// the backend and the lock of a process share one store per file (and clock and settings), so that a worker's
/// state writes and acks go into the same transactions, and a publish wakes a consumer of another component
/// instance at once. Opened lazily on first use; closed when the last component using it is disposed.
/// </summary>
internal sealed class SqliteStore : IAsyncDisposable
{
    private const int MaxIdleReaders = 8;
    private const int SweepLimit = 1000;
    private static readonly TimeSpan SweepInterval = TimeSpan.FromMinutes(1);

    private static readonly Lock SharedGate = new();
    private static readonly Dictionary<StoreKey, SqliteStore> Shared = [];

    private readonly StoreKey? _key;
    private readonly TimeSpan _busyTimeout;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _initGate = new(1, 1);
    private readonly ConcurrentQueue<StoreConnection> _readers = new();
    private readonly ConcurrentDictionary<string, QueueSignal> _queueSignals = new(StringComparer.Ordinal);
    private readonly ChangePoller _poller;
    private SqliteWriter? _writer;
    private volatile bool _initialized;
    private bool _disposed;
    private int _references;
    private int _idleReaders;
    private long _nextSweepAt;

    private long SweepIntervalTicks => (long)(SweepInterval.TotalSeconds * TimeProvider.TimestampFrequency);

    private SqliteStore(string path, StoreKey? key, TimeProvider timeProvider, SqliteConveyorOptions options, ILoggerFactory loggerFactory)
    {
        Path = path;
        _key = key;
        TimeProvider = timeProvider;
        _busyTimeout = options.BusyTimeout;
        _logger = loggerFactory.CreateLogger("Conveyor.Sqlite");
        _poller = new ChangePoller(this, options.MaxPollInterval, _logger);
    }

    public string Path { get; }

    public TimeProvider TimeProvider { get; }

    public StateWatcher StateWatcher { get; } = new();

    public ChangePoller Poller => _poller;

    public bool HasQueueSignals => !_queueSignals.IsEmpty;

    public long NowMs => TimeProvider.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>Takes a reference to the store of a file, creating it if needed. Does no I/O.</summary>
    public static SqliteStore Acquire(SqliteConveyorOptions options, TimeProvider timeProvider, ILoggerFactory loggerFactory)
    {
        var path = System.IO.Path.GetFullPath(options.DatabasePath);
        if (options.Isolated)
        {
            return new SqliteStore(path, null, timeProvider, options, loggerFactory) { _references = 1 };
        }

        var key = new StoreKey(path, timeProvider, options.BusyTimeout, options.MaxPollInterval);
        lock (SharedGate)
        {
            if (!Shared.TryGetValue(key, out var store))
            {
                store = new SqliteStore(path, key, timeProvider, options, loggerFactory);
                Shared[key] = store;
            }

            store._references++;
            return store;
        }
    }

    /// <summary>Gives a reference back; the last one closes the store.</summary>
    public async ValueTask ReleaseAsync()
    {
        lock (SharedGate)
        {
            if (--_references > 0)
            {
                return;
            }

            if (_key is { } key)
            {
                Shared.Remove(key);
            }

            _disposed = true;
        }

        await _poller.DisposeAsync().ConfigureAwait(false);
        await _initGate.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_writer is { } writer)
            {
                await writer.StopAsync().ConfigureAwait(false);
            }

            while (_readers.TryDequeue(out var reader))
            {
                reader.Dispose();
            }
        }
        finally
        {
            _initGate.Release();
        }
    }

    /// <summary>The same as <see cref="ReleaseAsync"/>.</summary>
    public ValueTask DisposeAsync() => ReleaseAsync();

    public ValueTask EnsureInitializedAsync(CancellationToken cancellationToken = default) =>
        _initialized ? ValueTask.CompletedTask : new ValueTask(InitializeAsync(cancellationToken));

    /// <summary>Runs a write in the writer's next transaction and completes after its commit.</summary>
    public Task<TResult> WriteAsync<TState, TResult>(TState state, Func<WriteContext, TState, TResult> execute, CancellationToken cancellationToken)
    {
        if (!_initialized)
        {
            return WriteSlowAsync(state, execute, cancellationToken);
        }

        MaybeSweep();
        return _writer!.WriteAsync(state, execute, cancellationToken);
    }

    /// <summary>Runs a read on a pooled connection, on the calling thread (SQLite reads in WAL mode never wait for
    /// the writer).</summary>
    public ValueTask<TResult> ReadAsync<TState, TResult>(TState state, Func<StoreConnection, TState, TResult> read, CancellationToken cancellationToken)
    {
        if (!_initialized)
        {
            return ReadSlowAsync(state, read, cancellationToken);
        }

        cancellationToken.ThrowIfCancellationRequested();
        return ValueTask.FromResult(Read(state, read));
    }

    public StoreConnection OpenConnection() => StoreConnection.Open(Path, _busyTimeout);

    public QueueSignal QueueSignal(string queue) => _queueSignals.GetOrAdd(queue, static _ => new QueueSignal());

    public void ObserveQueueVersion(string queue, long version)
    {
        if (_queueSignals.TryGetValue(queue, out var signal))
        {
            signal.Observe(version);
        }
    }

    /// <summary>Called by the writer after each commit: wakes this process's consumers and waiters.</summary>
    public void AfterCommit(WriteContext context)
    {
        foreach (var (queue, version) in context.QueueVersions)
        {
            ObserveQueueVersion(queue, version);
        }

        if (context.ChangedStates.Count > 0)
        {
            // Every commit after this one has a higher number: a wait that begins now can start from it.
            StateWatcher.UpdateSeq(context.StateSeq);
            foreach (var taskId in context.ChangedStates)
            {
                StateWatcher.SignalWritten(taskId);
            }
        }
    }

    /// <summary>Queues a write that nobody awaits (lazy deletes, the sweep); its failure is only logged.</summary>
    public void WriteInBackground<TState>(TState state, Func<WriteContext, TState, int> execute)
    {
        if (_disposed || _writer is null)
        {
            return;
        }

        try
        {
            _writer.WriteAsync(state, execute, CancellationToken.None).ContinueWith(
                static (task, logger) => Log.BackgroundWriteFailed((ILogger)logger!, task.Exception!.GetBaseException()),
                _logger,
                CancellationToken.None,
                TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously,
                TaskScheduler.Default);
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private async Task<TResult> WriteSlowAsync<TState, TResult>(TState state, Func<WriteContext, TState, TResult> execute, CancellationToken cancellationToken)
    {
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        MaybeSweep();
        return await _writer!.WriteAsync(state, execute, cancellationToken).ConfigureAwait(false);
    }

    private async ValueTask<TResult> ReadSlowAsync<TState, TResult>(TState state, Func<StoreConnection, TState, TResult> read, CancellationToken cancellationToken)
    {
        await InitializeAsync(cancellationToken).ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
        return Read(state, read);
    }

    private TResult Read<TState, TResult>(TState state, Func<StoreConnection, TState, TResult> read)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_readers.TryDequeue(out var connection))
        {
            Interlocked.Decrement(ref _idleReaders);
        }
        else
        {
            connection = OpenConnection();
        }

        TResult result;
        try
        {
            result = read(connection, state);
        }
        catch
        {
            // The connection may be left mid-statement or mid-transaction: don't pool it.
            connection.Dispose();
            throw;
        }

        if (_disposed || Interlocked.Increment(ref _idleReaders) > MaxIdleReaders)
        {
            connection.Dispose();
            if (!_disposed)
            {
                Interlocked.Decrement(ref _idleReaders);
            }
        }
        else
        {
            _readers.Enqueue(connection);
        }

        return result;
    }

    private async Task InitializeAsync(CancellationToken cancellationToken)
    {
        await _initGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_initialized)
            {
                return;
            }

            ObjectDisposedException.ThrowIf(_disposed, this);
            var connection = CreateSchema();
            _writer = new SqliteWriter(this, connection, _logger);
            _nextSweepAt = TimeProvider.GetTimestamp();
            _initialized = true;
        }
        finally
        {
            _initGate.Release();
        }
    }

    // Idempotent, and safe when several processes open a new file at once: the schema is created inside a write
    // transaction, so the second process waits for the first and then finds the version already set.
    private StoreConnection CreateSchema()
    {
        if (System.IO.Path.GetDirectoryName(Path) is { Length: > 0 } directory)
        {
            Directory.CreateDirectory(directory);
        }

        var connection = OpenConnection();
        try
        {
            var mode = SetWal(connection);
            if (!string.Equals(mode, "wal", StringComparison.OrdinalIgnoreCase))
            {
                Log.NotWal(_logger, Path, mode ?? "unknown");
            }

            connection.BeginImmediate();
            try
            {
                var version = (int)connection.ScalarInt64("PRAGMA user_version;")!.Value;
                if (version > Sql.SchemaVersion)
                {
                    throw new NotSupportedException(
                        $"The Conveyor database {Path} has schema version {version}; this version of Conveyor.Sqlite knows version {Sql.SchemaVersion} at most. Upgrade Conveyor.Sqlite.");
                }

                if (version < Sql.SchemaVersion)
                {
                    connection.ExecuteScript(Sql.CreateSchema);
                    connection.Execute(string.Create(CultureInfo.InvariantCulture, $"PRAGMA user_version = {Sql.SchemaVersion};"));
                }

                if (connection.ScalarInt64(Sql.HasMemberTraceParent) == 0)
                {
                    connection.Execute(Sql.AddMemberTraceParent);
                }

                if (connection.ScalarInt64(Sql.HasProgressClaimant) == 0)
                {
                    connection.ExecuteScript(Sql.AddProgressClaim);
                }

                connection.Commit();
                Log.Opened(_logger, Path, version, Sql.SchemaVersion);
            }
            catch
            {
                connection.RollbackIfOpen();
                throw;
            }

            // From now on the writer waits for the write lock in BeginImmediate's own loop, not SQLite's handler.
            connection.Execute("PRAGMA busy_timeout = 0;");
            return connection;
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    // WAL is a property of the file, kept once set. Switching a new file to it needs the file to itself for a
    // moment, and SQLite reports SQLITE_BUSY at once (without its busy handler) while another process opens or
    // switches the same file: retry, for up to the busy timeout (a wall-clock bound, as SQLite's own).
    private string? SetWal(StoreConnection connection)
    {
        var started = Stopwatch.GetTimestamp();
        while (true)
        {
            try
            {
                return connection.ScalarText("PRAGMA journal_mode = WAL;");
            }
            catch (SqliteException ex) when (ex.SqliteErrorCode is 5 or 6 && Stopwatch.GetElapsedTime(started) < _busyTimeout)
            {
                Thread.Sleep(1);
            }
        }
    }

    // Expired states and groups are treated as missing on read; this deletes them, in slices, at most once a
    // minute, piggybacking on a write.
    private void MaybeSweep()
    {
        // On every write: a monotonic timestamp of the injected clock, not a wall-clock read.
        var now = TimeProvider.GetTimestamp();
        var due = Volatile.Read(ref _nextSweepAt);
        if (now < due || Interlocked.CompareExchange(ref _nextSweepAt, now + SweepIntervalTicks, due) != due)
        {
            return;
        }

        WriteInBackground(this, static (context, store) =>
        {
            var now = store.NowMs;
            var deleted = 0;
            var full = false;
            foreach (var sql in (ReadOnlySpan<string>)[Sql.SweepStates, Sql.SweepGroups, Sql.SweepGroupMembers, Sql.SweepGroupProgress])
            {
                var count = context.Command(sql).With("$now", now).With("$limit", SweepLimit).ExecuteNonQuery();
                deleted += count;
                full |= count >= SweepLimit;
            }

            if (full)
            {
                // More is left: sweep again on the next write.
                Volatile.Write(ref store._nextSweepAt, store.TimeProvider.GetTimestamp());
            }

            if (deleted > 0)
            {
                Log.Swept(store._logger, deleted, store.Path);
            }

            return deleted;
        });
    }

    private readonly record struct StoreKey(string Path, TimeProvider TimeProvider, TimeSpan BusyTimeout, TimeSpan MaxPollInterval);
}
