using Conveyor.Redis;
using StackExchange.Redis;

namespace Conveyor.MixedFleet.Tests;

/// <summary>One Redis connection per test class, with machinery's layout and a delayed-task set of its own.</summary>
public sealed class RedisFleetFixture : IAsyncLifetime
{
    private ConnectionMultiplexer? _redis;

    public RedisConveyorOptions Options { get; } = new()
    {
        KeyPrefix = string.Empty, // machinery's keys exactly
        DelayedTasksKey = "delayed_tasks_mixed_" + Guid.NewGuid().ToString("N")[..8], // machinery's DelayedTasksKey setting, so parallel classes do not share it
        VisibilityTimeout = TimeSpan.FromSeconds(5),
        HeartbeatInterval = TimeSpan.FromMilliseconds(500),
        DelayedPollInterval = TimeSpan.FromMilliseconds(50),
        ResultTtl = TimeSpan.FromMinutes(10),
    };

    public IConnectionMultiplexer Redis => _redis ?? throw new InvalidOperationException("not connected");

    public async Task InitializeAsync() => _redis = await RedisTestServer.ConnectAsync("conveyor-mixed-fleet");

    public async Task DisposeAsync()
    {
        if (_redis is not null)
        {
            await _redis.GetDatabase().KeyDeleteAsync(Options.DelayedTasksKey);
            await _redis.DisposeAsync();
        }
    }

    internal Fleet CreateFleet() =>
        Fleet.Create(Redis, Options, new RedisBroker(Redis, Options), new MachineryRedisBroker(Redis, Options.DelayedTasksKey));
}

/// <summary>
/// Go machinery workers (the peer) and Conveyor workers on one Redis broker and backend: every workflow completes
/// exactly once whichever side runs each step.
/// </summary>
public sealed class RedisMixedFleetTests(RedisFleetFixture fixture) : IClassFixture<RedisFleetFixture>
{
    public enum Split
    {
        /// <summary>Every member on Conveyor workers.</summary>
        AllConveyor,

        /// <summary>Every member on machinery workers.</summary>
        AllMachinery,

        /// <summary>Even members on Conveyor, odd on machinery, both sides running at once.</summary>
        Alternate,

        /// <summary>Alternate members; machinery runs its members first, then Conveyor runs the last ones.</summary>
        LastOnConveyor,

        /// <summary>Alternate members; Conveyor runs its members first, then machinery runs the last ones.</summary>
        LastOnMachinery,
    }

    public static TheoryData<int, Split> Chords()
    {
        var data = new TheoryData<int, Split>();
        foreach (var size in new[] { 10, 1000 })
        {
            foreach (var split in Enum.GetValues<Split>())
            {
                data.Add(size, split);
            }
        }

        return data;
    }

    private static Side SideOf(Split split, int member) => split switch
    {
        Split.AllConveyor => Side.Conveyor,
        Split.AllMachinery => Side.Machinery,
        _ => member % 2 == 0 ? Side.Conveyor : Side.Machinery,
    };

    /// <summary>Starts the two sides in the order the split asks for; the members of the first side finish first.</summary>
    internal static async Task RunSidesAsync(Fleet fleet, Split split, IReadOnlyList<string> conveyorMembers, IReadOnlyList<string> machineryMembers)
    {
        switch (split)
        {
            case Split.LastOnConveyor:
                fleet.StartMachinery();
                await fleet.SettleAsync(machineryMembers);
                await fleet.StartConveyorAsync();
                break;
            case Split.LastOnMachinery:
                await fleet.StartConveyorAsync();
                await fleet.SettleAsync(conveyorMembers);
                fleet.StartMachinery();
                break;
            default:
                await fleet.StartConveyorAsync();
                fleet.StartMachinery();
                break;
        }
    }

