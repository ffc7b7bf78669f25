using System.Text;

namespace Conveyor.RabbitMQ.Tests;

/// <summary>
/// A connection loss while a consumer holds buffered deliveries, on a node of the test's own (the server closes
/// every connection, as a network cut would): RabbitMQ requeues them, the consumer ends without handing out the
/// copies it had buffered, and the worker's next subscription gets each message once.
/// </summary>
public sealed class ConnectionLossTests
{
    [Fact]
    public async Task Consume_ConnectionLostWithDeliveriesBuffered_EachBufferedMessageIsHandedOutOnceMore()
    {
        await using var rabbit = await PrivateRabbitMq.StartAsync();
        var options = new RabbitMqBrokerOptions { Exchange = "conveyor_loss", NetworkRecoveryInterval = TimeSpan.FromMilliseconds(200), PublishRetryTimeout = TimeSpan.FromSeconds(20) };
        options.Urls.Add(new Uri(rabbit.AmqpUrl));
        await using var broker = new RabbitMqBroker(options);
        const int Messages = 6;
        for (var i = 0; i < Messages; i++)
        {
            await broker.PublishAsync(new OutgoingMessage($"task_{i}", "loss", Encoding.UTF8.GetBytes($"m{i}")));
        }

        await using var consumer = await broker.ConsumeAsync("loss", new ConsumeOptions { Prefetch = Messages });
        var taken = await consumer.Deliveries.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (consumer.Deliveries.Count < Messages - 1 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }

        Assert.Equal(Messages - 1, consumer.Deliveries.Count); // buffered, not yet handed out

        await rabbit.CloseAllConnectionsAsync();
        deadline = DateTime.UtcNow.AddSeconds(30);
        while (RabbitMqBroker.ConsumerEpoch(consumer) == 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20); // until the client has seen the channel close
        }

        // The consumer ends (the worker subscribes again) without handing out the copies it had buffered.
        IBrokerDelivery? stale = null;
        var ended = await Record.ExceptionAsync(async () => stale = await consumer.Deliveries.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.True(stale is null, $"handed out {(stale is null ? null : Encoding.UTF8.GetString(stale.Body.Span))}, buffered before the connection loss");
        Assert.NotNull(ended);
        await consumer.DisposeAsync(); // as the worker does before it subscribes again

        // Subscribed again: every message once (the taken one included, whose ack died with the channel).
        await using var again = await SubscribeWhenRecoveredAsync(broker, Messages);
        var after = new List<string>();
        for (var i = 0; i < Messages; i++)
        {
            var delivery = await again.Deliveries.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30));
            after.Add(Encoding.UTF8.GetString(delivery.Body.Span));
            await delivery.AckAsync();
        }

        await Task.Delay(TimeSpan.FromSeconds(1));
        Assert.False(again.Deliveries.TryRead(out var extra), $"handed out a further copy of {(extra is null ? null : Encoding.UTF8.GetString(extra.Body.Span))}");
        Assert.Equal(Enumerable.Range(0, Messages).Select(i => $"m{i}").Order(), after.Order());
        Assert.Equal("m0", Encoding.UTF8.GetString(taken.Body.Span));
        Assert.Equal(0, (await broker.GetQueueStatisticsAsync("loss")).Ready);
    }

    // As the worker does: subscribe again until the connection is back.
    private static async Task<IMessageConsumer> SubscribeWhenRecoveredAsync(RabbitMqBroker broker, int prefetch)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            try
            {
                return await broker.ConsumeAsync("loss", new ConsumeOptions { Prefetch = prefetch });
            }
            catch (Exception ex) when (ex is global::RabbitMQ.Client.Exceptions.AlreadyClosedException or global::RabbitMQ.Client.Exceptions.OperationInterruptedException && DateTime.UtcNow < deadline)
            {
                await Task.Delay(100);
            }
        }
    }
}
