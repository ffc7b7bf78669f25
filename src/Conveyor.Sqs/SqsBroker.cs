using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Amazon;
using Amazon.SQS;
using Amazon.SQS.Model;
using Conveyor.Sqs.Internal;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Conveyor.Sqs;

/// <summary>
/// A broker on Amazon SQS with Go machinery's layout: the routing key names the queue, the body is machinery's JSON
/// signature (machinery's <c>sqs.go</c> sends and reads exactly that), so machinery producers and workers share the
/// queues. Beyond machinery: concurrent publishes share <c>SendMessageBatch</c> calls, consumers long-poll and receive
/// and delete up to 10 messages per call, keep extending the
/// visibility of what they hold (a long task is not delivered twice while its worker lives), hold ETAs beyond SQS's
/// 15-minute <c>DelaySeconds</c> by delaying the message again, and dead-letter to a queue of their own with the reason.
/// </summary>
/// <remarks>
/// <para>
/// The receipt handle stays in the delivery (machinery puts it on the signature). FIFO queues (<c>.fifo</c>) take the
/// signature's <c>BrokerMessageGroupId</c> as the message group and the task id as the deduplication id; SQS has no
/// per-message delay on FIFO queues, so their ETAs are not held (as in machinery).
/// </para>
/// <para>
/// SQS has no priorities: <see cref="OutgoingMessage.Priority"/> is ignored, and delivery order on a standard queue is
/// SQS's (mostly, not strictly, first in first out).
/// </para>
/// </remarks>
public sealed class SqsBroker : IBroker
{
    internal const string EtaAttribute = "ConveyorEta";
    internal const string ReasonAttribute = "ConveyorReason";
    internal const string QueueAttribute = "ConveyorQueue";
    internal const string DeadLetteredAtAttribute = "ConveyorDeadLetteredAt";
    internal const int MaxBatch = 10;
    internal static readonly TimeSpan MaxDelay = TimeSpan.FromMinutes(15);

    private readonly bool _ownsClient;
    private readonly ConcurrentDictionary<string, Lazy<Task<SqsQueue>>> _queues = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string> _namesBySqsName = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Lazy<Task<string>>> _deadLetterQueues = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<SqsConsumer, byte> _consumers = new();
    private readonly ConcurrentDictionary<string, SqsPublisher> _publishers = new(StringComparer.Ordinal);
    private int _disposed;

    /// <summary>Creates a broker. Nothing is sent to SQS until the first call.</summary>
    /// <param name="options">The settings.</param>
    /// <param name="timeProvider">The clock for ETAs and heartbeats; the system clock when <see langword="null"/>.</param>
    /// <param name="loggerFactory">Logging; none when <see langword="null"/>.</param>
    public SqsBroker(SqsBrokerOptions options, TimeProvider? timeProvider = null, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
        Time = timeProvider ?? TimeProvider.System;
        Logger = (ILogger?)loggerFactory?.CreateLogger<SqsBroker>() ?? NullLogger.Instance;
        if (options.Client is { } client)
        {
            Client = client;
        }
        else
        {
            Client = CreateClient(options);
            _ownsClient = true;
        }
    }

    /// <inheritdoc/>
    public BrokerCapabilities Capabilities => BrokerCapabilities.DelayedDelivery | BrokerCapabilities.Redelivery | BrokerCapabilities.Distributed;

    internal IAmazonSQS Client { get; }

    internal SqsBrokerOptions Options { get; }

    internal TimeProvider Time { get; }

    internal ILogger Logger { get; }

    /// <summary>Builds an SQS client from the settings (the SDK's chain for what they leave out).</summary>
    /// <param name="options">The settings.</param>
    /// <returns>The client.</returns>
    internal static AmazonSQSClient CreateClient(SqsBrokerOptions options)
    {
        var config = new AmazonSQSConfig();
        if (options.ServiceUrl is { } serviceUrl)
        {
            config.ServiceURL = serviceUrl.ToString();

            // An endpoint override still signs for a region; an emulator accepts any.
            config.AuthenticationRegion = options.Region ?? Environment.GetEnvironmentVariable("AWS_REGION") ?? "us-east-1";
        }
        else if (options.Region is { } region)
        {
            config.RegionEndpoint = RegionEndpoint.GetBySystemName(region);
        }

        return options.Credentials is { } credentials ? new AmazonSQSClient(credentials, config) : new AmazonSQSClient(config);
    }

