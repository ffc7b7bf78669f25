using System.Collections.Concurrent;
using Conveyor.InMemory;
using Microsoft.Extensions.Time.Testing;

namespace Conveyor.Tests.Core;

public sealed class RetryAndTimeTests
{
    [Theory]
    [InlineData(0, 1)]
    [InlineData(1, 2)]
    [InlineData(2, 3)]
    [InlineData(3, 5)]
    [InlineData(5, 8)]
    [InlineData(8, 13)]
    [InlineData(4, 5)]
    public void FibonacciNext_MatchesMachinery(int current, int expected) => Assert.Equal(expected, FibonacciRetryPolicy.Next(current));

    [Fact]
    public void ExponentialRetryPolicy_DelayStaysWithinTheGrowingCeilingAndTheMaximum()
    {
        var policy = new ExponentialRetryPolicy(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(10), new Random(42));
        var delays = Enumerable.Range(1, 8).Select(attempt => (attempt, delay: policy.NextDelay(new Signature("x"), attempt))).ToList();

        Assert.All(delays, d => Assert.InRange(d.delay, TimeSpan.Zero, TimeSpan.FromSeconds(Math.Min(10, Math.Pow(2, d.attempt - 1)))));
        Assert.Contains(delays, d => d.delay > TimeSpan.FromSeconds(2));
    }

    [Fact]
    public async Task FailingTask_IsRetriedOnMachinerysFibonacciSchedule_ThenFails()
    {
        await using var world = new FakeTimeWorld();
        var runs = new ConcurrentQueue<(int Attempt, int RetryTimeout, int RetryCount)>();
        world.Registry.Register("fail", (TaskContext context) =>
        {
            runs.Enqueue((context.Attempt, context.Signature.RetryTimeout, context.Signature.RetryCount));
            throw new InvalidOperationException("boom " + context.Attempt);
        });
        await world.StartWorkerAsync();

        var result = await world.Client.SendAsync(new Signature("fail") { RetryCount = 3 });
        foreach (var (seconds, expectedRuns) in new[] { (1, 2), (2, 3), (3, 4) })
        {
            await FakeTimeWorld.EventuallyAsync(async () => runs.Count == expectedRuns - 1 && (await world.Broker.GetQueueStatisticsAsync("tasks")).Delayed == 1, $"run {expectedRuns - 1} scheduled its retry");
            Assert.Equal(TaskState.Pending, await world.StateAsync(result.TaskId)); // RETRY, then PENDING again as machinery writes it
            world.Time.Advance(TimeSpan.FromSeconds(seconds) - TimeSpan.FromMilliseconds(1));
            await Task.Delay(50);
            Assert.Equal(expectedRuns - 1, runs.Count);
            world.Time.Advance(TimeSpan.FromMilliseconds(1));
            await FakeTimeWorld.EventuallyAsync(() => runs.Count == expectedRuns, $"retry {expectedRuns - 1} runs after {seconds} s");
        }

        var final = await result.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(TaskState.Failure, final.State);
        Assert.Equal("boom 4", final.Error);
        Assert.Equal([(1, 0, 3), (2, 1, 2), (3, 2, 1), (4, 3, 0)], runs.ToArray());
    }

