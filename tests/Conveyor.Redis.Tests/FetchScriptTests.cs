using Conveyor.Conformance;
using Conveyor.Redis.Internal;
using StackExchange.Redis;

namespace Conveyor.Redis.Tests;

/// <summary>
/// The fetch script's two ways to move messages (one LMPOP and one RPUSH per list on Redis 7.0 and later, an LMOVE per
/// message before): on the same priority levels and queue, fetches of every size hand out the same messages in the
/// same order, leave the same in-flight list, levels and idle flag; and each message comes with its task id and the
/// CreatedAt of its stored state, which the worker's settle then needs not read.
/// </summary>
public sealed class FetchScriptTests(RedisProviderFactory factory) : IClassFixture<RedisProviderFactory>
{
    [Fact]
    public async Task Fetch_WithListPopAndWithMovePerMessage_TakesTheSameMessagesInTheSameOrder()
    {
        var db = (await factory.MultiplexerAsync()).GetDatabase();
        var withPop = await FillAsync(db, "pop");
        var withMove = await FillAsync(db, "move");

        // 3: the top level only; 4: the rest of it and one of level 5; 10: past level 5's end into the plain queue;
        // 50: everything left, then the queue runs dry (the idle flag); 5: nothing at all.
        foreach (var max in new[] { 3, 4, 10, 50, 5 })
        {
            var popped = await FetchAsync(db, withPop, max, listPop: true);
            var moved = await FetchAsync(db, withMove, max, listPop: false);
            Assert.Equal(moved, popped);
            Assert.Equal(await db.ListRangeAsync(withMove.InFlight), await db.ListRangeAsync(withPop.InFlight));
            Assert.Equal(await db.SortedSetRangeByRankAsync(withMove.Levels), await db.SortedSetRangeByRankAsync(withPop.Levels));
            Assert.Equal(await db.KeyExistsAsync(withMove.Idle), await db.KeyExistsAsync(withPop.Idle));
        }

        var all = (await db.ListRangeAsync(withPop.InFlight)).Select(v => (string)v!).ToArray();
        string[] expected = [.. Messages("p9", 5), .. Messages("p5", 3), .. Messages("q", 40)];
        Assert.Equal(expected, all);
        Assert.True(await db.KeyExistsAsync(withPop.Idle), "a fetch that found fewer than asked sets the idle flag");
        Assert.Empty(await db.SortedSetRangeByRankAsync(withPop.Levels));
    }

    [Fact]
    public async Task Fetch_ReadsEachMessagesTaskIdAndTheCreatedAtOfItsStoredState()
    {
        var db = (await factory.MultiplexerAsync()).GetDatabase();
        var keys = await FillAsync(db, "created");
        await db.KeyDeleteAsync([keys.Queue, keys.Levels]);
        const string createdAt = "2026-12-01T17:03:03.6850049Z";
        await db.StringSetAsync(keys.StatePrefix + "task_a", $$"""{"TaskUUID":"task_a","TaskName":"add","State":"PENDING","Results":null,"Error":"","CreatedAt":"{{createdAt}}","TTL":0}""");
        await db.StringSetAsync(keys.StatePrefix + "task_z", """{"TaskUUID":"task_z","State":"PENDING","CreatedAt":"0001-01-01T00:00:00Z"}""");
        await db.ListRightPushAsync(keys.Queue, [
            """{"UUID":"task_a","Name":"add","RoutingKey":"q"}""",
            """{"UUID":"task_b","Name":"add"}""",
            """{"UUID":"task_z","Name":"add"}""",
            "not json",
        ]);

        var taken = await FetchAsync(db, keys, 10, listPop: true);

        Assert.Equal(
            [
                $$"""0:{"UUID":"task_a","Name":"add","RoutingKey":"q"}:0:task_a:{{createdAt}}""",
                """0:{"UUID":"task_b","Name":"add"}:0:task_b:""", // no stored state
                """0:{"UUID":"task_z","Name":"add"}:0:task_z:""", // machinery's zero time: not a CreatedAt to keep
                "0:not json:0::",
            ],
            taken);
    }

