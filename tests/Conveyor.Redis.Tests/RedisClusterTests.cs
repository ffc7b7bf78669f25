using Conveyor.Conformance;
using Conveyor.Redis.Internal;
using StackExchange.Redis;

namespace Conveyor.Redis.Tests;

/// <summary>
/// The Redis provider on the Redis Cluster in <c>CONVEYOR_TEST_REDIS_CLUSTER</c> (three masters). The options leave
/// <see cref="RedisConveyorOptions.Cluster"/> unset: the cluster layout comes from the server, as in production.
/// </summary>
public sealed class RedisClusterProviderFactory() : RedisProviderFactory("conveyor-cluster:" + Guid.NewGuid().ToString("N")[..8] + ":")
{
    public override string Name => "redis cluster";

    protected override Task<ConnectionMultiplexer> ConnectAsync() => RedisTestServer.ConnectClusterAsync();
}

public sealed class RedisClusterBrokerConformanceTests(RedisClusterProviderFactory factory) : BrokerConformanceTests<RedisClusterProviderFactory>(factory);

public sealed class RedisClusterResultBackendConformanceTests(RedisClusterProviderFactory factory) : ResultBackendConformanceTests<RedisClusterProviderFactory>(factory);

public sealed class RedisClusterWorkerConformanceTests(RedisClusterProviderFactory factory) : WorkerConformanceTests<RedisClusterProviderFactory>(factory);

public sealed class RedisClusterSchedulerConformanceTests(RedisClusterProviderFactory factory) : SchedulerConformanceTests<RedisClusterProviderFactory>(factory)
{
    protected override async ValueTask<IDistributedLock> CreateLockAsync() => new RedisDistributedLock(await Factory.MultiplexerAsync(), Factory.Options);
}

/// <summary>Where the keys go on a cluster, and queues spread over its masters.</summary>
public sealed class RedisClusterLayoutTests(RedisClusterProviderFactory factory) : IClassFixture<RedisClusterProviderFactory>
{
    [Fact]
    public async Task Connect_ClusterServer_IsDetectedAndUsesTheClusterLayout()
    {
        var multiplexer = await factory.MultiplexerAsync();
        var keys = RedisClusterMode.KeysFor(multiplexer, factory.Options);

        Assert.True(keys.Cluster);
        Assert.Equal(factory.Options.KeyPrefix + "{emails}", (string)keys.Queue("emails")!);
        Assert.Equal(factory.Options.KeyPrefix + "conveyor:{emails}:delayed_tasks", (string)keys.DelayedFor("emails")!);
        Assert.Equal(multiplexer.HashSlot(keys.Queue("emails")), multiplexer.HashSlot(keys.DelayedFor("emails")));
        Assert.Equal(multiplexer.HashSlot(keys.GroupMeta("group_1")), multiplexer.HashSlot(keys.GroupMembers("group_1")));
        Assert.Equal(multiplexer.HashSlot(keys.State("task_1")), multiplexer.HashSlot(keys.WatchedFor("task_1")));
    }

    [Fact]
    public async Task Connect_SingleRedis_KeepsMachinerysLayout()
    {
        await using var single = await RedisTestServer.ConnectAsync();
        var keys = RedisClusterMode.KeysFor(single, new RedisConveyorOptions { KeyPrefix = string.Empty });

        Assert.False(keys.Cluster);
        Assert.Equal("machinery_tasks", (string)keys.Queue("machinery_tasks")!);
        Assert.Equal("delayed_tasks", (string)keys.DelayedFor("machinery_tasks")!);
        Assert.Equal("group_1", (string)keys.GroupMeta("group_1")!);
        Assert.Equal("TriggerChordMutex", (string)keys.ChordMutexFor("group_1")!);
        Assert.Equal("conveyor:watched", (string)keys.WatchedFor("task_1")!);
        Assert.True(RedisClusterMode.KeysFor(single, new RedisConveyorOptions { Cluster = true }).Cluster); // ?cluster=true forces it
    }

    [Fact]
    public async Task Keys_WithoutPrefix_KeepMachinerysPlainNamesInTheQueuesSlot()
    {
        var multiplexer = await factory.MultiplexerAsync();
        var keys = RedisClusterMode.KeysFor(multiplexer, new RedisConveyorOptions { KeyPrefix = string.Empty });

        Assert.Equal("machinery_tasks", (string)keys.Queue("machinery_tasks")!);
        Assert.Equal(multiplexer.HashSlot(keys.Queue("machinery_tasks")), multiplexer.HashSlot(keys.InFlight("machinery_tasks", "w")));
        Assert.Equal("{a{b}", (string)keys.Queue("a{b")!); // a brace in the name: tagged, so it hashes like conveyor:{a{b}:…
        Assert.Equal(multiplexer.HashSlot(keys.Queue("a{b")), multiplexer.HashSlot(keys.Idle("a{b")));
    }

