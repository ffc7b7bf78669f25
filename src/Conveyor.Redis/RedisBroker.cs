using System.Globalization;
using System.Text.Json;
using Conveyor.Redis.Internal;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using StackExchange.Redis;

namespace Conveyor.Redis;

/// <summary>
/// A broker on Redis with Go machinery's layout: a queue is the list named after it, holding machinery's JSON,
/// which producers <c>RPUSH</c>; delayed and retried tasks wait in machinery's <c>delayed_tasks</c> sorted set (score =
/// ETA in Unix nanoseconds). Go machinery producers and workers can share its queues.
/// </summary>
/// <remarks>
/// <para>
/// Unlike machinery's <c>BLPOP</c>, consumption is reliable: a message moves atomically (LMOVE, in a script) to an
/// in-flight list of its consumer, <c>conveyor:{queue}:inflight:{consumer}</c>, and leaves it only when the worker
/// settles it, after the task's final state is stored. Each consumer renews a heartbeat key
/// (<c>conveyor:{queue}:alive:{consumer}</c>, <c>SET … PX</c> <see cref="RedisConveyorOptions.VisibilityTimeout"/>)
/// and is listed in <c>conveyor:{queue}:consumers</c>; every live consumer looks for members whose heartbeat has
/// expired and returns their in-flight messages to the head of the queue, in one script per dead consumer.
/// </para>
/// <para>
/// Fetching never blocks a connection (StackExchange.Redis multiplexes all commands over one socket, so a BLMOVE
/// would stall every other caller): a consumer takes up to its free prefetch (at most
/// <see cref="RedisConveyorOptions.FetchBatchSize"/>) in one script call; when the queue is empty that script
/// also sets an idle flag, which the next push (a script too) clears and turns into a pub/sub wake-up. An idle
/// consumer thus sleeps until woken, and looks again only every <see cref="RedisConveyorOptions.IdlePollInterval"/>
/// for messages pushed by Go producers.
/// </para>
/// <para>
/// Priorities (when <see cref="RedisConveyorOptions.Priorities"/> is on): a message with priority 0 goes to the
/// queue's list as machinery's do; one with priority N above 0 goes to <c>conveyor:{queue}:pN</c>, and the level to
/// the sorted set <c>conveyor:{queue}:priorities</c>. Consumers drain the levels from the highest down, then the
/// plain list; FIFO within a level. Go workers read only the plain list.
/// </para>
/// <para>
/// Dead letters are hashes <c>conveyor:dead_letter:{id}</c> (queue, reason, time, raw body) listed oldest first in
/// <c>conveyor:dead_letters</c>. The key prefix, when set, goes before every key.
/// </para>
/// </remarks>
public sealed class RedisBroker : IBroker
{
    private readonly IConnectionMultiplexer _multiplexer;
    private readonly Lock _gate = new();
    private readonly HashSet<RedisMessageConsumer> _consumers = [];
    private readonly AsyncSignal _delayedPublished = new();
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, QueueKeys> _queueKeys = new(StringComparer.Ordinal);
    private RedisKeys? _keys;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, byte> _notedQueues = new(StringComparer.Ordinal);
    private bool _disposed;

    /// <summary>Creates a broker. It does no I/O until used.</summary>
    /// <param name="multiplexer">The process's connection to Redis; the broker never disposes it.</param>
    /// <param name="options">Settings.</param>
    /// <param name="timeProvider">The clock for ETAs and intervals; the system clock when <see langword="null"/>.</param>
    /// <param name="loggerFactory">Logging; none when <see langword="null"/>.</param>
    public RedisBroker(IConnectionMultiplexer multiplexer, RedisConveyorOptions options, TimeProvider? timeProvider = null, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(multiplexer);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _multiplexer = multiplexer;
        Options = options;
        Time = timeProvider ?? TimeProvider.System;
        Logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<RedisBroker>();
    }

    /// <inheritdoc/>
    public BrokerCapabilities Capabilities =>
        BrokerCapabilities.DelayedDelivery | BrokerCapabilities.Redelivery | BrokerCapabilities.Distributed
        | (Options.Priorities ? BrokerCapabilities.Priorities : BrokerCapabilities.None);

