using System.Text;

namespace Conveyor.Conformance;

/// <summary>What every broker must do, checked on the broker alone: delivery, settlement, prefetch, priorities,
/// ETAs, redelivery after a consumer dies, dead letters and queue statistics.</summary>
/// <typeparam name="TFactory">The provider's factory.</typeparam>
public abstract class BrokerConformanceTests<TFactory> : IClassFixture<TFactory>
    where TFactory : class, IConveyorProviderFactory
{
    private static readonly TimeSpan Wait = ConveyorTestContext.Timeout;

    /// <summary>Creates the suite.</summary>
    /// <param name="factory">The provider's factory (a class fixture).</param>
    protected BrokerConformanceTests(TFactory factory) => Factory = factory;

    /// <summary>The provider's factory.</summary>
    protected TFactory Factory { get; }

    private static OutgoingMessage Message(string queue, string text, byte priority = 0, DateTimeOffset? eta = null) =>
        new("task_" + text, queue, Encoding.UTF8.GetBytes(text)) { Priority = priority, Eta = eta };

    private static string Text(IBrokerDelivery delivery) => Encoding.UTF8.GetString(delivery.Body.Span);

    private static async Task<IBrokerDelivery> ReceiveAsync(IMessageConsumer consumer, TimeSpan? timeout = null) =>
        await consumer.Deliveries.ReadAsync().AsTask().WaitAsync(timeout ?? Wait);

    private static void AssertNothingBuffered(IMessageConsumer consumer, string why) =>
        Assert.False(consumer.Deliveries.TryRead(out var unexpected), unexpected is null ? null : $"unexpected delivery {Text(unexpected)}: {why}");

    /// <summary>
    /// Reads <paramref name="count"/> deliveries from <paramref name="consumer"/>, failing at once if one turns up
    /// at <paramref name="bystander"/> meanwhile instead.
    /// </summary>
    private static async Task<List<IBrokerDelivery>> ReceiveAllAsync(IMessageConsumer consumer, int count, IMessageConsumer bystander, string why)
    {
        var received = new List<IBrokerDelivery>();
        using var timeout = new CancellationTokenSource(Wait);
        using var stopWatching = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token);
        var extra = bystander.Deliveries.WaitToReadAsync(stopWatching.Token).AsTask();
        try
        {
            while (received.Count < count)
            {
                var next = consumer.Deliveries.ReadAsync(timeout.Token).AsTask();
                if (await Task.WhenAny(next, extra) == extra && await extra)
                {
                    AssertNothingBuffered(bystander, why);
                }

                received.Add(await next);
            }
        }
        finally
        {
            await stopWatching.CancelAsync();
            try
            {
                await extra;
            }
            catch (OperationCanceledException)
            {
            }
        }

        return received;
    }

    [Fact]
    public async Task Publish_ThenConsume_DeliversTheSameBytesInOrder()
    {
        await using var t = await ConveyorTestContext.CreateAsync(Factory);
        for (var i = 0; i < 5; i++)
        {
            await t.Broker.PublishAsync(Message(t.Queue, $"m{i}"));
        }

        await using var consumer = await t.Broker.ConsumeAsync(t.Queue, new ConsumeOptions { Prefetch = 10 });
        for (var i = 0; i < 5; i++)
        {
            var delivery = await ReceiveAsync(consumer);
            Assert.Equal($"m{i}", Text(delivery));
            Assert.Equal(t.Queue, delivery.Queue);
            Assert.Equal(1, delivery.DeliveryCount);
            await delivery.AckAsync();
        }

        var stats = await t.Broker.GetQueueStatisticsAsync(t.Queue);
        Assert.Equal(0, stats.Ready);
        Assert.Equal(0, stats.InFlight);
    }

    [Fact]
    public async Task Prefetch_UnsettledDeliveriesNeverExceedIt()
    {
        await using var t = await ConveyorTestContext.CreateAsync(Factory);
        for (var i = 0; i < 7; i++)
        {
            await t.Broker.PublishAsync(Message(t.Queue, $"m{i}"));
        }

        await using var bounded = await t.Broker.ConsumeAsync(t.Queue, new ConsumeOptions { Prefetch = 2, ConsumerName = "bounded-" + Guid.NewGuid().ToString("N") });
        var first = await ReceiveAsync(bounded);
        var second = await ReceiveAsync(bounded);
        Assert.Equal(["m0", "m1"], [Text(first), Text(second)]);
        await first.AckAsync();
        var third = await ReceiveAsync(bounded);
        Assert.Equal("m2", Text(third));

        // Instead of waiting a while for a delivery that must not come: a second consumer takes the four messages
        // left. It can get all four only if the bounded one holds no more than its two unsettled ones; with every
        // message accounted for, nothing can be on its way to the bounded one either.
        await using var other = await t.Broker.ConsumeAsync(t.Queue, new ConsumeOptions { Prefetch = 10, ConsumerName = "other-" + Guid.NewGuid().ToString("N") });
        var rest = await ReceiveAllAsync(other, 4, bystander: bounded, "the consumer with prefetch 2 got a third unsettled delivery");
        Assert.Equal(["m3", "m4", "m5", "m6"], rest.Select(Text).Order(StringComparer.Ordinal));
        AssertNothingBuffered(bounded, "every message is accounted for");

        await second.AckAsync();
        await third.AckAsync();
        foreach (var delivery in rest)
        {
            await delivery.AckAsync();
        }
    }

    [Fact]
    public async Task Release_HandsTheMessageBackForAnotherDelivery()
    {
        await using var t = await ConveyorTestContext.CreateAsync(Factory);
        await t.Broker.PublishAsync(Message(t.Queue, "again"));
        await using var consumer = await t.Broker.ConsumeAsync(t.Queue, new ConsumeOptions { Prefetch = 1 });

        var first = await ReceiveAsync(consumer);
        await first.ReleaseAsync();
        var second = await ReceiveAsync(consumer);

        Assert.Equal("again", Text(second));
        Assert.True(second.DeliveryCount >= 1);
        await second.AckAsync();
    }

    [Fact]
    public async Task ConsumerDies_WithoutSettling_AnotherConsumerGetsTheMessage()
    {
        await using var t = await ConveyorTestContext.CreateAsync(Factory);
        await t.Broker.PublishAsync(Message(t.Queue, "survivor"));

        var doomed = await t.Broker.ConsumeAsync(t.Queue, new ConsumeOptions { Prefetch = 1, ConsumerName = "doomed-" + Guid.NewGuid().ToString("N") });
        var lost = await ReceiveAsync(doomed);
        Assert.Equal("survivor", Text(lost));
        await Factory.SimulateCrashAsync(doomed);

        await using var heir = await t.Broker.ConsumeAsync(t.Queue, new ConsumeOptions { Prefetch = 1, ConsumerName = "heir-" + Guid.NewGuid().ToString("N") });
        var again = await ReceiveAsync(heir, Factory.RedeliveryTimeout + Wait);
        Assert.Equal("survivor", Text(again));
        await again.AckAsync();

        // No second copy: a message published after the ack is the next delivery, and then nothing is left anywhere.
        await t.Broker.PublishAsync(Message(t.Queue, "after"));
        var next = await ReceiveAsync(heir);
        Assert.Equal("after", Text(next));
        await next.AckAsync();
        await ConveyorTestContext.EventuallyAsync(
            async () => await t.Broker.GetQueueStatisticsAsync(t.Queue) is { Ready: 0, Delayed: 0, InFlight: 0 },
            "an empty queue, nothing in flight");
        AssertNothingBuffered(heir, "the message was delivered again after its ack");
    }

    [Fact]
    public async Task DeadLetter_StoresReasonAndBody_AndRequeueBringsItBack()
    {
        await using var t = await ConveyorTestContext.CreateAsync(Factory);
        await t.Broker.PublishAsync(Message(t.Queue, "poison"));
        await using (var consumer = await t.Broker.ConsumeAsync(t.Queue, new ConsumeOptions { Prefetch = 1 }))
        {
            var delivery = await ReceiveAsync(consumer);
            await delivery.DeadLetterAsync("cannot parse");
        }

        var letters = (await t.Broker.GetDeadLettersAsync(100_000)).Where(d => d.Queue == t.Queue).ToList();
        var letter = Assert.Single(letters);
        Assert.Equal("cannot parse", letter.Reason);
        Assert.Equal("poison", Encoding.UTF8.GetString(letter.Body.Span));
        Assert.Equal(1, (await t.Broker.GetQueueStatisticsAsync(t.Queue)).DeadLettered);

        Assert.True(await t.Broker.RequeueDeadLettersAsync(100_000) >= 1);
        await using var again = await t.Broker.ConsumeAsync(t.Queue, new ConsumeOptions { Prefetch = 1 });
        var back = await ReceiveAsync(again);
        Assert.Equal("poison", Text(back));
        await back.AckAsync();
        Assert.DoesNotContain(await t.Broker.GetDeadLettersAsync(100_000), d => d.Queue == t.Queue);
    }

    [Fact]
    public async Task Eta_MessageIsHeldUntilItsTime_AndCountsAsDelayed()
    {
        await using var t = await ConveyorTestContext.CreateAsync(Factory);
        Assert.True(t.Broker.Capabilities.HasFlag(BrokerCapabilities.DelayedDelivery), $"{Factory.Name} must hold delayed messages");
        // Far enough out that the ready one is read before the ETA even on a loaded machine (at 800 ms a cold start
        // under CI's parallel projects reached the first read after both were due).
        var eta = DateTimeOffset.UtcNow.AddSeconds(3);
        await t.Broker.PublishAsync(Message(t.Queue, "later", eta: eta));
        await t.Broker.PublishAsync(Message(t.Queue, "now"));

        // RabbitMQ's queue counts lag a confirmed publish by a moment: read them until they settle (well before the ETA).
        QueueStatistics? stats = null;
        await ConveyorTestContext.EventuallyAsync(
            async () => (stats = await t.Broker.GetQueueStatisticsAsync(t.Queue)) is { Delayed: 1, Ready: 1 },
            "one delayed and one ready message",
            TimeSpan.FromMilliseconds(500));
        Assert.Equal(1, stats!.Delayed);
        Assert.Equal(1, stats.Ready);

        await using var consumer = await t.Broker.ConsumeAsync(t.Queue, new ConsumeOptions { Prefetch = 4 });
        var first = await ReceiveAsync(consumer);
        Assert.Equal("now", Text(first));
        await first.AckAsync();
        var second = await ReceiveAsync(consumer);
        Assert.Equal("later", Text(second));
        Assert.True(DateTimeOffset.UtcNow >= eta.AddMilliseconds(-50), "delivered before its ETA");
        await second.AckAsync();
    }

    [Fact]
    public virtual async Task Priority_HigherPriorityIsDeliveredFirst_FifoWithinAPriority()
    {
        await using var t = await ConveyorTestContext.CreateAsync(Factory);
        if (!t.Broker.Capabilities.HasFlag(BrokerCapabilities.Priorities))
        {
            Assert.Fail($"{Factory.Name} does not declare priorities; a provider without them must override this test and say why.");
        }

        await t.Broker.PublishAsync(Message(t.Queue, "low1", priority: 1));
        await t.Broker.PublishAsync(Message(t.Queue, "high1", priority: 9));
        await t.Broker.PublishAsync(Message(t.Queue, "low2", priority: 1));
        await t.Broker.PublishAsync(Message(t.Queue, "high2", priority: 9));

        await using var consumer = await t.Broker.ConsumeAsync(t.Queue, new ConsumeOptions { Prefetch = 1 });
        var order = new List<string>();
        for (var i = 0; i < 4; i++)
        {
            var delivery = await ReceiveAsync(consumer);
            order.Add(Text(delivery));
            await delivery.AckAsync();
        }

        Assert.Equal(["high1", "high2", "low1", "low2"], order);
    }

    [Fact]
    public async Task Purge_RemovesReadyAndDelayedMessages()
    {
        await using var t = await ConveyorTestContext.CreateAsync(Factory);
        await t.Broker.PublishAsync(Message(t.Queue, "a"));
        await t.Broker.PublishAsync(Message(t.Queue, "b"));
        await t.Broker.PublishAsync(Message(t.Queue, "c", eta: DateTimeOffset.UtcNow.AddHours(1)));

        Assert.Equal(3, await t.Broker.PurgeAsync(t.Queue));
        var stats = await t.Broker.GetQueueStatisticsAsync(t.Queue);
        Assert.Equal(0, stats.Ready + stats.Delayed);
        Assert.Contains(t.Queue, await t.Broker.ListQueuesAsync());
    }
}
