using System.Globalization;
using Cronos;

namespace Conveyor;

/// <summary>
/// When a schedule ticks: a cron spec in a time zone, or a fixed interval. Tick times depend on the spec alone, never
/// on when a process started, so every scheduler process computes the same ticks (which is what lets them claim
/// each tick exactly once).
/// </summary>
public sealed class ScheduleTrigger
{
    private readonly CronExpression? _cron;
    private readonly long _intervalTicks;

    private ScheduleTrigger(string? cronSpec, CronExpression? cron, TimeZoneInfo timeZone, TimeSpan? interval)
    {
        CronSpec = cronSpec;
        _cron = cron;
        TimeZone = timeZone;
        Interval = interval;
        _intervalTicks = interval?.Ticks ?? 0;
    }

    /// <summary>The cron spec, or <see langword="null"/> for an interval.</summary>
    public string? CronSpec { get; }

    /// <summary>The interval, or <see langword="null"/> for a cron spec.</summary>
    public TimeSpan? Interval { get; }

    /// <summary>The time zone the cron spec is read in; UTC for an interval.</summary>
    public TimeZoneInfo TimeZone { get; }

    /// <summary>
    /// A cron trigger (Cronos syntax): five fields (minute hour day-of-month month day-of-week), or six with seconds
    /// first, told apart by the number of fields; macros such as <c>@hourly</c> also work. Daylight-saving changes
    /// follow Cronos: a time skipped by the change runs at the change, a time that occurs twice runs once.
    /// </summary>
    /// <param name="spec">The cron spec, for example <c>*/5 * * * *</c> or <c>*/1 * * * * *</c>.</param>
    /// <param name="timeZone">The time zone of the spec; UTC when <see langword="null"/>.</param>
    /// <returns>The trigger.</returns>
    /// <exception cref="FormatException">The spec is not valid; the message quotes it and says why.</exception>
    public static ScheduleTrigger Cron(string spec, TimeZoneInfo? timeZone = null)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var trimmed = spec.Trim();
        var fields = trimmed.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Length;
        if (fields is not (1 or 5 or 6))
        {
            throw new FormatException($"'{spec}' is not a valid cron spec (it has {fields} fields; use five: minute hour day month weekday, or six with seconds first)");
        }

        try
        {
            var expression = CronExpression.Parse(trimmed, fields == 6 ? CronFormat.IncludeSeconds : CronFormat.Standard);
            return new ScheduleTrigger(trimmed, expression, timeZone ?? TimeZoneInfo.Utc, interval: null);
        }
        catch (CronFormatException ex)
        {
            throw new FormatException($"'{spec}' is not a valid cron spec ({ex.Message.TrimEnd('.')})", ex);
        }
    }

    /// <summary>
    /// A fixed interval. Ticks are anchored at the Unix epoch (00:00:00 UTC, 1 January 1970), not at the start of a
    /// process: every 10 s ticks at :00, :10, :20 … in every process.
    /// </summary>
    /// <param name="interval">The interval: at least 1 ms, in whole milliseconds (ticks are claimed in Unix milliseconds).</param>
    /// <returns>The trigger.</returns>
    /// <exception cref="ArgumentOutOfRangeException">The interval is below 1 ms or not a whole number of milliseconds.</exception>
    public static ScheduleTrigger Every(TimeSpan interval)
    {
        if (interval < TimeSpan.FromMilliseconds(1) || interval.Ticks % TimeSpan.TicksPerMillisecond != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(interval), interval, "An interval must be at least 1 ms and a whole number of milliseconds.");
        }

        return new ScheduleTrigger(cronSpec: null, cron: null, TimeZoneInfo.Utc, interval);
    }

    /// <summary>The first tick strictly after a time.</summary>
    /// <param name="after">The time.</param>
    /// <returns>The tick, in UTC, or <see langword="null"/> when the spec never ticks again.</returns>
    public DateTimeOffset? GetNextOccurrence(DateTimeOffset after)
    {
        if (_cron is null)
        {
            var k = FloorDiv(after.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks, _intervalTicks) + 1;
            return FromIntervalIndex(k);
        }

        return _cron.GetNextOccurrence(after, TimeZone, inclusive: false)?.ToUniversalTime();
    }

    /// <summary>The next ticks strictly after a time.</summary>
    /// <param name="after">The time.</param>
    /// <param name="count">How many.</param>
    /// <returns>Up to <paramref name="count"/> ticks, in UTC, in order.</returns>
    public IReadOnlyList<DateTimeOffset> GetNextOccurrences(DateTimeOffset after, int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var ticks = new List<DateTimeOffset>(count);
        var from = after;
        while (ticks.Count < count && GetNextOccurrence(from) is { } next)
        {
            ticks.Add(next);
            from = next;
        }

        return ticks;
    }

    /// <inheritdoc/>
    public override string ToString() => _cron is null
        ? "every " + FormatInterval(Interval!.Value)
        : $"cron '{CronSpec}' {TimeZone.Id}";

    /// <summary>Ticks in (<paramref name="lowerExclusive"/>, <paramref name="upperInclusive"/>], most recent first.</summary>
    internal IEnumerable<DateTimeOffset> GetOccurrencesDescending(DateTimeOffset upperInclusive, DateTimeOffset lowerExclusive)
    {
        if (upperInclusive <= lowerExclusive)
        {
            yield break;
        }

        if (_cron is null)
        {
            var epoch = DateTimeOffset.UnixEpoch.UtcTicks;
            var k = FloorDiv(upperInclusive.UtcTicks - epoch, _intervalTicks);
            for (; epoch + (k * _intervalTicks) > lowerExclusive.UtcTicks; k--)
            {
                yield return FromIntervalIndex(k);
            }

            yield break;
        }

        foreach (var tick in _cron.GetOccurrencesDescending(upperInclusive, lowerExclusive, TimeZone, fromInclusive: true, toInclusive: false))
        {
            yield return tick.ToUniversalTime();
        }
    }

    private DateTimeOffset FromIntervalIndex(long k) => new(DateTimeOffset.UnixEpoch.UtcTicks + (k * _intervalTicks), TimeSpan.Zero);

    private static long FloorDiv(long a, long b)
    {
        var q = Math.DivRem(a, b, out var r);
        return r < 0 ? q - 1 : q;
    }

    private static string FormatInterval(TimeSpan interval) =>
        interval.Ticks % TimeSpan.TicksPerSecond == 0 && interval < TimeSpan.FromMinutes(1)
            ? interval.TotalSeconds.ToString(CultureInfo.InvariantCulture) + "s"
            : interval.ToString("c", CultureInfo.InvariantCulture);
}
