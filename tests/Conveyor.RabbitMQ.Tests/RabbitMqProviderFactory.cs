using Conveyor.Conformance;
using Conveyor.Redis;
using Conveyor.Sqlite;
using StackExchange.Redis;

namespace Conveyor.RabbitMQ.Tests;

/// <summary>
/// The RabbitMQ broker on the server in <c>CONVEYOR_TEST_AMQP</c>, with an exchange (and so a dead-letter queue) of its
/// own per test class, and the SQLite result backend on a temporary file. Every broker instance opens its own
/// connections, as a process would. "Crashing" a consumer closes its channel without settling anything: RabbitMQ
/// requeues at once, so there is no redelivery timeout.
/// </summary>
public class RabbitMqProviderFactory : IConveyorProviderFactory
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "conveyor-rabbitmq-tests", Guid.NewGuid().ToString("N"));

    public RabbitMqProviderFactory()
    {
        Exchange = "conveyor_test_" + Guid.NewGuid().ToString("N")[..12];
        Directory.CreateDirectory(_directory);
        SqliteOptions = new SqliteConveyorOptions { DatabasePath = Path.Combine(_directory, "conveyor.db") };
    }

    public string Exchange { get; }

    public SqliteConveyorOptions SqliteOptions { get; }

    public virtual string Name => "rabbitmq broker + sqlite backend";

    public TimeSpan RedeliveryTimeout => TimeSpan.Zero;

    public RabbitMqBrokerOptions BrokerOptions() => TestServers.BrokerOptions(Exchange, Tls, Quorum);

    /// <summary>Whether the broker connects over TLS (<c>amqps://</c>) as the user limited to one vhost.</summary>
    protected virtual bool Tls => false;

    /// <summary>Whether work queues are quorum queues.</summary>
    protected virtual bool Quorum => false;

    public async ValueTask<IBroker> CreateBrokerAsync(CancellationToken cancellationToken = default)
    {
        var broker = new RabbitMqBroker(BrokerOptions());
        try
        {
            await broker.ConnectAsync(cancellationToken);
        }
        catch (Exception ex) when (ex is global::RabbitMQ.Client.Exceptions.BrokerUnreachableException)
        {
            await broker.DisposeAsync();
            await TestServers.EnsureAmqpAsync(); // throws the message naming the variable
            throw;
        }

        return broker;
    }

    public virtual ValueTask<IResultBackend> CreateBackendAsync(CancellationToken cancellationToken = default) =>
        ValueTask.FromResult<IResultBackend>(new SqliteResultBackend(SqliteOptions));

    public virtual ValueTask<IResultBackend?> CreateBackendAsync(TimeProvider clock, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult<IResultBackend?>(new SqliteResultBackend(SqliteOptions, clock));

    public ValueTask SimulateCrashAsync(IMessageConsumer consumer) => RabbitMqBroker.SimulateCrashAsync(consumer);

    // AMQP lists nothing: the control state lives in the result backend's engine, as Conveyor.Hosting wires it.
    public virtual ValueTask<IManagementStore?> CreateManagementStoreAsync(IBroker broker, IResultBackend backend) =>
        ValueTask.FromResult<IManagementStore?>(new SqliteManagementStore(SqliteOptions, ownsBroker: false));

    public virtual async ValueTask DisposeAsync()
    {
        // Remove what the tests left on the server: the exchange and the dead-letter queue (work and delay queues
        // are named after tests; they are purged by each test and are cheap when empty).
        try
        {
            await using var connection = Tls ? await TestServers.ConnectRawTlsAsync() : await TestServers.ConnectRawAsync();
            await using var channel = await connection.CreateChannelAsync();
            await channel.QueueDeleteAsync(Exchange + ".dead_letters", ifUnused: false, ifEmpty: false);
            await channel.ExchangeDeleteAsync(Exchange, ifUnused: false);
        }
        catch (Exception)
        {
            // best effort
        }

        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }

        GC.SuppressFinalize(this);
    }
}

/// <summary>The RabbitMQ broker with the Redis result backend (the seed's own example: amqp:// broker, redis:// backend).</summary>
public class RabbitMqRedisProviderFactory : RabbitMqProviderFactory
{
    private readonly Lazy<Task<ConnectionMultiplexer>> _multiplexer = new(() => RedisTestServer.ConnectAsync());

    public RedisConveyorOptions RedisOptions { get; } = new()
    {
        KeyPrefix = "conveyor-amqp-test:" + Guid.NewGuid().ToString("N")[..8] + ":",
        ResultTtl = TimeSpan.FromMinutes(10),
    };

    public override string Name => "rabbitmq broker + redis backend";

    public Task<ConnectionMultiplexer> MultiplexerAsync() => _multiplexer.Value;

    public override async ValueTask<IResultBackend> CreateBackendAsync(CancellationToken cancellationToken = default) =>
        new RedisResultBackend(await MultiplexerAsync(), RedisOptions);

    public override async ValueTask<IManagementStore?> CreateManagementStoreAsync(IBroker broker, IResultBackend backend) =>
        new RedisManagementStore(await MultiplexerAsync(), RedisOptions, ownsBroker: false);

