using Microsoft.AspNetCore.Http;

namespace Conveyor.Dashboard;

/// <summary>
/// The dashboard's settings (<see cref="Microsoft.AspNetCore.Builder.ConveyorDashboardEndpointRouteBuilderExtensions.MapConveyorDashboard"/>).
/// Who may see it at all is the endpoint's authorization (<c>.RequireAuthorization(policy)</c>); without any, it
/// answers local (loopback) requests only. What a user may change is narrowed here: a read-only predicate and a
/// policy per kind of action.
/// </summary>
public sealed class ConveyorDashboardOptions
{
    /// <summary>The title in the page's header and the browser tab.</summary>
    /// <value>The default value is <c>Conveyor</c>.</value>
    public string Title { get; set; } = "Conveyor";

    /// <summary>How often the overview's counts and charts refresh in the browser.</summary>
    /// <value>The default value is 5 seconds; 1 second to 10 minutes.</value>
    public TimeSpan StatsRefreshInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Whether a request sees a read-only dashboard: its pages show no actions, and every state-changing request is
    /// refused with 403.
    /// </summary>
    /// <value>The default value is <see langword="null"/>: nobody is read-only.</value>
    public Func<HttpContext, bool>? IsReadOnly { get; set; }

    /// <summary>The authorization policy a user must meet to retry: requeue dead letters, run scheduled tasks now, trigger a schedule.</summary>
    /// <value>The default value is <see langword="null"/>: no policy beyond the endpoint's.</value>
    public string? RetryPolicy { get; set; }

    /// <summary>The authorization policy a user must meet to delete: tasks, finished states, dead letters, and to purge a queue.</summary>
    /// <value>The default value is <see langword="null"/>: no policy beyond the endpoint's.</value>
    public string? DeletePolicy { get; set; }

    /// <summary>The authorization policy a user must meet to revoke tasks (running ones are canceled).</summary>
    /// <value>The default value is <see langword="null"/>: no policy beyond the endpoint's.</value>
    public string? RevokePolicy { get; set; }

    /// <summary>The authorization policy a user must meet to pause and resume queues and to enable and disable schedules.</summary>
    /// <value>The default value is <see langword="null"/>: no policy beyond the endpoint's.</value>
    public string? PausePolicy { get; set; }

    /// <summary>The policy of an action kind.</summary>
    /// <param name="action">The kind.</param>
    /// <returns>Its policy, or <see langword="null"/>.</returns>
    public string? PolicyFor(DashboardAction action) => action switch
    {
        DashboardAction.Retry => RetryPolicy,
        DashboardAction.Delete => DeletePolicy,
        DashboardAction.Revoke => RevokePolicy,
        DashboardAction.Pause => PausePolicy,
        _ => throw new ArgumentOutOfRangeException(nameof(action), action, "Not an action kind."),
    };

    /// <summary>Throws on a setting out of range, naming it.</summary>
    /// <exception cref="ArgumentException">A setting is out of range.</exception>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Title))
        {
            throw new ArgumentException("ConveyorDashboardOptions.Title: must not be empty.");
        }

        if (StatsRefreshInterval < TimeSpan.FromSeconds(1) || StatsRefreshInterval > TimeSpan.FromMinutes(10))
        {
            throw new ArgumentException($"ConveyorDashboardOptions.StatsRefreshInterval: {StatsRefreshInterval} is not within 1 second to 10 minutes.");
        }
    }
}

/// <summary>The kinds of state-changing action, each with its own policy.</summary>
public enum DashboardAction
{
    /// <summary>Requeue a dead letter, run a scheduled task now, trigger a schedule.</summary>
    Retry,

    /// <summary>Delete tasks, finished states or dead letters; purge a queue.</summary>
    Delete,

    /// <summary>Revoke tasks.</summary>
    Revoke,

    /// <summary>Pause or resume a queue; enable or disable a schedule.</summary>
    Pause,
}
