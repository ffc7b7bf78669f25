using Conveyor.Redis;
using StackExchange.Redis;

namespace Conveyor.Telemetry.Tests;

/// <summary>
/// One test's share of the Redis server: a key prefix (so tests in parallel never share a key, not even
/// <c>delayed_tasks</c>) and a queue of its own; deletes its keys when disposed.
/// </summary>
public sealed class RedisKeyspace : IAsyncDisposable
{
    public RedisKeyspace(string testName)
    {
        var id = Guid.NewGuid().ToString("N")[..8];
        Options = new RedisConveyorOptions
        {
            KeyPrefix = $"conveyor-telemetry-test:{id}:",
            VisibilityTimeout = TimeSpan.FromSeconds(5),
            ResultTtl = TimeSpan.FromMinutes(10),
            DelayedPollInterval = TimeSpan.FromMilliseconds(20),
        };
        Queue = $"telemetry_{testName}_{id}";
    }

    public RedisConveyorOptions Options { get; }

    public string Queue { get; }

    public async ValueTask DisposeAsync()
    {
        await using var multiplexer = await RedisTestServer.ConnectAsync();
        var server = multiplexer.GetServers()[0];
        var keys = new List<RedisKey>();
        await foreach (var key in server.KeysAsync(pattern: Options.KeyPrefix + "*", pageSize: 1000))
        {
            keys.Add(key);
        }

        if (keys.Count > 0)
        {
            await multiplexer.GetDatabase().KeyDeleteAsync([.. keys]);
        }
    }
}
