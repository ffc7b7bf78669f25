namespace Conveyor.InMemory;

/// <summary>What the in-memory management store reads and changes: snapshots under the broker's gate.</summary>
public sealed partial class InMemoryBroker
{
    private readonly HashSet<Consumer> _live = [];

    /// <summary>The messages of a queue in a state, in delivery (pending), ETA (scheduled) or delivery order (active).</summary>
    internal List<(TaskSummary Summary, byte[] Body)> Snapshot(string queue, ManagedTaskState state)
    {
        lock (_gate)
        {
            var found = new List<(TaskSummary, byte[])>();
            switch (state)
            {
                case ManagedTaskState.Pending when _queues.TryGetValue(queue, out var q):
                    foreach (var (message, _) in q.Ready.UnorderedItems.OrderBy(i => i.Priority))
                    {
                        found.Add((TaskSummary.FromMessage(message.Body, queue, state, message.TaskId), message.Body));
                    }

                    break;
                case ManagedTaskState.Scheduled:
                    foreach (var (message, _) in _delayed.UnorderedItems.Where(i => i.Element.Queue == queue).OrderBy(i => i.Priority))
                    {
                        found.Add((TaskSummary.FromMessage(message.Body, queue, state, message.TaskId), message.Body));
                    }

                    break;
                case ManagedTaskState.Active:
                    foreach (var consumer in _live.Where(c => c.QueueName == queue))
                    {
                        foreach (var delivery in consumer.Unsettled.OrderBy(d => d.Message.Sequence))
                        {
                            found.Add((TaskSummary.FromMessage(delivery.Message.Body, queue, state, delivery.Message.TaskId) with { Worker = consumer.Name, Attempts = delivery.Message.DeliveryCount }, delivery.Message.Body));
                        }
                    }

                    break;
            }

            return found;
        }
    }

    /// <summary>Every message of a task, in any queue and state.</summary>
    internal List<(TaskSummary Summary, ReadOnlyMemory<byte> Body)> Find(string taskId)
    {
        lock (_gate)
        {
            var found = new List<(TaskSummary, ReadOnlyMemory<byte>)>();
            foreach (var (name, queue) in _queues)
            {
                foreach (var (message, _) in queue.Ready.UnorderedItems.Where(i => i.Element.TaskId == taskId))
                {
                    found.Add((TaskSummary.FromMessage(message.Body, name, ManagedTaskState.Pending, taskId), message.Body));
                }
            }

            foreach (var (message, _) in _delayed.UnorderedItems.Where(i => i.Element.TaskId == taskId))
            {
                found.Add((TaskSummary.FromMessage(message.Body, message.Queue, ManagedTaskState.Scheduled, taskId), message.Body));
            }

            foreach (var consumer in _live)
            {
                foreach (var delivery in consumer.Unsettled.Where(d => d.Message.TaskId == taskId))
                {
                    found.Add((TaskSummary.FromMessage(delivery.Message.Body, delivery.Queue, ManagedTaskState.Active, taskId) with { Worker = consumer.Name }, delivery.Message.Body));
                }
            }

            return found;
        }
    }

    /// <summary>Deletes a task's ready and delayed messages.</summary>
    internal int Remove(string taskId)
    {
        lock (_gate)
        {
            var removed = 0;
            foreach (var queue in _queues.Values)
            {
                foreach (var (message, _) in queue.Ready.UnorderedItems.Where(i => i.Element.TaskId == taskId).ToList())
                {
                    removed += queue.Ready.Remove(message, out _, out _) ? 1 : 0;
                }
            }

            foreach (var (message, _) in _delayed.UnorderedItems.Where(i => i.Element.TaskId == taskId).ToList())
            {
                if (_delayed.Remove(message, out _, out _))
                {
                    GetQueue(message.Queue).DelayedCount--;
                    removed++;
                }
            }

            return removed;
        }
    }

    /// <summary>Makes a task's delayed messages ready now.</summary>
    internal int RunNow(string taskId)
    {
        lock (_gate)
        {
            var moved = 0;
            foreach (var (message, _) in _delayed.UnorderedItems.Where(i => i.Element.TaskId == taskId).ToList())
            {
                if (_delayed.Remove(message, out _, out _))
                {
                    GetQueue(message.Queue).DelayedCount--;
                    Enqueue(message);
                    moved++;
                }
            }

            return moved;
        }
    }
}
