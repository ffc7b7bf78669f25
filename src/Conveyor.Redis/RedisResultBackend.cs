using System.Collections.Concurrent;
using System.Globalization;
using Conveyor.Redis.Internal;
using Conveyor.Serialization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;

namespace Conveyor.Redis;

/// <summary>
/// A result backend on Redis with Go machinery's layout: a task's state is a string key named after the task id
/// holding machinery's JSON, written with <c>SET … EX</c> (<see cref="RedisConveyorOptions.ResultTtl"/>); a group's
/// meta is the same under the group id.
/// </summary>
/// <remarks>
/// <para>
/// A state write is one script that keeps the stored record's <c>CreatedAt</c> (machinery does a GET then a SET)
/// and publishes the state's name on <c>conveyor:state:{task id}</c> when somebody waits for it.
/// <see cref="WaitForChangeAsync"/> registers that channel in <c>conveyor:watched</c> and subscribes to it (one
/// subscription per task id and process, shared by its waiters, dropped a few seconds after the last one), so a
/// waiter wakes as soon as the state is written, and a state nobody waits for costs no PUBLISH; with
/// <see cref="RedisConveyorOptions.UseKeyspaceNotifications"/> it listens to the key's keyspace events instead.
/// </para>
/// <para>
/// The chord counter is one script per member over a set of completed members (<c>conveyor:group:{id}:members</c>)
/// and a hash with the failure count, the trigger mark and a cursor over the members' states
/// (<c>conveyor:group:{id}:progress</c>): idempotent per member and O(1) amortized, where machinery reads every
/// member's state for every member. The cursor counts the members that Go machinery workers ran (they write
/// states only), so a chord completes whichever side runs its last member. The claim of the callback is
/// machinery's: <c>ChordTriggered</c> in the group meta, set under machinery's <c>TriggerChordMutex</c>.
/// </para>
/// </remarks>
public sealed partial class RedisResultBackend : IResultBackend
{
    private const int ChordMutexTries = 32;
    private static readonly TimeSpan SubscriptionLinger = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan WatchRegistrationLifetime = TimeSpan.FromHours(1);
    private static readonly byte[] CreatedAtProperty = "\"CreatedAt\":\""u8.ToArray();

    private readonly IConnectionMultiplexer _multiplexer;
    private readonly RedisConveyorOptions _options;
    private RedisKeys? _layout;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private const int MaxRememberedCreatedAt = 100_000;

    private readonly ConcurrentDictionary<string, Watch> _watches = new(StringComparer.Ordinal);
    private static readonly RedisValue FlagState = "S";
    private static readonly RedisValue FlagFull = "F";
    private static readonly RedisValue FlagAck = "A";
    private static readonly RedisValue FlagStateAck = "SA";
    private static readonly RedisValue FlagFullAck = "FA";

    private readonly ConcurrentDictionary<string, byte[]> _createdAt = new(StringComparer.Ordinal);
    private readonly string _stateChannelPrefix;
    private readonly Lock _gate = new();
    private readonly RedisValue _ttlSeconds;
    private readonly long _ttlMilliseconds;
    private ITimer? _sweeper;
    private bool _disposed;

    /// <summary>Creates a backend. It does no I/O until used.</summary>
    /// <param name="multiplexer">The process's connection to Redis; the backend never disposes it.</param>
    /// <param name="options">Settings.</param>
    /// <param name="timeProvider">The clock; the system clock when <see langword="null"/>.</param>
    /// <param name="loggerFactory">Logging; none when <see langword="null"/>.</param>
    public RedisResultBackend(IConnectionMultiplexer multiplexer, RedisConveyorOptions options, TimeProvider? timeProvider = null, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(multiplexer);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _multiplexer = multiplexer;
        _options = options;
        _time = timeProvider ?? TimeProvider.System;
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<RedisResultBackend>();
        _ttlSeconds = (long)Math.Ceiling(options.ResultTtl.TotalSeconds);
        _ttlMilliseconds = (long)Math.Ceiling(options.ResultTtl.TotalMilliseconds);
        _stateChannelPrefix = options.KeyPrefix + RedisKeys.StateChannelPrefix;
    }

