using System.Globalization;
using Conveyor.Serialization;
using Conveyor.Sqlite.Internal;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Conveyor.Sqlite;

/// <summary>
/// The management store in the SQLite file: lists the broker's messages and the backend's states with keyset
/// pages, and keeps the control state in tables of its own (<c>revocations</c>, <c>paused_queues</c>,
/// <c>workers</c>, <c>progress</c>), created on first use. SQLite cannot push: workers read the control state every
/// <see cref="WorkerOptions.ControlPollInterval"/> (two indexed reads); a change made in this process wakes this
/// process's workers at once.
/// </summary>
public sealed partial class SqliteManagementStore : IManagementStore, IAsyncDisposable
{
    private static readonly string[] Schema =
    [
        // seq orders revocations for the workers' cursors; ids are kept as long as results are.
        "CREATE TABLE IF NOT EXISTS revocations (seq INTEGER PRIMARY KEY AUTOINCREMENT, task_id TEXT NOT NULL, expires_at INTEGER NOT NULL);",
        "CREATE TABLE IF NOT EXISTS paused_queues (queue TEXT PRIMARY KEY) WITHOUT ROWID;",
        "CREATE TABLE IF NOT EXISTS workers (name TEXT PRIMARY KEY, expires_at INTEGER NOT NULL, body BLOB NOT NULL) WITHOUT ROWID;",
        "CREATE TABLE IF NOT EXISTS progress (task_id TEXT PRIMARY KEY, expires_at INTEGER NOT NULL, body BLOB NOT NULL) WITHOUT ROWID;",
        "CREATE TABLE IF NOT EXISTS rate_buckets (key TEXT PRIMARY KEY, micro_tokens INTEGER NOT NULL, updated_at INTEGER NOT NULL) WITHOUT ROWID;",
        "CREATE TABLE IF NOT EXISTS unique_keys (key TEXT PRIMARY KEY, task_id TEXT NOT NULL, expires_at INTEGER NOT NULL) WITHOUT ROWID;",
    ];

    // Takes a free or lapsed key; a held one is left alone (the writer's one transaction makes it atomic).
    private const string ClaimUnique = """
        INSERT INTO unique_keys (key, task_id, expires_at) VALUES ($key, $task_id, $expires_at)
        ON CONFLICT (key) DO UPDATE SET task_id = excluded.task_id, expires_at = excluded.expires_at
        WHERE unique_keys.expires_at <= $now;
        """;

    private const string SelectBucket = "SELECT micro_tokens, updated_at FROM rate_buckets WHERE key = $key;";

    private const string UpsertBucket = """
        INSERT INTO rate_buckets (key, micro_tokens, updated_at) VALUES ($key, $tokens, $now)
        ON CONFLICT (key) DO UPDATE SET micro_tokens = excluded.micro_tokens, updated_at = excluded.updated_at;
        """;

    private const string SelectUnique = "SELECT task_id FROM unique_keys WHERE key = $key;";

    private const string ReleaseUnique = "DELETE FROM unique_keys WHERE key = $key AND task_id = $task_id;";

    // Pending: ready messages, and delayed or leased ones whose time has passed (the next fetch takes them), in
    // delivery order; the cursor is (priority, id).
    private const string ListPending = """
        SELECT id, priority, due_at, lease_owner, delivery_count, enqueued_at, body FROM messages
        WHERE queue = $queue AND (state = 0 OR due_at <= $now)
          AND (priority < $p OR (priority = $p AND id > $id))
        ORDER BY priority DESC, id LIMIT $limit;
        """;

    // Scheduled: by ETA; the cursor is (due_at, id).
    private const string ListScheduled = """
        SELECT id, priority, due_at, lease_owner, delivery_count, enqueued_at, body FROM messages
        WHERE queue = $queue AND state = 1 AND due_at > $now
          AND (due_at > $p OR (due_at = $p AND id > $id))
        ORDER BY due_at, id LIMIT $limit;
        """;

    // Active: leased and the lease current; the cursor is the id ($p unused).
    private const string ListActive = """
        SELECT id, priority, due_at, lease_owner, delivery_count, enqueued_at, body FROM messages
        WHERE queue = $queue AND state = 2 AND due_at > $now AND $p = $p AND id > $id
        ORDER BY id LIMIT $limit;
        """;

