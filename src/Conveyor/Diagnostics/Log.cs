using Microsoft.Extensions.Logging;

namespace Conveyor.Diagnostics;

/// <summary>Conveyor's log messages. Event ids are stable: renaming or renumbering one is a breaking change.</summary>
internal static partial class Log
{
    [LoggerMessage(1000, LogLevel.Information, "Worker {WorkerName} consuming queue {Queue} with concurrency {Concurrency} and prefetch {Prefetch}")]
    public static partial void WorkerStarted(ILogger logger, string workerName, string queue, int concurrency, int prefetch);

    [LoggerMessage(1001, LogLevel.Information, "Worker {WorkerName} stopping: {InFlight} task(s) in flight, grace period {GracePeriod}")]
    public static partial void WorkerStopping(ILogger logger, string workerName, int inFlight, TimeSpan gracePeriod);

    [LoggerMessage(1002, LogLevel.Information, "Worker {WorkerName} stopped")]
    public static partial void WorkerStopped(ILogger logger, string workerName);

    [LoggerMessage(1003, LogLevel.Warning, "Worker {WorkerName}: the grace period ended with {InFlight} task(s) still running; they were canceled and handed back")]
    public static partial void GracePeriodExceeded(ILogger logger, string workerName, int inFlight);

    [LoggerMessage(1004, LogLevel.Error, "Worker {WorkerName}: the broker consumer failed; reconnecting in {Delay}")]
    public static partial void ConsumerFailed(ILogger logger, Exception exception, string workerName, TimeSpan delay);

    [LoggerMessage(1005, LogLevel.Debug, "Sampling the statistics of queue {Queue} for the queue depth gauge failed; the gauge keeps the last sample")]
    public static partial void QueueSampleFailed(ILogger logger, Exception exception, string queue);

    [LoggerMessage(1100, LogLevel.Debug, "Task {TaskName} {TaskId} succeeded in {ElapsedMs} ms")]
    public static partial void TaskSucceeded(ILogger logger, string taskName, string taskId, double elapsedMs);

    [LoggerMessage(1101, LogLevel.Warning, "Task {TaskName} {TaskId} failed: {Error}")]
    public static partial void TaskFailed(ILogger logger, Exception? exception, string taskName, string taskId, string error);

    [LoggerMessage(1102, LogLevel.Information, "Task {TaskName} {TaskId} failed ({Error}); retry {Attempt} in {Delay}, {RetriesLeft} left")]
    public static partial void TaskRetrying(ILogger logger, string taskName, string taskId, string error, int attempt, TimeSpan delay, int retriesLeft);

    [LoggerMessage(1103, LogLevel.Warning, "Task {TaskName} {TaskId} timed out after {Timeout}")]
    public static partial void TaskTimedOut(ILogger logger, string taskName, string taskId, TimeSpan timeout);

    [LoggerMessage(1104, LogLevel.Error, "Message from queue {Queue} dead-lettered: {Reason}")]
    public static partial void MessageDeadLettered(ILogger logger, string queue, string reason);

    [LoggerMessage(1105, LogLevel.Warning, "Task {TaskName} {TaskId} is not registered here; handed back with a delay of {Delay}")]
    public static partial void UnregisteredRequeued(ILogger logger, string taskName, string taskId, TimeSpan delay);

    [LoggerMessage(1106, LogLevel.Error, "Processing a message from queue {Queue} failed; the message is handed back")]
    public static partial void ProcessingFailed(ILogger logger, Exception exception, string queue);

    [LoggerMessage(1110, LogLevel.Warning, "Worker {WorkerName}: storing {Count} state(s) and acknowledgement(s) failed (attempt {Attempt}); retrying in {Delay}")]
    public static partial void SettleFailed(ILogger logger, Exception exception, string workerName, int count, int attempt, TimeSpan delay);

    [LoggerMessage(1111, LogLevel.Warning, "Worker {WorkerName}: acknowledging a message of queue {Queue} failed; the broker delivers it again")]
    public static partial void AckFailed(ILogger logger, Exception exception, string workerName, string queue);

    [LoggerMessage(1112, LogLevel.Warning, "Worker {WorkerName}: stopped with {Count} state(s) and acknowledgement(s) not stored; their messages are handed back and run again")]
    public static partial void SettleAbandoned(ILogger logger, string workerName, int count);

    [LoggerMessage(1120, LogLevel.Warning, "Counting a redelivery of task {TaskId} from queue {Queue} in the result backend failed; the broker's own delivery count is used")]
    public static partial void RedeliveryCountFailed(ILogger logger, Exception exception, string queue, string taskId);

    [LoggerMessage(1107, LogLevel.Error, "A {Hook} hook threw for task {TaskName} {TaskId}")]
    public static partial void HookFailed(ILogger logger, Exception exception, string hook, string taskName, string taskId);

