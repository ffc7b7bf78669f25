namespace Conveyor;

/// <summary>Running a schedule's work outside its ticks.</summary>
public sealed partial class PeriodicSchedule
{
    /// <summary>
    /// Publishes a fresh copy of the schedule's work now, outside its ticks (an operator's "trigger now"): it claims
    /// no tick, so the schedule's own ticks go on as before. The copy carries the schedule headers, with now as its tick.
    /// </summary>
    /// <param name="client">The client to publish through; its clock gives the time.</param>
    /// <param name="cancellationToken">Cancels the publish.</param>
    /// <returns>The id of what was published: the task's, the group's (group, chord) or the first link's (chain).</returns>
    public ValueTask<string> TriggerNowAsync(ConveyorClient client, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        return PublishAsync(client, client.TimeProvider.GetUtcNow(), cancellationToken);
    }
}
