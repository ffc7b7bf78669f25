using StackExchange.Redis;

namespace Conveyor.Redis.Internal;

/// <summary>
/// Every key and channel name the provider uses. machinery's own keys (the queue list named after the queue,
/// <c>delayed_tasks</c>, the task and group ids) are used as they are; Conveyor's additions all start with
/// <c>conveyor:</c> and put the queue name in braces (a Redis Cluster hash tag, so a queue's keys share a slot), so
/// they cannot be mistaken for machinery's <c>task_…</c>/<c>group_…</c> keys. The key prefix goes before all of them.
/// </summary>
internal sealed class RedisKeys(string prefix, string delayedTasksKey)
{
    public string Prefix { get; } = prefix;

    /// <summary>machinery's delayed-task sorted set: score = ETA in Unix nanoseconds, member = the task JSON.</summary>
    public RedisKey Delayed { get; } = prefix + delayedTasksKey;

    /// <summary>Every queue Conveyor has published to or consumed (a set).</summary>
    public RedisKey Queues { get; } = prefix + "conveyor:queues";

    /// <summary>Dead-letter ids, oldest first (a list); each id's entry is a hash at <see cref="DeadLetterEntryPrefix"/> + id.</summary>
    public RedisKey DeadLetters { get; } = prefix + "conveyor:dead_letters";

    public string DeadLetterEntryPrefix { get; } = prefix + "conveyor:dead_letter:";

    /// <summary>Dead letters per queue (a hash queue → count), for queue statistics.</summary>
    public RedisKey DeadLetterCounts { get; } = prefix + "conveyor:dead_letter_counts";

    public RedisKey DeadLetterSequence { get; } = prefix + "conveyor:dead_letter_seq";

    /// <summary>The ready list of a queue: machinery's, the queue's own name.</summary>
    public RedisKey Queue(string queue) => Prefix + queue;

    /// <summary>Conveyor's per-queue key prefix, <c>conveyor:{queue}:</c>; the Lua scripts append to it too.</summary>
    public string QueueScope(string queue) => Prefix + "conveyor:{" + queue + "}:";

    public RedisKey PriorityLevels(string queue) => QueueScope(queue) + "priorities";

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

    public RedisKey GroupMeta(string groupId) => Prefix + groupId;

    public RedisKey GroupMembers(string groupId) => Prefix + "conveyor:group:{" + groupId + "}:members";

    public RedisKey GroupProgress(string groupId) => Prefix + "conveyor:group:{" + groupId + "}:progress";

    // Member id -> traceparent of its process span (the chord callback's links). A hash of its own rather than
    // values in the members set, so that workers of an older version (SADD on the set) can share the keys.
    public RedisKey GroupTraces(string groupId) => Prefix + "conveyor:group:{" + groupId + "}:traces";

    /// <summary>The group's member ids in member order (copied once from machinery's group meta), for the completion cursor.</summary>
    public RedisKey GroupMemberIds(string groupId) => Prefix + "conveyor:group:{" + groupId + "}:ids";

    /// <summary>machinery's global redsync mutex around <c>TriggerChord</c> (the key is the mutex's name).</summary>
    public RedisKey ChordMutex { get; } = prefix + "TriggerChordMutex";

    /// <summary>How often a task was redelivered by a broker that keeps no count (a string counter).</summary>
    public RedisKey Redeliveries(string taskId) => Prefix + "conveyor:redeliveries:" + taskId;

    public string StateChannel(string taskId) => Prefix + "conveyor:state:" + taskId;

    /// <summary>The state channels somebody waits on (member = channel, score = Unix ms of registration): state writes publish only to these.</summary>
    public RedisKey Watched { get; } = prefix + "conveyor:watched";

    public RedisKey Lock(string name) => Prefix + "conveyor:lock:{" + name + "}";

    /// <summary>A monotonic fence (a string holding the last token); no expiry, one key per name.</summary>
    public RedisKey Fence(string name) => Prefix + "conveyor:fence:{" + name + "}";

    public RedisKey LockFence(string name) => Prefix + "conveyor:lock:{" + name + "}:fence";
}
