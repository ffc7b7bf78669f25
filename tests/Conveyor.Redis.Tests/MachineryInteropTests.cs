using System.Globalization;
using System.Text;
using System.Text.Json;
using Conveyor.Conformance;
using StackExchange.Redis;

namespace Conveyor.Redis.Tests;

/// <summary>machinery's own layout: no key prefix, so the keys are exactly Go machinery's.</summary>
public sealed class MachineryLayoutFactory : RedisProviderFactory
{
    public MachineryLayoutFactory()
        : base(string.Empty)
    {
    }
}

/// <summary>
/// Go machinery and Conveyor share queues, delayed tasks and states: bytes captured from Go machinery v2
/// (<c>shared/wire/redis</c>) are pushed as Go pushes them, and what Conveyor writes is compared with what Go wrote.
/// </summary>
public sealed class MachineryInteropTests(MachineryLayoutFactory factory) : IClassFixture<MachineryLayoutFactory>
{
    private const string SampleTaskId = "task_e843b4c1-ab4f-4d87-9c03-e5efb37559dc";
    private static readonly TimeSpan Wait = ConveyorTestContext.Timeout;

    private static void RegisterWireTypes(TaskRegistry registry) =>
        registry.Register("wire_types", (string s, long i, double f, bool b, string[] list) =>
            (s.ToUpperInvariant(), i + 1, f * 2, !b, list.Append("z").ToArray()));

    /// <summary>machinery's captured message for the wire-types task, with a fresh id, routed to the test's queue.</summary>
    private static string GoMessage(string id, string queue) =>
        WireSamples.Redis("broker_task_wire_types.raw.json")
            .Replace(SampleTaskId, id, StringComparison.Ordinal)
            .Replace("\"RoutingKey\":\"machinery_wire\"", $"\"RoutingKey\":\"{queue}\"", StringComparison.Ordinal);

    [Fact]
    public async Task GoProducedTask_RpushedWithExactBytes_RunsAndItsStateReadsAsMachineryWritesIt()
    {
        await using var t = await ConveyorTestContext.CreateAsync(factory);
        var db = (await factory.MultiplexerAsync()).GetDatabase();
        var id = "task_" + Guid.NewGuid();
        var message = GoMessage(id, t.Queue);
        var pending = WireSamples.Redis("state_PENDING_wire_types.raw.json").Replace(SampleTaskId, id, StringComparison.Ordinal);
        var expected = WireSamples.Redis("state_SUCCESS_wire_types.raw.json").Replace(SampleTaskId, id, StringComparison.Ordinal);

        // What machinery's producer sends (redis/lifecycle_wire_types.monitor.txt): SET PENDING … EX 900, then RPUSH.
        await db.StringSetAsync(id, Encoding.UTF8.GetBytes(pending), TimeSpan.FromSeconds(900));
        await db.ListRightPushAsync(t.Queue, Encoding.UTF8.GetBytes(message));
        RegisterWireTypes(t.Registry);
        await t.StartWorkerAsync();

        var final = await t.Client.GetResult(id).WaitAsync(Wait);
        Assert.Equal(TaskState.Success, final.State);
        var stored = Encoding.UTF8.GetString((byte[])(await db.StringGetAsync(id))!);
        Assert.Equal(expected, stored); // byte for byte, CreatedAt kept from machinery's PENDING record
        var ttl = await db.KeyTimeToLiveAsync(id);
        Assert.InRange(ttl!.Value, TimeSpan.FromMinutes(9), TimeSpan.FromMinutes(10));
        Assert.Equal(0, await db.ListLengthAsync(t.Queue));
        await db.KeyDeleteAsync(id);
    }

