using System.Collections.Concurrent;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Threading.Channels;
using Conveyor.Sqlite.Internal;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Conveyor.Sqlite;

/// <summary>
/// A broker in a SQLite database file, shared by every worker and producer process that opens the same file.
/// A delivered message is leased to one consumer at a time; the consumer extends its leases by heartbeats, and
/// the messages of a consumer that died (no heartbeat for <see cref="SqliteConveyorOptions.VisibilityTimeout"/>)
/// are delivered to another. Honours ETAs, priorities (higher first, FIFO within a priority) and prefetch, and
/// keeps a dead-letter table.
/// </summary>
/// <remarks>
/// Writes of a process are committed together (group commit), and consumers fetch up to their free prefetch in
/// one transaction. Idle consumers do not spin: a publish in this process wakes them at once; another process's
/// publish is noticed by a poll of SQLite's change counter, every millisecond while the database changes,
/// backing off to <see cref="SqliteConveyorOptions.MaxPollInterval"/> while it is idle.
/// </remarks>
public sealed class SqliteBroker : IBroker
{
    private readonly SqliteStore _store;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly long _visibilityTimeoutMs;
    private readonly TimeSpan _heartbeatInterval;
    private readonly int _fetchBatchSize;
    private readonly ConcurrentDictionary<Consumer, byte> _consumers = new();
    private int _disposed;

    /// <summary>Creates a broker. Does no I/O: the database is opened (and its schema created) on first use.</summary>
    /// <param name="options">The settings; <see cref="SqliteConveyorOptions.DatabasePath"/> is required.</param>
    /// <param name="timeProvider">The clock for ETAs, leases and polling; the system clock when <see langword="null"/>.</param>
    /// <param name="loggerFactory">Logging; none when <see langword="null"/>.</param>
    public SqliteBroker(SqliteConveyorOptions options, TimeProvider? timeProvider = null, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _time = timeProvider ?? TimeProvider.System;
        loggerFactory ??= NullLoggerFactory.Instance;
        _logger = loggerFactory.CreateLogger<SqliteBroker>();
        _visibilityTimeoutMs = (long)Math.Ceiling(options.VisibilityTimeout.TotalMilliseconds);
        _heartbeatInterval = options.EffectiveHeartbeatInterval;
        _fetchBatchSize = options.FetchBatchSize;
        _store = SqliteStore.Acquire(options, _time, loggerFactory);
    }

    /// <inheritdoc/>
    public BrokerCapabilities Capabilities =>
        BrokerCapabilities.DelayedDelivery | BrokerCapabilities.Priorities | BrokerCapabilities.Redelivery | BrokerCapabilities.Distributed;

    private long NowMs => _time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <inheritdoc/>
    public ValueTask PublishAsync(OutgoingMessage message, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        ArgumentException.ThrowIfNullOrEmpty(message.Queue, nameof(message));
        ThrowIfDisposed();
        var body = ToArray(message.Body);
        return new ValueTask(_store.WriteAsync((Broker: this, Message: message, Body: body), static (context, s) =>
        {
            var now = s.Broker.NowMs;
            var state = Sql.Ready;
            var dueAt = now;
            if (s.Message.Eta is { } eta && CeilingMs(eta) is var etaMs && etaMs > now)
            {
                state = Sql.Delayed;
                dueAt = etaMs;
            }

            context.Command(Sql.InsertMessage)
                .With("$queue", s.Message.Queue)
                .With("$state", state)
                .With("$priority", (int)s.Message.Priority)
                .With("$due_at", dueAt)
                .With("$now", now)
                .With("$task_id", s.Message.TaskId)
                .With("$body", s.Body)
                .ExecuteNonQuery();
            context.QueueChanged(s.Message.Queue);
            return 0;
        }, cancellationToken));
    }

    /// <inheritdoc/>
    public async ValueTask<IMessageConsumer> ConsumeAsync(string queue, ConsumeOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(queue);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Prefetch, 1, nameof(options));
        ThrowIfDisposed();

