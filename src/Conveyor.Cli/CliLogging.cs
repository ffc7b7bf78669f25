using Microsoft.Extensions.Logging;

namespace Conveyor.Cli;

internal static class CliLogging
{
    public static ILoggerFactory Create(LogLevel minimum) => LoggerFactory.Create(builder => builder
        .SetMinimumLevel(minimum)
        .AddSimpleConsole(options =>
        {
            options.SingleLine = true;
            options.TimestampFormat = "HH:mm:ss.fff ";
        }));
}

/// <summary>The CLI's own log messages (scheduler range, 1340–1349).</summary>
internal static partial class CliLog
{
    [LoggerMessage(1340, LogLevel.Warning, "Schedule {Schedule} is given on the command line and in the configuration; the command line's is used")]
    public static partial void ScheduleShadowed(ILogger logger, string schedule);

    [LoggerMessage(1341, LogLevel.Error, "The configuration changed but is not valid; the schedules stay as they were: {Error}")]
    public static partial void InvalidReload(ILogger logger, string error);
}
