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

    public RabbitMqConsumer(RabbitMqBroker broker, IChannel channel, IConnection connection, string queue, ILogger logger)
        : base(channel)
    {
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
        if (Volatile.Read(ref _stopped) == 0)
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

        public ValueTask AckAsync(CancellationToken cancellationToken = default) =>
            SettleAsync(static (channel, tag, ct) => channel.BasicAckAsync(tag, multiple: false, ct), cancellationToken);

        public ValueTask ReleaseAsync(CancellationToken cancellationToken = default) =>
            SettleAsync(static (channel, tag, ct) => channel.BasicNackAsync(tag, multiple: false, requeue: true, ct), cancellationToken);

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
            await SettleAsync(static (channel, tag, ct) => channel.BasicAckAsync(tag, multiple: false, ct), cancellationToken).ConfigureAwait(false);
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

        private async ValueTask SettleAsync(Func<IChannel, ulong, CancellationToken, ValueTask> settle, CancellationToken cancellationToken)
        {
            if (Interlocked.Exchange(ref _settled, 1) != 0)
            {
                return;
            }

            if (!IsCurrent())
            {
                // Its channel closed: RabbitMQ has requeued it already, and its tag means nothing on the new channel.
                Log.StaleDelivery(owner._logger, owner.Queue);
                return;
            }

            owner.Forget();
            try
            {
                await settle(owner.Channel, tag, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is AlreadyClosedException or OperationInterruptedException or ObjectDisposedException)
            {
                Log.StaleDelivery(owner._logger, owner.Queue);
            }
        }
    }
}
