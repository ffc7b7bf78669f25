using System.Text;
using Conveyor.Conformance;
using Microsoft.Extensions.Time.Testing;
using RabbitMQ.Client;
using RabbitMQ.Client.Exceptions;

namespace Conveyor.RabbitMQ.Tests;

/// <summary>What is particular to RabbitMQ: machinery's topology, interop with other AMQP clients, confirms, dead letters.</summary>
public sealed class RabbitMqBrokerTests(RabbitMqRedisProviderFactory factory) : IClassFixture<RabbitMqRedisProviderFactory>
{
    private const string SampleTaskId = "task_1d3b3e0a-70e1-4ae6-a834-bb742600b3c0";
    private static readonly TimeSpan Wait = ConveyorTestContext.Timeout;

    [Fact]
    public async Task Publish_WithEta_DeclaresMachinerysDelayQueueAndBindings()
    {
        var now = new DateTimeOffset(2026, 11, 26, 17, 18, 48, TimeSpan.Zero);
        var time = new FakeTimeProvider(now);
        var queue = "topology." + Guid.NewGuid().ToString("N");
        await using var broker = new RabbitMqBroker(factory.BrokerOptions(), time);
        await broker.PublishAsync(new OutgoingMessage("task_x", queue, "{}"u8.ToArray()) { Eta = now.AddMilliseconds(5999) });

        await using var connection = await TestServers.ConnectRawAsync();
        await using var channel = await connection.CreateChannelAsync();
        var delayQueue = $"delay.5999.{factory.Exchange}.{queue}";

        // Declaring again with machinery's exact arguments succeeds only if they are the same (else 406).
        var declared = await channel.QueueDeclareAsync(delayQueue, durable: true, exclusive: false, autoDelete: false, arguments: new Dictionary<string, object?>
        {
            ["x-dead-letter-exchange"] = factory.Exchange,
            ["x-dead-letter-routing-key"] = queue,
            ["x-message-ttl"] = 5999L,
            ["x-expires"] = 11998L,
        });
        Assert.Equal(1u, declared.MessageCount);
        Assert.Equal(0u, (await channel.QueueDeclarePassiveAsync(queue)).MessageCount);
        await channel.ExchangeDeclareAsync(factory.Exchange, "direct", durable: true, autoDelete: false);

        // The delay queue is bound with its own name, the work queue with its name: both routable.
        await using var confirmed = await connection.CreateChannelAsync(new CreateChannelOptions(true, true));
        await confirmed.BasicPublishAsync(factory.Exchange, queue, mandatory: true, new BasicProperties(), "{}"u8.ToArray());
        await confirmed.BasicPublishAsync(factory.Exchange, delayQueue, mandatory: true, new BasicProperties(), "{}"u8.ToArray());
        Assert.Equal(1u, (await channel.QueueDeclarePassiveAsync(queue)).MessageCount);
        Assert.Equal(2u, (await channel.QueueDeclarePassiveAsync(delayQueue)).MessageCount);

        // Another type for the same exchange is refused: it is a durable direct exchange.
        await using var other = await connection.CreateChannelAsync();
        var refused = await Assert.ThrowsAsync<OperationInterruptedException>(() => other.ExchangeDeclareAsync(factory.Exchange, "fanout", durable: true, autoDelete: false));
        Assert.Equal(Constants.PreconditionFailed, refused.ShutdownReason!.ReplyCode);

        await channel.QueueDeleteAsync(delayQueue, false, false);
        await channel.QueueDeleteAsync(queue, false, false);
    }

