using System.Globalization;
using Conveyor.Redis.Internal;
using StackExchange.Redis;

namespace Conveyor.Redis;

/// <summary>
/// Throughput counters in one hash per minute (<c>conveyor:throughput:{unix minute}</c>, fields
/// <c>queue\x1fs</c> and <c>queue\x1ff</c>, kept for a day), single dead letters (the broker's list and entry
/// hashes), and the disabled schedules in a set (<c>conveyor:disabled_schedules</c>).
/// </summary>
public sealed partial class RedisManagementStore
{
    private const string FieldSeparator = "\u001f";
    private static readonly TimeSpan ThroughputRetention = TimeSpan.FromDays(1);

    // KEYS: the dead-letter list, the per-queue counts. ARGV: the id, the entry prefix, the key prefix.
    // Removes the id first: of two concurrent requeues only one finds it, so the message is queued once.
    private const string RequeueOneScript = """
        if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end
        local entry = ARGV[2] .. ARGV[1]
        local f = redis.call('HMGET', entry, 'queue', 'body')
        redis.call('DEL', entry)
        if not (f[1] and f[2]) then return 0 end
        redis.call('RPUSH', ARGV[3] .. f[1], f[2])
        redis.call('HINCRBY', KEYS[2], f[1], -1)
        redis.call('SADD', ARGV[3] .. 'conveyor:queues', f[1])
        local scope = ARGV[3] .. 'conveyor:{' .. f[1] .. '}:'
        if redis.call('DEL', scope .. 'idle') == 1 then redis.call('PUBLISH', scope .. 'wake', '1') end
        return 1
        """;

    // KEYS: the dead-letter list, the per-queue counts. ARGV: the id, the entry prefix.
    private const string DeleteOneScript = """
        if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end
        local entry = ARGV[2] .. ARGV[1]
        local queue = redis.call('HGET', entry, 'queue')
        redis.call('DEL', entry)
        if queue then redis.call('HINCRBY', KEYS[2], queue, -1) end
        return 1
        """;

    private RedisKey DisabledSchedules => Keys.Prefix + "conveyor:disabled_schedules";

    private RedisKey ThroughputKey(DateTimeOffset minute) => Keys.Prefix + "conveyor:throughput:" + (minute.ToUnixTimeSeconds() / 60).ToString(CultureInfo.InvariantCulture);

