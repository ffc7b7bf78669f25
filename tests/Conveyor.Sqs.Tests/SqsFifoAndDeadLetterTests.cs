using System.Text;
using Conveyor.Conformance;

namespace Conveyor.Sqs.Tests;

/// <summary>FIFO queues as machinery uses them, and dead letters moved by SQS itself (a redrive policy).</summary>
public sealed class SqsFifoAndDeadLetterTests
{
    private static byte[] Body(string id, string group) =>
        Encoding.UTF8.GetBytes($$"""{"UUID":"{{id}}","Name":"add","BrokerMessageGroupId":"{{group}}"}""");

    [Fact]
    public async Task Fifo_GroupIdFromTheSignature_DeliversInOrder_AndTheTaskIdDeduplicates()
    {
        await using var broker = new SqsBroker(SqsProviderFactory.BrokerOptions());
        var queue = "conveyor-fifo-" + Guid.NewGuid().ToString("N")[..12] + ".fifo";
        for (var i = 0; i < 3; i++)
        {
            await broker.PublishAsync(new OutgoingMessage($"task_{i}", queue, Body($"task_{i}", "customer-1")));
        }

        await broker.PublishAsync(new OutgoingMessage("task_0", queue, Body("task_0", "customer-1"))); // the same task again

        await using var consumer = await broker.ConsumeAsync(queue, new ConsumeOptions { Prefetch = 10 });
        var received = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            var delivery = await consumer.Deliveries.ReadAsync().AsTask().WaitAsync(ConveyorTestContext.Timeout);
            received.Add(Encoding.UTF8.GetString(delivery.Body.Span));
            await delivery.AckAsync();
        }

        Assert.Equal([.. Enumerable.Range(0, 3).Select(i => Encoding.UTF8.GetString(Body($"task_{i}", "customer-1")))], received);
        await Task.Delay(300);
        Assert.False(consumer.Deliveries.TryRead(out _), "the duplicate publish of task_0 was delivered");
        await broker.PurgeAsync(queue);
    }

    [Fact]
    public async Task Fifo_WithoutBrokerMessageGroupId_FailsSayingWhatIsMissing()
    {
        await using var broker = new SqsBroker(SqsProviderFactory.BrokerOptions());
        var queue = "conveyor-fifo-" + Guid.NewGuid().ToString("N")[..12] + ".fifo";
        var error = await Assert.ThrowsAsync<ArgumentException>(async () =>
            await broker.PublishAsync(new OutgoingMessage("task_x", queue, Encoding.UTF8.GetBytes("""{"UUID":"task_x","Name":"add"}"""))));
        Assert.Contains("BrokerMessageGroupId", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RedrivePolicy_AMessageReceivedTooOften_IsMovedBySqs_AndListedAndRequeuedAsADeadLetter()
    {
        var options = SqsProviderFactory.BrokerOptions();
        options.MaxReceiveCount = 1;
        await using var broker = new SqsBroker(options);
        var queue = "conveyor-redrive-" + Guid.NewGuid().ToString("N")[..12];
        await broker.PublishAsync(new OutgoingMessage("task_poison", queue, "poison"u8.ToArray()));

        // Received once and handed back: the next receive exceeds maxReceiveCount, and SQS moves it.
        await using (var consumer = await broker.ConsumeAsync(queue, new ConsumeOptions { Prefetch = 1 }))
        {
            var delivery = await consumer.Deliveries.ReadAsync().AsTask().WaitAsync(ConveyorTestContext.Timeout);
            await delivery.ReleaseAsync();
            await Task.Delay(500);
            Assert.False(consumer.Deliveries.TryRead(out _), "delivered again past maxReceiveCount");
        }

        DeadLetter? letter = null;
        await ConveyorTestContext.EventuallyAsync(
            async () => (letter = (await broker.GetDeadLettersAsync(1000)).FirstOrDefault(d => d.Queue == queue)) is not null,
            "the message in the queue's dead-letter queue");
        Assert.Equal("poison", Encoding.UTF8.GetString(letter!.Body.Span));
        Assert.Contains("redrive", letter.Reason, StringComparison.Ordinal);
        Assert.Equal(1, (await broker.GetQueueStatisticsAsync(queue)).DeadLettered);

        Assert.True(await broker.RequeueDeadLettersAsync(1000) >= 1);
        Assert.Equal(0, (await broker.GetQueueStatisticsAsync(queue)).DeadLettered);
        await broker.PurgeAsync(queue);
    }
}
