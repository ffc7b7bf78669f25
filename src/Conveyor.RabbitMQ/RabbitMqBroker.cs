using System.Collections.Concurrent;
using System.Globalization;
using Conveyor.RabbitMQ.Internal;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;
using Conveyor.Tls;

namespace Conveyor.RabbitMQ;

/// <summary>
/// A broker on RabbitMQ with Go machinery's AMQP topology: tasks are published to <see cref="RabbitMqBrokerOptions.Exchange"/>
/// with the queue name as routing key, each work queue is a durable queue bound with the binding key, and a task
/// with an ETA waits in machinery's <c>delay.&lt;ms&gt;.&lt;exchange&gt;.&lt;routing key&gt;</c> queue (from 5 s; a shorter delay in <c>conveyor.delay.…</c>) whose TTL dead-letters it
/// back to the exchange. Go machinery producers and workers can share the exchange and the queues.
/// </summary>
/// <remarks>
/// <para>
/// Every publish is persistent and confirmed by RabbitMQ (publisher confirms, many in flight per channel on a small
/// pool of channels, all on one connection); a publish that is not confirmed (nacked, unroutable, timed out, or
/// its channel closed) throws. While the connection is down, publishes wait for its recovery for up to
/// <see cref="RabbitMqBrokerOptions.PublishRetryTimeout"/>.
/// </para>
/// <para>
/// Consumers use a second connection, one channel each, <c>basic.qos</c> = the prefetch, and manual acks: the worker
/// acks after the final state is stored. Both connections recover by themselves (the client's automatic recovery,
/// consumers included), trying every URL in turn.
/// </para>
/// <para>
/// AMQP 0-9-1 cannot list queues or count unacked messages without the management plugin: <see cref="ListQueuesAsync"/>
/// returns the queues this instance declared or consumed, and <see cref="QueueStatistics.InFlight"/> counts this
/// instance's own unsettled deliveries. <see cref="QueueStatistics.Delayed"/> sums the delay queues this instance
/// declared. Dead letters of every queue of the exchange wait in one queue (<see cref="RabbitMqBrokerOptions.DeadLetterQueue"/>),
/// with their reason and origin in <c>x-conveyor-*</c> headers.
/// </para>
/// </remarks>
public sealed class RabbitMqBroker : IBroker
{
    private const string DelayPrefix = "delay.";
    private const string OwnDelayPrefix = "conveyor.delay.";
    private const long MinDelayQueueExpiryMs = 10_000;

    private readonly RabbitMqBrokerOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly CustomCertificateAuthority? _certificateAuthority;
    private readonly SemaphoreSlim _connectGate = new(1, 1);
    private readonly SemaphoreSlim _adminGate = new(1, 1);
    private readonly ConcurrentDictionary<string, Task> _declaredQueues = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, DelayQueue> _delayQueues = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, StrongBox> _inFlight = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<RabbitMqConsumer, byte> _consumers = new();
    private readonly CancellationTokenSource _disposing = new();
    private IConnection? _publishConnection;
    private IConnection? _consumeConnection;
    private IChannel?[] _publishChannels = [];
    private readonly SemaphoreSlim[] _publishChannelGates;
    private IChannel? _adminChannel;
    private Task? _exchangeDeclared;
    private int _nextChannel;
    private int _disposed;

    /// <summary>Creates a broker. Nothing is connected until the first call that needs RabbitMQ.</summary>
    /// <param name="options">The settings; validated here.</param>
    /// <param name="timeProvider">The clock for ETAs; the system clock when <see langword="null"/>.</param>
    /// <param name="loggerFactory">Where logs go; none when <see langword="null"/>.</param>
    public RabbitMqBroker(RabbitMqBrokerOptions options, TimeProvider? timeProvider = null, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        _time = timeProvider ?? TimeProvider.System;
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<RabbitMqBroker>();
        _certificateAuthority = options.CaCertificatesPath is { } caPath ? CustomCertificateAuthority.Load(caPath, nameof(RabbitMqBrokerOptions.CaCertificatesPath)) : null;
        _publishChannelGates = [.. Enumerable.Range(0, options.PublishChannelPoolSize).Select(_ => new SemaphoreSlim(1, 1))];
    }

    /// <inheritdoc/>
    public BrokerCapabilities Capabilities =>
        BrokerCapabilities.DelayedDelivery | BrokerCapabilities.Redelivery | BrokerCapabilities.Distributed
        | (_options.MaxPriority is not null ? BrokerCapabilities.Priorities : BrokerCapabilities.None);

