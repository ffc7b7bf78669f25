using System.Globalization;

namespace Conveyor.RabbitMQ.Internal;

/// <summary>
/// The management store of a RabbitMQ broker: the result backend's store (revocations, pauses, workers, progress,
/// finished states) plus what the management plugin's HTTP API shows of the broker — the pending messages of a
/// work queue and the scheduled ones in its delay queues, peeked at the head of each queue. AMQP cannot take a
/// message out of the middle of a queue, so nothing is deleted or moved here: revoking a task puts its id in the
/// revoked set, and the worker that takes its message drops it.
/// </summary>
/// <remarks>
/// A peek is RabbitMQ's <c>basic.get</c> then a requeue (<c>ack_requeue_true</c>): the messages are unavailable to
/// consumers for the length of the call, come back marked redelivered, and go back to their position when
/// RabbitMQ can (nearer the head when other consumers settled meanwhile). A listing reads at most
/// <see cref="MaxPeek"/> messages of a queue. The tasks being run (active) come from the workers' heartbeats. A
/// quorum queue is never peeked: each return of a message counts as one of its deliveries there.
/// </remarks>
internal sealed class RabbitMqManagementStore(IManagementStore inner, RabbitMqHttpApi api, string exchange, string deadLetterQueue) : IManagementStore, IAsyncDisposable
{
    /// <summary>The most messages a listing peeks at in one queue.</summary>
    public const int MaxPeek = 5000;

    public ManagementCapabilities Capabilities => (inner.Capabilities & ~ManagementCapabilities.Messages) | ManagementCapabilities.ReadMessages;

    public TimeSpan Retention => inner.Retention;

    public async ValueTask<TaskPage> ListMessagesAsync(string queue, TaskQuery query, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(queue);
        ArgumentNullException.ThrowIfNull(query);
        var skip = Position(query.After);
        var want = Math.Min(MaxPeek, skip + query.Limit + 1);
        List<TaskSummary> listed;
        switch (query.State)
        {
            case ManagedTaskState.Pending:
                if (await api.GetQueueAsync(queue, cancellationToken).ConfigureAwait(false) is { IsQuorum: true })
                {
                    throw new NotSupportedException(QuorumRefusal(queue));
                }

                listed = [.. (await api.PeekAsync(queue, want, cancellationToken).ConfigureAwait(false))
                    .Select(m => TaskSummary.FromMessage(m.Body(), queue, ManagedTaskState.Pending))];
                break;
            case ManagedTaskState.Scheduled:
                listed = [];
                foreach (var delayQueue in await DelayQueuesAsync(queue, cancellationToken).ConfigureAwait(false))
                {
                    listed.AddRange((await api.PeekAsync(delayQueue, want, cancellationToken).ConfigureAwait(false))
                        .Select(m => TaskSummary.FromMessage(m.Body(), queue, ManagedTaskState.Scheduled)));
                }

                // Each delay queue is in ETA order (one TTL each); several are merged by ETA.
                listed = [.. listed.OrderBy(t => t.Eta ?? DateTimeOffset.MaxValue).ThenBy(t => t.Id, StringComparer.Ordinal)];
                break;
            case ManagedTaskState.Active:
                listed = await ActiveAsync(queue, cancellationToken).ConfigureAwait(false);
                break;
            default:
                throw new ArgumentException($"{query.State} is not a message state.", nameof(query));
        }

        var tasks = new List<TaskSummary>();
        var index = skip;
        for (; index < listed.Count && tasks.Count < query.Limit; index++)
        {
            if (query.Name is null || listed[index].Name == query.Name)
            {
                tasks.Add(listed[index]);
            }
        }

        return new TaskPage(tasks, index < listed.Count ? index.ToString(CultureInfo.InvariantCulture) : null);
    }

    public async ValueTask<IReadOnlyList<(TaskSummary Summary, ReadOnlyMemory<byte> Body)>> FindMessagesAsync(string taskId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(taskId);
        var found = new List<(TaskSummary, ReadOnlyMemory<byte>)>();
        var queues = await api.ListQueuesAsync(cancellationToken).ConfigureAwait(false);
        var bound = (await api.ListBoundQueuesAsync(exchange, cancellationToken).ConfigureAwait(false)).ToHashSet(StringComparer.Ordinal);
        foreach (var queue in queues)
        {
            var delayOf = DelayTarget(queue);
            // Every queue bound to the exchange (work queues; delay queues are bound by their own name), whatever its
            // counts say: they lag by the node's statistics interval.
            if (!bound.Contains(queue.Name) || queue.Name == deadLetterQueue || queue.IsQuorum)
            {
                continue;
            }

            var state = delayOf is null ? ManagedTaskState.Pending : ManagedTaskState.Scheduled;
            foreach (var message in await api.PeekAsync(queue.Name, MaxPeek, cancellationToken).ConfigureAwait(false))
            {
                var body = message.Body();
                var summary = TaskSummary.FromMessage(body, delayOf ?? queue.Name, state);
                if (summary.Id == taskId)
                {
                    found.Add((summary, body));
                }
            }
        }

        return found;
    }

    public ValueTask<int> DeleteMessagesAsync(string taskId, CancellationToken cancellationToken = default) =>
        throw new NotSupportedException("RabbitMQ cannot delete a message from the middle of a queue; revoke the task: its workers then drop it.");

