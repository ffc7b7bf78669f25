using System.ComponentModel.DataAnnotations;

namespace Conveyor.RabbitMQ;

/// <summary>
/// Settings of the RabbitMQ broker: where RabbitMQ is, and Go machinery's AMQP topology (exchange, exchange type,
/// binding key, queue arguments). Processes that share a broker, Go machinery workers included, must agree on
/// the exchange and on the queue arguments: RabbitMQ refuses to declare a queue again with other arguments.
/// </summary>
public sealed class RabbitMqBrokerOptions
{
    /// <summary>
    /// The broker's URLs (<c>amqp://user:password@host:5672/vhost</c>, or <c>amqps://</c> for TLS). With several, the
    /// connection goes to the first that answers, and recovery after a connection loss tries them all in turn.
    /// User, password, virtual host and TLS come from the first URL; the others give hosts and ports.
    /// </summary>
    /// <value>The default value is <c>amqp://guest:guest@localhost:5672/</c>.</value>
    public IList<Uri> Urls { get; } = [];

    /// <summary>
    /// A PEM file of CA certificates that an <c>amqps://</c> server's certificate must chain to, instead of the
    /// machine's trust store (a private CA); the host name must still match. URL form: <c>?ca=/path/ca.pem</c>.
    /// No setting accepts an invalid certificate.
    /// </summary>
    /// <value>The default value is <see langword="null"/>: the machine's trust store.</value>
    public string? CaCertificatesPath { get; set; }

    /// <summary>The exchange tasks are published to (machinery's <c>AMQP.Exchange</c>).</summary>
    /// <value>The default value is <c>machinery_exchange</c>, machinery's default.</value>
    public string Exchange { get; set; } = "machinery_exchange";

    /// <summary>The exchange type: <c>direct</c>, <c>fanout</c> or <c>topic</c> (machinery's <c>AMQP.ExchangeType</c>).</summary>
    /// <value>The default value is <c>direct</c>.</value>
    public string ExchangeType { get; set; } = "direct";

    /// <summary>
    /// The key a work queue is bound to the exchange with (machinery's <c>AMQP.BindingKey</c>). Messages are published
    /// with the routing key = the queue name (the signature's <c>RoutingKey</c>); with a direct exchange that is why
    /// machinery binds each queue with its own name.
    /// </summary>
    /// <value>The default value is <see langword="null"/>: the queue's own name.</value>
    public string? BindingKey { get; set; }

    /// <summary>Extra arguments for declaring work queues (machinery's <c>AMQP.QueueDeclareArgs</c>).</summary>
    /// <value>The default value is an empty dictionary.</value>
    public IDictionary<string, object?> QueueDeclareArguments { get; } = new Dictionary<string, object?>(StringComparer.Ordinal);

    /// <summary>Arguments of the binding of work queues to the exchange (machinery's <c>AMQP.QueueBindingArgs</c>).</summary>
    /// <value>The default value is an empty dictionary.</value>
    public IDictionary<string, object?> QueueBindingArguments { get; } = new Dictionary<string, object?>(StringComparer.Ordinal);

    /// <summary>
    /// Declares work queues with <c>x-max-priority</c> = this value, so that higher-priority messages are delivered
    /// first. RabbitMQ only honours priorities on a queue declared with it, and refuses to declare an existing queue
    /// with different arguments: turn it on for every process (Go machinery: <c>QueueDeclareArgs</c>) or for none.
    /// Not with <see cref="UseQuorumQueues"/>.
    /// </summary>
    /// <value>The default value is <see langword="null"/>: off, machinery's default queue arguments.</value>
    [Range(1, 255)]
    public int? MaxPriority { get; set; }

    /// <summary>Declares work queues as quorum queues (<c>x-queue-type: quorum</c>): replicated, with a delivery count.</summary>
    /// <value>The default value is <see langword="false"/> (classic queues, as machinery).</value>
    public bool UseQuorumQueues { get; set; }

    /// <summary>
    /// The queue that holds dead letters of every work queue of this exchange, with their reason in headers.
    /// <see langword="null"/> means <c>&lt;exchange&gt;.dead_letters</c>.
    /// </summary>
    /// <value>The default value is <see langword="null"/>.</value>
    public string? DeadLetterQueue { get; set; }

    /// <summary>
    /// How many channels publish concurrently. Each has publisher confirms on, and many publishes are in flight on
    /// each at once (pipelined), so a few are enough.
    /// </summary>
    /// <value>The default value is 4.</value>
    [Range(1, 256)]
    public int PublishChannelPoolSize { get; set; } = 4;

    /// <summary>The most unconfirmed publishes per publishing channel; further publishes wait.</summary>
    /// <value>The default value is 512.</value>
    [Range(1, 65_535)]
    public int MaxOutstandingConfirmsPerChannel { get; set; } = 512;