    [Fact]
    public async Task MachineryMessage_PublishedByAnotherAmqpClient_RunsAndItsStateIsMachinerys()
    {
        await using var t = await ConveyorTestContext.CreateAsync(factory);
        t.Registry.Register("wire_types", (string s, long i, double f, bool b, string[] list) =>
            (s.ToUpperInvariant(), i + 1, f * 2, !b, list.Append("z").ToArray()));
        var id = "task_" + Guid.NewGuid();
        var body = WireSamples.Amqp("amqp_task_wire_types.body.raw.json")
            .Replace(SampleTaskId, id, StringComparison.Ordinal)
            .Replace("\"RoutingKey\":\"machinery_wire\"", $"\"RoutingKey\":\"{t.Queue}\"", StringComparison.Ordinal);
        var pending = WireSamples.Amqp("state_PENDING_wire_types.raw.json").Replace(SampleTaskId, id, StringComparison.Ordinal);
        var expected = WireSamples.Amqp("state_SUCCESS_wire_types.raw.json").Replace(SampleTaskId, id, StringComparison.Ordinal);
        var db = (await factory.MultiplexerAsync()).GetDatabase();
        await db.StringSetAsync(factory.RedisOptions.KeyPrefix + id, pending, TimeSpan.FromSeconds(900));
        await t.Broker.GetQueueStatisticsAsync(t.Queue); // declares and binds the queue, as a worker does
        await t.StartWorkerAsync();

        // What machinery's producer sends (amqp_task_wire_types.delivery.json): persistent, application/json, no headers.
        await using var connection = await TestServers.ConnectRawAsync();
        await using var channel = await connection.CreateChannelAsync(new CreateChannelOptions(true, true));
        await channel.BasicPublishAsync(factory.Exchange, t.Queue, mandatory: true, new BasicProperties { ContentType = "application/json", DeliveryMode = DeliveryModes.Persistent }, Encoding.UTF8.GetBytes(body));

        var final = await t.Client.GetResult(id).WaitAsync(Wait);
        Assert.Equal(TaskState.Success, final.State);
        var stored = (string?)await db.StringGetAsync(factory.RedisOptions.KeyPrefix + id);
        Assert.Equal(expected, stored); // byte for byte, CreatedAt kept from machinery's PENDING record
    }

    [Fact]
    public async Task Publish_ToAnExchangeThatDoesNotExist_Throws_AndTheBrokerKeepsPublishing()
    {
        var options = TestServers.BrokerOptions("conveyor_test_gone_" + Guid.NewGuid().ToString("N")[..8]);
        await using var broker = new RabbitMqBroker(options);
        var queue = "confirm." + Guid.NewGuid().ToString("N");
        await broker.PublishAsync(new OutgoingMessage("task_ok", queue, "{}"u8.ToArray()));

        await using (var connection = await TestServers.ConnectRawAsync())
        await using (var channel = await connection.CreateChannelAsync())
        {
            await channel.ExchangeDeleteAsync(options.Exchange, ifUnused: false);
        }

        // The broker's cache says the exchange exists; RabbitMQ closes the channel (404): the caller must hear of it.
        var error = await Assert.ThrowsAnyAsync<Exception>(async () => await broker.PublishAsync(new OutgoingMessage("task_lost", queue, "{}"u8.ToArray())));
        Assert.IsNotType<TimeoutException>(error);

        // A new broker declares the exchange again; the queue kept its first message.
        await using var fresh = new RabbitMqBroker(TestServers.BrokerOptions(options.Exchange));
        await fresh.PublishAsync(new OutgoingMessage("task_ok2", queue, "{}"u8.ToArray()));
        Assert.Equal(2, (await fresh.GetQueueStatisticsAsync(queue)).Ready);
        await fresh.PurgeAsync(queue);
        await using var cleanup = await TestServers.ConnectRawAsync();
        await using var cleanupChannel = await cleanup.CreateChannelAsync();
        await cleanupChannel.QueueDeleteAsync(queue, false, false);
        await cleanupChannel.ExchangeDeleteAsync(options.Exchange, false);
    }

