namespace Conveyor;

/// <summary>
/// A provider's side of the management API (<see cref="ConveyorManagement"/>): the control state that workers
/// follow (revoked task ids, paused queues), the workers' heartbeats, progress reports, and, where the provider is
/// the broker, its messages. Implemented by the in-memory, SQLite and Redis providers; kept apart from
/// <see cref="IBroker"/> so that the transport stays small.
/// </summary>
/// <remarks>
/// Workers read the control state in the background (<see cref="WaitForControlChangeAsync"/> then
/// <see cref="ReadControlAsync"/>) into an in-process set, so the hot path pays one lookup per task, not a round
/// trip.
/// </remarks>
public partial interface IManagementStore
{
    /// <summary>What the store can list besides the control state.</summary>
    ManagementCapabilities Capabilities { get; }

    /// <summary>How long revoked ids and progress reports are kept: the result retention.</summary>
    TimeSpan Retention { get; }

    /// <summary>
    /// Lists a queue's messages in <see cref="ManagedTaskState.Pending"/>, <see cref="ManagedTaskState.Scheduled"/>
    /// (ETA order) or <see cref="ManagedTaskState.Active"/> state, a page at a time.
    /// </summary>
    /// <param name="queue">The queue.</param>
    /// <param name="query">The state, name filter, limit and cursor.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The page.</returns>
    ValueTask<TaskPage> ListMessagesAsync(string queue, TaskQuery query, CancellationToken cancellationToken = default);

    /// <summary>Finds a task's messages in every queue (pending, scheduled or active).</summary>
    /// <param name="taskId">The task id.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The messages found, with their raw bodies.</returns>
    ValueTask<IReadOnlyList<(TaskSummary Summary, ReadOnlyMemory<byte> Body)>> FindMessagesAsync(string taskId, CancellationToken cancellationToken = default);

    /// <summary>Deletes a task's pending and scheduled messages (an active one is left to its worker).</summary>
    /// <param name="taskId">The task id.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>How many messages were deleted.</returns>
    ValueTask<int> DeleteMessagesAsync(string taskId, CancellationToken cancellationToken = default);

    /// <summary>Makes a task's scheduled messages ready now.</summary>
    /// <param name="taskId">The task id.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>How many messages were moved.</returns>
    ValueTask<int> RunNowAsync(string taskId, CancellationToken cancellationToken = default);

    /// <summary>
    /// Lists finished states (<see cref="ManagedTaskState.Succeeded"/>, <see cref="ManagedTaskState.Failed"/>,
    /// <see cref="ManagedTaskState.Revoked"/>) within the result retention, a page at a time.
    /// </summary>
    /// <param name="query">The state, name filter, limit and cursor.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The page.</returns>
    ValueTask<TaskPage> ListStatesAsync(TaskQuery query, CancellationToken cancellationToken = default);

    /// <summary>Adds task ids to the revoked set (kept for <see cref="Retention"/>) and tells the workers at once where the engine can push.</summary>
    /// <param name="taskIds">The ids.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the ids are stored.</returns>
    ValueTask RevokeAsync(IReadOnlyList<string> taskIds, CancellationToken cancellationToken = default);

    /// <summary>Pauses or resumes a queue for the whole fleet (kept until changed) and tells the workers.</summary>
    /// <param name="queue">The queue.</param>
    /// <param name="paused">Whether it is paused.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when it is stored.</returns>
    ValueTask SetPausedAsync(string queue, bool paused, CancellationToken cancellationToken = default);

    /// <summary>Reads the revocations after a cursor and every paused queue.</summary>
    /// <param name="after">The cursor of the last read; 0 for everything kept.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The changes and the next cursor.</returns>
    ValueTask<ControlChanges> ReadControlAsync(long after, CancellationToken cancellationToken = default);

    /// <summary>Waits until the control state may have changed (pushed where the engine can) or <paramref name="maxWait"/> passes.</summary>
    /// <param name="maxWait">The longest to wait.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>A task that completes when the caller should read again.</returns>
    ValueTask WaitForControlChangeAsync(TimeSpan maxWait, CancellationToken cancellationToken = default);

    /// <summary>Records a worker's heartbeat; the record lapses after <paramref name="ttl"/> without another.</summary>
    /// <param name="worker">The worker.</param>
    /// <param name="ttl">How long the record lives.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when it is stored.</returns>
    ValueTask HeartbeatAsync(WorkerInfo worker, TimeSpan ttl, CancellationToken cancellationToken = default);

    /// <summary>Removes a stopped worker's record.</summary>
    /// <param name="name">The worker's name.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when it is removed.</returns>
    ValueTask RemoveWorkerAsync(string name, CancellationToken cancellationToken = default);

    /// <summary>Lists the workers whose heartbeat has not lapsed, by name.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The workers.</returns>
    ValueTask<IReadOnlyList<WorkerInfo>> ListWorkersAsync(CancellationToken cancellationToken = default);

    /// <summary>Stores a task's progress (kept for <see cref="Retention"/>).</summary>
    /// <param name="taskId">The task id.</param>
    /// <param name="progress">The report.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when it is stored.</returns>
    ValueTask SetProgressAsync(string taskId, TaskProgress progress, CancellationToken cancellationToken = default);

    /// <summary>Reads a task's last progress report.</summary>
    /// <param name="taskId">The task id.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The report, or <see langword="null"/>.</returns>
    ValueTask<TaskProgress?> GetProgressAsync(string taskId, CancellationToken cancellationToken = default);

    /// <summary>
    /// Claims a unique key for a task, atomically: of many concurrent claims of a free key exactly one wins. A key
    /// lapses after <paramref name="ttl"/>.
    /// </summary>
    /// <param name="key">The unique key.</param>
    /// <param name="taskId">The claiming task.</param>
    /// <param name="ttl">How long the key holds at most.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns><see langword="null"/> when this task now holds the key; else the id of the task that holds it.</returns>
    ValueTask<string?> ClaimUniqueAsync(string key, string taskId, TimeSpan ttl, CancellationToken cancellationToken = default);

    /// <summary>Releases a unique key, if <paramref name="taskId"/> holds it.</summary>
    /// <param name="key">The unique key.</param>
    /// <param name="taskId">The task that should hold it.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when it is released.</returns>
    ValueTask ReleaseUniqueAsync(string key, string taskId, CancellationToken cancellationToken = default);

    /// <summary>
    /// Reserves a token of a fleet-wide token bucket (refilled at <paramref name="ratePerSecond"/>, holding at most
    /// <paramref name="burst"/>): a caller is given its turn, which may be in the future, so it sleeps once instead
    /// of polling; a turn further than <paramref name="maxWait"/> away is refused with the time to ask again.
    /// </summary>
    /// <param name="bucket">The bucket's key.</param>
    /// <param name="ratePerSecond">Tokens per second.</param>
    /// <param name="burst">The bucket's size.</param>
    /// <param name="maxWait">The longest turn to accept.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The reservation.</returns>
    ValueTask<TokenReservation> ReserveTokenAsync(string bucket, double ratePerSecond, int burst, TimeSpan maxWait, CancellationToken cancellationToken = default);
}