    [Fact]
    public async Task RetryLater_WaitsTheRequestedDelay()
    {
        await using var world = new FakeTimeWorld();
        var runs = 0;
        world.Registry.Register("later", (TaskContext context) =>
        {
            Interlocked.Increment(ref runs);
            return context.Attempt == 1 ? throw new RetryTaskLaterException(TimeSpan.FromMinutes(5)) : "done";
        });
        await world.StartWorkerAsync();

        var result = await world.Client.SendAsync(new Signature("later") { RetryCount = 1 });
        await FakeTimeWorld.EventuallyAsync(async () => (await world.Broker.GetQueueStatisticsAsync("tasks")).Delayed == 1, "the retry is scheduled");
        world.Time.Advance(TimeSpan.FromMinutes(4));
        await Task.Delay(50);
        Assert.Equal(1, Volatile.Read(ref runs));
        world.Time.Advance(TimeSpan.FromMinutes(1));

        Assert.Equal("done", await result.GetValueAsync<string>(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task TaskTimeout_CancelsTheHandlersTokenAndFailsAsTimedOut()
    {
        await using var world = new FakeTimeWorld();
        var canceled = false;
        world.Registry.Register("wait", async (CancellationToken ct) =>
        {
            try
            {
                await Task.Delay(Timeout.Infinite, ct);
            }
            catch (OperationCanceledException)
            {
                canceled = true;
                throw;
            }
        });
        await world.StartWorkerAsync(o => o.TaskTimeout = TimeSpan.FromSeconds(10));

        var result = await world.Client.SendAsync(new Signature("wait"));
        await FakeTimeWorld.EventuallyAsync(async () => await world.StateAsync(result.TaskId) == TaskState.Started, "the task starts");
        world.Time.Advance(TimeSpan.FromSeconds(9));
        await Task.Delay(50);
        Assert.Equal(TaskState.Started, await world.StateAsync(result.TaskId));
        world.Time.Advance(TimeSpan.FromSeconds(1));

        var final = await result.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(TaskState.Failure, final.State);
        Assert.Equal("task timed out after 10 s", final.Error);
        await FakeTimeWorld.EventuallyAsync(() => Volatile.Read(ref canceled), "the handler's token is canceled");
    }

    [Fact]
    public async Task UnregisteredTask_UnderRequeuePolicy_ComesBackAfterTheDelayInsteadOfALoop()
    {
        await using var world = new FakeTimeWorld();
        await world.StartWorkerAsync(o =>
        {
            o.UnregisteredTasks = UnregisteredTaskPolicy.Requeue;
            o.UnregisteredRequeueDelay = TimeSpan.FromSeconds(30);
        });

        var result = await world.Client.SendAsync(new Signature("late_handler", TaskArgument.Int64(7)));
        await FakeTimeWorld.EventuallyAsync(async () => (await world.Broker.GetQueueStatisticsAsync("tasks")).Delayed == 1, "the message is handed back with a delay");
        Assert.Equal(TaskState.Pending, await world.StateAsync(result.TaskId));
        Assert.Empty(await world.Broker.GetDeadLettersAsync(10));

        world.Registry.Register("late_handler", (long x) => x * 6);
        world.Time.Advance(TimeSpan.FromSeconds(30));
        Assert.Equal(42L, await result.GetValueAsync<long>(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task InMemoryBroker_EtaMessage_IsDeliveredOnlyWhenTheClockReachesIt()
    {
        var time = new FakeTimeProvider();
        await using var broker = new InMemoryBroker(time);
        await broker.PublishAsync(new OutgoingMessage("task_a", "q", "late"u8.ToArray()) { Eta = time.GetUtcNow().AddHours(1) });
        await using var consumer = await broker.ConsumeAsync("q", new ConsumeOptions { Prefetch = 1 });

        time.Advance(TimeSpan.FromMinutes(59));
        await Task.Delay(50);
        Assert.False(consumer.Deliveries.TryRead(out _));
        time.Advance(TimeSpan.FromMinutes(1));

        var delivery = await consumer.Deliveries.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal("late", System.Text.Encoding.UTF8.GetString(delivery.Body.Span));
    }

    [Fact]
    public async Task InMemoryBackend_StatesExpireAfterTheirTtl()
    {
        var time = new FakeTimeProvider();
        await using var backend = new InMemoryResultBackend(TimeSpan.FromMinutes(1), time);
        await backend.SetStateAsync(new TaskStateRecord { TaskId = "task_x", State = TaskState.Success, Results = [] });

        time.Advance(TimeSpan.FromSeconds(59));
        Assert.NotNull(await backend.GetStateAsync("task_x"));
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.Null(await backend.GetStateAsync("task_x"));
    }
}
