using System.Diagnostics;
using Conveyor.Conformance;
using Microsoft.Extensions.Time.Testing;

namespace Conveyor.Redis.Tests;

/// <summary>
/// The lock suite on Redis. Leases run on the server's clock (<c>PX</c>), which no test can set: moving the lease
/// clock takes the time off every lock key's remaining lifetime (<c>PTTL</c>, then <c>PEXPIRE</c> or <c>DEL</c>), which
/// is what the server's clock passing would do to them. A key without an expiry keeps it, so a lock that never
/// expires fails the suite. One test below waits for the server's own expiry, briefly.
/// </summary>
public sealed class RedisDistributedLockConformanceTests(RedisProviderFactory factory) : RedisDistributedLockConformanceTests<RedisProviderFactory>(factory);

/// <summary>The lock suite on a Redis Cluster of three masters (each lock's keys in the lock's own slot).</summary>
public sealed class RedisClusterDistributedLockConformanceTests(RedisClusterProviderFactory factory) : RedisDistributedLockConformanceTests<RedisClusterProviderFactory>(factory);

/// <summary>The lock suite on a Redis, with the lease clock moved on the server (see the derived classes).</summary>
/// <typeparam name="TFactory">The Redis factory.</typeparam>
public abstract class RedisDistributedLockConformanceTests<TFactory>(TFactory factory) : DistributedLockConformanceTests<TFactory>(factory)
    where TFactory : RedisProviderFactory
{
    private const string ElapseScript = """
        local left = redis.call('PTTL', KEYS[1])
        if left > 0 then
            if left <= tonumber(ARGV[1]) then redis.call('DEL', KEYS[1]) else redis.call('PEXPIRE', KEYS[1], left - tonumber(ARGV[1])) end
        end
        return left
        """;

    protected override async ValueTask<IDistributedLock> CreateLockAsync(FakeTimeProvider clock) =>
        new RedisDistributedLock(await Factory.MultiplexerAsync(), Factory.Options, clock);

    // The factory's key prefix is this class's own, and xunit runs a class's tests one at a time: every lock key
    // under it belongs to the running test.
    protected override async ValueTask AdvanceLeaseClockAsync(FakeTimeProvider clock, TimeSpan by)
    {
        ArgumentNullException.ThrowIfNull(clock);
        clock.Advance(by);
        var multiplexer = await Factory.MultiplexerAsync();
        var db = multiplexer.GetDatabase();
        foreach (var server in multiplexer.GetServers().Where(server => !server.IsReplica))
        {
            await foreach (var key in server.KeysAsync(pattern: Factory.Options.KeyPrefix + "conveyor:lock:*", pageSize: 1000))
            {
                await db.ScriptEvaluateAsync(ElapseScript, [key], [(long)by.TotalMilliseconds]);
            }
        }
    }

    [Fact]
    public async Task Lease_OnTheServersClock_ExpiresOnceItsTimeHasPassed()
    {
        var locks = new RedisDistributedLock(await Factory.MultiplexerAsync(), Factory.Options);
        var name = "lock-" + Guid.NewGuid().ToString("N");
        var lease = TimeSpan.FromMilliseconds(200);
        var stopwatch = Stopwatch.StartNew();
        var first = await locks.TryAcquireAsync(name, lease);
        Assert.NotNull(first);

        ILockLease? next = null;
        await ConveyorTestContext.EventuallyAsync(async () => (next = await locks.TryAcquireAsync(name, TimeSpan.FromSeconds(10))) is not null, "the lease to expire on the server");
        Assert.True(stopwatch.Elapsed >= lease, $"taken again after {stopwatch.Elapsed.TotalMilliseconds} ms of a {lease.TotalMilliseconds} ms lease");
        Assert.True(next!.FencingToken > first.FencingToken);
        await next.DisposeAsync();
    }
}
