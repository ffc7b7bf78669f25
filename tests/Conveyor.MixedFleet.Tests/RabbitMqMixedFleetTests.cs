using System.Collections.Concurrent;
using System.Diagnostics;
using Conveyor.RabbitMQ;
using Conveyor.Redis;
using Conveyor.Serialization;
using Microsoft.Extensions.Time.Testing;
using RabbitMQ.Client;
using StackExchange.Redis;

namespace Conveyor.MixedFleet.Tests;

/// <summary>
/// A RabbitMQ broker (<c>CONVEYOR_TEST_AMQP</c>) with an exchange of its own per test class, and the Redis result
/// backend with machinery's layout, shared by Conveyor workers and the machinery peer.
/// </summary>
public sealed class RabbitMqFleetFixture : IAsyncLifetime
{
    public const string AmqpVariable = "CONVEYOR_TEST_AMQP";
    private ConnectionMultiplexer? _redis;
    private IConnection? _admin;

    public string Exchange { get; } = "mixed_" + Guid.NewGuid().ToString("N")[..10];

    public RedisConveyorOptions RedisOptions { get; } = new() { KeyPrefix = string.Empty, ResultTtl = TimeSpan.FromMinutes(10) };

    public IConnectionMultiplexer Redis => _redis ?? throw new InvalidOperationException("not connected");

    public IConnection Admin => _admin ?? throw new InvalidOperationException("not connected");

    public static Uri AmqpUrl =>
        Environment.GetEnvironmentVariable(AmqpVariable) is { Length: > 0 } url
            ? new Uri(url)
            : throw new InvalidOperationException(
                $"{AmqpVariable} is not set: the mixed-fleet RabbitMQ tests need a RabbitMQ server. Run them through `bash scripts/test.sh` (it installs and starts one), " +
                $"or start one yourself and set {AmqpVariable}=amqp://guest:guest@127.0.0.1:PORT/.");

    public async Task InitializeAsync()
    {
        _redis = await RedisTestServer.ConnectAsync("conveyor-mixed-fleet-amqp");
        try
        {
            _admin = await new ConnectionFactory { Uri = AmqpUrl }.CreateConnectionAsync();
        }
        catch (global::RabbitMQ.Client.Exceptions.BrokerUnreachableException ex)
        {
            throw new InvalidOperationException($"{AmqpVariable}={AmqpUrl}, but no RabbitMQ answers there. Run the tests through `bash scripts/test.sh`.", ex);
        }
    }

    public async Task DisposeAsync()
    {
        if (_admin is not null)
        {
            await using (var channel = await _admin.CreateChannelAsync())
            {
                await channel.ExchangeDeleteAsync(Exchange);
            }

            await _admin.DisposeAsync();
        }

        if (_redis is not null)
        {
            await _redis.DisposeAsync();
        }
    }

    public RabbitMqBrokerOptions BrokerOptions()
    {
        // No priorities and classic queues: the queue arguments machinery declares, so either side may declare first.
        var options = new RabbitMqBrokerOptions { Exchange = Exchange, NetworkRecoveryInterval = TimeSpan.FromMilliseconds(200), ConfirmTimeout = TimeSpan.FromSeconds(10) };
        options.Urls.Add(AmqpUrl);
        return options;
    }

    internal async Task<(Fleet Fleet, MachineryAmqpBroker Machinery)> CreateFleetAsync()
    {
        var broker = new RabbitMqBroker(BrokerOptions());
        await broker.ConnectAsync();
        var machinery = await MachineryAmqpBroker.ConnectAsync(AmqpUrl, Exchange);
        var fleet = Fleet.Create(Redis, RedisOptions, broker, machinery);
        var drained = new ConcurrentDictionary<string, List<Signature>>(StringComparer.Ordinal);
        fleet.ReadQueue = async queue =>
        {
            var seen = drained.GetOrAdd(queue, _ => []);
            await using var channel = await Admin.CreateChannelAsync();
            await channel.QueueDeclareAsync(queue, durable: true, exclusive: false, autoDelete: false, arguments: null);
            await channel.QueueBindAsync(queue, Exchange, queue);
            while (await channel.BasicGetAsync(queue, autoAck: true) is { } message)
            {
                seen.Add(WireFormat.DeserializeSignature(message.Body.Span));
            }

            return [.. seen];
        };
        return (fleet, machinery);
    }

    /// <summary>Messages waiting in a queue (0 when it does not exist).</summary>
    public async Task<uint> CountAsync(string queue)
    {
        await using var channel = await Admin.CreateChannelAsync();
        try
        {
            return (await channel.QueueDeclarePassiveAsync(queue)).MessageCount;
        }
        catch (global::RabbitMQ.Client.Exceptions.OperationInterruptedException)
        {
            return 0;
        }
    }

    public async Task DeleteQueueAsync(string queue)
    {
        await using var channel = await Admin.CreateChannelAsync();
        await channel.QueueDeleteAsync(queue);
    }
}

