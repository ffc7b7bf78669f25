using System.Text;
using Conveyor.Conformance;
using Conveyor.Redis.Internal;
using StackExchange.Redis;

namespace Conveyor.Redis.Tests;

/// <summary>What machinery's BLPOP worker cannot do: nothing is lost when a worker dies, a connection is killed or Redis restarts.</summary>
public sealed class ReliabilityTests(RedisProviderFactory factory) : IClassFixture<RedisProviderFactory>
{
    private static readonly TimeSpan Wait = ConveyorTestContext.Timeout;

    private static OutgoingMessage Message(string queue, string text) => new("task_" + text, queue, Encoding.UTF8.GetBytes(text));

    private static string Text(IBrokerDelivery delivery) => Encoding.UTF8.GetString(delivery.Body.Span);

    [Fact]
    public async Task DeadConsumer_NewConsumerRecoversItsMessagesFirst_BackAtTheHeadInOrder_AndItLeavesTheRegistry()
    {
        await using var t = await ConveyorTestContext.CreateAsync(factory);
        for (var i = 0; i < 3; i++)
        {
            await t.Broker.PublishAsync(Message(t.Queue, $"m{i}"));
        }

        var doomed = (RedisMessageConsumer)await t.Broker.ConsumeAsync(t.Queue, new ConsumeOptions { Prefetch = 3, ConsumerName = "doomed" });
        for (var i = 0; i < 3; i++)
        {
            await doomed.Deliveries.ReadAsync().AsTask().WaitAsync(Wait);
        }

        await factory.SimulateCrashAsync(doomed);
        await t.Broker.PublishAsync(Message(t.Queue, "m3"));
        var db = (await factory.MultiplexerAsync()).GetDatabase();
        var keys = new RedisKeys(factory.Options.KeyPrefix, factory.Options.DelayedTasksKey);
        Assert.Equal(3, await db.ListLengthAsync(keys.InFlight(t.Queue, doomed.Id)));
        Assert.Equal(3, (await t.Broker.GetQueueStatisticsAsync(t.Queue)).InFlight);
        await ConveyorTestContext.EventuallyAsync(async () => !await db.KeyExistsAsync(keys.Heartbeat(t.Queue, doomed.Id)), "the dead consumer's heartbeat expires");

        await using var heir = await t.Broker.ConsumeAsync(t.Queue, new ConsumeOptions { Prefetch = 1, ConsumerName = "heir" });
        var order = new List<string>();
        for (var i = 0; i < 4; i++)
        {
            var delivery = await heir.Deliveries.ReadAsync().AsTask().WaitAsync(factory.RedeliveryTimeout + Wait);
            order.Add(Text(delivery));
            await delivery.AckAsync();
        }

        Assert.Equal(["m0", "m1", "m2", "m3"], order);
        Assert.False(await db.SetContainsAsync(keys.Consumers(t.Queue), doomed.Id));
        Assert.False(await db.KeyExistsAsync(keys.InFlight(t.Queue, doomed.Id)));
    }

    [Fact]
    public async Task LostFetchReply_OrphanInTheInFlightList_IsHandedBackAndDelivered()
    {
        await using var t = await ConveyorTestContext.CreateAsync(factory);
        var consumer = (RedisMessageConsumer)await t.Broker.ConsumeAsync(t.Queue, new ConsumeOptions { Prefetch = 4 });
        await using var _ = consumer;
        var db = (await factory.MultiplexerAsync()).GetDatabase();
        var keys = new RedisKeys(factory.Options.KeyPrefix, factory.Options.DelayedTasksKey);

        // As if the fetch script ran but its reply was lost with the connection.
        await db.ListRightPushAsync(keys.InFlight(t.Queue, consumer.Id), "orphan");
        consumer.RequestReconcile();

        var delivery = await consumer.Deliveries.ReadAsync().AsTask().WaitAsync(Wait);
        Assert.Equal("orphan", Text(delivery));
        await delivery.AckAsync();
        Assert.Equal(0, await db.ListLengthAsync(keys.InFlight(t.Queue, consumer.Id)));
    }

    [Fact]
    public async Task Dispose_HandsUnsettledMessagesBackAtOnce_WithoutWaitingForAHeartbeat()
    {
        await using var t = await ConveyorTestContext.CreateAsync(factory);
        await t.Broker.PublishAsync(Message(t.Queue, "a"));
        await t.Broker.PublishAsync(Message(t.Queue, "b"));
        await using (var first = await t.Broker.ConsumeAsync(t.Queue, new ConsumeOptions { Prefetch = 2 }))
        {
            await first.Deliveries.ReadAsync().AsTask().WaitAsync(Wait);
            await first.Deliveries.ReadAsync().AsTask().WaitAsync(Wait);
        }

        var stats = await t.Broker.GetQueueStatisticsAsync(t.Queue);
        Assert.Equal(2, stats.Ready);
        Assert.Equal(0, stats.InFlight);
    }

    [Fact]
    public async Task Priorities_Off_AllMessagesGoToMachinerysListAndTheCapabilityIsNotDeclared()
    {
        var options = new RedisConveyorOptions { KeyPrefix = factory.Options.KeyPrefix, Priorities = false };
        await using var broker = new RedisBroker(await factory.MultiplexerAsync(), options);
        Assert.False(broker.Capabilities.HasFlag(BrokerCapabilities.Priorities));
        var queue = "prio-off-" + Guid.NewGuid().ToString("N");
        await broker.PublishAsync(Message(queue, "x") with { Priority = 9 });
        Assert.Equal(1, await (await factory.MultiplexerAsync()).GetDatabase().ListLengthAsync(options.KeyPrefix + queue));
        await broker.PurgeAsync(queue);
    }