    /// <inheritdoc/>
    public ResultBackendCapabilities Capabilities =>
        ResultBackendCapabilities.ChangeNotifications | ResultBackendCapabilities.ResultExpiry | ResultBackendCapabilities.Distributed;

    private IDatabase Database => _multiplexer.GetDatabase();

    /// <summary>The key layout, settled at first use (constructors touch no connection).</summary>
    private RedisKeys Keys => _layout ??= RedisClusterMode.KeysFor(_multiplexer, _options);

    /// <inheritdoc/>
    public async ValueTask SetStateAsync(TaskStateRecord state, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(state);
        var json = WireFormat.SerializeState(state);
        var (head, createdAt, tail) = SplitAtCreatedAt(json);
        var ttl = state.Ttl > 0 ? (RedisValue)state.Ttl : _ttlSeconds;
        await Database.ScriptEvaluateAsync(
            RedisScripts.SetState,
            [Keys.State(state.TaskId), Keys.WatchedFor(state.TaskId)],
            [head, createdAt, tail, ttl, _options.UseKeyspaceNotifications ? string.Empty : Keys.StateChannel(state.TaskId), state.State.ToWireName()]).ConfigureAwait(false);
        await ReplicaAcknowledgement.WaitAsync(Database, _options).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    /// <remarks>One script for the whole list: each state as <see cref="SetStateAsync"/> writes it, in order.</remarks>
    public async ValueTask SetStatesAsync(IReadOnlyList<TaskStateRecord> states, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(states);
        if (states.Count <= 1)
        {
            if (states.Count == 1)
            {
                await SetStateAsync(states[0], cancellationToken).ConfigureAwait(false);
            }

            return;
        }

        if (Keys.Cluster)
        {
            await SetEachAsync(states).ConfigureAwait(false);
            return;
        }

        var keys = new RedisKey[states.Count + 1];
        keys[0] = Keys.Watched;
        var values = new RedisValue[states.Count * 6];
        for (var i = 0; i < states.Count; i++)
        {
            var state = states[i];
            var (head, createdAt, tail) = SplitAtCreatedAt(WireFormat.SerializeState(state));
            keys[i + 1] = Keys.State(state.TaskId);
            var a = i * 6;
            values[a] = head;
            values[a + 1] = createdAt;
            values[a + 2] = tail;
            values[a + 3] = state.Ttl > 0 ? (RedisValue)state.Ttl : _ttlSeconds;
            values[a + 4] = _options.UseKeyspaceNotifications ? string.Empty : Keys.StateChannel(state.TaskId);
            values[a + 5] = state.State.ToWireName();
        }

        await Database.ScriptEvaluateAsync(RedisScripts.SetStates, keys, values).ConfigureAwait(false);
        await ReplicaAcknowledgement.WaitAsync(Database, _options).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    /// <remarks>
    /// One script for the batch: the states in order and, for deliveries of a <see cref="RedisBroker"/> on the same
    /// connection, the removal of each message from its consumer's in-flight list right after its state, so a state
    /// and its acknowledgement are stored together or not at all. The stored CreatedAt that a task's first state
    /// found is remembered until its final state, which then needs no read.
    /// </remarks>
    public async ValueTask SettleAsync(IReadOnlyList<Settlement> batch, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(batch);
        if (batch.Count == 0)
        {
            return;
        }

        if (Keys.Cluster)
        {
            await ClusterSettleAsync(batch).ConfigureAwait(false);
            return;
        }

        // The CreatedAt each task's states keep, where known: remembered from an earlier batch, or read by the fetch
        // of the message acknowledged in this one. Decided once per task, so all its states in the batch agree (the
        // script's per-key memory mirrors the reads below).
        var acks = new RedisDelivery?[batch.Count];
        var known = new byte[]?[batch.Count];
        var decided = new Dictionary<string, byte[]?>(StringComparer.Ordinal);
        for (var i = 0; i < batch.Count; i++)
        {
            acks[i] = AcknowledgedHere(batch[i].Ack);
            if (acks[i] is { TaskId: { } fetchedId, StoredCreatedAt: { } fetchedCreatedAt })
            {
                decided.TryAdd(fetchedId, fetchedCreatedAt);
            }
        }

        // Sized exactly: the arrays go to the wire as they are.
        var keyCount = 1;
        var valueCount = 2;
        for (var i = 0; i < batch.Count; i++)
        {
            var step = batch[i];
            if (step.State is { } state)
            {
                if (!decided.TryGetValue(state.TaskId, out var createdAt))
                {
                    createdAt = _createdAt.TryGetValue(state.TaskId, out var remembered) ? remembered : null;
                    decided[state.TaskId] = createdAt;
                }

                if (state.State.IsCompleted())
                {
                    _createdAt.TryRemove(state.TaskId, out _);
                }

                known[i] = createdAt;
                keyCount++;
                valueCount += createdAt is null ? 5 : 3;
            }

            if (acks[i] is not null)
            {
                keyCount++;
                valueCount++;
            }

            if (step.State is not null || acks[i] is not null)
            {
                valueCount++;
            }
        }

        if (keyCount == 1)
        {
            return;
        }

        var keys = new RedisKey[keyCount];
        var values = new RedisValue[valueCount];
        keys[0] = Keys.Watched;
        values[0] = _options.UseKeyspaceNotifications ? string.Empty : _stateChannelPrefix;
        values[1] = Keys.Prefix.Length;
        var k = 1;
        var v = 2;
        List<RedisDelivery>? acknowledged = null;
        HashSet<string>? read = null;
        HashSet<string>? finished = null;
        var readOrder = new List<string?>();
        RedisKey lastKey = default;
        string? lastTaskId = null;
        for (var i = 0; i < batch.Count; i++)
        {
            var step = batch[i];
            var ack = acks[i];
            if (step.State is null && ack is null)
            {
                continue;
            }

            var flagIndex = v++;
            if (step.State is { } state)
            {
                var json = WireFormat.SerializeState(state);
                if (!ReferenceEquals(state.TaskId, lastTaskId))
                {
                    // A task's RECEIVED and STARTED come together: one key string for both.
                    lastKey = Keys.State(state.TaskId);
                    lastTaskId = state.TaskId;
                }

                keys[k++] = lastKey;
                if (state.State.IsCompleted())
                {
                    (finished ??= new HashSet<string>(StringComparer.Ordinal)).Add(state.TaskId);
                }

                if (known[i] is { } createdAt)
                {
                    // The whole JSON with the stored CreatedAt: the script stores it as it is.
                    values[v++] = WithCreatedAt(json, createdAt);
                    values[v++] = state.Ttl > 0 ? (RedisValue)state.Ttl : _ttlSeconds;
                    values[v++] = state.State.ToWireName();
                    values[flagIndex] = ack is null ? FlagFull : FlagFullAck;
                }
                else
                {
                    // Mirrors the script's per-key memory: a key written once in the batch is never read again in it.
                    if ((read ??= new HashSet<string>(StringComparer.Ordinal)).Add(state.TaskId))
                    {
                        // The script reads this key's CreatedAt (once per key) and returns it; a final state's is not kept.
                        readOrder.Add(state.State.IsCompleted() ? null : state.TaskId);
                    }

                    var (head, ownCreatedAt, tail) = SplitAtCreatedAt(json);
                    values[v++] = head;
                    values[v++] = ownCreatedAt;
                    values[v++] = tail;
                    values[v++] = state.Ttl > 0 ? (RedisValue)state.Ttl : _ttlSeconds;
                    values[v++] = state.State.ToWireName();
                    values[flagIndex] = ack is null ? FlagState : FlagStateAck;
                }
            }
            else
            {
                values[flagIndex] = FlagAck;
            }

            if (ack is not null)
            {
                keys[k++] = ack.Owner.InFlightKey;
                values[v++] = ack.RawBody;
                (acknowledged ??= new List<RedisDelivery>(batch.Count)).Add(ack);
            }
        }

        var created = (RedisResult[])(await Database.ScriptEvaluateAsync(RedisScripts.Settle, keys, values).ConfigureAwait(false))!;
        await ReplicaAcknowledgement.WaitAsync(Database, _options).ConfigureAwait(false);
        if (created.Length > 0)
        {
            // One value per key the script read, in step order: remembered until the task's final state.
            var next = 0;
            foreach (var taskId in readOrder)
            {
                if (next >= created.Length)
                {
                    break;
                }

                var value = (RedisValue)created[next++];
                if (taskId is null || finished?.Contains(taskId) == true)
                {
                    continue; // a final state, or a task whose final state was in this batch too
                }

                if (_createdAt.Count >= MaxRememberedCreatedAt)
                {
                    // Tasks whose final state another process wrote leave entries behind: start over now and then.
                    _createdAt.Clear();
                }

                _createdAt[taskId] = (byte[])value!;
            }
        }

        if (acknowledged is not null)
        {
            foreach (var delivery in acknowledged)
            {
                delivery.MarkAcknowledged();
            }
        }
    }

    private RedisDelivery? AcknowledgedHere(IBrokerDelivery? delivery) =>
        delivery is RedisDelivery redis && redis.IsUnsettled && redis.Owner.Broker.Uses(_multiplexer) ? redis : null;

    /// <inheritdoc/>
    /// <remarks>
    /// With a <see cref="RedisBroker"/> on the same connection, one script for the batch stores each PENDING state
    /// (machinery's plain SET) and pushes each message that goes to its queue now; messages with an ETA ahead, or
    /// for another broker, take the default path.
    /// </remarks>
    public async ValueTask EnqueueAsync(IBroker broker, IReadOnlyList<PendingPublish> batch, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(broker);
        ArgumentNullException.ThrowIfNull(batch);
        if (Keys.Cluster)
        {
            // Each state and each message is in a slot of its own: the PENDING states first, then the messages.
            await DefaultEnqueueAsync(broker, batch, cancellationToken).ConfigureAwait(false);
            return;
        }

        if (broker is not RedisBroker redis || !redis.Uses(_multiplexer))
        {
            // Another broker (RabbitMQ, SQS): the PENDING states in one script, then the messages.
            await SetPendingAsync(batch).ConfigureAwait(false);
            await PublishAllAsync(broker, batch, cancellationToken).ConfigureAwait(false);
            return;
        }

        var immediate = 0;
        var targets = new RedisKey[batch.Count];
        var levels = new string[batch.Count];
        List<PendingPublish>? others = null;
        for (var i = 0; i < batch.Count; i++)
        {
            if (redis.TryGetImmediateTarget(batch[i].Message, out targets[i], out levels[i]))
            {
                immediate++;
            }
            else
            {
                (others ??= []).Add(batch[i]);
            }
        }

        var keys = new RedisKey[immediate * 3 + 2];
        var values = new RedisValue[immediate * 7 + 2];
        keys[0] = Keys.Watched;
        keys[1] = redis.Keys.Queues;
        values[0] = _options.UseKeyspaceNotifications ? string.Empty : _stateChannelPrefix;
        values[1] = Keys.Prefix.Length;
        var k = 2;
        var v = 2;
        for (var i = 0; i < batch.Count; i++)
        {
            if (levels[i] is not { Length: > 0 } level)
            {
                continue;
            }

            var item = batch[i];
            var state = item.State;
            var queue = redis.KeysOf(item.Message.Queue);
            keys[k++] = Keys.State(state.TaskId);
            keys[k++] = targets[i];
            keys[k++] = queue.PriorityLevels;
            values[v++] = WireFormat.SerializeState(state);
            values[v++] = state.Ttl > 0 ? (RedisValue)state.Ttl : _ttlSeconds;
            values[v++] = state.State.ToWireName();
            values[v++] = item.Message.Body;
            values[v++] = queue.Name;
            values[v++] = queue.Scope;
            values[v++] = level;
        }

        var pushed = immediate > 0 ? Database.ScriptEvaluateAsync(RedisScripts.Enqueue, keys, values) : null;
        if (others is not null)
        {
            await DefaultEnqueueAsync(broker, others, cancellationToken).ConfigureAwait(false);
        }

        if (pushed is not null)
        {
            await pushed.ConfigureAwait(false);
            await ReplicaAcknowledgement.WaitAsync(Database, _options).ConfigureAwait(false);
        }
    }

    private ValueTask DefaultEnqueueAsync(IBroker broker, IReadOnlyList<PendingPublish> batch, CancellationToken cancellationToken) =>
        ResultBackendDefaults.EnqueueAsync(this, broker, batch, cancellationToken);

    private async Task SetPendingAsync(IReadOnlyList<PendingPublish> batch)
    {
        var keys = new RedisKey[batch.Count + 1];
        var values = new RedisValue[batch.Count * 3 + 2];
        keys[0] = Keys.Watched;
        values[0] = _options.UseKeyspaceNotifications ? string.Empty : _stateChannelPrefix;
        values[1] = Keys.Prefix.Length;
        for (var i = 0; i < batch.Count; i++)
        {
            var state = batch[i].State;
            keys[i + 1] = Keys.State(state.TaskId);
            values[2 + i * 3] = WireFormat.SerializeState(state);
            values[3 + i * 3] = state.Ttl > 0 ? (RedisValue)state.Ttl : _ttlSeconds;
            values[4 + i * 3] = state.State.ToWireName();
        }

        await Database.ScriptEvaluateAsync(RedisScripts.SetPending, keys, values).ConfigureAwait(false);
    }

    private static async Task PublishAllAsync(IBroker broker, IReadOnlyList<PendingPublish> batch, CancellationToken cancellationToken)
    {
        if (batch.Count == 1)
        {
            await broker.PublishAsync(batch[0].Message, cancellationToken).ConfigureAwait(false);
            return;
        }

        var messages = new OutgoingMessage[batch.Count];
        for (var i = 0; i < messages.Length; i++)
        {
            messages[i] = batch[i].Message;
        }

        await broker.PublishBatchAsync(messages, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async ValueTask<TaskStateRecord?> GetStateAsync(string taskId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(taskId);
        using var value = await Database.StringGetLeaseAsync(Keys.State(taskId)).ConfigureAwait(false);
        return value is null ? null : WireFormat.DeserializeState(value.Span);
    }

    /// <inheritdoc/>
    public async ValueTask<IReadOnlyList<TaskStateRecord?>> GetStatesAsync(IReadOnlyList<string> taskIds, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(taskIds);
        if (taskIds.Count == 0)
        {
            return [];
        }

        var keys = new RedisKey[taskIds.Count];
        for (var i = 0; i < keys.Length; i++)
        {
            keys[i] = Keys.State(taskIds[i]);
        }

        if (Keys.Cluster)
        {
            return await GetEachAsync(keys).ConfigureAwait(false);
        }

        // One MGET, as machinery's GetGroupStates does.
        var values = await Database.StringGetAsync(keys).ConfigureAwait(false);
        var states = new TaskStateRecord?[values.Length];
        for (var i = 0; i < values.Length; i++)
        {
            states[i] = values[i].IsNull ? null : WireFormat.DeserializeState(((ReadOnlyMemory<byte>)values[i]).Span);
        }

        return states;
    }

    /// <inheritdoc/>
    public async ValueTask InitGroupAsync(GroupMeta meta, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(meta);
        var ttl = meta.Ttl > 0 ? TimeSpan.FromSeconds(meta.Ttl) : TimeSpan.FromSeconds((long)_ttlSeconds);
        await Database.StringSetAsync(Keys.GroupMeta(meta.GroupId), WireFormat.SerializeGroupMeta(meta), ttl).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async ValueTask<GroupMeta?> GetGroupMetaAsync(string groupId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(groupId);
        using var value = await Database.StringGetLeaseAsync(Keys.GroupMeta(groupId)).ConfigureAwait(false);
        return value is null ? null : WireFormat.DeserializeGroupMeta(value.Span);
    }

    /// <inheritdoc/>
    public async ValueTask<GroupCompletion> CompleteGroupMemberAsync(string groupId, string taskId, bool succeeded, string? traceParent = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(groupId);
        ArgumentException.ThrowIfNullOrEmpty(taskId);
        var result = (RedisResult[])(await Database.ScriptEvaluateAsync(
            RedisScripts.CompleteGroupMember,
            [Keys.GroupMembers(groupId), Keys.GroupProgress(groupId), Keys.GroupTraces(groupId), Keys.GroupMeta(groupId), Keys.GroupMemberIds(groupId)],
            [taskId, succeeded ? "1" : "0", _ttlMilliseconds, traceParent ?? string.Empty, Keys.Prefix, Keys.Cluster ? "1" : "0"]).ConfigureAwait(false))!;
        return new GroupCompletion((int)result[0], (int)result[1], (long)result[2] == 1, (long)result[3] == 1);
    }

    /// <inheritdoc/>
    /// <remarks>
    /// One script per try. While a Go worker holds machinery's <c>TriggerChordMutex</c> the script answers busy
    /// and the call tries again after 50–250 ms, 32 times at most: redsync's defaults for that mutex (whose lease is
    /// 8 s), so a claim waits about as long as a Go worker's would.
    /// </remarks>
    public async ValueTask<ChordClaim> ClaimChordAsync(string groupId, string claimantId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(groupId);
        ArgumentException.ThrowIfNullOrEmpty(claimantId);
        for (var attempt = 1; ; attempt++)
        {
            var outcome = (long)(await Database.ScriptEvaluateAsync(
                RedisScripts.ClaimChord,
                [Keys.ChordMutexFor(groupId), Keys.GroupMeta(groupId), Keys.GroupProgress(groupId)],
                [claimantId, _ttlSeconds, _ttlMilliseconds]).ConfigureAwait(false));
            switch (outcome)
            {
                case 1:
                    return ChordClaim.Won;
                case 2:
                    return ChordClaim.Resumed;
                case 0:
                    return ChordClaim.Lost;
                case -2:
                    throw new InvalidOperationException($"Chord {groupId} cannot be claimed: its group meta is missing (expired?).");
                case -3:
                    throw new InvalidOperationException($"Chord {groupId} cannot be claimed: its group meta has no ChordTriggered field.");
            }

            if (attempt >= ChordMutexTries)
            {
                throw new TimeoutException($"Chord {groupId} cannot be claimed: machinery's TriggerChordMutex stayed held through {ChordMutexTries} tries.");
            }

            await Task.Delay(TimeSpan.FromMilliseconds(Random.Shared.Next(50, 251)), _time, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc/>
    /// <remarks>
    /// One script: <c>HVALS</c> of the traces hash, or <c>HRANDFIELD</c> (any <paramref name="maxCount"/> members,
    /// each once) when the group has more members than that.
    /// </remarks>
    public async ValueTask<IReadOnlyList<string>> GetGroupMemberTraceParentsAsync(string groupId, int maxCount, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(groupId);
        ArgumentOutOfRangeException.ThrowIfNegative(maxCount);
        if (maxCount == 0)
        {
            return [];
        }

        var values = (RedisResult[])(await Database.ScriptEvaluateAsync(
            RedisScripts.GroupTraceParents,
            [Keys.GroupTraces(groupId)],
            [maxCount]).ConfigureAwait(false))!;
        var traceParents = new string[values.Length];
        for (var i = 0; i < values.Length; i++)
        {
            traceParents[i] = (string)values[i]!;
        }

        return traceParents;
    }

    /// <inheritdoc/>
    public async ValueTask MarkChordTriggeredAsync(string groupId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(groupId);
        await Database.ScriptEvaluateAsync(
            RedisScripts.MarkChordTriggered,
            [Keys.GroupProgress(groupId), Keys.GroupMeta(groupId)],
            [_ttlMilliseconds]).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    /// <remarks>
    /// A wait that finds no active subscription for the task starts one and also returns as soon as the
    /// subscription is confirmed (the caller then reads again), so a write that lands before Redis registered the
    /// subscription is not missed.
    /// </remarks>
    public async ValueTask WaitForChangeAsync(string taskId, TimeSpan maxWait, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(taskId);
        Task wake;
        Watch watch;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_watches.TryGetValue(taskId, out watch!))
            {
                watch = new Watch(taskId);
                _watches[taskId] = watch;
                Subscribe(watch);
                _sweeper ??= _time.CreateTimer(static state => ((RedisResultBackend)state!).Sweep(), this, SubscriptionLinger, SubscriptionLinger);
            }

            watch.Waiters++;
            wake = watch.Active ? watch.Changed.Task : Task.WhenAny(watch.Changed.Task, watch.Activated.Task);
        }

        try
        {
            await AsyncSignal.WaitAnyAsync(wake, maxWait, _time, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            lock (_gate)
            {
                watch.Waiters--;
                watch.LastUsed = _time.GetTimestamp();
            }
        }
    }

    /// <inheritdoc/>
    public async ValueTask<int?> CountRedeliveryAsync(string taskId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(taskId);
        return (int)(long)await Database.ScriptEvaluateAsync(RedisScripts.CountRedelivery, [Keys.Redeliveries(taskId)], [_ttlMilliseconds]).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async ValueTask DeleteStateAsync(string taskId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(taskId);
        await Database.KeyDeleteAsync(Keys.State(taskId)).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async ValueTask DeleteGroupAsync(string groupId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(groupId);
        await Database.KeyDeleteAsync([Keys.GroupMeta(groupId), Keys.GroupMembers(groupId), Keys.GroupProgress(groupId), Keys.GroupTraces(groupId), Keys.GroupMemberIds(groupId)]).ConfigureAwait(false);
    }

    /// <summary>Drops this backend's subscriptions. The multiplexer stays open.</summary>
    /// <returns>A task that completes when the subscriptions are dropped.</returns>
    public async ValueTask DisposeAsync()
    {
        Watch[] watches;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            watches = [.. _watches.Values];
            _watches.Clear();
        }

        if (_sweeper is not null)
        {
            await _sweeper.DisposeAsync().ConfigureAwait(false);
        }

        foreach (var watch in watches)
        {
            watch.Changed.TrySetResult();
            if (watch.Handler is not null)
            {
                try
                {
                    await _multiplexer.GetSubscriber().UnsubscribeAsync(watch.Channel, watch.Handler).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is RedisException or TimeoutException or ObjectDisposedException)
                {
                    // Gone with the connection.
                }
            }
        }
    }

    /// <summary>The state's JSON with <paramref name="createdAt"/> in place of its own CreatedAt value.</summary>
    private static byte[] WithCreatedAt(byte[] json, byte[] createdAt)
    {
        var (head, own, tail) = SplitAtCreatedAt(json);
        if (own.Span.SequenceEqual(createdAt))
        {
            return json;
        }

        var whole = new byte[head.Length + createdAt.Length + tail.Length];
        head.Span.CopyTo(whole);
        createdAt.CopyTo(whole.AsSpan(head.Length));
        tail.Span.CopyTo(whole.AsSpan(head.Length + createdAt.Length));
        return whole;
    }

    /// <summary>Splits machinery's state JSON around the CreatedAt value (the last <c>"CreatedAt":"</c>: it follows Results).</summary>
    private static (ReadOnlyMemory<byte> Head, ReadOnlyMemory<byte> CreatedAt, ReadOnlyMemory<byte> Tail) SplitAtCreatedAt(byte[] json)
    {
        var start = json.AsSpan().LastIndexOf(CreatedAtProperty);
        if (start < 0)
        {
            throw new InvalidOperationException("The serialized task state has no CreatedAt.");
        }

        var valueStart = start + CreatedAtProperty.Length;
        var valueEnd = json.AsSpan(valueStart).IndexOf((byte)'"') + valueStart;
        var memory = json.AsMemory();
        return (memory[..valueStart], memory[valueStart..valueEnd], memory[valueEnd..]);
    }

    private RedisChannel ChannelOf(string taskId) =>
        _options.UseKeyspaceNotifications
            ? RedisChannel.Literal("__keyspace@" + Database.Database.ToString(CultureInfo.InvariantCulture) + "__:" + (string)Keys.State(taskId)!)
            : RedisChannel.Literal(Keys.StateChannel(taskId));

    // Called under _gate.
    private void Subscribe(Watch watch)
    {
        watch.Channel = ChannelOf(watch.TaskId);
        watch.Handler = (_, _) =>
        {
            lock (_gate)
            {
                var changed = watch.Changed;
                watch.Changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                changed.TrySetResult();
            }
        };
        _ = SubscribeCoreAsync(watch);
    }

    private async Task SubscribeCoreAsync(Watch watch)
    {
        try
        {
            if (!_options.UseKeyspaceNotifications)
            {
                // Registered before the subscription: a state write publishes only to registered channels. Entries
                // that a dead process left behind are dropped an hour after their registration.
                var db = Database;
                var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
                var register = db.SortedSetAddAsync(Keys.WatchedFor(watch.TaskId), (string)watch.Channel!, now);
                _ = db.SortedSetRemoveRangeByScoreAsync(Keys.WatchedFor(watch.TaskId), double.NegativeInfinity, now - WatchRegistrationLifetime.TotalMilliseconds, flags: CommandFlags.FireAndForget);
                if (Keys.Cluster)
                {
                    // A set per task there: a waiter that dies leaves no set behind for longer than a registration.
                    _ = db.KeyExpireAsync(Keys.WatchedFor(watch.TaskId), WatchRegistrationLifetime, flags: CommandFlags.FireAndForget);
                }
                await register.ConfigureAwait(false);
                watch.RegisteredAt = _time.GetTimestamp();
            }

            await _multiplexer.GetSubscriber().SubscribeAsync(watch.Channel, watch.Handler!).ConfigureAwait(false);
            lock (_gate)
            {
                watch.Active = true;
            }
        }
        catch (Exception ex)
        {
            Log.SubscribeFailed(_logger, ex, watch.TaskId);
            lock (_gate)
            {
                // The next wait tries again; this one wakes now and its caller reads the state (polling).
                _watches.TryRemove(new KeyValuePair<string, Watch>(watch.TaskId, watch));
            }
        }
        finally
        {
            watch.Activated.TrySetResult();
        }
    }

    private void Sweep()
    {
        List<Watch> idle = [];
        lock (_gate)
        {
            foreach (var watch in _watches.Values)
            {
                if (watch.Waiters == 0 && watch.Active && _time.GetElapsedTime(watch.LastUsed) >= SubscriptionLinger)
                {
                    _watches.TryRemove(new KeyValuePair<string, Watch>(watch.TaskId, watch));
                    idle.Add(watch);
                }
            }
        }

        var subscriber = _multiplexer.GetSubscriber();
        foreach (var watch in idle)
        {
            subscriber.Unsubscribe(watch.Channel, watch.Handler, CommandFlags.FireAndForget);
            if (!_options.UseKeyspaceNotifications)
            {
                Database.SortedSetRemove(Keys.WatchedFor(watch.TaskId), (string)watch.Channel!, CommandFlags.FireAndForget);
            }
        }

        // A subscription that lives longer than a registration renews it.
        List<Watch> renew = [];
        lock (_gate)
        {
            foreach (var watch in _watches.Values)
            {
                if (watch.Active && watch.RegisteredAt != 0 && _time.GetElapsedTime(watch.RegisteredAt) >= WatchRegistrationLifetime / 2)
                {
                    watch.RegisteredAt = _time.GetTimestamp();
                    renew.Add(watch);
                }
            }
        }

        foreach (var watch in renew)
        {
            Database.SortedSetAdd(Keys.WatchedFor(watch.TaskId), (string)watch.Channel!, _time.GetUtcNow().ToUnixTimeMilliseconds(), CommandFlags.FireAndForget);
            if (Keys.Cluster)
            {
                Database.KeyExpire(Keys.WatchedFor(watch.TaskId), WatchRegistrationLifetime, flags: CommandFlags.FireAndForget);
            }
        }
    }

    private sealed class Watch(string taskId)
    {
        public string TaskId { get; } = taskId;

        public RedisChannel Channel { get; set; }

        public Action<RedisChannel, RedisValue>? Handler { get; set; }

        public int Waiters { get; set; }

        public bool Active { get; set; }

        public long LastUsed { get; set; }

        public long RegisteredAt { get; set; }

        public TaskCompletionSource Changed { get; set; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Activated { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
