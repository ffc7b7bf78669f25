using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Conveyor.Hosting;

/// <summary>The <c>Conveyor:Schedules</c> section: schedule name → settings.</summary>
internal sealed class ConfiguredSchedules
{
    public const string Section = ConveyorOptions.SectionName + ":Schedules";

    public Dictionary<string, ScheduleOptions> Schedules { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Builds every schedule; the enabled ones are returned, the first bad setting throws.</summary>
    public Dictionary<string, PeriodicSchedule> Build()
    {
        var schedules = new Dictionary<string, PeriodicSchedule>(StringComparer.Ordinal);
        foreach (var (name, options) in Schedules)
        {
            if (PeriodicSchedule.FromOptions(name, options, $"{Section}:{name}") is { } schedule)
            {
                schedules[name] = schedule;
            }
        }

        return schedules;
    }
}

/// <summary>Fails the host's start on a bad schedule, naming the setting (<c>Conveyor:Schedules:x:Cron: …</c>).</summary>
internal sealed class ConfiguredSchedulesValidator : IValidateOptions<ConfiguredSchedules>
{
    public ValidateOptionsResult Validate(string? name, ConfiguredSchedules options)
    {
        var failures = new List<string>();
        foreach (var (scheduleName, settings) in options.Schedules)
        {
            try
            {
                PeriodicSchedule.FromOptions(scheduleName, settings, $"{ConfiguredSchedules.Section}:{scheduleName}");
            }
            catch (ArgumentException ex)
            {
                failures.Add(ex.Message);
            }
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}

/// <summary>
/// Gives the scheduler the configuration's schedules at start, and what changed on each reload: a schedule deleted
/// from appsettings.json stops ticking within one interval, in every host that reads that file. A reload with a bad
/// setting is logged and ignored; the previous schedules go on.
/// </summary>
internal sealed partial class ConfiguredScheduleSync(
    ConveyorScheduler scheduler,
    IOptionsMonitor<ConfiguredSchedules> configuration,
    ILogger<ConfiguredScheduleSync> logger) : IHostedService, IDisposable
{
    private readonly Lock _gate = new();
    private Dictionary<string, string> _applied = new(StringComparer.Ordinal); // name -> settings fingerprint
    private IDisposable? _subscription;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        Apply(configuration.CurrentValue);
        _subscription = configuration.OnChange(Reload);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _subscription?.Dispose();
        return Task.CompletedTask;
    }

    public void Dispose() => _subscription?.Dispose();

    private void Reload(ConfiguredSchedules schedules)
    {
        try
        {
            Apply(schedules);
        }
        catch (ArgumentException ex)
        {
            LogInvalidReload(logger, ex.Message);
        }
    }

    private void Apply(ConfiguredSchedules schedules)
    {
        var next = schedules.Build();
        lock (_gate)
        {
            foreach (var name in _applied.Keys.Where(n => !next.ContainsKey(n)))
            {
                scheduler.Remove(name);
            }

            var applied = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var (name, schedule) in next)
            {
                // Only what changed is re-added: re-adding would restart nothing, but it would log every schedule.
                var fingerprint = Fingerprint(schedules.Schedules[name]);
                if (!_applied.TryGetValue(name, out var old) || old != fingerprint)
                {
                    scheduler.Add(schedule);
                }

                applied[name] = fingerprint;
            }

            _applied = applied;
        }
    }

    private static string Fingerprint(ScheduleOptions o) =>
        string.Join('|', o.Cron, o.Interval, o.TimeZone, o.Task, string.Join(',', o.Args), o.Queue, o.Priority, o.RetryCount, o.Misfire, o.MaxCatchUp, o.Enabled);

    [LoggerMessage(5000, LogLevel.Warning, "The reloaded configuration has a bad schedule; the previous schedules go on: {Error}")]
    private static partial void LogInvalidReload(ILogger logger, string error);
}
