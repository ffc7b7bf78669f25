using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using Conveyor.Diagnostics;
using Conveyor.InMemory;
using Conveyor.Serialization;

namespace Conveyor.Tests.Core;

/// <summary>The periodic scheduler on in-memory providers and a fake clock: ticks come when the test advances it.</summary>
public sealed class SchedulerTests : IAsyncDisposable
{
    private static readonly TimeSpan Second = TimeSpan.FromSeconds(1);
    private readonly FakeTimeWorld _world = new();
    private readonly InMemoryDistributedLock _locks;
    private readonly List<ConveyorScheduler> _schedulers = [];

    public SchedulerTests() => _locks = new InMemoryDistributedLock(_world.Time);

    public async ValueTask DisposeAsync()
    {
        foreach (var scheduler in _schedulers)
        {
            await scheduler.StopAsync(CancellationToken.None);
            scheduler.Dispose();
        }

        await _world.DisposeAsync();
    }

    private static string Tick(DateTimeOffset tick) => tick.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    private async Task<ConveyorScheduler> StartAsync(SchedulerOptions? options = null, ConveyorClient? client = null)
    {
        var scheduler = new ConveyorScheduler(client ?? _world.Client, _locks, options);
        _schedulers.Add(scheduler);
        await scheduler.StartAsync(CancellationToken.None);
        await FakeTimeWorld.EventuallyAsync(() => scheduler.Passes >= 1, "the scheduler's first pass");
        return scheduler;
    }

    private static SchedulerOptions With(params PeriodicSchedule[] schedules)
    {
        var options = new SchedulerOptions();
        foreach (var schedule in schedules)
        {
            options.Schedules.Add(schedule);
        }

        return options;
    }

    /// <summary>Advances the clock and waits until every scheduler has made a pass after it.</summary>
    private async Task AdvanceAsync(TimeSpan by)
    {
        var passes = _schedulers.Select(s => s.Passes).ToArray();
        _world.Time.Advance(by);
        await FakeTimeWorld.EventuallyAsync(() => _schedulers.Select((s, i) => s.Passes > passes[i]).All(x => x), "a pass of every scheduler");
    }

