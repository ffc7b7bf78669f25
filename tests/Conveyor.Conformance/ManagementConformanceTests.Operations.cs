namespace Conveyor.Conformance;

/// <summary>
/// What operators' views use (the dashboard): throughput counters, queue summaries, the oldest pending task, search
/// by argument text, single dead letters, schedule switches.
/// </summary>
public abstract partial class ManagementConformanceTests<TFactory>
{
    [Fact]
    public async Task Throughput_WorkerFinishesTasks_CountsThemPerMinuteForItsQueue()
    {
        await using var m = await CreateAsync();
        m.T.Registry.Register("add", (long a, long b) => a + b);
        m.T.Registry.Register("boom", string () => throw new InvalidOperationException("boom"));
        await m.StartWorkerAsync();
        AsyncResult? last = null;
        for (var i = 0; i < 3; i++)
        {
            last = await m.T.Client.SendAsync(new Signature("add", TaskArgument.Int64(i), TaskArgument.Int64(1)));
        }

        var failed = await m.T.Client.SendAsync(new Signature("boom"));
        await last!.WaitAsync(Wait);
        await failed.WaitAsync(Wait);

        // The counts travel with the next heartbeat (every 200 ms here).
        await ConveyorTestContext.EventuallyAsync(
            async () => (await m.Api.GetThroughputAsync(5, m.T.Queue)).Sum(s => s.Succeeded + s.Failed) == 4,
            "the four finished tasks are counted");
        var minutes = await m.Api.GetThroughputAsync(5, m.T.Queue);
        Assert.Equal(5, minutes.Count);
        Assert.Equal(3, minutes.Sum(s => s.Succeeded));
        Assert.Equal(1, minutes.Sum(s => s.Failed));
        Assert.Equal(ThroughputSample.MinuteOf(DateTimeOffset.UtcNow), minutes[^1].Minute, TimeSpan.FromMinutes(1));

        var summary = Assert.Single(await m.Api.ListQueuesAsync(), q => q.Queue == m.T.Queue);
        Assert.Equal(3, summary.SucceededLastHour);
        Assert.Equal(1, summary.FailedLastHour);
        Assert.Equal(0.25, summary.ErrorRate);
    }

    [Fact]
    public async Task RecordThroughput_SamplesOfOneMinute_AddUpAndKeepTheirMinutes()
    {
        await using var m = await CreateAsync();
        var now = ThroughputSample.MinuteOf(DateTimeOffset.UtcNow);
        var other = m.T.Queue + "-other";
        await m.Store.RecordThroughputAsync([new ThroughputSample(m.T.Queue, now, 5, 1), new ThroughputSample(other, now, 7, 0)]);
        await m.Store.RecordThroughputAsync([new ThroughputSample(m.T.Queue, now.AddSeconds(30), 2, 2), new ThroughputSample(m.T.Queue, now.AddMinutes(-2), 9, 0)]);

        var read = (await m.Store.ReadThroughputAsync(now.AddMinutes(-3), now)).Where(s => s.Queue == m.T.Queue || s.Queue == other).ToList();

        Assert.Contains(new ThroughputSample(m.T.Queue, now, 7, 3), read);
        Assert.Contains(new ThroughputSample(other, now, 7, 0), read);
        Assert.Contains(new ThroughputSample(m.T.Queue, now.AddMinutes(-2), 9, 0), read);
        Assert.Equal(3, read.Count);
        var series = await m.Api.GetThroughputAsync(3, m.T.Queue);
        Assert.Equal([9L, 0L, 7L], series.Select(s => s.Succeeded));
    }

    [Fact]
    public async Task GetOldestPending_TasksWaiting_IsTheFirstOnesPublishTime()
    {
        await using var m = await CreateAsync();
        Assert.Null(await m.Api.GetOldestPendingAsync(m.T.Queue));
        var first = await m.T.Client.SendAsync(new Signature("add", TaskArgument.Int64(1), TaskArgument.Int64(2)));
        await m.T.Client.SendAsync(new Signature("add", TaskArgument.Int64(3), TaskArgument.Int64(4)));

        var oldest = await m.Api.GetOldestPendingAsync(m.T.Queue);

        var state = await m.T.Backend.GetStateAsync(first.TaskId);
        Assert.Equal(state!.CreatedAt, oldest!.Value, TimeSpan.FromMilliseconds(1));
        var summary = Assert.Single(await m.Api.ListQueuesAsync(), q => q.Queue == m.T.Queue);
        Assert.Equal(2, summary.Statistics.Ready);
        Assert.NotNull(summary.OldestPendingAge);
        Assert.False(summary.Paused);
    }