    /// <summary>
    /// Connects now (both connections, and the publishing channels) instead of on first use, so that a wrong URL or
    /// an absent broker shows at startup.
    /// </summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when connected.</returns>
    public async ValueTask ConnectAsync(CancellationToken cancellationToken = default)
    {
        await GetPublishConnectionAsync(cancellationToken).ConfigureAwait(false);
        await GetConsumeConnectionAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async ValueTask PublishAsync(OutgoingMessage message, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        ArgumentException.ThrowIfNullOrEmpty(message.Queue, nameof(message));
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);

        var routingKey = await RouteAsync(message, cancellationToken).ConfigureAwait(false);
        await PublishConfirmedAsync(_options.Exchange, routingKey, PropertiesOf(message), message.Body, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Publishes a batch on one channel under one confirm timeout: every publish goes out before the first confirm
    /// is awaited, and the batch costs one timer instead of one per message. Messages whose publish met a lost
    /// connection go again one by one, through the retrying path.
    /// </summary>
    /// <param name="messages">The messages.</param>
    /// <param name="cancellationToken">Cancels the publishes.</param>
    /// <returns>A task that completes when RabbitMQ has confirmed every message.</returns>
    public async ValueTask PublishBatchAsync(IReadOnlyList<OutgoingMessage> messages, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(messages);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        if (messages.Count <= 1)
        {
            if (messages.Count == 1)
            {
                await PublishAsync(messages[0], cancellationToken).ConfigureAwait(false);
            }

            return;
        }

        var routes = new string[messages.Count];
        for (var i = 0; i < routes.Length; i++)
        {
            ArgumentNullException.ThrowIfNull(messages[i], nameof(messages));
            ArgumentException.ThrowIfNullOrEmpty(messages[i].Queue, nameof(messages));
            routes[i] = await RouteAsync(messages[i], cancellationToken).ConfigureAwait(false);
        }

        var connection = await GetPublishConnectionAsync(cancellationToken).ConfigureAwait(false);
        var slot = (int)((uint)Interlocked.Increment(ref _nextChannel) % (uint)_publishChannels.Length);
        IChannel channel;
        try
        {
            channel = await GetPublishChannelAsync(connection, slot, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (IsConnectionLoss(ex, connection) && !cancellationToken.IsCancellationRequested)
        {
            await PublishEachAsync(messages, routes, null, cancellationToken).ConfigureAwait(false);
            return;
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_options.ConfirmTimeout);
        var confirms = new ValueTask[messages.Count];
        for (var i = 0; i < confirms.Length; i++)
        {
            // With confirmation tracking on, each completes when RabbitMQ confirms; a nack, a return (mandatory:
            // no queue bound) or a closed channel fails it.
#pragma warning disable CA2012 // stored to start every publish before awaiting any; each is awaited exactly once below
            confirms[i] = channel.BasicPublishAsync(_options.Exchange, routes[i], mandatory: true, PropertiesOf(messages[i]), messages[i].Body, timeout.Token);
#pragma warning restore CA2012
        }

        List<int>? lost = null;
        Exception? failure = null;
        for (var i = 0; i < confirms.Length; i++)
        {
            try
            {
                await confirms[i].ConfigureAwait(false);
            }
            catch (Exception ex) when (IsConnectionLoss(ex, connection) && !cancellationToken.IsCancellationRequested && Volatile.Read(ref _disposed) == 0)
            {
                (lost ??= []).Add(i);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                failure ??= new TimeoutException($"RabbitMQ did not confirm a publish to {_options.Exchange}/{routes[i]} within {_options.ConfirmTimeout}.");
            }
            catch (Exception ex)
            {
                failure ??= ex;
            }
        }

        if (failure is not null)
        {
            throw failure;
        }

        if (lost is not null)
        {
            await PublishEachAsync(messages, routes, lost, cancellationToken).ConfigureAwait(false);
        }
    }

    private Task PublishEachAsync(IReadOnlyList<OutgoingMessage> messages, string[] routes, List<int>? only, CancellationToken cancellationToken)
    {
        var count = only?.Count ?? messages.Count;
        var publishes = new Task[count];
        for (var j = 0; j < count; j++)
        {
            var i = only is null ? j : only[j];
            publishes[j] = PublishConfirmedAsync(_options.Exchange, routes[i], PropertiesOf(messages[i]), messages[i].Body, cancellationToken).AsTask();
        }

        return Task.WhenAll(publishes);
    }

    private static BasicProperties PropertiesOf(OutgoingMessage message) => new()
    {
        Persistent = true,
        ContentType = "application/json",
        Priority = message.Priority,
        Headers = AmqpHeaders.ToTable(message.Headers),
    };

    /// <summary>The routing key: the queue (declared once), or the delay queue that holds it until its ETA.</summary>
    private async ValueTask<string> RouteAsync(OutgoingMessage message, CancellationToken cancellationToken)
    {
        await EnsureQueueAsync(message.Queue, cancellationToken).ConfigureAwait(false);
        if (message.Eta is { } eta && eta - _time.GetUtcNow() is var delay && delay > TimeSpan.Zero)
        {
            return await EnsureDelayQueueAsync(message.Queue, delay, cancellationToken).ConfigureAwait(false);
        }

        return message.Queue;
    }

    /// <inheritdoc/>
    public async ValueTask<IMessageConsumer> ConsumeAsync(string queue, ConsumeOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(queue);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Prefetch, 1, nameof(options));
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);

        await EnsureQueueAsync(queue, cancellationToken).ConfigureAwait(false);
        var connection = await GetConsumeConnectionAsync(cancellationToken).ConfigureAwait(false);
        var channel = await connection.CreateChannelAsync(new CreateChannelOptions(false, false), cancellationToken).ConfigureAwait(false);
        try
        {
            await channel.BasicQosAsync(0, (ushort)Math.Min(options.Prefetch, ushort.MaxValue), global: false, cancellationToken).ConfigureAwait(false);
            var consumer = new RabbitMqConsumer(this, channel, connection, queue, options.Prefetch, _logger);
            consumer.Tag = await channel.BasicConsumeAsync(queue, autoAck: false, consumerTag: ConsumerTag(options.ConsumerName), noLocal: false, exclusive: false, arguments: null, consumer, cancellationToken).ConfigureAwait(false);
            _consumers.TryAdd(consumer, 0);
            return new TrackedConsumer(this, consumer);
        }
        catch
        {
            await channel.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <inheritdoc/>
    public async ValueTask<QueueStatistics> GetQueueStatisticsAsync(string queue, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(queue);
        await EnsureQueueAsync(queue, cancellationToken).ConfigureAwait(false);
        var ready = await AdminAsync(async (channel, ct) => (await channel.QueueDeclarePassiveAsync(queue, ct).ConfigureAwait(false)).MessageCount, cancellationToken).ConfigureAwait(false);
        long delayed = 0;
        foreach (var (name, delay) in _delayQueues)
        {
            if (delay.RoutingKey == queue)
            {
                delayed += await CountDelayQueueAsync(name, cancellationToken).ConfigureAwait(false);
            }
        }

        long dead = 0;
        await ScanDeadLettersAsync(int.MaxValue, (letter, _) =>
        {
            if (letter.Queue == queue)
            {
                dead++;
            }

            return true;
        }, cancellationToken).ConfigureAwait(false);

        var inFlight = _inFlight.TryGetValue(queue, out var box) ? Math.Max(0, Interlocked.Read(ref box.Value)) : 0;
        return new QueueStatistics(queue, ready, delayed, inFlight, dead);
    }

    /// <inheritdoc/>
    public ValueTask<IReadOnlyList<string>> ListQueuesAsync(CancellationToken cancellationToken = default) =>
        ValueTask.FromResult<IReadOnlyList<string>>([.. _declaredQueues.Where(p => p.Value.IsCompletedSuccessfully).Select(p => p.Key).Order(StringComparer.Ordinal)]);

    /// <inheritdoc/>
    public async ValueTask<long> PurgeAsync(string queue, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(queue);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        await EnsureQueueAsync(queue, cancellationToken).ConfigureAwait(false);
        long removed = await AdminAsync((channel, ct) => channel.QueuePurgeAsync(queue, ct), cancellationToken).ConfigureAwait(false);
        foreach (var (name, delay) in _delayQueues)
        {
            if (delay.RoutingKey != queue)
            {
                continue;
            }

            try
            {
                removed += await AdminAsync((channel, ct) => channel.QueuePurgeAsync(name, ct), cancellationToken).ConfigureAwait(false);
            }
            catch (OperationInterruptedException ex) when (ex.ShutdownReason?.ReplyCode == Constants.NotFound)
            {
                _delayQueues.TryRemove(name, out _); // expired (x-expires) with nothing in it
            }
        }

        return removed;
    }

    /// <inheritdoc/>
    public async ValueTask<IReadOnlyList<DeadLetter>> GetDeadLettersAsync(int maxCount, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxCount);
        var letters = new List<DeadLetter>();
        if (maxCount == 0)
        {
            return letters;
        }

        await ScanDeadLettersAsync(maxCount, (letter, _) =>
        {
            letters.Add(letter);
            return true;
        }, cancellationToken).ConfigureAwait(false);
        return letters;
    }

    /// <inheritdoc/>
    public async ValueTask<int> RequeueDeadLettersAsync(int maxCount, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxCount);
        if (maxCount == 0)
        {
            return 0;
        }

        await EnsureDeadLetterQueueAsync(cancellationToken).ConfigureAwait(false);
        var connection = await GetPublishConnectionAsync(cancellationToken).ConfigureAwait(false);
        var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        var moved = 0;
        try
        {
            while (moved < maxCount)
            {
                var result = await channel.BasicGetAsync(_options.EffectiveDeadLetterQueue, autoAck: false, cancellationToken).ConfigureAwait(false);
                if (result is null)
                {
                    break;
                }

                var headers = result.BasicProperties.Headers;
                var queue = AmqpHeaders.GetString(headers, AmqpHeaders.Queue);
                if (string.IsNullOrEmpty(queue))
                {
                    // Not one of ours: leave it where it is.
                    await channel.BasicNackAsync(result.DeliveryTag, multiple: false, requeue: true, cancellationToken).ConfigureAwait(false);
                    break;
                }

                var original = headers?.Where(h => !h.Key.StartsWith("x-conveyor-", StringComparison.Ordinal) && !h.Key.StartsWith("x-death", StringComparison.Ordinal))
                    .ToDictionary(h => h.Key, h => h.Value, StringComparer.Ordinal);
                var properties = new BasicProperties
                {
                    Persistent = true,
                    ContentType = result.BasicProperties.ContentType ?? "application/json",
                    Priority = result.BasicProperties.Priority,
                    Headers = original is { Count: > 0 } ? original : null,
                };

                // Back in the work queue (confirmed) before it leaves the dead-letter queue: never in neither.
                await EnsureQueueAsync(queue, cancellationToken).ConfigureAwait(false);
                await PublishConfirmedAsync(_options.Exchange, queue, properties, result.Body.ToArray(), cancellationToken).ConfigureAwait(false);
                await channel.BasicAckAsync(result.DeliveryTag, multiple: false, cancellationToken).ConfigureAwait(false);
                moved++;
            }
        }
        finally
        {
            await CloseQuietlyAsync(channel).ConfigureAwait(false);
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

        await _disposing.CancelAsync().ConfigureAwait(false);
        foreach (var consumer in _consumers.Keys)
        {
            await consumer.DisposeAsync().ConfigureAwait(false);
        }

        foreach (var connection in new[] { _consumeConnection, _publishConnection })
        {
            if (connection is null)
            {
                continue;
            }

            try
            {
                await connection.CloseAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is AlreadyClosedException or OperationInterruptedException or IOException or TimeoutException)
            {
            }

            connection.Dispose();
        }

        _disposing.Dispose();
    }

    internal void AddInFlight(string queue, long delta)
    {
        if (delta != 0)
        {
            Interlocked.Add(ref _inFlight.GetOrAdd(queue, static _ => new StrongBox()).Value, delta);
        }
    }

    internal void Forget(RabbitMqConsumer consumer) => _consumers.TryRemove(consumer, out _);

    /// <summary>Test hook: the consumer stops as if its process were killed.</summary>
    internal static ValueTask SimulateCrashAsync(IMessageConsumer consumer) => ((TrackedConsumer)consumer).Inner.SimulateCrashAsync();

    /// <summary>Test hook: how many channel closes a consumer has seen.</summary>
    internal static int ConsumerEpoch(IMessageConsumer consumer) => ((TrackedConsumer)consumer).Inner.Epoch;

    /// <summary>Test hook: the connection consumers use.</summary>
    internal IConnection? ConsumeConnection => _consumeConnection;

    /// <summary>Test hook: the connection publishers use.</summary>
    internal IConnection? PublishConnection => _publishConnection;

    /// <summary>Stores a dead letter (confirmed) with its reason, origin and time in headers.</summary>
    internal async ValueTask PublishDeadLetterAsync(string queue, string reason, ReadOnlyMemory<byte> body, IDictionary<string, object?>? originalHeaders, CancellationToken cancellationToken)
    {
        await EnsureDeadLetterQueueAsync(cancellationToken).ConfigureAwait(false);
        var headers = originalHeaders is null
            ? new Dictionary<string, object?>(StringComparer.Ordinal)
            : new Dictionary<string, object?>(originalHeaders, StringComparer.Ordinal);
        headers[AmqpHeaders.Id] = "dl_" + Guid.NewGuid().ToString("N");
        headers[AmqpHeaders.Reason] = reason ?? string.Empty;
        headers[AmqpHeaders.Queue] = queue;
        headers[AmqpHeaders.DeadLetteredAt] = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var properties = new BasicProperties { Persistent = true, ContentType = "application/json", Headers = headers };

        // Straight to the queue through the default exchange: the work exchange may be a fanout or topic one.
        await PublishConfirmedAsync(string.Empty, _options.EffectiveDeadLetterQueue, properties, body, cancellationToken).ConfigureAwait(false);
    }

    private static string ConsumerTag(string consumerName) => consumerName + "-" + Guid.NewGuid().ToString("N")[..8];

    private async ValueTask PublishConfirmedAsync(string exchange, string routingKey, BasicProperties properties, ReadOnlyMemory<byte> body, CancellationToken cancellationToken)
    {
        var started = _time.GetTimestamp();
        var backoff = TimeSpan.FromMilliseconds(50);
        while (true)
        {
            var connection = await GetPublishConnectionAsync(cancellationToken).ConfigureAwait(false);
            var slot = (int)((uint)Interlocked.Increment(ref _nextChannel) % (uint)_publishChannels.Length);
            IChannel? channel = null;
            try
            {
                channel = await GetPublishChannelAsync(connection, slot, cancellationToken).ConfigureAwait(false);
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(_options.ConfirmTimeout);
                try
                {
                    // With confirmation tracking on, this completes when RabbitMQ confirms; a nack, a return
                    // (mandatory: no queue bound) or a closed channel throws.
                    await channel.BasicPublishAsync(exchange, routingKey, mandatory: true, properties, body, timeout.Token).ConfigureAwait(false);
                    return;
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    throw new TimeoutException($"RabbitMQ did not confirm a publish to {exchange}/{routingKey} within {_options.ConfirmTimeout}.");
                }
            }
            catch (Exception ex) when (IsConnectionLoss(ex, connection) && !cancellationToken.IsCancellationRequested && Volatile.Read(ref _disposed) == 0)
            {
                // The connection is down (broker restart, network): the client recovers it; try again until it is
                // back, within the retry window. An error of the channel itself (the connection is fine) is the caller's.
                if (_time.GetElapsedTime(started) + backoff > _options.PublishRetryTimeout)
                {
                    throw;
                }

                Log.PublishRetrying(_logger, ex, exchange, routingKey, backoff);
                await Task.Delay(backoff, _time, cancellationToken).ConfigureAwait(false);
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, TimeSpan.FromSeconds(1).Ticks));
            }
        }
    }

    private static bool IsConnectionLoss(Exception ex, IConnection connection) =>
        ex is AlreadyClosedException or OperationInterruptedException or BrokerUnreachableException or IOException or ObjectDisposedException
        && (!connection.IsOpen || (ex is AlreadyClosedException closed && closed.ShutdownReason?.ReplyCode == Constants.ConnectionForced));

    private async ValueTask<IChannel> GetPublishChannelAsync(IConnection connection, int slot, CancellationToken cancellationToken)
    {
        var channel = Volatile.Read(ref _publishChannels[slot]);
        if (channel is { IsOpen: true })
        {
            return channel;
        }

        // Closed for good by an error of its own (404, 406…): channel errors are not recovered. While the
        // connection is down, the client recovers the channel itself; keep it.
        if (channel is not null && !connection.IsOpen)
        {
            throw new AlreadyClosedException(channel.CloseReason ?? connection.CloseReason!);
        }

        var gate = _publishChannelGates[slot];
        await gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            channel = Volatile.Read(ref _publishChannels[slot]);
            if (channel is { IsOpen: true })
            {
                return channel;
            }

            if (channel is not null)
            {
                Log.PublishChannelReplaced(_logger, channel.CloseReason?.ReplyText ?? "closed");
                channel.Dispose();
            }

            var created = await connection.CreateChannelAsync(PublishChannelOptions(), cancellationToken).ConfigureAwait(false);
            Volatile.Write(ref _publishChannels[slot], created);
            return created;
        }
        finally
        {
            gate.Release();
        }
    }

