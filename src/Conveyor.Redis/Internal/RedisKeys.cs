using StackExchange.Redis;

namespace Conveyor.Redis.Internal;

/// <summary>
/// Every key and channel name the provider uses. machinery's own keys (the queue list named after the queue,
/// <c>delayed_tasks</c>, the task and group ids) are used as they are; Conveyor's additions all start with
/// <c>conveyor:</c> and put the queue name in braces (a Redis Cluster hash tag, so a queue's keys share a slot), so
/// they cannot be mistaken for machinery's <c>task_…</c>/<c>group_…</c> keys. The key prefix goes before all of them.
/// </summary>
/// <remarks>
/// On Redis Cluster (<paramref name="cluster"/>) every key one script touches must hash to one slot, so a few keys
/// change there, and only there: the delayed set is the queue's own (<c>conveyor:{q}:delayed_tasks</c>) instead of
/// machinery's one global <c>delayed_tasks</c>; the queue list and the group meta keep machinery's plain names when
/// there is no key prefix (a plain name hashes like its own hash tag) and take braces after a prefix
/// (<c>prefix{q}</c>); the dead letters, the revocations and the result waiters' registrations get hash tags of their
/// own. machinery has no cluster support, so no Go worker shares such a layout.
/// </remarks>
internal sealed class RedisKeys(string prefix, string delayedTasksKey, bool cluster = false)
{
    public string Prefix { get; } = prefix;

    /// <summary>Whether the layout is Redis Cluster's (see the remarks).</summary>
    public bool Cluster { get; } = cluster;

    /// <summary>machinery's delayed-task sorted set: score = ETA in Unix nanoseconds, member = the task JSON.</summary>
    public RedisKey Delayed { get; } = prefix + delayedTasksKey;

    /// <summary>Where a machinery-JSON delayed message for <paramref name="queue"/> waits: machinery's global set, or on a cluster the queue's own.</summary>
    public RedisKey DelayedFor(string queue) => Cluster ? QueueScope(queue) + delayedTasksKey : Delayed;

    /// <summary>Every queue Conveyor has published to or consumed (a set).</summary>
    public RedisKey Queues { get; } = prefix + "conveyor:queues";

    /// <summary>Dead-letter ids, oldest first (a list); each id's entry is a hash at <see cref="DeadLetterEntryPrefix"/> + id.</summary>
    public RedisKey DeadLetters { get; } = prefix + (cluster ? "conveyor:{dead_letters}" : "conveyor:dead_letters");

    public string DeadLetterEntryPrefix { get; } = prefix + (cluster ? "conveyor:{dead_letters}:" : "conveyor:dead_letter:");

    /// <summary>Dead letters per queue (a hash queue → count), for queue statistics.</summary>
    public RedisKey DeadLetterCounts { get; } = prefix + (cluster ? "conveyor:{dead_letters}:counts" : "conveyor:dead_letter_counts");

    public RedisKey DeadLetterSequence { get; } = prefix + (cluster ? "conveyor:{dead_letters}:seq" : "conveyor:dead_letter_seq");

    /// <summary>The ready list of a queue: machinery's, the queue's own name (on a cluster, in the queue's slot).</summary>
    public RedisKey Queue(string queue) => Prefix + SlotName(queue);

    /// <summary>
    /// A machinery key name as it is, or on a cluster in braces when that is needed to hash like <c>{name}</c>: after
    /// a key prefix, or when the name holds braces itself.
    /// </summary>
    private string SlotName(string name) =>
        !Cluster || (Prefix.Length == 0 && !name.Contains('{', StringComparison.Ordinal) && !name.Contains('}', StringComparison.Ordinal)) ? name : "{" + name + "}";

    /// <summary>The part of a key that Redis Cluster hashes: the first non-empty <c>{…}</c>, else the whole key.</summary>
    internal static string HashTagOf(string key)
    {
        var open = key.IndexOf('{', StringComparison.Ordinal);
        if (open >= 0)
        {
            var close = key.IndexOf('}', open + 1);
            if (close > open + 1)
            {
                return key[(open + 1)..close];
            }
        }

        return key;
    }

    /// <summary>Conveyor's per-queue key prefix, <c>conveyor:{queue}:</c>; the Lua scripts append to it too.</summary>
    public string QueueScope(string queue) => Prefix + "conveyor:{" + queue + "}:";

    public RedisKey PriorityLevels(string queue) => QueueScope(queue) + "priorities";

