namespace Conveyor;

/// <summary>
/// The names of <see cref="ManagedTaskState"/> that people type and read (the CLI's <c>--state</c>, the dashboard's
/// filter and its JSON): lowercase, <c>dead</c> for dead-lettered, and machinery's state words accepted too.
/// </summary>
public static class ManagedTaskStateNames
{
    /// <summary>Reads a state name, in any case: pending, scheduled, active, dead, succeeded, failed, revoked (also SUCCESS, FAILURE, dead-lettered).</summary>
    /// <param name="text">The name.</param>
    /// <returns>The state, or <see langword="null"/> for a name that is none of them.</returns>
    public static ManagedTaskState? Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return text.ToUpperInvariant() switch
        {
            "PENDING" => ManagedTaskState.Pending,
            "SCHEDULED" => ManagedTaskState.Scheduled,
            "ACTIVE" => ManagedTaskState.Active,
            "DEAD" or "DEAD-LETTERED" or "DEADLETTERED" => ManagedTaskState.DeadLettered,
            "SUCCEEDED" or "SUCCESS" => ManagedTaskState.Succeeded,
            "FAILED" or "FAILURE" => ManagedTaskState.Failed,
            "REVOKED" => ManagedTaskState.Revoked,
            _ => null,
        };
    }

    /// <summary>The state's name as shown: lowercase, <c>dead</c> for dead-lettered.</summary>
    /// <param name="state">The state.</param>
    /// <returns>Its name.</returns>
    public static string Name(ManagedTaskState state) =>
        state == ManagedTaskState.DeadLettered ? "dead" : state.ToString().ToLowerInvariant();
}
