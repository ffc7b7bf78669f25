using System.Collections.Concurrent;
using Conveyor.Serialization;
using Conveyor.Sqlite.Internal;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Conveyor.Sqlite;

/// <summary>
/// A result backend in a SQLite database file, shared by every process that opens the same file. States and group
/// metas are stored as machinery's JSON (the bytes machinery would store) and expire after
/// <see cref="SqliteConveyorOptions.ResultTtl"/>. The chord counter is one transaction per member completion:
/// a member row inserted or ignored, and the group's counter row updated, so a redelivered member counts once.
/// </summary>
/// <remarks>
/// <see cref="WaitForChangeAsync"/> ends at once when this process writes the state, and within the poll interval
/// (1 ms while the database is busy, up to <see cref="SqliteConveyorOptions.MaxPollInterval"/> when idle) when
/// another process does. The backend detects the change itself (the caller does not poll), so it declares
/// <see cref="ResultBackendCapabilities.ChangeNotifications"/>.
/// </remarks>
public sealed class SqliteResultBackend : IResultBackend
{
    private readonly SqliteStore _store;
    private readonly TimeProvider _time;
    private const int MaxCachedGroups = 1024;
    private readonly long _resultTtlMs;
    private const int MaxRememberedCreatedAt = 100_000;

    private readonly ConcurrentDictionary<string, IReadOnlyList<string>> _memberIds = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, DateTimeOffset> _createdAt = new(StringComparer.Ordinal);
    private int _disposed;

    /// <summary>Creates a backend. Does no I/O: the database is opened (and its schema created) on first use.</summary>
    /// <param name="options">The settings; <see cref="SqliteConveyorOptions.DatabasePath"/> is required.</param>
    /// <param name="timeProvider">The clock for expiry and polling; the system clock when <see langword="null"/>.</param>
    /// <param name="loggerFactory">Logging; none when <see langword="null"/>.</param>
    public SqliteResultBackend(SqliteConveyorOptions options, TimeProvider? timeProvider = null, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _time = timeProvider ?? TimeProvider.System;
        _resultTtlMs = Math.Max(1, (long)Math.Ceiling(options.ResultTtl.TotalMilliseconds));
        _store = SqliteStore.Acquire(options, _time, loggerFactory ?? NullLoggerFactory.Instance);
    }

    /// <inheritdoc/>
    public ResultBackendCapabilities Capabilities => ResultBackendCapabilities.ChangeNotifications | ResultBackendCapabilities.ResultExpiry | ResultBackendCapabilities.Distributed;

    private long NowMs => _time.GetUtcNow().ToUnixTimeMilliseconds();

    private static ReadOnlySpan<byte> SuccessState => "\"State\":\"SUCCESS\""u8;

    private static ReadOnlySpan<byte> FailureState => "\"State\":\"FAILURE\""u8;

    /// <summary>SUCCESS or FAILURE when the stored state JSON is final (machinery's compact JSON), else <see langword="null"/>.</summary>
    private static TaskState? FinalStateOf(ReadOnlySpan<byte> body) =>
        body.IndexOf(SuccessState) >= 0 ? TaskState.Success
        : body.IndexOf(FailureState) >= 0 ? TaskState.Failure
        : null;

    /// <summary>A group's member ids, parsed from its meta once per process (dropped when the group completes).</summary>
    private IReadOnlyList<string>? MemberIdsOf(WriteContext context, string groupId, long now)
    {
        if (_memberIds.TryGetValue(groupId, out var cached))
        {
            return cached.Count == 0 ? null : cached;
        }

        using var reader = context.Command(Sql.SelectGroupBody).With("$group_id", groupId).With("$now", now).ExecuteReader();

        // A group without a meta (a counter of completions only, such as the benchmark's) is remembered as such:
        // a group's meta is stored before any member is published, so it does not appear later.
        var ids = reader.Read() ? WireFormat.DeserializeGroupMeta(reader.GetBlob(0)).TaskIds : [];
        if (_memberIds.Count >= MaxCachedGroups)
        {
            _memberIds.Clear(); // a cache: a group that loses its entry parses its meta again
        }

        _memberIds[groupId] = ids;
        return ids.Count == 0 ? null : ids;
    }