    /// <summary>
    /// The KEYS of <see cref="RedisScripts.Publish"/>: the target list, the priority levels, the idle flag and the
    /// queues set; on a cluster without the queues set (another slot), which the publisher then notes on its own.
    /// </summary>
    public RedisKey[] PublishKeys(RedisKey target, string queue) =>
        Cluster ? [target, PriorityLevels(queue), Idle(queue)] : [target, PriorityLevels(queue), Idle(queue), Queues];

    /// <summary>The ready list of a priority level above 0 (<c>…:p9</c>).</summary>
    public string PriorityListPrefix(string queue) => QueueScope(queue) + "p";

    /// <summary>Delayed messages whose body does not name the queue as its RoutingKey (not machinery JSON): Conveyor's own.</summary>
    public RedisKey PrivateDelayed(string queue) => QueueScope(queue) + "delayed";

    public RedisKey Consumers(string queue) => QueueScope(queue) + "consumers";

    /// <summary>Deaths per message of the queue (a hash: SHA-1 hex of the body → how many consumers died holding it).</summary>
    public RedisKey Deaths(string queue) => QueueScope(queue) + "deaths";

    public RedisKey InFlight(string queue, string consumerId) => QueueScope(queue) + "inflight:" + consumerId;

    public RedisKey Heartbeat(string queue, string consumerId) => QueueScope(queue) + "alive:" + consumerId;

    public RedisKey Idle(string queue) => QueueScope(queue) + "idle";

    public RedisChannel Wake(string queue) => RedisChannel.Literal(QueueScope(queue) + "wake");

    public RedisKey State(string taskId) => Prefix + taskId;

    public RedisKey GroupMeta(string groupId) => Prefix + SlotName(groupId);

    public RedisKey GroupMembers(string groupId) => Prefix + "conveyor:group:{" + groupId + "}:members";

    public RedisKey GroupProgress(string groupId) => Prefix + "conveyor:group:{" + groupId + "}:progress";

    // Member id -> traceparent of its process span (the chord callback's links). A hash of its own rather than
    // values in the members set, so that workers of an older version (SADD on the set) can share the keys.
    public RedisKey GroupTraces(string groupId) => Prefix + "conveyor:group:{" + groupId + "}:traces";

    /// <summary>The group's member ids in member order (copied once from machinery's group meta), for the completion cursor.</summary>
    public RedisKey GroupMemberIds(string groupId) => Prefix + "conveyor:group:{" + groupId + "}:ids";

    /// <summary>machinery's global redsync mutex around <c>TriggerChord</c> (the key is the mutex's name).</summary>
    public RedisKey ChordMutex { get; } = prefix + "TriggerChordMutex";

    /// <summary>
    /// The mutex a chord claim checks: machinery's global one, or on a cluster a key in the group's slot that no one
    /// sets (no Go worker can share a cluster, and the claim script is atomic on its own).
    /// </summary>
    public RedisKey ChordMutexFor(string groupId) => Cluster ? Prefix + "conveyor:group:{" + groupId + "}:mutex" : ChordMutex;

    /// <summary>How often a task was redelivered by a broker that keeps no count (a string counter).</summary>
    public RedisKey Redeliveries(string taskId) => Prefix + "conveyor:redeliveries:" + taskId;

    public const string StateChannelPrefix = "conveyor:state:";

    public string StateChannel(string taskId) => Prefix + StateChannelPrefix + taskId;

    /// <summary>The state channels somebody waits on (member = channel, score = Unix ms of registration): state writes publish only to these.</summary>
    public RedisKey Watched { get; } = prefix + "conveyor:watched";

    /// <summary>The registrations a write of this task's state checks: <see cref="Watched"/>, or on a cluster a set in the state key's slot.</summary>
    public RedisKey WatchedFor(string taskId) => Cluster ? Prefix + "conveyor:watched:{" + HashTagOf(Prefix + taskId) + "}" : Watched;

    /// <summary>The management store's revocation keys (one slot on a cluster).</summary>
    public RedisKey Revoked => Prefix + (Cluster ? "conveyor:{revoked}" : "conveyor:revoked");

    public RedisKey RevokedExpiry => Prefix + (Cluster ? "conveyor:{revoked}:expiry" : "conveyor:revoked_expiry");

    public RedisKey RevokedSequence => Prefix + (Cluster ? "conveyor:{revoked}:seq" : "conveyor:revoked_seq");

    public RedisKey Lock(string name) => Prefix + "conveyor:lock:{" + name + "}";

    /// <summary>A monotonic fence (a string holding the last token); no expiry, one key per name.</summary>
    public RedisKey Fence(string name) => Prefix + "conveyor:fence:{" + name + "}";

    public RedisKey LockFence(string name) => Prefix + "conveyor:lock:{" + name + "}:fence";
}
