using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Time.Testing;

namespace Conveyor.Sqlite.Tests;

/// <summary>Expired rows of the management tables leave the file, on the workers' heartbeats.</summary>
public sealed class SqliteManagementSweepTests : IDisposable
{
    private readonly string _directory = TempDatabase.NewDirectory();

    public void Dispose() => TempDatabase.Delete(_directory);

    [Fact]
    public async Task Heartbeat_AfterRetention_SweepsExpiredProgressAndUniqueKeysButKeepsCurrentOnes()
    {
        var path = Path.Combine(_directory, "conveyor.db");
        var clock = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var store = new SqliteManagementStore(new SqliteConveyorOptions { DatabasePath = path, ResultTtl = TimeSpan.FromMinutes(5) }, ownsBroker: false, clock);
        await using var disposal = store;
        var worker = new WorkerInfo { Name = "sweeper", Queues = ["q"], Concurrency = 1 };
        await store.HeartbeatAsync(worker, TimeSpan.FromSeconds(6)); // the first heartbeat sweeps, then once a minute
        await store.SetProgressAsync("task_old", new TaskProgress(50, "half", clock.GetUtcNow()));
        Assert.Null(await store.ClaimUniqueAsync("key-old", "task_old", TimeSpan.FromMinutes(1)));

        clock.Advance(TimeSpan.FromMinutes(6));
        await store.SetProgressAsync("task_new", new TaskProgress(10, "started", clock.GetUtcNow()));
        Assert.Equal(2, Count(path, "progress"));
        Assert.Equal(1, Count(path, "unique_keys"));
        await store.HeartbeatAsync(worker, TimeSpan.FromSeconds(6));

        Assert.Equal(1, Count(path, "progress"));
        Assert.Equal(0, Count(path, "unique_keys"));
        Assert.NotNull(await store.GetProgressAsync("task_new"));
    }

    private static long Count(string path, string table)
    {
        using var connection = new SqliteConnection($"Data Source={path};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = $"SELECT COUNT(*) FROM {table}";
        return (long)command.ExecuteScalar()!;
    }
}
