using Conveyor.InMemory;

namespace Conveyor.Tests.Core;

/// <summary>Schedules switched off in the management store, on in-memory providers and a fake clock.</summary>
public sealed class SchedulerSwitchTests : IAsyncDisposable
{
    private readonly FakeTimeWorld _world = new();
    private readonly InMemoryDistributedLock _locks;
    private readonly InMemoryManagementStore _store;
    private ConveyorScheduler? _scheduler;

    public SchedulerSwitchTests()
    {
        _locks = new InMemoryDistributedLock(_world.Time);
        _store = new InMemoryManagementStore(_world.Broker, _world.Backend, _world.Time);
    }

    public async ValueTask DisposeAsync()
    {
        if (_scheduler is not null)
        {
            await _scheduler.StopAsync(CancellationToken.None);
            _scheduler.Dispose();
        }

        await _world.DisposeAsync();
    }

    private async Task AdvanceAsync(TimeSpan by)
    {
        var passes = _scheduler!.Passes;
        _world.Time.Advance(by);
        await FakeTimeWorld.EventuallyAsync(() => _scheduler.Passes > passes, "a scheduler pass");
    }

    private async Task<long> ReadyAsync() => (await _world.Broker.GetQueueStatisticsAsync("tasks")).Ready;

    [Fact]
    public async Task Scheduler_ScheduleDisabledInTheStore_SkipsItsTicksUntilEnabled()
    {
        var options = new SchedulerOptions { ManagementStore = _store };
        options.Schedules.Add(new PeriodicSchedule("tick", ScheduleTrigger.Every(TimeSpan.FromSeconds(1)), new Signature("tick")));
        options.Schedules.Add(new PeriodicSchedule("other", ScheduleTrigger.Every(TimeSpan.FromSeconds(1)), new Signature("other")));
        _scheduler = new ConveyorScheduler(_world.Client, _locks, options);
        await _scheduler.StartAsync(CancellationToken.None);
        await FakeTimeWorld.EventuallyAsync(() => _scheduler.Passes >= 1, "the first pass");

        await AdvanceAsync(TimeSpan.FromSeconds(1));
        Assert.Equal(2, await ReadyAsync());

        await _store.SetScheduleEnabledAsync("tick", enabled: false);
        Assert.Equal(["tick"], await _store.ListDisabledSchedulesAsync());
        for (var i = 0; i < 3; i++)
        {
            await AdvanceAsync(TimeSpan.FromSeconds(1));
        }

        Assert.Equal(2 + 3, await ReadyAsync()); // only "other" ticked

        await _store.SetScheduleEnabledAsync("tick", enabled: true);
        await AdvanceAsync(TimeSpan.FromSeconds(1));
        Assert.Equal(2 + 3 + 2, await ReadyAsync());
        Assert.Empty(await _store.ListDisabledSchedulesAsync());
    }

    [Fact]
    public async Task TriggerNow_OutsideTheTicks_PublishesACopyAndClaimsNoTick()
    {
        var schedule = new PeriodicSchedule("nightly", ScheduleTrigger.Cron("0 2 * * *"), new Signature("report", TaskArgument.String("nightly")));

        var id = await schedule.TriggerNowAsync(_world.Client);

        Assert.Equal(1, await ReadyAsync());
        var detail = await new ConveyorManagement(_store, _world.Broker, _world.Backend, "tasks", _world.Time).GetTaskAsync(id);
        Assert.Equal("report", detail!.Signature!.Name);
        Assert.Equal("nightly", detail.Signature.GetHeader(ConveyorScheduler.ScheduleHeader));
        Assert.Null(await _locks.ReadFenceAsync(ConveyorScheduler.FenceName("nightly")));
    }
}