    [Fact]
    public async Task Workers_ThreeQueuesOnThreeMasters_EachMasterHoldsItsQueueAndEveryTaskFinishes()
    {
        var multiplexer = await factory.MultiplexerAsync();
        var keys = RedisClusterMode.KeysFor(multiplexer, factory.Options);
        var db = multiplexer.GetDatabase();
        var masters = multiplexer.GetServers().Where(server => !server.IsReplica).ToList();
        Assert.Equal(3, masters.Count);

        // Three queue names whose slots belong to three different masters.
        var queues = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = 0; queues.Count < 3 && i < 1000; i++)
        {
            var name = "spread" + i.ToString(System.Globalization.CultureInfo.InvariantCulture);
            var owner = await db.IdentifyEndpointAsync(keys.Queue(name));
            Assert.NotNull(owner);
            queues.TryAdd(owner.ToString()!, name);
        }

        Assert.Equal(3, queues.Count);

        // Two workers, each consuming the three queues (one ConveyorWorker per queue), with a broker and backend each.
        var registry = new TaskRegistry();
        registry.Register("add", (long a, long b) => a + b);
        var running = new List<(ConveyorWorker Worker, IBroker Broker, IResultBackend Backend)>();
        var client = new ConveyorClient(await factory.CreateBrokerAsync(), await factory.CreateBackendAsync());
        try
        {
            for (var w = 1; w <= 2; w++)
            {
                var broker = await factory.CreateBrokerAsync();
                var backend = await factory.CreateBackendAsync();
                var workerClient = new ConveyorClient(broker, backend);
                foreach (var queue in queues.Values)
                {
                    var worker = new ConveyorWorker(workerClient, registry, new WorkerOptions { Queue = queue, Concurrency = 4, Name = $"worker-{w}-{queue}" });
                    await worker.StartAsync(CancellationToken.None);
                    running.Add((worker, broker, backend));
                }
            }

            const int PerQueue = 100;
            var results = new List<(AsyncResult Result, long Expected)>();
            foreach (var queue in queues.Values)
            {
                for (var i = 0; i < PerQueue; i++)
                {
                    results.Add((await client.SendAsync(new Signature("add", TaskArgument.Int64(i), TaskArgument.Int64(1)) { RoutingKey = queue }), i + 1));
                }
            }

            foreach (var (result, expected) in results)
            {
                Assert.Equal(expected, await result.GetValueAsync<long>(ConveyorTestContext.Timeout));
            }

            // Each master holds its own queue's keys (the consumer registry, a heartbeat per consumer) and none of
            // the other two queues'; task states spread over all three.
            foreach (var master in masters)
            {
                var own = queues[master.EndPoint.ToString()!];
                var found = new List<string>();
                await foreach (var key in master.KeysAsync(pattern: factory.Options.KeyPrefix + "*", pageSize: 1000))
                {
                    found.Add((string)key!);
                }

                Assert.Contains((string)keys.Consumers(own)!, found);
                Assert.Equal(2, found.Count(key => key.StartsWith(keys.QueueScope(own) + "alive:", StringComparison.Ordinal)));
                foreach (var other in queues.Values.Where(queue => queue != own))
                {
                    Assert.DoesNotContain(found, key => key.Contains("{" + other + "}", StringComparison.Ordinal));
                }

                Assert.Contains(found, key => key.StartsWith(factory.Options.KeyPrefix + "task_", StringComparison.Ordinal));
            }
        }
        finally
        {
            foreach (var (worker, _, _) in running)
            {
                using var timeout = new CancellationTokenSource(ConveyorTestContext.Timeout);
                await worker.StopAsync(timeout.Token);
            }

            foreach (var broker in running.Select(r => r.Broker).Distinct())
            {
                await broker.DisposeAsync();
            }

            foreach (var backend in running.Select(r => r.Backend).Distinct())
            {
                await backend.DisposeAsync();
            }

            await client.Broker.DisposeAsync();
            await client.Backend.DisposeAsync();
        }
    }
}

// No chord-protocol suite here: it plays Go machinery peers whose group members leave only their states (the
// counter's cursor reads them), and no Go worker can share a cluster. Groups and chords run in the worker suite.

public sealed class RedisClusterManagementConformanceTests(RedisClusterProviderFactory factory) : ManagementConformanceTests<RedisClusterProviderFactory>(factory);