    private CreateChannelOptions PublishChannelOptions() => new(
        publisherConfirmationsEnabled: true,
        publisherConfirmationTrackingEnabled: true,
        outstandingPublisherConfirmationsRateLimiter: new ThrottlingRateLimiter(_options.MaxOutstandingConfirmsPerChannel));

    private async ValueTask<IConnection> GetPublishConnectionAsync(CancellationToken cancellationToken) =>
        Volatile.Read(ref _publishConnection) ?? await ConnectAsync(publish: true, cancellationToken).ConfigureAwait(false);

    private async ValueTask<IConnection> GetConsumeConnectionAsync(CancellationToken cancellationToken) =>
        Volatile.Read(ref _consumeConnection) ?? await ConnectAsync(publish: false, cancellationToken).ConfigureAwait(false);

    private async ValueTask<IConnection> ConnectAsync(bool publish, CancellationToken cancellationToken)
    {
        await _connectGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
            var existing = publish ? _publishConnection : _consumeConnection;
            if (existing is not null)
            {
                return existing;
            }

            var purpose = publish ? "publish" : "consume";
            var connection = await CreateConnectionAsync(purpose, cancellationToken).ConfigureAwait(false);
            if (publish)
            {
                var channels = new IChannel?[_options.PublishChannelPoolSize];
                for (var i = 0; i < channels.Length; i++)
                {
                    channels[i] = await connection.CreateChannelAsync(PublishChannelOptions(), cancellationToken).ConfigureAwait(false);
                }

                _publishChannels = channels;
                Volatile.Write(ref _publishConnection, connection);
            }
            else
            {
                Volatile.Write(ref _consumeConnection, connection);
            }

            return connection;
        }
        finally
        {
            _connectGate.Release();
        }
    }

    private async Task<IConnection> CreateConnectionAsync(string purpose, CancellationToken cancellationToken)
    {
        var urls = _options.EffectiveUrls;
        var factory = new ConnectionFactory
        {
            Uri = WithoutQuery(urls[0]),
            AutomaticRecoveryEnabled = true,
            TopologyRecoveryEnabled = true,
            NetworkRecoveryInterval = _options.NetworkRecoveryInterval,
            RequestedConnectionTimeout = _options.ConnectionTimeout,
            RequestedHeartbeat = _options.Heartbeat,
            ClientProvidedName = $"{_options.ClientName} ({purpose})",

            // Delay queues expire by themselves (x-expires): recovering them after a restart would only recreate
            // queues nobody needs. Every publish to one declares it again anyway.
            TopologyRecoveryFilter = new TopologyRecoveryFilter
            {
                QueueFilter = queue => !IsDelayQueue(queue.Name),
                BindingFilter = binding => !IsDelayQueue(binding.Destination),
            },
        };

        var endpoints = urls.Select(url => new AmqpTcpEndpoint(url.Host, url.IsDefaultPort ? -1 : url.Port, Tls(url))).ToList();

        var connection = await factory.CreateConnectionAsync(endpoints, factory.ClientProvidedName, cancellationToken).ConfigureAwait(false);
        connection.ConnectionShutdownAsync += (_, args) =>
        {
            if (args.Initiator != ShutdownInitiator.Application)
            {
                Log.ConnectionLost(_logger, purpose, $"{args.ReplyCode} {args.ReplyText}");
            }

            return Task.CompletedTask;
        };
        connection.RecoverySucceededAsync += (_, _) =>
        {
            Log.ConnectionRecovered(_logger, purpose);
            return Task.CompletedTask;
        };
        connection.ConnectionRecoveryErrorAsync += (_, args) =>
        {
            Log.RecoveryFailed(_logger, args.Exception, purpose);
            return Task.CompletedTask;
        };
        Log.Connected(_logger, connection.Endpoint.ToString(), purpose);
        return connection;
    }

    // amqps:// validates the server's certificate: against the private CA when one is set, else the machine's roots.
    private SslOption Tls(Uri url)
    {
        var tls = new SslOption(url.Host, enabled: string.Equals(url.Scheme, "amqps", StringComparison.OrdinalIgnoreCase));
        if (tls.Enabled && _certificateAuthority is not null)
        {
            tls.CertificateValidationCallback = _certificateAuthority.Validator();
        }

        return tls;
    }

    private static Uri WithoutQuery(Uri url) => string.IsNullOrEmpty(url.Query) ? url : new UriBuilder(url) { Query = string.Empty }.Uri;

    /// <summary>Runs an operation on the shared management channel; a channel closed by an error is replaced.</summary>
    private async ValueTask<T> AdminAsync<T>(Func<IChannel, CancellationToken, Task<T>> operation, CancellationToken cancellationToken)
    {
        var connection = await GetPublishConnectionAsync(cancellationToken).ConfigureAwait(false);
        await _adminGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_adminChannel is not { IsOpen: true })
            {
                _adminChannel?.Dispose();
                _adminChannel = null;
                _adminChannel = await connection.CreateChannelAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
            }

            return await operation(_adminChannel, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _adminGate.Release();
        }
    }

    private ValueTask AdminAsync(Func<IChannel, CancellationToken, Task> operation, CancellationToken cancellationToken) =>
        new(AdminAsync<bool>(async (channel, ct) =>
        {
            await operation(channel, ct).ConfigureAwait(false);
            return true;
        }, cancellationToken).AsTask());

    private Task EnsureExchangeAsync(CancellationToken cancellationToken)
    {
        var declared = Volatile.Read(ref _exchangeDeclared);
        if (declared is { IsCompletedSuccessfully: true })
        {
            return declared;
        }

        declared = AdminAsync((channel, ct) => channel.ExchangeDeclareAsync(_options.Exchange, _options.ExchangeType, durable: true, autoDelete: false, arguments: null, cancellationToken: ct), cancellationToken).AsTask();
        Volatile.Write(ref _exchangeDeclared, declared);
        return declared;
    }

    /// <summary>Declares the exchange, the work queue and its binding, once per queue and broker instance.</summary>
    private Task EnsureQueueAsync(string queue, CancellationToken cancellationToken)
    {
        if (_declaredQueues.TryGetValue(queue, out var declared) && !declared.IsFaulted && !declared.IsCanceled)
        {
            return declared;
        }

        declared = DeclareQueueAsync(queue, cancellationToken);
        _declaredQueues[queue] = declared;
        return declared;
    }

    private async Task DeclareQueueAsync(string queue, CancellationToken cancellationToken)
    {
        await EnsureExchangeAsync(cancellationToken).ConfigureAwait(false);
        var arguments = new Dictionary<string, object?>(_options.QueueDeclareArguments, StringComparer.Ordinal);
        if (_options.MaxPriority is { } maxPriority)
        {
            arguments["x-max-priority"] = maxPriority;
        }

        if (_options.UseQuorumQueues)
        {
            arguments["x-queue-type"] = "quorum";
        }

        var bindingArguments = _options.QueueBindingArguments.Count > 0 ? new Dictionary<string, object?>(_options.QueueBindingArguments, StringComparer.Ordinal) : null;
        await AdminAsync(async (channel, ct) =>
        {
            await channel.QueueDeclareAsync(queue, durable: true, exclusive: false, autoDelete: false, arguments: arguments.Count > 0 ? arguments : null, cancellationToken: ct).ConfigureAwait(false);
            await channel.QueueBindAsync(queue, _options.Exchange, _options.BindingKey ?? queue, bindingArguments, cancellationToken: ct).ConfigureAwait(false);
        }, cancellationToken).ConfigureAwait(false);
    }

    private Task EnsureDeadLetterQueueAsync(CancellationToken cancellationToken)
    {
        var name = _options.EffectiveDeadLetterQueue;
        var key = "\0dlq:" + name; // never a queue name: keeps it out of ListQueuesAsync's results
        if (_declaredQueues.TryGetValue(key, out var declared) && !declared.IsFaulted && !declared.IsCanceled)
        {
            return declared;
        }

        declared = AdminAsync((channel, ct) => channel.QueueDeclareAsync(name, durable: true, exclusive: false, autoDelete: false, arguments: null, cancellationToken: ct), cancellationToken).AsTask();
        _declaredQueues[key] = declared;
        return declared;
    }

    /// <summary>
    /// Declares machinery's delay queue for a delay and returns its name, which is also its routing key: messages
    /// wait there until their TTL, then RabbitMQ dead-letters them to the exchange with the work queue's routing key.
    /// </summary>
    private async ValueTask<string> EnsureDelayQueueAsync(string routingKey, TimeSpan delay, CancellationToken cancellationToken)
    {
        var granularity = (long)_options.DelayGranularity.TotalMilliseconds;
        var ms = (long)Math.Ceiling(delay.TotalMilliseconds);
        ms = Math.Max(1, (ms + granularity - 1) / granularity * granularity);
        // machinery's x-expires is 2 × ms. RabbitMQ deletes an expiring queue with its messages (they are not
        // dead-lettered), and at a few milliseconds the queue's expiry can beat its messages' TTL: short delays
        // (a retry backoff of milliseconds) get 10 s instead. Those arguments differ from machinery's, and a queue
        // declared with other arguments than an existing one fails (PRECONDITION_FAILED), so short delays wait in
        // queues of Conveyor's own name (conveyor.delay.…); from 5 s up, name and arguments are machinery's exactly
        // and Go and .NET publishers share the queue.
        var machineryArguments = ms * 2 >= MinDelayQueueExpiryMs;
        var expires = machineryArguments ? ms * 2 : MinDelayQueueExpiryMs;
        var name = string.Create(CultureInfo.InvariantCulture, $"{(machineryArguments ? DelayPrefix : OwnDelayPrefix)}{ms}.{_options.Exchange}.{routingKey}");
        var now = _time.GetTimestamp();

        // A publish within half of (expires - ms) of the last declaration lands, and its message leaves ms later,
        // well before the queue can expire: the other half is the margin for a late TTL timer on a busy node (a
        // queue that expires first deletes the message with it). Past that, declare again (which restarts the expiry).
        if (_delayQueues.TryGetValue(name, out var known) && _time.GetElapsedTime(known.DeclaredAt, now).TotalMilliseconds < (expires - ms) / 2)
        {
            return name;
        }

        var arguments = new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["x-dead-letter-exchange"] = _options.Exchange,
            ["x-dead-letter-routing-key"] = routingKey,
            ["x-message-ttl"] = ms,
            ["x-expires"] = expires,
        };
        await AdminAsync(async (channel, ct) =>
        {
            await channel.QueueDeclareAsync(name, durable: true, exclusive: false, autoDelete: false, arguments: arguments, cancellationToken: ct).ConfigureAwait(false);
            await channel.QueueBindAsync(name, _options.Exchange, name, arguments: null, cancellationToken: ct).ConfigureAwait(false);
        }, cancellationToken).ConfigureAwait(false);
        _delayQueues[name] = new DelayQueue(routingKey, now);
        return name;
    }

    private async ValueTask<long> CountDelayQueueAsync(string name, CancellationToken cancellationToken)
    {
        try
        {
            return await AdminAsync(async (channel, ct) => (long)(await channel.QueueDeclarePassiveAsync(name, ct).ConfigureAwait(false)).MessageCount, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationInterruptedException ex) when (ex.ShutdownReason?.ReplyCode == Constants.NotFound)
        {
            _delayQueues.TryRemove(name, out _); // expired: it held nothing any more
            return 0;
        }
    }

    /// <summary>
    /// Reads dead letters without removing them: <c>basic.get</c> without ack on a channel of its own, which is then
    /// closed, so RabbitMQ puts every message back where it was.
    /// </summary>
    private async ValueTask ScanDeadLettersAsync(int maxCount, Func<DeadLetter, ulong, bool> visit, CancellationToken cancellationToken)
    {
        await EnsureDeadLetterQueueAsync(cancellationToken).ConfigureAwait(false);
        var connection = await GetPublishConnectionAsync(cancellationToken).ConfigureAwait(false);
        var channel = await connection.CreateChannelAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        try
        {
            // A message put back is got again at once: stop at the count the queue had when the scan began.
            var total = (await channel.QueueDeclarePassiveAsync(_options.EffectiveDeadLetterQueue, cancellationToken).ConfigureAwait(false)).MessageCount;
            for (var i = 0; i < Math.Min(total, (uint)maxCount); i++)
            {
                var result = await channel.BasicGetAsync(_options.EffectiveDeadLetterQueue, autoAck: false, cancellationToken).ConfigureAwait(false);
                if (result is null)
                {
                    break;
                }

                var headers = result.BasicProperties.Headers;
                var at = AmqpHeaders.GetInt64(headers, AmqpHeaders.DeadLetteredAt) is { } ms ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : DateTimeOffset.MinValue;
                var letter = new DeadLetter(
                    AmqpHeaders.GetString(headers, AmqpHeaders.Id) ?? result.DeliveryTag.ToString(CultureInfo.InvariantCulture),
                    AmqpHeaders.GetString(headers, AmqpHeaders.Queue) ?? string.Empty,
                    AmqpHeaders.GetString(headers, AmqpHeaders.Reason) ?? string.Empty,
                    result.Body.ToArray(),
                    at);
                if (!visit(letter, result.DeliveryTag))
                {
                    break;
                }
            }
        }
        finally
        {
            await CloseQuietlyAsync(channel).ConfigureAwait(false);
        }
    }

    private static async ValueTask CloseQuietlyAsync(IChannel channel)
    {
        try
        {
            await channel.CloseAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is AlreadyClosedException or OperationInterruptedException or ObjectDisposedException)
        {
        }

        channel.Dispose();
    }

    private static bool IsDelayQueue(string name) =>
        name.StartsWith(DelayPrefix, StringComparison.Ordinal) || name.StartsWith(OwnDelayPrefix, StringComparison.Ordinal);

    private sealed record DelayQueue(string RoutingKey, long DeclaredAt);

    private sealed class StrongBox
    {
        public long Value;
    }

    /// <summary>Removes the consumer from the broker's list when it is disposed.</summary>
    private sealed class TrackedConsumer(RabbitMqBroker broker, RabbitMqConsumer inner) : IMessageConsumer
    {
        public RabbitMqConsumer Inner => inner;

        public System.Threading.Channels.ChannelReader<IBrokerDelivery> Deliveries => inner.Deliveries;

        public async ValueTask DisposeAsync()
        {
            broker.Forget(inner);
            await inner.DisposeAsync().ConfigureAwait(false);
        }
    }
}
