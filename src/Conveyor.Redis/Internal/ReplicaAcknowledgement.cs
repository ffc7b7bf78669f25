using System.Globalization;
using StackExchange.Redis;

namespace Conveyor.Redis.Internal;

/// <summary>
/// <c>WAIT</c> for replicas after a write that must survive a failover (an enqueue, a final state and its ack), when
/// <see cref="RedisConveyorOptions.WaitForReplicas"/> asks for it. Redis replicates asynchronously: without it, a
/// primary that dies right after acknowledging a write may take the write with it when a replica is promoted.
/// </summary>
/// <remarks>
/// <c>WAIT</c> covers every write sent before it on the same connection, and StackExchange.Redis sends all of a
/// process's commands to the primary over one connection, so one <c>WAIT</c> covers the caller's write and every
/// write pipelined before it. It holds that connection until the replicas answer (about one round trip to them).
/// </remarks>
internal static class ReplicaAcknowledgement
{
    public static async ValueTask WaitAsync(IDatabaseAsync database, RedisConveyorOptions options)
    {
        var replicas = options.WaitForReplicas;
        if (replicas <= 0)
        {
            return;
        }

        var timeoutMs = (long)options.ReplicaWaitTimeout.TotalMilliseconds;
        var acknowledged = (long)await database.ExecuteAsync("WAIT", replicas, timeoutMs).ConfigureAwait(false);
        if (acknowledged < replicas)
        {
            throw new RedisException(string.Create(
                CultureInfo.InvariantCulture,
                $"Redis: {acknowledged} of {replicas} replica(s) acknowledged the write within {timeoutMs} ms, so a failover could lose it; it is not confirmed (the caller retries or redelivers)"));
        }
    }
}
