using System.ComponentModel;
using System.Globalization;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Spectre.Console;
using Spectre.Console.Cli;

namespace Conveyor.Cli.Commands;

internal sealed class BeatSettings : ConnectionSettings
{
    [CommandArgument(0, "[TASK]")]
    [Description("The task the --name schedule publishes")]
    public string? Task { get; init; }

    [CommandArgument(1, "[ARGS]")]
    [Description("Its arguments, TYPE:VALUE (int64:2, string:hello, []string:a,b ...)")]
    public string[] Args { get; init; } = [];

    [CommandOption("--name <NAME>")]
    [Description("Name of a schedule given on the command line; the same in every beat process that shares it")]
    public string? Name { get; init; }

    [CommandOption("--cron <SPEC>")]
    [Description("Cron spec: five fields, or six with seconds first ('*/1 * * * * *')")]
    public string? Cron { get; init; }

    [CommandOption("--interval <DURATION>")]
    [Description("Fixed interval instead of --cron (500ms, 1s, 5m, 1h), anchored at the Unix epoch")]
    public string? Interval { get; init; }

    [CommandOption("--tz <ZONE>")]
    [Description("Time zone of --cron (IANA id). Default: UTC")]
    public string? TimeZone { get; init; }

    [CommandOption("--misfire <POLICY>")]
    [Description("skip (default): drop ticks more than 5 s late; catch-up: publish up to --max-catch-up missed ticks")]
    public string? Misfire { get; init; }

    [CommandOption("--max-catch-up <N>")]
    [Description("With --misfire catch-up, the most missed ticks published. Default: 5")]
    public int MaxCatchUp { get; init; } = PeriodicSchedule.DefaultMaxCatchUp;

    [CommandOption("--config <FILE>")]
    [Description("JSON configuration with a Conveyor:Schedules section. Default: appsettings.json in the current folder, if any")]
    public string? Config { get; init; }

    [CommandOption("--quiet")]
    [Description("Log warnings and errors only")]
    public bool Quiet { get; init; }

    public bool HasCommandLineSchedule => Name is not null || Cron is not null || Interval is not null || Task is not null;

    public override ValidationResult Validate()
    {
        if (!HasCommandLineSchedule)
        {
            return ValidationResult.Success();
        }

        return string.IsNullOrWhiteSpace(Name) ? ValidationResult.Error("a schedule on the command line needs --name NAME")
            : string.IsNullOrWhiteSpace(Task) ? ValidationResult.Error("a schedule on the command line needs a TASK to publish")
            : (Cron is null) == (Interval is null) ? ValidationResult.Error("give either --cron SPEC or --interval DURATION")
            : MaxCatchUp < 1 ? ValidationResult.Error("--max-catch-up must be at least 1")
            : ValidationResult.Success();
    }

    /// <summary>The command line's schedule, or null when none was given.</summary>
    public PeriodicSchedule? ToSchedule()
    {
        if (!HasCommandLineSchedule)
        {
            return null;
        }

        var zone = TimeZoneInfo.Utc;
        if (TimeZone is { Length: > 0 })
        {
            try
            {
                zone = TimeZoneInfo.FindSystemTimeZoneById(TimeZone);
            }
            catch (Exception ex) when (ex is TimeZoneNotFoundException or InvalidTimeZoneException)
            {
                throw new CliException($"--tz: '{TimeZone}' is not a known time zone id; use an IANA id such as Europe/Berlin, or UTC");
            }
        }

        ScheduleTrigger trigger;
        try
        {
            trigger = Cron is not null
                ? ScheduleTrigger.Cron(Cron, zone)
                : ScheduleTrigger.Every(ScheduleConfiguration.ParseDuration(Interval!, "--interval"));
        }
        catch (FormatException ex)
        {
            throw new CliException($"--cron: {ex.Message}");
        }
        catch (ArgumentOutOfRangeException)
        {
            throw new CliException($"--interval: '{Interval}' is not a valid interval (at least 1 ms, in whole milliseconds)");
        }

        var misfire = Misfire?.ToLowerInvariant() switch
        {
            null or "skip" => MisfirePolicy.Skip,
            "catch-up" or "catchup" => MisfirePolicy.CatchUp,
            _ => throw new CliException($"--misfire: '{Misfire}' is not a misfire policy; use skip or catch-up"),
        };
        var task = new Signature(Task!, Args.Select(ArgumentParser.Parse)) { RoutingKey = QueueName };
        return new PeriodicSchedule(Name!, trigger, task) { Misfire = misfire, MaxCatchUp = MaxCatchUp };
    }
}

