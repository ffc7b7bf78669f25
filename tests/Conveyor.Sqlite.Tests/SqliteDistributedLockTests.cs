using Microsoft.Extensions.Time.Testing;

namespace Conveyor.Sqlite.Tests;

public sealed class SqliteDistributedLockTests : IDisposable
{
    private readonly string _directory = TempDatabase.NewDirectory();

    private string DatabasePath => Path.Combine(_directory, "conveyor.db");

    public void Dispose() => TempDatabase.Delete(_directory);

    [Fact]
    public async Task Lock_Contention_Expiry_GrowingFencing_AndRenewAfterLoss()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2030, 1, 1, 0, 0, 0, TimeSpan.Zero));
        await using var processA = new SqliteDistributedLock(TestOptions.Process(DatabasePath), clock);
        await using var processB = new SqliteDistributedLock(TestOptions.Process(DatabasePath), clock);

        var first = await processA.TryAcquireAsync("scheduler", TimeSpan.FromSeconds(10));
        Assert.NotNull(first);
        Assert.Equal("scheduler", first.Name);
        Assert.Null(await processB.TryAcquireAsync("scheduler", TimeSpan.FromSeconds(10)));
        Assert.Null(await processA.TryAcquireAsync("scheduler", TimeSpan.FromSeconds(10)));
        Assert.NotNull(await processB.TryAcquireAsync("another-lock", TimeSpan.FromSeconds(10)));

        clock.Advance(TimeSpan.FromSeconds(8));
        Assert.True(await first.RenewAsync(TimeSpan.FromSeconds(10)));
        clock.Advance(TimeSpan.FromSeconds(8)); // 16 s: held thanks to the renewal
        Assert.Null(await processB.TryAcquireAsync("scheduler", TimeSpan.FromSeconds(10)));

        clock.Advance(TimeSpan.FromSeconds(3)); // 19 s: the renewed lease (until 18 s) ran out
        var second = await processB.TryAcquireAsync("scheduler", TimeSpan.FromSeconds(10));
        Assert.NotNull(second);
        Assert.True(second.FencingToken > first.FencingToken);
        Assert.False(await first.RenewAsync(TimeSpan.FromSeconds(10)), "the old holder renewed a lost lease");

        await first.DisposeAsync(); // releasing a lost lease leaves the new holder alone
        Assert.Null(await processA.TryAcquireAsync("scheduler", TimeSpan.FromSeconds(10)));
        Assert.True(await second.RenewAsync(TimeSpan.FromSeconds(10)));

        await second.DisposeAsync();
        Assert.False(await second.RenewAsync(TimeSpan.FromSeconds(10)));
        var third = await processA.TryAcquireAsync("scheduler", TimeSpan.FromSeconds(10));
        Assert.NotNull(third);
        Assert.True(third.FencingToken > second.FencingToken, "the token keeps growing after a release");
    }

    [Fact]
    public async Task Lock_ManyProcessesRacing_ExactlyOneWins()
    {
        var locks = Enumerable.Range(0, 4).Select(_ => new SqliteDistributedLock(TestOptions.Process(DatabasePath))).ToList();
        try
        {
            var leases = await Task.WhenAll(locks.Select(l => Task.Run(async () => await l.TryAcquireAsync("race", TimeSpan.FromSeconds(30)))));
            var winner = Assert.Single(leases, l => l is not null);
            Assert.Equal(1, winner!.FencingToken);
        }
        finally
        {
            foreach (var l in locks)
            {
                await l.DisposeAsync();
            }
        }
    }
}
