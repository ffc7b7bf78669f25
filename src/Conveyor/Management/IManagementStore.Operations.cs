namespace Conveyor;

/// <summary>
/// The parts of the management store that operators' views need beyond the control state: per-minute throughput
/// counters, single dead letters, and disabled periodic schedules. Each member has a default, so a provider that
/// keeps none of them still compiles and answers: no throughput, and a <see cref="NotSupportedException"/> for the
/// changes it cannot make.
/// </summary>
public partial interface IManagementStore
{
    /// <summary>
    /// Adds finished-task counts to the per-minute counters of their queues (kept for a day). Workers call it with
    /// their heartbeat, so counting costs the hot path no round trip.
    /// </summary>
    /// <param name="samples">The counts to add, each for one queue and one minute.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when the counts are stored.</returns>
    ValueTask RecordThroughputAsync(IReadOnlyList<ThroughputSample> samples, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

    /// <summary>Reads the per-minute counters from <paramref name="from"/> to <paramref name="to"/> (whole minutes, both included).</summary>
    /// <param name="from">The first minute.</param>
    /// <param name="to">The last minute.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The counters that are not zero, one per queue and minute; empty where the store keeps none.</returns>
    ValueTask<IReadOnlyList<ThroughputSample>> ReadThroughputAsync(DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult<IReadOnlyList<ThroughputSample>>([]);

    /// <summary>Moves one dead letter back to the queue it came from.</summary>
    /// <param name="deadLetterId">The dead letter's id (<see cref="DeadLetter.Id"/>).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>Whether it was found and moved.</returns>
    /// <exception cref="NotSupportedException">The store cannot change the broker's dead letters.</exception>
    ValueTask<bool> RequeueDeadLetterAsync(string deadLetterId, CancellationToken cancellationToken = default) =>
        ValueTask.FromException<bool>(new NotSupportedException("This broker cannot requeue a single dead letter through Conveyor."));

    /// <summary>Deletes one dead letter.</summary>
    /// <param name="deadLetterId">The dead letter's id (<see cref="DeadLetter.Id"/>).</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>Whether it was found and deleted.</returns>
    /// <exception cref="NotSupportedException">The store cannot change the broker's dead letters.</exception>
    ValueTask<bool> DeleteDeadLetterAsync(string deadLetterId, CancellationToken cancellationToken = default) =>
        ValueTask.FromException<bool>(new NotSupportedException("This broker cannot delete a single dead letter through Conveyor."));

    /// <summary>Enables or disables a periodic schedule for every scheduler on this store (kept until changed).</summary>
    /// <param name="name">The schedule's name.</param>
    /// <param name="enabled">Whether its ticks are published.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when it is stored.</returns>
    /// <exception cref="NotSupportedException">The store keeps no schedule switches.</exception>
    ValueTask SetScheduleEnabledAsync(string name, bool enabled, CancellationToken cancellationToken = default) =>
        ValueTask.FromException(new NotSupportedException("This store keeps no schedule switches."));

    /// <summary>Lists the schedules disabled with <see cref="SetScheduleEnabledAsync"/>.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>Their names; empty where the store keeps none.</returns>
    ValueTask<IReadOnlyList<string>> ListDisabledSchedulesAsync(CancellationToken cancellationToken = default) =>
        ValueTask.FromResult<IReadOnlyList<string>>([]);
}

/// <summary>How many tasks of one queue finished in one minute.</summary>
/// <param name="Queue">The queue.</param>
/// <param name="Minute">The minute (UTC, seconds zero).</param>
/// <param name="Succeeded">Tasks that ended in SUCCESS.</param>
/// <param name="Failed">Tasks that ended in FAILURE (retries not counted; revocations and dead letters counted).</param>
public sealed record ThroughputSample(string Queue, DateTimeOffset Minute, long Succeeded, long Failed)
{
    /// <summary>The start of the minute that holds <paramref name="time"/>.</summary>
    /// <param name="time">A time.</param>
    /// <returns>The minute, in UTC.</returns>
    public static DateTimeOffset MinuteOf(DateTimeOffset time) => DateTimeOffset.FromUnixTimeSeconds(time.ToUnixTimeSeconds() / 60 * 60);
}
