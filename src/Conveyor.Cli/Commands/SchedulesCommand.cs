using System.Text.Json;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Spectre.Console;
using Spectre.Console.Cli;

namespace Conveyor.Cli.Commands;

/// <summary><c>conveyor schedules</c>: the configured schedules, their next ticks, and the last tick claimed on the store.</summary>
internal sealed class SchedulesCommand : AsyncCommand<JsonConnectionSettings>
{
    public const string Section = "Conveyor:Schedules";

    public override async Task<int> ExecuteAsync(CommandContext context, JsonConnectionSettings settings, CancellationToken cancellationToken)
    {
        var builder = CliHost.CreateBuilder(settings, LogLevel.Warning);
        var schedules = Read(builder.Configuration);
        await using var session = await CliHost.StartAsync(builder, cancellationToken).ConfigureAwait(false);
        var locks = session.Services.GetRequiredService<IDistributedLock>();
        var now = TimeProvider.System.GetUtcNow();
        var rows = new List<Dictionary<string, object?>>();
        foreach (var (name, schedule) in schedules.OrderBy(s => s.Key, StringComparer.Ordinal))
        {
            var last = await locks.ReadFenceAsync(ConveyorScheduler.FenceName(name), cancellationToken).ConfigureAwait(false);
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
            Console.WriteLine($"no schedules in {Section} (appsettings.json, --config FILE or the environment)");
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

    /// <summary>Every configured schedule by name; a disabled one is listed with a null schedule.</summary>
    private static Dictionary<string, PeriodicSchedule?> Read(ConfigurationManager configuration)
    {
        var schedules = new Dictionary<string, PeriodicSchedule?>(StringComparer.Ordinal);
        foreach (var child in configuration.GetSection(Section).GetChildren())
        {
            try
            {
                schedules[child.Key] = PeriodicSchedule.FromOptions(child.Key, child.Get<ScheduleOptions>() ?? new ScheduleOptions(), child.Path);
            }
            catch (ArgumentException ex)
            {
                throw new CliException(ex.Message);
            }
            catch (InvalidOperationException ex)
            {
                throw new CliException((ex.InnerException is { } inner ? $"{ex.Message.TrimEnd('.')}: {inner.Message}" : ex.Message).ReplaceLineEndings(" "));
            }
        }

        return schedules;
    }

    private static string Format(DateTimeOffset tick) => tick.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture);
}
