using System.Collections.Concurrent;
using Microsoft.Extensions.Time.Testing;

namespace Conveyor.Conformance;

/// <summary>
/// What every <see cref="IDistributedLock"/> must do, on the real store: leases that one holder has at a time, that
/// renew and release, that expire on the store's clock; fencing tokens that grow with every acquisition, so that a
/// holder whose lease passed to another is refused (by the store's fences, here); and fences that only move forward,
/// with exactly one winner per token among concurrent callers (what the scheduler's exactly-once ticks rest on).
/// Leases run on a fake clock that the test moves (<see cref="AdvanceLeaseClockAsync"/>).
/// </summary>
/// <typeparam name="TFactory">The provider's factory.</typeparam>
public abstract class DistributedLockConformanceTests<TFactory> : IClassFixture<TFactory>, IAsyncLifetime
    where TFactory : class, IConveyorProviderFactory
{
    /// <summary>Long against the real time a test takes, so that the server's own clock (Redis) never matters.</summary>
    private static readonly TimeSpan Lease = TimeSpan.FromSeconds(30);

    /// <summary>Well inside <see cref="Lease"/>, with a margin of 5 s for a loaded machine.</summary>
    private static readonly TimeSpan MostOfTheLease = TimeSpan.FromSeconds(25);

    private readonly List<IDistributedLock> _created = [];

    /// <summary>Creates the suite.</summary>
    /// <param name="factory">The provider's factory (a class fixture).</param>
    protected DistributedLockConformanceTests(TFactory factory) => Factory = factory;

    /// <summary>The provider's factory.</summary>
    protected TFactory Factory { get; }

    /// <summary>The test's clock, which leases run on.</summary>
    protected FakeTimeProvider Clock { get; } = new(new DateTimeOffset(2026, 12, 1, 4, 0, 0, TimeSpan.Zero));

    /// <summary>
    /// Creates a lock store on the provider's engine whose leases run on <paramref name="clock"/>, as another process
    /// would open it: every call in a test must reach the same store (a second instance on the same database file,
    /// server or, for a one-process provider, the same instance).
    /// </summary>
    /// <param name="clock">The test's clock.</param>
    /// <returns>The lock store; disposed by the suite when it is disposable.</returns>
    protected abstract ValueTask<IDistributedLock> CreateLockAsync(FakeTimeProvider clock);

    /// <summary>
    /// Moves the clock that leases run on forward. The default advances <paramref name="clock"/>; a store whose leases
    /// run on its server's clock (Redis) moves that clock instead, for this test's locks.
    /// </summary>
    /// <param name="clock">The test's clock.</param>
    /// <param name="by">How far.</param>
    /// <returns>A task that completes when the time has passed.</returns>
    protected virtual ValueTask AdvanceLeaseClockAsync(FakeTimeProvider clock, TimeSpan by)
    {
        ArgumentNullException.ThrowIfNull(clock);
        clock.Advance(by);
        return ValueTask.CompletedTask;
    }

    private static string NewName(string what) => what + "-" + Guid.NewGuid().ToString("N");

    private async Task<IDistributedLock> StoreAsync()
    {
        var store = await CreateLockAsync(Clock);
        _created.Add(store);
        return store;
    }

    [Fact]
    public async Task TryAcquireAsync_HeldLock_IsRefusedToEveryCaller_UntilReleased_AndLocksAreIndependentByName()
    {
        var processA = await StoreAsync();
        var processB = await StoreAsync();
        var name = NewName("lock");

        var first = await processA.TryAcquireAsync(name, Lease);
        Assert.NotNull(first);
        Assert.Equal(name, first.Name);
        Assert.True(first.FencingToken > 0, $"fencing token {first.FencingToken}");
        Assert.Null(await processB.TryAcquireAsync(name, Lease));
        Assert.Null(await processA.TryAcquireAsync(name, Lease)); // not re-entrant: the holder's own store refuses too
        await using (var other = await processB.TryAcquireAsync(NewName("other"), Lease))
        {
            Assert.NotNull(other);
        }

        await first.DisposeAsync();
        await first.DisposeAsync(); // a second release changes nothing
        Assert.False(await first.RenewAsync(Lease), "a released lease was renewed");

        await using var second = await processB.TryAcquireAsync(name, Lease);
        Assert.NotNull(second);
        Assert.True(second.FencingToken > first.FencingToken, $"token {second.FencingToken} after {first.FencingToken}: tokens must grow after a release");
    }

    [Fact]
    public async Task RenewAsync_BeforeTheLeaseEnds_ExtendsItFromNow_AndItThenExpiresOnTheClock()
    {
        var holder = await StoreAsync();
        var contender = await StoreAsync();
        var name = NewName("lock");
        await using var lease = await holder.TryAcquireAsync(name, Lease);
        Assert.NotNull(lease);

        await AdvanceLeaseClockAsync(Clock, MostOfTheLease);
        Assert.True(await lease.RenewAsync(Lease), "the holder could not renew a lease it still held");
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(async () => await lease.RenewAsync(TimeSpan.Zero));
        await AdvanceLeaseClockAsync(Clock, MostOfTheLease); // past the first lease, inside the renewed one
        Assert.Null(await contender.TryAcquireAsync(name, Lease));
        Assert.True(await lease.RenewAsync(Lease));

        await AdvanceLeaseClockAsync(Clock, Lease + TimeSpan.FromSeconds(1));
        Assert.False(await lease.RenewAsync(Lease), "a lease renewed after it expired");
        await using var next = await contender.TryAcquireAsync(name, Lease);
        Assert.NotNull(next);
        Assert.True(next.FencingToken > lease.FencingToken);
    }

    [Fact]
    public async Task Lease_NotRenewed_ExpiresOnTheClock_AndAnotherCallerTakesItWithAGreaterToken()
    {
        var holder = await StoreAsync();
        var contender = await StoreAsync();
        var name = NewName("lock");
        await using var lease = await holder.TryAcquireAsync(name, Lease);
        Assert.NotNull(lease);

        await AdvanceLeaseClockAsync(Clock, MostOfTheLease);
        Assert.Null(await contender.TryAcquireAsync(name, Lease));

        await AdvanceLeaseClockAsync(Clock, Lease - MostOfTheLease + TimeSpan.FromSeconds(1));
        await using var next = await contender.TryAcquireAsync(name, Lease);
        Assert.NotNull(next);
        Assert.True(next.FencingToken > lease.FencingToken, $"token {next.FencingToken} after {lease.FencingToken}");
        Assert.Null(await holder.TryAcquireAsync(name, Lease));
    }

    [Fact]
    public async Task StaleHolder_AfterAnotherTookOver_ItsTokenIsRefused_AndItCanNeitherRenewNorRelease()
    {
        var processA = await StoreAsync();
        var processB = await StoreAsync();
        var name = NewName("lock");
        var resource = NewName("resource"); // a fence guarding what the holder writes, advanced with its fencing token

        var stale = await processA.TryAcquireAsync(name, Lease);
        Assert.NotNull(stale);
        Assert.True(await processA.TryAdvanceFenceAsync(resource, stale.FencingToken), "the holder's first write was refused");

        // A pauses past its lease (a GC pause, a stopped VM); B takes over and writes.
        await AdvanceLeaseClockAsync(Clock, Lease + TimeSpan.FromSeconds(1));
        await using var current = await processB.TryAcquireAsync(name, Lease);
        Assert.NotNull(current);
        Assert.True(current.FencingToken > stale.FencingToken);
        Assert.True(await processB.TryAdvanceFenceAsync(resource, current.FencingToken), "the new holder's write was refused");

        // A wakes up and carries on with its old token: every write is refused, and it cannot undo B's lock.
        Assert.False(await processA.TryAdvanceFenceAsync(resource, stale.FencingToken), "the stale holder's token was accepted after another took over");
        Assert.False(await stale.RenewAsync(Lease), "the stale holder renewed its successor's lease");
        await stale.DisposeAsync();
        Assert.Null(await processA.TryAcquireAsync(name, Lease));
        Assert.True(await current.RenewAsync(Lease), "the stale holder's release took the lock from its successor");
        Assert.Equal(current.FencingToken, await processA.ReadFenceAsync(resource));
    }

    [Fact]
    public async Task TryAcquireAsync_ManyConcurrentCallers_ExactlyOneGetsTheLock_EachRound()
    {
        var stores = new[] { await StoreAsync(), await StoreAsync(), await StoreAsync() };
        var name = NewName("race");
        long lastToken = 0;
        for (var round = 0; round < 5; round++)
        {
            var leases = await Task.WhenAll(Enumerable.Range(0, 12).Select(i => Task.Run(async () => await stores[i % stores.Length].TryAcquireAsync(name, Lease))));

            var winner = Assert.Single(leases, l => l is not null);
            Assert.True(winner!.FencingToken > lastToken, $"round {round}: token {winner.FencingToken} after {lastToken}");
            lastToken = winner.FencingToken;
            await winner.DisposeAsync();
        }
    }

    [Fact]
    public async Task TryAdvanceFenceAsync_StaleOrEqualToken_IsRefused_AndTheFenceOnlyMovesForward()
    {
        var locks = await StoreAsync();
        var fence = NewName("fence");
        Assert.Null(await locks.ReadFenceAsync(fence));

        var tick = new DateTimeOffset(2026, 11, 27, 4, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds();
        Assert.True(await locks.TryAdvanceFenceAsync(fence, tick));
        Assert.False(await locks.TryAdvanceFenceAsync(fence, tick), "the same token won twice");
        Assert.False(await locks.TryAdvanceFenceAsync(fence, tick - 1000), "an older token won");
        Assert.Equal(tick, await locks.ReadFenceAsync(fence));

        Assert.True(await locks.TryAdvanceFenceAsync(fence, tick + 1));
        Assert.Equal(tick + 1, await locks.ReadFenceAsync(fence));
        Assert.False(await locks.TryAdvanceFenceAsync(fence, tick));
        Assert.Equal(tick + 1, await locks.ReadFenceAsync(fence));

        // Fences are per name, and unrelated to the locks of the same name.
        Assert.True(await locks.TryAdvanceFenceAsync(fence + "-other", tick - 5000));
        Assert.Equal(tick + 1, await locks.ReadFenceAsync(fence));
        await using var lease = await locks.TryAcquireAsync(fence, Lease);
        Assert.NotNull(lease);
        Assert.Equal(tick + 1, await locks.ReadFenceAsync(fence));
    }

    [Fact]
    public async Task TryAdvanceFenceAsync_ManyConcurrentCallers_ExactlyOneWinsEachToken_AndStaleTokensNeverWin()
    {
        var stores = new[] { await StoreAsync(), await StoreAsync(), await StoreAsync() };
        var fence = NewName("fence");
        var winners = new ConcurrentDictionary<long, int>();
        var staleWins = 0;
        const int tokens = 20;
        for (long token = 1; token <= tokens; token++)
        {
            // 24 callers in three stores: 18 with the new token, 6 with the one recorded before (a scheduler that fell
            // behind); in the first round, when none is recorded yet, all 24 have the new one.
            var attempts = Enumerable.Range(0, 24).Select(i => Task.Run(async () =>
            {
                var mine = i % 4 == 3 && token > 1 ? token - 1 : token;
                if (await stores[i % stores.Length].TryAdvanceFenceAsync(fence, mine))
                {
                    if (mine == token)
                    {
                        winners.AddOrUpdate(token, 1, (_, n) => n + 1);
                    }
                    else
                    {
                        Interlocked.Increment(ref staleWins);
                    }
                }
            }));
            await Task.WhenAll(attempts);
            Assert.Equal(token, await stores[(int)(token % stores.Length)].ReadFenceAsync(fence));
        }

        Assert.All(winners, w => Assert.True(w.Value == 1, $"token {w.Key} won {w.Value} times"));
        Assert.Equal(tokens, winners.Count);
        Assert.True(staleWins == 0, $"a token already recorded won {staleWins} times");
    }

    [Fact]
    public async Task Calls_EmptyNameOrNonPositiveLease_ThrowArgumentExceptions()
    {
        var locks = await StoreAsync();
        await Assert.ThrowsAnyAsync<ArgumentException>(async () => await locks.TryAcquireAsync(string.Empty, Lease));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(async () => await locks.TryAcquireAsync(NewName("lock"), TimeSpan.Zero));
        await Assert.ThrowsAnyAsync<ArgumentException>(async () => await locks.TryAdvanceFenceAsync(string.Empty, 1));
        await Assert.ThrowsAnyAsync<ArgumentException>(async () => await locks.ReadFenceAsync(string.Empty));
    }

    /// <inheritdoc/>
    public Task InitializeAsync() => Task.CompletedTask;

    /// <inheritdoc/>
    public async Task DisposeAsync()
    {
        foreach (var store in _created)
        {
            if (store is IAsyncDisposable disposable)
            {
                await disposable.DisposeAsync();
            }
        }
    }
}
