using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace Conveyor.Conformance;

/// <summary>
/// Operating a live queue on every provider that keeps a management store: listings by state with pages, a task's
/// detail, delete, run now, revoke (pending, scheduled, running, a group), pause and resume, workers, progress.
/// </summary>
/// <typeparam name="TFactory">The provider's factory.</typeparam>
public abstract class ManagementConformanceTests<TFactory> : IClassFixture<TFactory>
    where TFactory : class, IConveyorProviderFactory
{
    private static readonly TimeSpan Wait = ConveyorTestContext.Timeout;

    /// <summary>Creates the suite.</summary>
    /// <param name="factory">The provider's factory (a class fixture).</param>
    protected ManagementConformanceTests(TFactory factory) => Factory = factory;

    /// <summary>The provider's factory.</summary>
    protected TFactory Factory { get; }

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
            async () => (await m.Api.ListTasksAsync(new TaskQuery { State = ManagedTaskState.Succeeded, Name = "hold", Limit = 1000 })).Tasks.Any(t => t.Id == held.TaskId),
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
    public async Task Revoke_MessageStillQueued_WorkerDropsItOnDelivery()
    {
        // What happens where the store cannot delete the message (a RabbitMQ broker) or a publisher raced the
        // revocation: the worker finds the id in its revoked set and never runs it.
        await using var m = await CreateAsync();
        var ran = new ConcurrentBag<string>();
        m.T.Registry.Register("note", (TaskContext context) => ran.Add(context.TaskId));
        var revoked = await m.T.Client.SendAsync(new Signature("note"));
        await m.Store.RevokeAsync([revoked.TaskId]);
        var next = await m.T.Client.SendAsync(new Signature("note"));

        await m.StartWorkerAsync();
        await next.WaitAsync(Wait);
        var final = await revoked.WaitAsync(Wait);

        Assert.Equal([next.TaskId], ran);
        Assert.True(final.IsRevoked(), final.Error);
    }

    [Fact]
    public async Task Revoke_Scheduled_NeverRunsWhenItsEtaComes()
    {
        await using var m = await CreateAsync();
        var ran = new ConcurrentBag<string>();
        m.T.Registry.Register("note", (TaskContext context) => ran.Add(context.TaskId));
        await m.StartWorkerAsync();
        var scheduled = await m.T.Client.SendAsync(new Signature("note") { Eta = DateTimeOffset.UtcNow.AddMilliseconds(1500) });

        await m.Api.RevokeAsync([scheduled.TaskId]);
        var after = await m.T.Client.SendAsync(new Signature("note") { Eta = DateTimeOffset.UtcNow.AddMilliseconds(1600) });
        await after.WaitAsync(Wait);

        Assert.Equal([after.TaskId], ran);
        Assert.True((await scheduled.GetStateAsync())!.IsRevoked());
    }

    [Fact]
    public async Task Revoke_Running_CancelsItsTokenWithinASecondAndTheWorkerGoesOn()
    {
        await using var m = await CreateAsync();
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        m.T.Registry.Register("sleep", async (long ms, CancellationToken token) =>
        {
            started.TrySetResult();
            await Task.Delay(TimeSpan.FromMilliseconds(ms), token);
            return ms;
        });
        m.T.Registry.Register("add", (long a, long b) => a + b);
        await m.StartWorkerAsync(o => o.Concurrency = 1);
        var sleeping = await m.T.Client.SendAsync(new Signature("sleep", TaskArgument.Int64(30_000)));
        var next = await m.T.Client.SendAsync(new Signature("add", TaskArgument.Int64(1), TaskArgument.Int64(1)));
        await started.Task.WaitAsync(Wait);

        var clock = Stopwatch.StartNew();
        await m.Api.RevokeAsync([sleeping.TaskId]);
        // The next task runs only once the one worker slot is free: the revoked handler really ended.
        Assert.Equal(2L, await next.GetValueAsync<long>(Wait));
        var ended = clock.Elapsed;

        Assert.True(ended < TimeSpan.FromSeconds(2), $"the revoked task ended after {ended}");
        Assert.True((await sleeping.GetStateAsync())!.IsRevoked());
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
    public async Task Pause_Queue_NoTaskStartsUntilResumedThenAllRunOnce()
    {
        await using var m = await CreateAsync();
        var runs = new ConcurrentDictionary<string, int>();
        m.T.Registry.Register("note", (TaskContext context) => runs.AddOrUpdate(context.TaskId, 1, (_, n) => n + 1));
        await m.StartWorkerAsync();
        await m.StartWorkerAsync();

        await m.Api.PauseQueueAsync(m.T.Queue);
        Assert.Equal([m.T.Queue], (await m.Api.ListPausedQueuesAsync()).Where(q => q == m.T.Queue));
        await ConveyorTestContext.EventuallyAsync(
            async () => (await m.Api.ListWorkersAsync()).Count(w => w.Queues.Contains(m.T.Queue) && w.Paused) == 2,
            "both workers report the pause");
        var sent = new List<AsyncResult>();
        for (var i = 0; i < 20; i++)
        {
            sent.Add(await m.T.Client.SendAsync(new Signature("note")));
        }

        // Publishing goes on; nobody takes a message.
        await Task.Delay(TimeSpan.FromSeconds(1));
        Assert.Empty(runs);
        Assert.Equal(20, (await m.Api.ListTasksAsync(new TaskQuery { State = ManagedTaskState.Pending, Limit = 100 })).Tasks.Count);

        await m.Api.ResumeQueueAsync(m.T.Queue);
        foreach (var result in sent)
        {
            await result.WaitAsync(Wait);
        }

        Assert.Equal(20, runs.Count);
        Assert.All(runs.Values, n => Assert.Equal(1, n));
    }

    [Fact]
    public async Task ListWorkers_TwoRunning_ListsBothWithQueueAndConcurrencyThenForgetsAStoppedOne()
    {
        await using var m = await CreateAsync();
        var first = await m.StartWorkerAsync(o => o.Concurrency = 3);
        var second = await m.StartWorkerAsync(o => o.Concurrency = 2);

        await ConveyorTestContext.EventuallyAsync(
            async () => (await m.Api.ListWorkersAsync()).Count(w => w.Queues.Contains(m.T.Queue)) == 2,
            "both workers are listed");
        var workers = (await m.Api.ListWorkersAsync()).Where(w => w.Queues.Contains(m.T.Queue)).ToList();
        Assert.Equal(3, workers.Single(w => w.Name == first.Name).Concurrency);
        Assert.Equal(Environment.ProcessId, workers[0].ProcessId);

        await m.T.StopWorkerAsync(second);
        await ConveyorTestContext.EventuallyAsync(
            async () => (await m.Api.ListWorkersAsync()).Count(w => w.Queues.Contains(m.T.Queue)) == 1,
            "the stopped worker is gone");
    }

    [Fact]
    public async Task ReportProgress_FromHandler_IsReadableWhileItRuns()
    {
        await using var m = await CreateAsync();
        var reported = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        m.T.Registry.Register("long", async (TaskContext context) =>
        {
            await context.ReportProgressAsync(40, "halfway there");
            reported.TrySetResult();
            await gate.Task;
        });
        await m.StartWorkerAsync();
        var result = await m.T.Client.SendAsync(new Signature("long"));
        await reported.Task.WaitAsync(Wait);

        var progress = (await m.Api.GetTaskAsync(result.TaskId))!.Progress;

        Assert.NotNull(progress);
        Assert.Equal(40, progress.Percent);
        Assert.Equal("halfway there", progress.Message);
        gate.SetResult();
        await result.WaitAsync(Wait);
    }

    [Fact]
    public async Task SendUnique_TwentyConcurrentPublishers_ExactlyOneRuns()
    {
        await using var m = await CreateAsync();
        var runs = new ConcurrentBag<string>();
        m.T.Registry.Register("note", (long n, TaskContext context) => runs.Add(context.TaskId));
        var key = "once-" + Guid.NewGuid().ToString("N");
        using var start = new ManualResetEventSlim();
        var publishers = Enumerable.Range(0, 20).Select(_ => Task.Run(async () =>
        {
            start.Wait();
            return await m.T.Client.SendUniqueAsync(m.Store, new Signature("note", TaskArgument.Int64(7)), new UniqueOptions { Key = key });
        })).ToList();
        start.Set();
        var results = await Task.WhenAll(publishers);
        await m.StartWorkerAsync();

        await results[0].WaitAsync(Wait);
        var marker = await m.T.Client.SendAsync(new Signature("note", TaskArgument.Int64(0)));
        await marker.WaitAsync(Wait);

        // Every publisher got the one task; the worker ran it once (and the marker behind it).
        Assert.Single(results.Select(r => r.TaskId).Distinct());
        Assert.Equal(2, runs.Count);
        Assert.Contains(results[0].TaskId, runs);
        Assert.Contains(marker.TaskId, runs);
    }

    [Fact]
    public async Task SendUnique_UntilFinished_DuplicateThrowsWhileQueuedAndANewOneRunsAfter()
    {
        await using var m = await CreateAsync();
        m.T.Registry.Register("add", (long a, long b) => a + b);
        var options = new UniqueOptions { OnDuplicate = DuplicateBehavior.Throw };
        var first = await m.T.Client.SendUniqueAsync(m.Store, new Signature("add", TaskArgument.Int64(1), TaskArgument.Int64(2)), options);

        var duplicate = await Assert.ThrowsAsync<DuplicateTaskException>(async () =>
            await m.T.Client.SendUniqueAsync(m.Store, new Signature("add", TaskArgument.Int64(1), TaskArgument.Int64(2)), options));
        Assert.Equal(first.TaskId, duplicate.ExistingTaskId);
        var other = await m.T.Client.SendUniqueAsync(m.Store, new Signature("add", TaskArgument.Int64(2), TaskArgument.Int64(2)), options);
        Assert.NotEqual(first.TaskId, other.TaskId);

        await m.StartWorkerAsync();
        Assert.Equal(3L, await first.GetValueAsync<long>(Wait));
        // The worker frees the key with the final state.
        AsyncResult? again = null;
        await ConveyorTestContext.EventuallyAsync(async () =>
        {
            try
            {
                again = await m.T.Client.SendUniqueAsync(m.Store, new Signature("add", TaskArgument.Int64(1), TaskArgument.Int64(2)), options);
                return true;
            }
            catch (DuplicateTaskException)
            {
                return false;
            }
        }, "the key is free once the first one finished");
        Assert.NotEqual(first.TaskId, again!.TaskId);
        Assert.Equal(3L, await again.GetValueAsync<long>(Wait));
    }

    [Fact]
    public async Task SendUnique_Throttle_KeyHoldsAfterTheTaskFinished()
    {
        await using var m = await CreateAsync();
        m.T.Registry.Register("add", (long a, long b) => a + b);
        await m.StartWorkerAsync();
        var options = new UniqueOptions { Mode = UniqueMode.Throttle, Ttl = TimeSpan.FromMinutes(5) };
        var first = await m.T.Client.SendUniqueAsync(m.Store, new Signature("add", TaskArgument.Int64(1), TaskArgument.Int64(1)), options);
        await first.WaitAsync(Wait);

        var second = await m.T.Client.SendUniqueAsync(m.Store, new Signature("add", TaskArgument.Int64(1), TaskArgument.Int64(1)), options);

        Assert.Equal(first.TaskId, second.TaskId);
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

    [Theory]
    [InlineData(RateLimitScope.Global, 2)]
    [InlineData(RateLimitScope.Worker, 1)]
    public async Task RateLimit_TenASecond_PacesRunsAndNoneFails(RateLimitScope scope, int workers)
    {
        await using var m = await CreateAsync(scope + "-" + workers);
        var runs = new ConcurrentQueue<(long At, int Attempt)>();
        m.T.Registry.Register("limited", (TaskContext context) => runs.Enqueue((Stopwatch.GetTimestamp(), context.Attempt)));
        for (var i = 0; i < workers; i++)
        {
            await m.StartWorkerAsync(o => o.RateLimits.Add(new TaskRateLimit { Task = "limited", Limit = 10, Period = TimeSpan.FromSeconds(1), Scope = scope }));
        }

        var sent = new List<AsyncResult>();
        for (var i = 0; i < 15; i++)
        {
            sent.Add(await m.T.Client.SendAsync(new Signature("limited")));
        }

        foreach (var result in sent)
        {
            Assert.Equal(TaskState.Success, (await result.WaitAsync(Wait)).State);
        }

        // 15 runs at 10 a second with a bucket of 1: the first at once, the 15th 1.4 s later at the earliest.
        var times = runs.Select(r => r.At).Order().ToList();
        Assert.Equal(15, times.Count);
        var span = Stopwatch.GetElapsedTime(times[0], times[^1]);
        Assert.True(span >= TimeSpan.FromMilliseconds(1300), $"15 runs took {span}: faster than 10 a second");
        Assert.All(runs, r => Assert.Equal(1, r.Attempt));
    }

    [Fact]
    public async Task RateLimit_TurnBeyondMaxWait_GoesBackWithAnEtaAndIsNotARetry()
    {
        await using var m = await CreateAsync();
        var runs = new ConcurrentBag<int>();
        m.T.Registry.Register("limited", (TaskContext context) => runs.Add(context.Attempt));
        await m.StartWorkerAsync(o =>
        {
            o.RateLimitMaxWait = TimeSpan.Zero;
            o.RateLimits.Add(new TaskRateLimit { Task = "limited", Limit = 4, Period = TimeSpan.FromSeconds(1), Scope = RateLimitScope.Global });
        });

        var sent = new List<AsyncResult>();
        for (var i = 0; i < 4; i++)
        {
            sent.Add(await m.T.Client.SendAsync(new Signature("limited") { RetryCount = 0 }));
        }

        foreach (var result in sent)
        {
            Assert.Equal(TaskState.Success, (await result.WaitAsync(Wait)).State);
        }

        // RetryCount 0: a limited task that counted as a retry would have failed.
        Assert.Equal([1, 1, 1, 1], runs);
    }

    private static async Task<List<TaskSummary>> ListAllAsync(ConveyorManagement api, TaskQuery query)
    {
        var all = new List<TaskSummary>();
        for (var page = 0; page < 100; page++)
        {
            var result = await api.ListTasksAsync(query);
            all.AddRange(result.Tasks);
            if (result.Next is null)
            {
                break;
            }

            query = query with { After = result.Next };
        }

        return all;
    }

    private async Task<ManagedContext> CreateAsync(string? variant = null, [CallerMemberName] string testName = "")
    {
        var t = await ConveyorTestContext.CreateAsync(Factory, variant is null ? testName : testName + "-" + variant);
        var store = await Factory.CreateManagementStoreAsync(t.Broker, t.Backend);
        if (store is null)
        {
            await t.DisposeAsync();
            Assert.Fail($"{Factory.Name} keeps no management store: revoke, pause and listings do not work on it");
        }

        return new ManagedContext(t, store, new ConveyorManagement(store, t.Broker, t.Backend, t.Queue));
    }

    /// <summary>A test's providers, store and API; workers follow the store with short intervals.</summary>
    private sealed class ManagedContext(ConveyorTestContext t, IManagementStore store, ConveyorManagement api) : IAsyncDisposable
    {
        public ConveyorTestContext T { get; } = t;

        public IManagementStore Store { get; } = store;

        public ConveyorManagement Api { get; } = api;

        public Task<ConveyorWorker> StartWorkerAsync(Action<WorkerOptions>? configure = null) => T.StartWorkerAsync(o =>
        {
            o.ManagementStore = Store;
            o.ControlPollInterval = TimeSpan.FromMilliseconds(100);
            o.HeartbeatInterval = TimeSpan.FromMilliseconds(200);
            configure?.Invoke(o);
        });

        public async ValueTask DisposeAsync()
        {
            await T.DisposeAsync();
            if (Store is IAsyncDisposable disposable)
            {
                await disposable.DisposeAsync();
            }
        }
    }
}
