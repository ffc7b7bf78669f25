using System.Globalization;
using System.Text.Json;
using Conveyor.Serialization;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;

namespace Conveyor.MixedFleet.Tests;

/// <summary>
/// machinery v2's AMQP broker (<c>v2/brokers/amqp/amqp.go</c>, direct exchange): a publish declares the durable
/// queue named by the routing key, binds it, and publishes persistent <c>application/json</c> with
/// <c>amqp.Table(signature.Headers)</c> and waits for the confirm; a publish with a future ETA goes through
/// <c>delay</c>: a queue <c>delay.&lt;ms&gt;.&lt;exchange&gt;.&lt;routing key&gt;</c> declared with
/// <c>x-dead-letter-exchange</c>, <c>x-dead-letter-routing-key</c>, <c>x-message-ttl</c> = ms and
/// <c>x-expires</c> = 2 × ms (ms truncated, as Go's integer division does). Consuming acks every delivery after
/// <c>Process</c>, whatever it returned, and nacks with requeue a task this worker has not registered.
/// </summary>
/// <remarks>
/// machinery decodes a message with <c>UseNumber</c>, so a header that is a JSON number is a <c>json.Number</c>
/// when it publishes again (a retry, a callback), and a JSON object is a <c>map[string]interface{}</c>: amqp091-go's
/// table validation accepts neither and the publish fails with <c>table field "…" value json.Number not
/// supported</c>. <see cref="ToTable"/> applies the same rule.
/// </remarks>
internal sealed class MachineryAmqpBroker : IMachineryBroker
{
    private readonly IConnection _connection;
    private readonly string _exchange;
    private readonly SemaphoreSlim _publishLock = new(1, 1);
    private IChannel? _publishChannel;

    private MachineryAmqpBroker(IConnection connection, string exchange)
    {
        _connection = connection;
        _exchange = exchange;
    }

    public static async Task<MachineryAmqpBroker> ConnectAsync(Uri url, string exchange)
    {
        var connection = await new ConnectionFactory { Uri = url }.CreateConnectionAsync();
        return new MachineryAmqpBroker(connection, exchange);
    }

    /// <summary>machinery's <c>time.Now()</c>; a test may fix it to compute the delay queue's exact name.</summary>
    public TimeProvider Clock { get; set; } = TimeProvider.System;

    /// <summary>Publishes that failed (machinery's worker logs them and acks the delivery: the task is lost).</summary>
    public List<string> PublishErrors { get; } = [];

    public async Task PublishAsync(Signature signature)
    {
        try
        {
            await PublishCoreAsync(signature);
        }
        catch (Exception ex)
        {
            lock (PublishErrors)
            {
                PublishErrors.Add($"{signature.Name} {signature.Id}: {ex.Message}");
            }

            throw;
        }
    }

    private async Task PublishCoreAsync(Signature signature)
    {
        var body = WireFormat.SerializeSignature(signature);
        var headers = ToTable(body);
        var now = Clock.GetUtcNow();
        if (signature.Eta is { } eta && eta > now)
        {
            var delayMs = (long)(eta - now).TotalMilliseconds;
            if (delayMs > 0)
            {
                await DelayAsync(signature, body, headers, delayMs);
                return;
            }
        }

        await _publishLock.WaitAsync();
        try
        {
            var channel = await PublishChannelAsync();
            await channel.QueueDeclareAsync(signature.RoutingKey, durable: true, exclusive: false, autoDelete: false, arguments: null);
            await channel.QueueBindAsync(signature.RoutingKey, _exchange, signature.RoutingKey);
            var properties = new BasicProperties { Headers = headers, ContentType = "application/json", Priority = signature.Priority, Persistent = true };
            await channel.BasicPublishAsync(_exchange, signature.RoutingKey, mandatory: false, properties, body);
        }
        catch
        {
            // A channel error closes the channel: the next publish opens another, as machinery reconnects.
            if (_publishChannel is not null)
            {
                await _publishChannel.DisposeAsync();
                _publishChannel = null;
            }

            throw;
        }
        finally
        {
            _publishLock.Release();
        }
    }

    /// <summary>machinery's <c>delay</c>: a connection of its own, the delay queue declared, published, closed.</summary>
    private async Task DelayAsync(Signature signature, byte[] body, IDictionary<string, object?> headers, long delayMs)
    {
        var queueName = string.Create(CultureInfo.InvariantCulture, $"delay.{delayMs}.{_exchange}.{signature.RoutingKey}");
        var arguments = new Dictionary<string, object?>
        {
            ["x-dead-letter-exchange"] = _exchange,
            ["x-dead-letter-routing-key"] = signature.RoutingKey,
            ["x-message-ttl"] = delayMs,
            ["x-expires"] = delayMs * 2,
        };
        await using var channel = await _connection.CreateChannelAsync();
        await channel.ExchangeDeclareAsync(_exchange, ExchangeType.Direct, durable: true, autoDelete: false);
        await channel.QueueDeclareAsync(queueName, durable: true, exclusive: false, autoDelete: false, arguments: arguments);
        await channel.QueueBindAsync(queueName, _exchange, queueName);
        var properties = new BasicProperties { Headers = headers, ContentType = "application/json", Persistent = true };
        await channel.BasicPublishAsync(_exchange, queueName, mandatory: false, properties, body);
    }