    /// <summary>How long a publish waits for RabbitMQ's confirm before it fails.</summary>
    /// <value>The default value is 30 seconds.</value>
    [Range(typeof(TimeSpan), "00:00:00.010", "01:00:00")]
    public TimeSpan ConfirmTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long a publish keeps retrying while the connection is down (a broker restart, a failover), before the
    /// error goes to its caller. A publish that failed unconfirmed and is retried may be stored twice
    /// (at-least-once, as every retry after a lost confirm).
    /// </summary>
    /// <value>The default value is 30 seconds; <see cref="TimeSpan.Zero"/> fails at once.</value>
    [Range(typeof(TimeSpan), "00:00:00", "01:00:00")]
    public TimeSpan PublishRetryTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Delays are rounded up to a multiple of this before naming the delay queue (<c>delay.&lt;ms&gt;…</c>), so that
    /// fewer distinct queues are created; a task never runs before its ETA.
    /// </summary>
    /// <value>The default value is 1 millisecond: machinery's exact scheme.</value>
    [Range(typeof(TimeSpan), "00:00:00.001", "01:00:00")]
    public TimeSpan DelayGranularity { get; set; } = TimeSpan.FromMilliseconds(1);

    /// <summary>How long to wait between attempts to reconnect after a connection loss (the client's automatic recovery).</summary>
    /// <value>The default value is 1 second.</value>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:10:00")]
    public TimeSpan NetworkRecoveryInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How long to wait for a TCP connection and the AMQP handshake.</summary>
    /// <value>The default value is 10 seconds.</value>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:10:00")]
    public TimeSpan ConnectionTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>The AMQP heartbeat requested from the server, which detects a dead connection.</summary>
    /// <value>The default value is 30 seconds.</value>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan Heartbeat { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The management plugin's HTTP API (<c>http://host:15672/</c>), from which <c>conveyor tasks</c> and the management
    /// API list a queue's pending messages and its delay queues' scheduled ones (AMQP cannot list messages). It logs in
    /// as the user of this URL when it names one, else as the AMQP URL's user; passwords are never shown. URL form:
    /// <c>?management=http://127.0.0.1:15672</c> on the AMQP URL.
    /// </summary>
    /// <value>The default value is <see langword="null"/>: no listings of messages (revoke, pause and workers still work).</value>
    public Uri? ManagementUrl { get; set; }

    /// <summary>The connection name shown by RabbitMQ (<c>rabbitmqctl list_connections client_properties</c>).</summary>
    /// <value>The default value is <c>conveyor-&lt;process id&gt;</c>.</value>
    public string ClientName { get; set; } = "conveyor-" + Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture);

    internal string EffectiveDeadLetterQueue => DeadLetterQueue ?? Exchange + ".dead_letters";

    internal IReadOnlyList<Uri> EffectiveUrls => Urls.Count > 0 ? [.. Urls] : [new Uri("amqp://guest:guest@localhost:5672/")];

    internal void Validate()
    {
        ArgumentException.ThrowIfNullOrEmpty(Exchange, nameof(Exchange));
        if (ExchangeType is not ("direct" or "fanout" or "topic" or "headers"))
        {
            throw new ArgumentException($"ExchangeType must be direct, fanout, topic or headers, not '{ExchangeType}'.", nameof(ExchangeType));
        }

        foreach (var url in EffectiveUrls)
        {
            if (!url.IsAbsoluteUri || url.Scheme is not ("amqp" or "amqps"))
            {
                throw new ArgumentException($"'{url}' is not an amqp:// or amqps:// URL.", nameof(Urls));
            }
        }

        if (CaCertificatesPath is not null && !EffectiveUrls.Any(url => url.Scheme == "amqps"))
        {
            throw new ArgumentException("CaCertificatesPath applies to TLS only: use amqps:// URLs.", nameof(CaCertificatesPath));
        }

        if (ManagementUrl is { } management && (!management.IsAbsoluteUri || management.Scheme is not ("http" or "https")))
        {
            throw new ArgumentException($"ManagementUrl must be the management plugin's http:// or https:// URL, not '{ConveyorUrls.Redact(management.OriginalString)}'.", nameof(ManagementUrl));
        }

        if (MaxPriority is { } priority && (priority < 1 || priority > 255))
        {
            throw new ArgumentOutOfRangeException(nameof(MaxPriority), priority, "MaxPriority must be between 1 and 255.");
        }

        if (MaxPriority is not null && UseQuorumQueues)
        {
            throw new ArgumentException("Quorum queues do not take x-max-priority: set MaxPriority or UseQuorumQueues, not both.", nameof(MaxPriority));
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(PublishChannelPoolSize, 1, nameof(PublishChannelPoolSize));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxOutstandingConfirmsPerChannel, 1, nameof(MaxOutstandingConfirmsPerChannel));
        Check(ConfirmTimeout, TimeSpan.FromMilliseconds(10), TimeSpan.FromHours(1), nameof(ConfirmTimeout));
        Check(PublishRetryTimeout, TimeSpan.Zero, TimeSpan.FromHours(1), nameof(PublishRetryTimeout));
        Check(DelayGranularity, TimeSpan.FromMilliseconds(1), TimeSpan.FromHours(1), nameof(DelayGranularity));
        Check(NetworkRecoveryInterval, TimeSpan.FromMilliseconds(10), TimeSpan.FromMinutes(10), nameof(NetworkRecoveryInterval));
        Check(ConnectionTimeout, TimeSpan.FromMilliseconds(10), TimeSpan.FromMinutes(10), nameof(ConnectionTimeout));
        Check(Heartbeat, TimeSpan.FromSeconds(1), TimeSpan.FromHours(1), nameof(Heartbeat));
    }

    private static void Check(TimeSpan value, TimeSpan min, TimeSpan max, string name)
    {
        if (value < min || value > max)
        {
            throw new ArgumentOutOfRangeException(name, value, $"{name} must be between {min} and {max}.");
        }
    }
}
