using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Conveyor.Hosting.Tests;

public sealed class SchedulerHostingTests
{
    [Fact]
    public async Task AddConveyorScheduler_ScheduleFromConfiguration_WorkerRunsTicksCarryingScheduleHeaders()
    {
        var builder = HostBuilders.Create(new Dictionary<string, string?>
        {
            ["Conveyor:DefaultQueue"] = HostBuilders.UniqueQueue("beat"),
            ["Conveyor:Schedules:heartbeat:Interval"] = "00:00:00.100",
            ["Conveyor:Schedules:heartbeat:Task"] = "beat",
            ["Conveyor:Schedules:heartbeat:Args:0"] = "string:hello",
        });
        var ticks = new List<(string Schedule, string Tick, string Argument)>();
        var third = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        builder.Services.AddConveyor(c => c.UseInMemory().AddTask("beat", (string argument, TaskContext context) =>
        {
            lock (ticks)
            {
                ticks.Add(((string)context.Signature.Headers[ConveyorScheduler.ScheduleHeader]!, (string)context.Signature.Headers[ConveyorScheduler.TickHeader]!, argument));
                if (ticks.Count == 3)
                {
                    third.TrySetResult();
                }
            }
        }));
        builder.Services.AddConveyorWorker();
        builder.Services.AddConveyorScheduler();

        using var host = builder.Build();
        await host.StartAsync();
        await third.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await host.StopAsync();

        List<(string Schedule, string Tick, string Argument)> seen;
        lock (ticks)
        {
            seen = [.. ticks];
        }

        Assert.All(seen, t => Assert.Equal(("heartbeat", "hello"), (t.Schedule, t.Argument)));
        Assert.Equal(seen.Count, seen.Select(t => t.Tick).Distinct().Count());
    }

    [Fact]
    public async Task StartAsync_InvalidCronInConfiguration_FailsWithOneLineNamingTheSetting()
    {
        var builder = HostBuilders.Create(new Dictionary<string, string?>
        {
            ["Conveyor:Schedules:cleanup:Cron"] = "61 * * * *",
            ["Conveyor:Schedules:cleanup:Task"] = "cleanup",
        });
        builder.Services.AddConveyor(c => c.UseInMemory());
        builder.Services.AddConveyorScheduler();
        using var host = builder.Build();

        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.StartsWith("Conveyor:Schedules:cleanup:Cron: ", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Fact]
    public async Task ConfigurationReload_ScheduleDisabled_RemovedFromSchedulerCodeScheduleKept()
    {
        var builder = HostBuilders.Create(new Dictionary<string, string?>
        {
            ["Conveyor:Schedules:nightly:Cron"] = "0 3 * * *",
            ["Conveyor:Schedules:nightly:TimeZone"] = "Europe/Berlin",
            ["Conveyor:Schedules:nightly:Task"] = "report",
        });
        builder.Services.AddConveyor(c => c.UseInMemory());
        builder.Services.AddConveyorScheduler(o => o.Schedules.Add(
            new PeriodicSchedule("from-code", ScheduleTrigger.Every(TimeSpan.FromHours(1)), new Signature("report"))));
        using var host = builder.Build();
        await host.StartAsync();
        var scheduler = host.Services.GetRequiredService<ConveyorScheduler>();
        var before = scheduler.Schedules.Select(s => s.Name).Order().ToList();

        var configuration = (IConfigurationRoot)host.Services.GetRequiredService<IConfiguration>();
        configuration["Conveyor:Schedules:nightly:Enabled"] = "false";
        configuration.Reload();
        var after = scheduler.Schedules.Select(s => s.Name).ToList();
        await host.StopAsync();

        Assert.Equal(["from-code", "nightly"], before);
        Assert.Equal(["from-code"], after);
    }

    [Fact]
    public async Task StartAndReload_ScheduleOfTheSameNameInCodeAndConfiguration_TheCodeOneIsKept()
    {
        var builder = HostBuilders.Create(new Dictionary<string, string?>
        {
            ["Conveyor:Schedules:report:Cron"] = "0 3 * * *",
            ["Conveyor:Schedules:report:Task"] = "from-configuration",
        });
        builder.Services.AddConveyor(c => c.UseInMemory());
        builder.Services.AddConveyorScheduler(o => o.Schedules.Add(
            new PeriodicSchedule("report", ScheduleTrigger.Every(TimeSpan.FromHours(1)), new Signature("from-code"))));
        using var host = builder.Build();
        await host.StartAsync();
        var scheduler = host.Services.GetRequiredService<ConveyorScheduler>();
        var atStart = Assert.Single(scheduler.Schedules);

        var configuration = (IConfigurationRoot)host.Services.GetRequiredService<IConfiguration>();
        configuration["Conveyor:Schedules:report:Cron"] = "0 4 * * *";
        configuration.Reload();
        var afterReload = Assert.Single(scheduler.Schedules);
        configuration["Conveyor:Schedules:report:Enabled"] = "false";
        configuration.Reload();
        var afterDisable = Assert.Single(scheduler.Schedules);
        await host.StopAsync();

        Assert.All(new[] { atStart, afterReload, afterDisable }, s => Assert.Equal(TimeSpan.FromHours(1), s.Trigger.Interval));
    }
}