    [Fact]
    public async Task GoProducedTask_WithoutAPendingRecord_StillRunsAndGetsMachineryFields()
    {
        await using var t = await ConveyorTestContext.CreateAsync(factory);
        var db = (await factory.MultiplexerAsync()).GetDatabase();
        var id = "task_" + Guid.NewGuid();
        var message = GoMessage(id, t.Queue);
        await db.ListRightPushAsync(t.Queue, Encoding.UTF8.GetBytes(message));
        RegisterWireTypes(t.Registry);
        await t.StartWorkerAsync();

        await t.Client.GetResult(id).WaitAsync(Wait);
        var stored = Encoding.UTF8.GetString((byte[])(await db.StringGetAsync(id))!);
        Assert.Equal(PropertyNames(WireSamples.Redis("state_SUCCESS_wire_types.raw.json")), PropertyNames(stored));
        var sample = WireSamples.Redis("state_SUCCESS_wire_types.raw.json");
        Assert.Equal(Results(sample), Results(stored));
        await db.KeyDeleteAsync(id);
    }

    [Fact]
    public async Task PublishedTask_HasMachineryFieldsInMachineryOrder_AndPendingStateLikeMachinery()
    {
        await using var t = await ConveyorTestContext.CreateAsync(factory);
        var db = (await factory.MultiplexerAsync()).GetDatabase();
        var signature = new Signature(
            "wire_types",
            TaskArgument.String("héllo \"wörld\" <&>") with { Name = "s" },
            TaskArgument.Int64(9007199254740993),
            TaskArgument.Float64(3.25),
            TaskArgument.Bool(true),
            new TaskArgument("[]string", new[] { "a", "b c", string.Empty }));
        await t.Client.SendAsync(signature);

        var queued = Encoding.UTF8.GetString((byte[])(await db.ListGetByIndexAsync(t.Queue, 0))!);
        var sample = WireSamples.Redis("broker_task_wire_types.raw.json");
        Assert.Equal(PropertyNames(sample), PropertyNames(queued));

        // Every field but the id and the queue is machinery's, byte for byte.
        var normalized = queued.Replace(signature.Id, SampleTaskId, StringComparison.Ordinal)
            .Replace($"\"RoutingKey\":\"{t.Queue}\"", "\"RoutingKey\":\"machinery_wire\"", StringComparison.Ordinal);
        Assert.Equal(sample, normalized);

        var state = Encoding.UTF8.GetString((byte[])(await db.StringGetAsync(signature.Id))!);
        Assert.Equal(PropertyNames(WireSamples.Redis("state_PENDING_wire_types.raw.json")), PropertyNames(state));
        Assert.Contains("\"State\":\"PENDING\"", state, StringComparison.Ordinal);
        Assert.InRange((await db.KeyTimeToLiveAsync(signature.Id))!.Value, TimeSpan.FromMinutes(9), TimeSpan.FromMinutes(10));
        await db.KeyDeleteAsync(signature.Id);
    }

    [Fact]
    public async Task EtaTask_WaitsInDelayedTasks_WithUnixNanosecondScoreAndMachineryJson()
    {
        await using var t = await ConveyorTestContext.CreateAsync(factory);
        var db = (await factory.MultiplexerAsync()).GetDatabase();
        var eta = DateTimeOffset.UtcNow.AddHours(1);
        var signature = new Signature("add", TaskArgument.Int64(7), TaskArgument.Int64(8)) { Eta = eta };
        await t.Client.SendAsync(signature);

        var member = (await db.SortedSetRangeByScoreWithScoresAsync("delayed_tasks"))
            .Single(e => ((string)e.Element!).Contains(signature.Id, StringComparison.Ordinal));
        var expectedScore = (double)((eta.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) * 100);
        Assert.InRange(member.Score, expectedScore - 1024, expectedScore + 1024);
        var json = (string)member.Element!;
        Assert.Equal(PropertyNames(WireSamples.Redis("delayed_tasks_member_eta.raw.json")), PropertyNames(json));
        using var document = JsonDocument.Parse(json);
        Assert.Equal(t.Queue, document.RootElement.GetProperty("RoutingKey").GetString());
        Assert.Equal(eta, DateTimeOffset.Parse(document.RootElement.GetProperty("ETA").GetString()!, CultureInfo.InvariantCulture));
        Assert.Equal(1, (await t.Broker.GetQueueStatisticsAsync(t.Queue)).Delayed);

        Assert.Equal(1, await t.Broker.PurgeAsync(t.Queue));
        Assert.DoesNotContain(await db.SortedSetRangeByScoreAsync("delayed_tasks"), m => ((string)m!).Contains(signature.Id, StringComparison.Ordinal));
        await db.KeyDeleteAsync(signature.Id);
    }

