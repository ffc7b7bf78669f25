using System.Collections.Concurrent;

namespace Conveyor.Conformance;

/// <summary>
/// The whole management API on providers whose store is the broker too (in-memory, SQLite, Redis): listings by
/// state with pages, a task's detail and search, delete, run now, revoke of pending tasks, of a handler that ignores
/// its token and of a chord, debounce — plus everything of <see cref="WorkerControlConformanceTests{TFactory}"/>.
/// </summary>
/// <typeparam name="TFactory">The provider's factory.</typeparam>
public abstract partial class ManagementConformanceTests<TFactory> : WorkerControlConformanceTests<TFactory>
    where TFactory : class, IConveyorProviderFactory
{
    private static readonly TimeSpan Wait = ConveyorTestContext.Timeout;

    /// <summary>Creates the suite.</summary>
    /// <param name="factory">The provider's factory (a class fixture).</param>
    protected ManagementConformanceTests(TFactory factory)
        : base(factory)
    {
    }

    [Fact]
    public async Task ListTasks_Pending_PagesThroughEveryTaskOnceWithNameAndArgs()
    {
        await using var m = await CreateAsync();
        var sent = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            sent.Add((await m.T.Client.SendAsync(new Signature("add", TaskArgument.Int64(i), TaskArgument.Int64(10)))).TaskId);
        }

        await m.T.Client.SendAsync(new Signature("other"));

        var seen = new List<TaskSummary>();
        string? after = null;
        var pages = 0;
        do
        {
            var page = await m.Api.ListTasksAsync(new TaskQuery { State = ManagedTaskState.Pending, Name = "add", Limit = 2, After = after });
            Assert.True(page.Tasks.Count <= 2);
            seen.AddRange(page.Tasks);
            after = page.Next;
            pages++;
        }
        while (after is not null && pages < 10);

        Assert.Equal(sent, seen.Select(s => s.Id));
        Assert.All(seen, s => Assert.Equal("add", s.Name));
        Assert.All(seen, s => Assert.Equal(ManagedTaskState.Pending, s.State));
        Assert.Equal(m.T.Queue, seen[0].Queue);
        Assert.Equal([TaskArgument.Int64(3), TaskArgument.Int64(10)], seen[3].Args);
        Assert.Equal(6, (await m.Api.ListTasksAsync(new TaskQuery { State = ManagedTaskState.Pending, Limit = 100 })).Tasks.Count);
    }

    [Fact]
    public async Task ListTasks_Scheduled_ListsEtaTasksWithTheirEtaAndNotAsPending()
    {
        await using var m = await CreateAsync();
        var eta = DateTimeOffset.UtcNow.AddMinutes(1);
        var later = await m.T.Client.SendAsync(new Signature("add", TaskArgument.Int64(1), TaskArgument.Int64(2)) { Eta = eta });
        var now = await m.T.Client.SendAsync(new Signature("add", TaskArgument.Int64(3), TaskArgument.Int64(4)));

        var scheduled = (await m.Api.ListTasksAsync(new TaskQuery { State = ManagedTaskState.Scheduled })).Tasks;
        var pending = (await m.Api.ListTasksAsync(new TaskQuery { State = ManagedTaskState.Pending })).Tasks;

        var task = Assert.Single(scheduled);
        Assert.Equal(later.TaskId, task.Id);
        Assert.NotNull(task.Eta);
        Assert.InRange((task.Eta!.Value - eta).Duration(), TimeSpan.Zero, TimeSpan.FromMilliseconds(5));
        Assert.Equal([now.TaskId], pending.Select(p => p.Id));
    }

    [Fact]
    public async Task ListTasks_ActiveAndFinished_ShowTheHoldingWorkerThenSucceededAndFailed()
    {
        await using var m = await CreateAsync();
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        m.T.Registry.Register("hold", async () =>
        {
            entered.TrySetResult();
            await gate.Task;
        });
        m.T.Registry.Register("boom", string () => throw new InvalidOperationException("boom"));
        var worker = await m.StartWorkerAsync();

        var held = await m.T.Client.SendAsync(new Signature("hold"));
        await entered.Task.WaitAsync(Wait);
        var active = Assert.Single((await m.Api.ListTasksAsync(new TaskQuery { State = ManagedTaskState.Active })).Tasks);
        Assert.Equal(held.TaskId, active.Id);
        Assert.False(string.IsNullOrEmpty(active.Worker));
        Assert.Contains(worker.Name, active.Worker, StringComparison.Ordinal);

        gate.SetResult();
        await held.WaitAsync(Wait);
        var failed = await m.T.Client.SendAsync(new Signature("boom"));
        await failed.WaitAsync(Wait);

        await ConveyorTestContext.EventuallyAsync(
            async () => (await ListAllAsync(m.Api, new TaskQuery { State = ManagedTaskState.Succeeded, Name = "hold", Limit = 1000 })).Any(t => t.Id == held.TaskId),
            "the succeeded task is listed");
        var failures = await ListAllAsync(m.Api, new TaskQuery { State = ManagedTaskState.Failed, Name = "boom", Limit = 1000 });
        var failure = Assert.Single(failures, t => t.Id == failed.TaskId);
        Assert.Equal("boom", failure.Error);
        Assert.DoesNotContain(await ListAllAsync(m.Api, new TaskQuery { State = ManagedTaskState.Failed, Name = "hold", Limit = 1000 }), t => t.Id == held.TaskId);
    }

    [Fact]
    public async Task GetTask_Pending_ReturnsSignatureStateAndMessage()
    {
        await using var m = await CreateAsync();
        var sent = await m.T.Client.SendAsync(new Signature("add", TaskArgument.Int64(7), TaskArgument.Int64(8)));

        var detail = await m.Api.GetTaskAsync(sent.TaskId);

        Assert.NotNull(detail);
        Assert.Equal(ManagedTaskState.Pending, detail.Status);
        Assert.Equal(TaskState.Pending, detail.State!.State);
        Assert.Equal("add", detail.Signature!.Name);
        Assert.Equal([TaskArgument.Int64(7), TaskArgument.Int64(8)], detail.Signature.Args);
        Assert.Equal(m.T.Queue, Assert.Single(detail.Messages).Queue);
        Assert.Null(await m.Api.GetTaskAsync("task_" + Guid.NewGuid()));
        Assert.Equal([sent.TaskId], (await m.Api.SearchAsync(sent.TaskId)).Select(s => s.Id));
        // By name: the queue's active, pending and scheduled tasks first, then finished ones (of any queue).
        var byName = await m.Api.SearchAsync("add");
        Assert.Equal(sent.TaskId, byName[0].Id);
        Assert.All(byName, s => Assert.Equal("add", s.Name));
    }

    [Fact]
    public async Task DeleteTask_Pending_RemovesItSoItNeverRuns()
    {
        await using var m = await CreateAsync();
        var ran = new ConcurrentBag<long>();
        m.T.Registry.Register("note", (long n) => ran.Add(n));
        var deleted = await m.T.Client.SendAsync(new Signature("note", TaskArgument.Int64(1)));
        var kept = await m.T.Client.SendAsync(new Signature("note", TaskArgument.Int64(2)));

        Assert.True(await m.Api.DeleteTaskAsync(deleted.TaskId));
        Assert.False(await m.Api.DeleteTaskAsync(deleted.TaskId));
        await m.StartWorkerAsync();
        await kept.WaitAsync(Wait);

        Assert.Equal([2L], ran);
        Assert.Null(await m.T.Backend.GetStateAsync(deleted.TaskId));
    }

    [Fact]
    public async Task RunNow_Scheduled_RunsAtOnceInsteadOfAtItsEta()
    {
        await using var m = await CreateAsync();
        m.T.Registry.Register("add", (long a, long b) => a + b);
        var result = await m.T.Client.SendAsync(new Signature("add", TaskArgument.Int64(1), TaskArgument.Int64(2)) { Eta = DateTimeOffset.UtcNow.AddHours(1) });
        await m.StartWorkerAsync();

        Assert.True(await m.Api.RunNowAsync(result.TaskId));

        Assert.Equal(3L, await result.GetValueAsync<long>(Wait));
        Assert.Empty((await m.Api.ListTasksAsync(new TaskQuery { State = ManagedTaskState.Scheduled })).Tasks);
    }

    [Fact]
    public async Task Revoke_Pending_NeverRunsAndEndsAsRevokedFailure()
    {
        await using var m = await CreateAsync();
        var ran = new ConcurrentBag<string>();
        m.T.Registry.Register("note", (TaskContext context) => ran.Add(context.TaskId));
        var revoked = await m.T.Client.SendAsync(new Signature("note"));
        var next = await m.T.Client.SendAsync(new Signature("note"));

        Assert.Equal([revoked.TaskId], await m.Api.RevokeAsync([revoked.TaskId], "not needed"));

        // A machinery producer waiting on it sees a final state at once.
        var final = await revoked.WaitAsync(Wait);
        Assert.Equal(TaskState.Failure, final.State);
        Assert.Equal("revoked: not needed", final.Error);
        Assert.True(final.IsRevoked());
        await m.StartWorkerAsync();
        await next.WaitAsync(Wait);
        Assert.Equal([next.TaskId], ran);
        Assert.Equal(ManagedTaskState.Revoked, (await m.Api.GetTaskAsync(revoked.TaskId))!.Status);
        Assert.Contains(await ListAllAsync(m.Api, new TaskQuery { State = ManagedTaskState.Revoked, Name = "note", Limit = 1000 }), t => t.Id == revoked.TaskId);
    }

    [Fact]
    public async Task Revoke_RunningHandlerIgnoresItsToken_IsAbandonedAndEndsRevoked()
    {
        await using var m = await CreateAsync();
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var never = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        m.T.Registry.Register("stubborn", async () =>
        {
            started.TrySetResult();
            await never.Task;
        });
        await m.StartWorkerAsync();
        var stubborn = await m.T.Client.SendAsync(new Signature("stubborn"));
        await started.Task.WaitAsync(Wait);

        await m.Api.RevokeAsync([stubborn.TaskId]);

        await ConveyorTestContext.EventuallyAsync(
            async () => (await m.Api.ListTasksAsync(new TaskQuery { State = ManagedTaskState.Active })).Tasks.Count == 0,
            "the abandoned task's message is settled");
        Assert.True((await stubborn.GetStateAsync())!.IsRevoked());
        never.SetResult();
    }

    [Fact]
    public async Task Revoke_Group_RevokesEveryMemberAndTheChordCallbackNeverRuns()
    {
        await using var m = await CreateAsync();
        var ran = new ConcurrentBag<string>();
        m.T.Registry.Register("add", (long a, long b) => { ran.Add("add"); return a + b; });
        m.T.Registry.Register("sum", (long[] values) => { ran.Add("sum"); return values.Sum(); });
        var chord = await m.T.Client.SendChordAsync(new Chord(
            new TaskGroup(new Signature("add", TaskArgument.Int64(1), TaskArgument.Int64(2)), new Signature("add", TaskArgument.Int64(3), TaskArgument.Int64(4))),
            new Signature("sum")));

        var revoked = await m.Api.RevokeAsync([chord.Group.GroupId]);
        await m.StartWorkerAsync();
        var marker = await m.T.Client.SendAsync(new Signature("add", TaskArgument.Int64(0), TaskArgument.Int64(0)));
        await marker.WaitAsync(Wait);

        Assert.Equal(3, revoked.Count);
        Assert.Contains(chord.Callback.TaskId, revoked);
        Assert.Equal(["add"], ran);
        foreach (var member in chord.Group.Tasks)
        {
            Assert.True((await member.GetStateAsync())!.IsRevoked());
        }

        Assert.True((await chord.Callback.GetStateAsync())!.IsRevoked());
    }

    [Fact]
    public async Task SendUnique_Debounce_ReplacesThePendingTasksArguments()
    {
        await using var m = await CreateAsync();
        var seen = new ConcurrentBag<long>();
        m.T.Registry.Register("note", (long n) => seen.Add(n));
        var options = new UniqueOptions { Key = "debounce-" + Guid.NewGuid().ToString("N"), Mode = UniqueMode.Debounce };
        var first = await m.T.Client.SendUniqueAsync(m.Store, new Signature("note", TaskArgument.Int64(1)), options);
        var second = await m.T.Client.SendUniqueAsync(m.Store, new Signature("note", TaskArgument.Int64(2)), options);

        await m.StartWorkerAsync();
        await first.WaitAsync(Wait);
        var marker = await m.T.Client.SendAsync(new Signature("note", TaskArgument.Int64(0)));
        await marker.WaitAsync(Wait);

        Assert.Equal(first.TaskId, second.TaskId);
        Assert.Equal([0L, 2L], seen.Order());
    }
}
