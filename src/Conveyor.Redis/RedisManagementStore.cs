using System.Globalization;
using System.Text;
using Conveyor.Redis.Internal;
using Conveyor.Serialization;
using StackExchange.Redis;

namespace Conveyor.Redis;

/// <summary>
/// The management store on Redis: lists the broker's lists and sorted sets (machinery's layout) and the backend's
/// state keys, and keeps the control state under <c>conveyor:</c> keys: revocations in a sorted set scored by a
/// sequence (<c>conveyor:revoked</c>, expiring as results do), paused queues in a set (<c>conveyor:paused</c>),
/// worker records in a hash with a sorted set of their expiries, and progress in <c>conveyor:progress:{id}</c>.
/// Every change is published on <c>conveyor:control</c>, so workers hear of it at once.
/// </summary>
/// <remarks>
/// Redis lists have no key to page by: pending and active pages are positions (a page may shift when messages are
/// consumed meanwhile); scheduled pages are ranks in the ETA-ordered sets; finished tasks come from a SCAN of the
/// state keys (no order, every key seen once per full pass). Finding a task by id reads the lists (a byte search for
/// the id, then a parse), so it costs the queue's length: it is for people, not programs.
/// </remarks>
public sealed partial class RedisManagementStore : IManagementStore
{
    // KEYS: revoked set, expiry set, sequence. ARGV: now (ms), TTL (ms), channel, ids…
    private const string RevokeScript = """
        local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, 1000)
        for _, id in ipairs(expired) do redis.call('ZREM', KEYS[1], id); redis.call('ZREM', KEYS[2], id) end
        for i = 4, #ARGV do
          redis.call('ZADD', KEYS[1], redis.call('INCR', KEYS[3]), ARGV[i])
          redis.call('ZADD', KEYS[2], tonumber(ARGV[1]) + tonumber(ARGV[2]), ARGV[i])
        end
        redis.call('PUBLISH', ARGV[3], 'revoke')
        return #ARGV - 3
        """;

    // SET NX or the holder, in one step. KEYS: the key. ARGV: task id, TTL (ms).
    private const string ClaimUniqueScript = """
        if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return false end
        return redis.call('GET', KEYS[1])
        """;

    // KEYS: the key. ARGV: task id.
    private const string ReleaseUniqueScript = """
        if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
        return 0
        """;

