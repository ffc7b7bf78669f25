namespace Conveyor;

/// <summary>
/// A schedule as configuration writes it (one per name under <c>Conveyor:Schedules:&lt;name&gt;</c>), for
/// <see cref="PeriodicSchedule.FromOptions"/>. It publishes one task. Every property is settable so that a
/// configuration binder can fill it.
/// </summary>
/// <example>
/// <code>
/// "Conveyor": { "Schedules": {
///   "cleanup": { "Cron": "*/5 * * * *", "Task": "cleanup", "Args": [ "int64:30" ] },
///   "report":  { "Cron": "0 8 * * 1-5", "TimeZone": "Europe/Berlin", "Task": "report", "Misfire": "CatchUp", "MaxCatchUp": 1 },
///   "ping":    { "Interval": "00:00:10", "Task": "echo", "Args": [ "string:ping" ] } } }
/// </code>
/// </example>
public sealed class ScheduleOptions
{
    /// <summary>A cron spec: five fields, or six with seconds first. Set this or <see cref="Interval"/>.</summary>
    /// <value>The default value is <see langword="null"/>.</value>
    public string? Cron { get; set; }

    /// <summary>A fixed interval, anchored at the Unix epoch (<c>"00:00:10"</c> in configuration). Set this or <see cref="Cron"/>.</summary>
    /// <value>The default value is <see langword="null"/>.</value>
    public TimeSpan? Interval { get; set; }

    /// <summary>The time zone id of <see cref="Cron"/> (IANA, such as <c>Europe/Berlin</c>, or Windows ids where those work).</summary>
    /// <value>The default value is <see langword="null"/>: UTC.</value>
    public string? TimeZone { get; set; }

    /// <summary>The registered name of the task to publish. Required.</summary>
    /// <value>The default value is <see langword="null"/>.</value>
    public string? Task { get; set; }

    /// <summary>The task's arguments, each <c>TYPE:VALUE</c> as on the command line (<see cref="TaskArgument.Parse"/>).</summary>
    /// <value>The default value is an empty list.</value>
#pragma warning disable CA2227 // A configuration binder sets it; List<string> keeps binding simple.
    public List<string> Args { get; set; } = [];
#pragma warning restore CA2227

    /// <summary>The queue (routing key) to publish to.</summary>
    /// <value>The default value is <see langword="null"/>: the client's default queue.</value>
    public string? Queue { get; set; }

    /// <summary>The task's priority (0–255).</summary>
    /// <value>The default value is 0.</value>
    public byte Priority { get; set; }

    /// <summary>How many times the task may be retried.</summary>
    /// <value>The default value is 0.</value>
    public int RetryCount { get; set; }

    /// <summary>What to do with late ticks.</summary>
    /// <value>The default value is <see cref="MisfirePolicy.Skip"/>.</value>
    public MisfirePolicy Misfire { get; set; } = MisfirePolicy.Skip;

    /// <summary>With <see cref="MisfirePolicy.CatchUp"/>, the most missed ticks published at once.</summary>
    /// <value>The default value is 5.</value>
    public int MaxCatchUp { get; set; } = PeriodicSchedule.DefaultMaxCatchUp;

    /// <summary>Whether the schedule runs; a disabled schedule is still checked for errors.</summary>
    /// <value>The default value is <see langword="true"/>.</value>
    public bool Enabled { get; set; } = true;
}

/// <summary>Settings of a <see cref="ConveyorScheduler"/>.</summary>
public sealed class SchedulerOptions
{
    /// <summary>The default of <see cref="MisfireThreshold"/>: 5 seconds.</summary>
    public static readonly TimeSpan DefaultMisfireThreshold = TimeSpan.FromSeconds(5);

    /// <summary>Schedules the scheduler starts with; more can be added while it runs.</summary>
    /// <value>The default value is an empty list.</value>
    public IList<PeriodicSchedule> Schedules { get; } = [];

    /// <summary>
    /// How late a tick may be and still count as on time. A scheduler can be late through no fault of the schedule
    /// (a GC pause, a slow store, a busy machine), so a tick found late by up to this is still claimed and published;
    /// under <see cref="MisfirePolicy.Skip"/> a later one is dropped and logged. It is kept short because a tick
    /// published much later than asked is usually worse than one skipped, and because whether another scheduler
    /// took the tick is already settled by then: the claims are made at the tick.
    /// </summary>
    /// <value>The default value is 5 seconds.</value>
    public TimeSpan MisfireThreshold { get; set; } = DefaultMisfireThreshold;

    /// <summary>
    /// Where schedules are switched off for the whole fleet (<see cref="IManagementStore.SetScheduleEnabledAsync"/>):
    /// a due tick of a disabled schedule is skipped (read once per due tick, not per pass).
    /// </summary>
    /// <value>The default value is <see langword="null"/>: every schedule is enabled (the host sets the configured store).</value>
    public IManagementStore? ManagementStore { get; set; }
}