        // Registering the queue lists it even before its first message, as declaring a queue would.
        await _store.WriteAsync(queue, static (context, queue) => context.Command(Sql.RegisterQueue).With("$queue", queue).ExecuteNonQuery(), cancellationToken)
            .ConfigureAwait(false);
        var consumer = new Consumer(this, queue, options);
        _consumers[consumer] = 0;
        if (Volatile.Read(ref _disposed) != 0)
        {
            await consumer.DisposeAsync().ConfigureAwait(false);
            ThrowIfDisposed();
        }

        consumer.Start();
        return consumer;
    }

    /// <inheritdoc/>
    public ValueTask<QueueStatistics> GetQueueStatisticsAsync(string queue, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(queue);
        ThrowIfDisposed();
        return _store.ReadAsync((Queue: queue, Now: NowMs), static (connection, s) =>
        {
            long ready, delayed = 0, inFlight = 0, dead;
            connection.Execute("BEGIN;");
            try
            {
                ready = connection.Command(Sql.CountReady).With("$queue", s.Queue).ExecuteScalarInt64() ?? 0;
                using (var reader = connection.Command(Sql.CountWaiting).With("$queue", s.Queue).With("$now", s.Now).ExecuteReader())
                {
                    while (reader.Read())
                    {
                        var state = reader.GetInt32(0);
                        var due = reader.GetInt64(1) != 0;
                        var count = reader.GetInt64(2);
                        if (due)
                        {
                            ready += count; // its ETA or its lease has passed: the next fetch takes it
                        }
                        else if (state == Sql.Delayed)
                        {
                            delayed += count;
                        }
                        else
                        {
                            inFlight += count;
                        }
                    }
                }

                dead = connection.Command(Sql.CountDeadLetters).With("$queue", s.Queue).ExecuteScalarInt64() ?? 0;
            }
            finally
            {
                connection.Execute("COMMIT;");
            }

            return new QueueStatistics(s.Queue, ready, delayed, inFlight, dead);
        }, cancellationToken);
    }

    /// <inheritdoc/>
    public ValueTask<IReadOnlyList<string>> ListQueuesAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        return _store.ReadAsync(0, static (connection, _) =>
        {
            var queues = new List<string>();
            using var reader = connection.Command(Sql.ListQueues).ExecuteReader();
            while (reader.Read())
            {
                queues.Add(reader.GetString(0));
            }

            return (IReadOnlyList<string>)queues;
        }, cancellationToken);
    }

    /// <inheritdoc/>
    public async ValueTask<long> PurgeAsync(string queue, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(queue);
        ThrowIfDisposed();
        return await _store.WriteAsync((Broker: this, Queue: queue), static (context, s) =>
        {
            long removed = context.Command(Sql.PurgeReady).With("$queue", s.Queue).ExecuteNonQuery();
            removed += context.Command(Sql.PurgeWaiting).With("$queue", s.Queue).With("$now", s.Broker.NowMs).ExecuteNonQuery();
            return removed;
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public ValueTask<IReadOnlyList<DeadLetter>> GetDeadLettersAsync(int maxCount, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        if (maxCount <= 0)
        {
            return ValueTask.FromResult<IReadOnlyList<DeadLetter>>([]);
        }

        return _store.ReadAsync(maxCount, static (connection, maxCount) =>
        {
            var letters = new List<DeadLetter>();
            using var reader = connection.Command(Sql.SelectDeadLetters).With("$limit", maxCount).ExecuteReader();
            while (reader.Read())
            {
                letters.Add(new DeadLetter(
                    reader.GetInt64(0).ToString(CultureInfo.InvariantCulture),
                    reader.GetString(1),
                    reader.GetString(2),
                    reader.GetBytes(3),
                    DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(4))));
            }

            return (IReadOnlyList<DeadLetter>)letters;
        }, cancellationToken);
    }

    /// <inheritdoc/>
    /// <remarks>Requeued messages keep their priority and are delivered again at once (their ETA, if any, is not
    /// restored), after the messages already waiting in their queue.</remarks>
    public async ValueTask<int> RequeueDeadLettersAsync(int maxCount, CancellationToken cancellationToken = default)
    {
        ThrowIfDisposed();
        if (maxCount <= 0)
        {
            return 0;
        }

        return await _store.WriteAsync((Broker: this, Limit: maxCount), static (context, s) =>
        {
            var queues = new List<string>();
            using (var reader = context.Command(Sql.DeadLetterQueues).With("$limit", s.Limit).ExecuteReader())
            {
                while (reader.Read())
                {
                    queues.Add(reader.GetString(0));
                }
            }

            var moved = context.Command(Sql.RequeueDeadLetters).With("$limit", s.Limit).With("$now", s.Broker.NowMs).ExecuteNonQuery();
            context.Command(Sql.DeleteDeadLetters).With("$limit", s.Limit).ExecuteNonQuery();
            foreach (var queue in queues)
            {
                context.QueueChanged(queue);
            }

            return moved;
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Stops every consumer of this broker (handing back what they hold) and closes the database when no
    /// other component of this process uses it.</summary>
    /// <returns>A task that completes when everything is closed.</returns>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        foreach (var consumer in _consumers.Keys)
        {
            await consumer.DisposeAsync().ConfigureAwait(false);
        }

        await _store.ReleaseAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// Makes a consumer stop as if its process had been killed: it stops fetching and heartbeating, its channel
    /// completes, and it neither settles nor hands back anything, so its messages return only when their leases
    /// expire. For tests of redelivery.
    /// </summary>
    internal static ValueTask SimulateCrashAsync(IMessageConsumer consumer) =>
        consumer is Consumer sqliteConsumer
            ? sqliteConsumer.StopAsync(handBack: false)
            : throw new ArgumentException("Not a consumer of a SqliteBroker.", nameof(consumer));

    private static byte[] ToArray(ReadOnlyMemory<byte> body) =>
        MemoryMarshal.TryGetArray(body, out var segment) && segment.Offset == 0 && segment.Count == segment.Array!.Length
            ? segment.Array
            : body.ToArray();

    // An ETA is rounded up to the millisecond, so a message is never delivered before it.
    private static long CeilingMs(DateTimeOffset time)
    {
        var ticks = time.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks;
        return (ticks + TimeSpan.TicksPerMillisecond - 1) / TimeSpan.TicksPerMillisecond;
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);

    private enum Settlement
    {
        Ack,
        Release,
        DeadLetter,
    }

    private readonly record struct FetchedMessage(long Id, int Priority, int DeliveryCount, byte[] Body);

    private sealed record FetchResult(List<FetchedMessage> Messages, long? NextDueMs);

    /// <summary>
    /// A subscription: a pump that leases up to the free prefetch in one transaction and waits (without polling)
    /// when the queue is drained, and a heartbeat that extends the leases of everything it holds.
    /// </summary>
    private sealed class Consumer : IMessageConsumer
    {
        // A drained consumer fetches at least this often even without a wake-up: a safety net, not the mechanism.
        private static readonly TimeSpan IdleRecheck = TimeSpan.FromSeconds(1);
        private static readonly TimeSpan MaxFailureDelay = TimeSpan.FromSeconds(5);

        private readonly SqliteBroker _broker;
        private readonly string _queue;
        private readonly string _name;
        private readonly string _owner;
        private readonly QueueSignal _signal;
        private readonly PrefetchWindow<IBrokerDelivery> _window;
        private readonly ConcurrentDictionary<long, Delivery> _held = new();
        private readonly CancellationTokenSource _stop = new();
        private Task _pump = Task.CompletedTask;
        private Task _heartbeat = Task.CompletedTask;
        private int _stopped;

        public Consumer(SqliteBroker broker, string queue, ConsumeOptions options)
        {
            _broker = broker;
            _queue = queue;
            _name = options.ConsumerName;
            // Unique per subscription: two consumers with the same name (two workers of one process) hold
            // different leases.
            _owner = options.ConsumerName + "#" + Guid.NewGuid().ToString("N");
            _window = new PrefetchWindow<IBrokerDelivery>(options.Prefetch, Math.Min(options.Prefetch / 2, broker._fetchBatchSize));
            _signal = broker._store.QueueSignal(queue);
        }

        public ChannelReader<IBrokerDelivery> Deliveries => _window.Reader;

        // A paused queue: the fetch loop stops; the worker hands back what is buffered (see IMessageConsumer).
        public ValueTask<bool> StopReceivingAsync(CancellationToken cancellationToken = default)
        {
            _window.StopFetching();
            return ValueTask.FromResult(true);
        }

        private SqliteStore Store => _broker._store;

        public SqliteStore StoreOf => _broker._store;

        public string LeaseOwner => _owner;

        public void Start()
        {
            Store.Poller.Subscribe();
            _pump = Task.Run(PumpAsync);
            _heartbeat = Task.Run(HeartbeatAsync);
        }

        public ValueTask DisposeAsync() => StopAsync(handBack: true);

        public async ValueTask StopAsync(bool handBack)
        {
            if (Interlocked.Exchange(ref _stopped, 1) != 0)
            {
                return;
            }

            await _stop.CancelAsync().ConfigureAwait(false);
            await Task.WhenAll(_pump, _heartbeat).ConfigureAwait(false);
            _window.Complete();
            if (_pump != Task.CompletedTask)
            {
                Store.Poller.Unsubscribe();
            }

            // What is neither settled nor being settled goes back (or, for a simulated crash, is abandoned).
            var open = _held.Values.Where(d => d.TryAbandon()).Select(d => d.Id).ToList();
            _held.Clear();
            if (handBack && open.Count > 0)
            {
                try
                {
                    await Store.WriteAsync((Consumer: this, Ids: Json.Int64Array(open)), static (context, s) =>
                    {
                        var released = context.Command(Sql.ReleaseMany).With("$ids", s.Ids).With("$owner", s.Consumer._owner).ExecuteNonQuery();
                        if (released > 0)
                        {
                            context.QueueChanged(s.Consumer._queue);
                        }

                        return released;
                    }, CancellationToken.None).ConfigureAwait(false);
                    Log.HandedBack(_broker._logger, _name, _queue, open.Count);
                }
                catch (Exception ex)
                {
                    Log.HandBackFailed(_broker._logger, ex, _name, _queue);
                }
            }

            _broker._consumers.TryRemove(this, out _);
            _stop.Dispose();
        }

        public async ValueTask SettleAsync(Delivery delivery, Settlement settlement, string? reason, CancellationToken cancellationToken)
        {
            if (!delivery.TryBeginSettle())
            {
                return; // already settled, or handed back when its consumer stopped
            }

            bool held;
            try
            {
                held = await Store.WriteAsync((Consumer: this, Delivery: delivery, Settlement: settlement, Reason: reason), static (context, s) =>
                {
                    var consumer = s.Consumer;
                    var id = s.Delivery.Id;
                    switch (s.Settlement)
                    {
                        case Settlement.Ack:
                            return context.Command(Sql.Ack).With("$id", id).With("$owner", consumer._owner).ExecuteNonQuery() == 1;
                        case Settlement.Release:
                            if (context.Command(Sql.Release).With("$id", id).With("$owner", consumer._owner).ExecuteNonQuery() == 1)
                            {
                                context.QueueChanged(consumer._queue);
                                return true;
                            }

                            return false;
                        default:
                            var moved = context.Command(Sql.DeadLetter)
                                .With("$id", id)
                                .With("$owner", consumer._owner)
                                .With("$reason", s.Reason ?? string.Empty)
                                .With("$now", consumer._broker.NowMs)
                                .ExecuteNonQuery();
                            if (moved == 1)
                            {
                                context.Command(Sql.DeleteMessage).With("$id", id).ExecuteNonQuery();
                            }

                            return moved == 1;
                    }
                }, cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                delivery.AbortSettle(); // not settled: the caller may try again, or release it
                throw;
            }

            CompleteSettle(delivery, held);
        }

        /// <summary>After a settlement's commit: the delivery is done, its credit returns.</summary>
        public void CompleteSettle(Delivery delivery, bool held)
        {
            delivery.EndSettle();
            if (_held.TryRemove(delivery.Id, out _))
            {
                _window.Release();
            }

            if (!held)
            {
                // The lease ran out (no heartbeat in time) and the message may already be with another consumer:
                // the settlement changed nothing.
                LogLeaseLost(delivery);
            }
        }

        private void LogLeaseLost(Delivery delivery)
        {
            if (delivery.MarkLeaseLost())
            {
                Log.LeaseLost(_broker._logger, _name, _queue, delivery.Id);
            }
        }

        private async Task PumpAsync()
        {
            var token = _stop.Token;
            var failures = 0;
            while (!token.IsCancellationRequested)
            {
                try
                {
                    // Refill in batches: while deliveries are still buffered, wait until enough credits are free
                    // for one fetch to carry several messages, instead of one transaction per settled message.
                    var limit = await _window.WaitForRoomAsync(_broker._fetchBatchSize, token).ConfigureAwait(false);

                    // Taken before the fetch, so that a publish committed while we fetch still wakes us.
                    var woken = _signal.Next;
                    var result = await Store.WriteAsync((Consumer: this, Limit: limit), static (context, s) => s.Consumer.Fetch(context, s.Limit), token)
                        .ConfigureAwait(false);
                    failures = 0;
                    foreach (var message in result.Messages)
                    {
                        var delivery = new Delivery(this, message.Id, _queue, message.Body, message.DeliveryCount);
                        _held[message.Id] = delivery;

                        // Refused only while stopping: it stays held, and the stop hands it back with the rest.
                        _window.TryAdd(delivery);
                    }

                    if (result.Messages.Count < limit)
                    {
                        await WaitForWorkAsync(woken, result.NextDueMs, token).ConfigureAwait(false);
                    }
                }
                catch (OperationCanceledException) when (token.IsCancellationRequested)
                {
                    break;
                }
                catch (Exception ex)
                {
                    var delay = TimeSpan.FromMilliseconds(Math.Min(MaxFailureDelay.TotalMilliseconds, 50 * Math.Pow(2, Math.Min(failures++, 10))));
                    Log.FetchFailed(_broker._logger, ex, _name, _queue, delay);
                    try
                    {
                        await Task.Delay(delay, _broker._time, token).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException)
                    {
                        break;
                    }
                }
            }
        }

        // Runs on the writer thread, inside its transaction.
        private FetchResult Fetch(WriteContext context, int limit)
        {
            var now = _broker.NowMs;
            // Delayed messages whose ETA passed and leases that ran out become ready, keeping their id (and so
            // their place ahead of newer messages).
            context.Command(Sql.PromoteDue).With("$queue", _queue).With("$now", now).ExecuteNonQuery();
            var messages = new List<FetchedMessage>(limit);
            using (var reader = context.Command(Sql.LeaseReady)
                .With("$queue", _queue)
                .With("$owner", _owner)
                .With("$lease_until", now + _broker._visibilityTimeoutMs)
                .With("$limit", limit)
                .ExecuteReader())
            {
                while (reader.Read())
                {
                    messages.Add(new FetchedMessage(reader.GetInt64(0), reader.GetInt32(1), reader.GetInt32(2), reader.GetBytes(3)));
                }
            }

            // RETURNING has no order; deliver in dequeue order.
            messages.Sort(static (a, b) => a.Priority != b.Priority ? b.Priority.CompareTo(a.Priority) : a.Id.CompareTo(b.Id));
            long? nextDue = null;
            if (messages.Count < limit && context.Command(Sql.NextDue).With("$queue", _queue).ExecuteScalarInt64() is long due)
            {
                nextDue = due;
            }

            return new FetchResult(messages, nextDue);
        }

        private async Task WaitForWorkAsync(Task woken, long? nextDueMs, CancellationToken token)
        {
            var wait = IdleRecheck;
            if (nextDueMs is { } due)
            {
                var untilDue = due - _broker.NowMs;
                if (untilDue <= 0)
                {
                    return; // came due while we fetched: fetch again
                }

                if (untilDue < wait.TotalMilliseconds)
                {
                    wait = TimeSpan.FromMilliseconds(untilDue);
                }
            }

            if (woken.IsCompleted)
            {
                return;
            }

            using var timer = CancellationTokenSource.CreateLinkedTokenSource(token);
            var delay = Task.Delay(wait, _broker._time, timer.Token);
            await Task.WhenAny(woken, delay).ConfigureAwait(false);
            await timer.CancelAsync().ConfigureAwait(false);
            token.ThrowIfCancellationRequested();
        }

        private async Task HeartbeatAsync()
        {
            var token = _stop.Token;

            // A periodic timer, not a delay armed after each write: the beats stay on their schedule however long a
            // write waited for the database, so a slow write cannot push the next beat past the leases it renews.
            using var beat = new PeriodicTimer(_broker._heartbeatInterval, _broker._time);
            while (!token.IsCancellationRequested)
            {
                try
                {
                    if (!await beat.WaitForNextTickAsync(token).ConfigureAwait(false))
                    {
                        break;
                    }

                    if (_held.IsEmpty)
                    {
                        continue;
                    }

                    var ids = _held.Keys.ToArray();
                    var kept = await Store.WriteAsync((Consumer: this, Ids: Json.Int64Array(ids)), static (context, s) =>
                    {
                        var kept = new HashSet<long>();
                        using var reader = context.Command(Sql.Heartbeat)
                            .With("$ids", s.Ids)
                            .With("$owner", s.Consumer._owner)
                            .With("$lease_until", s.Consumer._broker.NowMs + s.Consumer._broker._visibilityTimeoutMs)
                            .ExecuteReader();
                        while (reader.Read())
                        {
                            kept.Add(reader.GetInt64(0));
                        }

                        return kept;
                    }, token).ConfigureAwait(false);

                    foreach (var id in ids)
                    {
                        if (!kept.Contains(id) && _held.TryGetValue(id, out var delivery) && delivery.IsOpen)
                        {
                            LogLeaseLost(delivery);
                        }
                    }
                }
                catch (OperationCanceledException) when (token.IsCancellationRequested)
                {
                    break;
                }
                catch (Exception ex)
                {
                    Log.HeartbeatFailed(_broker._logger, ex, _name, _queue);
                }
            }
        }
    }

    /// <summary>
    /// For a result backend on the same database file: begins acknowledging <paramref name="delivery"/> inside the
    /// backend's own write (the row's DELETE in the transaction that stores the final state). False when it is not
    /// this store's, or already settled.
    /// </summary>
    internal static bool TryBeginAck(IBrokerDelivery delivery, SqliteStore store, out long id, out string owner)
    {
        if (delivery is Delivery ours && ReferenceEquals(ours.Owner.StoreOf, store) && ours.TryBeginSettle())
        {
            id = ours.Id;
            owner = ours.Owner.LeaseOwner;
            return true;
        }

        id = 0;
        owner = string.Empty;
        return false;
    }

    /// <summary>Ends an acknowledgement begun with <see cref="TryBeginAck"/> after its commit (<paramref name="held"/>: the lease was still ours).</summary>
    internal static void EndAck(IBrokerDelivery delivery, bool held)
    {
        var ours = (Delivery)delivery;
        ours.Owner.CompleteSettle(ours, held);
    }

    /// <summary>Undoes <see cref="TryBeginAck"/> when the write failed: the delivery may be settled again.</summary>
    internal static void AbortAck(IBrokerDelivery delivery) => ((Delivery)delivery).AbortSettle();

    private sealed class Delivery(Consumer owner, long id, string queue, byte[] body, int deliveryCount) : IBrokerDelivery
    {
        public Consumer Owner => owner;

        private const int Open = 0;
        private const int Settling = 1;
        private const int Done = 2;
        private int _state;
        private int _leaseLost;

        public long Id { get; } = id;

        public ReadOnlyMemory<byte> Body { get; } = body;

        public string Queue { get; } = queue;

        public int DeliveryCount { get; } = deliveryCount;

        public bool IsOpen => Volatile.Read(ref _state) == Open;

        public bool TryBeginSettle() => Interlocked.CompareExchange(ref _state, Settling, Open) == Open;

        public void AbortSettle() => Volatile.Write(ref _state, Open);

        public void EndSettle() => Volatile.Write(ref _state, Done);

        public bool TryAbandon() => Interlocked.CompareExchange(ref _state, Done, Open) == Open;

        public bool MarkLeaseLost() => Interlocked.Exchange(ref _leaseLost, 1) == 0;

        public ValueTask AckAsync(CancellationToken cancellationToken = default) =>
            owner.SettleAsync(this, Settlement.Ack, null, cancellationToken);

        public ValueTask ReleaseAsync(CancellationToken cancellationToken = default) =>
            owner.SettleAsync(this, Settlement.Release, null, cancellationToken);

        public ValueTask DeadLetterAsync(string reason, CancellationToken cancellationToken = default) =>
            owner.SettleAsync(this, Settlement.DeadLetter, reason, cancellationToken);
    }
}
