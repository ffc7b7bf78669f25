using System.Text;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Time.Testing;

namespace Conveyor.Sqlite.Tests;

/// <summary>
/// Leases on a fake clock: a task that runs for minutes on a live consumer keeps its message (the heartbeat extends
/// the lease), and a dead consumer's message is back with another within the default recovery time.
/// </summary>
public sealed class SqliteLeaseTests : IDisposable
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);
    private readonly string _directory = TempDatabase.NewDirectory();

    private string DatabasePath => Path.Combine(_directory, "conveyor.db");

    public void Dispose() => TempDatabase.Delete(_directory);

    [Fact]
    public async Task Heartbeat_TwoMinuteTaskWithAFiveSecondLease_IsNeverHandedToAnotherConsumer()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UnixEpoch.AddYears(56));
        static void FiveSeconds(SqliteConveyorOptions o) => o.VisibilityTimeout = TimeSpan.FromSeconds(5);
        await using var holderBroker = new SqliteBroker(TestOptions.Process(DatabasePath, FiveSeconds), clock);
        await using var otherBroker = new SqliteBroker(TestOptions.Process(DatabasePath, FiveSeconds), clock);
        await holderBroker.PublishAsync(new OutgoingMessage("task_long", "q", Encoding.UTF8.GetBytes("long")));
        await using var holder = await holderBroker.ConsumeAsync("q", new ConsumeOptions { Prefetch = 1 });
        var delivery = await holder.Deliveries.ReadAsync().AsTask().WaitAsync(Wait);
        await using var other = await otherBroker.ConsumeAsync("q", new ConsumeOptions { Prefetch = 1 });

        // Two minutes, a quarter of a second at a time. Before each step the lease must still end after the next one
        // (waiting for a heartbeat that fell due to land), so the clock never jumps past a lease a live heartbeat
        // would have extended; a stopped heartbeat fails here. After each extension, a pause in real time lets the
        // heartbeat loop arm its next delay at the fake time it ran, as it would in real time.
        DateTimeOffset? lastLease = null;
        for (var step = 1; step <= 480; step++)
        {
            clock.Advance(TimeSpan.FromMilliseconds(250));
            var lease = await WaitUntilLeaseEndsAfterAsync(clock.GetUtcNow().AddMilliseconds(250), $"after {step / 4.0:0.00} s");
            Assert.False(other.Deliveries.TryRead(out _), $"the message went to another consumer after {step / 4.0:0.00} s while its consumer was alive");
            if (lease != lastLease)
            {
                lastLease = lease;
                await Task.Delay(20);
            }
        }

        Assert.Equal(1, (await otherBroker.GetQueueStatisticsAsync("q")).InFlight);
        await delivery.AckAsync();
        Assert.Equal(new QueueStatistics("q", 0, 0, 0, 0), await otherBroker.GetQueueStatisticsAsync("q"));
    }

    [Fact]
    public async Task Crash_DefaultSettings_AnotherConsumerGetsTheMessageWithinTenSeconds()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.UnixEpoch.AddYears(56));
        await using var doomedBroker = new SqliteBroker(TestOptions.Process(DatabasePath), clock);
        await using var heirBroker = new SqliteBroker(TestOptions.Process(DatabasePath), clock);
        await doomedBroker.PublishAsync(new OutgoingMessage("task_orphan", "q", Encoding.UTF8.GetBytes("orphan")));
        var doomed = await doomedBroker.ConsumeAsync("q", new ConsumeOptions { Prefetch = 1 });
        _ = await doomed.Deliveries.ReadAsync().AsTask().WaitAsync(Wait);
        await SqliteBroker.SimulateCrashAsync(doomed);
        await using var heir = await heirBroker.ConsumeAsync("q", new ConsumeOptions { Prefetch = 1 });

        var waited = TimeSpan.Zero;
        IBrokerDelivery? recovered = null;
        while (recovered is null && waited < TimeSpan.FromSeconds(10))
        {
            clock.Advance(TimeSpan.FromMilliseconds(500));
            waited += TimeSpan.FromMilliseconds(500);
            recovered = await ReadSoonAsync(heir);
        }

        Assert.True(recovered is not null, "the dead consumer's message was not back within 10 s");
        Assert.Equal(2, recovered.DeliveryCount);
        await recovered.AckAsync();
    }

    private static async Task<IBrokerDelivery?> ReadSoonAsync(IMessageConsumer consumer)
    {
        for (var i = 0; i < 20; i++)
        {
            if (consumer.Deliveries.TryRead(out var delivery))
            {
                return delivery;
            }

            await Task.Delay(10);
        }

        return null;
    }

    private async Task<DateTimeOffset> WaitUntilLeaseEndsAfterAsync(DateTimeOffset after, string when)
    {
        await using var connection = new SqliteConnection($"Data Source={DatabasePath};Mode=ReadOnly;Pooling=False");
        await connection.OpenAsync();
        var deadline = DateTime.UtcNow + Wait;
        while (true)
        {
            await using var command = connection.CreateCommand();
            command.CommandText = "SELECT due_at FROM messages WHERE state = 2";
            var leaseEnd = await command.ExecuteScalarAsync() is long ms ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : (DateTimeOffset?)null;
            Assert.True(leaseEnd is not null, $"{when}: the message is no longer leased");
            if (leaseEnd > after)
            {
                return leaseEnd.Value;
            }

            Assert.True(DateTime.UtcNow < deadline, $"{when}: the lease ends at {leaseEnd:O}, not after {after:O}: no heartbeat extended it");
            await Task.Delay(5);
        }
    }
}
