using System.ComponentModel;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Spectre.Console;
using Spectre.Console.Cli;

namespace Conveyor.Cli.Commands;

internal sealed class SchedulesSettings : ConnectionSettings
{
    [CommandOption("--config <FILE>")]
    [Description("JSON configuration with a Conveyor:Schedules section. Default: appsettings.json in the current folder, if any")]
    public string? Config { get; init; }

    [CommandOption("--json")]
    [Description("Print JSON")]
    public bool Json { get; init; }
}

/// <summary><c>conveyor schedules</c>: the configured schedules, their next ticks, and the last tick claimed on the store.</summary>
internal sealed class SchedulesCommand : AsyncCommand<SchedulesSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, SchedulesSettings settings, CancellationToken cancellationToken)
    {
        var configuration = ScheduleConfiguration.Build(settings.Config);
        var schedules = ScheduleConfiguration.Read(configuration);
        await using var locks = await Connections.OpenLockAsync(settings.BackendUrl, NullLoggerFactory.Instance, cancellationToken).ConfigureAwait(false);
        var now = TimeProvider.System.GetUtcNow();
        var rows = new List<Dictionary<string, object?>>();
        foreach (var (name, entry) in schedules.OrderBy(s => s.Key, StringComparer.Ordinal))
        {
            var schedule = entry.Schedule;
            var last = await locks.Lock.ReadFenceAsync(ConveyorScheduler.FenceName(name), cancellationToken).ConfigureAwait(false);
            rows.Add(new Dictionary<string, object?>
            {
                ["name"] = name,
                ["enabled"] = schedule is not null,
                ["spec"] = schedule is null ? null : schedule.Trigger.CronSpec ?? "every " + schedule.Trigger.Interval!.Value.ToString("c", System.Globalization.CultureInfo.InvariantCulture),
                ["time_zone"] = schedule?.Trigger.TimeZone.Id,
                ["task"] = schedule?.Description,
                ["misfire"] = schedule?.Misfire.ToString(),
                ["next"] = schedule is null ? Array.Empty<string>() : schedule.Trigger.GetNextOccurrences(now, 3).Select(Format).ToArray(),
                ["last_claimed"] = last is { } ms ? Format(DateTimeOffset.FromUnixTimeMilliseconds(ms)) : null,
            });
        }

        if (settings.Json)
        {
            Console.WriteLine(JsonSerializer.Serialize(rows, CliJson.Options));
            return ExitCodes.Success;
        }

        if (rows.Count == 0)
        {
            Console.WriteLine($"no schedules in {ScheduleConfiguration.Section} (appsettings.json, --config FILE or the environment)");
            return ExitCodes.Success;
        }

        var table = new Table().AddColumns("schedule", "spec", "time zone", "task", "misfire", "next ticks (UTC)", "last claimed");
        foreach (var row in rows)
        {
            table.AddRow(
                Markup.Escape((string)row["name"]!),
                Markup.Escape((string?)row["spec"] ?? "(disabled)"),
                Markup.Escape((string?)row["time_zone"] ?? string.Empty),
                Markup.Escape((string?)row["task"] ?? string.Empty),
                Markup.Escape((string?)row["misfire"] ?? string.Empty),
                Markup.Escape(string.Join("  ", (string[])row["next"]!)),
                Markup.Escape((string?)row["last_claimed"] ?? "never"));
        }

        AnsiConsole.Write(table);
        return ExitCodes.Success;
    }

    private static string Format(DateTimeOffset tick) => tick.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture);
}