    [Theory]
    [MemberData(nameof(Chords))]
    public async Task Chord_AnySplitOfMembers_RunsTheCallbackExactlyOnce_WithResultsInMemberOrder(int size, Split split)
    {
        await using var fleet = fixture.CreateFleet();
        var members = Enumerable.Range(0, size).Select(i => new Signature("add", TaskArgument.Int64(i), TaskArgument.Int64(1000)) { RoutingKey = fleet.QueueOf(SideOf(split, i)) }).ToList();
        var callback = new Signature("sum") { RoutingKey = fleet.CallbackQueue };
        var chord = await fleet.Client.SendChordAsync(new Chord(new TaskGroup(members), callback));
        var ids = members.Select(m => m.Id).ToList();
        var conveyorMembers = ids.Where((_, i) => SideOf(split, i) == Side.Conveyor).ToList();
        var machineryMembers = ids.Where((_, i) => SideOf(split, i) == Side.Machinery).ToList();

        await RunSidesAsync(fleet, split, conveyorMembers, machineryMembers);
        await fleet.SettleAsync(ids);

        var callbacks = await fleet.PublishedToAsync(fleet.CallbackQueue);
        var published = Assert.Single(callbacks);
        Assert.Equal(callback.Id, published.Id);
        Assert.Equal(Enumerable.Range(0, size).Select(i => (long)i + 1000), published.Args.Select(a => (long)a.Value!));
        Assert.Empty(fleet.Peer.Errors);
        Assert.Equal(conveyorMembers.Order(), fleet.ConveyorRuns.Select(r => r.TaskId).Order());
        Assert.Equal(machineryMembers.Order(), fleet.Peer.Runs.Select(r => r.TaskId).Order());
        Assert.True((await fleet.Backend.GetGroupMetaAsync(chord.Group.GroupId))!.ChordTriggered);
    }

    [Fact]
    public async Task Chord_SentByAMachineryProducer_OnAMixedFleet_RunsTheCallbackOnce()
    {
        await using var fleet = fixture.CreateFleet();
        var members = Enumerable.Range(0, 50).Select(i => new Signature("multiply", TaskArgument.Int64(i), TaskArgument.Int64(3)) { RoutingKey = fleet.QueueOf(i % 3 == 0 ? Side.Machinery : Side.Conveyor) }).ToList();
        var callback = new Signature("sum") { RoutingKey = fleet.CallbackQueue };
        await fleet.Peer.SendChordAsync(members, callback);

        await fleet.StartConveyorAsync();
        fleet.StartMachinery();
        await fleet.SettleAsync(members.Select(m => m.Id));

        var published = Assert.Single(await fleet.PublishedToAsync(fleet.CallbackQueue));
        Assert.Equal(Enumerable.Range(0, 50).Select(i => (long)i * 3), published.Args.Select(a => (long)a.Value!));
    }

