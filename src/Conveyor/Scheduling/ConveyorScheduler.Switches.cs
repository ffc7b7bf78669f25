using Microsoft.Extensions.Logging;

namespace Conveyor;

/// <summary>Schedules switched off for the fleet through the management store.</summary>
public sealed partial class ConveyorScheduler
{
    /// <summary>Whether a schedule is disabled in the store; a store that cannot answer leaves it enabled (and says so).</summary>
    private async ValueTask<bool> IsDisabledAsync(string name, CancellationToken cancellationToken)
    {
        if (_options.ManagementStore is not { } store)
        {
            return false;
        }

        try
        {
            var disabled = await store.ListDisabledSchedulesAsync(cancellationToken).ConfigureAwait(false);
            if (!disabled.Contains(name, StringComparer.Ordinal))
            {
                return false;
            }

            Count(name, "disabled");
            SchedulerSwitchLog.TickDisabled(_logger, name);
            return true;
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            SchedulerSwitchLog.SwitchReadFailed(_logger, ex, name);
            return false;
        }
    }
}

internal static partial class SchedulerSwitchLog
{
    [LoggerMessage(1600, LogLevel.Debug, "Schedule {Schedule}: disabled in the management store; the due tick is not published")]
    public static partial void TickDisabled(ILogger logger, string schedule);

    [LoggerMessage(1601, LogLevel.Warning, "Schedule {Schedule}: cannot read the disabled schedules; the tick goes ahead")]
    public static partial void SwitchReadFailed(ILogger logger, Exception exception, string schedule);
}
