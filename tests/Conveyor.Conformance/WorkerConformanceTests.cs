using System.Collections.Concurrent;
using System.Text;

namespace Conveyor.Conformance;

/// <summary>
/// End-to-end behaviour every provider must show with a real worker: states and results, retries, timeouts,
/// callbacks, groups, chords, chains, dead letters, the concurrency bound, graceful shutdown and ETAs.
/// </summary>
/// <typeparam name="TFactory">The provider's factory.</typeparam>
public abstract class WorkerConformanceTests<TFactory> : IClassFixture<TFactory>
    where TFactory : class, IConveyorProviderFactory
{
    private static readonly TimeSpan Wait = ConveyorTestContext.Timeout;

    /// <summary>Creates the suite.</summary>
    /// <param name="factory">The provider's factory (a class fixture).</param>
    protected WorkerConformanceTests(TFactory factory) => Factory = factory;

    /// <summary>The provider's factory.</summary>
    protected TFactory Factory { get; }

    [Fact]
    public async Task Send_AddTask_StateIsPendingUntilAWorkerRunsItThenSuccessWithResult()
    {
        await using var t = await ConveyorTestContext.CreateAsync(Factory);
        t.Registry.Register("add", (long a, long b) => a + b);

        var result = await t.Client.SendAsync(new Signature("add", TaskArgument.Int64(2), TaskArgument.Int64(3)));
        var pending = await result.GetStateAsync();
        Assert.NotNull(pending);
        Assert.Equal(TaskState.Pending, pending.State);
        Assert.Equal("add", pending.TaskName);

        await t.StartWorkerAsync();
        Assert.Equal(5L, await result.GetValueAsync<long>(Wait));
        var done = await result.GetStateAsync();
        Assert.Equal(TaskState.Success, done!.State);
        Assert.Equal([new TaskResult("int64", 5L)], done.Results);
        Assert.Equal(pending.CreatedAt, done.CreatedAt);
    }

    [Fact]
    public async Task Handler_ReturnsTuple_StoresEveryResultWithItsType()
    {
        await using var t = await ConveyorTestContext.CreateAsync(Factory);
        t.Registry.Register("split", async (string text, CancellationToken ct) =>
        {
            await Task.Yield();
            return (text.ToUpperInvariant(), (long)text.Length, text.Split(' '));
        });
        await t.StartWorkerAsync();

        var results = await (await t.Client.SendAsync(new Signature("split", TaskArgument.String("a bc")))).GetAsync(Wait);

        Assert.Equal(3, results.Count);
        Assert.Equal(new TaskResult("string", "A BC"), results[0]);
        Assert.Equal(new TaskResult("int64", 4L), results[1]);
        Assert.Equal("[]string", results[2].Type);
        Assert.Equal(["a", "bc"], (string[])results[2].Value!);
    }

    [Fact]
    public async Task Worker_WhileHandlerRuns_StateIsStarted()
    {
        await using var t = await ConveyorTestContext.CreateAsync(Factory);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        t.Registry.Register("wait", async () =>
        {
            entered.TrySetResult();
            await gate.Task;
        });
        await t.StartWorkerAsync();

        var result = await t.Client.SendAsync(new Signature("wait"));
        await entered.Task.WaitAsync(Wait);

        // The handler starts once its RECEIVED and STARTED are queued; the worker stores them in its next batch.
        var state = await result.GetStateAsync();
        var deadline = DateTime.UtcNow + Wait;
        while (state?.State != TaskState.Started && DateTime.UtcNow < deadline)
        {
            await t.Client.Backend.WaitForChangeAsync(result.TaskId, TimeSpan.FromMilliseconds(50));
            state = await result.GetStateAsync();
        }

        Assert.Equal(TaskState.Started, state?.State);
        gate.SetResult();
        var final = await result.WaitAsync(Wait);
        Assert.Equal(TaskState.Success, final.State);
        Assert.Empty(final.Results!);
    }

    [Fact]
    public async Task Handler_Throws_NoRetries_FailureWithTheErrorMessage()
    {
        await using var t = await ConveyorTestContext.CreateAsync(Factory);
        t.Registry.Register("fail", string (string message) => throw new InvalidOperationException(message));
        await t.StartWorkerAsync();

        var result = await t.Client.SendAsync(new Signature("fail", TaskArgument.String("boom")));

        var error = await Assert.ThrowsAsync<TaskFailedException>(async () => await result.GetAsync(Wait));
        Assert.Equal("boom", error.TaskError);
        Assert.Equal(result.TaskId, error.TaskId);
        Assert.Equal(TaskState.Failure, (await result.GetStateAsync())!.State);
    }

    [Fact]
    public async Task Retry_FailsTwiceThenSucceeds_SucceedsOnTheThirdAttempt()
    {
        await using var t = await ConveyorTestContext.CreateAsync(Factory);
        var attempts = new ConcurrentBag<int>();
        t.Registry.Register("flaky", (TaskContext context) =>
        {
            attempts.Add(context.Attempt);
            return context.Attempt < 3 ? throw new InvalidOperationException($"attempt {context.Attempt}") : (long)context.Attempt;
        });
        await t.StartWorkerAsync();

        var result = await t.Client.SendAsync(new Signature("flaky") { RetryCount = 5 });

        Assert.Equal(3L, await result.GetValueAsync<long>(Wait));
        Assert.Equal([1, 2, 3], attempts.Order());
    }

    [Fact]
    public async Task Retry_AlwaysFails_FailureAfterRetryCountPlusOneRuns()
    {
        await using var t = await ConveyorTestContext.CreateAsync(Factory);
        var runs = 0;
        t.Registry.Register("fail", () =>
        {
            Interlocked.Increment(ref runs);
            throw new InvalidOperationException("still broken");
        });
        await t.StartWorkerAsync();

        var result = await t.Client.SendAsync(new Signature("fail") { RetryCount = 2 });

        var error = await Assert.ThrowsAsync<TaskFailedException>(async () => await result.GetAsync(Wait));
        Assert.Equal("still broken", error.TaskError);
        Assert.Equal(3, Volatile.Read(ref runs));
    }

    [Fact]
    public async Task RetryLater_CountsTowardTheRetryLimit()
    {
        await using var t = await ConveyorTestContext.CreateAsync(Factory);
        var runs = 0;
        t.Registry.Register("later", () =>
        {
            Interlocked.Increment(ref runs);
            throw new RetryTaskLaterException("not yet", TimeSpan.FromMilliseconds(10));
        });
        await t.StartWorkerAsync();

        var result = await t.Client.SendAsync(new Signature("later") { RetryCount = 2 });

        var error = await Assert.ThrowsAsync<TaskFailedException>(async () => await result.GetAsync(Wait));
        Assert.Equal("not yet", error.TaskError);
        Assert.Equal(3, Volatile.Read(ref runs));
    }

    [Fact]
    public async Task Timeout_HandlerHangs_FailsAsTimedOutAndWorkerGoesOn()
    {
        await using var t = await ConveyorTestContext.CreateAsync(Factory);
        var tokenCanceled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        t.Registry.Register("hang", async (CancellationToken ct) =>
        {
            ct.Register(() => tokenCanceled.TrySetResult());
            await Task.Delay(Timeout.Infinite, CancellationToken.None); // ignores its token on purpose
        });
        t.Registry.Register("add", (long a, long b) => a + b);
        await t.StartWorkerAsync(o =>
        {
            o.TaskTimeout = TimeSpan.FromMilliseconds(200);
            o.Concurrency = 1;
        });

        var hung = await t.Client.SendAsync(new Signature("hang"));
        var next = await t.Client.SendAsync(new Signature("add", TaskArgument.Int64(1), TaskArgument.Int64(1)));

        var error = await Assert.ThrowsAsync<TaskFailedException>(async () => await hung.GetAsync(Wait));
        Assert.Contains("timed out", error.TaskError, StringComparison.Ordinal);
        await tokenCanceled.Task.WaitAsync(Wait);
        Assert.Equal(2L, await next.GetValueAsync<long>(Wait));
    }

    [Fact]
    public async Task WrongArgumentType_FailsAtOnceWithAClearErrorAndIsNotRetried()
    {
        await using var t = await ConveyorTestContext.CreateAsync(Factory);
        var runs = 0;
        t.Registry.Register("add", (long a, long b) =>
        {
            Interlocked.Increment(ref runs);
            return a + b;
        });
        await t.StartWorkerAsync();

        var wrongType = await t.Client.SendAsync(new Signature("add", TaskArgument.String("2"), TaskArgument.Int64(3)) { RetryCount = 3 });
        var wrongCount = await t.Client.SendAsync(new Signature("add", TaskArgument.Int64(3)) { RetryCount = 3 });

        var typeError = await Assert.ThrowsAsync<TaskFailedException>(async () => await wrongType.GetAsync(Wait));
        Assert.Contains("argument 1 must be int64", typeError.TaskError, StringComparison.Ordinal);
        Assert.Contains("string", typeError.TaskError, StringComparison.Ordinal);
        var countError = await Assert.ThrowsAsync<TaskFailedException>(async () => await wrongCount.GetAsync(Wait));
        Assert.Contains("takes 2 argument(s), but the message has 1", countError.TaskError, StringComparison.Ordinal);
        Assert.Equal(0, Volatile.Read(ref runs));
    }

    [Fact]
    public async Task OnSuccess_CallbackReceivesResultsUnlessImmutable()
    {
        await using var t = await ConveyorTestContext.CreateAsync(Factory);
        t.Registry.Register("add", (long a, long b) => a + b);
        t.Registry.Register("collect", (params long[] values) => string.Join(",", values));
        await t.StartWorkerAsync();

        var mutable = new Signature("collect", TaskArgument.Int64(100));
        var immutable = new Signature("collect", TaskArgument.Int64(200)) { Immutable = true };
        var parent = new Signature("add", TaskArgument.Int64(1), TaskArgument.Int64(2));
        parent.OnSuccess.Add(mutable);
        parent.OnSuccess.Add(immutable);
        await t.Client.SendAsync(parent);

        Assert.Equal("100,3", await t.Client.GetResult(mutable.Id).GetValueAsync<string>(Wait));
        Assert.Equal("200", await t.Client.GetResult(immutable.Id).GetValueAsync<string>(Wait));
    }

    [Fact]
    public async Task OnError_CallbackReceivesTheErrorAsFirstArgument()
    {
        await using var t = await ConveyorTestContext.CreateAsync(Factory);
        t.Registry.Register("fail", string (string message) => throw new InvalidOperationException(message));
        t.Registry.Register("report", (string error, string tag) => $"{tag}: {error}");
        await t.StartWorkerAsync();

        var onError = new Signature("report", TaskArgument.String("alert"));
        var failing = new Signature("fail", TaskArgument.String("disk full"));
        failing.OnError.Add(onError);
        await t.Client.SendAsync(failing);

        Assert.Equal("alert: disk full", await t.Client.GetResult(onError.Id).GetValueAsync<string>(Wait));
    }

    [Fact]
    public async Task Chain_ThreeTasks_EachResultFeedsTheNext()
    {
        await using var t = await ConveyorTestContext.CreateAsync(Factory);
        t.Registry.Register("add", (long a, long b) => a + b);
        t.Registry.Register("add_many", (params long[] values) => values.Sum());
        await t.StartWorkerAsync();

        var chain = new Chain(
            new Signature("add", TaskArgument.Int64(1), TaskArgument.Int64(2)),
            new Signature("add_many", TaskArgument.Int64(10)),
            new Signature("add_many", TaskArgument.Int64(100)));
        var result = await t.Client.SendChainAsync(chain);

        var last = await result.GetAsync(Wait);
        Assert.Equal([new TaskResult("int64", 113L)], last);
        Assert.Equal(13L, await result.Tasks[1].GetValueAsync<long>(Wait));
    }

    [Fact]
    public async Task Group_TenMembers_EachResultInMemberOrder()
    {
        await using var t = await ConveyorTestContext.CreateAsync(Factory);
        t.Registry.Register("square", (long x) => x * x);
        await t.StartWorkerAsync();

        var group = new TaskGroup(Enumerable.Range(1, 10).Select(i => new Signature("square", TaskArgument.Int64(i))));
        var result = await t.Client.SendGroupAsync(group, sendConcurrency: 3);

        var all = await result.GetAsync(Wait);
        Assert.Equal(Enumerable.Range(1, 10).Select(i => (long)(i * i)), all.Select(r => (long)r[0].Value!));
        var meta = await t.Backend.GetGroupMetaAsync(group.GroupId);
        Assert.Equal(group.Tasks.Select(s => s.Id), meta!.TaskIds);
        Assert.All(group.Tasks, s => Assert.Equal(10, s.GroupTaskCount));
    }

    [Fact]
    public async Task Chord_AllMembersSucceed_CallbackRunsOnceWithEveryResultInMemberOrder()
    {
        await using var t = await ConveyorTestContext.CreateAsync(Factory);
        var callbackRuns = 0;
        t.Registry.Register("echo_after", async (long x, long delayMs) =>
        {
            await Task.Delay(TimeSpan.FromMilliseconds(delayMs));
            return x;
        });
        t.Registry.Register("join", (params long[] values) =>
        {
            Interlocked.Increment(ref callbackRuns);
            return string.Join(",", values);
        });
        var worker = await t.StartWorkerAsync(o => o.Concurrency = 8);

        // Later members finish first, so completion order differs from member order.
        const int members = 40;
        var group = new TaskGroup(Enumerable.Range(0, members).Select(i => new Signature("echo_after", TaskArgument.Int64(i), TaskArgument.Int64((members - i) % 7))));
        var result = await t.Client.SendChordAsync(new Chord(group, new Signature("join")));

        Assert.Equal(string.Join(",", Enumerable.Range(0, members)), (string)(await result.GetAsync(Wait))[0].Value!);
        await StopAndAssertQueueSettledAsync(t, worker);
        Assert.Equal(1, Volatile.Read(ref callbackRuns));
        Assert.True((await t.Backend.GetGroupMetaAsync(group.GroupId))!.ChordTriggered);
    }

    [Fact]
    public async Task Chord_AMemberFails_CallbackDoesNotRunAndItsOnErrorRunsOnce()
    {
        await using var t = await ConveyorTestContext.CreateAsync(Factory);
        var callbackRuns = 0;
        var onErrorRuns = 0;
        t.Registry.Register("maybe_fail", (long x) => x % 3 == 0 ? throw new InvalidOperationException($"member {x} broke") : x);
        t.Registry.Register("join", (params long[] values) =>
        {
            Interlocked.Increment(ref callbackRuns);
            return values.Sum();
        });
        t.Registry.Register("on_chord_error", (string error) =>
        {
            Interlocked.Increment(ref onErrorRuns);
            return error;
        });
        var worker = await t.StartWorkerAsync();

        var callback = new Signature("join");
        var onError = new Signature("on_chord_error");
        callback.OnError.Add(onError);
        var group = new TaskGroup(Enumerable.Range(1, 7).Select(i => new Signature("maybe_fail", TaskArgument.Int64(i))));
        await t.Client.SendChordAsync(new Chord(group, callback));

        var error = await t.Client.GetResult(onError.Id).GetValueAsync<string>(Wait);
        Assert.Contains("broke", error, StringComparison.Ordinal);
        Assert.Contains("chord member maybe_fail", error, StringComparison.Ordinal);
        await ConveyorTestContext.EventuallyAsync(
            async () => (await Task.WhenAll(group.Tasks.Select(async s => (await t.Backend.GetStateAsync(s.Id))?.IsCompleted == true))).All(x => x),
            "every member completes");
        await StopAndAssertQueueSettledAsync(t, worker);
        Assert.Equal(0, Volatile.Read(ref callbackRuns));
        Assert.Equal(1, Volatile.Read(ref onErrorRuns));
        Assert.Equal(TaskState.Pending, (await t.Backend.GetStateAsync(callback.Id))?.State ?? TaskState.Pending);
    }

    [Fact]
    public async Task MalformedMessage_IsDeadLetteredWithReasonAndRawBytesAndWorkerGoesOn()
    {
        await using var t = await ConveyorTestContext.CreateAsync(Factory);
        t.Registry.Register("add", (long a, long b) => a + b);
        await t.StartWorkerAsync();

        var garbage = Encoding.UTF8.GetBytes("{\"UUID\": \"task_broken\", \"Name\": ");
        await t.Broker.PublishAsync(new OutgoingMessage("task_broken", t.Queue, garbage));
        var next = await t.Client.SendAsync(new Signature("add", TaskArgument.Int64(4), TaskArgument.Int64(4)));

        Assert.Equal(8L, await next.GetValueAsync<long>(Wait));
        DeadLetter? letter = null;
        await ConveyorTestContext.EventuallyAsync(
            async () => (letter = (await t.Broker.GetDeadLettersAsync(10_000)).FirstOrDefault(d => d.Queue == t.Queue)) is not null,
            "the malformed message is dead-lettered");
        Assert.Contains("malformed", letter!.Reason, StringComparison.Ordinal);
        Assert.Equal(garbage, letter.Body.ToArray());
    }

    [Fact]
    public async Task UnregisteredTask_IsDeadLetteredAndRecordedAsFailureWithTheReason()
    {
        await using var t = await ConveyorTestContext.CreateAsync(Factory);
        t.Registry.Register("add", (long a, long b) => a + b);
        await t.StartWorkerAsync();

        var unknown = await t.Client.SendAsync(new Signature("nosuchtask", TaskArgument.Int64(1)));
        var next = await t.Client.SendAsync(new Signature("add", TaskArgument.Int64(4), TaskArgument.Int64(5)));

        var error = await Assert.ThrowsAsync<TaskFailedException>(async () => await unknown.GetAsync(Wait));
        Assert.Contains("not registered", error.TaskError, StringComparison.Ordinal);
        Assert.Contains("dead-lettered", error.TaskError, StringComparison.Ordinal);
        Assert.Equal(9L, await next.GetValueAsync<long>(Wait));
        // The state is recorded before the message moves to the dead-letter store (so a crash between the two
        // redelivers the message rather than losing the state): the letter may land a moment later.
        await ConveyorTestContext.EventuallyAsync(
            async () => (await t.Broker.GetDeadLettersAsync(10_000)).Any(d => d.Queue == t.Queue && d.Reason.Contains("not registered", StringComparison.Ordinal)),
            "the unregistered task is dead-lettered");
    }

    [Fact]
    public async Task Concurrency_ManySlowTasks_NeverMoreRunningThanTheBound()
    {
        await using var t = await ConveyorTestContext.CreateAsync(Factory);
        var running = 0;
        var peak = 0;
        t.Registry.Register("slow", async () =>
        {
            var now = Interlocked.Increment(ref running);
            InterlockedMax(ref peak, now);
            await Task.Delay(40);
            Interlocked.Decrement(ref running);
        });
        await t.StartWorkerAsync(o =>
        {
            o.Concurrency = 3;
            o.Prefetch = 6;
        });

        var results = new List<AsyncResult>();
        for (var i = 0; i < 15; i++)
        {
            results.Add(await t.Client.SendAsync(new Signature("slow")));
        }

        foreach (var result in results)
        {
            await result.GetAsync(Wait);
        }

        Assert.Equal(3, Volatile.Read(ref peak));
    }

    [Fact]
    public async Task GracefulShutdown_RunningTaskFinishes_UnstartedMessagesAreHandedBack()
    {
        await using var t = await ConveyorTestContext.CreateAsync(Factory);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        t.Registry.Register("step", async (long x) =>
        {
            entered.TrySetResult();
            await gate.Task;
            return x;
        });
        var first = await t.StartWorkerAsync(o =>
        {
            o.Concurrency = 1;
            o.Prefetch = 4;
        });

        var results = new List<AsyncResult>();
        for (var i = 0; i < 4; i++)
        {
            results.Add(await t.Client.SendAsync(new Signature("step", TaskArgument.Int64(i))));
        }

        await entered.Task.WaitAsync(Wait);
        var stopping = t.StopWorkerAsync(first);
        // The stop is requested before StopAsync first awaits; with the handler held it cannot have ended, and when
        // it ends the task must be settled (nothing in flight).
        Assert.False(stopping.IsCompleted, "the worker stopped while its task ran");
        var inFlightWhenStopped = stopping.ContinueWith(_ => first.InFlight, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        gate.SetResult();
        await stopping;
        Assert.Equal(0, await inFlightWhenStopped);

        var states = await Task.WhenAll(results.Select(async r => (await r.GetStateAsync())!.State));
        Assert.Equal(1, states.Count(s => s == TaskState.Success));
        Assert.Equal(3, states.Count(s => s == TaskState.Pending));

        await t.StartWorkerAsync();
        for (var i = 0; i < 4; i++)
        {
            Assert.Equal(i, await results[i].GetValueAsync<long>(Wait));
        }
    }

    [Fact]
    public async Task GracefulShutdown_GracePeriodEnds_RunningTaskIsCanceledAndHandedBack()
    {
        await using var t = await ConveyorTestContext.CreateAsync(Factory);
        var firstRun = true;
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        t.Registry.Register("long", async (CancellationToken ct) =>
        {
            if (Interlocked.Exchange(ref firstRun, false))
            {
                entered.TrySetResult();
                await Task.Delay(Timeout.Infinite, ct);
            }

            return "done";
        });
        var worker = await t.StartWorkerAsync(o =>
        {
            o.Concurrency = 1;
            o.ShutdownGracePeriod = TimeSpan.FromMilliseconds(100);
        });

        var result = await t.Client.SendAsync(new Signature("long"));
        await entered.Task.WaitAsync(Wait);
        await t.StopWorkerAsync(worker);
        Assert.NotEqual(TaskState.Failure, (await result.GetStateAsync())!.State);

        await t.StartWorkerAsync();
        Assert.Equal("done", await result.GetValueAsync<string>(Wait));
    }

    [Fact]
    public async Task Eta_DelayedTask_DoesNotRunBeforeItsTime()
    {
        await using var t = await ConveyorTestContext.CreateAsync(Factory);
        DateTimeOffset? ranAt = null;
        t.Registry.Register("stamp", () =>
        {
            ranAt = DateTimeOffset.UtcNow;
            return "ran";
        });
        await t.StartWorkerAsync();

        var eta = DateTimeOffset.UtcNow.AddMilliseconds(1200);
        var result = await t.Client.SendAsync(new Signature("stamp") { Eta = eta });
        var now = await t.Client.SendAsync(new Signature("stamp"));
        await now.GetAsync(Wait);
        Assert.Equal(TaskState.Pending, (await result.GetStateAsync())!.State);

        Assert.Equal("ran", await result.GetValueAsync<string>(Wait));
        Assert.True(ranAt >= eta.AddMilliseconds(-50), $"ran at {ranAt:O}, ETA {eta:O}");
    }

    [Fact]
    public async Task BeforeAndAfterHooks_RunAroundEachTask_AndAThrowingHookChangesNothing()
    {
        await using var t = await ConveyorTestContext.CreateAsync(Factory);
        var events = new ConcurrentQueue<string>();
        t.Registry.Register("add", (long a, long b) =>
        {
            events.Enqueue("run");
            return a + b;
        });
        t.Registry.Register("fail", string () => throw new InvalidOperationException("x"));
        await t.StartWorkerAsync(o =>
        {
            o.Concurrency = 1;
            o.BeforeTask = c =>
            {
                events.Enqueue("before " + c.TaskName);
                throw new InvalidOperationException("hook bug");
            };
            o.AfterTask = (c, s) =>
            {
                events.Enqueue($"after {c.TaskName} {s.State.ToWireName()}");
                return ValueTask.CompletedTask;
            };
            o.OnError = (c, e) =>
            {
                events.Enqueue($"error {c.TaskName} {e.Message}");
                return ValueTask.CompletedTask;
            };
        });

        Assert.Equal(3L, await (await t.Client.SendAsync(new Signature("add", TaskArgument.Int64(1), TaskArgument.Int64(2)))).GetValueAsync<long>(Wait));
        await Assert.ThrowsAsync<TaskFailedException>(async () => await (await t.Client.SendAsync(new Signature("fail"))).GetAsync(Wait));
        await ConveyorTestContext.EventuallyAsync(() => Task.FromResult(events.Count >= 6), "six hook events");

        Assert.Equal(["before add", "run", "after add SUCCESS", "before fail", "error fail x", "after fail FAILURE"], events.ToArray());
    }

    /// <summary>
    /// Stops the worker (it settles what it ran and hands back what it did not start), then checks that the queue
    /// holds nothing: a duplicate message (a second chord callback, a redelivered member) would be left in it or
    /// would have run before the stop. This replaces waiting a while for something that must not happen.
    /// </summary>
    private static async Task StopAndAssertQueueSettledAsync(ConveyorTestContext t, ConveyorWorker worker)
    {
        await t.StopWorkerAsync(worker);
        QueueStatistics? stats = null;
        await ConveyorTestContext.EventuallyAsync(
            async () => (stats = await t.Broker.GetQueueStatisticsAsync(t.Queue)) is { Ready: 0, Delayed: 0, InFlight: 0 },
            "nothing left in the queue after the worker stopped");
        Assert.Equal(0, stats!.Ready + stats.Delayed + stats.InFlight);
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int current;
        while ((current = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, current) != current)
        {
        }
    }
}
