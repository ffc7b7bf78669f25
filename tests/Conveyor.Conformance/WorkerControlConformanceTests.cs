using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace Conveyor.Conformance;

/// <summary>
/// What every worker fleet with a management store must do, whether or not the store is the broker (a RabbitMQ
/// broker keeps its control state in the result backend's engine): revocations followed by the workers (dropped on
/// delivery, canceled while running), pause and resume, worker records, progress, unique tasks, rate limits.
/// </summary>
/// <typeparam name="TFactory">The provider's factory.</typeparam>
public abstract class WorkerControlConformanceTests<TFactory> : IClassFixture<TFactory>
    where TFactory : class, IConveyorProviderFactory
{
    private static readonly TimeSpan Wait = ConveyorTestContext.Timeout;

    /// <summary>Creates the suite.</summary>
    /// <param name="factory">The provider's factory (a class fixture).</param>
    protected WorkerControlConformanceTests(TFactory factory) => Factory = factory;

    /// <summary>The provider's factory.</summary>
    protected TFactory Factory { get; }

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
        Assert.Equal(20, (await m.T.Broker.GetQueueStatisticsAsync(m.T.Queue)).Ready);

        await m.Api.ResumeQueueAsync(m.T.Queue);
        foreach (var result in sent)
        {
            await result.WaitAsync(Wait);
        }

        Assert.Equal(20, runs.Count);
        Assert.All(runs.Values, n => Assert.Equal(1, n));
    }

    [Fact]
    public async Task Revoke_HandlerReturnsAfterItsWorkerLearnedOfIt_EndsRevokedNotSucceeded()
    {
        await using var m = await CreateAsync();
        var api = m.Api;
        // Synchronous: it revokes itself, waits until its worker has learned of it (its token is canceled), and then
        // returns a result anyway: the SUCCESS must not land over the revoked FAILURE the revoke wrote.
        m.T.Registry.Register("finisher", long (TaskContext context) =>
        {
            api.RevokeAsync([context.TaskId]).AsTask().GetAwaiter().GetResult();
            SpinWait.SpinUntil(() => context.CancellationToken.IsCancellationRequested, Wait);
            return 42L;
        });
        m.T.Registry.Register("add", (long a, long b) => a + b);
        var worker = await m.StartWorkerAsync(o => o.Concurrency = 1);
        var task = await m.T.Client.SendAsync(new Signature("finisher"));
        // One slot: the next task runs once the revoked one is settled.
        var next = await m.T.Client.SendAsync(new Signature("add", TaskArgument.Int64(1), TaskArgument.Int64(2)));
        await next.WaitAsync(Wait);
        await ConveyorTestContext.EventuallyAsync(() => Task.FromResult(worker.InFlight == 0), "the worker is idle");

        var final = await task.GetStateAsync();
        Assert.Equal(TaskState.Failure, final!.State);
        Assert.True(final.IsRevoked(), final.Error);
    }

    [Fact]
    public async Task Pause_WhileALongTaskRuns_ItsWorkerHandsBackWhatItFetchedAtOnce()
    {
        await using var m = await CreateAsync();
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        m.T.Registry.Register("hold", async () =>
        {
            entered.TrySetResult();
            await gate.Task;
        });
        m.T.Registry.Register("note", () => { });
        var first = await m.StartWorkerAsync(o => { o.Concurrency = 1; o.Prefetch = 8; });
        var held = await m.T.Client.SendAsync(new Signature("hold"));
        await entered.Task.WaitAsync(Wait);
        var notes = new List<AsyncResult>();
        for (var i = 0; i < 5; i++)
        {
            notes.Add(await m.T.Client.SendAsync(new Signature("note")));
        }

        // The first worker fetches the notes behind its one running task; the pause must send them back now, not
        // when the held task ends.
        await Task.Delay(TimeSpan.FromMilliseconds(300));
        await m.Api.PauseQueueAsync(m.T.Queue);
        await ConveyorTestContext.EventuallyAsync(
            async () => (await m.Api.ListWorkersAsync()).Any(w => w.Name == first.Name && w.Paused),
            "the first worker reports the pause");
        await m.StartWorkerAsync();
        await m.Api.ResumeQueueAsync(m.T.Queue);
        foreach (var note in notes)
        {
            await note.WaitAsync(Wait);
        }

        // The first worker is still busy with the held task (concurrency 1): the second one ran them all.
        Assert.False((await held.GetStateAsync())!.IsCompleted, "the held task ended: the test proves nothing");
        gate.SetResult();
        await held.WaitAsync(Wait);
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

    protected static async Task<List<TaskSummary>> ListAllAsync(ConveyorManagement api, TaskQuery query)
    {
        var all = new List<TaskSummary>();
        // A Redis SCAN page may be empty with more to come (a shared server holds other tests' keys): read them all.
        for (var page = 0; page < 10_000; page++)
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

    protected async Task<ManagedContext> CreateAsync(string? variant = null, [CallerMemberName] string testName = "")
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
    protected sealed class ManagedContext(ConveyorTestContext t, IManagementStore store, ConveyorManagement api) : IAsyncDisposable
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
