using Conveyor.Redis.Internal;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace Conveyor.Redis;

/// <summary>
/// Leased locks on Redis (for the periodic scheduler): <c>SET conveyor:lock:{name} owner NX PX lease</c>, and on
/// success the next value of the counter <c>conveyor:lock:{name}:fence</c> as the fencing token, both in one script.
/// Renewal and release check the owner in a script, so a holder whose lease expired cannot extend or delete its
/// successor's lock. Fences (the scheduler's tick claims) are one key each, <c>conveyor:fence:{name}</c>, advanced by
/// a script.
/// </summary>
public sealed class RedisDistributedLock : IDistributedLock
{
    private readonly IConnectionMultiplexer _multiplexer;
    private readonly RedisKeys _keys;

    /// <summary>Creates the lock store. It does no I/O until used.</summary>
    /// <param name="multiplexer">The process's connection to Redis; never disposed here.</param>
    /// <param name="options">Settings (the key prefix).</param>
    /// <param name="timeProvider">Unused: leases run on the Redis server's clock. Accepted for symmetry with the other components.</param>
    /// <param name="loggerFactory">Unused; accepted for symmetry with the other components.</param>
    public RedisDistributedLock(IConnectionMultiplexer multiplexer, RedisConveyorOptions options, TimeProvider? timeProvider = null, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(multiplexer);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _ = timeProvider;
        _ = loggerFactory;
        _multiplexer = multiplexer;
        // A lock's keys are the same on a cluster (each lock's in its own slot): no need to ask the connection.
        _keys = new RedisKeys(options.KeyPrefix, options.DelayedTasksKey);
    }

    /// <inheritdoc/>
    public async ValueTask<ILockLease?> TryAcquireAsync(string name, TimeSpan lease, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(lease, TimeSpan.Zero);
        cancellationToken.ThrowIfCancellationRequested();
        var owner = Guid.NewGuid().ToString("N");
        var key = _keys.Lock(name);
        var token = (long)await _multiplexer.GetDatabase().ScriptEvaluateAsync(
            RedisScripts.LockAcquire,
            [key, _keys.LockFence(name)],
            [owner, Milliseconds(lease)]).ConfigureAwait(false);
        return token > 0 ? new Lease(this, name, key, owner, token) : null;
    }

    /// <inheritdoc/>
    /// <remarks>One Lua script on the key <c>conveyor:fence:{name}</c>.</remarks>
    public async ValueTask<bool> TryAdvanceFenceAsync(string name, long token, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        cancellationToken.ThrowIfCancellationRequested();
        var advanced = (long)await _multiplexer.GetDatabase().ScriptEvaluateAsync(
            RedisScripts.FenceAdvance,
            [_keys.Fence(name)],
            [token]).ConfigureAwait(false);
        return advanced == 1;
    }

    /// <inheritdoc/>
    public async ValueTask<long?> ReadFenceAsync(string name, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        cancellationToken.ThrowIfCancellationRequested();
        var value = await _multiplexer.GetDatabase().StringGetAsync(_keys.Fence(name)).ConfigureAwait(false);
        return value.IsNull ? null : (long)value;
    }

    private static long Milliseconds(TimeSpan lease) => Math.Max(1, (long)Math.Ceiling(lease.TotalMilliseconds));

    private sealed class Lease(RedisDistributedLock store, string name, RedisKey key, string owner, long fencingToken) : ILockLease
    {
        public string Name { get; } = name;

        public long FencingToken { get; } = fencingToken;

        public async ValueTask<bool> RenewAsync(TimeSpan lease, CancellationToken cancellationToken = default)
        {
            ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(lease, TimeSpan.Zero);
            var renewed = (long)await store._multiplexer.GetDatabase().ScriptEvaluateAsync(
                RedisScripts.LockRenew,
                [key],
                [owner, Milliseconds(lease)]).ConfigureAwait(false);
            return renewed == 1;
        }

        public async ValueTask DisposeAsync()
        {
            try
            {
                await store._multiplexer.GetDatabase().ScriptEvaluateAsync(RedisScripts.LockRelease, [key], [owner]).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is RedisException or TimeoutException or ObjectDisposedException)
            {
                // The lease expires on its own.
            }
        }
    }
}
