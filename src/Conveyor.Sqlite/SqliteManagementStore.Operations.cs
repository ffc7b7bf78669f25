namespace Conveyor.Sqlite;

/// <summary>
/// Throughput counters (<c>throughput</c>: one row per queue and minute, kept for a day), single dead letters (the
/// broker's <c>dead_letters</c> table in the same file), and the disabled schedules (<c>disabled_schedules</c>).
/// </summary>
public sealed partial class SqliteManagementStore
{
    private static readonly string[] OperationsSchema =
    [
        "CREATE TABLE IF NOT EXISTS throughput (minute INTEGER NOT NULL, queue TEXT NOT NULL, succeeded INTEGER NOT NULL, failed INTEGER NOT NULL, PRIMARY KEY (minute, queue)) WITHOUT ROWID;",
        "CREATE TABLE IF NOT EXISTS disabled_schedules (name TEXT PRIMARY KEY) WITHOUT ROWID;",
    ];

    private const string AddThroughput = """
        INSERT INTO throughput (minute, queue, succeeded, failed) VALUES ($minute, $queue, $succeeded, $failed)
        ON CONFLICT (minute, queue) DO UPDATE SET succeeded = succeeded + excluded.succeeded, failed = failed + excluded.failed;
        """;

    private const string SweepThroughput = "DELETE FROM throughput WHERE minute < $oldest;";

    private const string ReadThroughput = "SELECT minute, queue, succeeded, failed FROM throughput WHERE minute >= $from AND minute <= $to ORDER BY minute, queue;";

    private const string RequeueOne = """
        INSERT INTO messages (queue, state, priority, due_at, lease_owner, delivery_count, enqueued_at, task_id, body)
        SELECT queue, 0, priority, $now, NULL, 0, $now, task_id, body FROM dead_letters WHERE id = $id
        RETURNING queue;
        """;

    private const string DeleteOne = "DELETE FROM dead_letters WHERE id = $id;";

    private const string DisableSchedule = "INSERT OR IGNORE INTO disabled_schedules (name) VALUES ($name);";

    private const string EnableSchedule = "DELETE FROM disabled_schedules WHERE name = $name;";

    private const string ReadDisabledSchedules = "SELECT name FROM disabled_schedules ORDER BY name;";

    private volatile bool _operationsSchemaReady;

    /// <inheritdoc/>
    public async ValueTask RecordThroughputAsync(IReadOnlyList<ThroughputSample> samples, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(samples);
        if (samples.Count == 0)
        {
            return;
        }

        await EnsureOperationsSchemaAsync(cancellationToken).ConfigureAwait(false);
        var oldest = (NowMs / 60_000) - (24 * 60);
        await _store.WriteAsync((Samples: samples, Oldest: oldest), static (context, s) =>
        {
            foreach (var sample in s.Samples)
            {
                context.Command(AddThroughput)
                    .With("$minute", sample.Minute.ToUnixTimeSeconds() / 60).With("$queue", sample.Queue)
                    .With("$succeeded", sample.Succeeded).With("$failed", sample.Failed).ExecuteNonQuery();
            }

            context.Command(SweepThroughput).With("$oldest", s.Oldest).ExecuteNonQuery();
            return 0;
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async ValueTask<IReadOnlyList<ThroughputSample>> ReadThroughputAsync(DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken = default)
    {
        await EnsureOperationsSchemaAsync(cancellationToken).ConfigureAwait(false);
        return await _store.ReadAsync((From: from.ToUnixTimeSeconds() / 60, To: to.ToUnixTimeSeconds() / 60), static (connection, s) =>
        {
            var samples = new List<ThroughputSample>();
            using var reader = connection.Command(ReadThroughput).With("$from", s.From).With("$to", s.To).ExecuteReader();
            while (reader.Read())
            {
                samples.Add(new ThroughputSample(reader.GetString(1), DateTimeOffset.FromUnixTimeSeconds(reader.GetInt64(0) * 60), reader.GetInt64(2), reader.GetInt64(3)));
            }

            return (IReadOnlyList<ThroughputSample>)samples;
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async ValueTask<bool> RequeueDeadLetterAsync(string deadLetterId, CancellationToken cancellationToken = default)
    {
        var id = ParseDeadLetterId(deadLetterId);
        if (id is null)
        {
            return false;
        }

        return await _store.WriteAsync((Id: id.Value, Now: NowMs), static (context, s) =>
        {
            string? queue = null;
            using (var reader = context.Command(RequeueOne).With("$id", s.Id).With("$now", s.Now).ExecuteReader())
            {
                if (reader.Read())
                {
                    queue = reader.GetString(0);
                }
            }

            if (queue is null)
            {
                return false;
            }

            context.Command(DeleteOne).With("$id", s.Id).ExecuteNonQuery();
            context.QueueChanged(queue);
            return true;
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async ValueTask<bool> DeleteDeadLetterAsync(string deadLetterId, CancellationToken cancellationToken = default)
    {
        var id = ParseDeadLetterId(deadLetterId);
        if (id is null)
        {
            return false;
        }

        return await _store.WriteAsync(id.Value, static (context, id) => context.Command(DeleteOne).With("$id", id).ExecuteNonQuery() > 0, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async ValueTask SetScheduleEnabledAsync(string name, bool enabled, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        await EnsureOperationsSchemaAsync(cancellationToken).ConfigureAwait(false);
        await _store.WriteAsync((Name: name, Enabled: enabled), static (context, s) =>
            context.Command(s.Enabled ? EnableSchedule : DisableSchedule).With("$name", s.Name).ExecuteNonQuery(), cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async ValueTask<IReadOnlyList<string>> ListDisabledSchedulesAsync(CancellationToken cancellationToken = default)
    {
        await EnsureOperationsSchemaAsync(cancellationToken).ConfigureAwait(false);
        return await _store.ReadAsync(0, static (connection, _) =>
        {
            var names = new List<string>();
            using var reader = connection.Command(ReadDisabledSchedules).ExecuteReader();
            while (reader.Read())
            {
                names.Add(reader.GetString(0));
            }

            return (IReadOnlyList<string>)names;
        }, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>A dead letter's id is its row id; anything else names none.</summary>
    private long? ParseDeadLetterId(string deadLetterId)
    {
        ArgumentException.ThrowIfNullOrEmpty(deadLetterId);
        if (!_ownsBroker)
        {
            throw new NotSupportedException("This SQLite file is the result backend only: its broker keeps the dead letters.");
        }

        return long.TryParse(deadLetterId, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var id) ? id : null;
    }

    private async ValueTask EnsureOperationsSchemaAsync(CancellationToken cancellationToken)
    {
        if (_operationsSchemaReady)
        {
            return;
        }

        // CREATE … IF NOT EXISTS: two first calls racing both run it, harmlessly.
        await _store.WriteAsync(0, static (context, _) =>
        {
            foreach (var statement in OperationsSchema)
            {
                context.Command(statement).ExecuteNonQuery();
            }

            return 0;
        }, cancellationToken).ConfigureAwait(false);
        _operationsSchemaReady = true;
    }
}