    [LoggerMessage(1108, LogLevel.Information, "Chord {GroupId} complete: callback {TaskName} {TaskId} published")]
    public static partial void ChordTriggered(ILogger logger, string groupId, string taskName, string taskId);

    [LoggerMessage(1200, LogLevel.Debug, "Published task {TaskName} {TaskId} to queue {Queue}")]
    public static partial void TaskPublished(ILogger logger, string taskName, string taskId, string queue);

    [LoggerMessage(1300, LogLevel.Information, "Scheduler started with {Count} schedule(s)")]
    public static partial void SchedulerStarted(ILogger logger, int count);

    [LoggerMessage(1301, LogLevel.Information, "Scheduler stopped")]
    public static partial void SchedulerStopped(ILogger logger);

    [LoggerMessage(1302, LogLevel.Information, "Schedule {Schedule} added: {Work} {Trigger}")]
    public static partial void ScheduleAdded(ILogger logger, string schedule, string work, string trigger);

    [LoggerMessage(1303, LogLevel.Information, "Schedule {Schedule} removed")]
    public static partial void ScheduleRemoved(ILogger logger, string schedule);

    [LoggerMessage(1304, LogLevel.Information, "Schedule {Schedule} tick {Tick}: published {Work} {TaskId}")]
    public static partial void TickPublished(ILogger logger, string schedule, string tick, string work, string taskId);

    [LoggerMessage(1305, LogLevel.Debug, "Schedule {Schedule} tick {Tick}: claimed by another scheduler")]
    public static partial void TickClaimedElsewhere(ILogger logger, string schedule, string tick);

    [LoggerMessage(1306, LogLevel.Warning, "Schedule {Schedule}: {Count} tick(s) up to {LastTick} were more than {Threshold} late and are skipped (misfire policy Skip)")]
    public static partial void TicksSkipped(ILogger logger, string schedule, int count, string lastTick, TimeSpan threshold);

    [LoggerMessage(1307, LogLevel.Error, "Schedule {Schedule} tick {Tick} failed; the schedule goes on with its next tick")]
    public static partial void TickFailed(ILogger logger, Exception exception, string schedule, string tick);

    [LoggerMessage(1308, LogLevel.Warning, "Schedule {Schedule}: catching up {Count} missed tick(s) from {FirstTick}{More}")]
    public static partial void CatchingUp(ILogger logger, string schedule, int count, string firstTick, string more);

    [LoggerMessage(1309, LogLevel.Error, "The scheduler loop failed; it goes on in {Delay}")]
    public static partial void SchedulerLoopFailed(ILogger logger, Exception exception, TimeSpan delay);

    // 1350-1449: operating a live queue (revocations, pauses, worker heartbeats, progress).
    [LoggerMessage(1350, LogLevel.Warning, "Worker {WorkerName}: reading or writing the control state (revocations, pauses, heartbeat) failed; retrying")]
    public static partial void ControlReadFailed(ILogger logger, Exception exception, string workerName);

    [LoggerMessage(1351, LogLevel.Information, "Worker {WorkerName}: running task {TaskId} was revoked; canceling it")]
    public static partial void RunningTaskRevoked(ILogger logger, string workerName, string taskId);

    [LoggerMessage(1352, LogLevel.Information, "Worker {WorkerName}: queue {Queue} paused; taking no new message until it is resumed")]
    public static partial void QueuePaused(ILogger logger, string workerName, string queue);

    [LoggerMessage(1353, LogLevel.Information, "Worker {WorkerName}: queue {Queue} resumed")]
    public static partial void QueueResumed(ILogger logger, string workerName, string queue);

    [LoggerMessage(1354, LogLevel.Information, "Task {TaskName} {TaskId} revoked: {Error}")]
    public static partial void TaskRevoked(ILogger logger, string taskName, string taskId, string error);

    [LoggerMessage(1355, LogLevel.Debug, "Storing the progress of task {TaskId} failed; the task goes on")]
    public static partial void ProgressFailed(ILogger logger, Exception exception, string taskId);

    [LoggerMessage(1357, LogLevel.Information, "Worker {WorkerName}: paused; handed {Count} fetched, unstarted message(s) back to the broker")]
    public static partial void PausedDeliveriesHandedBack(ILogger logger, string workerName, int count);

    [LoggerMessage(1358, LogLevel.Warning, "Worker {WorkerName}: paused; handing its fetched, unstarted messages back failed (they go back when its running tasks finish)")]
    public static partial void PausedHandBackFailed(ILogger logger, Exception exception, string workerName);

    [LoggerMessage(1356, LogLevel.Debug, "Task {TaskName} {TaskId} is rate-limited; published again to run in {Delay}")]
    public static partial void RateLimited(ILogger logger, string taskName, string taskId, TimeSpan delay);
}
