using Microsoft.Extensions.Logging;

namespace Conveyor.RabbitMQ.Internal;

/// <summary>The RabbitMQ provider's log messages (event ids 4000–4099). Ids and names are stable: renaming or
/// renumbering one is a breaking change.</summary>
internal static partial class Log
{
    [LoggerMessage(4000, LogLevel.Information, "Connected to RabbitMQ at {Endpoint} ({Purpose} connection)")]
    public static partial void Connected(ILogger logger, string endpoint, string purpose);

    [LoggerMessage(4001, LogLevel.Warning, "The RabbitMQ {Purpose} connection was lost ({Reason}); recovering")]
    public static partial void ConnectionLost(ILogger logger, string purpose, string reason);

    [LoggerMessage(4002, LogLevel.Information, "The RabbitMQ {Purpose} connection recovered")]
    public static partial void ConnectionRecovered(ILogger logger, string purpose);

    [LoggerMessage(4003, LogLevel.Warning, "A RabbitMQ {Purpose} connection recovery attempt failed")]
    public static partial void RecoveryFailed(ILogger logger, Exception exception, string purpose);

    [LoggerMessage(4010, LogLevel.Warning, "A publish to {Exchange}/{RoutingKey} failed while the connection was down; retrying in {Delay}")]
    public static partial void PublishRetrying(ILogger logger, Exception exception, string exchange, string routingKey, TimeSpan delay);

    [LoggerMessage(4011, LogLevel.Debug, "Replaced a closed publishing channel ({Reason})")]
    public static partial void PublishChannelReplaced(ILogger logger, string reason);

    [LoggerMessage(4020, LogLevel.Warning, "The consumer of queue {Queue} was cancelled by RabbitMQ (queue deleted?)")]
    public static partial void ConsumerCancelled(ILogger logger, string queue);

    [LoggerMessage(4021, LogLevel.Warning, "The channel of the consumer of queue {Queue} closed ({Reason}); the consumer stops")]
    public static partial void ConsumerChannelClosed(ILogger logger, string queue, string reason);

    [LoggerMessage(4022, LogLevel.Debug, "A delivery of queue {Queue} was not settled: its channel closed since; RabbitMQ delivers it again")]
    public static partial void StaleDelivery(ILogger logger, string queue);

    [LoggerMessage(4023, LogLevel.Debug, "Dropped a buffered delivery of queue {Queue} received before a connection loss: RabbitMQ delivers it again")]
    public static partial void DroppedStaleDelivery(ILogger logger, string queue);
}
