using StackExchange.Redis;

namespace Conveyor.Redis.Internal;

/// <summary>Whether a connection's Redis is a Redis Cluster, and so which key layout the provider uses.</summary>
internal static class RedisClusterMode
{
    /// <summary>
    /// <see cref="RedisConveyorOptions.Cluster"/> when set; else what StackExchange.Redis learned at connect time
    /// (a node that answers <c>CLUSTER NODES</c> has <see cref="ServerType.Cluster"/>). No I/O: the multiplexer is
    /// connected before components are made (a component made before that, on a cluster, needs <c>?cluster=true</c>).
    /// </summary>
    public static bool IsCluster(IConnectionMultiplexer multiplexer, RedisConveyorOptions options)
    {
        if (options.Cluster is { } configured)
        {
            return configured;
        }

        foreach (var endPoint in multiplexer.GetEndPoints(configuredOnly: false))
        {
            if (multiplexer.GetServer(endPoint).ServerType == ServerType.Cluster)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The key layout for a connection.</summary>
    public static RedisKeys KeysFor(IConnectionMultiplexer multiplexer, RedisConveyorOptions options) =>
        new(options.KeyPrefix, options.DelayedTasksKey, IsCluster(multiplexer, options));
}