    private const string FindMessages = """
        SELECT queue, state, due_at, lease_owner, delivery_count, body FROM messages WHERE task_id = $task_id;
        """;

    private const string DeleteMessages = "DELETE FROM messages WHERE task_id = $task_id AND (state <> 2 OR due_at <= $now);";

    private const string RunNow = "UPDATE messages SET state = 0, due_at = $now WHERE task_id = $task_id AND state = 1 RETURNING queue;";

    // Finished states, newest first; the cursor is the row id. $mode: 0 any, 1 not revoked, 2 revoked.
    private const string ListStates = """
        SELECT id, body FROM states
        WHERE expires_at > $now AND id < $after
          AND json_extract(CAST(body AS TEXT), '$.State') = $state
          AND ($name IS NULL OR json_extract(CAST(body AS TEXT), '$.TaskName') = $name)
          AND ($mode = 0
               OR ($mode = 1 AND substr(coalesce(json_extract(CAST(body AS TEXT), '$.Error'), ''), 1, 7) <> 'revoked')
               OR ($mode = 2 AND substr(coalesce(json_extract(CAST(body AS TEXT), '$.Error'), ''), 1, 7) = 'revoked'))
        ORDER BY id DESC LIMIT $limit;
        """;

    private const string InsertRevocation = "INSERT INTO revocations (task_id, expires_at) VALUES ($task_id, $expires_at);";

    private const string SweepRevocations = "DELETE FROM revocations WHERE expires_at <= $now;";

    private const string ReadRevocations = "SELECT seq, task_id FROM revocations WHERE seq > $after AND expires_at > $now ORDER BY seq LIMIT 10000;";

    private const string ReadPaused = "SELECT queue FROM paused_queues ORDER BY queue;";

    private const string Pause = "INSERT OR IGNORE INTO paused_queues (queue) VALUES ($queue);";

    private const string Resume = "DELETE FROM paused_queues WHERE queue = $queue;";

    private const string UpsertWorker = """
        INSERT INTO workers (name, expires_at, body) VALUES ($name, $expires_at, $body)
        ON CONFLICT (name) DO UPDATE SET expires_at = excluded.expires_at, body = excluded.body;
        """;

    private const string DeleteWorker = "DELETE FROM workers WHERE name = $name OR expires_at <= $now;";

    // Expired progress reports and unique keys are only filtered on read; a worker's heartbeat sweeps them now and then.
    private const string SweepProgress = "DELETE FROM progress WHERE expires_at <= $now;";

    private const string SweepUniqueKeys = "DELETE FROM unique_keys WHERE expires_at <= $now;";

    /// <summary>How often a heartbeat also sweeps expired progress reports and unique keys.</summary>
    internal static readonly TimeSpan SweepInterval = TimeSpan.FromMinutes(1);

    private const string ReadWorkers = "SELECT body FROM workers WHERE expires_at > $now ORDER BY name;";

    private const string UpsertProgress = """
        INSERT INTO progress (task_id, expires_at, body) VALUES ($task_id, $expires_at, $body)
        ON CONFLICT (task_id) DO UPDATE SET expires_at = excluded.expires_at, body = excluded.body;
        """;

    private const string ReadProgress = "SELECT body FROM progress WHERE task_id = $task_id AND expires_at > $now;";

    private readonly SqliteStore _store;
    private readonly TimeProvider _time;
    private readonly bool _ownsBroker;
    private readonly SemaphoreSlim _schemaGate = new(1, 1);
    private readonly Lock _gate = new();
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile bool _schemaReady;
    private int _disposed;
    private long _nextSweepMs;

