using System.Globalization;
using Conveyor.Serialization;

namespace Conveyor;

/// <summary>
/// The management API: list tasks by state (keyset pages), one task's detail, search, live workers, delete a
/// pending or scheduled task, run a scheduled task now, revoke tasks (and groups), pause and resume queues. The
/// CLI and the dashboard are thin views of it. It composes the provider's <see cref="IManagementStore"/> with the
/// broker (dead letters) and the result backend (states, group metas).
/// </summary>
/// <remarks>
/// Revoking writes the task's final state at once — FAILURE with an error that starts with <c>revoked</c>, the
/// only final states Go machinery knows, so a machinery producer waiting on it sees it finish — removes its
/// pending and scheduled messages where the store can, and adds the id to the revoked set that every Conveyor
/// worker follows: a worker drops a revoked message when it is delivered, and cancels a running one's token. Go
/// machinery workers know nothing of revocations and pauses.
/// </remarks>
public sealed partial class ConveyorManagement
{
    private readonly IManagementStore _store;
    private readonly IBroker _broker;
    private readonly IResultBackend _backend;
    private readonly TimeProvider _time;

    /// <summary>Creates the API over a provider's store, the broker and the backend. Does no I/O.</summary>
    /// <param name="store">The provider's management store.</param>
    /// <param name="broker">The broker (dead letters).</param>
    /// <param name="backend">The result backend (states, groups).</param>
    /// <param name="defaultQueue">The queue listed when a query names none.</param>
    /// <param name="timeProvider">The clock; the system clock when <see langword="null"/>.</param>
    public ConveyorManagement(IManagementStore store, IBroker broker, IResultBackend backend, string defaultQueue = "machinery_tasks", TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(broker);
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentException.ThrowIfNullOrEmpty(defaultQueue);
        _store = store;
        _broker = broker;
        _backend = backend;
        DefaultQueue = defaultQueue;
        _time = timeProvider ?? TimeProvider.System;
    }

    /// <summary>The provider's store.</summary>
    public IManagementStore Store => _store;

    /// <summary>The queue listed when a query names none.</summary>
    public string DefaultQueue { get; }