/// <summary><c>conveyor beat</c>: runs a scheduler until Ctrl+C or SIGTERM. Any number may run on one store.</summary>
internal sealed class BeatCommand : AsyncCommand<BeatSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, BeatSettings settings, CancellationToken cancellationToken)
    {
        using var loggerFactory = CliLogging.Create(settings.Quiet ? LogLevel.Warning : LogLevel.Information);
        var commandLine = settings.ToSchedule();
        var configuration = ScheduleConfiguration.Build(settings.Config);
        var fromConfiguration = ScheduleConfiguration.Read(configuration);
        if (commandLine is null && fromConfiguration.Count == 0)
        {
            throw new CliException($"no schedules: give --name NAME --cron SPEC TASK [ARG ...], or define {ScheduleConfiguration.Section}:<name> in appsettings.json, --config FILE or the environment");
        }

        await using var providers = await Connections.OpenAsync(settings.BrokerUrl, settings.BackendUrl, loggerFactory, cancellationToken).ConfigureAwait(false);
        await using var locks = await Connections.OpenLockAsync(settings.BackendUrl, loggerFactory, cancellationToken).ConfigureAwait(false);
        var client = new ConveyorClient(providers.Broker, providers.Backend, new ConveyorClientOptions { DefaultQueue = settings.QueueName }, loggerFactory: loggerFactory);
        await using var beat = EmbeddedScheduler.Create(client, locks.Lock, configuration, fromConfiguration, commandLine, loggerFactory);
        if (!settings.Quiet)
        {
            AnsiConsole.MarkupLineInterpolated(CultureInfo.InvariantCulture, $"[green]conveyor beat[/]: {beat.Scheduler.Schedules.Count} schedule(s) ({string.Join(", ", beat.Scheduler.Schedules.Select(s => s.Name))}); broker {providers.BrokerUrl}, ticks claimed on {providers.BackendUrl}");
        }

        await beat.Scheduler.StartAsync(CancellationToken.None).ConfigureAwait(false);
        try
        {
            await Task.Delay(Timeout.Infinite, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        await beat.Scheduler.StopAsync(CancellationToken.None).ConfigureAwait(false);
        return ExitCodes.Success;
    }
}

/// <summary>A scheduler with the configuration's schedules (watched for changes) and the command line's.</summary>
internal sealed class EmbeddedScheduler : IAsyncDisposable
{
    private readonly IDisposable _watch;

    private EmbeddedScheduler(ConveyorScheduler scheduler, IDisposable watch)
    {
        Scheduler = scheduler;
        _watch = watch;
    }

    public ConveyorScheduler Scheduler { get; }

    public static EmbeddedScheduler Create(
        ConveyorClient client,
        IDistributedLock locks,
        IConfigurationRoot configuration,
        Dictionary<string, ScheduleConfiguration.Entry> fromConfiguration,
        PeriodicSchedule? commandLine,
        ILoggerFactory loggerFactory)
    {
        var logger = loggerFactory.CreateLogger("Conveyor.Cli.Beat");
        var options = new SchedulerOptions();
        foreach (var (name, entry) in fromConfiguration)
        {
            if (commandLine?.Name == name)
            {
                CliLog.ScheduleShadowed(logger, name);
            }
            else if (entry.Schedule is { } schedule)
            {
                options.Schedules.Add(schedule);
            }
        }

        if (commandLine is not null)
        {
            options.Schedules.Add(commandLine);
        }

        var scheduler = new ConveyorScheduler(client, locks, options, loggerFactory);
        return new EmbeddedScheduler(scheduler, ScheduleConfiguration.Watch(configuration, scheduler, fromConfiguration, commandLine?.Name, logger));
    }

    public ValueTask DisposeAsync()
    {
        _watch.Dispose();
        Scheduler.Dispose();
        return ValueTask.CompletedTask;
    }
}
