using Conveyor.Redis.Internal;
using Conveyor.Serialization;
using StackExchange.Redis;

namespace Conveyor.Redis;

/// <summary>
/// The batch operations on Redis Cluster. A task's state key is machinery's <c>task_…</c> and so in a slot of its
/// own, while a script may only touch one slot: a batch becomes one <see cref="RedisScripts.SetState"/> per state,
/// all sent at once (StackExchange.Redis pipelines them to their nodes; one connection per node keeps a task's
/// states in order), then after all of them one <see cref="RedisScripts.Acknowledge"/> per in-flight list. A crash
/// in between leaves stored states whose messages run again: at-least-once, as everywhere.
/// </summary>
public sealed partial class RedisResultBackend
{
    private async Task SetEachAsync(IReadOnlyList<TaskStateRecord> states)
    {
        var db = Database;
        var writes = new Task[states.Count];
        for (var i = 0; i < writes.Length; i++)
        {
            var state = states[i];
            var (head, createdAt, tail) = SplitAtCreatedAt(WireFormat.SerializeState(state));
            writes[i] = db.ScriptEvaluateAsync(
                RedisScripts.SetState,
                [Keys.State(state.TaskId), Keys.WatchedFor(state.TaskId)],
                [head, createdAt, tail, state.Ttl > 0 ? (RedisValue)state.Ttl : _ttlSeconds, _options.UseKeyspaceNotifications ? string.Empty : Keys.StateChannel(state.TaskId), state.State.ToWireName()]);
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