    // The token bucket, on Redis's clock (TIME) so that every worker machine shares one. KEYS: the bucket hash.
    // ARGV: rate (tokens per ms), burst, max wait (ms). Returns {granted, wait ms}.
    private const string ReserveTokenScript = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local rate = tonumber(ARGV[1])
        local burst = tonumber(ARGV[2])
        local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
        local tokens = tonumber(b[1]) or burst
        local at = tonumber(b[2]) or now
        if now > at then tokens = math.min(burst, tokens + (now - at) * rate) end
        local after = tokens - 1
        local wait = 0
        if after < 0 then wait = -after / rate end
        if wait > tonumber(ARGV[3]) then return {0, math.ceil(wait - tonumber(ARGV[3]))} end
        redis.call('HSET', KEYS[1], 'tokens', tostring(after), 'at', tostring(math.max(now, at)))
        redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate + tonumber(ARGV[3])) + 60000)
        return {1, math.ceil(wait)}
        """;

    private static readonly TimeSpan FallbackRead = TimeSpan.FromSeconds(5);

    private readonly IConnectionMultiplexer _multiplexer;
    private readonly RedisConveyorOptions _options;
    private RedisKeys? _layout;
    private readonly TimeProvider _time;
    private readonly bool _ownsBroker;
    private readonly Lock _gate = new();
    private readonly RedisKey _paused;
    private readonly RedisKey _workers;
    private readonly RedisKey _workersAlive;
    private readonly string _progressPrefix;
    private readonly RedisChannel _channel;
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task? _subscription;

    /// <summary>Creates the store. Does no I/O until used.</summary>
    /// <param name="multiplexer">The process's connection; never disposed here.</param>
    /// <param name="options">Settings: the key prefix, machinery's delayed set, and <see cref="RedisConveyorOptions.ResultTtl"/> as the retention.</param>
    /// <param name="ownsBroker">Whether this Redis is the broker too, so that the store lists its messages.</param>
    /// <param name="timeProvider">The clock; the system clock when <see langword="null"/>.</param>
    public RedisManagementStore(IConnectionMultiplexer multiplexer, RedisConveyorOptions options, bool ownsBroker = true, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(multiplexer);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _multiplexer = multiplexer;
        _time = timeProvider ?? TimeProvider.System;
        _ownsBroker = ownsBroker;
        Retention = options.ResultTtl;
        _options = options;
        var prefix = options.KeyPrefix;
        _paused = prefix + "conveyor:paused";
        _workers = prefix + "conveyor:workers";
        _workersAlive = prefix + "conveyor:workers_alive";
        _progressPrefix = prefix + "conveyor:progress:";
        _channel = RedisChannel.Literal(prefix + "conveyor:control");
    }

    /// <inheritdoc/>
    public ManagementCapabilities Capabilities => (_ownsBroker ? ManagementCapabilities.Messages : ManagementCapabilities.None) | ManagementCapabilities.States;

    /// <inheritdoc/>
    public TimeSpan Retention { get; }

    private IDatabase Db => _multiplexer.GetDatabase();

    /// <summary>The key layout, settled at first use (constructors touch no connection).</summary>
    private RedisKeys Keys => _layout ??= RedisClusterMode.KeysFor(_multiplexer, _options);

    private long NowMs => _time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <inheritdoc/>
    public async ValueTask<TaskPage> ListMessagesAsync(string queue, TaskQuery query, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(queue);
        ArgumentNullException.ThrowIfNull(query);
        var sources = await SourcesAsync(queue, query.State).ConfigureAwait(false);

        // The cursor: which source (a list or a set) and the position in it.
        var (source, position) = ParseCursor(query.After);
        var found = new List<TaskSummary>();
        const int Slice = 200;
        var db = Db;
        for (; source < sources.Count; source++, position = 0)
        {
            var (key, kind, worker) = sources[source];
            while (true)
            {
                RedisValue[] values;
                double[]? scores = null;
                if (kind == SourceKind.List)
                {
                    values = await db.ListRangeAsync(key, position, position + Slice - 1).ConfigureAwait(false);
                }
                else
                {
                    var entries = await db.SortedSetRangeByRankWithScoresAsync(key, position, position + Slice - 1).ConfigureAwait(false);
                    values = [.. entries.Select(e => e.Element)];
                    scores = [.. entries.Select(e => e.Score)];
                }

                for (var i = 0; i < values.Length; i++)
                {
                    var body = (ReadOnlyMemory<byte>)values[i];
                    if (kind == SourceKind.SharedDelayed && !RedisBroker.RoutesTo(body.Span, queue))
                    {
                        continue;
                    }

                    var summary = TaskSummary.FromMessage(body.Span, queue, query.State);
                    if (scores is not null && summary.Eta is null)
                    {
                        summary = summary with { Eta = DateTimeOffset.FromUnixTimeMilliseconds((long)(scores[i] / 1_000_000)) };
                    }

                    if (worker is not null)
                    {
                        summary = summary with { Worker = worker };
                    }

                    if (query.Name is { } name && summary.Name != name)
                    {
                        continue;
                    }

                    if (found.Count == query.Limit)
                    {
                        return new TaskPage(found, Cursor(source, position + i));
                    }

                    found.Add(summary);
                }

                if (values.Length < Slice)
                {
                    break;
                }

                position += Slice;
            }
        }

        return new TaskPage(found, null);
    }

    /// <inheritdoc/>
    public async ValueTask<IReadOnlyList<(TaskSummary Summary, ReadOnlyMemory<byte> Body)>> FindMessagesAsync(string taskId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(taskId);
        var found = new List<(TaskSummary, ReadOnlyMemory<byte>)>();
        await foreach (var (queue, state, _, body, worker) in ScanMessagesAsync(taskId, cancellationToken).ConfigureAwait(false))
        {
            var summary = TaskSummary.FromMessage(body.Span, queue, state, taskId);
            found.Add((worker is null ? summary : summary with { Worker = worker }, body));
        }

        return found;
    }

    /// <inheritdoc/>
    public async ValueTask<int> DeleteMessagesAsync(string taskId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(taskId);
        var db = Db;
        var deleted = 0;
        await foreach (var (_, state, key, body, _) in ScanMessagesAsync(taskId, cancellationToken).ConfigureAwait(false))
        {
            deleted += state switch
            {
                ManagedTaskState.Pending => (int)await db.ListRemoveAsync(key, body.ToArray(), 1).ConfigureAwait(false),
                ManagedTaskState.Scheduled => await db.SortedSetRemoveAsync(key, body.ToArray()).ConfigureAwait(false) ? 1 : 0,
                _ => 0,
            };
        }

        return deleted;
    }

    /// <inheritdoc/>
    public async ValueTask<int> RunNowAsync(string taskId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(taskId);
        var db = Db;
        var moved = 0;
        await foreach (var (queue, state, key, body, _) in ScanMessagesAsync(taskId, cancellationToken).ConfigureAwait(false))
        {
            // Whoever removes it from the set moves it: a mover that took it first has made it ready already.
            if (state != ManagedTaskState.Scheduled || !await db.SortedSetRemoveAsync(key, body.ToArray()).ConfigureAwait(false))
            {
                continue;
            }

            await db.ScriptEvaluateAsync(
                RedisScripts.Publish,
                Keys.PublishKeys(Keys.Queue(queue), queue),
                [body.ToArray(), queue, "0"]).ConfigureAwait(false);
            moved++;
        }

        return moved;
    }

    /// <inheritdoc/>
    public async ValueTask<TaskPage> ListStatesAsync(TaskQuery query, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(query);
        var db = Db;

        // On a cluster each master SCANs its own keys: the cursor is "master index:that master's cursor", the masters
        // in endpoint order. On a single Redis, one SCAN cursor as it is.
        var masters = Keys.Cluster
            ? _multiplexer.GetServers().Where(server => !server.IsReplica).OrderBy(server => server.EndPoint.ToString(), StringComparer.Ordinal).ToArray()
            : null;
        var node = 0;
        var cursor = 0L;
        if (query.After is { Length: > 0 } after)
        {
            var colon = after.IndexOf(':', StringComparison.Ordinal);
            if (masters is not null && colon > 0 && int.TryParse(after.AsSpan(0, colon), NumberStyles.None, CultureInfo.InvariantCulture, out var parsedNode))
            {
                node = parsedNode;
                after = after[(colon + 1)..];
            }

            cursor = long.TryParse(after, NumberStyles.None, CultureInfo.InvariantCulture, out var parsed) ? parsed : 0L;
        }

        var pattern = Keys.Prefix + "task_*";
        var found = new List<TaskSummary>();

        // SCAN pages until the page is full or the pass ends; a bounded number per call, so a huge keyspace
        // answers with a cursor rather than a long stall.
        for (var round = 0; round < 50; round++)
        {
            if (masters is not null && node >= masters.Length)
            {
                break;
            }

            RedisValue[] values;
            if (masters is null)
            {
                var reply = (RedisResult[])(await db.ExecuteAsync("SCAN", cursor.ToString(CultureInfo.InvariantCulture), "MATCH", pattern, "COUNT", "500").ConfigureAwait(false))!;
                cursor = long.Parse((string)reply[0]!, CultureInfo.InvariantCulture);
                var keys = ((RedisResult[])reply[1]!).Select(k => (RedisKey)(string)k!).ToArray();
                values = keys.Length > 0 ? await db.StringGetAsync(keys).ConfigureAwait(false) : [];
            }
            else
            {
                var reply = (RedisResult[])(await masters[node].ExecuteAsync("SCAN", cursor.ToString(CultureInfo.InvariantCulture), "MATCH", pattern, "COUNT", "500").ConfigureAwait(false))!;
                cursor = long.Parse((string)reply[0]!, CultureInfo.InvariantCulture);
                values = await Task.WhenAll(((RedisResult[])reply[1]!).Select(k => db.StringGetAsync((string)k!))).ConfigureAwait(false);
                if (cursor == 0)
                {
                    node++; // this master's pass ended: the next one's starts
                }
            }

            foreach (var value in values)
            {
                if (value.IsNull)
                {
                    continue;
                }

                TaskStateRecord state;
                try
                {
                    state = Serialization.WireFormat.DeserializeState(((ReadOnlyMemory<byte>)value).Span);
                }
                catch (WireFormatException)
                {
                    continue; // not a state (another key that starts with task_)
                }

                if (query.Matches(state))
                {
                    found.Add(TaskSummary.FromState(state));
                }
            }

            var passEnded = masters is null ? cursor == 0 : node >= masters.Length;
            if (passEnded || found.Count >= query.Limit)
            {
                break;
            }
        }

        // A SCAN page cannot be split: a page holds everything its SCAN calls found (it may exceed the limit).
        var more = masters is null ? cursor != 0 : node < masters.Length;
        var next = masters is null
            ? cursor.ToString(CultureInfo.InvariantCulture)
            : node.ToString(CultureInfo.InvariantCulture) + ":" + cursor.ToString(CultureInfo.InvariantCulture);
        return new TaskPage(found, more ? next : null);
    }

    /// <inheritdoc/>
    public async ValueTask RevokeAsync(IReadOnlyList<string> taskIds, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(taskIds);
        if (taskIds.Count == 0)
        {
            return;
        }

        RedisValue[] args = [NowMs, (long)Retention.TotalMilliseconds, (string)_channel!, .. taskIds.Select(id => (RedisValue)id)];
        await Db.ScriptEvaluateAsync(RevokeScript, [Keys.Revoked, Keys.RevokedExpiry, Keys.RevokedSequence], args).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async ValueTask SetPausedAsync(string queue, bool paused, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(queue);
        var db = Db;
        _ = paused ? await db.SetAddAsync(_paused, queue).ConfigureAwait(false) : await db.SetRemoveAsync(_paused, queue).ConfigureAwait(false);
        await db.PublishAsync(_channel, paused ? "pause" : "resume").ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async ValueTask<ControlChanges> ReadControlAsync(long after, CancellationToken cancellationToken = default)
    {
        // Subscribed before reading: a change after this read is then always heard.
        await SubscribeAsync().ConfigureAwait(false);
        var db = Db;
        var paused = db.SetMembersAsync(_paused);
        var revoked = new List<string>();
        var cursor = after == long.MaxValue ? 0 : after;
        if (after != long.MaxValue)
        {
            var entries = await db.SortedSetRangeByScoreWithScoresAsync(Keys.Revoked, after, double.PositiveInfinity, Exclude.Start, take: 10_000).ConfigureAwait(false);
            foreach (var entry in entries)
            {
                revoked.Add((string)entry.Element!);
                cursor = Math.Max(cursor, (long)entry.Score);
            }
        }

        return new ControlChanges(cursor, revoked, [.. (await paused.ConfigureAwait(false)).Select(v => (string)v!).Order(StringComparer.Ordinal)]);
    }

    /// <inheritdoc/>
    public async ValueTask WaitForControlChangeAsync(TimeSpan maxWait, CancellationToken cancellationToken = default)
    {
        await SubscribeAsync().ConfigureAwait(false);
        Task changed;
        lock (_gate)
        {
            changed = _changed.Task;
        }

        try
        {
            // Pushed: the caller reads when told, and besides every few seconds in case a message was lost
            // (a reconnect), which costs two commands per worker per interval, not per task.
            await changed.WaitAsync(maxWait > FallbackRead ? maxWait : FallbackRead, _time, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
        }
    }

    /// <inheritdoc/>
    public async ValueTask HeartbeatAsync(WorkerInfo worker, TimeSpan ttl, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(worker);
        var db = Db;
        var now = NowMs;
        var batch = db.CreateBatch();
        var set = batch.HashSetAsync(_workers, worker.Name, ManagementJson.Serialize(worker));
        var alive = batch.SortedSetAddAsync(_workersAlive, worker.Name, now + (long)ttl.TotalMilliseconds);
        var lapsed = batch.SortedSetRangeByScoreAsync(_workersAlive, double.NegativeInfinity, now);
        batch.Execute();
        await Task.WhenAll(set, alive, lapsed).ConfigureAwait(false);
        if (lapsed.Result.Length > 0)
        {
            await db.HashDeleteAsync(_workers, lapsed.Result).ConfigureAwait(false);
            await db.SortedSetRemoveAsync(_workersAlive, lapsed.Result).ConfigureAwait(false);
        }
    }

    /// <inheritdoc/>
    public async ValueTask RemoveWorkerAsync(string name, CancellationToken cancellationToken = default)
    {
        var db = Db;
        await db.HashDeleteAsync(_workers, name).ConfigureAwait(false);
        await db.SortedSetRemoveAsync(_workersAlive, name).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async ValueTask<IReadOnlyList<WorkerInfo>> ListWorkersAsync(CancellationToken cancellationToken = default)
    {
        var db = Db;
        var names = await db.SortedSetRangeByScoreAsync(_workersAlive, NowMs, double.PositiveInfinity, Exclude.Start).ConfigureAwait(false);
        if (names.Length == 0)
        {
            return [];
        }

        var bodies = await db.HashGetAsync(_workers, names).ConfigureAwait(false);
        return [.. bodies.Where(b => !b.IsNull).Select(b => ManagementJson.DeserializeWorker(((ReadOnlyMemory<byte>)b).Span)).OfType<WorkerInfo>().OrderBy(w => w.Name, StringComparer.Ordinal)];
    }

    /// <inheritdoc/>
    public async ValueTask SetProgressAsync(string taskId, TaskProgress progress, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(progress);
        await Db.StringSetAsync(_progressPrefix + taskId, ManagementJson.Serialize(progress), Retention).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async ValueTask<TaskProgress?> GetProgressAsync(string taskId, CancellationToken cancellationToken = default)
    {
        var value = await Db.StringGetAsync(_progressPrefix + taskId).ConfigureAwait(false);
        return value.IsNull ? null : ManagementJson.DeserializeProgress(((ReadOnlyMemory<byte>)value).Span);
    }

    /// <inheritdoc/>
    public async ValueTask<string?> ClaimUniqueAsync(string key, string taskId, TimeSpan ttl, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        var holder = await Db.ScriptEvaluateAsync(ClaimUniqueScript, [(RedisKey)(Keys.Prefix + "conveyor:" + key)], [taskId, (long)Math.Ceiling(ttl.TotalMilliseconds)]).ConfigureAwait(false);
        return holder.IsNull ? null : (string?)holder;
    }

    /// <inheritdoc/>
    public async ValueTask ReleaseUniqueAsync(string key, string taskId, CancellationToken cancellationToken = default) =>
        await Db.ScriptEvaluateAsync(ReleaseUniqueScript, [(RedisKey)(Keys.Prefix + "conveyor:" + key)], [taskId]).ConfigureAwait(false);

    /// <inheritdoc/>
    public async ValueTask<TokenReservation> ReserveTokenAsync(string bucket, double ratePerSecond, int burst, TimeSpan maxWait, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(bucket);
        var reply = (RedisResult[])(await Db.ScriptEvaluateAsync(
            ReserveTokenScript,
            [(RedisKey)(Keys.Prefix + "conveyor:" + bucket)],
            [(ratePerSecond / 1000).ToString("R", CultureInfo.InvariantCulture), burst, (long)maxWait.TotalMilliseconds]).ConfigureAwait(false))!;
        return new TokenReservation((long)reply[0] == 1, TimeSpan.FromMilliseconds((long)reply[1]));
    }

    private static string Cursor(int source, long position) => string.Create(CultureInfo.InvariantCulture, $"{source}:{position}");

    private static (int Source, long Position) ParseCursor(string? cursor) =>
        cursor is { Length: > 0 } && cursor.Split(':') is [var s, var p]
        && int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var source)
        && long.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out var position)
            ? (source, position)
            : (0, 0);

    private Task SubscribeAsync()
    {
        lock (_gate)
        {
            return _subscription ??= _multiplexer.GetSubscriber().SubscribeAsync(_channel, (_, _) =>
            {
                TaskCompletionSource changed;
                lock (_gate)
                {
                    changed = _changed;
                    _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                }

                changed.TrySetResult();
            });
        }
    }

    /// <summary>The lists or sets that hold a queue's messages in a state, in listing order.</summary>
    private async Task<List<(RedisKey Key, SourceKind Kind, string? Worker)>> SourcesAsync(string queue, ManagedTaskState state)
    {
        var db = Db;
        var sources = new List<(RedisKey, SourceKind, string?)>();
        switch (state)
        {
            case ManagedTaskState.Pending:
                foreach (var level in await db.SortedSetRangeByRankAsync(Keys.PriorityLevels(queue), 0, -1, Order.Descending).ConfigureAwait(false))
                {
                    sources.Add((Keys.PriorityListPrefix(queue) + (string)level!, SourceKind.List, null));
                }

                sources.Add((Keys.Queue(queue), SourceKind.List, null));
                break;
            case ManagedTaskState.Scheduled:
                sources.Add((Keys.DelayedFor(queue), SourceKind.SharedDelayed, null));
                sources.Add((Keys.PrivateDelayed(queue), SourceKind.Set, null));
                break;
            case ManagedTaskState.Active:
                foreach (var consumer in (await db.SetMembersAsync(Keys.Consumers(queue)).ConfigureAwait(false)).Select(c => (string)c!).Order(StringComparer.Ordinal))
                {
                    sources.Add((Keys.InFlight(queue, consumer), SourceKind.List, consumer));
                }

                break;
            default:
                throw new ArgumentException($"{state} is not a message state.", nameof(state));
        }

        return sources;
    }

    /// <summary>Every message whose body holds the id, in every known queue's lists and sets.</summary>
    private async IAsyncEnumerable<(string Queue, ManagedTaskState State, RedisKey Key, ReadOnlyMemory<byte> Body, string? Worker)> ScanMessagesAsync(
        string taskId,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var needle = Encoding.UTF8.GetBytes(taskId);
        var db = Db;
        var queues = (await db.SetMembersAsync(Keys.Queues).ConfigureAwait(false)).Select(q => (string)q!).Order(StringComparer.Ordinal).ToList();
        foreach (var queue in queues)
        {
            foreach (var state in (ManagedTaskState[])[ManagedTaskState.Pending, ManagedTaskState.Scheduled, ManagedTaskState.Active])
            {
                foreach (var (key, kind, worker) in await SourcesAsync(queue, state).ConfigureAwait(false))
                {
                    const int Slice = 500;
                    for (long position = 0; ; position += Slice)
                    {
                        cancellationToken.ThrowIfCancellationRequested();
                        var values = kind == SourceKind.List
                            ? await db.ListRangeAsync(key, position, position + Slice - 1).ConfigureAwait(false)
                            : await db.SortedSetRangeByRankAsync(key, position, position + Slice - 1).ConfigureAwait(false);
                        foreach (var value in values)
                        {
                            var body = (ReadOnlyMemory<byte>)value;
                            if (body.Span.IndexOf(needle) >= 0
                                && (kind != SourceKind.SharedDelayed || RedisBroker.RoutesTo(body.Span, queue))
                                && TaskSummary.FromMessage(body.Span, queue, state).Id == taskId)
                            {
                                yield return (queue, state, key, body, worker);
                            }
                        }

                        if (values.Length < Slice)
                        {
                            break;
                        }
                    }
                }
            }
        }
    }

    private enum SourceKind
    {
        List,
        Set,
        SharedDelayed,
    }
}
