using Microsoft.Extensions.Logging;

namespace Conveyor.Sqs.Internal;

/// <summary>The SQS provider's log messages. Event ids (6000–6099) are stable: renaming or renumbering one is a breaking change.</summary>
internal static partial class Log
{
    [LoggerMessage(6000, LogLevel.Warning, "SQS consumer of queue {Queue}: {Loop} failed; retrying in {Delay}")]
    public static partial void LoopFailed(ILogger logger, Exception exception, string queue, string loop, TimeSpan delay);

    [LoggerMessage(6001, LogLevel.Warning, "SQS consumer of queue {Queue}: could not extend the visibility of {Count} message(s); they may be delivered again")]
    public static partial void HeartbeatFailed(ILogger logger, string queue, int count);

    [LoggerMessage(6002, LogLevel.Warning, "SQS consumer of queue {Queue}: could not hand back {Count} message(s) on stop; they come back when their visibility timeout ends")]
    public static partial void HandBackFailed(ILogger logger, Exception exception, string queue, int count);

    [LoggerMessage(6003, LogLevel.Debug, "SQS consumer of queue {Queue}: message {MessageId} is due at {Eta}; delayed again")]
    public static partial void Redelayed(ILogger logger, string queue, string messageId, DateTimeOffset eta);

    [LoggerMessage(6004, LogLevel.Information, "SQS queue {Queue} resolved to {QueueUrl}")]
    public static partial void QueueResolved(ILogger logger, string queue, string queueUrl);
}
