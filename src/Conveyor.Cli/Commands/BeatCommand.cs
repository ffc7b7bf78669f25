using System.ComponentModel;
using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
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
    [Description("Its arguments, TYPE:VALUE (int64:2, string:hello, [[]]string:a,b ...)")]
    public string[] Args { get; init; } = [];

    [CommandOption("--name <NAME>")]
    [Description("Name of a schedule given on the command line; the same in every beat process that shares it. Default: none (the configuration's schedules only)")]
    public string? Name { get; init; }

    [CommandOption("--cron <SPEC>")]
    [Description("Cron spec: five fields, or six with seconds first ('*/1 * * * * *'). Default: none")]
    public string? Cron { get; init; }

    [CommandOption("--interval <DURATION>")]
    [Description("Fixed interval instead of --cron (500ms, 1s, 5m, 1h), anchored at the Unix epoch. Default: none")]
    public string? Interval { get; init; }

    [CommandOption("--tz <ZONE>")]
    [Description("Time zone of --cron (IANA id). Default: UTC")]
    public string? TimeZone { get; init; }

    [CommandOption("--misfire <POLICY>")]
    [Description("skip: drop ticks more than 5 s late; catch-up: publish up to --max-catch-up missed ticks. Default: skip")]
    public string? Misfire { get; init; }

    [CommandOption("--max-catch-up <N>")]
    [Description("With --misfire catch-up, the most missed ticks published")]
    [DefaultValue(PeriodicSchedule.DefaultMaxCatchUp)]
    public int MaxCatchUp { get; init; } = PeriodicSchedule.DefaultMaxCatchUp;

    [CommandOption("--quiet")]
    [Description("Log warnings and errors only. Default: off")]
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
                : ScheduleTrigger.Every(BeatCommand.ParseDuration(Interval!, "--interval"));
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
        var task = new Signature(Task!, Args.Select(ArgumentParser.Parse)) { RoutingKey = Queue ?? string.Empty };
        return new PeriodicSchedule(Name!, trigger, task) { Misfire = misfire, MaxCatchUp = MaxCatchUp };
    }
}

/// <summary><c>conveyor beat</c>: runs a scheduler until Ctrl+C or SIGTERM. Any number may run on one store.</summary>
internal sealed class BeatCommand : AsyncCommand<BeatSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, BeatSettings settings, CancellationToken cancellationToken)
    {
        var commandLine = settings.ToSchedule();
        var builder = CliHost.CreateBuilder(settings, settings.Quiet ? LogLevel.Warning : LogLevel.Information, followChanges: true);
        if (commandLine is null && !builder.Configuration.GetSection(SchedulesCommand.Section).GetChildren().Any())
        {
            throw new CliException($"no schedules: give --name NAME --cron SPEC TASK [ARG ...], or define {SchedulesCommand.Section}:<name> in appsettings.json, --config FILE or the environment");
        }

        // The command line's schedule is code to the host: a configured schedule of the same name is ignored.
        builder.Services.AddConveyorScheduler(options =>
        {
            if (commandLine is not null)
            {
                options.Schedules.Add(commandLine);
            }
        });
        await using var session = await CliHost.StartAsync(builder, cancellationToken).ConfigureAwait(false);
        if (!settings.Quiet)
        {
            var scheduler = session.Services.GetRequiredService<ConveyorScheduler>();
            AnsiConsole.MarkupLineInterpolated(CultureInfo.InvariantCulture, $"[green]conveyor beat[/]: {scheduler.Schedules.Count} schedule(s) ({string.Join(", ", scheduler.Schedules.Select(s => s.Name))}); broker {session.BrokerUrl}, ticks claimed on {session.BackendUrl}");
        }

        await WorkerCommand.WaitForStopAsync(session, cancellationToken).ConfigureAwait(false);
        return ExitCodes.Success;
    }

    /// <summary>Parses a duration: <c>500ms</c>, <c>1s</c>, <c>5m</c>, <c>1h</c>, a number of seconds, or <c>hh:mm:ss</c>.</summary>
    public static TimeSpan ParseDuration(string text, string option)
    {
        var t = text.Trim();
        (string Suffix, double Scale)[] units = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)];
        foreach (var (suffix, scale) in units)
        {
            if (t.EndsWith(suffix, StringComparison.OrdinalIgnoreCase) && double.TryParse(t[..^suffix.Length], NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && value > 0)
            {
                return TimeSpan.FromSeconds(value * scale);
            }
        }

        if (double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) && seconds > 0)
        {
            return TimeSpan.FromSeconds(seconds);
        }

        if (TimeSpan.TryParse(t, CultureInfo.InvariantCulture, out var span) && span > TimeSpan.Zero)
        {
            return span;
        }

        throw new CliException($"{option}: '{text}' is not a duration; use 500ms, 1s, 5m, 1h or hh:mm:ss");
    }
}