    /// <inheritdoc/>
    public async ValueTask RecordThroughputAsync(IReadOnlyList<ThroughputSample> samples, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(samples);
        if (samples.Count == 0)
        {
            return;
        }

        var batch = Db.CreateBatch();
        var writes = new List<Task>();
        foreach (var sample in samples)
        {
            var key = ThroughputKey(ThroughputSample.MinuteOf(sample.Minute));
            if (sample.Succeeded != 0)
            {
                writes.Add(batch.HashIncrementAsync(key, sample.Queue + FieldSeparator + "s", sample.Succeeded));
            }

            if (sample.Failed != 0)
            {
                writes.Add(batch.HashIncrementAsync(key, sample.Queue + FieldSeparator + "f", sample.Failed));
            }

            writes.Add(batch.KeyExpireAsync(key, ThroughputRetention));
        }

        batch.Execute();
        await Task.WhenAll(writes).WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async ValueTask<IReadOnlyList<ThroughputSample>> ReadThroughputAsync(DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken = default)
    {
        var minutes = new List<DateTimeOffset>();
        for (var minute = ThroughputSample.MinuteOf(from); minute <= to && minutes.Count < 1440; minute = minute.AddMinutes(1))
        {
            minutes.Add(minute);
        }

        var batch = Db.CreateBatch();
        var reads = minutes.Select(m => batch.HashGetAllAsync(ThroughputKey(m))).ToArray();
        batch.Execute();
        var hashes = await Task.WhenAll(reads).WaitAsync(cancellationToken).ConfigureAwait(false);
        var samples = new List<ThroughputSample>();
        for (var i = 0; i < minutes.Count; i++)
        {
            var perQueue = new SortedDictionary<string, (long Succeeded, long Failed)>(StringComparer.Ordinal);
            foreach (var entry in hashes[i])
            {
                var field = (string)entry.Name!;
                var cut = field.LastIndexOf(FieldSeparator, StringComparison.Ordinal);
                if (cut <= 0 || !entry.Value.TryParse(out long count))
                {
                    continue;
                }

                var queue = field[..cut];
                var (succeeded, failed) = perQueue.GetValueOrDefault(queue);
                perQueue[queue] = field[(cut + 1)..] == "s" ? (succeeded + count, failed) : (succeeded, failed + count);
            }

            samples.AddRange(perQueue.Select(q => new ThroughputSample(q.Key, minutes[i], q.Value.Succeeded, q.Value.Failed)));
        }

        return samples;
    }

    /// <inheritdoc/>
    public async ValueTask<bool> RequeueDeadLetterAsync(string deadLetterId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(deadLetterId);
        RequireBroker();
        if (Keys.Cluster)
        {
            return await RequeueOneOnClusterAsync(deadLetterId).ConfigureAwait(false);
        }

        var moved = await Db.ScriptEvaluateAsync(RequeueOneScript, [Keys.DeadLetters, Keys.DeadLetterCounts], [deadLetterId, Keys.DeadLetterEntryPrefix, Keys.Prefix]).ConfigureAwait(false);
        return (long)moved == 1;
    }

    /// <inheritdoc/>
    public async ValueTask<bool> DeleteDeadLetterAsync(string deadLetterId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(deadLetterId);
        RequireBroker();
        if (Keys.Cluster)
        {
            var entry = DeadLetterEntryKeys(deadLetterId);
            var queue = await Db.HashGetAsync(entry[0], "queue").ConfigureAwait(false);
            return !queue.IsNull && (long)await Db.ScriptEvaluateAsync(RedisScripts.DropDeadLetter, entry, [deadLetterId, queue]).ConfigureAwait(false) == 1;
        }

        var deleted = await Db.ScriptEvaluateAsync(DeleteOneScript, [Keys.DeadLetters, Keys.DeadLetterCounts], [deadLetterId, Keys.DeadLetterEntryPrefix]).ConfigureAwait(false);
        return (long)deleted == 1;
    }

    /// <inheritdoc/>
    public async ValueTask SetScheduleEnabledAsync(string name, bool enabled, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        _ = enabled ? await Db.SetRemoveAsync(DisabledSchedules, name).ConfigureAwait(false) : await Db.SetAddAsync(DisabledSchedules, name).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async ValueTask<IReadOnlyList<string>> ListDisabledSchedulesAsync(CancellationToken cancellationToken = default)
    {
        var members = await Db.SetMembersAsync(DisabledSchedules).ConfigureAwait(false);
        return [.. members.Select(m => (string)m!).Order(StringComparer.Ordinal)];
    }

    /// <summary>
    /// On a cluster the dead letter (its hash, the list and the counts share one slot) and its queue are in different
    /// slots: push it back first, then drop it, so that a crash in between leaves a duplicate, never a loss.
    /// </summary>
    private async Task<bool> RequeueOneOnClusterAsync(string deadLetterId)
    {
        var entry = DeadLetterEntryKeys(deadLetterId);
        var fields = await Db.HashGetAsync(entry[0], ["queue", "body"]).ConfigureAwait(false);
        if (fields[0].IsNull || fields[1].IsNull)
        {
            return false;
        }

        var queue = (string)fields[0]!;
        await Db.ScriptEvaluateAsync(RedisScripts.Publish, Keys.PublishKeys(Keys.Queue(queue), queue), [fields[1], queue, "0"]).ConfigureAwait(false);
        await Db.SetAddAsync(Keys.Queues, queue).ConfigureAwait(false);
        return (long)await Db.ScriptEvaluateAsync(RedisScripts.DropDeadLetter, entry, [deadLetterId, queue]).ConfigureAwait(false) == 1;
    }

    private RedisKey[] DeadLetterEntryKeys(string deadLetterId) => [Keys.DeadLetterEntryPrefix + deadLetterId, Keys.DeadLetters, Keys.DeadLetterCounts];

    private void RequireBroker()
    {
        if (!_ownsBroker)
        {
            throw new NotSupportedException("This Redis is the result backend only: its broker keeps the dead letters.");
        }
    }
}
