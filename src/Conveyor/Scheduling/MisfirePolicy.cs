namespace Conveyor;

/// <summary>What a scheduler does with ticks it finds late (after a stall, a restart, or while no scheduler ran).</summary>
public enum MisfirePolicy
{
    /// <summary>
    /// Ticks late by more than <see cref="SchedulerOptions.MisfireThreshold"/> are dropped and logged; the schedule
    /// goes on with its next tick. This is the default.
    /// </summary>
    Skip = 0,

    /// <summary>
    /// Ticks missed since the last claimed tick (across all schedulers) are published, at most
    /// <see cref="PeriodicSchedule.MaxCatchUp"/> of them, the most recent ones, oldest first.
    /// </summary>
    CatchUp = 1,
}

/// <summary>What a schedule publishes at each tick.</summary>
public enum ScheduleKind
{
    /// <summary>One task.</summary>
    Task = 0,

    /// <summary>A group of tasks.</summary>
    Group = 1,

    /// <summary>A chord: a group and its callback.</summary>
    Chord = 2,

    /// <summary>A chain of tasks.</summary>
    Chain = 3,
}
