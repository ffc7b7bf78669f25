using Microsoft.Extensions.Logging;

namespace Conveyor.DynamoDb.Internal;

/// <summary>The DynamoDB provider's log messages. Event ids (6100–6199) are stable: renaming or renumbering one is a breaking change.</summary>
internal static partial class Log
{
    [LoggerMessage(6100, LogLevel.Information, "Created DynamoDB table {Table} (key {Key})")]
    public static partial void TableCreated(ILogger logger, string table, string key);

    // One line with the service's error code: an emulator without the API (dynalite) is expected, not a crash.
    [LoggerMessage(6101, LogLevel.Warning, "Could not turn on DynamoDB time to live on {Table}.TTL ({ErrorCode}: {Reason}); results will not expire by themselves")]
    public static partial void TimeToLiveFailed(ILogger logger, string table, string? errorCode, string reason);

    [LoggerMessage(6102, LogLevel.Debug, "DynamoDB BatchGetItem left {Count} key(s) unprocessed; retrying in {Delay}")]
    public static partial void UnprocessedKeys(ILogger logger, int count, TimeSpan delay);
}