    /// <inheritdoc/>
    /// <remarks>
    /// Every state goes to the writer at once, in list order (it takes them in that order, and commits them together
    /// with whatever else is waiting), and the call waits for the last commit: one commit instead of one per state.
    /// </remarks>
    public async ValueTask SetStatesAsync(IReadOnlyList<TaskStateRecord> states, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(states);
        ThrowIfDisposed();
        await _store.EnsureInitializedAsync(cancellationToken).ConfigureAwait(false); // then the writes queue in order
        var writes = new Task[states.Count];
        for (var i = 0; i < writes.Length; i++)
        {
            writes[i] = SetStateAsync(states[i], cancellationToken).AsTask();
        }

        await Task.WhenAll(writes).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    /// <remarks>The record expires <see cref="SqliteConveyorOptions.ResultTtl"/> after this write.</remarks>
    public ValueTask SetStateAsync(TaskStateRecord state, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(state);
        ArgumentException.ThrowIfNullOrEmpty(state.TaskId, nameof(state));
        ThrowIfDisposed();
        // Serialized here, on the caller's thread; the writer re-serializes only when it must keep an older CreatedAt.
        var body = WireFormat.SerializeState(state);
        return new ValueTask(_store.WriteAsync((Backend: this, State: state, Body: body), static (context, s) =>
        {
            s.Backend.WriteState(context, s.State, s.Body, known: false);
            return 0;
        }, cancellationToken));
    }

    /// <inheritdoc/>
    /// <remarks>
    /// One write for the batch, committed with whatever else is waiting: the states in order and, for deliveries of
    /// a <see cref="SqliteBroker"/> on the same file, each message's row deleted right after its state, in the same
    /// transaction. The CreatedAt that a task's first state found is remembered until its final state, which is then
    /// serialized right on the caller's thread and needs no read.
    /// </remarks>
    public async ValueTask SettleAsync(IReadOnlyList<Settlement> batch, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ThrowIfDisposed();
        if (batch.Count == 0)
        {
            return;
        }

        await _store.EnsureInitializedAsync(cancellationToken).ConfigureAwait(false);
        var steps = new SettleStep[batch.Count];
        for (var i = 0; i < steps.Length; i++)
        {
            var step = batch[i];
            var known = false;
            byte[]? body = null;
            var state = step.State;
            if (state is not null)
            {
                if (_createdAt.TryGetValue(state.TaskId, out var created))
                {
                    known = true;
                    if (state.State.IsCompleted())
                    {
                        _createdAt.TryRemove(state.TaskId, out _);
                    }

                    if (created != state.CreatedAt || created.Offset != state.CreatedAt.Offset)
                    {
                        state = CopyWithCreatedAt(state, created);
                    }
                }

                body = WireFormat.SerializeState(state);
            }

            long id = 0;
            string? owner = null;
            var acks = step.Ack is { } delivery && SqliteBroker.TryBeginAck(delivery, _store, out id, out owner);
            steps[i] = new SettleStep(state, body, known, acks ? step.Ack : null, id, owner);
        }

        bool[] held;
        try
        {
            held = await _store.WriteAsync((Backend: this, Steps: steps), static (context, s) =>
            {
                var held = new bool[s.Steps.Length];
                Dictionary<string, DateTimeOffset>? memo = null;
                for (var i = 0; i < s.Steps.Length; i++)
                {
                    var step = s.Steps[i];
                    if (step.State is { } state)
                    {
                        var known = step.Known;
                        var body = step.Body!;
                        if (!known && memo is not null && memo.TryGetValue(state.TaskId, out var created))
                        {
                            // This task's earlier state in the batch read it: no second read.
                            known = true;
                            if (created != state.CreatedAt || created.Offset != state.CreatedAt.Offset)
                            {
                                body = WireFormat.SerializeState(CopyWithCreatedAt(state, created));
                            }
                        }

                        var stored = s.Backend.WriteState(context, state, body, known);
                        if (!known)
                        {
                            (memo ??= new Dictionary<string, DateTimeOffset>(StringComparer.Ordinal))[state.TaskId] = stored;
                            step.StoredCreatedAt = stored;
                        }
                    }

                    if (step.Ack is not null)
                    {
                        held[i] = context.Command(Sql.Ack).With("$id", step.MessageId).With("$owner", step.LeaseOwner!).ExecuteNonQuery() == 1;
                    }
                }

                return held;
            }, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            foreach (var step in steps)
            {
                if (step.Ack is { } delivery)
                {
                    SqliteBroker.AbortAck(delivery);
                }
            }

            throw;
        }

        for (var i = 0; i < steps.Length; i++)
        {
            var step = steps[i];
            if (step.Ack is { } delivery)
            {
                SqliteBroker.EndAck(delivery, held[i]);
            }

            if (step.State is { } state && step.StoredCreatedAt is { } stored && !state.State.IsCompleted())
            {
                if (_createdAt.Count >= MaxRememberedCreatedAt)
                {
                    // Tasks whose final state another process wrote leave entries behind: start over now and then.
                    _createdAt.Clear();
                }

                _createdAt[state.TaskId] = stored;
            }
        }
    }

    /// <summary>
    /// Stores one state on the writer thread, keeping the first CreatedAt of the task (machinery's) unless the
    /// caller already put it in the body (<paramref name="known"/>). Returns the CreatedAt stored.
    /// </summary>
    private DateTimeOffset WriteState(WriteContext context, TaskStateRecord state, byte[] body, bool known)
    {
        var now = NowMs;
        var createdAt = state.CreatedAt;
        if (!known)
        {
            using var reader = context.Command(Sql.SelectCreatedAt).With("$task_id", state.TaskId).With("$now", now).ExecuteReader();
            if (reader.Read() && reader.GetInt64(0) != 0)
            {
                // Machinery keeps the first CreatedAt of a task across its states.
                var stored = new DateTimeOffset(reader.GetInt64(0), TimeSpan.Zero).ToOffset(TimeSpan.FromMinutes(reader.GetInt32(1)));
                if (stored != createdAt || stored.Offset != createdAt.Offset)
                {
                    createdAt = stored;
                    body = WireFormat.SerializeState(CopyWithCreatedAt(state, stored));
                }
            }
        }

        context.Command(Sql.UpsertState)
            .With("$task_id", state.TaskId)
            .With("$created_at", createdAt.UtcTicks)
            .With("$created_offset", (int)createdAt.Offset.TotalMinutes)
            .With("$expires_at", now + _resultTtlMs)
            .With("$change_seq", context.StateSeq)
            .With("$body", body)
            .ExecuteNonQuery();
        context.StateChanged(state.TaskId);
        return createdAt;
    }

    private static TaskStateRecord CopyWithCreatedAt(TaskStateRecord state, DateTimeOffset createdAt) => new()
    {
        TaskId = state.TaskId,
        TaskName = state.TaskName,
        State = state.State,
        Results = state.Results,
        Error = state.Error,
        CreatedAt = createdAt,
        Ttl = state.Ttl,
    };

    private sealed class SettleStep(TaskStateRecord? state, byte[]? body, bool known, IBrokerDelivery? ack, long messageId, string? leaseOwner)
    {
        public TaskStateRecord? State { get; } = state;

        public byte[]? Body { get; } = body;

        public bool Known { get; } = known;

        public IBrokerDelivery? Ack { get; } = ack;

        public long MessageId { get; } = messageId;

        public string? LeaseOwner { get; } = leaseOwner;

        public DateTimeOffset? StoredCreatedAt { get; set; }
    }

    /// <inheritdoc/>
    public ValueTask<TaskStateRecord?> GetStateAsync(string taskId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(taskId);
        ThrowIfDisposed();
        return _store.ReadAsync((Backend: this, TaskId: taskId), static (connection, s) =>
        {
            var now = s.Backend.NowMs;
            using var reader = connection.Command(Sql.SelectState).With("$task_id", s.TaskId).ExecuteReader();
            if (!reader.Read())
            {
                return null;
            }

            if (reader.GetInt64(1) <= now)
            {
                s.Backend.DeleteExpiredInBackground(s.TaskId, now);
                return null;
            }

            return WireFormat.DeserializeState(reader.GetBlob(0));
        }, cancellationToken);
    }

    /// <inheritdoc/>
    public ValueTask<IReadOnlyList<TaskStateRecord?>> GetStatesAsync(IReadOnlyList<string> taskIds, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(taskIds);
        ThrowIfDisposed();
        if (taskIds.Count == 0)
        {
            return ValueTask.FromResult<IReadOnlyList<TaskStateRecord?>>([]);
        }

        return _store.ReadAsync((Backend: this, TaskIds: taskIds), static (connection, s) =>
        {
            var now = s.Backend.NowMs;
            var found = new Dictionary<string, TaskStateRecord>(StringComparer.Ordinal);
            using (var reader = connection.Command(Sql.SelectStates).With("$ids", Json.StringArray(s.TaskIds)).ExecuteReader())
            {
                while (reader.Read())
                {
                    if (reader.GetInt64(2) > now)
                    {
                        found[reader.GetString(0)] = WireFormat.DeserializeState(reader.GetBlob(1));
                    }
                }
            }

            var states = new TaskStateRecord?[s.TaskIds.Count];
            for (var i = 0; i < states.Length; i++)
            {
                states[i] = found.GetValueOrDefault(s.TaskIds[i]);
            }

            return (IReadOnlyList<TaskStateRecord?>)states;
        }, cancellationToken);
    }

    /// <inheritdoc/>
    public async ValueTask InitGroupAsync(GroupMeta meta, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(meta);
        ArgumentException.ThrowIfNullOrEmpty(meta.GroupId, nameof(meta));
        ThrowIfDisposed();
        var body = WireFormat.SerializeGroupMeta(meta);
        await _store.WriteAsync((Backend: this, GroupId: meta.GroupId, Body: body), static (context, s) =>
            context.Command(Sql.UpsertGroup)
                .With("$group_id", s.GroupId)
                .With("$expires_at", s.Backend.NowMs + s.Backend._resultTtlMs)
                .With("$body", s.Body)
                .ExecuteNonQuery(), cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public ValueTask<GroupMeta?> GetGroupMetaAsync(string groupId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(groupId);
        ThrowIfDisposed();
        return _store.ReadAsync((Backend: this, GroupId: groupId), static (connection, s) =>
        {
            using var reader = connection.Command(Sql.SelectGroup).With("$group_id", s.GroupId).ExecuteReader();
            if (!reader.Read() || reader.GetInt64(1) <= s.Backend.NowMs)
            {
                return null;
            }

            var meta = WireFormat.DeserializeGroupMeta(reader.GetBlob(0));
            var triggered = !reader.IsDBNull(2) && reader.GetInt64(2) != 0;
            return triggered && !meta.ChordTriggered
                ? new GroupMeta { GroupId = meta.GroupId, TaskIds = meta.TaskIds, ChordTriggered = true, Lock = meta.Lock, CreatedAt = meta.CreatedAt, Ttl = meta.Ttl }
                : meta;
        }, cancellationToken);
    }

    /// <inheritdoc/>
    /// <remarks>
    /// Two statements in the writer's transaction when every member is recorded here; otherwise the cursor over the
    /// members' states (a member completed without a row, such as one finished by a process of a version that kept
    /// no counter) moves on from where it stopped. The member ids are parsed from the group meta once per process.
    /// </remarks>
    public async ValueTask<GroupCompletion> CompleteGroupMemberAsync(string groupId, string taskId, bool succeeded, string? traceParent = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(groupId);
        ArgumentException.ThrowIfNullOrEmpty(taskId);
        ThrowIfDisposed();
        return await _store.WriteAsync((Backend: this, GroupId: groupId, TaskId: taskId, Succeeded: succeeded, TraceParent: string.IsNullOrEmpty(traceParent) ? null : traceParent), static (context, s) =>
        {
            var now = s.Backend.NowMs;
            var first = context.Command(Sql.InsertMember)
                .With("$group_id", s.GroupId)
                .With("$task_id", s.TaskId)
                .With("$trace_parent", s.TraceParent)
                .ExecuteNonQuery() == 1;
            int completed, failed, scanned, peerFailed;
            bool triggered;
            using (var reader = context.Command(Sql.CountMember)
                .With("$group_id", s.GroupId)
                .With("$completed", first ? 1 : 0)
                .With("$failed", first && !s.Succeeded ? 1 : 0)
                .With("$expires_at", now + s.Backend._resultTtlMs)
                .ExecuteReader())
            {
                reader.Read();
                completed = (int)reader.GetInt64(0);
                failed = (int)reader.GetInt64(1);
                triggered = reader.GetInt64(2) != 0;
                scanned = (int)reader.GetInt64(3);
                peerFailed = (int)reader.GetInt64(4);
            }

            var ids = s.Backend.MemberIdsOf(context, s.GroupId, now);
            if (ids is not null && completed < ids.Count && scanned < ids.Count)
            {
                var start = scanned;
                while (scanned < ids.Count)
                {
                    var id = ids[scanned];
                    bool recorded;
                    using (var member = context.Command(Sql.IsMember).With("$group_id", s.GroupId).With("$task_id", id).ExecuteReader())
                    {
                        recorded = member.Read();
                    }

                    if (!recorded)
                    {
                        using var state = context.Command(Sql.SelectStateBody).With("$task_id", id).With("$now", now).ExecuteReader();
                        var final = state.Read() ? FinalStateOf(state.GetBlob(0)) : null;
                        if (final == TaskState.Failure)
                        {
                            peerFailed++;
                        }
                        else if (final != TaskState.Success)
                        {
                            break;
                        }
                    }

                    scanned++;
                }

                if (scanned != start)
                {
                    context.Command(Sql.UpdateScan).With("$group_id", s.GroupId).With("$scanned", scanned).With("$peer_failed", peerFailed).ExecuteNonQuery();
                }
            }

            completed = Math.Max(completed, scanned);
            if (ids is not null && completed >= ids.Count)
            {
                s.Backend._memberIds.TryRemove(s.GroupId, out _);
            }

            return new GroupCompletion(completed, failed + peerFailed, first, triggered);
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async ValueTask<ChordClaim> ClaimChordAsync(string groupId, string claimantId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(groupId);
        ArgumentException.ThrowIfNullOrEmpty(claimantId);
        ThrowIfDisposed();
        var outcome = await _store.WriteAsync((Backend: this, GroupId: groupId, Claimant: claimantId), static (context, s) =>
        {
            var now = s.Backend.NowMs;
            byte[]? body;
            using (var reader = context.Command(Sql.SelectGroupBody).With("$group_id", s.GroupId).With("$now", now).ExecuteReader())
            {
                body = reader.Read() ? reader.GetBytes(0) : null;
            }

            if (body is null)
            {
                return (ChordClaim?)null;
            }

            using (var reader = context.Command(Sql.SelectClaim).With("$group_id", s.GroupId).ExecuteReader())
            {
                if (reader.Read() && reader.GetInt64(0) != 0)
                {
                    return !reader.IsDBNull(1) && reader.GetString(1) == s.Claimant ? ChordClaim.Resumed : ChordClaim.Lost;
                }
            }

            var meta = WireFormat.DeserializeGroupMeta(body);
            if (meta.ChordTriggered)
            {
                return ChordClaim.Lost;
            }

            context.Command(Sql.Claim).With("$group_id", s.GroupId).With("$expires_at", now + s.Backend._resultTtlMs).With("$claimant", s.Claimant).ExecuteNonQuery();
            var triggered = new GroupMeta { GroupId = meta.GroupId, TaskIds = meta.TaskIds, ChordTriggered = true, Lock = meta.Lock, CreatedAt = meta.CreatedAt, Ttl = meta.Ttl };
            context.Command(Sql.UpdateGroupBody).With("$group_id", s.GroupId).With("$body", WireFormat.SerializeGroupMeta(triggered)).ExecuteNonQuery();
            return ChordClaim.Won;
        }, cancellationToken).ConfigureAwait(false);
        return outcome ?? throw new InvalidOperationException($"Chord {groupId} cannot be claimed: its group meta is missing (expired?).");
    }

    /// <inheritdoc/>
    public ValueTask<IReadOnlyList<string>> GetGroupMemberTraceParentsAsync(string groupId, int maxCount, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(groupId);
        ArgumentOutOfRangeException.ThrowIfNegative(maxCount);
        ThrowIfDisposed();
        if (maxCount == 0)
        {
            return ValueTask.FromResult<IReadOnlyList<string>>([]);
        }

        return _store.ReadAsync((GroupId: groupId, MaxCount: maxCount), static (connection, s) =>
        {
            var traceParents = new List<string>();
            using var reader = connection.Command(Sql.SelectMemberTraceParents).With("$group_id", s.GroupId).With("$limit", s.MaxCount).ExecuteReader();
            while (reader.Read())
            {
                traceParents.Add(reader.GetString(0));
            }

            return (IReadOnlyList<string>)traceParents;
        }, cancellationToken);
    }

    /// <inheritdoc/>
    public async ValueTask MarkChordTriggeredAsync(string groupId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(groupId);
        ThrowIfDisposed();
        await _store.WriteAsync((Backend: this, GroupId: groupId), static (context, s) =>
        {
            var now = s.Backend.NowMs;
            context.Command(Sql.MarkTriggered).With("$group_id", s.GroupId).With("$expires_at", now + s.Backend._resultTtlMs).ExecuteNonQuery();

            // Machinery records the trigger in the stored group meta too; keep those bytes what it would store.
            byte[]? body;
            using (var reader = context.Command(Sql.SelectGroupBody).With("$group_id", s.GroupId).With("$now", now).ExecuteReader())
            {
                body = reader.Read() ? reader.GetBytes(0) : null;
            }

            if (body is not null && WireFormat.DeserializeGroupMeta(body) is { ChordTriggered: false } meta)
            {
                var triggered = new GroupMeta { GroupId = meta.GroupId, TaskIds = meta.TaskIds, ChordTriggered = true, Lock = meta.Lock, CreatedAt = meta.CreatedAt, Ttl = meta.Ttl };
                context.Command(Sql.UpdateGroupBody).With("$group_id", s.GroupId).With("$body", WireFormat.SerializeGroupMeta(triggered)).ExecuteNonQuery();
            }

            return 0;
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    /// <remarks>A write by this process ends the wait at once; a write by another process ends it at the next poll.</remarks>
    public async ValueTask WaitForChangeAsync(string taskId, TimeSpan maxWait, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(taskId);
        ThrowIfDisposed();
        cancellationToken.ThrowIfCancellationRequested();
        if (maxWait <= TimeSpan.Zero && maxWait != Timeout.InfiniteTimeSpan)
        {
            return;
        }

        if (!_store.Poller.IsActive)
        {
            // Nobody polls, so the change number the waiter starts from may be old, and a row written since would
            // end the wait at the first poll although it was written before the call. Read the current number
            // first (one row; it also opens the database on first use, which does not wait unless another
            // thread of this process is opening it at the same moment).
            var current = _store.ReadAsync(0, static (connection, _) => connection.ScalarInt64(Sql.CurrentStateSeq), cancellationToken);
            if (current.IsCompleted)
            {
                if (current.GetAwaiter().GetResult() is long seq)
                {
                    _store.StateWatcher.UpdateSeq(seq);
                }
            }
            else
            {
                // Still opening: don't wait here (the wait must be registered before the first await); the worst
                // case is one early wake-up.
                _ = current.AsTask().ContinueWith(static task => _ = task.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
            }
        }

        // Registered before the first await: a write committed from here on ends the wait.
        var waiter = _store.StateWatcher.Register(taskId);
        waiter.Start(maxWait, _time, cancellationToken);
        _store.Poller.Subscribe();
        try
        {
            await waiter.Ended.ConfigureAwait(false);
        }
        finally
        {
            _store.StateWatcher.Unregister(waiter);
            _store.Poller.Unsubscribe();
            waiter.Dispose();
        }

        cancellationToken.ThrowIfCancellationRequested();
    }

    /// <inheritdoc/>
    public async ValueTask DeleteStateAsync(string taskId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(taskId);
        ThrowIfDisposed();
        await _store.WriteAsync(taskId, static (context, taskId) =>
        {
            context.StateChanged(taskId);
            return context.Command(Sql.DeleteState).With("$task_id", taskId).ExecuteNonQuery();
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async ValueTask DeleteGroupAsync(string groupId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(groupId);
        ThrowIfDisposed();
        await _store.WriteAsync(groupId, static (context, groupId) =>
            context.Command(Sql.DeleteGroup).With("$group_id", groupId).ExecuteNonQuery()
            + context.Command(Sql.DeleteGroupProgress).With("$group_id", groupId).ExecuteNonQuery()
            + context.Command(Sql.DeleteGroupMembers).With("$group_id", groupId).ExecuteNonQuery(), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Closes the database when no other component of this process uses it.</summary>
    /// <returns>A task that completes when the backend is closed.</returns>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            await _store.ReleaseAsync().ConfigureAwait(false);
        }
    }

    private void DeleteExpiredInBackground(string taskId, long now) =>
        _store.WriteInBackground((TaskId: taskId, Now: now), static (context, s) =>
            context.Command(Sql.DeleteExpiredState).With("$task_id", s.TaskId).With("$now", s.Now).ExecuteNonQuery());

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
}
