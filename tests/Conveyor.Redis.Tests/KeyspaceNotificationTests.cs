using System.Diagnostics;
using System.Text;
using StackExchange.Redis;

namespace Conveyor.Redis.Tests;

/// <summary>
/// With <see cref="RedisConveyorOptions.UseKeyspaceNotifications"/>, a state written by Go machinery (a plain SET,
/// no Conveyor channel) still wakes a waiter at once. Runs on a private redis-server, so the shared test server's
/// configuration is left alone.
/// </summary>
public sealed class KeyspaceNotificationTests
{
    [Fact]
    public async Task WaitForChange_PlainSetAsGoWritesIt_WakesTheWaiterThroughKeyspaceEvents()
    {
        await using var server = await PrivateRedis.StartAsync();
        await using var multiplexer = await ConnectionMultiplexer.ConnectAsync(server.Address + ",allowAdmin=true");
        await multiplexer.GetServers()[0].ConfigSetAsync("notify-keyspace-events", "K$");
        var backend = new RedisResultBackend(multiplexer, new RedisConveyorOptions { UseKeyspaceNotifications = true });
        await using var _ = backend;
        var id = TaskIds.NewTaskId();

        // The first wait subscribes (and returns once the subscription is live); the second waits for the event.
        await backend.WaitForChangeAsync(id, TimeSpan.FromSeconds(5));
        var started = Stopwatch.StartNew();
        var waiting = backend.WaitForChangeAsync(id, TimeSpan.FromSeconds(20)).AsTask();
        await Task.Delay(50);
        Assert.False(waiting.IsCompleted);
        var machineryState = $"{{\"TaskUUID\":\"{id}\",\"TaskName\":\"add\",\"State\":\"SUCCESS\",\"Results\":[{{\"Type\":\"int64\",\"Value\":3}}],\"Error\":\"\",\"CreatedAt\":\"2026-11-26T17:18:43.513345115Z\",\"TTL\":0}}";
        await multiplexer.GetDatabase().StringSetAsync(id, Encoding.UTF8.GetBytes(machineryState), TimeSpan.FromSeconds(900));

        await waiting.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.True(started.Elapsed < TimeSpan.FromSeconds(10));
        var state = await backend.GetStateAsync(id);
        Assert.Equal(TaskState.Success, state!.State);
        Assert.Equal(3L, state.Results![0].Value);
    }
}