    public async Task ConsumeAsync(string queue, int concurrency, MachineryPeer peer, CancellationToken stop)
    {
        await using var channel = await _connection.CreateChannelAsync(cancellationToken: CancellationToken.None);
        await channel.ExchangeDeclareAsync(_exchange, ExchangeType.Direct, durable: true, autoDelete: false, cancellationToken: CancellationToken.None);
        await channel.QueueDeclareAsync(queue, durable: true, exclusive: false, autoDelete: false, arguments: null, cancellationToken: CancellationToken.None);
        await channel.QueueBindAsync(queue, _exchange, queue, cancellationToken: CancellationToken.None);
        await channel.BasicQosAsync(0, (ushort)concurrency, global: false, CancellationToken.None);
        var running = new System.Collections.Concurrent.ConcurrentDictionary<Task, byte>();
        var consumer = new AsyncEventingBasicConsumer(channel);
        consumer.ReceivedAsync += (_, delivery) =>
        {
            peer.Taken();
            var body = delivery.Body.ToArray();
            var tag = delivery.DeliveryTag;
            var work = Task.Run(async () =>
            {
                try
                {
                    await ConsumeOneAsync(channel, body, tag, peer);
                }
                finally
                {
                    peer.Done();
                }
            });
            running.TryAdd(work, 0);
            return Task.CompletedTask;
        };
        var consumerTag = await channel.BasicConsumeAsync(queue, autoAck: false, consumer, CancellationToken.None);
        try
        {
            await Task.Delay(Timeout.Infinite, stop);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }

        await channel.BasicCancelAsync(consumerTag, cancellationToken: CancellationToken.None);
        await Task.WhenAll(running.Keys);
    }

    private static async Task ConsumeOneAsync(IChannel channel, byte[] body, ulong tag, MachineryPeer peer)
    {
        Signature signature;
        try
        {
            signature = MachineryPeer.Decode(body);
        }
        catch (Exception ex)
        {
            await channel.BasicNackAsync(tag, multiple: false, requeue: false);
            peer.Errors.Enqueue("could not unmarshal task signature: " + ex.Message);
            return;
        }

        if (!peer.IsTaskRegistered(signature.Name))
        {
            if (!signature.IgnoreWhenTaskNotRegistered)
            {
                await channel.BasicNackAsync(tag, multiple: false, requeue: true);
            }

            return;
        }

        await peer.ProcessAsync(signature);
        await channel.BasicAckAsync(tag, multiple: false);
    }

    /// <summary>
    /// <c>amqp.Table(signature.Headers)</c> after machinery's <c>UseNumber</c> decoding, validated as amqp091-go's
    /// <c>validateField</c> does: strings, booleans, null and arrays of those pass; a number (a <c>json.Number</c>)
    /// or an object (a <c>map[string]interface{}</c>, not an <c>amqp.Table</c>) fails the publish.
    /// </summary>
    internal static Dictionary<string, object?> ToTable(byte[] body)
    {
        using var document = JsonDocument.Parse(body);
        var table = new Dictionary<string, object?>(StringComparer.Ordinal);
        if (!document.RootElement.TryGetProperty("Headers", out var headers) || headers.ValueKind != JsonValueKind.Object)
        {
            return table;
        }

        foreach (var header in headers.EnumerateObject())
        {
            table[header.Name] = Field(header.Name, header.Value);
        }

        return table;
    }

    private static object? Field(string name, JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => value.GetString(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        JsonValueKind.Null => null,
        JsonValueKind.Array => value.EnumerateArray().Select(item => Field(name, item)).ToList(),
        JsonValueKind.Number => throw new InvalidOperationException($"table field \"{name}\" value json.Number not supported"),
        _ => throw new InvalidOperationException($"table field \"{name}\" value map[string]interface {{}} not supported"),
    };

    private async Task<IChannel> PublishChannelAsync()
    {
        if (_publishChannel is null)
        {
            _publishChannel = await _connection.CreateChannelAsync(new CreateChannelOptions(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: true));
            await _publishChannel.ExchangeDeclareAsync(_exchange, ExchangeType.Direct, durable: true, autoDelete: false);
        }

        return _publishChannel;
    }

    public async ValueTask DisposeAsync()
    {
        if (_publishChannel is not null)
        {
            await _publishChannel.DisposeAsync();
        }

        await _connection.DisposeAsync();
        _publishLock.Dispose();
    }
}
