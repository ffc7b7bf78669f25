using System.Text;
using Conveyor.Conformance;

namespace Conveyor.Sqs.Tests;

/// <summary>Concurrent publishes share <c>SendMessageBatch</c> calls: each is delivered once, whatever the batching.</summary>
public sealed class SqsPublishTests
{
    [Fact]
    public async Task Publish_ManyAtOnce_EachIsDeliveredExactlyOnce()
    {
        await using var broker = new SqsBroker(SqsProviderFactory.BrokerOptions());
        var queue = "conveyor-publish-" + Guid.NewGuid().ToString("N")[..12];
        var sent = Enumerable.Range(0, 95).Select(i => $"m{i}").ToList();
        await Task.WhenAll(sent.Select(text => broker.PublishAsync(new OutgoingMessage("task_" + text, queue, Encoding.UTF8.GetBytes(text))).AsTask()));

        var received = await ReceiveAsync(broker, queue, sent.Count);
        Assert.Equal(sent.Order(), received.Order());
        await broker.PurgeAsync(queue);
    }

    [Fact]
    public async Task Publish_LargeBodiesAtOnce_AreSplitUnderTheBatchSizeLimit()
    {
        await using var broker = new SqsBroker(SqsProviderFactory.BrokerOptions());
        var queue = "conveyor-publish-large-" + Guid.NewGuid().ToString("N")[..12];

        // Eight 300 KiB bodies published at once: 2.4 MB, over SQS's (and the emulator's) 1 MiB batch limit, so the
        // batches must be split by size, not only by count.
        var sent = Enumerable.Range(0, 8).Select(i => $"{i}:" + new string((char)('a' + i), 300 * 1024)).ToList();
        await Task.WhenAll(sent.Select(text => broker.PublishAsync(new OutgoingMessage("task_large", queue, Encoding.UTF8.GetBytes(text))).AsTask()));

        var received = await ReceiveAsync(broker, queue, sent.Count);
        Assert.Equal(sent.Order(), received.Order());
        await broker.PurgeAsync(queue);
    }

    private static async Task<List<string>> ReceiveAsync(SqsBroker broker, string queue, int count)
    {
        await using var consumer = await broker.ConsumeAsync(queue, new ConsumeOptions { Prefetch = 20 });
        var received = new List<string>();
        while (received.Count < count)
        {
            var delivery = await consumer.Deliveries.ReadAsync().AsTask().WaitAsync(ConveyorTestContext.Timeout);
            received.Add(Encoding.UTF8.GetString(delivery.Body.Span));
            await delivery.AckAsync();
        }

        await Task.Delay(200);
        Assert.False(consumer.Deliveries.TryRead(out _), "a message was delivered twice");
        return received;
    }
}