    internal RedisConveyorOptions Options { get; }

    internal TimeProvider Time { get; }

    internal ILogger Logger { get; }

    /// <summary>The key layout, settled at first use (the multiplexer is connected by then; constructors do no I/O and touch no connection).</summary>
    internal RedisKeys Keys => _keys ??= RedisClusterMode.KeysFor(_multiplexer, Options);

    internal IDatabase Database => _multiplexer.GetDatabase();

    internal ISubscriber Subscriber => _multiplexer.GetSubscriber();

    /// <summary>Whether this broker talks to Redis through <paramref name="multiplexer"/> (so a backend on it can act for the broker in its scripts).</summary>
    internal bool Uses(IConnectionMultiplexer multiplexer) => ReferenceEquals(_multiplexer, multiplexer);

    internal IConnectionMultiplexer Multiplexer => _multiplexer;

    /// <summary>
    /// For a message that goes to its queue now (no ETA ahead), the list it is pushed to and its priority level;
    /// what <see cref="PublishAsync"/> pushes, for a backend that pushes it in its own script.
    /// </summary>
    internal bool TryGetImmediateTarget(OutgoingMessage message, out RedisKey target, out string levelText)
    {
        if (message.Eta is { } eta && eta > Time.GetUtcNow())
        {
            target = default;
            levelText = string.Empty;
            return false;
        }

        var level = Options.Priorities ? message.Priority : (byte)0;
        var keys = KeysOf(message.Queue);
        levelText = level == 0 ? "0" : level.ToString(CultureInfo.InvariantCulture);
        target = level == 0 ? keys.List : Keys.PriorityListPrefix(message.Queue) + levelText;
        return true;
    }

    /// <summary>A queue's keys, computed once per queue and process (the hot path concatenates no key strings).</summary>
    internal QueueKeys KeysOf(string queue)
    {
        if (_queueKeys.TryGetValue(queue, out var keys))
        {
            return keys;
        }

        keys = new QueueKeys(queue, Keys.Queue(queue), Keys.PriorityLevels(queue), Keys.QueueScope(queue));
        return _queueKeys.Count < 10_000 ? _queueKeys.GetOrAdd(queue, keys) : keys;
    }

    internal sealed record QueueKeys(RedisValue Name, RedisKey List, RedisKey PriorityLevels, RedisValue Scope);

    /// <summary>
    /// On a cluster the queues set is in another slot than the queue's keys, so it is not in the push script: each
    /// process adds a queue to it once (its consumers' heartbeats add it again).
    /// </summary>
    internal async Task NoteQueueAsync(string queue)
    {
        if (_notedQueues.Count < 10_000 && !_notedQueues.TryAdd(queue, 0))
        {
            return;
        }

        try
        {
            await Database.SetAddAsync(Keys.Queues, queue).ConfigureAwait(false);
        }
        catch
        {
            _notedQueues.TryRemove(queue, out _);
            throw;
        }
    }

    /// <summary>Set when this process publishes a delayed message, so that its movers can look sooner than their interval.</summary>
    internal AsyncSignal DelayedPublished => _delayedPublished;

    /// <inheritdoc/>
    public async ValueTask PublishAsync(OutgoingMessage message, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        ArgumentException.ThrowIfNullOrEmpty(message.Queue, nameof(message));
        ThrowIfDisposed();
        cancellationToken.ThrowIfCancellationRequested();
        var db = Database;
        var queue = message.Queue;
        if (message.Eta is { } eta && eta > Time.GetUtcNow())
        {
            // machinery's member is the JSON and its re-publisher reads the queue from RoutingKey; a body that does
            // not route itself to this queue waits in the queue's own delayed set instead.
            var set = RoutesTo(message.Body.Span, queue) ? Keys.DelayedFor(queue) : Keys.PrivateDelayed(queue);
            var add = db.SortedSetAddAsync(set, message.Body, RedisTime.ToUnixNanoseconds(eta));
            var note = db.SetAddAsync(Keys.Queues, queue);
            await add.ConfigureAwait(false);
            await note.ConfigureAwait(false);
            await ReplicaAcknowledgement.WaitAsync(db, Options).ConfigureAwait(false);
            _delayedPublished.Set();
            return;
        }

        var level = Options.Priorities ? message.Priority : (byte)0;
        var levelText = level == 0 ? "0" : level.ToString(CultureInfo.InvariantCulture);
        RedisKey target = level == 0 ? Keys.Queue(queue) : Keys.PriorityListPrefix(queue) + levelText;
        await db.ScriptEvaluateAsync(
            RedisScripts.Publish,
            Keys.PublishKeys(target, queue),
            [message.Body, queue, levelText]).ConfigureAwait(false);
        if (Keys.Cluster)
        {
            await NoteQueueAsync(queue).ConfigureAwait(false);
        }

        await ReplicaAcknowledgement.WaitAsync(db, Options).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async ValueTask<IMessageConsumer> ConsumeAsync(string queue, ConsumeOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(queue);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Prefetch, 1, nameof(options));
        ThrowIfDisposed();
        var consumer = new RedisMessageConsumer(this, queue, options);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _consumers.Add(consumer);
        }

