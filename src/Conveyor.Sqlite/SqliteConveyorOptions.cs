using System.ComponentModel.DataAnnotations;

namespace Conveyor.Sqlite;

/// <summary>
/// Settings of the SQLite provider. The broker, the result backend and the lock of every process that names the
/// same <see cref="DatabasePath"/> share one database file.
/// </summary>
public sealed class SqliteConveyorOptions
{
    /// <summary>
    /// The database file. It is created, with its folder, on first use. Every process sharing the queue names the
    /// same file; it must be on a local disk (SQLite's WAL mode does not work over a network file system).
    /// </summary>
    [Required]
    public string DatabasePath { get; set; } = string.Empty;

    /// <summary>
    /// How long a delivered message stays invisible to other consumers without a heartbeat from its consumer. A
    /// consumer that dies (no heartbeat) loses its messages to another consumer after this long; a live consumer
    /// extends the lease every <see cref="HeartbeatInterval"/>, so a task may run for hours.
    /// </summary>
    /// <value>The default value is 6 seconds: a dead worker's tasks run elsewhere within 6 s of its last heartbeat.</value>
    [Range(typeof(TimeSpan), "00:00:00.100", "1.00:00:00")]
    public TimeSpan VisibilityTimeout { get; set; } = TimeSpan.FromSeconds(6);

    /// <summary>
    /// How often a consumer extends the leases of the messages it holds. Must be shorter than
    /// <see cref="VisibilityTimeout"/>; <see langword="null"/> means a third of it.
    /// </summary>
    /// <value>The default value is <see langword="null"/> (a third of <see cref="VisibilityTimeout"/>, 2 seconds by default).</value>
    [Range(typeof(TimeSpan), "00:00:00.010", "1.00:00:00")]
    public TimeSpan? HeartbeatInterval { get; set; }

    /// <summary>How long task states and group metadata are kept after their last write (machinery's <c>ResultsExpireIn</c>).</summary>
    /// <value>The default value is 1 hour, machinery's default.</value>
    [Range(typeof(TimeSpan), "00:00:00.001", "3650.00:00:00")]
    public TimeSpan ResultTtl { get; set; } = TimeSpan.FromHours(1);

    /// <summary>
    /// How long an operation waits for another process's write transaction to finish before it fails with
    /// SQLITE_BUSY.
    /// </summary>
    /// <value>The default value is 5 seconds.</value>
    [Range(typeof(TimeSpan), "00:00:00", "00:10:00")]
    public TimeSpan BusyTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// The longest an idle process waits between two checks for work written by other processes (new messages,
    /// changed task states). Checks start at 1 ms after a change and back off, doubling, up to this; messages
    /// published and states written by this process wake consumers and waiters at once.
    /// </summary>
    /// <value>The default value is 100 milliseconds.</value>
    [Range(typeof(TimeSpan), "00:00:00.001", "00:01:00")]
    public TimeSpan MaxPollInterval { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>The most messages a consumer leases in one transaction (never more than its free prefetch).</summary>
    /// <value>The default value is 64.</value>
    [Range(1, 10_000)]
    public int FetchBatchSize { get; set; } = 64;

    /// <summary>
    /// Gives this component a database connection set of its own instead of sharing the process's one for the
    /// same file: it then behaves exactly like another process (tests use it to simulate one).
    /// </summary>
    internal bool Isolated { get; set; }

    internal TimeSpan EffectiveHeartbeatInterval => HeartbeatInterval ?? VisibilityTimeout / 3;

    /// <summary>Checks the settings; the components call it in their constructors.</summary>
    internal void Validate()
    {
        if (string.IsNullOrWhiteSpace(DatabasePath))
        {
            throw new ArgumentException("SqliteConveyorOptions.DatabasePath is required.", nameof(DatabasePath));
        }

        Check(VisibilityTimeout, TimeSpan.FromMilliseconds(100), TimeSpan.FromDays(1), nameof(VisibilityTimeout));
        Check(EffectiveHeartbeatInterval, TimeSpan.FromMilliseconds(10), TimeSpan.FromDays(1), nameof(HeartbeatInterval));
        Check(ResultTtl, TimeSpan.FromMilliseconds(1), TimeSpan.FromDays(3650), nameof(ResultTtl));
        Check(BusyTimeout, TimeSpan.Zero, TimeSpan.FromMinutes(10), nameof(BusyTimeout));
        Check(MaxPollInterval, TimeSpan.FromMilliseconds(1), TimeSpan.FromMinutes(1), nameof(MaxPollInterval));
        if (FetchBatchSize is < 1 or > 10_000)
        {
            throw new ArgumentOutOfRangeException(nameof(FetchBatchSize), FetchBatchSize, "SqliteConveyorOptions.FetchBatchSize must be between 1 and 10000.");
        }

        if (EffectiveHeartbeatInterval >= VisibilityTimeout)
        {
            throw new ArgumentException(
                $"SqliteConveyorOptions.HeartbeatInterval ({EffectiveHeartbeatInterval}) must be shorter than VisibilityTimeout ({VisibilityTimeout}), or leases expire between heartbeats.",
                nameof(HeartbeatInterval));
        }
    }

    private static void Check(TimeSpan value, TimeSpan min, TimeSpan max, string name)
    {
        if (value < min || value > max)
        {
            throw new ArgumentOutOfRangeException(name, value, $"SqliteConveyorOptions.{name} must be between {min} and {max}.");
        }
    }
}