    [Fact]
    public async Task GoDelayedMember_AddedWithRawZadd_IsMovedToItsQueueAndRuns()
    {
        await using var t = await ConveyorTestContext.CreateAsync(factory);
        var db = (await factory.MultiplexerAsync()).GetDatabase();
        var id = "task_" + Guid.NewGuid();
        var due = DateTimeOffset.UtcNow.AddMilliseconds(300);
        var member = WireSamples.Redis("delayed_tasks_member_eta.raw.json")
            .Replace("task_76adc34e-dad6-434c-bdb3-2e18789243dc", id, StringComparison.Ordinal)
            .Replace("\"RoutingKey\":\"machinery_wire\"", $"\"RoutingKey\":\"{t.Queue}\"", StringComparison.Ordinal);
        t.Registry.Register("add", (long a, long b) => a + b);
        await t.StartWorkerAsync();

        // As Go's redigo sends it: ZADD delayed_tasks <UnixNano as an integer> <json>.
        var score = ((due.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) * 100).ToString(CultureInfo.InvariantCulture);
        await db.ExecuteAsync("ZADD", "delayed_tasks", score, member);

        Assert.Equal(15L, await t.Client.GetResult(id).GetValueAsync<long>(Wait));
        Assert.True(DateTimeOffset.UtcNow >= due.AddMilliseconds(-50), "ran before its ETA");
        Assert.DoesNotContain(await db.SortedSetRangeByScoreAsync("delayed_tasks"), m => ((string)m!).Contains(id, StringComparison.Ordinal));
        await db.KeyDeleteAsync(id);
    }

    [Fact]
    public async Task Retry_IsRepublishedToDelayedTasks_WithDecrementedRetryCount()
    {
        await using var t = await ConveyorTestContext.CreateAsync(factory);
        var db = (await factory.MultiplexerAsync()).GetDatabase();
        t.Registry.Register("fail", string (string message) => throw new InvalidOperationException(message));
        await t.StartWorkerAsync(o => o.RetryPolicy = FibonacciRetryPolicy.Instance);

        var result = await t.Client.SendAsync(new Signature("fail", TaskArgument.String("retry me")) { RetryCount = 2 });
        RedisValue member = default;
        await ConveyorTestContext.EventuallyAsync(
            async () => !(member = (await db.SortedSetRangeByScoreAsync("delayed_tasks")).FirstOrDefault(m => ((string)m!).Contains(result.TaskId, StringComparison.Ordinal))).IsNull,
            "the retry waits in delayed_tasks");
        using var document = JsonDocument.Parse((string)member!);
        Assert.Equal(1, document.RootElement.GetProperty("RetryCount").GetInt32());
        Assert.Equal(PropertyNames(WireSamples.Redis("delayed_tasks_member_retry.raw.json")), PropertyNames((string)member!));
        var state = Encoding.UTF8.GetString((byte[])(await db.StringGetAsync(result.TaskId))!);
        Assert.Contains(state.Contains("\"State\":\"RETRY\"", StringComparison.Ordinal) ? "RETRY" : "PENDING", state, StringComparison.Ordinal);

        await t.Broker.PurgeAsync(t.Queue);
        await db.KeyDeleteAsync(result.TaskId);
    }

    private static List<string> PropertyNames(string json)
    {
        using var document = JsonDocument.Parse(json);
        return [.. document.RootElement.EnumerateObject().Select(p => p.Name)];
    }

    private static string Results(string stateJson)
    {
        using var document = JsonDocument.Parse(stateJson);
        return document.RootElement.GetProperty("Results").GetRawText();
    }
}
