namespace Conveyor;

/// <summary>
/// Moves task messages: producers publish, workers consume. Implemented once per engine (in-memory, SQLite,
/// Redis, RabbitMQ). Messages are machinery's JSON; the broker moves bytes and never parses them, except to
/// route dead letters back.
/// </summary>
public interface IBroker : IAsyncDisposable
{
    /// <summary>What this broker supports.</summary>
    BrokerCapabilities Capabilities { get; }

    /// <summary>
    /// Publishes a message. When the returned task completes, the broker has accepted the message durably (as far
    /// as the engine allows); an error means it may not have.
    /// </summary>
    /// <param name="message">The message.</param>
    /// <param name="cancellationToken">Cancels the publish.</param>
    /// <returns>A task that completes when the broker holds the message.</returns>
    ValueTask PublishAsync(OutgoingMessage message, CancellationToken cancellationToken = default);

    /// <summary>
    /// Publishes several messages. When the returned task completes, the broker holds every one; an error means
    /// some may not be held (a caller that retries may publish some twice, as with any at-least-once publish). The
    /// default publishes them concurrently through <see cref="PublishAsync"/>; a broker that can confirm a batch more
    /// cheaply (one timeout, one channel) does so.
    /// </summary>
    /// <param name="messages">The messages.</param>
    /// <param name="cancellationToken">Cancels the publishes.</param>
    /// <returns>A task that completes when the broker holds every message.</returns>
    ValueTask PublishBatchAsync(IReadOnlyList<OutgoingMessage> messages, CancellationToken cancellationToken = default) =>
        BrokerDefaults.PublishBatchAsync(this, messages, cancellationToken);

    /// <summary>
    /// Starts consuming a queue. Deliveries are buffered up to <see cref="ConsumeOptions.Prefetch"/>; each must be
    /// settled (acknowledged, released or dead-lettered). Disposing the consumer hands every unsettled delivery
    /// back to the broker.
    /// </summary>
    /// <param name="queue">The queue name.</param>
    /// <param name="options">Prefetch and consumer identity.</param>
    /// <param name="cancellationToken">Cancels the subscription.</param>
    /// <returns>The consumer.</returns>
    ValueTask<IMessageConsumer> ConsumeAsync(string queue, ConsumeOptions options, CancellationToken cancellationToken = default);

    /// <summary>Counts the messages of a queue by state.</summary>
    /// <param name="queue">The queue name.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The counts.</returns>
    ValueTask<QueueStatistics> GetQueueStatisticsAsync(string queue, CancellationToken cancellationToken = default);

    /// <summary>Lists the queues the broker knows of.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The queue names.</returns>
    ValueTask<IReadOnlyList<string>> ListQueuesAsync(CancellationToken cancellationToken = default);

    /// <summary>Deletes every ready and delayed message of a queue (in-flight messages are left to their workers).</summary>
    /// <param name="queue">The queue name.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>How many messages were removed.</returns>
    ValueTask<long> PurgeAsync(string queue, CancellationToken cancellationToken = default);

    /// <summary>Reads dead letters, oldest first.</summary>
    /// <param name="maxCount">The most to return.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The dead letters.</returns>
    ValueTask<IReadOnlyList<DeadLetter>> GetDeadLettersAsync(int maxCount, CancellationToken cancellationToken = default);

    /// <summary>Moves dead letters back to the queues they came from.</summary>
    /// <param name="maxCount">The most to move.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>How many were moved.</returns>
    ValueTask<int> RequeueDeadLettersAsync(int maxCount, CancellationToken cancellationToken = default);
}

/// <summary>What a broker supports natively.</summary>
[Flags]
public enum BrokerCapabilities
{
    /// <summary>Nothing beyond publish and consume.</summary>
    None = 0,

    /// <summary>Messages with an ETA are held by the broker until then.</summary>
    DelayedDelivery = 1,

