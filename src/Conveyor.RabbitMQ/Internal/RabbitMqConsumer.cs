using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;
using RabbitMQ.Client.Exceptions;

namespace Conveyor.RabbitMQ.Internal;

/// <summary>
/// One AMQP consumer on a channel of its own, with <c>basic.qos</c> = the worker's prefetch and manual acks. Deliveries
/// are copied into an unbounded channel: the server never sends more than the prefetch unsettled, so it stays small.
/// </summary>
/// <remarks>
/// The channel is recovered with the connection (automatic recovery re-registers the consumer), and RabbitMQ
/// requeues whatever was unacked when the connection dropped. Delivery tags start again on the recovered channel,
/// so a delivery from before the loss carries the epoch it was received in and is never acked on the new channel:
/// its message is delivered again (at-least-once).
/// </remarks>
internal sealed class RabbitMqConsumer : AsyncDefaultBasicConsumer, IMessageConsumer
{

    private readonly RabbitMqBroker _broker;
    private readonly IConnection _connection;
    private readonly ILogger _logger;
    private readonly Channel<IBrokerDelivery> _deliveries = System.Threading.Channels.Channel.CreateUnbounded<IBrokerDelivery>(new UnboundedChannelOptions { SingleWriter = true });
    private readonly CurrentDeliveryReader _current;
    private int _epoch;
    private long _unsettled;
    private int _stopped;
    private int _receivingStopped;

    // Acknowledgements are coalesced (see AcknowledgeAsync): under _ackGate.
    private readonly Lock _ackGate = new();
    private readonly int _maxAcksWaiting;
    private readonly SortedSet<ulong> _settledAhead = [];
    private readonly SortedSet<ulong> _brokerSettled = [];
    private readonly List<(ulong Tag, SettleKind Kind)> _ops = [];
    private ulong _settledPrefix;
    private ulong _ackSent;
    private int _ackEpoch;
    private bool _ackLoopRunning;

    public RabbitMqConsumer(RabbitMqBroker broker, IChannel channel, IConnection connection, string queue, int prefetch, ILogger logger)
        : base(channel)
    {
        // Acknowledgements waiting behind a running delivery hold the prefetch window: at most a quarter of it.
        _maxAcksWaiting = Math.Clamp(prefetch / 4, 0, 64);
        _broker = broker;
        _connection = connection;
        Queue = queue;
        _logger = logger;
        _current = new CurrentDeliveryReader(_deliveries.Reader, static delivery => ((Delivery)delivery).DropIfStale());
    }

    public string Queue { get; }

    public string? Tag { get; set; }

    public ChannelReader<IBrokerDelivery> Deliveries => _current;

    internal int Epoch => Volatile.Read(ref _epoch);

    public override Task HandleBasicDeliverAsync(
        string consumerTag,
        ulong deliveryTag,
        bool redelivered,
        string exchange,
        string routingKey,
        IReadOnlyBasicProperties properties,
        ReadOnlyMemory<byte> body,
        CancellationToken cancellationToken = default)
    {
        // The body's memory belongs to the client until this returns: copy it.
        var count = AmqpHeaders.GetInt64(properties.Headers, "x-delivery-count") is { } previous
            ? (int)Math.Min(int.MaxValue - 1, previous) + 1 // quorum queues count earlier deliveries
            : redelivered ? 2 : 1;
        var delivery = new Delivery(this, deliveryTag, Epoch, body.ToArray(), count, properties.Headers);
        Interlocked.Increment(ref _unsettled);
        _broker.AddInFlight(Queue, 1);
        if (!_deliveries.Writer.TryWrite(delivery))
        {
            // Stopped meanwhile: the channel closes, and RabbitMQ requeues it.
            Forget();
        }

        return Task.CompletedTask;
    }

    protected override Task OnCancelAsync(string[] consumerTags, CancellationToken cancellationToken = default)
    {
        // The server cancelled us (queue deleted, or a quorum queue's leader went away): the worker re-subscribes.
        if (Volatile.Read(ref _stopped) == 0 && Volatile.Read(ref _receivingStopped) == 0)
        {
            Log.ConsumerCancelled(_logger, Queue);
            _deliveries.Writer.TryComplete(new InvalidOperationException($"RabbitMQ cancelled the consumer of queue {Queue}."));
        }

        return base.OnCancelAsync(consumerTags, cancellationToken);
    }

