using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace Conveyor.Redis.Internal;

/// <summary>
/// One consumer of one queue: a fetch loop (prefetch credits, batches, idle wake-ups), a heartbeat loop (renews its
/// heartbeat, recovers dead consumers, retries failed hand-backs) and a delayed-task mover. Every loop survives Redis
/// errors: it logs, backs off and goes on, so a Redis restart or a killed connection only pauses consumption.
/// </summary>
internal sealed class RedisMessageConsumer : IMessageConsumer
{
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan FirstIdleWait = TimeSpan.FromMilliseconds(10);
    private static readonly Version ListPopVersion = new(7, 0);
    private const int BrokerAcksBeforeNoRead = 100;

    private readonly RedisBroker _broker;
    private readonly RedisKeys _keys;
    private readonly RedisConveyorOptions _options;
    private readonly ConcurrentDictionary<RedisDelivery, byte> _unsettled = new();
    private readonly ConcurrentQueue<RedisDelivery> _handBack = new();
    private readonly PrefetchWindow<IBrokerDelivery> _window;
    private readonly AsyncSignal _wake = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly RedisKey _queueKey;
    private readonly RedisKey _inFlight;
    private readonly RedisKey _heartbeat;
    private readonly RedisKey[] _fetchKeys;
    private readonly RedisChannel _wakeChannel;
    private readonly Action<RedisChannel, RedisValue> _onWake;
    private int _stopped;
    private volatile bool _reconcile;

    // LMPOP (Redis 7.0): one command per fetched list rather than one LMOVE per message.
    private volatile bool _useListPop;

    // Acknowledgements by a result backend's settle script (0 or 1) and through the broker (counted up to a bound).
    private int _scriptAcks;
    private int _brokerAcks;
    private Task _loops = Task.CompletedTask;

    public RedisMessageConsumer(RedisBroker broker, string queue, ConsumeOptions options)
    {
        _broker = broker;
        _keys = broker.Keys;
        _options = broker.Options;
        Queue = queue;
        _window = new PrefetchWindow<IBrokerDelivery>(options.Prefetch, options.Prefetch / 4);

        // Unique per consumer instance: several consumers of one process share a ConsumerName, and a restarted
        // worker must not inherit its former self's in-flight list before that one is recovered.
        Id = options.ConsumerName + "#" + Guid.NewGuid().ToString("N")[..12];
        _queueKey = _keys.Queue(queue);
        _inFlight = _keys.InFlight(queue, Id);
        _heartbeat = _keys.Heartbeat(queue, Id);
        _fetchKeys = [_keys.PriorityLevels(queue), _queueKey, _inFlight, _heartbeat, _keys.Idle(queue), _keys.Deaths(queue)];
        _wakeChannel = _keys.Wake(queue);
        _onWake = (_, _) => _wake.Set();
        Scope = _keys.QueueScope(queue);
        _useListPop = broker.Multiplexer.GetServers() is { Length: > 0 } servers && servers.All(static server => !server.IsConnected || server.Version >= ListPopVersion);
    }

    public string Queue { get; }

    public string Id { get; }

    public string Scope { get; }

    public ChannelReader<IBrokerDelivery> Deliveries => _window.Reader;

    // A paused queue: the fetch loop stops; the worker hands back what is buffered (see IMessageConsumer).
    public ValueTask<bool> StopReceivingAsync(CancellationToken cancellationToken = default)
    {
        _window.StopFetching();
        return ValueTask.FromResult(true);
    }

    /// <summary>This consumer's in-flight list, which a result backend on the same connection settles in its own script.</summary>
    internal RedisKey InFlightKey => _inFlight;

    internal RedisBroker Broker => _broker;

    private ILogger Logger => _broker.Logger;