    [Fact]
    public async Task Chord_AMemberFailsOnMachinery_AndConveyorRunsTheLast_RunsTheCallbacksOnErrorOnce()
    {
        await using var fleet = fixture.CreateFleet();
        var members = new List<Signature>
        {
            new("fail", TaskArgument.String("boom")) { RoutingKey = fleet.MachineryQueue },
            new("add", TaskArgument.Int64(1), TaskArgument.Int64(2)) { RoutingKey = fleet.MachineryQueue },
            new("add", TaskArgument.Int64(3), TaskArgument.Int64(4)) { RoutingKey = fleet.ConveyorQueue },
        };
        var callback = new Signature("sum") { RoutingKey = fleet.CallbackQueue };
        callback.OnError.Add(new Signature("record") { RoutingKey = fleet.ErrorQueue });
        await fleet.Client.SendChordAsync(new Chord(new TaskGroup(members), callback));

        fleet.StartMachinery();
        await fleet.SettleAsync(members.Take(2).Select(m => m.Id));
        await fleet.StartConveyorAsync();
        await fleet.SettleAsync(members.Select(m => m.Id));

        Assert.Empty(await fleet.PublishedToAsync(fleet.CallbackQueue));
        var onError = Assert.Single(await fleet.PublishedToAsync(fleet.ErrorQueue));
        Assert.Contains("boom", (string)onError.Args[0].Value!, StringComparison.Ordinal);
        Assert.Contains(members[0].Id, (string)onError.Args[0].Value!, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Chord_AMemberFailsOnConveyor_AndMachineryRunsTheLast_RunsOnErrorOnce_AndNoCallback()
    {
        await using var fleet = fixture.CreateFleet();
        var members = new List<Signature>
        {
            new("fail", TaskArgument.String("broken")) { RoutingKey = fleet.ConveyorQueue },
            new("add", TaskArgument.Int64(1), TaskArgument.Int64(2)) { RoutingKey = fleet.MachineryQueue },
        };
        var callback = new Signature("sum") { RoutingKey = fleet.CallbackQueue };
        callback.OnError.Add(new Signature("record") { RoutingKey = fleet.ErrorQueue });
        await fleet.Client.SendChordAsync(new Chord(new TaskGroup(members), callback));

        await fleet.StartConveyorAsync();
        await fleet.SettleAsync([members[0].Id]);
        fleet.StartMachinery();
        await fleet.SettleAsync(members.Select(m => m.Id));

        Assert.Empty(await fleet.PublishedToAsync(fleet.CallbackQueue));
        var onError = Assert.Single(await fleet.PublishedToAsync(fleet.ErrorQueue));
        Assert.Contains("broken", (string)onError.Args[0].Value!, StringComparison.Ordinal);
        Assert.Empty(fleet.Peer.Errors);
    }

    [Fact]
    public async Task Chord_AMemberFailsOnMachinery_AndMachineryRunsTheLast_IsDroppedAsMachineryDoes()
    {
        await using var fleet = fixture.CreateFleet();
        var members = new List<Signature>
        {
            new("add", TaskArgument.Int64(1), TaskArgument.Int64(2)) { RoutingKey = fleet.ConveyorQueue },
            new("fail", TaskArgument.String("boom")) { RoutingKey = fleet.MachineryQueue },
            new("add", TaskArgument.Int64(3), TaskArgument.Int64(4)) { RoutingKey = fleet.MachineryQueue },
        };
        var callback = new Signature("sum") { RoutingKey = fleet.CallbackQueue };
        callback.OnError.Add(new Signature("record") { RoutingKey = fleet.ErrorQueue });
        var chord = await fleet.Client.SendChordAsync(new Chord(new TaskGroup(members), callback));

        await fleet.StartConveyorAsync();
        await fleet.SettleAsync([members[0].Id]);

        // One at a time, in queue order, so that the add (not the failure) is the last member to finish: machinery
        // checks the chord only after a success. With four at once either could end last.
        fleet.StartMachinery(concurrency: 1);
        await fleet.SettleAsync(members.Select(m => m.Id));

        // machinery's worker claims the chord (ChordTriggered) and then drops it: no callback and no OnError.
        Assert.Empty(await fleet.PublishedToAsync(fleet.CallbackQueue));
        Assert.Empty(await fleet.PublishedToAsync(fleet.ErrorQueue));
        Assert.True((await fleet.Backend.GetGroupMetaAsync(chord.Group.GroupId))!.ChordTriggered);
    }

    [Fact]
    public async Task Group_WithoutACallback_SplitOverBothSides_ResultsReadInMemberOrder()
    {
        await using var fleet = fixture.CreateFleet();
        var members = Enumerable.Range(0, 20).Select(i => new Signature("add", TaskArgument.Int64(i), TaskArgument.Int64(i)) { RoutingKey = fleet.QueueOf(i % 2 == 0 ? Side.Conveyor : Side.Machinery) }).ToList();
        var group = await fleet.Client.SendGroupAsync(new TaskGroup(members));

        await fleet.StartConveyorAsync();
        fleet.StartMachinery();
        var results = await group.GetAsync(Fleet.Timeout);

        Assert.Equal(Enumerable.Range(0, 20).Select(i => (long)(2 * i)), results.Select(r => (long)r[0].Value!));
        Assert.Equal(10, fleet.Peer.Runs.Count);
    }

    [Fact]
    public async Task Chain_StepsAlternatingBetweenSides_AppendsEachResultToTheNext()
    {
        await using var fleet = fixture.CreateFleet();
        var chain = new Chain(
            new Signature("add", TaskArgument.Int64(1), TaskArgument.Int64(2)) { RoutingKey = fleet.MachineryQueue },
            new Signature("multiply", TaskArgument.Int64(10)) { RoutingKey = fleet.ConveyorQueue },
            new Signature("add", TaskArgument.Int64(100)) { RoutingKey = fleet.MachineryQueue },
            new Signature("multiply", TaskArgument.Int64(2)) { RoutingKey = fleet.ConveyorQueue });
        var result = await fleet.Client.SendChainAsync(chain);

        await fleet.StartConveyorAsync();
        fleet.StartMachinery();

        Assert.Equal(260L, (await result.GetAsync(Fleet.Timeout))[0].Value);
        Assert.Equal(["add", "add"], fleet.Peer.Runs.Select(r => r.Name));
        Assert.Equal(["multiply", "multiply"], fleet.ConveyorRuns.Select(r => r.Name));
    }

    [Fact]
    public async Task Callbacks_OnSuccessAndOnError_CrossFromEachSideToTheOther()
    {
        await using var fleet = fixture.CreateFleet();
        var onMachinery = new Signature("add", TaskArgument.Int64(20), TaskArgument.Int64(22)) { RoutingKey = fleet.MachineryQueue };
        var successOnConveyor = new Signature("multiply", TaskArgument.Int64(2)) { RoutingKey = fleet.ConveyorQueue };
        onMachinery.OnSuccess.Add(successOnConveyor);
        var failingOnConveyor = new Signature("fail", TaskArgument.String("no luck")) { RoutingKey = fleet.ConveyorQueue };
        var errorOnMachinery = new Signature("record", TaskArgument.String("after")) { RoutingKey = fleet.MachineryQueue };
        failingOnConveyor.OnError.Add(errorOnMachinery);

        await fleet.Client.SendAsync(onMachinery);
        await fleet.Client.SendAsync(failingOnConveyor);
        await fleet.StartConveyorAsync();
        fleet.StartMachinery();

        Assert.Equal(84L, await fleet.Client.GetResult(successOnConveyor.Id).GetValueAsync<long>(Fleet.Timeout));
        Assert.Equal("no luck|after", await fleet.Client.GetResult(errorOnMachinery.Id).GetValueAsync<string>(Fleet.Timeout));
    }

    [Fact]
    public async Task Retries_MachineryRetryPickedUpByConveyor_AndConveyorRetryByMachinery_EndInFailure()
    {
        await using var fleet = fixture.CreateFleet();
        var task = new Signature("fail", TaskArgument.String("always")) { RoutingKey = fleet.MachineryQueue, RetryCount = 2 };
        await fleet.Client.SendAsync(task);
        var db = fleet.Redis.GetDatabase();

        // 1: machinery runs it, writes RETRY, and ZADDs it to delayed_tasks with an ETA 1 s on (FibonacciNext(0)).
        fleet.StartMachinery();
        await WaitUntilAsync(() => fleet.Peer.Runs.Count == 1 && db.SortedSetLength(fixture.Options.DelayedTasksKey) > 0 && fleet.Peer.InFlight == 0);
        await fleet.StopMachineryAsync();

        // 2: a Conveyor worker consuming the same queue moves the due entry, runs it, retries it the same way.
        var conveyorOnTheSameQueue = new ConveyorWorker(fleet.Client, fleet.Registry, new WorkerOptions { Queue = fleet.MachineryQueue, Concurrency = 2 });
        await conveyorOnTheSameQueue.StartAsync(CancellationToken.None);
        await WaitUntilAsync(() => fleet.ConveyorRuns.Count == 1 && db.SortedSetLength(fixture.Options.DelayedTasksKey) > 0 && conveyorOnTheSameQueue.InFlight == 0);
        await conveyorOnTheSameQueue.StopAsync(CancellationToken.None);
        conveyorOnTheSameQueue.Dispose();

        // 3: machinery takes the Conveyor retry from delayed_tasks and fails it for good.
        fleet.StartMachinery();
        var final = await fleet.Client.GetResult(task.Id).WaitAsync(Fleet.Timeout);

        Assert.Equal(TaskState.Failure, final.State);
        Assert.Equal("always", final.Error);
        Assert.Equal(2, fleet.Peer.Runs.Count);
        Assert.Single(fleet.ConveyorRuns);
        Assert.Empty(fleet.Peer.Errors);
    }

    [Fact]
    public async Task Eta_TasksDelayedByEachSide_RunOnTheOther()
    {
        await using var fleet = fixture.CreateFleet();
        var fromConveyor = new Signature("add", TaskArgument.Int64(1), TaskArgument.Int64(1)) { RoutingKey = fleet.MachineryQueue, Eta = DateTimeOffset.UtcNow.AddMilliseconds(300) };
        var fromMachinery = new Signature("add", TaskArgument.Int64(2), TaskArgument.Int64(2)) { RoutingKey = fleet.ConveyorQueue, Eta = DateTimeOffset.UtcNow.AddMilliseconds(300) };
        await fleet.Client.SendAsync(fromConveyor);
        await fleet.Peer.SendTaskAsync(fromMachinery);
        Assert.Equal(2, await fleet.Redis.GetDatabase().SortedSetLengthAsync(fixture.Options.DelayedTasksKey));

        await fleet.StartConveyorAsync();
        fleet.StartMachinery();

        Assert.Equal(2L, await fleet.Client.GetResult(fromConveyor.Id).GetValueAsync<long>(Fleet.Timeout));
        Assert.Equal(4L, await fleet.Client.GetResult(fromMachinery.Id).GetValueAsync<long>(Fleet.Timeout));
        Assert.Equal([fromConveyor.Id], fleet.Peer.Runs.Select(r => r.TaskId));
        Assert.Equal([fromMachinery.Id], fleet.ConveyorRuns.Select(r => r.TaskId));
    }

    internal static async Task WaitUntilAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + Fleet.Timeout;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException("the condition did not hold within " + Fleet.Timeout);
            }

            await Task.Delay(20);
        }
    }
}
