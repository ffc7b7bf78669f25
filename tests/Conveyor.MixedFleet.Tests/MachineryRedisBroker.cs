using Conveyor.Serialization;
using StackExchange.Redis;

namespace Conveyor.MixedFleet.Tests;

/// <summary>
/// machinery v2's Redis broker (<c>v2/brokers/redis/goredis.go</c>): publish is <c>RPUSH</c> to the routing key,
/// or <c>ZADD delayed_tasks</c> with the ETA in Unix nanoseconds; consuming pops the list (the message is gone once
/// popped: no in-flight record), and a second loop takes one due delayed task at a time (<c>WATCH</c>,
/// <c>ZREVRANGEBYSCORE 0 now LIMIT 0 1</c>, <c>ZREM</c> in <c>MULTI</c>) and publishes it again. An unregistered task
/// is pushed back to the queue.
/// </summary>
/// <remarks>
/// machinery blocks in <c>BLPOP</c> for up to a second; StackExchange.Redis multiplexes one connection, where a
/// blocking command would stall every other command, so this peer pops with <c>LPOP</c> and naps 5 ms when the
/// list is empty: the same at-most-once pop, sooner. The delayed loop polls every 50 ms (machinery's
/// <c>DelayedTasksPollPeriod</c>, 500 ms by default, is a setting).
/// </remarks>
internal sealed class MachineryRedisBroker(IConnectionMultiplexer redis, string delayedTasksKey = "delayed_tasks") : IMachineryBroker
{
    private readonly IDatabase _db = redis.GetDatabase();

    public async Task PublishAsync(Signature signature)
    {
        var message = WireFormat.SerializeSignature(signature);
        if (signature.Eta is { } eta && eta > DateTimeOffset.UtcNow)
        {
            var score = (double)((eta.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) * 100);
            await _db.SortedSetAddAsync(delayedTasksKey, message, score);
            return;
        }

        await _db.ListRightPushAsync(signature.RoutingKey, message);
    }

    public async Task ConsumeAsync(string queue, int concurrency, MachineryPeer peer, CancellationToken stop)
    {
        var delayed = MoveDelayedAsync(peer, stop);
        var pool = new SemaphoreSlim(concurrency, concurrency);
        var running = new List<Task>();
        try
        {
            while (!stop.IsCancellationRequested)
            {
                await pool.WaitAsync(stop);
                var task = await _db.ListLeftPopAsync(queue);
                if (task.IsNull)
                {
                    pool.Release();
                    await Task.Delay(5, stop);
                    continue;
                }

                peer.Taken();
                running.Add(ConsumeOneAsync(task!, queue, peer, pool));
                running.RemoveAll(t => t.IsCompleted);
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }

        await Task.WhenAll(running); // StopConsuming waits for the tasks being processed
        await delayed;
    }

    private async Task ConsumeOneAsync(byte[] delivery, string queue, MachineryPeer peer, SemaphoreSlim pool)
    {
        try
        {
            await Task.Yield();
            Signature signature;
            try
            {
                signature = MachineryPeer.Decode(delivery);
            }
            catch (Exception ex)
            {
                peer.Errors.Enqueue("could not unmarshal task signature: " + ex.Message);
                return;
            }

            if (!peer.IsTaskRegistered(signature.Name))
            {
                if (!signature.IgnoreWhenTaskNotRegistered)
                {
                    await _db.ListRightPushAsync(queue, delivery);
                }

                return;
            }

            await peer.ProcessAsync(signature);
        }
        finally
        {
            peer.Done();
            pool.Release();
        }
    }

    private async Task MoveDelayedAsync(MachineryPeer peer, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(50, stop);
                var now = (double)((DateTimeOffset.UtcNow.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) * 100);
                var items = await _db.SortedSetRangeByScoreAsync(delayedTasksKey, 0, now, Exclude.None, Order.Descending, 0, 1);
                if (items.Length != 1)
                {
                    continue;
                }

                // WATCH + MULTI/EXEC: only the one whose ZREM went through republishes it.
                var transaction = _db.CreateTransaction();
                transaction.AddCondition(Condition.SortedSetContains(delayedTasksKey, items[0]));
                _ = transaction.SortedSetRemoveAsync(delayedTasksKey, items[0]);
                if (!await transaction.ExecuteAsync())
                {
                    continue;
                }

                await PublishAsync(MachineryPeer.Decode((byte[])items[0]!));
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                peer.Errors.Enqueue("delayed task: " + ex.Message);
            }
        }
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
