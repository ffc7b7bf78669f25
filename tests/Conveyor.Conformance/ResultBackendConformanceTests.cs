using Microsoft.Extensions.Time.Testing;

namespace Conveyor.Conformance;

/// <summary>What every result backend must do: machinery's states, batch reads, group metas and the O(1)
/// idempotent chord counter.</summary>
/// <typeparam name="TFactory">The provider's factory.</typeparam>
public abstract class ResultBackendConformanceTests<TFactory> : IClassFixture<TFactory>
    where TFactory : class, IConveyorProviderFactory
{
    /// <summary>Creates the suite.</summary>
    /// <param name="factory">The provider's factory (a class fixture).</param>
    protected ResultBackendConformanceTests(TFactory factory) => Factory = factory;

    /// <summary>The provider's factory.</summary>
    protected TFactory Factory { get; }

    private static TaskStateRecord State(string id, TaskState state, DateTimeOffset createdAt, IReadOnlyList<TaskResult>? results = null, string error = "") =>
        new() { TaskId = id, TaskName = "t", State = state, CreatedAt = createdAt, Results = results, Error = error };

    [Fact]
    public async Task SetState_LaterStatesKeepTheFirstCreatedAt_AndResultsRoundTrip()
    {
        await using var backend = await Factory.CreateBackendAsync();
        var id = TaskIds.NewTaskId();
        var created = new DateTimeOffset(2026, 1, 2, 3, 4, 5, TimeSpan.Zero).AddTicks(1234567);
        await backend.SetStateAsync(State(id, TaskState.Pending, created));
        await backend.SetStateAsync(State(id, TaskState.Success, created.AddMinutes(5), [new TaskResult("int64", long.MaxValue), new TaskResult("[]string", new[] { "a", "<&>" })]));

        var stored = await backend.GetStateAsync(id);
        Assert.NotNull(stored);
        Assert.Equal(TaskState.Success, stored.State);
        Assert.Equal(created, stored.CreatedAt);
        Assert.Equal(long.MaxValue, stored.Results![0].Value);
        Assert.Equal(["a", "<&>"], (string[])stored.Results[1].Value!);
    }

    [Fact]
    public async Task SetStates_OneTasksStatesInOrder_TheLastWins_AndKeepsTheFirstCreatedAt()
    {
        await using var backend = await Factory.CreateBackendAsync();
        var id = TaskIds.NewTaskId();
        var other = TaskIds.NewTaskId();
        var created = new DateTimeOffset(2026, 3, 4, 5, 6, 7, TimeSpan.Zero);
        await backend.SetStateAsync(State(id, TaskState.Pending, created));

        await backend.SetStatesAsync([State(id, TaskState.Received, created.AddSeconds(1)), State(other, TaskState.Received, created), State(id, TaskState.Started, created.AddSeconds(2))]);

        var stored = await backend.GetStateAsync(id);
        Assert.Equal(TaskState.Started, stored!.State);
        Assert.Equal(created, stored.CreatedAt);
        Assert.Equal(TaskState.Received, (await backend.GetStateAsync(other))!.State);
        await backend.SetStatesAsync([]);
    }

    [Fact]
    public async Task GetState_Unknown_ReturnsNull()
    {
        await using var backend = await Factory.CreateBackendAsync();
        Assert.Null(await backend.GetStateAsync(TaskIds.NewTaskId()));
    }

    [Fact]
    public async Task GetStates_ReturnsEachInTheOrderAsked_NullForUnknown()
    {
        await using var backend = await Factory.CreateBackendAsync();
        var ids = Enumerable.Range(0, 5).Select(_ => TaskIds.NewTaskId()).ToList();
        for (var i = 0; i < ids.Count; i++)
        {
            await backend.SetStateAsync(State(ids[i], TaskState.Failure, DateTimeOffset.UnixEpoch, error: $"e{i}"));
        }

        var unknown = TaskIds.NewTaskId();
        var states = await backend.GetStatesAsync([ids[3], unknown, ids[0], ids[4]]);
        Assert.Equal(["e3", null, "e0", "e4"], states.Select(s => s?.Error));
    }

    [Fact]
    public async Task GroupMeta_RoundTripsTheMembersInOrder()
    {
        await using var backend = await Factory.CreateBackendAsync();
        var groupId = TaskIds.NewGroupId();
        var members = Enumerable.Range(0, 50).Select(_ => TaskIds.NewTaskId()).ToList();
        await backend.InitGroupAsync(new GroupMeta { GroupId = groupId, TaskIds = members, CreatedAt = DateTimeOffset.UnixEpoch });

        var meta = await backend.GetGroupMetaAsync(groupId);
        Assert.Equal(members, meta!.TaskIds);
        Assert.False(meta.ChordTriggered);
        Assert.Null(await backend.GetGroupMetaAsync(TaskIds.NewGroupId()));
    }

    [Fact]
    public async Task CompleteGroupMember_CountsEachMemberOnce_AndTracksFailuresAndTheTrigger()
    {
        await using var backend = await Factory.CreateBackendAsync();
        var groupId = TaskIds.NewGroupId();
        var a = TaskIds.NewTaskId();
        var b = TaskIds.NewTaskId();
        await backend.InitGroupAsync(new GroupMeta { GroupId = groupId, TaskIds = [a, b], CreatedAt = DateTimeOffset.UnixEpoch });

        Assert.Equal(new GroupCompletion(1, 0, true, false), await backend.CompleteGroupMemberAsync(groupId, a, succeeded: true));
        Assert.Equal(new GroupCompletion(1, 0, false, false), await backend.CompleteGroupMemberAsync(groupId, a, succeeded: true));
        Assert.Equal(new GroupCompletion(2, 1, true, false), await backend.CompleteGroupMemberAsync(groupId, b, succeeded: false));
        await backend.MarkChordTriggeredAsync(groupId);
        Assert.Equal(new GroupCompletion(2, 1, false, true), await backend.CompleteGroupMemberAsync(groupId, b, succeeded: false));
        Assert.True((await backend.GetGroupMetaAsync(groupId))!.ChordTriggered);
    }

    [Fact]
    public async Task GetGroupMemberTraceParents_ReturnsWhatEachMemberStoredOnce_CappedAndSkippingMembersWithout()
    {
        await using var backend = await Factory.CreateBackendAsync();
        var groupId = TaskIds.NewGroupId();
        var members = Enumerable.Range(0, 5).Select(_ => TaskIds.NewTaskId()).ToList();
        await backend.InitGroupAsync(new GroupMeta { GroupId = groupId, TaskIds = members, CreatedAt = DateTimeOffset.UnixEpoch });
        var traceParents = members.Select(_ => $"00-{Guid.NewGuid():N}-{Guid.NewGuid().ToString("N")[..16]}-01").ToList();
        Assert.Empty(await backend.GetGroupMemberTraceParentsAsync(groupId, 10));

        for (var i = 0; i < 4; i++)
        {
            await backend.CompleteGroupMemberAsync(groupId, members[i], succeeded: i != 3, traceParents[i]);
        }

        // A redelivered member keeps the context of its first completion; a member without one (a Go worker) adds none.
        await backend.CompleteGroupMemberAsync(groupId, members[0], succeeded: true, "00-" + new string('1', 32) + "-" + new string('2', 16) + "-01");
        await backend.CompleteGroupMemberAsync(groupId, members[4], succeeded: true, traceParent: null);

        Assert.Equal(traceParents.Take(4).Order(), (await backend.GetGroupMemberTraceParentsAsync(groupId, 10)).Order());
        var capped = await backend.GetGroupMemberTraceParentsAsync(groupId, 2);
        Assert.Equal(2, capped.Count);
        Assert.Equal(2, capped.Distinct().Count());
        Assert.All(capped, t => Assert.Contains(t, traceParents.Take(4)));
        Assert.Empty(await backend.GetGroupMemberTraceParentsAsync(groupId, 0));
        Assert.Empty(await backend.GetGroupMemberTraceParentsAsync(TaskIds.NewGroupId(), 10));

        await backend.DeleteGroupAsync(groupId);
        Assert.Empty(await backend.GetGroupMemberTraceParentsAsync(groupId, 10));
    }

    [Fact]
    public async Task CompleteGroupMember_ConcurrentMembers_ExactlyOneSeesTheGroupComplete()
    {
        await using var backend = await Factory.CreateBackendAsync();
        var groupId = TaskIds.NewGroupId();
        var members = Enumerable.Range(0, 200).Select(_ => TaskIds.NewTaskId()).ToList();
        await backend.InitGroupAsync(new GroupMeta { GroupId = groupId, TaskIds = members, CreatedAt = DateTimeOffset.UnixEpoch });

        var completions = await Task.WhenAll(members.Select(id => Task.Run(async () => await backend.CompleteGroupMemberAsync(groupId, id, succeeded: true))));

        Assert.Single(completions, c => c.Completed == members.Count && c.IsFirstCompletion);
        Assert.Equal(Enumerable.Range(1, members.Count), completions.Select(c => c.Completed).Order());
    }

    [Fact]
    public async Task WaitForChange_WithoutAChange_LastsTheWholeMaxWait_AndAWrittenStateEndsItEarly()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 12, 1, 9, 0, 0, TimeSpan.Zero));
        var onClock = await Factory.CreateBackendAsync(clock);
        await using var backend = onClock ?? await Factory.CreateBackendAsync();
        IWaitClock waitClock = onClock is null ? new RealClock() : new MovedClock(clock);
        var id = TaskIds.NewTaskId();

        // No change: the wait lasts maxWait. A backend may end the first wait on a task once without a change, when
        // it begins to listen for it (Redis: its subscription turned active); its caller reads the state and waits
        // again, and that wait must last.
        var early = new List<TimeSpan>();
        while (true)
        {
            var waited = await waitClock.MeasureAsync(ct => backend.WaitForChangeAsync(id, waitClock.MaxWait, ct).AsTask());
            if (waited >= waitClock.MaxWait)
            {
                break;
            }

            early.Add(waited);
            Assert.True(early.Count < 2, $"{Factory.Name}: WaitForChangeAsync({waitClock.MaxWait}) without a change ended early twice in a row, after {string.Join(" and ", early)}");
        }

        // A change: a backend that is notified ends the wait soon after the write, while the fake clock stands
        // still (so nothing but the write can end it); one that is not (its caller polls) still waits maxWait.
        var written = State(id, TaskState.Success, DateTimeOffset.UnixEpoch, []);
        if (backend.Capabilities.HasFlag(ResultBackendCapabilities.ChangeNotifications))
        {
            var waiting = backend.WaitForChangeAsync(id, TimeSpan.FromHours(1)).AsTask();
            await backend.SetStateAsync(written);
            await waiting.WaitAsync(TimeSpan.FromSeconds(10));
        }
        else
        {
            var waited = await waitClock.MeasureAsync(async ct =>
            {
                var waiting = backend.WaitForChangeAsync(id, waitClock.MaxWait, ct).AsTask();
                await backend.SetStateAsync(written, ct);
                await waiting;
            });
            Assert.True(waited >= waitClock.MaxWait, $"{Factory.Name} declares no change notifications, so its wait lasts maxWait; it ended after {waited}");
        }

        Assert.Equal(TaskState.Success, (await backend.GetStateAsync(id))!.State);
    }

    [Fact]
    public async Task Delete_RemovesStateAndGroup()
    {
        await using var backend = await Factory.CreateBackendAsync();
        var id = TaskIds.NewTaskId();
        var groupId = TaskIds.NewGroupId();
        await backend.SetStateAsync(State(id, TaskState.Pending, DateTimeOffset.UnixEpoch));
        await backend.InitGroupAsync(new GroupMeta { GroupId = groupId, TaskIds = [id], CreatedAt = DateTimeOffset.UnixEpoch });

        await backend.DeleteStateAsync(id);
        await backend.DeleteGroupAsync(groupId);

        Assert.Null(await backend.GetStateAsync(id));
        Assert.Null(await backend.GetGroupMetaAsync(groupId));
    }
}

