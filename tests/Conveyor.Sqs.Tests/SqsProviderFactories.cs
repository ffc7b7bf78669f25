using System.Text;
using Conveyor.Conformance;
using Conveyor.DynamoDb;
using Conveyor.Redis;
using StackExchange.Redis;

namespace Conveyor.Sqs.Tests;

/// <summary>
/// The SQS broker on the emulator in <c>CONVEYOR_TEST_SQS</c> (fauxqs), with a short visibility timeout so that a
/// "crashed" consumer's messages come back quickly (a live consumer keeps extending it). Every broker instance has
/// its own SQS client, as a process would; queues are named after tests, so tests never share one.
/// </summary>
public abstract class SqsProviderFactory : IConveyorProviderFactory
{
    public static readonly TimeSpan VisibilityTimeout = TimeSpan.FromSeconds(2);

    public abstract string Name { get; }

    public TimeSpan RedeliveryTimeout => VisibilityTimeout;

    public static SqsBrokerOptions BrokerOptions() => new()
    {
        ServiceUrl = AwsTestServers.SqsEndpoint,
        Region = "us-east-1",
        Credentials = AwsTestServers.Credentials,
        VisibilityTimeout = VisibilityTimeout,
        WaitTime = TimeSpan.FromSeconds(2),
    };

    private readonly Lazy<Task> _warm;

    protected SqsProviderFactory() => _warm = new Lazy<Task>(WarmUpAsync);

    public async ValueTask<IBroker> CreateBrokerAsync(CancellationToken cancellationToken = default)
    {
        await _warm.Value;
        return new SqsBroker(BrokerOptions());
    }

    public async ValueTask<IResultBackend> CreateBackendAsync(CancellationToken cancellationToken = default)
    {
        await _warm.Value;
        return await OpenBackendAsync();
    }

    public async ValueTask<IResultBackend?> CreateBackendAsync(TimeProvider clock, CancellationToken cancellationToken = default)
    {
        await _warm.Value;
        return await OpenBackendAsync(clock);
    }

    protected abstract ValueTask<IResultBackend> OpenBackendAsync(TimeProvider? clock = null);

    // The first calls of a class pay for creating tables and for the SDK's first use of each operation (hundreds of
    // milliseconds on a loaded machine): done once here, so that the suites' timings (an ETA 1.2 s ahead) measure
    // the providers, not the cold start.
    private async Task WarmUpAsync()
    {
        await using (var backend = await OpenBackendAsync())
        {
            var id = "warmup_" + Guid.NewGuid().ToString("N");
            await backend.SetStateAsync(new TaskStateRecord { TaskId = id, TaskName = "warmup", State = TaskState.Pending, CreatedAt = DateTimeOffset.UtcNow });
            await backend.GetStateAsync(id);
            await backend.DeleteStateAsync(id);
        }

        await using var broker = new SqsBroker(BrokerOptions());
        await broker.PublishAsync(new OutgoingMessage("warmup", "conveyor-test-warmup", "{}"u8.ToArray()));
        await broker.PurgeAsync("conveyor-test-warmup");
    }

    public ValueTask SimulateCrashAsync(IMessageConsumer consumer) => SqsBroker.SimulateCrashAsync(consumer);

    public abstract ValueTask DisposeAsync();
}

/// <summary>SQS broker + Redis result backend (machinery's common AWS setup with ElastiCache).</summary>
public sealed class SqsRedisProviderFactory : SqsProviderFactory
{
    private readonly Lazy<Task<ConnectionMultiplexer>> _multiplexer = new(() => RedisTestServer.ConnectAsync());

    public RedisConveyorOptions RedisOptions { get; } = new()
    {
        KeyPrefix = "conveyor-sqs-test:" + Guid.NewGuid().ToString("N")[..8] + ":",
        ResultTtl = TimeSpan.FromMinutes(10),
    };

    public override string Name => "sqs broker + redis backend";

    protected override async ValueTask<IResultBackend> OpenBackendAsync(TimeProvider? clock = null) =>
        new RedisResultBackend(await _multiplexer.Value, RedisOptions, clock);