        try
        {
            await consumer.StartAsync(cancellationToken).ConfigureAwait(false);
            return consumer;
        }
        catch
        {
            await consumer.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <inheritdoc/>
    public async ValueTask<QueueStatistics> GetQueueStatisticsAsync(string queue, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(queue);
        var counts = (RedisResult[])(await Database.ScriptEvaluateAsync(
            RedisScripts.Statistics,
            Keys.Cluster
                ? [Keys.Queue(queue), Keys.PriorityLevels(queue), Keys.PrivateDelayed(queue), Keys.Consumers(queue), Keys.DelayedFor(queue)]
                : [Keys.Queue(queue), Keys.PriorityLevels(queue), Keys.PrivateDelayed(queue), Keys.Consumers(queue), Keys.DeadLetterCounts],
            [Keys.PriorityListPrefix(queue), Keys.QueueScope(queue) + "inflight:", queue, Keys.Cluster ? "1" : "0"]).ConfigureAwait(false))!;
        var delayed = (long)counts[1];
        var dead = (long)counts[3];
        if (Keys.Cluster)
        {
            // The queue's own delayed set was counted in the script; the dead-letter counts live in their own slot.
            dead = (long?)await Database.HashGetAsync(Keys.DeadLetterCounts, queue).ConfigureAwait(false) ?? 0;
        }
        else
        {
            await foreach (var _ in DelayedMembersOfAsync(queue, cancellationToken).ConfigureAwait(false))
            {
                delayed++;
            }
        }

        return new QueueStatistics(queue, (long)counts[0], delayed, (long)counts[2], Math.Max(0, dead));
    }

    /// <inheritdoc/>
    public async ValueTask<IReadOnlyList<string>> ListQueuesAsync(CancellationToken cancellationToken = default)
    {
        var members = await Database.SetMembersAsync(Keys.Queues).ConfigureAwait(false);
        return [.. members.Select(m => (string)m!).Order(StringComparer.Ordinal)];
    }

    /// <inheritdoc/>
    public async ValueTask<long> PurgeAsync(string queue, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(queue);
        var db = Database;
        var removed = (long)await db.ScriptEvaluateAsync(
            RedisScripts.Purge,
            Keys.Cluster
                ? [Keys.Queue(queue), Keys.PriorityLevels(queue), Keys.PrivateDelayed(queue), Keys.Deaths(queue), Keys.DelayedFor(queue)]
                : [Keys.Queue(queue), Keys.PriorityLevels(queue), Keys.PrivateDelayed(queue), Keys.Deaths(queue)],
            [Keys.PriorityListPrefix(queue)]).ConfigureAwait(false);
        if (Keys.Cluster)
        {
            return removed; // the queue's own delayed set went in the script
        }

        // machinery's delayed set is shared by every queue: remove this queue's members one by one (a member
        // moved meanwhile by a mover is simply not removed).
        var batch = new List<RedisValue>();
        await foreach (var member in DelayedMembersOfAsync(queue, cancellationToken).ConfigureAwait(false))
        {
            batch.Add(member);
        }

        for (var i = 0; i < batch.Count; i += 500)
        {
            removed += await db.SortedSetRemoveAsync(Keys.Delayed, [.. batch.Skip(i).Take(500)]).ConfigureAwait(false);
        }

        return removed;
    }

    /// <inheritdoc/>
    public async ValueTask<IReadOnlyList<DeadLetter>> GetDeadLettersAsync(int maxCount, CancellationToken cancellationToken = default)
    {
        if (maxCount <= 0)
        {
            return [];
        }

        var db = Database;
        var ids = await db.ListRangeAsync(Keys.DeadLetters, 0, maxCount - 1).ConfigureAwait(false);
        var entries = ids.Select(id => db.HashGetAsync(Keys.DeadLetterEntryPrefix + (string)id!, DeadLetterFields)).ToArray();
        await Task.WhenAll(entries).ConfigureAwait(false);
        var letters = new List<DeadLetter>(ids.Length);
        for (var i = 0; i < ids.Length; i++)
        {
            var fields = entries[i].Result;
            if (fields[0].IsNull || fields[3].IsNull)
            {
                continue; // requeued meanwhile
            }

            var at = long.TryParse((string?)fields[2], NumberStyles.Integer, CultureInfo.InvariantCulture, out var ms) ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : DateTimeOffset.UnixEpoch;
            letters.Add(new DeadLetter((string)ids[i]!, (string)fields[0]!, (string?)fields[1] ?? string.Empty, (byte[])fields[3]!, at));
        }

        return letters;
    }

    /// <inheritdoc/>
    public async ValueTask<int> RequeueDeadLettersAsync(int maxCount, CancellationToken cancellationToken = default)
    {
        if (maxCount <= 0)
        {
            return 0;
        }

        if (Keys.Cluster)
        {
            return await RedisClusterDeadLetters.RequeueAsync(this, maxCount).ConfigureAwait(false);
        }

        return (int)await Database.ScriptEvaluateAsync(
            RedisScripts.RequeueDeadLetters,
            [Keys.DeadLetters, Keys.DeadLetterCounts],
            [maxCount, Keys.DeadLetterEntryPrefix, Keys.Prefix]).ConfigureAwait(false);
    }

    /// <summary>Stops every consumer of this broker, handing back what they hold. The multiplexer stays open.</summary>
    /// <returns>A task that completes when the consumers have stopped.</returns>
    public async ValueTask DisposeAsync()
    {
        RedisMessageConsumer[] consumers;
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            consumers = [.. _consumers];
        }

        foreach (var consumer in consumers)
        {
            await consumer.DisposeAsync().ConfigureAwait(false);
        }
    }