    [Fact]
    public async Task SearchTasks_ArgumentText_FindsEveryMatchAcrossPagesIgnoringCase()
    {
        await using var m = await CreateAsync();
        var needles = new List<string>();
        for (var i = 0; i < 30; i++)
        {
            var text = i % 10 == 3 ? $"Invoice-NEEDLE-{i}" : $"invoice-{i}";
            var sent = await m.T.Client.SendAsync(new Signature("mail", TaskArgument.String(text), TaskArgument.Int64(i)));
            if (i % 10 == 3)
            {
                needles.Add(sent.TaskId);
            }
        }

        var found = new List<TaskSummary>();
        string? after = null;
        var pages = 0;
        do
        {
            var page = await m.Api.SearchTasksAsync(new TaskQuery { State = ManagedTaskState.Pending, Limit = 2, After = after }, "needle");
            found.AddRange(page.Tasks);
            after = page.Next;
        }
        while (after is not null && ++pages < 20);

        Assert.Equal(needles, found.Select(t => t.Id));
        Assert.Single((await m.Api.SearchTasksAsync(new TaskQuery { State = ManagedTaskState.Pending, Limit = 50 }, needles[1])).Tasks); // by id
        Assert.Equal(30, (await m.Api.SearchTasksAsync(new TaskQuery { State = ManagedTaskState.Pending, Limit = 50 }, "MAIL")).Tasks.Count); // by name
    }

    [Fact]
    public async Task DeadLetters_RequeueOneAndDeleteOne_ChangeOnlyThoseLetters()
    {
        await using var m = await CreateAsync();
        var worker = await m.StartWorkerAsync(); // no handler for "unknown": each is dead-lettered
        var sent = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            sent.Add((await m.T.Client.SendAsync(new Signature("unknown", TaskArgument.Int64(i)))).TaskId);
        }

        await ConveyorTestContext.EventuallyAsync(async () => (await m.Api.ListDeadLettersAsync(m.T.Queue)).Letters.Count == 3, "three dead letters");
        await worker.StopAsync(CancellationToken.None);
        var letters = (await m.Api.ListDeadLettersAsync(m.T.Queue)).Letters;
        Assert.Equal(sent.Order(StringComparer.Ordinal), letters.Select(l => l.Task.Id).Order(StringComparer.Ordinal)); // in dead-letter order, which four runners do not keep
        Assert.All(letters, l => Assert.False(string.IsNullOrEmpty(l.Task.Error)));

        Assert.True(await m.Api.RequeueDeadLetterAsync(letters[0].DeadLetterId));
        Assert.True(await m.Api.DeleteDeadLetterAsync(letters[1].DeadLetterId));
        Assert.False(await m.Api.RequeueDeadLetterAsync(letters[0].DeadLetterId)); // already moved: nothing twice
        Assert.False(await m.Api.DeleteDeadLetterAsync(letters[1].DeadLetterId));

        var left = Assert.Single((await m.Api.ListDeadLettersAsync(m.T.Queue)).Letters);
        Assert.Equal(letters[2].DeadLetterId, left.DeadLetterId);
        var statistics = await m.T.Broker.GetQueueStatisticsAsync(m.T.Queue);
        Assert.Equal(1, statistics.DeadLettered);
        Assert.Equal(1, statistics.Ready);
        var requeued = Assert.Single((await m.Api.ListTasksAsync(new TaskQuery { State = ManagedTaskState.Pending })).Tasks);
        Assert.Equal(letters[0].Task.Id, requeued.Id);
    }

    [Fact]
    public async Task ScheduleSwitches_DisableThenEnable_AreListedForEveryReader()
    {
        await using var m = await CreateAsync();
        var name = m.T.Queue + "-nightly";
        await m.Api.SetScheduleEnabledAsync(name, enabled: false);
        await m.Api.SetScheduleEnabledAsync(name, enabled: false);
        Assert.Contains(name, await m.Api.ListDisabledSchedulesAsync());

        await m.Api.SetScheduleEnabledAsync(name, enabled: true);
        Assert.DoesNotContain(name, await m.Api.ListDisabledSchedulesAsync());
    }

    [Fact]
    public async Task PurgeQueue_PendingTasks_RemovesThemAndSaysHowMany()
    {
        await using var m = await CreateAsync();
        for (var i = 0; i < 4; i++)
        {
            await m.T.Client.SendAsync(new Signature("add", TaskArgument.Int64(i), TaskArgument.Int64(i)));
        }

        Assert.Equal(4, await m.Api.PurgeQueueAsync(m.T.Queue));
        Assert.Equal(0, (await m.T.Broker.GetQueueStatisticsAsync(m.T.Queue)).Ready);
    }
}
