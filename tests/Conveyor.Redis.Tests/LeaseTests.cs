using System.Diagnostics;
using System.Text;
using Conveyor.Conformance;

namespace Conveyor.Redis.Tests;

/// <summary>
/// The consumer heartbeat is the lease of everything the consumer holds: a task that runs for many times the
/// visibility timeout on a live worker is never handed to another, and a dead worker's tasks come back quickly.
/// In real time: the heartbeat keys expire on the server's clock.
/// </summary>
public sealed class LongTaskLeaseTests
{
    [Fact]
    public async Task Heartbeat_TwentySecondTaskWithATwoSecondLease_IsNeverHandedToAnotherConsumer()
    {
        await using var factory = new RedisProviderFactory();
        factory.Options.VisibilityTimeout = TimeSpan.FromSeconds(2);
        factory.Options.HeartbeatInterval = null; // a third: 667 ms
        await using var t = await ConveyorTestContext.CreateAsync(factory);
        await t.Broker.PublishAsync(new OutgoingMessage("task_long", t.Queue, Encoding.UTF8.GetBytes("long")));
        await using var holder = await t.Broker.ConsumeAsync(t.Queue, new ConsumeOptions { Prefetch = 1, ConsumerName = "holder" });
        var delivery = await holder.Deliveries.ReadAsync().AsTask().WaitAsync(ConveyorTestContext.Timeout);
        await using var otherBroker = await factory.CreateBrokerAsync();
        await using var other = await otherBroker.ConsumeAsync(t.Queue, new ConsumeOptions { Prefetch = 1, ConsumerName = "other" });

        // Ten lease lengths; the other consumer looks for dead consumers at each of its heartbeats meanwhile.
        var running = Stopwatch.StartNew();
        while (running.Elapsed < TimeSpan.FromSeconds(20))
        {
            await Task.Delay(250);
            Assert.False(other.Deliveries.TryRead(out _), $"the message went to another consumer after {running.Elapsed.TotalSeconds:0.0} s while its consumer was alive");
        }

        Assert.Equal(1, (await t.Broker.GetQueueStatisticsAsync(t.Queue)).InFlight);
        await delivery.AckAsync();
        Assert.Equal(0, (await t.Broker.GetQueueStatisticsAsync(t.Queue)).InFlight);
    }
}

/// <summary>With the default settings, a dead consumer's messages are with a live one within 10 s.</summary>
public sealed class DefaultRecoveryTests
{
    [Fact]
    public async Task Crash_DefaultSettings_AnotherConsumerGetsTheMessageWithinTenSeconds()
    {
        await using var factory = new RedisProviderFactory();
        var defaults = new RedisConveyorOptions();
        factory.Options.VisibilityTimeout = defaults.VisibilityTimeout;
        factory.Options.HeartbeatInterval = defaults.HeartbeatInterval;
        await using var t = await ConveyorTestContext.CreateAsync(factory);
        await t.Broker.PublishAsync(new OutgoingMessage("task_orphan", t.Queue, Encoding.UTF8.GetBytes("orphan")));
        await using var doomedBroker = await factory.CreateBrokerAsync();
        var doomed = await doomedBroker.ConsumeAsync(t.Queue, new ConsumeOptions { Prefetch = 1, ConsumerName = "doomed" });
        _ = await doomed.Deliveries.ReadAsync().AsTask().WaitAsync(ConveyorTestContext.Timeout);
        await using var heirBroker = await factory.CreateBrokerAsync();
        await using var heir = await heirBroker.ConsumeAsync(t.Queue, new ConsumeOptions { Prefetch = 1, ConsumerName = "heir" });
        await factory.SimulateCrashAsync(doomed);
        var crashed = Stopwatch.StartNew();
        var recovered = await heir.Deliveries.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(15));
        crashed.Stop();

        Assert.True(crashed.Elapsed <= TimeSpan.FromSeconds(10), $"recovered after {crashed.Elapsed.TotalSeconds:0.0} s");
        await recovered.AckAsync();
    }
}