    /// <summary>Lists tasks in one state, a page at a time (<see cref="TaskQuery.After"/> = the previous page's <see cref="TaskPage.Next"/>).</summary>
    /// <param name="query">What to list.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The page.</returns>
    /// <exception cref="NotSupportedException">The provider cannot list that state (a RabbitMQ broker's messages).</exception>
    public async ValueTask<TaskPage> ListTasksAsync(TaskQuery query, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(query);
        ArgumentOutOfRangeException.ThrowIfLessThan(query.Limit, 1, nameof(query));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(query.Limit, 1000, nameof(query));
        switch (query.State)
        {
            case ManagedTaskState.Pending or ManagedTaskState.Scheduled or ManagedTaskState.Active:
                RequireMessages(readOnly: true);
                return await _store.ListMessagesAsync(query.Queue ?? DefaultQueue, query, cancellationToken).ConfigureAwait(false);
            case ManagedTaskState.DeadLettered:
                return await ListDeadLettersAsync(query, cancellationToken).ConfigureAwait(false);
            default:
                if (!_store.Capabilities.HasFlag(ManagementCapabilities.States))
                {
                    throw new NotSupportedException("This result backend cannot list finished tasks.");
                }

                return await _store.ListStatesAsync(query, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Reads everything known about one task: its state, its messages, its signature, its group, its progress.</summary>
    /// <param name="taskId">The task id.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The detail, or <see langword="null"/> when nothing is known of the id.</returns>
    public async ValueTask<TaskDetail?> GetTaskAsync(string taskId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(taskId);
        var state = await _backend.GetStateAsync(taskId, cancellationToken).ConfigureAwait(false);
        IReadOnlyList<(TaskSummary Summary, ReadOnlyMemory<byte> Body)> messages = [];
        if (CanReadMessages)
        {
            messages = await _store.FindMessagesAsync(taskId, cancellationToken).ConfigureAwait(false);
        }

        var progress = await _store.GetProgressAsync(taskId, cancellationToken).ConfigureAwait(false);
        if (state is null && messages.Count == 0 && progress is null)
        {
            return null;
        }

        Signature? signature = null;
        foreach (var (_, body) in messages)
        {
            try
            {
                signature = Serialization.WireFormat.DeserializeSignature(body.Span);
                break;
            }
            catch (WireFormatException)
            {
                // Listed with its error in Messages.
            }
        }

        GroupMeta? group = null;
        if (signature is { GroupId.Length: > 0 })
        {
            group = await _backend.GetGroupMetaAsync(signature.GroupId, cancellationToken).ConfigureAwait(false);
        }

        var revoked = state?.IsRevoked() == true;
        ManagedTaskState? status = messages.Count > 0 ? messages[0].Summary.State
            : state is { IsCompleted: true } ? TaskSummary.FromState(state).State
            : null;
        if (revoked)
        {
            status = ManagedTaskState.Revoked;
        }

        return new TaskDetail
        {
            Id = taskId,
            State = state,
            Status = status,
            Messages = [.. messages.Select(m => m.Summary)],
            Signature = signature,
            Group = group,
            Revoked = revoked,
            Progress = progress,
        };
    }

    /// <summary>
    /// Finds tasks by id (an exact id) or by name (the pending, scheduled and active tasks of the default queue
    /// and the finished ones with that name), at most <paramref name="limit"/>.
    /// </summary>
    /// <param name="text">A task id or a task name.</param>
    /// <param name="limit">The most to return.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The tasks found.</returns>
    public async ValueTask<IReadOnlyList<TaskSummary>> SearchAsync(string text, int limit = 50, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(text);
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        var found = new List<TaskSummary>();
        if (await GetTaskAsync(text, cancellationToken).ConfigureAwait(false) is { } detail)
        {
            found.AddRange(detail.Messages);
            if (detail.Messages.Count == 0 && detail.State is { } state)
            {
                found.Add(state.IsCompleted ? TaskSummary.FromState(state) : new TaskSummary { Id = state.TaskId, Name = state.TaskName, State = ManagedTaskState.Pending, Since = state.CreatedAt });
            }

            return found;
        }

        ManagedTaskState[] states = CanReadMessages
            ? [ManagedTaskState.Active, ManagedTaskState.Pending, ManagedTaskState.Scheduled]
            : [];
        if (_store.Capabilities.HasFlag(ManagementCapabilities.States))
        {
            states = [.. states, ManagedTaskState.Failed, ManagedTaskState.Revoked, ManagedTaskState.Succeeded];
        }

        foreach (var state in states)
        {
            if (found.Count >= limit)
            {
                break;
            }

            var page = await ListTasksAsync(new TaskQuery { State = state, Name = text, Limit = limit - found.Count }, cancellationToken).ConfigureAwait(false);
            found.AddRange(page.Tasks);
        }

        return found;
    }

    /// <summary>Lists the workers whose heartbeat is current.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The workers, by name.</returns>
    public ValueTask<IReadOnlyList<WorkerInfo>> ListWorkersAsync(CancellationToken cancellationToken = default) => _store.ListWorkersAsync(cancellationToken);

    /// <summary>Deletes a pending or scheduled task: its messages and its state, so that nothing waits on it.</summary>
    /// <param name="taskId">The task id.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>Whether a message was deleted.</returns>
    public async ValueTask<bool> DeleteTaskAsync(string taskId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(taskId);
        RequireMessages();
        var deleted = await _store.DeleteMessagesAsync(taskId, cancellationToken).ConfigureAwait(false);
        if (deleted > 0 && await _backend.GetStateAsync(taskId, cancellationToken).ConfigureAwait(false) is { IsCompleted: false })
        {
            await _backend.DeleteStateAsync(taskId, cancellationToken).ConfigureAwait(false);
        }

        return deleted > 0;
    }

    /// <summary>Makes a scheduled task ready now.</summary>
    /// <param name="taskId">The task id.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>Whether a scheduled message was found and moved.</returns>
    public async ValueTask<bool> RunNowAsync(string taskId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(taskId);
        RequireMessages();
        return await _store.RunNowAsync(taskId, cancellationToken).ConfigureAwait(false) > 0;
    }

    /// <summary>
    /// Revokes tasks: a pending or scheduled one never runs, a running one has its token canceled by its worker
    /// within a second (a handler that ignores it is abandoned, as on a timeout). An id that names a group revokes
    /// its members, and a chord's callback with them. The final state is FAILURE with the error
    /// <c>revoked</c> (plus the reason), which machinery reads as final and Conveyor as revoked.
    /// </summary>
    /// <param name="ids">Task or group ids.</param>
    /// <param name="reason">Why, appended to the error; <see langword="null"/> for none.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The task ids revoked (members of groups included).</returns>
    public async ValueTask<IReadOnlyList<string>> RevokeAsync(IReadOnlyList<string> ids, string? reason = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var taskIds = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var id in ids)
        {
            ArgumentException.ThrowIfNullOrEmpty(id, nameof(ids));
            if (await GroupOfAsync(id, cancellationToken).ConfigureAwait(false) is { } group)
            {
                foreach (var member in group.TaskIds)
                {
                    if (seen.Add(member))
                    {
                        taskIds.Add(member);
                    }
                }

                // A chord's callback travels inside each member's message: revoke it too, so that it never runs
                // even when a member finished before the revocation.
                if (CanReadMessages)
                {
                    foreach (var member in group.TaskIds)
                    {
                        var callbackId = await ChordCallbackIdAsync(member, cancellationToken).ConfigureAwait(false);
                        if (callbackId is not null)
                        {
                            if (seen.Add(callbackId))
                            {
                                taskIds.Add(callbackId);
                            }

                            break;
                        }
                    }
                }
            }
            else if (seen.Add(id))
            {
                taskIds.Add(id);
            }
        }

        if (taskIds.Count == 0)
        {
            return [];
        }

        // The set first: a worker that takes the message while the state is written drops it.
        await _store.RevokeAsync(taskIds, cancellationToken).ConfigureAwait(false);
        var error = reason is { Length: > 0 } ? RevocationExtensions.RevokedErrorPrefix + ": " + reason : RevocationExtensions.RevokedErrorPrefix;
        var states = await _backend.GetStatesAsync(taskIds, cancellationToken).ConfigureAwait(false);
        var finals = new List<TaskStateRecord>();
        for (var i = 0; i < taskIds.Count; i++)
        {
            if (states[i] is { IsCompleted: true })
            {
                continue;
            }

            finals.Add(new TaskStateRecord
            {
                TaskId = taskIds[i],
                TaskName = states[i]?.TaskName ?? string.Empty,
                State = TaskState.Failure,
                Error = error,
                CreatedAt = states[i]?.CreatedAt ?? _time.GetUtcNow(),
            });
        }

        if (finals.Count > 0)
        {
            await _backend.SetStatesAsync(finals, cancellationToken).ConfigureAwait(false);
        }

        if (_store.Capabilities.HasFlag(ManagementCapabilities.Messages))
        {
            foreach (var taskId in taskIds)
            {
                await _store.DeleteMessagesAsync(taskId, cancellationToken).ConfigureAwait(false);
            }
        }

        return taskIds;
    }

    /// <summary>Pauses a queue for the whole fleet: within a second no Conveyor worker takes a new message from it; publishing goes on, running tasks finish.</summary>
    /// <param name="queue">The queue.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the pause is stored.</returns>
    public ValueTask PauseQueueAsync(string queue, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(queue);
        return _store.SetPausedAsync(queue, paused: true, cancellationToken);
    }

    /// <summary>Resumes a paused queue.</summary>
    /// <param name="queue">The queue.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the resume is stored.</returns>
    public ValueTask ResumeQueueAsync(string queue, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(queue);
        return _store.SetPausedAsync(queue, paused: false, cancellationToken);
    }

    /// <summary>Lists the paused queues.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The queues.</returns>
    public async ValueTask<IReadOnlyList<string>> ListPausedQueuesAsync(CancellationToken cancellationToken = default) =>
        (await _store.ReadControlAsync(long.MaxValue, cancellationToken).ConfigureAwait(false)).PausedQueues;

    /// <summary>The group meta an id names, if it names one (on Redis task and group ids share one key space).</summary>
    private async ValueTask<GroupMeta?> GroupOfAsync(string id, CancellationToken cancellationToken)
    {
        try
        {
            return await _backend.GetGroupMetaAsync(id, cancellationToken).ConfigureAwait(false);
        }
        catch (WireFormatException)
        {
            return null; // a task's state
        }
    }

    private async ValueTask<string?> ChordCallbackIdAsync(string memberId, CancellationToken cancellationToken)
    {
        foreach (var (_, body) in await _store.FindMessagesAsync(memberId, cancellationToken).ConfigureAwait(false))
        {
            try
            {
                if (Serialization.WireFormat.DeserializeSignature(body.Span).ChordCallback is { } callback)
                {
                    return callback.Id;
                }
            }
            catch (WireFormatException)
            {
            }
        }

        return null;
    }

    private async ValueTask<TaskPage> ListDeadLettersAsync(TaskQuery query, CancellationToken cancellationToken)
    {
        // Dead letters are read oldest first; the cursor is the position after the last one shown (the broker
        // API reads from the oldest, so a page costs the letters before it: dead-letter stores stay small).
        var skip = query.After is { Length: > 0 } after && int.TryParse(after, NumberStyles.None, CultureInfo.InvariantCulture, out var position) ? position : 0;
        const int Window = 1000;
        var letters = await _broker.GetDeadLettersAsync(skip + Window, cancellationToken).ConfigureAwait(false);
        var tasks = new List<TaskSummary>();
        var index = skip;
        for (; index < letters.Count && tasks.Count < query.Limit; index++)
        {
            var letter = letters[index];
            if (query.Queue is { } queue && letter.Queue != queue)
            {
                continue;
            }

            var summary = TaskSummary.FromMessage(letter.Body.Span, letter.Queue, ManagedTaskState.DeadLettered, letter.Id) with { Error = letter.Reason, Since = letter.DeadLetteredAt };
            if (query.Name is { } name && summary.Name != name)
            {
                continue;
            }

            tasks.Add(summary);
        }

        return new TaskPage(tasks, index < letters.Count ? index.ToString(CultureInfo.InvariantCulture) : null);
    }

    private bool CanReadMessages => (_store.Capabilities & (ManagementCapabilities.Messages | ManagementCapabilities.ReadMessages)) != 0;

    private void RequireMessages(bool readOnly = false)
    {
        if (readOnly && CanReadMessages)
        {
            return;
        }

        if (!_store.Capabilities.HasFlag(ManagementCapabilities.Messages))
        {
            throw new NotSupportedException(_store.Capabilities.HasFlag(ManagementCapabilities.ReadMessages)
                ? "This broker's messages can be listed but not deleted or moved through Conveyor (RabbitMQ: AMQP takes messages from the head of a queue only); revoke the task instead, its workers then drop it."
                : "This broker cannot list or change its messages through Conveyor (a RabbitMQ broker: give its management plugin's URL, ?management=http://host:15672 on the AMQP URL); revoke and pause still work.");
        }
    }
}
