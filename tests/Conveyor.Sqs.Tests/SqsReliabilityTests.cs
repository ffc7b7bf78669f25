using Conveyor.Conformance;

namespace Conveyor.Sqs.Tests;

/// <summary>
/// machinery #668: its SQS broker never extends the visibility timeout, so a task that runs longer than it is
/// delivered again to another worker while the first still runs. Conveyor's consumers extend it while they hold a
/// message.
/// </summary>
public sealed class SqsReliabilityTests(SqsRedisProviderFactory factory) : IClassFixture<SqsRedisProviderFactory>
{
    [Fact]
    public async Task LongTask_ThreeTimesTheVisibilityTimeout_OnLiveWorkers_RunsExactlyOnce()
    {
        // SQS counts visibility in whole seconds. 2 s with a heartbeat every 200 ms leaves 1.8 s for a late extension
        // on a loaded machine (1 s with a third of it was too tight for a CI run of the whole suite on 2 cores).
        var visibility = TimeSpan.FromSeconds(2);
        var options = SqsProviderFactory.BrokerOptions();
        options.VisibilityTimeout = visibility;
        options.HeartbeatInterval = TimeSpan.FromMilliseconds(200);
        options.WaitTime = TimeSpan.FromSeconds(1);
        var backend = await factory.CreateBackendAsync();
        var broker = new SqsBroker(options);
        var queue = "conveyor-visibility-" + Guid.NewGuid().ToString("N")[..12];
        var client = new ConveyorClient(broker, backend, new ConveyorClientOptions { DefaultQueue = queue, MaxResultPollInterval = TimeSpan.FromMilliseconds(20) });
        var runs = 0;
        var registry = new TaskRegistry().Register("long", async (CancellationToken ct) =>
        {
            Interlocked.Increment(ref runs);
            await Task.Delay(visibility * 3, ct);
            return "done";
        });

        // Two workers, each free to take the message again if it became visible.
        using var first = new ConveyorWorker(client, registry, new WorkerOptions { Queue = queue, Concurrency = 2, Name = "first" });
        using var second = new ConveyorWorker(client, registry, new WorkerOptions { Queue = queue, Concurrency = 2, Name = "second" });
        await first.StartAsync(CancellationToken.None);
        await second.StartAsync(CancellationToken.None);
        try
        {
            var result = await client.SendAsync(new Signature("long"));
            Assert.Equal("done", await result.GetValueAsync<string>(ConveyorTestContext.Timeout));

            // Long enough for a copy whose visibility had lapsed to be received and started.
            await Task.Delay(visibility * 2);
            Assert.Equal(1, Volatile.Read(ref runs));
            var stats = await broker.GetQueueStatisticsAsync(queue);
            Assert.Equal(0, stats.Ready + stats.InFlight);
        }
        finally
        {
            await first.StopAsync(CancellationToken.None);
            await second.StopAsync(CancellationToken.None);
            await broker.DisposeAsync();
            await backend.DisposeAsync();
        }
    }

    [Fact]
    public async Task Eta_BeyondSqsFifteenMinutes_IsHeldAndCountsAsDelayed()
    {
        await using var t = await ConveyorTestContext.CreateAsync(factory);
        await t.Broker.PublishAsync(new OutgoingMessage("task_far", t.Queue, "far"u8.ToArray()) { Eta = DateTimeOffset.UtcNow.AddHours(2) });
        await using var consumer = await t.Broker.ConsumeAsync(t.Queue, new ConsumeOptions { Prefetch = 1 });
        await Task.Delay(300);
        Assert.False(consumer.Deliveries.TryRead(out _));
        var stats = await t.Broker.GetQueueStatisticsAsync(t.Queue);
        Assert.Equal(1, stats.Delayed);
        Assert.Equal(0, stats.Ready);
    }

    [Fact]
    public void SetDelay_BeyondFifteenMinutes_DelaysFifteenAndCarriesTheEta_WithinRoundsUp()
    {
        var now = new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);
        var far = new Amazon.SQS.Model.SendMessageRequest();
        SqsBroker.SetDelay(far, now.AddHours(1), now);
        Assert.Equal(900, far.DelaySeconds);
        Assert.Equal(now.AddHours(1).ToUnixTimeMilliseconds().ToString(System.Globalization.CultureInfo.InvariantCulture), far.MessageAttributes[SqsBroker.EtaAttribute].StringValue);

        var near = new Amazon.SQS.Model.SendMessageRequest();
        SqsBroker.SetDelay(near, now.AddMilliseconds(1200), now);
        Assert.Equal(2, near.DelaySeconds);
        Assert.Null(near.MessageAttributes);
    }
}