    public override async Task HandleChannelShutdownAsync(object channel, ShutdownEventArgs reason)
    {
        ArgumentNullException.ThrowIfNull(reason);
        Interlocked.Increment(ref _epoch);
        lock (_ackGate)
        {
            // Tags start again on the recovered channel.
            _settledAhead.Clear();
            _brokerSettled.Clear();
            _ops.Clear();
            _settledPrefix = 0;
            _ackSent = 0;
            _ackEpoch = Epoch;
        }

        // Unsettled deliveries of the closed channel go back to the queue on the server; stop counting them.
        var lost = Interlocked.Exchange(ref _unsettled, 0);
        _broker.AddInFlight(Queue, -lost);
        await base.HandleChannelShutdownAsync(channel, reason).ConfigureAwait(false);
        if (Volatile.Read(ref _stopped) != 0 || reason.Initiator == ShutdownInitiator.Application)
        {
            return;
        }

        // A lost connection is recovered by the client, consumer included: keep the Deliveries open. A channel
        // closed by an error of its own (the connection is fine) is never recovered: end the consumer so that the
        // worker subscribes again.
        if (_connection.IsOpen && reason.ReplyCode != Constants.ConnectionForced)
        {
            Log.ConsumerChannelClosed(_logger, Queue, reason.ReplyText);
            _deliveries.Writer.TryComplete(new InvalidOperationException($"The channel of the consumer of queue {Queue} closed: {reason.ReplyCode} {reason.ReplyText}"));
        }
    }

    /// <summary>
    /// A paused queue: <c>basic.cancel</c>, so RabbitMQ delivers nothing more on this channel, which stays open for the
    /// settlements of what was delivered; after the cancel-ok no delivery can arrive, so the buffer is completed and
    /// the worker hands back (nacks with requeue) the unstarted deliveries in it.
    /// </summary>
    public async ValueTask<bool> StopReceivingAsync(CancellationToken cancellationToken = default)
    {
        if (Volatile.Read(ref _stopped) != 0 || Interlocked.Exchange(ref _receivingStopped, 1) != 0)
        {
            return true;
        }

        if (Tag is { } tag && Channel.IsOpen)
        {
            try
            {
                await Channel.BasicCancelAsync(tag, noWait: false, cancellationToken).ConfigureAwait(false);
                Tag = null; // the dispose has nothing more to cancel
            }
            catch (Exception ex) when (ex is AlreadyClosedException or OperationInterruptedException or ObjectDisposedException)
            {
                // The channel is gone: RabbitMQ requeued its deliveries already.
            }
        }

        _deliveries.Writer.TryComplete();
        return true;
    }

    /// <summary>Stops as a killed process would: no cancel, no nack; closing the channel makes RabbitMQ requeue.</summary>
    public async ValueTask SimulateCrashAsync()
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
        {
            return;
        }

        _deliveries.Writer.TryComplete();
        await CloseChannelAsync().ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
        {
            return;
        }

        _deliveries.Writer.TryComplete();
        if (Channel.IsOpen)
        {
            await FlushSettlementsAsync().ConfigureAwait(false);
        }

        if (Tag is { } tag && Channel.IsOpen)
        {
            try
            {
                await Channel.BasicCancelAsync(tag).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is AlreadyClosedException or OperationInterruptedException or ObjectDisposedException)
            {
            }
        }