    public override async ValueTask DisposeAsync()
    {
        if (_multiplexer.IsValueCreated && _multiplexer.Value.IsCompletedSuccessfully)
        {
            var multiplexer = _multiplexer.Value.Result;
            var keys = new List<RedisKey>();
            await foreach (var key in multiplexer.GetServers()[0].KeysAsync(pattern: RedisOptions.KeyPrefix + "*", pageSize: 1000))
            {
                keys.Add(key);
            }

            if (keys.Count > 0)
            {
                await multiplexer.GetDatabase().KeyDeleteAsync([.. keys]);
            }

            await multiplexer.DisposeAsync();
        }
    }
}

/// <summary>SQS broker + DynamoDB result backend (machinery's all-AWS setup), on tables of its own.</summary>
public sealed class SqsDynamoDbProviderFactory : SqsProviderFactory
{
    private readonly string _prefix = "conveyor_sqs_test_" + Guid.NewGuid().ToString("N")[..10];

    public override string Name => "sqs broker + dynamodb backend";

    public DynamoDbBackendOptions BackendOptions() => new()
    {
        ServiceUrl = AwsTestServers.DynamoDbEndpoint,
        Region = "us-east-1",
        Credentials = AwsTestServers.Credentials,
        StatesTable = _prefix + "_task_states",
        GroupsTable = _prefix + "_group_metas",
        ResultTtl = TimeSpan.FromMinutes(10),
    };

    protected override ValueTask<IResultBackend> OpenBackendAsync(TimeProvider? clock = null) =>
        ValueTask.FromResult<IResultBackend>(new DynamoDbResultBackend(BackendOptions(), clock));

    public override async ValueTask DisposeAsync()
    {
        var options = BackendOptions();
        using var client = DynamoDbResultBackend.CreateClient(options);
        foreach (var table in new[] { options.StatesTable, options.GroupsTable })
        {
            try
            {
                await client.DeleteTableAsync(table);
            }
            catch (Amazon.DynamoDBv2.Model.ResourceNotFoundException)
            {
            }
        }
    }
}

/// <summary>
/// SQS has no message priorities, so the broker does not claim them; instead of the priority order, this checks
/// that messages of every priority are all delivered, each once.
/// </summary>
public static class SqsPriority
{
    public static async Task AllPrioritiesAreDeliveredOnceAsync(IConveyorProviderFactory factory)
    {
        await using var t = await ConveyorTestContext.CreateAsync(factory, "Priority");
        Assert.False(t.Broker.Capabilities.HasFlag(BrokerCapabilities.Priorities), "SQS has no priorities; the broker must not claim them");
        string[] sent = ["low1", "high1", "low2", "high2"];
        foreach (var (text, priority) in sent.Zip(new byte[] { 1, 9, 1, 9 }))
        {
            await t.Broker.PublishAsync(new OutgoingMessage("task_" + text, t.Queue, Encoding.UTF8.GetBytes(text)) { Priority = priority });
        }

        await using var consumer = await t.Broker.ConsumeAsync(t.Queue, new ConsumeOptions { Prefetch = 1 });
        var received = new List<string>();
        for (var i = 0; i < sent.Length; i++)
        {
            var delivery = await consumer.Deliveries.ReadAsync().AsTask().WaitAsync(ConveyorTestContext.Timeout);
            received.Add(Encoding.UTF8.GetString(delivery.Body.Span));
            await delivery.AckAsync();
        }

        Assert.Equal(sent.Order(), received.Order());
    }
}

public sealed class SqsRedisBrokerConformanceTests(SqsRedisProviderFactory factory) : BrokerConformanceTests<SqsRedisProviderFactory>(factory)
{
    [Fact]
    public override Task Priority_HigherPriorityIsDeliveredFirst_FifoWithinAPriority() => SqsPriority.AllPrioritiesAreDeliveredOnceAsync(Factory);
}

public sealed class SqsRedisWorkerConformanceTests(SqsRedisProviderFactory factory) : WorkerConformanceTests<SqsRedisProviderFactory>(factory);

public sealed class SqsDynamoDbBrokerConformanceTests(SqsDynamoDbProviderFactory factory) : BrokerConformanceTests<SqsDynamoDbProviderFactory>(factory)
{
    [Fact]
    public override Task Priority_HigherPriorityIsDeliveredFirst_FifoWithinAPriority() => SqsPriority.AllPrioritiesAreDeliveredOnceAsync(Factory);
}

public sealed class SqsDynamoDbWorkerConformanceTests(SqsDynamoDbProviderFactory factory) : WorkerConformanceTests<SqsDynamoDbProviderFactory>(factory);