    /// <summary>Creates the store. Does no I/O: its tables are created on first use.</summary>
    /// <param name="options">The settings; <see cref="SqliteConveyorOptions.DatabasePath"/> is required, <see cref="SqliteConveyorOptions.ResultTtl"/> is the retention.</param>
    /// <param name="ownsBroker">Whether the file is the broker's too, so that the store lists its messages.</param>
    /// <param name="timeProvider">The clock; the system clock when <see langword="null"/>.</param>
    /// <param name="loggerFactory">Logging; none when <see langword="null"/>.</param>
    public SqliteManagementStore(SqliteConveyorOptions options, bool ownsBroker = true, TimeProvider? timeProvider = null, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _time = timeProvider ?? TimeProvider.System;
        _ownsBroker = ownsBroker;
        Retention = options.ResultTtl;
        _store = SqliteStore.Acquire(options, _time, loggerFactory ?? NullLoggerFactory.Instance);
    }

    /// <inheritdoc/>
    public ManagementCapabilities Capabilities => (_ownsBroker ? ManagementCapabilities.Messages : ManagementCapabilities.None) | ManagementCapabilities.States;

    /// <inheritdoc/>
    public TimeSpan Retention { get; }

    private long NowMs => _time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <inheritdoc/>
    public async ValueTask<TaskPage> ListMessagesAsync(string queue, TaskQuery query, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(queue);
        ArgumentNullException.ThrowIfNull(query);
        await EnsureSchemaAsync(cancellationToken).ConfigureAwait(false);
        var sql = query.State switch
        {
            ManagedTaskState.Pending => ListPending,
            ManagedTaskState.Scheduled => ListScheduled,
            ManagedTaskState.Active => ListActive,
            _ => throw new ArgumentException($"{query.State} is not a message state.", nameof(query)),
        };
        var (p, id) = ParseCursor(query.After, query.State == ManagedTaskState.Pending ? 256 : -1);
        var found = new List<TaskSummary>();
        string? next = null;

        // Rows are read in slices and filtered by name here (a body is JSON to parse), until the page is full.
        while (true)
        {
            const int Slice = 200;
            var rows = await _store.ReadAsync((Sql: sql, Queue: queue, P: p, Id: id, Now: NowMs), static (connection, s) =>
            {
                var rows = new List<(long Id, long Priority, long DueAt, string? Owner, int Deliveries, byte[] Body)>();
                using var reader = connection.Command(s.Sql).With("$queue", s.Queue).With("$now", s.Now).With("$p", s.P).With("$id", s.Id).With("$limit", Slice).ExecuteReader();
                while (reader.Read())
                {
                    rows.Add((reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), reader.IsDBNull(3) ? null : reader.GetString(3), reader.GetInt32(4), reader.GetBytes(6)));
                }

                return rows;
            }, cancellationToken).ConfigureAwait(false);

            foreach (var row in rows)
            {
                (p, id) = (query.State == ManagedTaskState.Scheduled ? row.DueAt : row.Priority, row.Id);
                var summary = TaskSummary.FromMessage(row.Body, queue, query.State, row.Id.ToString(CultureInfo.InvariantCulture));
                if (query.Name is { } name && summary.Name != name)
                {
                    continue;
                }

                if (found.Count == query.Limit)
                {
                    return new TaskPage(found, next);
                }

                found.Add(query.State == ManagedTaskState.Active ? summary with { Worker = row.Owner, Attempts = Math.Max(summary.Attempts, row.Deliveries) } : summary);
                next = string.Create(CultureInfo.InvariantCulture, $"{p}:{id}");
            }

            if (rows.Count < Slice)
            {
                return new TaskPage(found, null);
            }
        }
    }

    /// <inheritdoc/>
    public async ValueTask<IReadOnlyList<(TaskSummary Summary, ReadOnlyMemory<byte> Body)>> FindMessagesAsync(string taskId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(taskId);
        return await _store.ReadAsync((TaskId: taskId, Now: NowMs), static (connection, s) =>
        {
            var found = new List<(TaskSummary, ReadOnlyMemory<byte>)>();
            using var reader = connection.Command(FindMessages).With("$task_id", s.TaskId).ExecuteReader();
            while (reader.Read())
            {
                var state = reader.GetInt32(1);
                var dueAt = reader.GetInt64(2);
                var managed = state == Sql.Ready || dueAt <= s.Now ? ManagedTaskState.Pending : state == Sql.Delayed ? ManagedTaskState.Scheduled : ManagedTaskState.Active;
                var body = reader.GetBytes(5);
                var summary = TaskSummary.FromMessage(body, reader.GetString(0), managed, s.TaskId);
                if (managed == ManagedTaskState.Active)
                {
                    summary = summary with { Worker = reader.IsDBNull(3) ? null : reader.GetString(3), Attempts = Math.Max(summary.Attempts, reader.GetInt32(4)) };
                }

                found.Add((summary, body));
            }

            return (IReadOnlyList<(TaskSummary, ReadOnlyMemory<byte>)>)found;
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async ValueTask<int> DeleteMessagesAsync(string taskId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(taskId);
        return await _store.WriteAsync((TaskId: taskId, Now: NowMs), static (context, s) =>
            context.Command(DeleteMessages).With("$task_id", s.TaskId).With("$now", s.Now).ExecuteNonQuery(), cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async ValueTask<int> RunNowAsync(string taskId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(taskId);
        return await _store.WriteAsync((TaskId: taskId, Now: NowMs), static (context, s) =>
        {
            var queues = new List<string>();
            using (var reader = context.Command(RunNow).With("$task_id", s.TaskId).With("$now", s.Now).ExecuteReader())
            {
                while (reader.Read())
                {
                    queues.Add(reader.GetString(0));
                }
            }

            // Consumers in every process notice the queue's new version.
            foreach (var queue in queues)
            {
                context.QueueChanged(queue);
            }

            return queues.Count;
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async ValueTask<TaskPage> ListStatesAsync(TaskQuery query, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(query);
        var (state, mode) = query.State switch
        {
            ManagedTaskState.Succeeded => ("SUCCESS", 0),
            ManagedTaskState.Failed => ("FAILURE", 1),
            ManagedTaskState.Revoked => ("FAILURE", 2),
            _ => throw new ArgumentException($"{query.State} is not a finished state.", nameof(query)),
        };
        var after = query.After is { Length: > 0 } cursor && long.TryParse(cursor, NumberStyles.None, CultureInfo.InvariantCulture, out var parsed) ? parsed : long.MaxValue;
        var rows = await _store.ReadAsync((State: state, Mode: mode, query.Name, After: after, Limit: query.Limit + 1, Now: NowMs), static (connection, s) =>
        {
            var rows = new List<(long Id, byte[] Body)>();
            using var reader = connection.Command(ListStates)
                .With("$state", s.State).With("$mode", s.Mode).With("$name", s.Name).With("$after", s.After).With("$limit", s.Limit).With("$now", s.Now)
                .ExecuteReader();
            while (reader.Read())
            {
                rows.Add((reader.GetInt64(0), reader.GetBytes(1)));
            }

            return rows;
        }, cancellationToken).ConfigureAwait(false);
        var more = rows.Count > query.Limit;
        var page = rows.Take(query.Limit).ToList();
        var tasks = new List<TaskSummary>(page.Count);
        foreach (var (_, body) in page)
        {
            try
            {
                tasks.Add(TaskSummary.FromState(Serialization.WireFormat.DeserializeState(body)));
            }
            catch (WireFormatException)
            {
                // A state that is not machinery JSON is not listed.
            }
        }

        return new TaskPage(tasks, more ? page[^1].Id.ToString(CultureInfo.InvariantCulture) : null);
    }

    /// <inheritdoc/>
    public async ValueTask RevokeAsync(IReadOnlyList<string> taskIds, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(taskIds);
        await EnsureSchemaAsync(cancellationToken).ConfigureAwait(false);
        await _store.WriteAsync((Ids: taskIds, Now: NowMs, Expires: NowMs + (long)Retention.TotalMilliseconds), static (context, s) =>
        {
            context.Command(SweepRevocations).With("$now", s.Now).ExecuteNonQuery();
            foreach (var id in s.Ids)
            {
                context.Command(InsertRevocation).With("$task_id", id).With("$expires_at", s.Expires).ExecuteNonQuery();
            }

            return 0;
        }, cancellationToken).ConfigureAwait(false);
        Signal();
    }

    /// <inheritdoc/>
    public async ValueTask SetPausedAsync(string queue, bool paused, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(queue);
        await EnsureSchemaAsync(cancellationToken).ConfigureAwait(false);
        await _store.WriteAsync((Queue: queue, Paused: paused), static (context, s) =>
            context.Command(s.Paused ? Pause : Resume).With("$queue", s.Queue).ExecuteNonQuery(), cancellationToken).ConfigureAwait(false);
        Signal();
    }

    /// <inheritdoc/>
    public async ValueTask<ControlChanges> ReadControlAsync(long after, CancellationToken cancellationToken = default)
    {
        await EnsureSchemaAsync(cancellationToken).ConfigureAwait(false);
        return await _store.ReadAsync((After: after, Now: NowMs), static (connection, s) =>
        {
            var cursor = s.After == long.MaxValue ? 0 : s.After;
            var revoked = new List<string>();
            if (s.After != long.MaxValue)
            {
                using var reader = connection.Command(ReadRevocations).With("$after", s.After).With("$now", s.Now).ExecuteReader();
                while (reader.Read())
                {
                    cursor = reader.GetInt64(0);
                    revoked.Add(reader.GetString(1));
                }
            }

            var paused = new List<string>();
            using (var reader = connection.Command(ReadPaused).ExecuteReader())
            {
                while (reader.Read())
                {
                    paused.Add(reader.GetString(0));
                }
            }

            return new ControlChanges(cursor, revoked, paused);
        }, cancellationToken).ConfigureAwait(false);
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
            // Another process may have changed it: the caller reads.
        }
    }

    /// <inheritdoc/>
    public async ValueTask HeartbeatAsync(WorkerInfo worker, TimeSpan ttl, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(worker);
        await EnsureSchemaAsync(cancellationToken).ConfigureAwait(false);
        var now = NowMs;
        var next = Interlocked.Read(ref _nextSweepMs);
        var sweep = now >= next && Interlocked.CompareExchange(ref _nextSweepMs, now + (long)SweepInterval.TotalMilliseconds, next) == next;
        await _store.WriteAsync((worker.Name, Body: ManagementJson.Serialize(worker), Expires: now + (long)ttl.TotalMilliseconds, Now: now, Sweep: sweep), static (context, s) =>
        {
            if (s.Sweep)
            {
                context.Command(SweepProgress).With("$now", s.Now).ExecuteNonQuery();
                context.Command(SweepUniqueKeys).With("$now", s.Now).ExecuteNonQuery();
            }

            return context.Command(UpsertWorker).With("$name", s.Name).With("$expires_at", s.Expires).With("$body", s.Body).ExecuteNonQuery();
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async ValueTask RemoveWorkerAsync(string name, CancellationToken cancellationToken = default)
    {
        await EnsureSchemaAsync(cancellationToken).ConfigureAwait(false);
        await _store.WriteAsync((Name: name, Now: NowMs), static (context, s) =>
            context.Command(DeleteWorker).With("$name", s.Name).With("$now", s.Now).ExecuteNonQuery(), cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async ValueTask<IReadOnlyList<WorkerInfo>> ListWorkersAsync(CancellationToken cancellationToken = default)
    {
        await EnsureSchemaAsync(cancellationToken).ConfigureAwait(false);
        return await _store.ReadAsync(NowMs, static (connection, now) =>
        {
            var workers = new List<WorkerInfo>();
            using var reader = connection.Command(ReadWorkers).With("$now", now).ExecuteReader();
            while (reader.Read())
            {
                if (ManagementJson.DeserializeWorker(reader.GetBlob(0)) is { } worker)
                {
                    workers.Add(worker);
                }
            }

            return (IReadOnlyList<WorkerInfo>)workers;
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async ValueTask SetProgressAsync(string taskId, TaskProgress progress, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(progress);
        await EnsureSchemaAsync(cancellationToken).ConfigureAwait(false);
        await _store.WriteAsync((TaskId: taskId, Body: ManagementJson.Serialize(progress), Expires: NowMs + (long)Retention.TotalMilliseconds), static (context, s) =>
            context.Command(UpsertProgress).With("$task_id", s.TaskId).With("$expires_at", s.Expires).With("$body", s.Body).ExecuteNonQuery(), cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async ValueTask<TaskProgress?> GetProgressAsync(string taskId, CancellationToken cancellationToken = default)
    {
        await EnsureSchemaAsync(cancellationToken).ConfigureAwait(false);
        return await _store.ReadAsync((TaskId: taskId, Now: NowMs), static (connection, s) =>
        {
            using var reader = connection.Command(ReadProgress).With("$task_id", s.TaskId).With("$now", s.Now).ExecuteReader();
            return reader.Read() ? ManagementJson.DeserializeProgress(reader.GetBlob(0)) : null;
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async ValueTask<string?> ClaimUniqueAsync(string key, string taskId, TimeSpan ttl, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        await EnsureSchemaAsync(cancellationToken).ConfigureAwait(false);
        return await _store.WriteAsync((Key: key, TaskId: taskId, Now: NowMs, Expires: NowMs + (long)ttl.TotalMilliseconds), static (context, s) =>
        {
            if (context.Command(ClaimUnique).With("$key", s.Key).With("$task_id", s.TaskId).With("$expires_at", s.Expires).With("$now", s.Now).ExecuteNonQuery() == 1)
            {
                return null;
            }

            using var reader = context.Command(SelectUnique).With("$key", s.Key).ExecuteReader();
            return reader.Read() ? reader.GetString(0) : null;
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async ValueTask ReleaseUniqueAsync(string key, string taskId, CancellationToken cancellationToken = default)
    {
        await EnsureSchemaAsync(cancellationToken).ConfigureAwait(false);
        await _store.WriteAsync((Key: key, TaskId: taskId), static (context, s) =>
            context.Command(ReleaseUnique).With("$key", s.Key).With("$task_id", s.TaskId).ExecuteNonQuery(), cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async ValueTask<TokenReservation> ReserveTokenAsync(string bucket, double ratePerSecond, int burst, TimeSpan maxWait, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(bucket);
        await EnsureSchemaAsync(cancellationToken).ConfigureAwait(false);

        // Read and update in one write transaction: the single writer of each process and SQLite's write lock
        // across processes make it atomic. Every process's clock is the same machine's.
        return await _store.WriteAsync((Key: bucket, Now: NowMs, Rate: ratePerSecond, Burst: burst, MaxWait: maxWait), static (context, s) =>
        {
            double tokens = s.Burst;
            long at = s.Now;
            using (var reader = context.Command(SelectBucket).With("$key", s.Key).ExecuteReader())
            {
                if (reader.Read())
                {
                    tokens = reader.GetInt64(0) / 1e6; // millionths of a token: an integer column
                    at = reader.GetInt64(1);
                }
            }

            var reservation = TokenBucket.Reserve(ref tokens, s.Now - at, s.Rate, s.Burst, s.MaxWait);
            if (reservation.Granted)
            {
                context.Command(UpsertBucket).With("$key", s.Key).With("$tokens", (long)Math.Round(tokens * 1e6)).With("$now", s.Now).ExecuteNonQuery();
            }

            return reservation;
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Gives the file back (the last user closes it).</summary>
    /// <returns>A task that completes when it is released.</returns>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            await _store.ReleaseAsync().ConfigureAwait(false);
            _schemaGate.Dispose();
        }
    }

    private static (long P, long Id) ParseCursor(string? cursor, long first)
    {
        if (cursor is { Length: > 0 } && cursor.Split(':') is [var p, var id]
            && long.TryParse(p, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var pv)
            && long.TryParse(id, NumberStyles.None, CultureInfo.InvariantCulture, out var idv))
        {
            return (pv, idv);
        }

        return (first, 0);
    }

    private async ValueTask EnsureSchemaAsync(CancellationToken cancellationToken)
    {
        if (_schemaReady)
        {
            return;
        }

        await _schemaGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (!_schemaReady)
            {
                await _store.WriteAsync(0, static (context, _) =>
                {
                    foreach (var statement in Schema)
                    {
                        context.Command(statement).ExecuteNonQuery();
                    }

                    return 0;
                }, cancellationToken).ConfigureAwait(false);
                _schemaReady = true;
            }
        }
        finally
        {
            _schemaGate.Release();
        }
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