    private IDatabase Database => _broker.Database;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        // Register and heartbeat before the first fetch (the fetch script refuses a consumer without a heartbeat).
        await HeartbeatAsync().WaitAsync(cancellationToken).ConfigureAwait(false);
        await _broker.Subscriber.SubscribeAsync(_wakeChannel, _onWake).WaitAsync(cancellationToken).ConfigureAwait(false);

        // A worker that restarts after a crash takes its former self's messages back at once, ahead of new ones.
        await RecoverDeadConsumersAsync().WaitAsync(cancellationToken).ConfigureAwait(false);
        var token = _stop.Token;
        _loops = Task.WhenAll(
            Task.Run(() => FetchLoopAsync(token), CancellationToken.None),
            Task.Run(() => HeartbeatLoopAsync(token), CancellationToken.None),
            Task.Run(() => MoveDueLoopAsync(token), CancellationToken.None));
    }

    /// <summary>Makes the fetch loop check its in-flight list for orphans, as after a lost fetch reply (tests).</summary>
    internal void RequestReconcile()
    {
        _reconcile = true;
        _wake.Set();
        _window.Nudge();
    }

    /// <summary>Stops without handing anything back, as a killed process would (tests): its heartbeat expires.</summary>
    internal async ValueTask SimulateCrashAsync()
    {
        if (Interlocked.Exchange(ref _stopped, 1) == 1)
        {
            return;
        }

        await StopLoopsAsync().ConfigureAwait(false);
        _broker.Forget(this);
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _stopped, 1) == 1)
        {
            return;
        }

        await StopLoopsAsync().ConfigureAwait(false);
        try
        {
            // Everything still in the in-flight list goes back to the head of the queue, ahead of newer messages.
            await Database.ScriptEvaluateAsync(
                RedisScripts.Recover,
                [_heartbeat, _inFlight, _queueKey, _keys.Consumers(Queue), _keys.Deaths(Queue), _keys.Idle(Queue)],
                [Id, "1"]).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException or ObjectDisposedException)
        {
            Log.HandBackFailed(Logger, ex, Id, Queue);
        }

        _unsettled.Clear();
        _broker.Forget(this);
    }

    private async Task StopLoopsAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await _loops.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        _window.Complete();
        try
        {
            await _broker.Subscriber.UnsubscribeAsync(_wakeChannel, _onWake).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException or ObjectDisposedException)
        {
            // The subscription dies with the connection anyway.
        }
    }

    private async Task FetchLoopAsync(CancellationToken token)
    {
        var failures = 0;

        // The first look after the queue ran empty: Conveyor producers wake us at once (the idle flag), so polls
        // serve only messages pushed by others. Starting at 1 ms, they cost a timer, two thread wake-ups and a
        // round trip about every millisecond of a queue that empties between tasks (measured at 1,000 tasks/s).
        var firstIdleWait = TimeSpan.FromTicks(Math.Min(_options.IdlePollInterval.Ticks, FirstIdleWait.Ticks));
        var idleWait = firstIdleWait;
        while (!token.IsCancellationRequested)
        {
            try
            {
                if (_reconcile)
                {
                    await ReconcileAsync().ConfigureAwait(false);
                    _reconcile = false;
                }

                // Fetch in batches under load: a quarter of the prefetch free, or any credit once the buffer ran dry.
                var room = await _window.WaitForRoomAsync(_options.FetchBatchSize, token).ConfigureAwait(false);
                if (room == 0)
                {
                    continue; // nudged: reconcile first
                }

                _wake.Reset();
                var fetched = await FetchAsync(room).ConfigureAwait(false);
                if (failures > 0)
                {
                    Log.LoopRecovered(Logger, Id, Queue, failures);
                    failures = 0;
                }

                if (fetched < 0)
                {
                    Log.HeartbeatRenewedAfterExpiry(Logger, Id, Queue);
                    await HeartbeatAsync().ConfigureAwait(false);
                    continue;
                }

                if (fetched > 0)
                {
                    idleWait = firstIdleWait;
                }

                if (fetched == room)
                {
                    continue;
                }

                // Fewer than asked, or none: the queue was empty, and the script set the idle flag; the next push
                // wakes us. Poll now and then regardless (Go producers do not wake us), backing off to the idle
                // interval.
                await _wake.WaitAsync(idleWait, _broker.Time, token).ConfigureAwait(false);
                idleWait = TimeSpan.FromTicks(Math.Min(idleWait.Ticks * 2, _options.IdlePollInterval.Ticks));
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                // The script may have run and its reply been lost with the connection: then messages sit in our
                // in-flight list that nobody here knows of. Hand such orphans back before fetching again.
                _reconcile = true;
                failures++;
                await BackOffAsync(ex, "fetching", failures, token).ConfigureAwait(false);
            }
        }
    }

    private async Task<int> FetchAsync(int max)
    {
        RedisResult result;
        try
        {
            result = await Database.ScriptEvaluateAsync(
                RedisScripts.Fetch,
                _fetchKeys,
                [max, (long)Math.Max(1000, _options.IdlePollInterval.TotalMilliseconds * 4), _keys.PriorityListPrefix(Queue), _useListPop ? "1" : "0", ReadsCreatedAt ? "1" : "0", _keys.Prefix]).ConfigureAwait(false);
        }
        catch (RedisServerException ex) when (_useListPop && (ex.Message.Contains("LMPOP", StringComparison.OrdinalIgnoreCase) || ex.Message.Contains("Unknown Redis command", StringComparison.OrdinalIgnoreCase)))
        {
            // A server older than 7.0 (a failover to an older replica, say): one LMOVE per message from now on.
            _useListPop = false;
            throw;
        }

        if (result.Resp2Type == ResultType.Integer)
        {
            return -1;
        }

        var items = (RedisResult[])result!;
        var count = items.Length / 5;
        for (var i = 0; i < items.Length; i += 5)
        {
            var createdAt = (RedisValue)items[i + 4];
            var delivery = createdAt.IsNullOrEmpty
                ? new RedisDelivery(this, (byte[])items[i + 1]!, (byte)(int)items[i], (int)items[i + 2])
                : new RedisDelivery(this, (byte[])items[i + 1]!, (byte)(int)items[i], (int)items[i + 2]) { TaskId = (string?)items[i + 3], StoredCreatedAt = (byte[])createdAt! };
            _unsettled[delivery] = 0;
            if (!_window.TryAdd(delivery))
            {
                // Stopping: it stays in the in-flight list, which the hand-back on dispose returns to the queue.
                _unsettled.TryRemove(delivery, out _);
            }
        }

        return count;
    }

    /// <summary>Releases every message of the in-flight list that no delivery of this consumer holds (count-aware for equal bodies).</summary>
    private async Task ReconcileAsync()
    {
        var held = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var delivery in _unsettled.Keys)
        {
            var key = Encoding.Latin1.GetString(delivery.RawBody);
            held[key] = held.GetValueOrDefault(key) + 1;
        }

        var listed = await Database.ListRangeAsync(_inFlight).ConfigureAwait(false);
        var orphans = 0;
        foreach (var item in listed)
        {
            var body = (byte[])item!;
            var key = Encoding.Latin1.GetString(body);
            if (held.TryGetValue(key, out var count) && count > 0)
            {
                held[key] = count - 1;
                continue;
            }

            await Database.ScriptEvaluateAsync(
                RedisScripts.Release,
                [_inFlight, _queueKey, _keys.PriorityLevels(Queue), _keys.Idle(Queue)],
                [body, "0"]).ConfigureAwait(false);
            orphans++;
        }

        if (orphans > 0)
        {
            Log.ReconciledOrphans(Logger, Id, Queue, orphans);
        }
    }

    private async Task HeartbeatLoopAsync(CancellationToken token)
    {
        var failures = 0;
        var interval = _options.EffectiveHeartbeatInterval;
        while (!token.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(interval, _broker.Time, token).ConfigureAwait(false);
                await HeartbeatAsync().ConfigureAwait(false);
                await RetryHandBacksAsync().ConfigureAwait(false);
                await RecoverDeadConsumersAsync().ConfigureAwait(false);
                if (failures > 0)
                {
                    Log.LoopRecovered(Logger, Id, Queue, failures);
                    failures = 0;
                }
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                failures++;
                Log.LoopFailed(Logger, ex, Id, Queue, "heartbeat", interval);
            }
        }
    }

    private async Task HeartbeatAsync()
    {
        var db = Database;
        var beat = db.StringSetAsync(_heartbeat, "1", _options.VisibilityTimeout);
        var register = db.SetAddAsync(_keys.Consumers(Queue), Id);
        var note = db.SetAddAsync(_keys.Queues, Queue);
        await beat.ConfigureAwait(false);
        await register.ConfigureAwait(false);
        await note.ConfigureAwait(false);
    }

    private async Task RecoverDeadConsumersAsync()
    {
        var db = Database;
        var members = await db.SetMembersAsync(_keys.Consumers(Queue)).ConfigureAwait(false);
        foreach (var member in members)
        {
            var other = (string)member!;
            if (other == Id)
            {
                continue;
            }

            var moved = (long)await db.ScriptEvaluateAsync(
                RedisScripts.Recover,
                [_keys.Heartbeat(Queue, other), _keys.InFlight(Queue, other), _queueKey, _keys.Consumers(Queue), _keys.Deaths(Queue), _keys.Idle(Queue)],
                [other, "0"]).ConfigureAwait(false);
            if (moved > 0)
            {
                Log.RecoveredDeadConsumer(Logger, Id, (int)moved, other, Queue);
            }
        }
    }

    private async Task MoveDueLoopAsync(CancellationToken token)
    {
        var failures = 0;
        var privateDelayed = _keys.PrivateDelayed(Queue);
        RedisKey[] moveKeys = [_keys.DelayedFor(Queue), privateDelayed, _queueKey, _keys.PriorityLevels(Queue), _keys.Idle(Queue)];
        while (!token.IsCancellationRequested)
        {
            try
            {
                _broker.DelayedPublished.Reset();
                var now = _broker.Time.GetUtcNow();
                var result = (RedisResult[])(await Database.ScriptEvaluateAsync(
                    RedisScripts.MoveDue,
                    moveKeys,
                    [RedisTime.ToUnixNanosecondsText(now), _options.DelayedBatchSize, _keys.Prefix, Queue, _options.Priorities ? "1" : "0", _keys.Cluster ? "1" : "0"]).ConfigureAwait(false))!;
                if (failures > 0)
                {
                    Log.LoopRecovered(Logger, Id, Queue, failures);
                    failures = 0;
                }

                var moved = (long)result[0];
                if (moved > 0)
                {
                    Log.MovedDueTasks(Logger, Id, (int)moved);
                }

                if (moved >= _options.DelayedBatchSize)
                {
                    continue; // more are due
                }

                var wait = _options.DelayedPollInterval;
                foreach (var next in new[] { result[1], result[2] })
                {
                    if (double.TryParse((string?)next, NumberStyles.Float, CultureInfo.InvariantCulture, out var score))
                    {
                        var until = RedisTime.FromUnixNanoseconds(score) - _broker.Time.GetUtcNow();
                        if (until < wait)
                        {
                            wait = until < TimeSpan.Zero ? TimeSpan.Zero : until;
                        }
                    }
                }

                if (wait > TimeSpan.Zero)
                {
                    await _broker.DelayedPublished.WaitAsync(wait, _broker.Time, token).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                failures++;
                await BackOffAsync(ex, "moving delayed tasks", failures, token).ConfigureAwait(false);
            }
        }
    }

    private async Task BackOffAsync(Exception ex, string loop, int failures, CancellationToken token)
    {
        var delay = TimeSpan.FromMilliseconds(Math.Min(MaxBackoff.TotalMilliseconds, 50 * Math.Pow(2, Math.Min(failures - 1, 10))));
        Log.LoopFailed(Logger, ex, Id, Queue, loop, delay);
        try
        {
            await Task.Delay(delay, _broker.Time, token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    internal async ValueTask AckAsync(RedisDelivery delivery)
    {
        if (Volatile.Read(ref _brokerAcks) < BrokerAcksBeforeNoRead)
        {
            Interlocked.Increment(ref _brokerAcks);
        }

        await Database.ListRemoveAsync(_inFlight, delivery.RawBody, 1).ConfigureAwait(false);
        Settled(delivery);
        ForgetDeaths(delivery);
    }

    /// <summary>
    /// An acknowledged message that had outlived a dead consumer drops its death count (rare: the hot path never
    /// gets here). Fire and forget: a count left behind only matters if the very same bytes are published again.
    /// </summary>
    internal void ForgetDeaths(RedisDelivery delivery)
    {
        if (delivery.Deaths > 0)
        {
#pragma warning disable CA5350 // the field name is Lua's redis.sha1hex of the body, a lookup key, not a security use
            _ = Database.HashDeleteAsync(_keys.Deaths(Queue), Convert.ToHexStringLower(System.Security.Cryptography.SHA1.HashData(delivery.RawBody)), CommandFlags.FireAndForget);
#pragma warning restore CA5350
        }
    }

    internal async ValueTask ReleaseAsync(RedisDelivery delivery)
    {
        try
        {
            await ReleaseCoreAsync(delivery).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is RedisException or TimeoutException or ObjectDisposedException)
        {
            // Keep the credit and hand it back from the heartbeat loop once Redis answers: a message must never
            // stay in a live consumer's in-flight list with nobody to settle it.
            Log.SettleFailed(Logger, ex, Id, Queue);
            _handBack.Enqueue(delivery);
            throw;
        }

        Settled(delivery);
    }

    private Task<RedisResult> ReleaseCoreAsync(RedisDelivery delivery)
    {
        var level = delivery.Priority;
        RedisKey target = level == 0 ? _queueKey : _keys.PriorityListPrefix(Queue) + level.ToString(CultureInfo.InvariantCulture);
        return Database.ScriptEvaluateAsync(
            RedisScripts.Release,
            [_inFlight, target, _keys.PriorityLevels(Queue), _keys.Idle(Queue)],
            [delivery.RawBody, level == 0 ? "0" : level.ToString(CultureInfo.InvariantCulture)]);
    }

    private async Task RetryHandBacksAsync()
    {
        var count = _handBack.Count;
        for (var i = 0; i < count && _handBack.TryDequeue(out var delivery); i++)
        {
            if (!_unsettled.ContainsKey(delivery))
            {
                continue;
            }

            try
            {
                await ReleaseCoreAsync(delivery).ConfigureAwait(false);
                Settled(delivery);
            }
            catch
            {
                _handBack.Enqueue(delivery);
                throw;
            }
        }
    }

    internal async ValueTask DeadLetterAsync(RedisDelivery delivery, string reason)
    {
        if (_keys.Cluster)
        {
            await RedisClusterDeadLetters.DeadLetterAsync(_broker, Queue, _inFlight, delivery.RawBody, reason).ConfigureAwait(false);
            Settled(delivery);
            return;
        }

        await Database.ScriptEvaluateAsync(
            RedisScripts.DeadLetter,
            [_inFlight, _keys.DeadLetters, _keys.DeadLetterCounts, _keys.DeadLetterSequence, _keys.Deaths(Queue)],
            [delivery.RawBody, Queue, reason, _broker.Time.GetUtcNow().ToUnixTimeMilliseconds(), _keys.DeadLetterEntryPrefix]).ConfigureAwait(false);
        Settled(delivery);
    }

    /// <summary>The delivery's message left the in-flight list in a result backend's script: return its credit.</summary>
    internal void SettledElsewhere(RedisDelivery delivery)
    {
        if (Volatile.Read(ref _scriptAcks) == 0)
        {
            Volatile.Write(ref _scriptAcks, 1);
        }

        Settled(delivery);
    }

    /// <summary>
    /// Whether the fetch reads each message's stored CreatedAt: only for a result backend on the same Redis, which
    /// acknowledges in its settle script. Until one such acknowledgement, the first <see cref="BrokerAcksBeforeNoRead"/>
    /// acknowledgements through the broker are given the benefit of the doubt (tasks with workflows are acknowledged
    /// that way on any backend); after them, the backend is taken to be elsewhere and the reads, each a GET of a
    /// key that is not there, stop.
    /// </summary>
    private bool ReadsCreatedAt => !_keys.Cluster && (Volatile.Read(ref _scriptAcks) > 0 || Volatile.Read(ref _brokerAcks) < BrokerAcksBeforeNoRead);

    private void Settled(RedisDelivery delivery)
    {
        if (_unsettled.TryRemove(delivery, out _))
        {
            _window.Release();
        }
    }
}

/// <summary>A message in a consumer's in-flight list; settling removes those exact bytes from the list.</summary>
internal sealed class RedisDelivery(RedisMessageConsumer owner, byte[] body, byte priority, int deaths = 0) : IBrokerDelivery
{
    private int _settled;

    public byte[] RawBody { get; } = body;

    public byte Priority { get; } = priority;

    /// <summary>How many consumers died holding this message before this delivery (the queue's death counts).</summary>
    public int Deaths { get; } = deaths;

    /// <summary>The task id in the message, read by the fetch with <see cref="StoredCreatedAt"/>; null when unknown.</summary>
    internal string? TaskId { get; init; }

    /// <summary>The CreatedAt of the task's stored state when it was fetched, as its JSON has it; null when unknown.</summary>
    internal byte[]? StoredCreatedAt { get; init; }

    internal RedisMessageConsumer Owner => owner;

    /// <summary>Whether it is still to be settled (acknowledged, released or dead-lettered).</summary>
    internal bool IsUnsettled => Volatile.Read(ref _settled) == 0;

    /// <summary>Marks it acknowledged by a script that removed it from the in-flight list.</summary>
    internal void MarkAcknowledged()
    {
        if (Interlocked.Exchange(ref _settled, 1) == 0)
        {
            owner.SettledElsewhere(this);
            owner.ForgetDeaths(this);
        }
    }

    public ReadOnlyMemory<byte> Body => RawBody;

    public string Queue => owner.Queue;

    /// <summary>
    /// This delivery and one for each consumer that died holding the message: the message stays machinery's bytes,
    /// so the count lives beside it (see <see cref="RedisScripts.Recover"/>). A hand-back on a graceful stop is not counted.
    /// </summary>
    public int DeliveryCount => 1 + Deaths;

    public async ValueTask AckAsync(CancellationToken cancellationToken = default)
    {
        if (Volatile.Read(ref _settled) == 0)
        {
            await owner.AckAsync(this).ConfigureAwait(false);
            Volatile.Write(ref _settled, 1);
        }
    }

    public async ValueTask ReleaseAsync(CancellationToken cancellationToken = default)
    {
        if (Volatile.Read(ref _settled) == 0)
        {
            await owner.ReleaseAsync(this).ConfigureAwait(false);
            Volatile.Write(ref _settled, 1);
        }
    }

    public async ValueTask DeadLetterAsync(string reason, CancellationToken cancellationToken = default)
    {
        if (Volatile.Read(ref _settled) == 0)
        {
            await owner.DeadLetterAsync(this, reason).ConfigureAwait(false);
            Volatile.Write(ref _settled, 1);
        }
    }
}