    private async Task<List<Signature>> DrainAsync(string queue = "tasks")
    {
        var count = (int)(await _world.Broker.GetQueueStatisticsAsync(queue)).Ready;
        var messages = new List<Signature>();
        if (count == 0)
        {
            return messages;
        }

        await using var consumer = await _world.Broker.ConsumeAsync(queue, new ConsumeOptions { Prefetch = count });
        while (messages.Count < count)
        {
            var delivery = await consumer.Deliveries.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));
            messages.Add(WireFormat.DeserializeSignature(delivery.Body.Span));
            await delivery.AckAsync();
        }

        return messages;
    }

    [Fact]
    public async Task Scheduler_ThreeSchedulersOneStore_PublishEachTickExactlyOnce()
    {
        var schedule = new PeriodicSchedule("tick", ScheduleTrigger.Cron("*/1 * * * * *"), new Signature("tick", TaskArgument.Int64(1)));
        for (var i = 0; i < 3; i++)
        {
            await StartAsync(With(schedule));
        }

        var start = _world.Time.GetUtcNow();
        for (var k = 0; k < 10; k++)
        {
            await AdvanceAsync(Second);
        }

        var messages = await DrainAsync();
        Assert.Equal(10, messages.Count);
        Assert.Equal(Enumerable.Range(1, 10).Select(i => Tick(start.AddSeconds(i))), messages.Select(m => m.GetHeader(ConveyorScheduler.TickHeader)).Order(StringComparer.Ordinal));
        Assert.All(messages, m => Assert.Equal("tick", m.GetHeader(ConveyorScheduler.ScheduleHeader)));
        Assert.Equal(10, messages.Select(m => m.Id).Distinct().Count());
        Assert.Equal(start.AddSeconds(10), await _schedulers[0].GetLastTickAsync("tick"));
    }

    [Fact]
    public async Task Scheduler_ThreeSchedulers_CountTicksByOutcome()
    {
        using var diagnostics = new ConveyorDiagnostics();
        var counts = new ConcurrentDictionary<string, long>();
        using var listener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter == diagnostics.Meter && instrument.Name == "conveyor.schedule.ticks")
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            var outcome = tags.ToArray().Single(t => t.Key == "conveyor.schedule.outcome").Value as string;
            counts.AddOrUpdate(outcome!, value, (_, old) => old + value);
        });
        listener.Start();
        var client = new ConveyorClient(_world.Broker, _world.Backend, new ConveyorClientOptions { DefaultQueue = "tasks" }, _world.Time, diagnostics: diagnostics);
        var schedule = new PeriodicSchedule("tick", ScheduleTrigger.Every(Second), new Signature("tick"));
        for (var i = 0; i < 3; i++)
        {
            await StartAsync(With(schedule), client);
        }

        for (var k = 0; k < 3; k++)
        {
            await AdvanceAsync(Second);
        }

        Assert.Equal(3, counts.GetValueOrDefault("published"));
        Assert.Equal(6, counts.GetValueOrDefault("claimed_elsewhere"));
        Assert.False(counts.ContainsKey("failed"));
    }

    [Fact]
    public void Cron_FiveOrSixFields_MinutesOrSeconds()
    {
        var at = new DateTimeOffset(2026, 11, 27, 4, 0, 0, TimeSpan.Zero);
        Assert.Equal([at.AddSeconds(15), at.AddSeconds(30), at.AddSeconds(45)], ScheduleTrigger.Cron("*/15 * * * * *").GetNextOccurrences(at, 3));
        Assert.Equal([at.AddMinutes(5), at.AddMinutes(10)], ScheduleTrigger.Cron("*/5 * * * *").GetNextOccurrences(at, 2));
        Assert.Equal(at.AddHours(1), ScheduleTrigger.Cron("@hourly").GetNextOccurrence(at));
    }

    [Fact]
    public void Cron_DailyInBerlinAcrossDaylightSaving_TicksOncePerDayAtLocalTime()
    {
        var berlin = TimeZoneInfo.FindSystemTimeZoneById("Europe/Berlin");
        var trigger = ScheduleTrigger.Cron("30 2 * * *", berlin);

        // Spring forward (29 March 2026, 02:00 -> 03:00): 02:30 does not exist and runs at the change, 01:00 UTC.
        var spring = trigger.GetNextOccurrences(new DateTimeOffset(2026, 3, 27, 12, 0, 0, TimeSpan.Zero), 3);
        Assert.Equal(
            [new DateTimeOffset(2026, 3, 28, 1, 30, 0, TimeSpan.Zero), new DateTimeOffset(2026, 3, 29, 1, 0, 0, TimeSpan.Zero), new DateTimeOffset(2026, 3, 30, 0, 30, 0, TimeSpan.Zero)],
            spring);

        // Fall back (25 October 2026, 03:00 -> 02:00): 02:30 happens twice and runs once.
        var autumn = trigger.GetNextOccurrences(new DateTimeOffset(2026, 10, 24, 12, 0, 0, TimeSpan.Zero), 2);
        Assert.Equal([new DateTimeOffset(2026, 10, 25, 0, 30, 0, TimeSpan.Zero), new DateTimeOffset(2026, 10, 26, 1, 30, 0, TimeSpan.Zero)], autumn);
        Assert.All(spring.Concat(autumn), t => Assert.Equal(TimeSpan.Zero, t.Offset));
    }

    [Fact]
    public void Every_IsAnchoredAtTheUnixEpoch_NotAtWhenAskedFirst()
    {
        var trigger = ScheduleTrigger.Every(TimeSpan.FromSeconds(7));
        var a = trigger.GetNextOccurrence(new DateTimeOffset(2026, 11, 27, 4, 0, 0, 123, TimeSpan.Zero))!.Value;
        var b = ScheduleTrigger.Every(TimeSpan.FromSeconds(7)).GetNextOccurrence(new DateTimeOffset(2026, 11, 27, 4, 0, 3, 456, TimeSpan.Zero))!.Value;

        Assert.Equal(0, a.ToUnixTimeMilliseconds() % 7000);
        Assert.Equal(a, b);
        Assert.Equal(a.AddSeconds(7), trigger.GetNextOccurrence(a));
        Assert.Equal(new DateTimeOffset(2026, 11, 27, 4, 0, 10, TimeSpan.Zero), ScheduleTrigger.Every(TimeSpan.FromSeconds(10)).GetNextOccurrence(new DateTimeOffset(2026, 11, 27, 4, 0, 0, TimeSpan.Zero)));
        Assert.Throws<ArgumentOutOfRangeException>(() => ScheduleTrigger.Every(TimeSpan.FromTicks(5)));
    }

    [Fact]
    public async Task Skip_AfterAStallOfTenMinutes_DropsTheLateTicksAndGoesOn()
    {
        await StartAsync(With(new PeriodicSchedule("minutely", ScheduleTrigger.Cron("* * * * *"), new Signature("report"))));
        var start = _world.Time.GetUtcNow(); // 12:00:00

        await AdvanceAsync(TimeSpan.FromMinutes(1));
        await AdvanceAsync(TimeSpan.FromMinutes(10).Add(TimeSpan.FromSeconds(30))); // stalled: ten ticks are late
        await AdvanceAsync(TimeSpan.FromSeconds(30));

        var ticks = (await DrainAsync()).Select(m => m.GetHeader(ConveyorScheduler.TickHeader)).ToList();
        Assert.Equal([Tick(start.AddMinutes(1)), Tick(start.AddMinutes(12))], ticks);
    }

    [Fact]
    public async Task CatchUp_AfterAStallOfTenMinutes_PublishesTheMostRecentMaxCatchUpTicksOnce()
    {
        var schedule = new PeriodicSchedule("minutely", ScheduleTrigger.Cron("* * * * *"), new Signature("report")) { Misfire = MisfirePolicy.CatchUp, MaxCatchUp = 3 };
        await StartAsync(With(schedule));
        var start = _world.Time.GetUtcNow();

        await AdvanceAsync(TimeSpan.FromMinutes(1));
        await AdvanceAsync(TimeSpan.FromMinutes(10).Add(TimeSpan.FromSeconds(30)));
        await AdvanceAsync(TimeSpan.FromSeconds(30));

        var ticks = (await DrainAsync()).Select(m => m.GetHeader(ConveyorScheduler.TickHeader)).ToList();
        Assert.Equal([start.AddMinutes(1), start.AddMinutes(9), start.AddMinutes(10), start.AddMinutes(11), start.AddMinutes(12)], ticks.Select(t => DateTimeOffset.Parse(t!, CultureInfo.InvariantCulture)));
    }

    [Fact]
    public async Task CatchUp_OnStart_PublishesTicksMissedSinceTheLastClaimedOne()
    {
        var start = _world.Time.GetUtcNow();
        Assert.True(await _locks.TryAdvanceFenceAsync(ConveyorScheduler.FenceName("minutely"), start.AddMinutes(-5).ToUnixTimeMilliseconds()));
        var schedule = new PeriodicSchedule("minutely", ScheduleTrigger.Cron("* * * * *"), new Signature("report")) { Misfire = MisfirePolicy.CatchUp, MaxCatchUp = 10 };

        await StartAsync(With(schedule));

        var ticks = (await DrainAsync()).Select(m => m.GetHeader(ConveyorScheduler.TickHeader)).ToList();
        Assert.Equal(Enumerable.Range(-4, 5).Select(i => Tick(start.AddMinutes(i))), ticks);
    }

    [Fact]
    public async Task Remove_WhileRunning_NoTickAfterwards_AndTheOtherSchedulesGoOn()
    {
        var scheduler = await StartAsync(With(
            new PeriodicSchedule("tick", ScheduleTrigger.Every(Second), new Signature("tick")),
            new PeriodicSchedule("other", ScheduleTrigger.Every(Second), new Signature("other"))));
        await AdvanceAsync(Second);
        await AdvanceAsync(Second);

        Assert.True(scheduler.Remove("tick"));
        Assert.False(scheduler.Remove("tick"));
        for (var k = 0; k < 5; k++)
        {
            await AdvanceAsync(Second);
        }

        var published = (await DrainAsync()).GroupBy(m => m.Name).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(2, published["tick"]);
        Assert.Equal(7, published["other"]);
        Assert.Equal("other", Assert.Single(scheduler.Schedules).Name);
        Assert.Null(scheduler.GetNextTick("tick"));
    }

    [Fact]
    public async Task Add_WhileRunning_TicksFromTheNextTickOn()
    {
        var scheduler = await StartAsync(); // an empty scheduler waits for a change

        var passes = scheduler.Passes;
        scheduler.Add(new PeriodicSchedule("late", ScheduleTrigger.Every(TimeSpan.FromSeconds(2)), new Signature("tick")));
        await FakeTimeWorld.EventuallyAsync(() => scheduler.Passes > passes, "the pass after Add");
        Assert.Equal("late", Assert.Single(scheduler.Schedules).Name);
        Assert.Equal(_world.Time.GetUtcNow().AddSeconds(2), scheduler.GetNextTick("late"));

        await AdvanceAsync(TimeSpan.FromSeconds(2));
        await AdvanceAsync(TimeSpan.FromSeconds(2));

        Assert.Equal(2, (await DrainAsync()).Count);
    }

    [Fact]
    public async Task Schedules_GroupChordAndChain_CarryTheHeadersOnEveryMemberCallbackAndLink_WithFreshIds()
    {
        var every = ScheduleTrigger.Every(Second);
        await StartAsync(With(
            new PeriodicSchedule("group", every, new TaskGroup(new Signature("a"), new Signature("b"))),
            new PeriodicSchedule("chord", every, new Chord(new TaskGroup(new Signature("c"), new Signature("d")), new Signature("sum"))),
            new PeriodicSchedule("chain", every, new Chain(new Signature("x"), new Signature("y"), new Signature("z")))));
        var tick = Tick(_world.Time.GetUtcNow().AddSeconds(1));

        await AdvanceAsync(Second);
        var first = await DrainAsync();
        await AdvanceAsync(Second);
        var second = await DrainAsync();

        Assert.Equal(["a", "b", "c", "d", "x"], first.Select(m => m.Name).Order(StringComparer.Ordinal));
        var everySignature = first
            .Concat(first.Where(m => m.ChordCallback is not null).Select(m => m.ChordCallback!))
            .Concat(Links(first.Single(m => m.Name == "x")).Skip(1))
            .ToList();
        Assert.Equal(9, everySignature.Count);
        Assert.All(everySignature, s => Assert.Equal(tick, s.GetHeader(ConveyorScheduler.TickHeader)));
        Assert.Equal(["chain", "chain", "chain", "chord", "chord", "chord", "chord", "group", "group"], everySignature.Select(s => s.GetHeader(ConveyorScheduler.ScheduleHeader)!).Order(StringComparer.Ordinal));
        Assert.StartsWith("chord_", first.First(m => m.Name == "c").ChordCallback!.Id, StringComparison.Ordinal);
        Assert.Equal(first.Single(m => m.Name == "c").GroupId, first.Single(m => m.Name == "d").GroupId);

        Assert.Equal(5, second.Count);
        Assert.Empty(first.Select(m => m.Id).Intersect(second.Select(m => m.Id)));
        Assert.Empty(first.Select(m => m.GroupId).Where(g => g.Length > 0).Intersect(second.Select(m => m.GroupId)));
    }

    private static IEnumerable<Signature> Links(Signature first)
    {
        for (var link = first; link is not null; link = link.OnSuccess.FirstOrDefault())
        {
            yield return link;
        }
    }

    [Fact]
    public async Task Scheduler_StoreFailsForATick_LogsAndPublishesTheNextTick()
    {
        var flaky = new FlakyLock(_locks) { Failing = true };
        var scheduler = new ConveyorScheduler(_world.Client, flaky, With(new PeriodicSchedule("tick", ScheduleTrigger.Every(Second), new Signature("tick"))));
        _schedulers.Add(scheduler);
        await scheduler.StartAsync(CancellationToken.None);
        await FakeTimeWorld.EventuallyAsync(() => scheduler.Passes >= 1, "the first pass");

        await AdvanceAsync(Second);
        flaky.Failing = false;
        await AdvanceAsync(Second);

        Assert.Single(await DrainAsync());
        Assert.False(scheduler.ExecuteTask!.IsCompleted);
    }

    [Fact]
    public void FromOptions_ValidSettings_MakeASchedule_AndDisabledGivesNone()
    {
        var options = new ScheduleOptions { Cron = "0 8 * * 1-5", TimeZone = "Europe/Berlin", Task = "report", Args = ["int64:7", "[]string:a,b"], Queue = "reports", Priority = 3, RetryCount = 2, Misfire = MisfirePolicy.CatchUp, MaxCatchUp = 1 };

        var schedule = PeriodicSchedule.FromOptions("report", options, "Conveyor:Schedules:report")!;

        Assert.Equal("report", schedule.Name);
        Assert.Equal("0 8 * * 1-5", schedule.Trigger.CronSpec);
        Assert.Equal("Europe/Berlin", schedule.Trigger.TimeZone.Id);
        Assert.Equal(MisfirePolicy.CatchUp, schedule.Misfire);
        Assert.Equal(1, schedule.MaxCatchUp);
        Assert.Equal(ScheduleKind.Task, schedule.Kind);
        Assert.Equal(TimeSpan.FromSeconds(10), PeriodicSchedule.FromOptions("ping", new ScheduleOptions { Interval = TimeSpan.FromSeconds(10), Task = "echo" }, "x")!.Trigger.Interval);
        Assert.Null(PeriodicSchedule.FromOptions("off", new ScheduleOptions { Cron = "* * * * *", Task = "t", Enabled = false }, "x"));
    }

    [Theory]
    [InlineData("61 * * * *", null, "cleanup", null, "Conveyor:Schedules:cleanup:Cron: '61 * * * *' is not a valid cron spec (")]
    [InlineData("* * *", null, "cleanup", null, "Conveyor:Schedules:cleanup:Cron: '* * *' is not a valid cron spec (it has 3 fields")]
    [InlineData(null, null, "cleanup", null, "Conveyor:Schedules:cleanup:Cron: a schedule needs a Cron spec")]
    [InlineData("* * * * *", "Mars/Olympus", "cleanup", null, "Conveyor:Schedules:cleanup:TimeZone: 'Mars/Olympus' is not a known time zone id")]
    [InlineData("* * * * *", null, " ", null, "Conveyor:Schedules:cleanup:Task: a schedule needs the name of the task")]
    [InlineData("* * * * *", null, "cleanup", "complex128:1", "Conveyor:Schedules:cleanup:Args:1: argument 'complex128:1': unknown type 'complex128'")]
    [InlineData("* * * * *", null, "cleanup", "int64:x", "Conveyor:Schedules:cleanup:Args:1: argument 'int64:x': 'x' is not a valid int64")]
    public void FromOptions_InvalidSetting_OneLineErrorNamesTheSetting(string? cron, string? timeZone, string task, string? badArg, string expected)
    {
        var options = new ScheduleOptions { Cron = cron, TimeZone = timeZone, Task = task, Args = badArg is null ? [] : ["int64:1", badArg] };

        var error = Assert.Throws<ArgumentException>(() => PeriodicSchedule.FromOptions("cleanup", options, "Conveyor:Schedules:cleanup"));

        Assert.StartsWith(expected, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Fact]
    public void FromOptions_BadIntervalOrBoth_ErrorNamesInterval()
    {
        var zero = Assert.Throws<ArgumentException>(() => PeriodicSchedule.FromOptions("p", new ScheduleOptions { Interval = TimeSpan.Zero, Task = "t" }, "Conveyor:Schedules:p"));
        var both = Assert.Throws<ArgumentException>(() => PeriodicSchedule.FromOptions("p", new ScheduleOptions { Interval = Second, Cron = "* * * * *", Task = "t" }, "Conveyor:Schedules:p"));
        var catchUp = Assert.Throws<ArgumentException>(() => PeriodicSchedule.FromOptions("p", new ScheduleOptions { Interval = Second, Task = "t", MaxCatchUp = 0 }, "Conveyor:Schedules:p"));

        Assert.Equal("Conveyor:Schedules:p:Interval: '00:00:00' is not a valid interval (at least 1 ms, in whole milliseconds)", zero.Message);
        Assert.Equal("Conveyor:Schedules:p:Interval: set either Cron or Interval, not both", both.Message);
        Assert.StartsWith("Conveyor:Schedules:p:MaxCatchUp: 0 is not valid", catchUp.Message, StringComparison.Ordinal);
    }

    private sealed class FlakyLock(IDistributedLock inner) : IDistributedLock
    {
        public volatile bool Failing;

        public ValueTask<ILockLease?> TryAcquireAsync(string name, TimeSpan lease, CancellationToken cancellationToken = default) => inner.TryAcquireAsync(name, lease, cancellationToken);

        public ValueTask<bool> TryAdvanceFenceAsync(string name, long token, CancellationToken cancellationToken = default) =>
            Failing ? throw new IOException("store down") : inner.TryAdvanceFenceAsync(name, token, cancellationToken);

        public ValueTask<long?> ReadFenceAsync(string name, CancellationToken cancellationToken = default) =>
            Failing ? throw new IOException("store down") : inner.ReadFenceAsync(name, cancellationToken);
    }
}
