using Conveyor.Redis.Internal;
using Conveyor.Serialization;
using StackExchange.Redis;

namespace Conveyor.Redis;

/// <summary>
/// The batch operations on Redis Cluster. A task's state key is machinery's <c>task_…</c> and so in a slot of its
/// own, while a script may only touch one slot: a batch becomes one <see cref="RedisScripts.SetStates"/> per task,
/// all sent at once (StackExchange.Redis pipelines them to their nodes; one connection per node keeps a task's
/// states in order), then after all of them one <see cref="RedisScripts.Acknowledge"/> per in-flight list. A crash
/// in between leaves stored states whose messages run again: at-least-once, as everywhere.
/// </summary>
public sealed partial class RedisResultBackend
{
    private async Task SetEachAsync(IReadOnlyList<TaskStateRecord> states)
    {
        // One script per task (a task's states share its key's slot: RECEIVED, STARTED and its final state of one
        // batch go together, in order), all sent at once.
        var byTask = new Dictionary<string, List<TaskStateRecord>>(StringComparer.Ordinal);
        foreach (var state in states)
        {
            if (!byTask.TryGetValue(state.TaskId, out var list))
            {
                byTask[state.TaskId] = list = new List<TaskStateRecord>(3);
            }

            list.Add(state);
        }

        var db = Database;
        var writes = new List<Task>(byTask.Count);
        foreach (var (taskId, list) in byTask)
        {
            var keys = new RedisKey[list.Count + 1];
            keys[0] = Keys.WatchedFor(taskId);
            var values = new RedisValue[list.Count * 6];
            for (var i = 0; i < list.Count; i++)
            {
                var state = list[i];
                var (head, createdAt, tail) = SplitAtCreatedAt(WireFormat.SerializeState(state));
                keys[i + 1] = Keys.State(taskId);
                var a = i * 6;
                values[a] = head;
                values[a + 1] = createdAt;
                values[a + 2] = tail;
                values[a + 3] = state.Ttl > 0 ? (RedisValue)state.Ttl : _ttlSeconds;
                values[a + 4] = _options.UseKeyspaceNotifications ? string.Empty : Keys.StateChannel(taskId);
                values[a + 5] = state.State.ToWireName();
            }

            writes.Add(db.ScriptEvaluateAsync(RedisScripts.SetStates, keys, values));
        }

        await Task.WhenAll(writes).ConfigureAwait(false);
        await ReplicaAcknowledgement.WaitAsync(db, _options).ConfigureAwait(false);
    }

    private async Task<IReadOnlyList<TaskStateRecord?>> GetEachAsync(RedisKey[] keys)
    {
        var db = Database;
        var reads = new Task<RedisValue>[keys.Length];
        for (var i = 0; i < keys.Length; i++)
        {
            reads[i] = db.StringGetAsync(keys[i]);
        }

        await Task.WhenAll(reads).ConfigureAwait(false);
        var states = new TaskStateRecord?[keys.Length];
        for (var i = 0; i < keys.Length; i++)
        {
            var value = reads[i].Result;
            states[i] = value.IsNull ? null : WireFormat.DeserializeState(((ReadOnlyMemory<byte>)value).Span);
        }

        return states;
    }

    private async Task ClusterSettleAsync(IReadOnlyList<Settlement> batch)
    {
        List<TaskStateRecord>? states = null;
        Dictionary<RedisMessageConsumer, List<RedisDelivery>>? acks = null;
        foreach (var step in batch)
        {
            if (step.State is { } state)
            {
                (states ??= new List<TaskStateRecord>(batch.Count)).Add(state);
            }

            if (AcknowledgedHere(step.Ack) is { } delivery)
            {
                acks ??= [];
                if (!acks.TryGetValue(delivery.Owner, out var list))
                {
                    acks[delivery.Owner] = list = [];
                }

                list.Add(delivery);
            }
        }

        if (states is not null)
        {
            await SetEachAsync(states).ConfigureAwait(false);
        }

        if (acks is null)
        {
            return;
        }

        var db = Database;
        var removals = new List<Task>(acks.Count);
        foreach (var (consumer, deliveries) in acks)
        {
            var bodies = new RedisValue[deliveries.Count];
            for (var i = 0; i < bodies.Length; i++)
            {
                bodies[i] = deliveries[i].RawBody;
            }

            removals.Add(db.ScriptEvaluateAsync(RedisScripts.Acknowledge, [consumer.InFlightKey, Keys.Deaths(consumer.Queue)], bodies));
        }

        await Task.WhenAll(removals).ConfigureAwait(false);
        foreach (var deliveries in acks.Values)
        {
            foreach (var delivery in deliveries)
            {
                delivery.MarkAcknowledged();
            }
        }
    }
}