    /// <inheritdoc/>
    public async ValueTask PublishAsync(OutgoingMessage message, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        var queue = await ResolveAsync(message.Queue, cancellationToken).ConfigureAwait(false);
        var request = new SendMessageRequest { QueueUrl = queue.Url, MessageBody = Encoding.UTF8.GetString(message.Body.Span) };
        if (queue.Fifo)
        {
            // machinery: the signature's BrokerMessageGroupId is the group, its UUID the deduplication id. A retry
            // publishes the same task id again (with an ETA): its id carries the ETA, or SQS would drop it as a duplicate.
            request.MessageGroupId = ReadBrokerMessageGroupId(message.Body.Span)
                ?? throw new ArgumentException($"Publishing task {message.TaskId} to FIFO queue {message.Queue} needs the signature's BrokerMessageGroupId (the SQS message group), as in machinery.", nameof(message));
            request.MessageDeduplicationId = message.Eta is { } retryEta
                ? $"{message.TaskId}-{retryEta.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture)}"
                : message.TaskId;
        }
        else if (message.Eta is { } eta)
        {
            SetDelay(request, eta, Time.GetUtcNow());
        }

        var publisher = _publishers.GetOrAdd(queue.Name, static (_, state) => new SqsPublisher(state.Broker, state.Queue), (Broker: this, Queue: queue));
        await publisher.SendAsync(request, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async ValueTask<IMessageConsumer> ConsumeAsync(string queue, ConsumeOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(queue);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Prefetch, 1, nameof(options));
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        var resolved = await ResolveAsync(queue, cancellationToken).ConfigureAwait(false);
        var consumer = new SqsConsumer(this, resolved, options.Prefetch);
        _consumers.TryAdd(consumer, 0);
        consumer.Start();
        return consumer;
    }

    /// <inheritdoc/>
    /// <remarks>SQS's approximate counts: ready is <c>ApproximateNumberOfMessages</c>, delayed <c>…Delayed</c> (with ETAs held beyond 15 minutes), in flight <c>…NotVisible</c>.</remarks>
    public async ValueTask<QueueStatistics> GetQueueStatisticsAsync(string queue, CancellationToken cancellationToken = default)
    {
        var resolved = await ResolveAsync(queue, cancellationToken).ConfigureAwait(false);
        var counts = await CountsAsync(resolved.Url, cancellationToken).ConfigureAwait(false);
        long dead = 0;
        if (await FindDeadLetterQueueAsync(resolved.SqsName, cancellationToken).ConfigureAwait(false) is { } deadLetterUrl)
        {
            var deadCounts = await CountsAsync(deadLetterUrl, cancellationToken).ConfigureAwait(false);
            dead = deadCounts.Ready + deadCounts.InFlight + deadCounts.Delayed;
        }

        return new QueueStatistics(queue, counts.Ready, counts.Delayed, counts.InFlight, dead);
    }

    /// <inheritdoc/>
    /// <remarks>Every queue of the account and region but the dead-letter queues, by Conveyor name where this process knows it.</remarks>
    public async ValueTask<IReadOnlyList<string>> ListQueuesAsync(CancellationToken cancellationToken = default)
    {
        var names = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var url in await ListQueueUrlsAsync(cancellationToken).ConfigureAwait(false))
        {
            var sqsName = NameOf(url);
            if (!SqsQueueNames.IsDeadLetterQueue(sqsName))
            {
                names.Add(_namesBySqsName.GetValueOrDefault(sqsName, sqsName));
            }
        }

        return [.. names];
    }

    /// <inheritdoc/>
    /// <remarks>SQS's <c>PurgeQueue</c>, which also removes in-flight messages; the count is SQS's approximate one from just before.</remarks>
    public async ValueTask<long> PurgeAsync(string queue, CancellationToken cancellationToken = default)
    {
        var resolved = await ResolveAsync(queue, cancellationToken).ConfigureAwait(false);
        var counts = await CountsAsync(resolved.Url, cancellationToken).ConfigureAwait(false);
        await Client.PurgeQueueAsync(new PurgeQueueRequest { QueueUrl = resolved.Url }, cancellationToken).ConfigureAwait(false);
        return counts.Ready + counts.Delayed;
    }

    /// <inheritdoc/>
    /// <remarks>
    /// Reads the dead-letter queues without removing anything: the messages read are hidden while the list is made,
    /// then made visible again.
    /// </remarks>
    public async ValueTask<IReadOnlyList<DeadLetter>> GetDeadLettersAsync(int maxCount, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxCount);
        var letters = new List<DeadLetter>();
        foreach (var url in await DeadLetterQueueUrlsAsync(cancellationToken).ConfigureAwait(false))
        {
            if (letters.Count >= maxCount)
            {
                break;
            }

            var read = await ReadDeadLettersAsync(url, maxCount - letters.Count, cancellationToken).ConfigureAwait(false);
            letters.AddRange(read.Select(m => ToDeadLetter(url, m)));
            await ChangeVisibilityAsync(url, [.. read.Select(m => m.ReceiptHandle)], TimeSpan.Zero, cancellationToken).ConfigureAwait(false);
        }

