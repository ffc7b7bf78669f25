using System.Text;
using Conveyor.Conformance;

namespace Conveyor.Redis.Tests;

/// <summary>
/// The poison-message counter on Redis: each consumer that dies holding a message counts one death in the queue's
/// death counts, so the next delivery's count is one higher; a graceful hand-back counts none; the count goes with
/// the acknowledgement. On a single Redis and on the cluster.
/// </summary>
/// <typeparam name="TFactory">The Redis factory.</typeparam>
public abstract class DeliveryCountTests<TFactory>(TFactory factory) : IClassFixture<TFactory>
    where TFactory : RedisProviderFactory
{
    private static readonly TimeSpan Wait = ConveyorTestContext.Timeout;

    [Fact]
    public async Task Consume_AfterEachDeadConsumer_DeliveryCountRisesAndTheAckForgetsIt()
    {
        await using var t = await ConveyorTestContext.CreateAsync(factory);
        await t.Broker.PublishAsync(new OutgoingMessage("task_poison", t.Queue, Encoding.UTF8.GetBytes("poison")));
        var db = (await factory.MultiplexerAsync()).GetDatabase();
        var keys = ((RedisBroker)t.Broker).Keys;

        for (var expected = 1; expected <= 3; expected++)
        {
            var doomed = await t.Broker.ConsumeAsync(t.Queue, new ConsumeOptions { Prefetch = 1, ConsumerName = "doomed" + expected });
            var delivery = await doomed.Deliveries.ReadAsync().AsTask().WaitAsync(factory.RedeliveryTimeout + Wait);
            Assert.Equal(expected, delivery.DeliveryCount);
            await factory.SimulateCrashAsync(doomed);
        }

        // A graceful stop hands the message back without a death.
        var graceful = await t.Broker.ConsumeAsync(t.Queue, new ConsumeOptions { Prefetch = 1, ConsumerName = "graceful" });
        Assert.Equal(4, (await graceful.Deliveries.ReadAsync().AsTask().WaitAsync(factory.RedeliveryTimeout + Wait)).DeliveryCount);
        await graceful.DisposeAsync();

        await using var last = await t.Broker.ConsumeAsync(t.Queue, new ConsumeOptions { Prefetch = 1, ConsumerName = "last" });
        var final = await last.Deliveries.ReadAsync().AsTask().WaitAsync(factory.RedeliveryTimeout + Wait);
        Assert.Equal(4, final.DeliveryCount);
        Assert.True(await db.KeyExistsAsync(keys.Deaths(t.Queue)));
        await final.AckAsync();
        await ConveyorTestContext.EventuallyAsync(async () => !await db.KeyExistsAsync(keys.Deaths(t.Queue)), "the acknowledgement drops the message's death count");
    }

    [Fact]
    public async Task Consume_NobodyDied_DeliveryCountIsOneAndNoCountIsStored()
    {
        await using var t = await ConveyorTestContext.CreateAsync(factory);
        await t.Broker.PublishAsync(new OutgoingMessage("task_fine", t.Queue, Encoding.UTF8.GetBytes("fine")));
        await using var consumer = await t.Broker.ConsumeAsync(t.Queue, new ConsumeOptions { Prefetch = 1 });

        var delivery = await consumer.Deliveries.ReadAsync().AsTask().WaitAsync(Wait);

        Assert.Equal(1, delivery.DeliveryCount);
        Assert.False(await (await factory.MultiplexerAsync()).GetDatabase().KeyExistsAsync(((RedisBroker)t.Broker).Keys.Deaths(t.Queue)));
        await delivery.AckAsync();
    }
}

public sealed class RedisDeliveryCountTests(RedisProviderFactory factory) : DeliveryCountTests<RedisProviderFactory>(factory);

public sealed class RedisClusterDeliveryCountTests(RedisClusterProviderFactory factory) : DeliveryCountTests<RedisClusterProviderFactory>(factory);