    [Fact]
    public async Task Publish_AfterTheBrokerIsDisposed_Throws()
    {
        var broker = new RabbitMqBroker(factory.BrokerOptions());
        await broker.PublishAsync(new OutgoingMessage("task_a", "closed." + Guid.NewGuid().ToString("N"), "{}"u8.ToArray()));
        await broker.DisposeAsync();
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await broker.PublishAsync(new OutgoingMessage("task_b", "x", "{}"u8.ToArray())));
    }

    [Fact]
    public async Task DeadLetter_KeepsReasonRawBodyAndHeaders_InTheDeadLetterQueue()
    {
        await using var t = await ConveyorTestContext.CreateAsync(factory);
        var raw = "{\"not\":\"a signature\" \u00e9}"u8.ToArray();
        await t.Broker.PublishAsync(new OutgoingMessage("task_bad", t.Queue, raw));
        await using (var consumer = await t.Broker.ConsumeAsync(t.Queue, new ConsumeOptions { Prefetch = 1 }))
        {
            var delivery = await consumer.Deliveries.ReadAsync().AsTask().WaitAsync(Wait);
            await delivery.DeadLetterAsync("malformed message: boom");
        }

        await using var connection = await TestServers.ConnectRawAsync();
        await using var channel = await connection.CreateChannelAsync();
        var found = false;
        for (var i = 0; i < 100 && !found; i++)
        {
            var got = await channel.BasicGetAsync(factory.Exchange + ".dead_letters", autoAck: false);
            Assert.NotNull(got);
            var headers = got.BasicProperties.Headers!;
            if (Encoding.UTF8.GetString((byte[])headers["x-conveyor-queue"]!) != t.Queue)
            {
                continue;
            }

            found = true;
            Assert.Equal(raw, got.Body.ToArray());
            Assert.Equal("malformed message: boom", Encoding.UTF8.GetString((byte[])headers["x-conveyor-reason"]!));
            Assert.True(headers.ContainsKey("x-conveyor-dead-lettered-at"));
            Assert.Equal(DeliveryModes.Persistent, got.BasicProperties.DeliveryMode);
        }

        Assert.True(found);
        await channel.CloseAsync(); // hands the dead letters back
        Assert.Equal(1, (await t.Broker.GetQueueStatisticsAsync(t.Queue)).DeadLettered);
        Assert.Equal(0, (await t.Broker.GetQueueStatisticsAsync(t.Queue)).Ready);
        Assert.Equal(1, await t.Broker.RequeueDeadLettersAsync(10));
    }

    [Fact]
    public async Task Ack_CoalescedBehindAHeldDelivery_FreesThePrefetchWindow_AndNothingComesBack()
    {
        await using var t = await ConveyorTestContext.CreateAsync(factory);
        const int Count = 40;
        for (var i = 0; i < Count; i++)
        {
            await t.Broker.PublishAsync(new OutgoingMessage($"task_{i}", t.Queue, Encoding.UTF8.GetBytes($"m{i}")));
        }

        IBrokerDelivery held;
        var acked = new HashSet<string>(StringComparer.Ordinal);
        await using (var consumer = await t.Broker.ConsumeAsync(t.Queue, new ConsumeOptions { Prefetch = 8 }))
        {
            // The first delivery stays unsettled (a long task); every later one is acknowledged. If acknowledgements
            // waited for it, the window of 8 would stay full after 7 and the rest would never arrive.
            held = await consumer.Deliveries.ReadAsync().AsTask().WaitAsync(Wait);
            while (acked.Count < Count - 1)
            {
                var delivery = await consumer.Deliveries.ReadAsync().AsTask().WaitAsync(Wait);
                Assert.True(acked.Add(Encoding.UTF8.GetString(delivery.Body.Span)));
                await delivery.AckAsync();
            }

            await held.AckAsync();
        }

        // Closing the channel requeues whatever RabbitMQ did not see acknowledged: nothing may be left.
        await using var connection = await TestServers.ConnectRawAsync();
        await using var channel = await connection.CreateChannelAsync();
        Assert.Null(await channel.BasicGetAsync(t.Queue, autoAck: false));
        Assert.DoesNotContain(Encoding.UTF8.GetString(held.Body.Span), acked);
    }

    [Fact]
    public void AmqpUrl_ParsesSeveralUrlsAndParameters()
    {
        var options = AmqpUrl.Parse("amqps://u:p@h1:5671/vh?exchange=ex&exchange_type=topic&binding_key=k.%23&max_priority=5, amqps://h2/vh");
        Assert.Equal(2, options.Urls.Count);
        Assert.Equal("h2", options.Urls[1].Host);
        Assert.Equal("ex", options.Exchange);
        Assert.Equal("topic", options.ExchangeType);
        Assert.Equal("k.#", options.BindingKey);
        Assert.Equal(5, options.MaxPriority);
        Assert.Throws<FormatException>(() => AmqpUrl.Parse("redis://h"));
        Assert.Throws<FormatException>(() => AmqpUrl.Parse("amqp://h?nope=1"));
        Assert.Throws<FormatException>(() => AmqpUrl.Parse("amqp://h?quorum=true&max_priority=3"));
    }
}