    [Fact]
    public async Task ClientKill_OfEveryConnection_WorkerReconnectsAndGoesOnConsuming()
    {
        var name = "conveyor-kill-test-" + Guid.NewGuid().ToString("N")[..8];
        await using var multiplexer = await RedisTestServer.ConnectAsync(name);
        await using var admin = await RedisTestServer.ConnectAsync(admin: true);
        var options = new RedisConveyorOptions { KeyPrefix = factory.Options.KeyPrefix, VisibilityTimeout = TimeSpan.FromSeconds(5), IdlePollInterval = TimeSpan.FromMilliseconds(50) };
        var broker = new RedisBroker(multiplexer, options);
        var backend = new RedisResultBackend(multiplexer, options);
        var queue = "kill-" + Guid.NewGuid().ToString("N");
        var client = new ConveyorClient(broker, backend, new ConveyorClientOptions { DefaultQueue = queue, MaxResultPollInterval = TimeSpan.FromMilliseconds(20) });
        var registry = new TaskRegistry().Register("add", (long a, long b) => a + b);
        using var worker = new ConveyorWorker(client, registry, new WorkerOptions { Queue = queue, Concurrency = 2, ReconnectDelay = TimeSpan.FromMilliseconds(100) });
        await worker.StartAsync(CancellationToken.None);
        try
        {
            Assert.Equal(3L, await (await client.SendAsync(new Signature("add", TaskArgument.Int64(1), TaskArgument.Int64(2)))).GetValueAsync<long>(Wait));

            // Kill only this test's connections (interactive and pub/sub): the test Redis is shared.
            var killed = await KillClientsAsync(admin, name);
            Assert.True(killed >= 2, $"killed {killed} connection(s) named {name}");

            var results = new List<AsyncResult>();
            for (var i = 0; i < 20; i++)
            {
                results.Add(await SendWithRetryAsync(client, new Signature("add", TaskArgument.Int64(i), TaskArgument.Int64(1))));
            }

            for (var i = 0; i < results.Count; i++)
            {
                Assert.Equal(i + 1L, await results[i].GetValueAsync<long>(Wait));
            }
        }
        finally
        {
            await worker.StopAsync(CancellationToken.None);
            await broker.PurgeAsync(queue);
            await broker.DisposeAsync();
            await backend.DisposeAsync();
        }
    }

    [Fact]
    public async Task RedisRestart_WithAppendOnly_WorkerResumesByItselfAndNothingIsLost()
    {
        await using var server = await PrivateRedis.StartAsync();
        var configuration = ConfigurationOptions.Parse(server.Address);
        configuration.AbortOnConnectFail = false;
        await using var multiplexer = await ConnectionMultiplexer.ConnectAsync(configuration);
        var options = new RedisConveyorOptions { VisibilityTimeout = TimeSpan.FromSeconds(10), IdlePollInterval = TimeSpan.FromMilliseconds(50) };
        var broker = new RedisBroker(multiplexer, options);
        var backend = new RedisResultBackend(multiplexer, options);
        var client = new ConveyorClient(broker, backend, new ConveyorClientOptions { DefaultQueue = "restart", MaxResultPollInterval = TimeSpan.FromMilliseconds(50) });
        var runs = 0;
        var registry = new TaskRegistry().Register("slow_add", async (long a, long b) =>
        {
            Interlocked.Increment(ref runs);
            await Task.Delay(30);
            return a + b;
        });
        using var worker = new ConveyorWorker(client, registry, new WorkerOptions { Queue = "restart", Concurrency = 2, ReconnectDelay = TimeSpan.FromMilliseconds(100) });
        const int Count = 40;
        var results = new List<AsyncResult>();
        for (var i = 0; i < Count; i++)
        {
            results.Add(await client.SendAsync(new Signature("slow_add", TaskArgument.Int64(i), TaskArgument.Int64(1))));
        }

        await worker.StartAsync(CancellationToken.None);
        try
        {
            await ConveyorTestContext.EventuallyAsync(() => Task.FromResult(Volatile.Read(ref runs) >= 4), "a few tasks ran before the restart");
            await server.RestartAsync(TimeSpan.FromMilliseconds(500));

            for (var i = 0; i < Count; i++)
            {
                Assert.Equal(i + 1L, await results[i].GetValueAsync<long>(TimeSpan.FromSeconds(60)));
            }

            // And new work after the restart runs too.
            var after = await SendWithRetryAsync(client, new Signature("slow_add", TaskArgument.Int64(100), TaskArgument.Int64(1)));
            Assert.Equal(101L, await after.GetValueAsync<long>(Wait));
        }
        finally
        {
            await worker.StopAsync(CancellationToken.None);
            await broker.DisposeAsync();
            await backend.DisposeAsync();
        }
    }

    private static async Task<AsyncResult> SendWithRetryAsync(ConveyorClient client, Signature signature)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await client.SendAsync(signature);
            }
            catch (RedisException) when (attempt < 50)
            {
                await Task.Delay(100);
            }
        }
    }

    private static async Task<int> KillClientsAsync(ConnectionMultiplexer admin, string name)
    {
        var server = admin.GetServers()[0];
        var killed = 0;
        foreach (var client in await server.ClientListAsync())
        {
            if (client.Name == name)
            {
                await admin.GetDatabase().ExecuteAsync("CLIENT", "KILL", "ID", client.Id);
                killed++;
            }
        }

        return killed;
    }
}
