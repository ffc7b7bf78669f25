using Microsoft.Extensions.Logging;

namespace Conveyor.Sqlite;

/// <summary>The SQLite provider's log messages (event ids 2000–2099; Redis has 3000–3099). Ids and names are stable: renaming or
/// renumbering one is a breaking change.</summary>
internal static partial class Log
{
    [LoggerMessage(2000, LogLevel.Debug, "Opened the Conveyor database {Path} (schema version {FoundVersion}, current {SchemaVersion})")]
    public static partial void Opened(ILogger logger, string path, int foundVersion, int schemaVersion);

    [LoggerMessage(2001, LogLevel.Warning, "The Conveyor database {Path} could not be put in WAL mode (journal mode {Mode}); readers and writers of several processes will block each other")]
    public static partial void NotWal(ILogger logger, string path, string mode);

    [LoggerMessage(2002, LogLevel.Warning, "A write transaction of {Count} requests failed; running each alone")]
    public static partial void WriteBatchFailed(ILogger logger, Exception exception, int count);

    [LoggerMessage(2003, LogLevel.Warning, "Rolling back a failed write transaction failed")]
    public static partial void RollbackFailed(ILogger logger, Exception exception);

    [LoggerMessage(2004, LogLevel.Warning, "A background write (expiry) failed")]
    public static partial void BackgroundWriteFailed(ILogger logger, Exception exception);

    [LoggerMessage(2005, LogLevel.Warning, "Polling the Conveyor database for other processes' changes failed")]
    public static partial void PollFailed(ILogger logger, Exception exception);

    [LoggerMessage(2006, LogLevel.Debug, "Deleted {Count} expired states and groups from {Path}")]
    public static partial void Swept(ILogger logger, int count, string path);

    [LoggerMessage(2007, LogLevel.Warning, "A WAL checkpoint failed")]
    public static partial void CheckpointFailed(ILogger logger, Exception exception);

    [LoggerMessage(2010, LogLevel.Warning, "Consumer {Consumer} of queue {Queue} could not fetch messages; retrying in {Delay}")]
    public static partial void FetchFailed(ILogger logger, Exception exception, string consumer, string queue, TimeSpan delay);

    [LoggerMessage(2011, LogLevel.Warning, "Consumer {Consumer} of queue {Queue} could not extend its leases")]
    public static partial void HeartbeatFailed(ILogger logger, Exception exception, string consumer, string queue);

    [LoggerMessage(2012, LogLevel.Warning, "Consumer {Consumer} of queue {Queue} lost the lease of message {MessageId} (no heartbeat within the visibility timeout); another consumer may run it")]
    public static partial void LeaseLost(ILogger logger, string consumer, string queue, long messageId);

    [LoggerMessage(2013, LogLevel.Debug, "Consumer {Consumer} of queue {Queue} handed back {Count} unsettled message(s)")]
    public static partial void HandedBack(ILogger logger, string consumer, string queue, int count);

    [LoggerMessage(2014, LogLevel.Warning, "Consumer {Consumer} of queue {Queue} could not hand back its unsettled messages; they return when their leases expire")]
    public static partial void HandBackFailed(ILogger logger, Exception exception, string consumer, string queue);
}
