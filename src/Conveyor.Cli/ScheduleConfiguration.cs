using System.Globalization;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Primitives;

namespace Conveyor.Cli;

/// <summary>
/// Schedules from configuration: <c>appsettings.json</c> in the current folder (optional) or <c>--config FILE</c>,
/// then environment variables (<c>Conveyor__Schedules__tick__Cron</c>), section <c>Conveyor:Schedules:&lt;name&gt;</c>
/// bound to <see cref="ScheduleOptions"/>. The file is watched: on a change the schedules are read again and the
/// running scheduler gets the difference (added, changed, removed), so deleting a schedule from the file stops its
/// ticks in every process that reads the file.
/// </summary>
internal static class ScheduleConfiguration
{
    public const string Section = "Conveyor:Schedules";

    public static IConfigurationRoot Build(string? configFile)
    {
        var builder = new ConfigurationBuilder();
        if (configFile is { Length: > 0 })
        {
            var path = Path.GetFullPath(configFile);
            if (!File.Exists(path))
            {
                throw new CliException($"--config: the file {path} does not exist");
            }

            builder.AddJsonFile(path, optional: false, reloadOnChange: true);
        }
        else
        {
            builder.AddJsonFile(Path.Combine(Directory.GetCurrentDirectory(), "appsettings.json"), optional: true, reloadOnChange: true);
        }

        builder.AddEnvironmentVariables();
        try
        {
            return builder.Build();
        }
        catch (Exception ex) when (ex is InvalidDataException or FormatException or System.Text.Json.JsonException)
        {
            throw new CliException($"cannot read the configuration: {(ex.InnerException ?? ex).Message}");
        }
    }

    /// <summary>Reads every schedule; a disabled one is listed with a null schedule (it is checked all the same).</summary>
    /// <returns>Name → schedule (null when disabled) and a fingerprint of its settings.</returns>
    public static Dictionary<string, Entry> Read(IConfiguration configuration)
    {
        var schedules = new Dictionary<string, Entry>(StringComparer.Ordinal);
        foreach (var child in configuration.GetSection(Section).GetChildren())
        {
            ScheduleOptions options;
            try
            {
                options = child.Get<ScheduleOptions>() ?? new ScheduleOptions();
            }
            catch (InvalidOperationException ex)
            {
                throw new CliException((ex.InnerException is { } inner ? $"{ex.Message.TrimEnd('.')}: {inner.Message}" : ex.Message).ReplaceLineEndings(" "));
            }

            PeriodicSchedule? schedule;
            try
            {
                schedule = PeriodicSchedule.FromOptions(child.Key, options, child.Path);
            }
            catch (ArgumentException ex)
            {
                throw new CliException(ex.Message);
            }

            var fingerprint = string.Join('\n', child.AsEnumerable(makePathsRelative: true).OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => p.Key + "=" + p.Value));
            schedules[child.Key] = new Entry(schedule, fingerprint);
        }

        return schedules;
    }

    /// <summary>On every reload, gives the scheduler what changed; a schedule named <paramref name="reserved"/> (the command line's) is left alone.</summary>
    public static IDisposable Watch(IConfigurationRoot configuration, ConveyorScheduler scheduler, Dictionary<string, Entry> current, string? reserved, ILogger logger)
    {
        var gate = new Lock();
        return ChangeToken.OnChange(configuration.GetReloadToken, () =>
        {
            Dictionary<string, Entry> next;
            try
            {
                next = Read(configuration);
            }
            catch (CliException ex)
            {
                CliLog.InvalidReload(logger, ex.Message);
                return;
            }

            lock (gate)
            {
                foreach (var name in current.Keys.Where(n => !next.ContainsKey(n) || next[n].Schedule is null).ToList())
                {
                    if (name != reserved && current[name].Schedule is not null)
                    {
                        scheduler.Remove(name);
                    }

                    current.Remove(name);
                }

                foreach (var (name, entry) in next)
                {
                    if (name == reserved || entry.Schedule is null)
                    {
                        continue;
                    }

                    if (!current.TryGetValue(name, out var old) || old.Fingerprint != entry.Fingerprint)
                    {
                        scheduler.Add(entry.Schedule);
                        current[name] = entry;
                    }
                }
            }
        });
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

    internal sealed record Entry(PeriodicSchedule? Schedule, string Fingerprint);
}
