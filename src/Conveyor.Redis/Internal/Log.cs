using Microsoft.Extensions.Logging;

namespace Conveyor.Redis.Internal;

/// <summary>The Redis provider's log messages. Event ids (3000–3099) are stable: renaming or renumbering one is a breaking change.</summary>
internal static partial class Log
{
    [LoggerMessage(3000, LogLevel.Warning, "Redis consumer {ConsumerId} of queue {Queue}: {Loop} failed; retrying in {Delay}")]
    public static partial void LoopFailed(ILogger logger, Exception exception, string consumerId, string queue, string loop, TimeSpan delay);

    [LoggerMessage(3001, LogLevel.Warning, "Redis consumer {ConsumerId} returned {Count} in-flight message(s) of dead consumer {DeadConsumerId} to queue {Queue}")]
    public static partial void RecoveredDeadConsumer(ILogger logger, string consumerId, int count, string deadConsumerId, string queue);

    [LoggerMessage(3002, LogLevel.Information, "Redis consumer {ConsumerId} of queue {Queue}: its heartbeat had expired; renewed it (its in-flight messages may have been redelivered)")]
    public static partial void HeartbeatRenewedAfterExpiry(ILogger logger, string consumerId, string queue);

    [LoggerMessage(3003, LogLevel.Debug, "Redis consumer {ConsumerId} moved {Count} due delayed task(s)")]
    public static partial void MovedDueTasks(ILogger logger, string consumerId, int count);

    [LoggerMessage(3004, LogLevel.Warning, "Redis consumer {ConsumerId} of queue {Queue}: could not hand back its in-flight messages on stop; another consumer recovers them when its heartbeat expires")]
    public static partial void HandBackFailed(ILogger logger, Exception exception, string consumerId, string queue);

    [LoggerMessage(3005, LogLevel.Warning, "Redis consumer {ConsumerId} of queue {Queue}: settling a message failed; it is handed back in the background")]
    public static partial void SettleFailed(ILogger logger, Exception exception, string consumerId, string queue);

    [LoggerMessage(3006, LogLevel.Information, "Redis consumer {ConsumerId} of queue {Queue}: Redis answers again after {Failures} failed attempt(s)")]
    public static partial void LoopRecovered(ILogger logger, string consumerId, string queue, int failures);

    [LoggerMessage(3007, LogLevel.Warning, "Redis consumer {ConsumerId} of queue {Queue}: handed back {Count} in-flight message(s) whose fetch reply was lost with the connection")]
    public static partial void ReconciledOrphans(ILogger logger, string consumerId, string queue, int count);

    [LoggerMessage(3010, LogLevel.Warning, "Redis result backend: subscribing to changes of {TaskId} failed; waiting falls back to polling")]
    public static partial void SubscribeFailed(ILogger logger, Exception exception, string taskId);
}
