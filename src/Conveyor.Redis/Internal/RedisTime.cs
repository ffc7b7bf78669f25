using System.Globalization;

namespace Conveyor.Redis.Internal;

/// <summary>Unix nanoseconds: machinery's <c>delayed_tasks</c> score (<c>ETA.UnixNano()</c>, stored by Redis as a double).</summary>
internal static class RedisTime
{
    public static long ToUnixNanoseconds(DateTimeOffset time) => (time.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) * 100;

    public static string ToUnixNanosecondsText(DateTimeOffset time) => ToUnixNanoseconds(time).ToString(CultureInfo.InvariantCulture);

    public static DateTimeOffset FromUnixNanoseconds(double nanoseconds) =>
        DateTimeOffset.UnixEpoch.AddTicks((long)Math.Clamp(nanoseconds / 100, 0, DateTimeOffset.MaxValue.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks));
}