        // Closing the channel hands every unacked delivery back to the queue (RabbitMQ requeues them).
        await CloseChannelAsync().ConfigureAwait(false);
    }

    private async ValueTask CloseChannelAsync()
    {
        try
        {
            await Channel.CloseAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is AlreadyClosedException or OperationInterruptedException or ObjectDisposedException)
        {
        }

        var lost = Interlocked.Exchange(ref _unsettled, 0);
        _broker.AddInFlight(Queue, -lost);
        Channel.Dispose();
    }

    /// <summary>
    /// Settles deliveries through one ordered sender loop. Acknowledgements are coalesced: tags settle in any order,
    /// and once every tag up to some tag is settled, one <c>basic.ack</c> with <c>multiple</c> covers them all, sent
    /// while the next ones gather. Nacks and single acks (dead letters) go through the same loop, before any coalesced
    /// ack that could cover their tags. A delivery that settles while an older one still runs waits for it, unless
    /// many wait: then the waiting ones are acknowledged one by one, so a long task never holds the prefetch window.
    /// </summary>
    private void Settle(ulong tag, int epoch, SettleKind kind)
    {
        lock (_ackGate)
        {
            if (epoch != _ackEpoch || tag <= _settledPrefix || !_settledAhead.Add(tag))
            {
                return;
            }

            if (kind != SettleKind.CoalescedAck)
            {
                _brokerSettled.Add(tag);
                _ops.Add((tag, kind));
            }

            while (_settledAhead.Count > 0 && _settledAhead.Min == _settledPrefix + 1)
            {
                _settledPrefix++;
                _settledAhead.Remove(_settledPrefix);
            }

            if (_settledAhead.Count > _maxAcksWaiting)
            {
                // An older delivery still runs: acknowledge what waits one by one (once each); the prefix skips them.
                foreach (var waiting in _settledAhead)
                {
                    if (_brokerSettled.Add(waiting))
                    {
                        _ops.Add((waiting, SettleKind.SingleAck));
                    }
                }
            }

            if (_ackLoopRunning || (_ops.Count == 0 && _settledPrefix <= _ackSent))
            {
                return;
            }

            _ackLoopRunning = true;
        }

        _ = Task.Run(SendSettlementsAsync);
    }

    private async Task SendSettlementsAsync()
    {
        while (true)
        {
            ulong target = 0;
            ulong prefix;
            int epoch;
            List<(ulong Tag, SettleKind Kind)>? ops = null;
            lock (_ackGate)
            {
                prefix = _settledPrefix;
                epoch = _ackEpoch;
                if (_ops.Count > 0)
                {
                    ops = [.. _ops];
                    _ops.Clear();
                }

                if (ops is null && prefix <= _ackSent)
                {
                    _ackLoopRunning = false;
                    return;
                }

                // RabbitMQ refuses a multiple ack whose own tag is no longer outstanding: name the highest one that is.
                // Every tag up to the prefix is settled here, so nothing still running is covered.
                target = prefix;
                while (target > _ackSent && _brokerSettled.Contains(target))
                {
                    target--;
                }
            }

            try
            {
                if (ops is not null)
                {
                    foreach (var (tag, kind) in ops)
                    {
                        if (kind == SettleKind.Nack)
                        {
                            await Channel.BasicNackAsync(tag, multiple: false, requeue: true).ConfigureAwait(false);
                        }
                        else
                        {
                            await Channel.BasicAckAsync(tag, multiple: false).ConfigureAwait(false);
                        }
                    }
                }

                if (target > _ackSent)
                {
                    await Channel.BasicAckAsync(target, multiple: true).ConfigureAwait(false);
                }
            }
            catch (Exception ex) when (ex is AlreadyClosedException or OperationInterruptedException or ObjectDisposedException)
            {
                // The channel closed: RabbitMQ requeues whatever was not settled.
                Log.StaleDelivery(_logger, Queue);
                lock (_ackGate)
                {
                    _ackLoopRunning = false;
                }

                return;
            }

            lock (_ackGate)
            {
                if (epoch == _ackEpoch && prefix > _ackSent)
                {
                    _ackSent = prefix;
                    while (_brokerSettled.Count > 0 && _brokerSettled.Min <= prefix)
                    {
                        _brokerSettled.Remove(_brokerSettled.Min);
                    }
                }
            }
        }
    }

    /// <summary>
    /// Sends every settlement not yet sent, the acknowledgements waiting behind an unsettled delivery one by one,
    /// and waits (a few seconds at most) until they are written: before the channel closes, or RabbitMQ requeues
    /// tasks that finished.
    /// </summary>
    private async Task FlushSettlementsAsync()
    {
        var start = true;
        lock (_ackGate)
        {
            foreach (var waiting in _settledAhead)
            {
                if (_brokerSettled.Add(waiting))
                {
                    _ops.Add((waiting, SettleKind.SingleAck));
                }
            }

            if (_ackLoopRunning || (_ops.Count == 0 && _settledPrefix <= _ackSent))
            {
                start = false;
            }
            else
            {
                _ackLoopRunning = true;
            }
        }

        if (start)
        {
            _ = Task.Run(SendSettlementsAsync);
        }

        var deadline = Environment.TickCount64 + 5000;
        while (Environment.TickCount64 < deadline)
        {
            lock (_ackGate)
            {
                if (!_ackLoopRunning)
                {
                    return;
                }
            }

            await Task.Delay(1).ConfigureAwait(false);
        }
    }

    private enum SettleKind
    {
        CoalescedAck,
        SingleAck,
        Nack,
    }

    private void Forget()
    {
        if (Interlocked.Decrement(ref _unsettled) >= 0)
        {
            _broker.AddInFlight(Queue, -1);
        }
        else
        {
            Interlocked.Increment(ref _unsettled);
        }
    }

    private sealed class Delivery(RabbitMqConsumer owner, ulong tag, int epoch, byte[] body, int deliveryCount, IDictionary<string, object?>? headers) : IBrokerDelivery
    {
        private int _settled;

        public ReadOnlyMemory<byte> Body => body;

        public string Queue => owner.Queue;

        public int DeliveryCount => deliveryCount;

        /// <summary>A classic queue's redelivery: RabbitMQ says only that it was delivered before, not how often.</summary>
        public bool IsUncountedRedelivery => deliveryCount > 1 && AmqpHeaders.GetInt64(headers, "x-delivery-count") is null;

        /// <summary>Coalesced with the consumer's other acknowledgements (one <c>basic.ack</c> with <c>multiple</c> for many).</summary>
        public ValueTask AckAsync(CancellationToken cancellationToken = default) => SettleAsync(SettleKind.CoalescedAck);

        public ValueTask ReleaseAsync(CancellationToken cancellationToken = default) => SettleAsync(SettleKind.Nack);

        public async ValueTask DeadLetterAsync(string reason, CancellationToken cancellationToken = default)
        {
            if (!IsCurrent())
            {
                Log.StaleDelivery(owner._logger, owner.Queue);
                return;
            }

            // Stored (and confirmed) in the dead-letter queue first, then removed from the work queue: a crash
            // between the two leaves a copy in both, never in neither.
            await owner._broker.PublishDeadLetterAsync(owner.Queue, reason, body, headers, cancellationToken).ConfigureAwait(false);
            await SettleAsync(SettleKind.SingleAck).ConfigureAwait(false);
        }

        private bool IsCurrent() => epoch == owner.Epoch && owner.Channel.IsOpen;

        /// <summary>Drops a buffered delivery of a channel that has closed (RabbitMQ delivers it again); see <see cref="CurrentDeliveryReader"/>.</summary>
        public bool DropIfStale()
        {
            if (epoch == owner.Epoch || Interlocked.Exchange(ref _settled, 1) != 0)
            {
                return false;
            }

            Log.DroppedStaleDelivery(owner._logger, owner.Queue);
            return true;
        }

        /// <summary>Hands the settlement to the consumer's sender loop; the frame follows in order, without waiting here.</summary>
        private ValueTask SettleAsync(SettleKind kind)
        {
            if (Interlocked.Exchange(ref _settled, 1) != 0)
            {
                return ValueTask.CompletedTask;
            }

            if (!IsCurrent())
            {
                // Its channel closed: RabbitMQ has requeued it already, and its tag means nothing on the new channel.
                Log.StaleDelivery(owner._logger, owner.Queue);
                return ValueTask.CompletedTask;
            }

            owner.Forget();
            owner.Settle(tag, epoch, kind);
            return ValueTask.CompletedTask;
        }
    }
}