/// <summary>
/// Go machinery workers (the peer, with machinery's AMQP broker) and Conveyor workers on one RabbitMQ exchange and
/// one Redis backend.
/// </summary>
public sealed class RabbitMqMixedFleetTests(RabbitMqFleetFixture fixture) : IClassFixture<RabbitMqFleetFixture>
{
    public static TheoryData<int, RedisMixedFleetTests.Split> Chords()
    {
        var data = new TheoryData<int, RedisMixedFleetTests.Split>();
        foreach (var size in new[] { 10, 200 })
        {
            data.Add(size, RedisMixedFleetTests.Split.Alternate);
            data.Add(size, RedisMixedFleetTests.Split.LastOnConveyor);
            data.Add(size, RedisMixedFleetTests.Split.LastOnMachinery);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Chords))]
    public async Task Chord_SplitBetweenSides_RunsTheCallbackExactlyOnce(int size, RedisMixedFleetTests.Split split)
    {
        var (fleet, machinery) = await fixture.CreateFleetAsync();
        await using var _ = fleet;
        var members = Enumerable.Range(0, size).Select(i => new Signature("add", TaskArgument.Int64(i), TaskArgument.Int64(7)) { RoutingKey = fleet.QueueOf(i % 2 == 0 ? Side.Conveyor : Side.Machinery) }).ToList();
        var callback = new Signature("sum") { RoutingKey = fleet.CallbackQueue };
        await fleet.Client.SendChordAsync(new Chord(new TaskGroup(members), callback));
        var ids = members.Select(m => m.Id).ToList();
        var conveyorMembers = ids.Where((_, i) => i % 2 == 0).ToList();
        var machineryMembers = ids.Where((_, i) => i % 2 == 1).ToList();

        await RedisMixedFleetTests.RunSidesAsync(fleet, split, conveyorMembers, machineryMembers);
        await fleet.SettleAsync(ids);

        var published = Assert.Single(await fleet.PublishedToAsync(fleet.CallbackQueue));
        Assert.Equal(Enumerable.Range(0, size).Select(i => (long)i + 7), published.Args.Select(a => (long)a.Value!));
        Assert.Empty(machinery.PublishErrors);
        Assert.Empty(fleet.Peer.Errors);
        await DeleteQueuesAsync(fleet);
    }

    [Fact]
    public async Task Retries_BothSidesOnOneQueue_EveryTaskReachesFailure_WithNoPublishError()
    {
        var (fleet, machinery) = await fixture.CreateFleetAsync();
        await using var _ = fleet;

        // With a listener on Conveyor's source the producer adds its own headers (traceparent, conveyor-published)
        // to the message, and every retry adds conveyor-attempt: machinery's worker must be able to republish them.
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == "Conveyor",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllData,
        };
        ActivitySource.AddActivityListener(listener);

        var tasks = Enumerable.Range(0, 10).Select(i => new Signature("fail", TaskArgument.String($"no {i}")) { RoutingKey = fleet.MachineryQueue, RetryCount = 2 }).ToList();
        foreach (var task in tasks)
        {
            await fleet.Client.SendAsync(task);
        }

        var conveyorOnTheSameQueue = new ConveyorWorker(fleet.Client, fleet.Registry, new WorkerOptions { Queue = fleet.MachineryQueue, Concurrency = 2 });
        await conveyorOnTheSameQueue.StartAsync(CancellationToken.None);
        fleet.StartMachinery();
        try
        {
            try
            {
                await fleet.SettleAsync(tasks.Select(t => t.Id));
            }
            catch (TimeoutException ex)
            {
                var states = await fleet.Backend.GetStatesAsync([.. tasks.Select(t => t.Id)]);
                throw new TimeoutException(
                    $"{ex.Message}; states: {string.Join(", ", states.Select(s => s?.State.ToWireName() ?? "none"))}; runs: conveyor {fleet.ConveyorRuns.Count}, machinery {fleet.Peer.Runs.Count}; machinery publish errors: {string.Join("; ", machinery.PublishErrors)}",
                    ex);
            }

            Assert.All(await fleet.Backend.GetStatesAsync([.. tasks.Select(t => t.Id)]), s => Assert.Equal(TaskState.Failure, s!.State));
        }
        finally
        {
            await conveyorOnTheSameQueue.StopAsync(CancellationToken.None);
            conveyorOnTheSameQueue.Dispose();
        }

        Assert.Empty(machinery.PublishErrors);
        Assert.Empty(fleet.Peer.Errors);
        Assert.Equal(30, fleet.Peer.Runs.Count + fleet.ConveyorRuns.Count); // three runs each: nothing lost, nothing run twice
        await DeleteQueuesAsync(fleet);
    }

    [Fact]
    public async Task Retries_AMachineryRetryRunsOnConveyor_AndAConveyorRetryOnMachinery()
    {
        var (fleet, machinery) = await fixture.CreateFleetAsync();
        await using var _ = fleet;
        var task = new Signature("fail", TaskArgument.String("always")) { RoutingKey = fleet.MachineryQueue, RetryCount = 2 };
        await fleet.Client.SendAsync(task);

        fleet.StartMachinery();
        await RedisMixedFleetTests.WaitUntilAsync(() => fleet.Peer.Runs.Count == 1 && fleet.Peer.InFlight == 0);
        await fleet.StopMachineryAsync();

        var conveyorOnTheSameQueue = new ConveyorWorker(fleet.Client, fleet.Registry, new WorkerOptions { Queue = fleet.MachineryQueue, Concurrency = 2 });
        await conveyorOnTheSameQueue.StartAsync(CancellationToken.None);
        await RedisMixedFleetTests.WaitUntilAsync(() => fleet.ConveyorRuns.Count == 1 && conveyorOnTheSameQueue.InFlight == 0);
        await conveyorOnTheSameQueue.StopAsync(CancellationToken.None);
        conveyorOnTheSameQueue.Dispose();

        fleet.StartMachinery();
        var final = await fleet.Client.GetResult(task.Id).WaitAsync(Fleet.Timeout);

        Assert.Equal(TaskState.Failure, final.State);
        Assert.Equal(2, fleet.Peer.Runs.Count);
        Assert.Single(fleet.ConveyorRuns);
        Assert.Empty(machinery.PublishErrors);
        Assert.Empty(fleet.Peer.Errors);
        await DeleteQueuesAsync(fleet);
    }

    [Theory]
    [InlineData(6000)] // machinery's name and arguments: one queue for both sides
    [InlineData(2000)] // below 5 s Conveyor keeps a 10 s expiry, in a queue of its own name
    public async Task DelayQueue_BothSidesDelayingByTheSameTime_BothPublish(int delayMs)
    {
        var (fleet, machinery) = await fixture.CreateFleetAsync();
        await using var _ = fleet;
        var start = DateTimeOffset.UtcNow;
        var clock = new FakeTimeProvider(start);
        await using var conveyorProducer = new RabbitMqBroker(fixture.BrokerOptions(), clock);
        await conveyorProducer.ConnectAsync();
        var client = new ConveyorClient(conveyorProducer, fleet.Backend, new ConveyorClientOptions { DefaultQueue = fleet.MachineryQueue }, clock);
        machinery.Clock = clock;

        // machinery first (it declares delay.<ms>… with x-expires 2 × ms), then Conveyor, then machinery again.
        await machinery.PublishAsync(new Signature("add", TaskArgument.Int64(1), TaskArgument.Int64(1)) { RoutingKey = fleet.MachineryQueue, Eta = start.AddMilliseconds(delayMs) });
        await client.SendAsync(new Signature("add", TaskArgument.Int64(2), TaskArgument.Int64(2)) { RoutingKey = fleet.MachineryQueue, Eta = start.AddMilliseconds(delayMs) });
        await machinery.PublishAsync(new Signature("add", TaskArgument.Int64(3), TaskArgument.Int64(3)) { RoutingKey = fleet.MachineryQueue, Eta = start.AddMilliseconds(delayMs) });

        Assert.Empty(machinery.PublishErrors);
        var machineryQueue = $"delay.{delayMs}.{fixture.Exchange}.{fleet.MachineryQueue}";
        var conveyorQueue = delayMs >= 5000 ? machineryQueue : $"conveyor.delay.{delayMs}.{fixture.Exchange}.{fleet.MachineryQueue}";
        Assert.Equal(delayMs >= 5000 ? 3u : 2u, await fixture.CountAsync(machineryQueue));
        Assert.Equal(delayMs >= 5000 ? 3u : 1u, await fixture.CountAsync(conveyorQueue));
        await fixture.DeleteQueueAsync(machineryQueue);
        await fixture.DeleteQueueAsync(conveyorQueue);
        await DeleteQueuesAsync(fleet);
    }

    [Fact]
    public void HeaderTable_AsMachineryBuildsIt_RefusesNumbersAndObjects_AndConveyorsHeadersPass()
    {
        static byte[] Message(string headers) => System.Text.Encoding.UTF8.GetBytes($$"""{"UUID":"task_1","Name":"add","Headers":{{headers}}}""");

        var number = Assert.Throws<InvalidOperationException>(() => MachineryAmqpBroker.ToTable(Message("""{"conveyor-attempt":2}""")));
        Assert.Equal("table field \"conveyor-attempt\" value json.Number not supported", number.Message);
        Assert.Throws<InvalidOperationException>(() => MachineryAmqpBroker.ToTable(Message("""{"x":{"y":"z"}}""")));

        var signature = new Signature("add", TaskArgument.Int64(1), TaskArgument.Int64(2));
        signature.Headers["conveyor-attempt"] = "2";
        signature.Headers["conveyor-published"] = "1764547200000";
        signature.Headers["traceparent"] = "00-" + new string('a', 32) + "-" + new string('b', 16) + "-01";
        signature.Headers["conveyor-schedule"] = "cleanup";
        var table = MachineryAmqpBroker.ToTable(WireFormat.SerializeSignature(signature));
        Assert.Equal("2", table["conveyor-attempt"]);
        Assert.Equal(4, table.Count);
    }

    private async Task DeleteQueuesAsync(Fleet fleet)
    {
        foreach (var queue in new[] { fleet.ConveyorQueue, fleet.MachineryQueue, fleet.CallbackQueue, fleet.ErrorQueue })
        {
            await fixture.DeleteQueueAsync(queue);
        }
    }
}