/// <summary>The clock a result backend's waits run on, as the wait test moves or watches it.</summary>
internal interface IWaitClock
{
    /// <summary>The longest wait the test asks for.</summary>
    TimeSpan MaxWait { get; }

    /// <summary>Starts a wait and returns how much time passed on the clock before it ended.</summary>
    Task<TimeSpan> MeasureAsync(Func<CancellationToken, Task> wait);
}

/// <summary>
/// A fake clock the test moves in tenths of maxWait, pausing after each step until the wait ends or 10 ms of real
/// time pass: a wait that ends at its deadline is seen at or after it, so a correct backend never measures short
/// however loaded the machine is. A wait still running after twice maxWait fails the test.
/// </summary>
internal sealed class MovedClock(FakeTimeProvider clock) : IWaitClock
{
    public TimeSpan MaxWait { get; } = TimeSpan.FromSeconds(10);

    public async Task<TimeSpan> MeasureAsync(Func<CancellationToken, Task> wait)
    {
        var start = clock.GetUtcNow();
        using var abandon = new CancellationTokenSource();
        var running = wait(abandon.Token);
        while (await Task.WhenAny(running, Task.Delay(10)) != running)
        {
            if (clock.GetUtcNow() - start > 2 * MaxWait)
            {
                await abandon.CancelAsync();
                Assert.Fail($"a wait of at most {MaxWait} was still running after {clock.GetUtcNow() - start} on the clock");
            }

            clock.Advance(MaxWait / 10);
        }

        await running;
        return clock.GetUtcNow() - start;
    }
}

/// <summary>The system clock, for a backend that cannot take a fake one: short waits, measured.</summary>
internal sealed class RealClock : IWaitClock
{
    public TimeSpan MaxWait { get; } = TimeSpan.FromMilliseconds(300);

    public async Task<TimeSpan> MeasureAsync(Func<CancellationToken, Task> wait)
    {
        var stopwatch = System.Diagnostics.Stopwatch.StartNew();
        await wait(CancellationToken.None).WaitAsync(MaxWait + ConveyorTestContext.Timeout);
        // Timers round to the millisecond; allow for it.
        return stopwatch.Elapsed + TimeSpan.FromMilliseconds(2);
    }
}
