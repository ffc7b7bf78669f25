using Microsoft.Extensions.DependencyInjection;
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
/// Runs the scheduler as a hosted service, made when the host starts (after the engines are connected, so nothing
/// connects synchronously on the start path). Gives it the configuration's schedules at start, and what changed on
/// each reload: a schedule deleted from appsettings.json stops ticking within one interval, in every host that reads
/// that file. A reload with a bad setting is logged and ignored; the previous schedules go on. A schedule added in
/// code (<see cref="SchedulerOptions.Schedules"/>) keeps its name: a configured one of the same name is ignored, with a
/// warning.
/// </summary>
internal sealed partial class ConfiguredScheduleSync(
    IServiceProvider services,
    IOptionsMonitor<ConfiguredSchedules> configuration,
    IOptions<SchedulerOptions> schedulerOptions,
    ILogger<ConfiguredScheduleSync> logger) : IHostedService, IDisposable
{
    private readonly Lock _gate = new();
    private readonly HashSet<string> _fromCode = [.. schedulerOptions.Value.Schedules.Select(s => s.Name)];
    private readonly HashSet<string> _shadowWarned = new(StringComparer.Ordinal);
    private Dictionary<string, string> _applied = new(StringComparer.Ordinal); // name -> settings fingerprint
    private IDisposable? _subscription;
    private ConveyorScheduler? _scheduler;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await services.GetRequiredService<ConveyorConnections>().ConnectAsync(cancellationToken).ConfigureAwait(false);
        _scheduler = services.GetRequiredService<ConveyorScheduler>();
        Apply(configuration.CurrentValue);
        _subscription = configuration.OnChange(Reload);
        await _scheduler.StartAsync(cancellationToken).ConfigureAwait(false);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        _subscription?.Dispose();
        if (_scheduler is not null)
        {
            await _scheduler.StopAsync(cancellationToken).ConfigureAwait(false);
        }
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
        var scheduler = _scheduler!;
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
                if (_fromCode.Contains(name))
                {
                    if (_shadowWarned.Add(name))
                    {
                        LogShadowed(logger, name);
                    }

                    continue;
                }

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

    [LoggerMessage(5002, LogLevel.Warning, "Schedule {Schedule} is given in code (or on the command line) and in the configuration; the configuration's is ignored")]
    private static partial void LogShadowed(ILogger logger, string schedule);
}