    internal void Forget(RedisMessageConsumer consumer)
    {
        lock (_gate)
        {
            _consumers.Remove(consumer);
        }
    }

    private static readonly RedisValue[] DeadLetterFields = ["queue", "reason", "at", "body"];

    private void ThrowIfDisposed()
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
        }
    }

    /// <summary>machinery's delayed members that route to <paramref name="queue"/>, read in pages.</summary>
    private async IAsyncEnumerable<RedisValue> DelayedMembersOfAsync(string queue, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        const int Page = 500;
        var db = Database;
        for (long start = 0; ; start += Page)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var members = await db.SortedSetRangeByRankAsync(Keys.Delayed, start, start + Page - 1).ConfigureAwait(false);
            foreach (var member in members)
            {
                if (RoutesTo(((ReadOnlyMemory<byte>)member).Span, queue))
                {
                    yield return member;
                }
            }

            if (members.Length < Page)
            {
                yield break;
            }
        }
    }

    /// <summary>Whether the body is a JSON object whose top-level <c>RoutingKey</c> is <paramref name="queue"/> (what the mover script reads).</summary>
    internal static bool RoutesTo(ReadOnlySpan<byte> body, string queue)
    {
        try
        {
            var reader = new Utf8JsonReader(body, new JsonReaderOptions { MaxDepth = 256 });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return false;
            }

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("RoutingKey"u8))
                {
                    return reader.Read() && reader.TokenType == JsonTokenType.String && reader.ValueTextEquals(queue);
                }

                reader.Read();
                reader.Skip();
            }

            return false;
        }
        catch (JsonException)
        {
            return false;
        }
    }
}