    public ValueTask<int> RunNowAsync(string taskId, CancellationToken cancellationToken = default) =>
        throw new NotSupportedException("RabbitMQ cannot move a message out of a delay queue before its TTL.");

    public ValueTask<TaskPage> ListStatesAsync(TaskQuery query, CancellationToken cancellationToken = default) => inner.ListStatesAsync(query, cancellationToken);

    public ValueTask RevokeAsync(IReadOnlyList<string> taskIds, CancellationToken cancellationToken = default) => inner.RevokeAsync(taskIds, cancellationToken);

    public ValueTask SetPausedAsync(string queue, bool paused, CancellationToken cancellationToken = default) => inner.SetPausedAsync(queue, paused, cancellationToken);

    public ValueTask<ControlChanges> ReadControlAsync(long after, CancellationToken cancellationToken = default) => inner.ReadControlAsync(after, cancellationToken);

    public ValueTask WaitForControlChangeAsync(TimeSpan maxWait, CancellationToken cancellationToken = default) => inner.WaitForControlChangeAsync(maxWait, cancellationToken);

    public ValueTask HeartbeatAsync(WorkerInfo worker, TimeSpan ttl, CancellationToken cancellationToken = default) => inner.HeartbeatAsync(worker, ttl, cancellationToken);

    public ValueTask RemoveWorkerAsync(string name, CancellationToken cancellationToken = default) => inner.RemoveWorkerAsync(name, cancellationToken);

    public ValueTask<IReadOnlyList<WorkerInfo>> ListWorkersAsync(CancellationToken cancellationToken = default) => inner.ListWorkersAsync(cancellationToken);

    public ValueTask SetProgressAsync(string taskId, TaskProgress progress, CancellationToken cancellationToken = default) => inner.SetProgressAsync(taskId, progress, cancellationToken);

    public ValueTask<TaskProgress?> GetProgressAsync(string taskId, CancellationToken cancellationToken = default) => inner.GetProgressAsync(taskId, cancellationToken);

    public ValueTask<string?> ClaimUniqueAsync(string key, string taskId, TimeSpan ttl, CancellationToken cancellationToken = default) => inner.ClaimUniqueAsync(key, taskId, ttl, cancellationToken);

    public ValueTask ReleaseUniqueAsync(string key, string taskId, CancellationToken cancellationToken = default) => inner.ReleaseUniqueAsync(key, taskId, cancellationToken);

    public ValueTask<TokenReservation> ReserveTokenAsync(string bucket, double ratePerSecond, int burst, TimeSpan maxWait, CancellationToken cancellationToken = default) =>
        inner.ReserveTokenAsync(bucket, ratePerSecond, burst, maxWait, cancellationToken);

    public async ValueTask DisposeAsync()
    {
        api.Dispose();
        switch (inner)
        {
            case IAsyncDisposable asyncDisposable:
                await asyncDisposable.DisposeAsync().ConfigureAwait(false);
                break;
            case IDisposable disposable:
                disposable.Dispose();
                break;
        }
    }

    /// <summary>The delay queues that dead-letter into a work queue through this exchange, by their arguments.</summary>
    private async Task<IReadOnlyList<string>> DelayQueuesAsync(string queue, CancellationToken cancellationToken) =>
        [.. (await api.ListQueuesAsync(cancellationToken).ConfigureAwait(false))
            .Where(q => DelayTarget(q) == queue)
            .OrderBy(q => q.NumberArgument("x-message-ttl") ?? 0)
            .Select(q => q.Name)];

    /// <summary>The work queue a delay queue of this exchange feeds (machinery's delay.… or Conveyor's conveyor.delay.…), or null.</summary>
    private string? DelayTarget(HttpQueue queue) =>
        (queue.Name.StartsWith("delay.", StringComparison.Ordinal) || queue.Name.StartsWith("conveyor.delay.", StringComparison.Ordinal))
        && queue.NumberArgument("x-message-ttl") is not null
        && queue.StringArgument("x-dead-letter-exchange") == exchange
            ? queue.StringArgument("x-dead-letter-routing-key")
            : null;

    /// <summary>The tasks Conveyor workers of the queue run now, from their last heartbeats (AMQP cannot read unacked messages).</summary>
    private async Task<List<TaskSummary>> ActiveAsync(string queue, CancellationToken cancellationToken)
    {
        var active = new List<TaskSummary>();
        foreach (var worker in await inner.ListWorkersAsync(cancellationToken).ConfigureAwait(false))
        {
            if (worker.Queues.Contains(queue, StringComparer.Ordinal))
            {
                active.AddRange(worker.RunningTasks.Select(id => new TaskSummary { Id = id, Queue = queue, State = ManagedTaskState.Active, Worker = worker.Name }));
            }
        }

        return active;
    }

    private static string QuorumRefusal(string queue) =>
        $"Queue {queue} is a quorum queue: a peek returns its messages, which adds one to their x-delivery-count, so listings would use up their deliveries (WorkerOptions.MaxDeliveries, delivery-limit); it is not listed.";

    private static int Position(string? cursor) =>
        cursor is { Length: > 0 } && int.TryParse(cursor, NumberStyles.None, CultureInfo.InvariantCulture, out var position) ? position : 0;
}
