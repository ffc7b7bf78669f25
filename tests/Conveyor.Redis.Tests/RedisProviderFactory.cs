using Conveyor.Conformance;
using Conveyor.Redis.Internal;
using StackExchange.Redis;

namespace Conveyor.Redis.Tests;

/// <summary>
/// The Redis provider against the server in <c>CONVEYOR_TEST_REDIS</c>: one multiplexer per test class (as one per
/// process in an application), a key prefix of its own so that classes running in parallel never share a key (not
/// even machinery's global <c>delayed_tasks</c>), and short heartbeat intervals so that the redelivery test really
/// waits for a dead consumer's heartbeat to expire.
/// </summary>
public class RedisProviderFactory : IConveyorProviderFactory
{
    private readonly Lazy<Task<ConnectionMultiplexer>> _multiplexer;

    public RedisProviderFactory()
        : this("conveyor-test:" + Guid.NewGuid().ToString("N")[..8] + ":")
    {
    }

    protected RedisProviderFactory(string keyPrefix)
    {
        Options = new RedisConveyorOptions
        {
            KeyPrefix = keyPrefix,
            VisibilityTimeout = TimeSpan.FromSeconds(1),
            HeartbeatInterval = TimeSpan.FromMilliseconds(250),
            ResultTtl = TimeSpan.FromMinutes(10),
        };
        _multiplexer = new(ConnectAsync);
    }

    public RedisConveyorOptions Options { get; }

    public virtual string Name => "redis";

    public TimeSpan RedeliveryTimeout => Options.VisibilityTimeout + Options.EffectiveHeartbeatInterval;

    public Task<ConnectionMultiplexer> MultiplexerAsync() => _multiplexer.Value;

    /// <summary>Opens the class's multiplexer (once).</summary>
    protected virtual Task<ConnectionMultiplexer> ConnectAsync() => RedisTestServer.ConnectAsync();

    public virtual async ValueTask<IBroker> CreateBrokerAsync(CancellationToken cancellationToken = default) =>
        new RedisBroker(await MultiplexerAsync(), Options);

    public async ValueTask<IResultBackend> CreateBackendAsync(CancellationToken cancellationToken = default) =>
        new RedisResultBackend(await MultiplexerAsync(), Options);

    public async ValueTask<IResultBackend?> CreateBackendAsync(TimeProvider clock, CancellationToken cancellationToken = default) =>
        new RedisResultBackend(await MultiplexerAsync(), Options, clock);

    public virtual ValueTask SimulateCrashAsync(IMessageConsumer consumer) => ((RedisMessageConsumer)consumer).SimulateCrashAsync();

    public async ValueTask<IManagementStore?> CreateManagementStoreAsync(IBroker broker, IResultBackend backend) =>
        new RedisManagementStore(await MultiplexerAsync(), Options);

    public virtual async ValueTask DisposeAsync()
    {
        if (_multiplexer.IsValueCreated && _multiplexer.Value.IsCompletedSuccessfully)
        {
            var multiplexer = _multiplexer.Value.Result;
            await DeleteKeysAsync(multiplexer, Options.KeyPrefix);
            await multiplexer.DisposeAsync();
        }

        GC.SuppressFinalize(this);
    }

    /// <summary>Deletes every key under a test prefix (SCAN, never KEYS).</summary>
    internal static async Task DeleteKeysAsync(ConnectionMultiplexer multiplexer, string prefix)
    {
        if (prefix.Length == 0)
        {
            return;
        }

        // Every master: on a cluster each holds its own slots' keys. One DEL per key there, as keys of one batch
        // may be in different slots.
        var db = multiplexer.GetDatabase();
        var cluster = multiplexer.GetServers().Any(server => server.ServerType == ServerType.Cluster);
        foreach (var server in multiplexer.GetServers().Where(server => !server.IsReplica))
        {
            var batch = new List<RedisKey>();
            await foreach (var key in server.KeysAsync(pattern: prefix + "*", pageSize: 1000))
            {
                batch.Add(key);
                if (batch.Count == 1000)
                {
                    await DeleteAsync(db, batch, cluster);
                    batch.Clear();
                }
            }

            if (batch.Count > 0)
            {
                await DeleteAsync(db, batch, cluster);
            }
        }
    }