    [Fact]
    public async Task Consumer_AcknowledgedOnlyThroughTheBroker_StopsReadingCreatedAtAfterAHundredMessages()
    {
        // No result backend on this Redis settles these messages: each is acknowledged through the broker, as with a
        // backend elsewhere. The first hundred fetches still read CreatedAt (tasks with workflows are acknowledged
        // so on any backend); after them the reads stop: each would be a GET of a state that is not here.
        await using var t = await ConveyorTestContext.CreateAsync(factory);
        var db = (await factory.MultiplexerAsync()).GetDatabase();
        var keys = ((RedisBroker)t.Broker).Keys;
        const int count = 102;
        for (var i = 0; i < count; i++)
        {
            var id = $"task_read_{i:D3}";
            await db.StringSetAsync(keys.State(id), $$"""{"TaskUUID":"{{id}}","State":"PENDING","CreatedAt":"2026-12-01T18:00:00Z"}""");
            await t.Broker.PublishAsync(new OutgoingMessage(id, t.Queue, System.Text.Encoding.UTF8.GetBytes($$"""{"UUID":"{{id}}","Name":"add"}""")));
        }

        await using var consumer = await t.Broker.ConsumeAsync(t.Queue, new ConsumeOptions { Prefetch = 1 });
        var read = new List<bool>();
        for (var i = 0; i < count; i++)
        {
            var delivery = (RedisDelivery)await consumer.Deliveries.ReadAsync().AsTask().WaitAsync(ConveyorTestContext.Timeout);
            read.Add(delivery.StoredCreatedAt is not null);
            if (delivery.StoredCreatedAt is { } createdAt)
            {
                Assert.Equal($"task_read_{i:D3}", delivery.TaskId);
                Assert.Equal("2026-12-01T18:00:00Z", System.Text.Encoding.UTF8.GetString(createdAt));
            }

            await delivery.AckAsync();
        }

        Assert.Equal([.. Enumerable.Repeat(true, 100), false, false], read);
    }

    private static string[] Messages(string list, int count) => [.. Enumerable.Range(1, count).Select(i => $"{list}-{i:D3}")];

    private async Task<FetchKeys> FillAsync(IDatabase db, string name)
    {
        var scope = factory.Options.KeyPrefix + "fetch-" + name + ":";
        var keys = new FetchKeys(scope + "levels", scope + "queue", scope + "in-flight", scope + "heartbeat", scope + "idle", scope + "deaths", scope + "p", scope + "state:");
        await db.StringSetAsync(keys.Heartbeat, "1", TimeSpan.FromMinutes(1));
        await db.SortedSetAddAsync(keys.Levels, [new SortedSetEntry("9", 9), new SortedSetEntry("5", 5), new SortedSetEntry("7", 7)]);
        await db.ListRightPushAsync(keys.PriorityPrefix + "9", [.. Messages("p9", 5).Select(m => (RedisValue)m)]);
        await db.ListRightPushAsync(keys.PriorityPrefix + "5", [.. Messages("p5", 3).Select(m => (RedisValue)m)]);
        await db.ListRightPushAsync(keys.Queue, [.. Messages("q", 40).Select(m => (RedisValue)m)]);

        // Level 7 is noted but its list is empty (a consumer emptied it): the fetch drops it from the levels.
        return keys;
    }

    private static async Task<string[]> FetchAsync(IDatabase db, FetchKeys keys, int max, bool listPop)
    {
        var result = (RedisResult[])(await db.ScriptEvaluateAsync(
            RedisScripts.Fetch,
            [keys.Levels, keys.Queue, keys.InFlight, keys.Heartbeat, keys.Idle, keys.Deaths],
            [max, 60_000, keys.PriorityPrefix, listPop ? "1" : "0", "1", keys.StatePrefix]))!;
        var taken = new List<string>();
        for (var i = 0; i < result.Length; i += 5)
        {
            taken.Add($"{(int)result[i]}:{(string)result[i + 1]!}:{(int)result[i + 2]}:{(string)result[i + 3]!}:{(string)result[i + 4]!}");
        }

        Assert.True(taken.Count <= max, $"a fetch of {max} took {taken.Count}");
        return [.. taken];
    }

    private sealed record FetchKeys(string Levels, string Queue, string InFlight, string Heartbeat, string Idle, string Deaths, string PriorityPrefix, string StatePrefix);
}
