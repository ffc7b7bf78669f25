using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using Microsoft.Extensions.Time.Testing;

namespace Conveyor.Sqlite.Tests;

/// <summary>What the SQLite broker guarantees beyond the conformance suite: several processes on one file, leases
/// kept alive by heartbeats, hand-back on dispose, the injected clock, and cross-process wake-ups.</summary>
public sealed class SqliteBrokerTests : IDisposable
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);
    private readonly string _directory = TempDatabase.NewDirectory();

    private string DatabasePath => Path.Combine(_directory, "conveyor.db");

    public void Dispose() => TempDatabase.Delete(_directory);

    private static OutgoingMessage Message(string queue, string text, byte priority = 0, DateTimeOffset? eta = null) =>
        new("task_" + text, queue, Encoding.UTF8.GetBytes(text)) { Priority = priority, Eta = eta };

    private static string Text(IBrokerDelivery delivery) => Encoding.UTF8.GetString(delivery.Body.Span);

    [Fact]
    public async Task TwoProcesses_ConsumingOneQueue_EveryMessageIsDeliveredExactlyOnce()
    {
        const int count = 500;
        await using var producer = new SqliteBroker(TestOptions.Process(DatabasePath));
        await using var first = new SqliteBroker(TestOptions.Process(DatabasePath));
        await using var second = new SqliteBroker(TestOptions.Process(DatabasePath));
        var seen = new ConcurrentDictionary<string, int>();
        var perConsumer = new int[2];

        await using var consumerA = await first.ConsumeAsync("shared", new ConsumeOptions { Prefetch = 16, ConsumerName = "a" });
        await using var consumerB = await second.ConsumeAsync("shared", new ConsumeOptions { Prefetch = 16, ConsumerName = "b" });
        for (var i = 0; i < count; i++)
        {
            await producer.PublishAsync(Message("shared", $"m{i}"));
        }

        async Task DrainAsync(IMessageConsumer consumer, int index)
        {
            while (seen.Count < count)
            {
                IBrokerDelivery delivery;
                try
                {
                    delivery = await consumer.Deliveries.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(2));
                }
                catch (TimeoutException)
                {
                    continue;
                }

                seen.AddOrUpdate(Text(delivery), 1, (_, n) => n + 1);
                Interlocked.Increment(ref perConsumer[index]);
                // Hold it a little, so that both consumers hold leases at the same time.
                await Task.Yield();
                await delivery.AckAsync();
            }
        }

        await Task.WhenAll(DrainAsync(consumerA, 0), DrainAsync(consumerB, 1)).WaitAsync(Wait);

        Assert.Equal(count, seen.Count);
        Assert.All(seen, pair => Assert.Equal(1, pair.Value));
        Assert.Equal(count, perConsumer[0] + perConsumer[1]);
        Assert.True(perConsumer[0] > 0 && perConsumer[1] > 0, $"both consumers got work ({perConsumer[0]}, {perConsumer[1]})");
        var stats = await producer.GetQueueStatisticsAsync("shared");
        Assert.Equal(new QueueStatistics("shared", 0, 0, 0, 0), stats);
    }

    [Fact]
    public async Task Heartbeat_DeliveryHeldLongerThanTheVisibilityTimeout_IsNotRedelivered()
    {
        static void Short(SqliteConveyorOptions o)
        {
            // Ten beats per lease: a loaded machine (the whole suite at once) has delayed single beats by hundreds
            // of milliseconds.
            o.VisibilityTimeout = TimeSpan.FromSeconds(1);
            o.HeartbeatInterval = TimeSpan.FromMilliseconds(100);
        }

        await using var holderBroker = new SqliteBroker(TestOptions.Process(DatabasePath, Short));
        await using var otherBroker = new SqliteBroker(TestOptions.Process(DatabasePath, Short));
        await holderBroker.PublishAsync(Message("q", "long"));

        await using var holder = await holderBroker.ConsumeAsync("q", new ConsumeOptions { Prefetch = 1 });
        var delivery = await holder.Deliveries.ReadAsync().AsTask().WaitAsync(Wait);
        await using var other = await otherBroker.ConsumeAsync("q", new ConsumeOptions { Prefetch = 1 });

        // Three visibility timeouts: without heartbeats the other consumer would have it by now.
        await Task.Delay(TimeSpan.FromMilliseconds(3000));
        Assert.False(other.Deliveries.TryRead(out _), "the message was redelivered while its consumer was alive");
        Assert.Equal(1, (await otherBroker.GetQueueStatisticsAsync("q")).InFlight);

        await delivery.AckAsync();
        Assert.Equal(new QueueStatistics("q", 0, 0, 0, 0), await otherBroker.GetQueueStatisticsAsync("q"));
    }

    [Fact]
    public async Task Crash_LeaseExpires_OtherProcessGetsTheMessageWithAHigherDeliveryCount()
    {
        static void Short(SqliteConveyorOptions o)
        {
            o.VisibilityTimeout = TimeSpan.FromSeconds(1);
            o.HeartbeatInterval = TimeSpan.FromMilliseconds(250);
        }

        await using var doomedBroker = new SqliteBroker(TestOptions.Process(DatabasePath, Short));
        await using var heirBroker = new SqliteBroker(TestOptions.Process(DatabasePath, Short));
        await doomedBroker.PublishAsync(Message("q", "orphan"));
        var doomed = await doomedBroker.ConsumeAsync("q", new ConsumeOptions { Prefetch = 1 });
        var lost = await doomed.Deliveries.ReadAsync().AsTask().WaitAsync(Wait);
        await SqliteBroker.SimulateCrashAsync(doomed);
        Assert.Equal(1, (await heirBroker.GetQueueStatisticsAsync("q")).InFlight);

        var started = Stopwatch.StartNew();
        await using var heir = await heirBroker.ConsumeAsync("q", new ConsumeOptions { Prefetch = 1 });
        var again = await heir.Deliveries.ReadAsync().AsTask().WaitAsync(Wait);

        Assert.Equal("orphan", Text(again));
        Assert.Equal(2, again.DeliveryCount);
        Assert.True(started.Elapsed < TimeSpan.FromSeconds(5), $"redelivered after {started.Elapsed}");

        // The dead consumer's late ack changes nothing: its lease is gone.
        await lost.AckAsync();
        Assert.Equal(1, (await heirBroker.GetQueueStatisticsAsync("q")).InFlight);
        await again.AckAsync();
        Assert.Equal(0, (await heirBroker.GetQueueStatisticsAsync("q")).InFlight);
    }

    [Fact]
    public async Task Dispose_HandsBackUnsettledAndBufferedDeliveries_AheadOfNewerMessages()
    {
        await using var broker = new SqliteBroker(TestOptions.Process(DatabasePath));
        for (var i = 0; i < 5; i++)
        {
            await broker.PublishAsync(Message("q", $"m{i}"));
        }

        var consumer = await broker.ConsumeAsync("q", new ConsumeOptions { Prefetch = 10 });
        var first = await consumer.Deliveries.ReadAsync().AsTask().WaitAsync(Wait);
        Assert.Equal("m0", Text(first));
        await ConveyorAssert.EventuallyAsync(async () => (await broker.GetQueueStatisticsAsync("q")).InFlight == 5, "all five leased");
        await consumer.DisposeAsync();

        Assert.Equal(new QueueStatistics("q", 5, 0, 0, 0), await broker.GetQueueStatisticsAsync("q"));
        await first.AckAsync(); // handed back already: no effect
        await broker.PublishAsync(Message("q", "m5"));
        await using var again = await broker.ConsumeAsync("q", new ConsumeOptions { Prefetch = 10 });
        var order = new List<string>();
        for (var i = 0; i < 6; i++)
        {
            var delivery = await again.Deliveries.ReadAsync().AsTask().WaitAsync(Wait);
            order.Add(Text(delivery));
            Assert.Equal(i < 5 ? 2 : 1, delivery.DeliveryCount);
            await delivery.AckAsync();
        }

        Assert.Equal(["m0", "m1", "m2", "m3", "m4", "m5"], order);
    }

    [Fact]
    public async Task Publish_FromAnotherProcess_WakesAnIdleConsumerWithinThePollInterval()
    {
        await using var consumerBroker = new SqliteBroker(TestOptions.Process(DatabasePath));
        await using var producer = new SqliteBroker(TestOptions.Process(DatabasePath));
        await using var consumer = await consumerBroker.ConsumeAsync("q", new ConsumeOptions { Prefetch = 1 });

        // The consumer's own safety re-check is once a second; the poll backs off to 100 ms. Ten deliveries all
        // well under a second show the poll at work (the first round warms up: JIT, connections, the poll loop).
        var latencies = new List<TimeSpan>();
        for (var i = 0; i < 11; i++)
        {
            await Task.Delay(150); // let the consumer go idle and the poll back off
            var watch = Stopwatch.StartNew();
            await producer.PublishAsync(Message("q", $"m{i}"));
            var delivery = await consumer.Deliveries.ReadAsync().AsTask().WaitAsync(Wait);
            latencies.Add(watch.Elapsed);
            Assert.Equal($"m{i}", Text(delivery));
            await delivery.AckAsync();
        }

        Assert.True(latencies.Skip(1).Max() < TimeSpan.FromMilliseconds(450), $"latencies: {string.Join(", ", latencies.Select(l => l.TotalMilliseconds))} ms");
    }

    [Fact]
    public async Task Eta_OnTheInjectedClock_IsDeliveredWhenTheClockReachesIt()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2030, 1, 1, 0, 0, 0, TimeSpan.Zero));
        await using var broker = new SqliteBroker(TestOptions.Process(DatabasePath), clock);
        await broker.PublishAsync(Message("q", "later", eta: clock.GetUtcNow().AddMinutes(10)));
        await broker.PublishAsync(Message("q", "high-later", priority: 9, eta: clock.GetUtcNow().AddMinutes(20)));
        Assert.Equal(new QueueStatistics("q", 0, 2, 0, 0), await broker.GetQueueStatisticsAsync("q"));

        await using var consumer = await broker.ConsumeAsync("q", new ConsumeOptions { Prefetch = 4 });
        await Task.Delay(200);
        Assert.False(consumer.Deliveries.TryRead(out _), "delivered before its ETA on the injected clock");

        clock.Advance(TimeSpan.FromMinutes(10));
        var first = await ReadAdvancingAsync(consumer, clock);
        Assert.Equal("later", Text(first));
        Assert.Equal(new QueueStatistics("q", 0, 1, 1, 0), await broker.GetQueueStatisticsAsync("q"));

        // Settled before the clock jumps again: a ten-minute jump would expire its lease.
        await first.AckAsync();
        clock.Advance(TimeSpan.FromMinutes(10));
        var second = await ReadAdvancingAsync(consumer, clock);
        Assert.Equal("high-later", Text(second));
        Assert.Equal(1, second.DeliveryCount);
        await second.AckAsync();
    }

    [Fact]
    public async Task Statistics_CountReadyDelayedInFlightAndDeadLettered_AndListQueues()
    {
        await using var broker = new SqliteBroker(TestOptions.Process(DatabasePath));
        await broker.PublishAsync(Message("stats", "a"));
        await broker.PublishAsync(Message("stats", "b"));
        await broker.PublishAsync(Message("stats", "c"));
        await broker.PublishAsync(Message("stats", "d", eta: DateTimeOffset.UtcNow.AddHours(1)));
        await broker.PublishAsync(Message("other", "x"));

        await using var consumer = await broker.ConsumeAsync("stats", new ConsumeOptions { Prefetch = 2 });
        var a = await consumer.Deliveries.ReadAsync().AsTask().WaitAsync(Wait);
        var b = await consumer.Deliveries.ReadAsync().AsTask().WaitAsync(Wait);
        await a.DeadLetterAsync("bad");
        await ConveyorAssert.EventuallyAsync(async () => (await broker.GetQueueStatisticsAsync("stats")).InFlight == 2, "c leased after a was settled");

        Assert.Equal(new QueueStatistics("stats", 0, 1, 2, 1), await broker.GetQueueStatisticsAsync("stats"));
        Assert.Equal(new QueueStatistics("other", 1, 0, 0, 0), await broker.GetQueueStatisticsAsync("other"));
        Assert.Equal(["other", "stats"], await broker.ListQueuesAsync());
        Assert.Equal(1, await broker.PurgeAsync("stats")); // the delayed one; leased ones stay with their consumer
        await b.AckAsync();
    }

    [Fact]
    public async Task Body_ArbitraryBytes_RoundTripExactly()
    {
        await using var broker = new SqliteBroker(TestOptions.Process(DatabasePath));
        var body = new byte[4096];
        Random.Shared.NextBytes(body);
        body[0] = 0;
        await broker.PublishAsync(new OutgoingMessage("task_bytes", "q", body.AsMemory(1, 4000)));

        await using var consumer = await broker.ConsumeAsync("q", new ConsumeOptions());
        var delivery = await consumer.Deliveries.ReadAsync().AsTask().WaitAsync(Wait);
        Assert.Equal(body.AsSpan(1, 4000).ToArray(), delivery.Body.ToArray());
        await delivery.AckAsync();
    }

    private static async Task<IBrokerDelivery> ReadAdvancingAsync(IMessageConsumer consumer, FakeTimeProvider clock)
    {
        // A consumer that was between its fetch and its timer when the clock moved waits for the next tick.
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < Wait)
        {
            try
            {
                return await consumer.Deliveries.ReadAsync().AsTask().WaitAsync(TimeSpan.FromMilliseconds(200));
            }
            catch (TimeoutException)
            {
                clock.Advance(TimeSpan.FromSeconds(1));
            }
        }

        throw new TimeoutException("no delivery");
    }
}