    private static async Task DeleteAsync(IDatabase db, List<RedisKey> keys, bool cluster)
    {
        if (cluster)
        {
            await Task.WhenAll(keys.Select(key => db.KeyDeleteAsync(key)));
        }
        else
        {
            await db.KeyDeleteAsync([.. keys]);
        }
    }
}

public sealed class RedisBrokerConformanceTests(RedisProviderFactory factory) : BrokerConformanceTests<RedisProviderFactory>(factory);

public sealed class RedisResultBackendConformanceTests(RedisProviderFactory factory) : ResultBackendConformanceTests<RedisProviderFactory>(factory);

public sealed class RedisChordProtocolConformanceTests(RedisProviderFactory factory) : ChordProtocolConformanceTests<RedisProviderFactory>(factory);

/// <summary>machinery's own layout (no key prefix): the keys and the mutex are exactly Go machinery's.</summary>
public sealed class MachineryLayoutChordProtocolConformanceTests(MachineryLayoutFactory factory) : ChordProtocolConformanceTests<MachineryLayoutFactory>(factory);

public sealed class RedisManagementConformanceTests(RedisProviderFactory factory) : ManagementConformanceTests<RedisProviderFactory>(factory);

public sealed class RedisWorkerConformanceTests(RedisProviderFactory factory) : WorkerConformanceTests<RedisProviderFactory>(factory);

public sealed class RedisSchedulerConformanceTests(RedisProviderFactory factory) : SchedulerConformanceTests<RedisProviderFactory>(factory)
{
    protected override async ValueTask<IDistributedLock> CreateLockAsync() => new RedisDistributedLock(await Factory.MultiplexerAsync(), Factory.Options);
}

/// <summary>
/// The same suites over TLS (<c>rediss://</c>, the certificate checked against the test CA through <c>?ca=</c>) as an
/// ACL user that may touch only keys and channels under <c>conveyor-tls:</c>: every key and channel Conveyor uses must
/// carry the key prefix, or Redis answers NOPERM.
/// </summary>
public sealed class RedisTlsProviderFactory() : RedisProviderFactory(RedisTestServer.TlsKeyPrefix + Guid.NewGuid().ToString("N")[..8] + ":")
{
    public override string Name => "redis over TLS, ACL user";

    protected override async Task<ConnectionMultiplexer> ConnectAsync()
    {
        var options = RedisUrl.Parse(RedisTestServer.TlsUrl);
        options.AbortOnConnectFail = true;
        options.ConnectTimeout = 5000;
        try
        {
            return await ConnectionMultiplexer.ConnectAsync(options);
        }
        catch (RedisConnectionException ex)
        {
            throw new InvalidOperationException(
                $"{RedisTestServer.TlsVariable} is set, but no Redis answers there over TLS as its user ({ex.Message}). Run the tests through `bash scripts/test.sh`.",
                ex);
        }
    }
}

public sealed class RedisTlsBrokerConformanceTests(RedisTlsProviderFactory factory) : BrokerConformanceTests<RedisTlsProviderFactory>(factory);

public sealed class RedisTlsResultBackendConformanceTests(RedisTlsProviderFactory factory) : ResultBackendConformanceTests<RedisTlsProviderFactory>(factory);

public sealed class RedisTlsWorkerConformanceTests(RedisTlsProviderFactory factory) : WorkerConformanceTests<RedisTlsProviderFactory>(factory);

public sealed class RedisTlsSchedulerConformanceTests(RedisTlsProviderFactory factory) : SchedulerConformanceTests<RedisTlsProviderFactory>(factory)
{
    protected override async ValueTask<IDistributedLock> CreateLockAsync() => new RedisDistributedLock(await Factory.MultiplexerAsync(), Factory.Options);
}