    public override async ValueTask<IResultBackend?> CreateBackendAsync(TimeProvider clock, CancellationToken cancellationToken = default) =>
        new RedisResultBackend(await MultiplexerAsync(), RedisOptions, clock);

    public override async ValueTask DisposeAsync()
    {
        if (_multiplexer.IsValueCreated && _multiplexer.Value.IsCompletedSuccessfully)
        {
            var multiplexer = _multiplexer.Value.Result;
            var server = multiplexer.GetServers()[0];
            var db = multiplexer.GetDatabase();
            var keys = new List<RedisKey>();
            await foreach (var key in server.KeysAsync(pattern: RedisOptions.KeyPrefix + "*", pageSize: 1000))
            {
                keys.Add(key);
            }

            if (keys.Count > 0)
            {
                await db.KeyDeleteAsync([.. keys]);
            }

            await multiplexer.DisposeAsync();
        }

        await base.DisposeAsync();
        GC.SuppressFinalize(this);
    }
}

/// <summary>
/// Work queues as quorum queues (replicated, with a delivery count; no priorities): the same suites must pass.
/// </summary>
public sealed class RabbitMqQuorumProviderFactory : RabbitMqProviderFactory
{
    public override string Name => "rabbitmq quorum queues + sqlite backend";

    protected override bool Quorum => true;
}

/// <summary>
/// The same suites over TLS (<c>amqps://</c>, the certificate checked against the test CA through <c>?ca=</c>) as a
/// user allowed on one vhost only.
/// </summary>
public sealed class RabbitMqTlsProviderFactory : RabbitMqProviderFactory
{
    public override string Name => "rabbitmq over TLS, one-vhost user + sqlite backend";

    protected override bool Tls => true;
}

public sealed class RabbitMqQuorumBrokerConformanceTests(RabbitMqQuorumProviderFactory factory) : BrokerConformanceTests<RabbitMqQuorumProviderFactory>(factory)
{
    // Quorum queues have no x-max-priority (RabbitMQ 3.10; 3.12 adds two levels only): the broker does not claim
    // priorities, and messages published with one are all delivered, once each, in publish order.
    [Fact]
    public override async Task Priority_HigherPriorityIsDeliveredFirst_FifoWithinAPriority()
    {
        await using var t = await ConveyorTestContext.CreateAsync(Factory);
        Assert.False(t.Broker.Capabilities.HasFlag(BrokerCapabilities.Priorities));
        string[] published = ["low1", "high1", "low2", "high2"];
        foreach (var (text, priority) in published.Select(text => (text, (byte)(text.StartsWith("high", StringComparison.Ordinal) ? 9 : 1))))
        {
            await t.Broker.PublishAsync(new OutgoingMessage("task_" + text, t.Queue, System.Text.Encoding.UTF8.GetBytes(text)) { Priority = priority });
        }

        await using var consumer = await t.Broker.ConsumeAsync(t.Queue, new ConsumeOptions { Prefetch = 1 });
        var order = new List<string>();
        for (var i = 0; i < published.Length; i++)
        {
            var delivery = await consumer.Deliveries.ReadAsync().AsTask().WaitAsync(ConveyorTestContext.Timeout);
            order.Add(System.Text.Encoding.UTF8.GetString(delivery.Body.Span));
            await delivery.AckAsync();
        }

        Assert.Equal(published, order);
    }
}

public sealed class RabbitMqQuorumWorkerConformanceTests(RabbitMqQuorumProviderFactory factory) : WorkerConformanceTests<RabbitMqQuorumProviderFactory>(factory);

public sealed class RabbitMqTlsBrokerConformanceTests(RabbitMqTlsProviderFactory factory) : BrokerConformanceTests<RabbitMqTlsProviderFactory>(factory);

public sealed class RabbitMqTlsWorkerConformanceTests(RabbitMqTlsProviderFactory factory) : WorkerConformanceTests<RabbitMqTlsProviderFactory>(factory);

public sealed class RabbitMqBrokerConformanceTests(RabbitMqProviderFactory factory) : BrokerConformanceTests<RabbitMqProviderFactory>(factory);

public sealed class RabbitMqWorkerConformanceTests(RabbitMqProviderFactory factory) : WorkerConformanceTests<RabbitMqProviderFactory>(factory);

public sealed class RabbitMqWorkerControlConformanceTests(RabbitMqProviderFactory factory) : WorkerControlConformanceTests<RabbitMqProviderFactory>(factory);

public sealed class RabbitMqRedisWorkerControlConformanceTests(RabbitMqRedisProviderFactory factory) : WorkerControlConformanceTests<RabbitMqRedisProviderFactory>(factory);

public sealed class RabbitMqRedisWorkerConformanceTests(RabbitMqRedisProviderFactory factory) : WorkerConformanceTests<RabbitMqRedisProviderFactory>(factory);

public sealed class RabbitMqRedisResultBackendConformanceTests(RabbitMqRedisProviderFactory factory) : ResultBackendConformanceTests<RabbitMqRedisProviderFactory>(factory);