    /// <summary>Higher-priority messages are delivered first.</summary>
    Priorities = 2,

    /// <summary>A message whose consumer died without settling it is delivered again to another consumer.</summary>
    Redelivery = 4,

    /// <summary>Several processes (or machines) can share the broker.</summary>
    Distributed = 8,
}

/// <summary>A message to publish.</summary>
/// <param name="TaskId">The task id, for logs and for brokers that key messages.</param>
/// <param name="Queue">The queue (routing key) to publish to.</param>
/// <param name="Body">The machinery JSON of the signature.</param>
public sealed record OutgoingMessage(string TaskId, string Queue, ReadOnlyMemory<byte> Body)
{
    /// <summary>When the message may be delivered at the earliest; <see langword="null"/> means now.</summary>
    public DateTimeOffset? Eta { get; init; }

    /// <summary>The priority, 0 to 255; higher first where the broker supports it.</summary>
    public byte Priority { get; init; }

    /// <summary>Headers for brokers that carry them outside the body (AMQP).</summary>
    public IReadOnlyDictionary<string, object?>? Headers { get; init; }
}

/// <summary>How a consumer takes messages.</summary>
public sealed record ConsumeOptions
{
    /// <summary>How many deliveries may be buffered or in flight at once. The default value is 16.</summary>
    public int Prefetch { get; init; } = 16;

    /// <summary>A name for the consumer (worker tag), used for leases and in-flight lists.</summary>
    public string ConsumerName { get; init; } = "conveyor-" + Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture);
}

/// <summary>A running subscription to a queue.</summary>
public interface IMessageConsumer : IAsyncDisposable
{
    /// <summary>Deliveries, in the order the broker gives them. Completes when the consumer stops.</summary>
    System.Threading.Channels.ChannelReader<IBrokerDelivery> Deliveries { get; }
}

/// <summary>One delivery of a message to a consumer. Settle it exactly once.</summary>
public interface IBrokerDelivery
{
    /// <summary>The message body (machinery JSON).</summary>
    ReadOnlyMemory<byte> Body { get; }

    /// <summary>The queue the message came from.</summary>
    string Queue { get; }

    /// <summary>How many times this message has been delivered, counting this one, where the broker knows; otherwise 1.</summary>
    int DeliveryCount { get; }

    /// <summary>Removes the message for good: its final state is stored.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the broker has removed it.</returns>
    ValueTask AckAsync(CancellationToken cancellationToken = default);

    /// <summary>Hands the message back unprocessed, to be delivered again (to this or another consumer).</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the broker has it back.</returns>
    ValueTask ReleaseAsync(CancellationToken cancellationToken = default);

    /// <summary>Moves the message to the dead-letter store with a reason, and removes it from its queue.</summary>
    /// <param name="reason">Why the message cannot be processed.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the dead letter is stored.</returns>
    ValueTask DeadLetterAsync(string reason, CancellationToken cancellationToken = default);
}

/// <summary>A message that could not be processed, with the reason.</summary>
/// <param name="Id">The dead letter's id in its store.</param>
/// <param name="Queue">The queue the message came from.</param>
/// <param name="Reason">Why it was dead-lettered.</param>
/// <param name="Body">The raw message bytes, as received.</param>
/// <param name="DeadLetteredAt">When it was dead-lettered.</param>
public sealed record DeadLetter(string Id, string Queue, string Reason, ReadOnlyMemory<byte> Body, DateTimeOffset DeadLetteredAt);

/// <summary>Message counts of a queue.</summary>
/// <param name="Queue">The queue name.</param>
/// <param name="Ready">Waiting to be delivered now.</param>
/// <param name="Delayed">Waiting for their ETA.</param>
/// <param name="InFlight">Delivered and not yet settled.</param>
/// <param name="DeadLettered">In the dead-letter store, from this queue.</param>
public sealed record QueueStatistics(string Queue, long Ready, long Delayed, long InFlight, long DeadLettered);