        return letters;
    }

    /// <inheritdoc/>
    public async ValueTask<int> RequeueDeadLettersAsync(int maxCount, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxCount);
        var moved = 0;
        foreach (var url in await DeadLetterQueueUrlsAsync(cancellationToken).ConfigureAwait(false))
        {
            if (moved >= maxCount)
            {
                break;
            }

            foreach (var message in await ReadDeadLettersAsync(url, maxCount - moved, cancellationToken).ConfigureAwait(false))
            {
                var letter = ToDeadLetter(url, message);
                var queue = await ResolveAsync(letter.Queue, cancellationToken).ConfigureAwait(false);
                var request = new SendMessageRequest { QueueUrl = queue.Url, MessageBody = message.Body };
                if (queue.Fifo)
                {
                    request.MessageGroupId = ReadBrokerMessageGroupId(Encoding.UTF8.GetBytes(message.Body)) ?? "conveyor-requeued";
                    request.MessageDeduplicationId = message.MessageId;
                }

                // Sent before the dead letter is deleted: a crash in between leaves a copy in both, never in neither.
                await Client.SendMessageAsync(request, cancellationToken).ConfigureAwait(false);
                await Client.DeleteMessageAsync(new DeleteMessageRequest { QueueUrl = url, ReceiptHandle = message.ReceiptHandle }, cancellationToken).ConfigureAwait(false);
                moved++;
            }
        }

        return moved;
    }

    /// <inheritdoc/>
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

        // Publishes already asked for are sent before the client goes.
        foreach (var publisher in _publishers.Values)
        {
            await publisher.DisposeAsync().ConfigureAwait(false);
        }

        if (_ownsClient)
        {
            Client.Dispose();
        }
    }

    /// <summary>
    /// Stops a consumer as if its process had died: nothing is settled or handed back, and its messages come back
    /// when their visibility timeout ends. For tests.
    /// </summary>
    /// <param name="consumer">A consumer of an <see cref="SqsBroker"/>.</param>
    /// <returns>A task that completes when the consumer has stopped.</returns>
    internal static ValueTask SimulateCrashAsync(IMessageConsumer consumer) => ((SqsConsumer)consumer).CrashAsync();

    internal void Forget(SqsConsumer consumer) => _consumers.TryRemove(consumer, out _);

    internal static void SetDelay(SendMessageRequest request, DateTimeOffset eta, DateTimeOffset now)
    {
        var delay = eta - now;
        if (delay <= TimeSpan.Zero)
        {
            return;
        }

        if (delay > MaxDelay)
        {
            // SQS holds a message for 15 minutes at most: the consumer that receives it early sends it again.
            request.DelaySeconds = (int)MaxDelay.TotalSeconds;
            request.MessageAttributes ??= [];
            request.MessageAttributes[EtaAttribute] = new MessageAttributeValue
            {
                DataType = "Number",
                StringValue = eta.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture),
            };
        }
        else
        {
            // Whole seconds, rounded up: never before the ETA.
            request.DelaySeconds = (int)Math.Ceiling(delay.TotalSeconds);
        }
    }

    internal async Task<SqsQueue> ResolveAsync(string queue, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(queue);
        var lazy = _queues.GetOrAdd(queue, name => new Lazy<Task<SqsQueue>>(() => ResolveCoreAsync(name)));
        try
        {
            return await lazy.Value.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch when (lazy.Value.IsFaulted)
        {
            _queues.TryRemove(new KeyValuePair<string, Lazy<Task<SqsQueue>>>(queue, lazy));
            throw;
        }
    }

    internal async Task<string> DeadLetterQueueUrlAsync(string sqsName, CancellationToken cancellationToken)
    {
        var lazy = _deadLetterQueues.GetOrAdd(sqsName, name => new Lazy<Task<string>>(() => CreateOrGetAsync(SqsQueueNames.DeadLetterQueueOf(name), SqsQueueNames.IsFifo(name), null)));
        try
        {
            return await lazy.Value.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch when (lazy.Value.IsFaulted)
        {
            _deadLetterQueues.TryRemove(new KeyValuePair<string, Lazy<Task<string>>>(sqsName, lazy));
            throw;
        }
    }

    internal async Task ChangeVisibilityAsync(string queueUrl, IReadOnlyList<string> receiptHandles, TimeSpan timeout, CancellationToken cancellationToken)
    {
        for (var start = 0; start < receiptHandles.Count; start += MaxBatch)
        {
            var entries = new List<ChangeMessageVisibilityBatchRequestEntry>();
            for (var i = start; i < Math.Min(start + MaxBatch, receiptHandles.Count); i++)
            {
                entries.Add(new ChangeMessageVisibilityBatchRequestEntry
                {
                    Id = (i - start).ToString(CultureInfo.InvariantCulture),
                    ReceiptHandle = receiptHandles[i],
                    VisibilityTimeout = (int)timeout.TotalSeconds,
                });
            }

            await Client.ChangeMessageVisibilityBatchAsync(new ChangeMessageVisibilityBatchRequest { QueueUrl = queueUrl, Entries = entries }, cancellationToken).ConfigureAwait(false);
        }
    }

    private static string NameOf(string queueUrl) => queueUrl[(queueUrl.TrimEnd('/').LastIndexOf('/') + 1)..].TrimEnd('/');

    private static string? ReadBrokerMessageGroupId(ReadOnlySpan<byte> body)
    {
        try
        {
            var reader = new Utf8JsonReader(body);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return null;
            }

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var isGroup = reader.ValueTextEquals("BrokerMessageGroupId"u8);
                reader.Read();
                if (isGroup)
                {
                    return reader.TokenType == JsonTokenType.String && reader.GetString() is { Length: > 0 } group ? group : null;
                }

                reader.Skip();
            }
        }
        catch (JsonException)
        {
        }

        return null;
    }

    private async Task<SqsQueue> ResolveCoreAsync(string queue)
    {
        var sqsName = SqsQueueNames.ToSqsName(queue);
        _namesBySqsName[sqsName] = queue;
        var fifo = SqsQueueNames.IsFifo(sqsName);
        string? redrivePolicy = null;
        if (Options.CreateQueues && Options.MaxReceiveCount is { } maxReceiveCount)
        {
            var deadLetterUrl = await DeadLetterQueueUrlAsync(sqsName, CancellationToken.None).ConfigureAwait(false);
            var attributes = await Client.GetQueueAttributesAsync(new GetQueueAttributesRequest { QueueUrl = deadLetterUrl, AttributeNames = ["QueueArn"] }).ConfigureAwait(false);
            redrivePolicy = JsonSerializer.Serialize(new Dictionary<string, string>
            {
                ["deadLetterTargetArn"] = attributes.Attributes["QueueArn"],
                ["maxReceiveCount"] = maxReceiveCount.ToString(CultureInfo.InvariantCulture),
            });
        }

        var url = await CreateOrGetAsync(sqsName, fifo, redrivePolicy).ConfigureAwait(false);
        Log.QueueResolved(Logger, queue, url);
        return new SqsQueue(queue, sqsName, url, fifo);
    }

    private async Task<string> CreateOrGetAsync(string sqsName, bool fifo, string? redrivePolicy)
    {
        if (Options.CreateQueues)
        {
            var attributes = new Dictionary<string, string>(StringComparer.Ordinal);
            if (fifo)
            {
                attributes["FifoQueue"] = "true";
            }

            if (redrivePolicy is not null)
            {
                attributes["RedrivePolicy"] = redrivePolicy;
            }

            try
            {
                var created = await Client.CreateQueueAsync(new CreateQueueRequest { QueueName = sqsName, Attributes = attributes }).ConfigureAwait(false);
                return created.QueueUrl;
            }
            catch (AmazonSQSException ex) when (ex.ErrorCode is "QueueAlreadyExists" or "QueueNameExists" || ex is QueueNameExistsException)
            {
                // It exists with other attributes (set by its owner): use it as it is.
            }
        }

        try
        {
            var found = await Client.GetQueueUrlAsync(new GetQueueUrlRequest { QueueName = sqsName, QueueOwnerAWSAccountId = Options.AccountId }).ConfigureAwait(false);
            return found.QueueUrl;
        }
        catch (QueueDoesNotExistException ex)
        {
            throw new InvalidOperationException($"The SQS queue {sqsName} does not exist, and the broker does not create queues (create_queues=false).", ex);
        }
    }

    private async Task<string?> FindDeadLetterQueueAsync(string sqsName, CancellationToken cancellationToken)
    {
        if (_deadLetterQueues.TryGetValue(sqsName, out var known) && known.Value.IsCompletedSuccessfully)
        {
            return known.Value.Result;
        }

        try
        {
            var found = await Client.GetQueueUrlAsync(new GetQueueUrlRequest { QueueName = SqsQueueNames.DeadLetterQueueOf(sqsName), QueueOwnerAWSAccountId = Options.AccountId }, cancellationToken).ConfigureAwait(false);
            return found.QueueUrl;
        }
        catch (QueueDoesNotExistException)
        {
            return null;
        }
    }

    private async Task<(long Ready, long Delayed, long InFlight)> CountsAsync(string queueUrl, CancellationToken cancellationToken)
    {
        var response = await Client.GetQueueAttributesAsync(
            new GetQueueAttributesRequest
            {
                QueueUrl = queueUrl,
                AttributeNames = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed", "ApproximateNumberOfMessagesNotVisible"],
            },
            cancellationToken).ConfigureAwait(false);
        long Read(string name) => response.Attributes is { } attributes && attributes.TryGetValue(name, out var text)
            && long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) ? value : 0;
        return (Read("ApproximateNumberOfMessages"), Read("ApproximateNumberOfMessagesDelayed"), Read("ApproximateNumberOfMessagesNotVisible"));
    }

    private async Task<List<string>> ListQueueUrlsAsync(CancellationToken cancellationToken)
    {
        var urls = new List<string>();
        string? next = null;
        do
        {
            var response = await Client.ListQueuesAsync(new ListQueuesRequest { NextToken = next, MaxResults = 1000 }, cancellationToken).ConfigureAwait(false);
            urls.AddRange(response.QueueUrls ?? []);
            next = response.NextToken;
        }
        while (!string.IsNullOrEmpty(next));
        return urls;
    }

    private async Task<List<string>> DeadLetterQueueUrlsAsync(CancellationToken cancellationToken) =>
        [.. (await ListQueueUrlsAsync(cancellationToken).ConfigureAwait(false)).Where(u => SqsQueueNames.IsDeadLetterQueue(NameOf(u))).Order(StringComparer.Ordinal)];

    private async Task<List<Message>> ReadDeadLettersAsync(string queueUrl, int maxCount, CancellationToken cancellationToken)
    {
        var read = new List<Message>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var counts = await CountsAsync(queueUrl, cancellationToken).ConfigureAwait(false);
        if (counts.Ready == 0)
        {
            return read;
        }

        while (read.Count < maxCount)
        {
            var response = await Client.ReceiveMessageAsync(
                new ReceiveMessageRequest
                {
                    QueueUrl = queueUrl,
                    MaxNumberOfMessages = Math.Min(MaxBatch, maxCount - read.Count),
                    VisibilityTimeout = 30,
                    WaitTimeSeconds = 0,
                    MessageAttributeNames = ["All"],
                    MessageSystemAttributeNames = ["SentTimestamp"],
                },
                cancellationToken).ConfigureAwait(false);
            var fresh = (response.Messages ?? []).Where(m => seen.Add(m.MessageId)).ToList();
            if (fresh.Count == 0)
            {
                break;
            }

            read.AddRange(fresh);
        }

        return read;
    }

    private DeadLetter ToDeadLetter(string deadLetterQueueUrl, Message message)
    {
        string? Attribute(string name) => message.MessageAttributes is { } attributes && attributes.TryGetValue(name, out var value) ? value.StringValue : null;
        var queue = Attribute(QueueAttribute);
        if (queue is null)
        {
            // Moved by a redrive policy: the queue is the dead-letter queue's name without its suffix.
            var name = NameOf(deadLetterQueueUrl);
            var fifo = SqsQueueNames.IsFifo(name);
            var stem = fifo ? name[..^SqsQueueNames.FifoSuffix.Length] : name;
            var sqsName = stem[..^SqsQueueNames.DeadLetterSuffix.Length] + (fifo ? SqsQueueNames.FifoSuffix : string.Empty);
            queue = _namesBySqsName.GetValueOrDefault(sqsName, sqsName);
        }

        var at = long.TryParse(Attribute(DeadLetteredAtAttribute), NumberStyles.None, CultureInfo.InvariantCulture, out var ms) ? ms
            : message.Attributes is { } system && system.TryGetValue("SentTimestamp", out var sent) && long.TryParse(sent, NumberStyles.None, CultureInfo.InvariantCulture, out var sentMs) ? sentMs
            : 0;
        return new DeadLetter(
            message.MessageId,
            queue,
            Attribute(ReasonAttribute) ?? "moved to the dead-letter queue by SQS (redrive policy: too many receives)",
            Encoding.UTF8.GetBytes(message.Body),
            DateTimeOffset.FromUnixTimeMilliseconds(at));
    }
}

/// <summary>A queue the broker has resolved: its Conveyor name, SQS name and URL.</summary>
internal sealed record SqsQueue(string Name, string SqsName, string Url, bool Fifo);
