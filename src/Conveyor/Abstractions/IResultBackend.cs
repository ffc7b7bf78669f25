namespace Conveyor;

/// <summary>
/// Stores task states and results, and group metadata, in machinery's JSON (key = task or group id).
/// </summary>
public interface IResultBackend : IAsyncDisposable
{
    /// <summary>What this backend supports.</summary>
    ResultBackendCapabilities Capabilities { get; }

    /// <summary>
    /// Stores a task's state. A backend keeps the <see cref="TaskStateRecord.CreatedAt"/> of an existing record
    /// (as machinery does) and applies its result expiry.
    /// </summary>
    /// <param name="state">The state.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the state is stored.</returns>
    ValueTask SetStateAsync(TaskStateRecord state, CancellationToken cancellationToken = default);

    /// <summary>
    /// Stores several states in as few round trips as the backend can, in list order (a task's RECEIVED before its
    /// STARTED), each as <see cref="SetStateAsync"/> stores it. The default stores them one after another.
    /// </summary>
    /// <param name="states">The states.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when every state is stored.</returns>
    async ValueTask SetStatesAsync(IReadOnlyList<TaskStateRecord> states, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(states);
        foreach (var state in states)
        {
            await SetStateAsync(state, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Settles a batch for a worker in as few round trips as the backend can: stores the states in list order, each
    /// as <see cref="SetStateAsync"/> stores it, and acknowledges the deliveries that its own engine holds in the same
    /// step (a Redis broker's in-flight list, a SQLite broker's rows), atomically with the states. The caller
    /// acknowledges every delivery afterwards; an acknowledgement done here makes that a no-op. The default stores
    /// the states with <see cref="SetStatesAsync"/> and acknowledges nothing.
    /// </summary>
    /// <param name="batch">The steps, in order.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when every state is stored.</returns>
    ValueTask SettleAsync(IReadOnlyList<Settlement> batch, CancellationToken cancellationToken = default) =>
        ResultBackendDefaults.SettleAsync(this, batch, cancellationToken);

    /// <summary>
    /// Stores each message's PENDING state and then enqueues the message through <paramref name="broker"/>, for a
    /// batch of publishes, in as few round trips as the two allow: one script or transaction where they share an
    /// engine. A backend may write PENDING as machinery does, without reading an older record. The default stores the
    /// states with <see cref="SetStatesAsync"/>, then publishes the messages concurrently.
    /// </summary>
    /// <param name="broker">The broker to enqueue through.</param>
    /// <param name="batch">The publishes.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when every message is enqueued.</returns>
    ValueTask EnqueueAsync(IBroker broker, IReadOnlyList<PendingPublish> batch, CancellationToken cancellationToken = default) =>
        ResultBackendDefaults.EnqueueAsync(this, broker, batch, cancellationToken);

    /// <summary>Reads a task's state.</summary>
    /// <param name="taskId">The task id.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The state, or <see langword="null"/> when none is stored (unknown or expired).</returns>
    ValueTask<TaskStateRecord?> GetStateAsync(string taskId, CancellationToken cancellationToken = default);

    /// <summary>Reads several tasks' states in one round trip.</summary>
    /// <param name="taskIds">The task ids.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The states, in the order of <paramref name="taskIds"/>; <see langword="null"/> where none is stored.</returns>
    ValueTask<IReadOnlyList<TaskStateRecord?>> GetStatesAsync(IReadOnlyList<string> taskIds, CancellationToken cancellationToken = default);

    /// <summary>Stores a group's metadata (its member ids in member order).</summary>
    /// <param name="meta">The group meta.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when it is stored.</returns>
    ValueTask InitGroupAsync(GroupMeta meta, CancellationToken cancellationToken = default);

    /// <summary>Reads a group's metadata.</summary>
    /// <param name="groupId">The group id.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The meta, or <see langword="null"/>.</returns>
    ValueTask<GroupMeta?> GetGroupMetaAsync(string groupId, CancellationToken cancellationToken = default);

    /// <summary>
    /// Records, in one atomic operation, that a member of a group reached its final state, and returns the group's
    /// progress. Idempotent per member: recording the same member twice (a redelivered message) counts it once and
    /// says so in <see cref="GroupCompletion.IsFirstCompletion"/>.
    /// </summary>
    /// <remarks>
    /// Members run by a peer that only writes states (a Go machinery worker) are never recorded here, so the
    /// progress also counts members whose stored state is final (SUCCESS or FAILURE), in member order from the
    /// group meta: a cursor that only moves forward over final members, so the whole group costs O(N) reads once,
    /// and each call O(1) amortized. <see cref="GroupCompletion.Completed"/> reaches the member count when every
    /// member is final, whichever worker ran it; <see cref="GroupCompletion.Failed"/> includes the peers' failures.
    /// </remarks>
    /// <param name="groupId">The group id.</param>
    /// <param name="taskId">The member's task id.</param>
    /// <param name="succeeded">Whether the member succeeded.</param>
    /// <param name="traceParent">
    /// The W3C <c>traceparent</c> of the member's process span, stored with the member's first completion so that
    /// the chord callback can link to it (<see cref="GetGroupMemberTraceParentsAsync"/>); <see langword="null"/>
    /// stores none.
    /// </param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The group's progress after this member.</returns>
    ValueTask<GroupCompletion> CompleteGroupMemberAsync(string groupId, string taskId, bool succeeded, string? traceParent = null, CancellationToken cancellationToken = default);

    /// <summary>
    /// Reads the trace contexts stored with the group's completed members (see
    /// <see cref="CompleteGroupMemberAsync"/>), for the chord callback's span links. Members completed without one
    /// are left out.
    /// </summary>
    /// <param name="groupId">The group id.</param>
    /// <param name="maxCount">The most to return; which ones when there are more is up to the backend.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>At most <paramref name="maxCount"/> W3C <c>traceparent</c> strings, one per member.</returns>
    ValueTask<IReadOnlyList<string>> GetGroupMemberTraceParentsAsync(string groupId, int maxCount, CancellationToken cancellationToken = default);

    /// <summary>
    /// Claims the right to publish a chord's callback, as machinery's <c>TriggerChord</c> does: reads the group
    /// meta's <c>ChordTriggered</c> and sets it when it is not set, atomically with respect to every other claimant
    /// (on Redis, under machinery's <c>TriggerChordMutex</c>, so Go workers and Conveyor workers claim from one
    /// another). The flag is set before the callback is published; the winner then publishes and calls
    /// <see cref="MarkChordTriggeredAsync"/>. A claimant that won but died before that call wins again when it
    /// claims again (its redelivered message), so the callback is published at least once and, without crashes,
    /// exactly once.
    /// </summary>
    /// <param name="groupId">The group id.</param>
    /// <param name="claimantId">Who claims: the member's task id.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>Whether this claimant may publish the callback.</returns>
    /// <exception cref="InvalidOperationException">The group meta is missing (never stored, or expired).</exception>
    ValueTask<ChordClaim> ClaimChordAsync(string groupId, string claimantId, CancellationToken cancellationToken = default);

    /// <summary>
    /// Records that a chord's callback was published: ends the claim of <see cref="ClaimChordAsync"/> and sets
    /// machinery's <c>ChordTriggered</c> in the group meta when it is not set yet.
    /// </summary>
    /// <param name="groupId">The group id.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the mark is stored.</returns>
    ValueTask MarkChordTriggeredAsync(string groupId, CancellationToken cancellationToken = default);

    /// <summary>
    /// Waits until a task's state may have changed, or until <paramref name="maxWait"/> passes. A backend with
    /// <see cref="ResultBackendCapabilities.ChangeNotifications"/> returns as soon as the state is written; others
    /// just wait, and the caller polls. A change written after this call begins (before its first await) must
    /// end the wait: callers start the wait, read the state, then await the wait.
    /// </summary>
    /// <param name="taskId">The task id.</param>
    /// <param name="maxWait">The longest to wait.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>A task that completes when the caller should read the state again.</returns>
    ValueTask WaitForChangeAsync(string taskId, TimeSpan maxWait, CancellationToken cancellationToken = default);

    /// <summary>Deletes a task's state.</summary>
    /// <param name="taskId">The task id.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when it is deleted.</returns>
    ValueTask DeleteStateAsync(string taskId, CancellationToken cancellationToken = default);

    /// <summary>
    /// Counts one more redelivery of a task whose broker keeps no delivery count
    /// (<see cref="IBrokerDelivery.IsUncountedRedelivery"/>), for the poison-message check. Called for redeliveries
    /// only, so a run where no worker dies never calls it.
    /// </summary>
    /// <param name="taskId">The task id.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>How many redeliveries of the task were counted, this one included, within the result expiry; or
    /// <see langword="null"/> when this backend does not count them (the default).</returns>
    ValueTask<int?> CountRedeliveryAsync(string taskId, CancellationToken cancellationToken = default) => ValueTask.FromResult<int?>(null);

    /// <summary>Deletes a group's metadata and completion record.</summary>
    /// <param name="groupId">The group id.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when it is deleted.</returns>
    ValueTask DeleteGroupAsync(string groupId, CancellationToken cancellationToken = default);
}

/// <summary>What a result backend supports.</summary>
[Flags]
public enum ResultBackendCapabilities
{
    /// <summary>Nothing beyond storing and reading.</summary>
    None = 0,

    /// <summary>
    /// <see cref="IResultBackend.WaitForChangeAsync"/> ends when the state is written (pushed, or detected by the
    /// backend itself), so callers may wait long instead of polling.
    /// </summary>
    ChangeNotifications = 1,

    /// <summary>Results expire after a time to live.</summary>
    ResultExpiry = 2,

    /// <summary>Several processes (or machines) can share the backend.</summary>
    Distributed = 4,
}

/// <summary>A group's progress after a member completed.</summary>
/// <param name="Completed">Members that reached a final state.</param>
/// <param name="Failed">Members that failed.</param>
/// <param name="IsFirstCompletion">Whether this call recorded the member for the first time.</param>
/// <param name="ChordTriggered">Whether the chord was already claimed (<see cref="IResultBackend.ClaimChordAsync"/>) or its callback marked as published.</param>
public readonly record struct GroupCompletion(int Completed, int Failed, bool IsFirstCompletion, bool ChordTriggered);

/// <summary>The outcome of <see cref="IResultBackend.ClaimChordAsync"/>.</summary>
public enum ChordClaim
{
    /// <summary>Another claimant has the chord (or its callback was published): do nothing.</summary>
    Lost = 0,

    /// <summary>This call set <c>ChordTriggered</c>: publish the callback, then mark it published.</summary>
    Won = 1,

    /// <summary>
    /// The same claimant won before and the callback was not marked published (it died or failed in between):
    /// publish the callback again, then mark it published.
    /// </summary>
    Resumed = 2,
}
