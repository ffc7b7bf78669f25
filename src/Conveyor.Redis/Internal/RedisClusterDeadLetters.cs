using StackExchange.Redis;

namespace Conveyor.Redis.Internal;

/// <summary>
/// Dead letters on Redis Cluster. The dead-letter store is one slot (<c>conveyor:{dead_letters}…</c>) and each
/// queue is another, so what one script does on a single Redis takes two steps here, ordered so that a crash in
/// between duplicates a message and never loses one: the entry is stored before the message leaves its in-flight
/// list, and a requeued message is pushed before its entry is dropped.
/// </summary>
internal static class RedisClusterDeadLetters
{
    public static async Task DeadLetterAsync(RedisBroker broker, string queue, RedisKey inFlight, byte[] body, string reason)
    {
        var db = broker.Database;
        var keys = broker.Keys;
        var id = (await db.StringIncrementAsync(keys.DeadLetterSequence).ConfigureAwait(false)).ToString(System.Globalization.CultureInfo.InvariantCulture);
        RedisKey[] entry = [keys.DeadLetterEntryPrefix + id, keys.DeadLetters, keys.DeadLetterCounts];
        await db.ScriptEvaluateAsync(
            RedisScripts.StoreDeadLetter,
            entry,
            [body, queue, reason, broker.Time.GetUtcNow().ToUnixTimeMilliseconds(), id]).ConfigureAwait(false);
        var removed = (long)await db.ScriptEvaluateAsync(RedisScripts.Acknowledge, [inFlight, keys.Deaths(queue)], [body]).ConfigureAwait(false);
        if (removed == 0)
        {
            // The consumer was declared dead meanwhile and its message went back to the queue: it runs again, so
            // this dead letter would be a second copy.
            await db.ScriptEvaluateAsync(RedisScripts.DropDeadLetter, entry, [id, queue]).ConfigureAwait(false);
        }
    }

    public static async Task<int> RequeueAsync(RedisBroker broker, int maxCount)
    {
        var db = broker.Database;
        var keys = broker.Keys;
        var moved = 0;
        foreach (var id in await db.ListRangeAsync(keys.DeadLetters, 0, maxCount - 1).ConfigureAwait(false))
        {
            RedisKey[] entry = [keys.DeadLetterEntryPrefix + (string)id!, keys.DeadLetters, keys.DeadLetterCounts];
            var fields = await db.HashGetAsync(entry[0], ["queue", "body"]).ConfigureAwait(false);
            if (fields[0].IsNull || fields[1].IsNull)
            {
                await db.ListRemoveAsync(keys.DeadLetters, id, 1).ConfigureAwait(false); // an entry without its hash
                continue;
            }

            var queue = (string)fields[0]!;
            await db.ScriptEvaluateAsync(RedisScripts.Publish, keys.PublishKeys(keys.Queue(queue), queue), [fields[1], queue, "0"]).ConfigureAwait(false);
            await broker.NoteQueueAsync(queue).ConfigureAwait(false);
            if ((long)await db.ScriptEvaluateAsync(RedisScripts.DropDeadLetter, entry, [id, queue]).ConfigureAwait(false) == 1)
            {
                moved++;
            }
        }

        return moved;
    }
}
