using System.Net;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;

namespace Conveyor.Dashboard.Internal;

/// <summary>Shows that AddConveyorDashboard() ran.</summary>
internal sealed class DashboardServicesMarker;

/// <summary>Marks the dashboard's endpoints, so that the start-up check finds them.</summary>
internal sealed record DashboardEndpointMetadata(string Prefix);

/// <summary>
/// Who may reach the dashboard: with an authorization policy on its endpoints, whoever the policy admits (the
/// authorization middleware decides before the endpoint runs); without one, local requests only, because a
/// dashboard that can revoke and purge must not be open to the network by accident.
/// </summary>
internal static class DashboardAccess
{
    /// <summary>Whether the endpoint carries any authorization (a policy, roles, a scheme, or a policy object), and no AllowAnonymous.</summary>
    public static bool HasAuthorization(EndpointMetadataCollection metadata) =>
        metadata.GetMetadata<IAllowAnonymous>() is null
        && (metadata.GetOrderedMetadata<IAuthorizeData>().Count > 0 || metadata.GetMetadata<AuthorizationPolicy>() is not null);

    /// <summary>Whether the request comes from this machine (loopback, IPv4 or IPv6, or IPv4 mapped into IPv6).</summary>
    public static bool IsLocal(HttpContext context)
    {
        var remote = context.Connection.RemoteIpAddress;
        if (remote is null)
        {
            return false;
        }

        if (remote.IsIPv4MappedToIPv6)
        {
            remote = remote.MapToIPv4();
        }

        return IPAddress.IsLoopback(remote);
    }

    /// <summary>Refuses a remote request to endpoints without authorization.</summary>
    public static async ValueTask<object?> LocalOnlyFilter(EndpointFilterInvocationContext invocation, EndpointFilterDelegate next)
    {
        var context = invocation.HttpContext;
        if (context.GetEndpoint() is { } endpoint && !HasAuthorization(endpoint.Metadata) && !IsLocal(context))
        {
            return DashboardJson.Json(new { error = "This dashboard has no authorization policy, so it answers local requests only (see MapConveyorDashboard().RequireAuthorization(policy))." }, StatusCodes.Status403Forbidden);
        }

        return await next(invocation).ConfigureAwait(false);
    }

    /// <summary>Logs, once the conventions have run, whether the dashboard is local-only.</summary>
    public static void LogAccess(IEndpointRouteBuilder endpoints, string prefix, string shown, ILogger logger)
    {
        var dashboard = endpoints.DataSources.SelectMany(s => s.Endpoints)
            .Where(e => e.Metadata.GetMetadata<DashboardEndpointMetadata>() is { } marker && marker.Prefix == prefix)
            .ToList();
        if (dashboard.Count == 0)
        {
            return;
        }

        if (dashboard.All(e => HasAuthorization(e.Metadata)))
        {
            var policies = dashboard.SelectMany(e => e.Metadata.GetOrderedMetadata<IAuthorizeData>()).Select(a => a.Policy ?? a.Roles ?? "(default policy)").Distinct(StringComparer.Ordinal);
            DashboardLog.Authorized(logger, shown, string.Join(", ", policies));
        }
        else
        {
            DashboardLog.LocalOnly(logger, shown);
        }
    }
}

internal static partial class DashboardLog
{
    [LoggerMessage(1602, LogLevel.Warning, "Conveyor dashboard at {Prefix}: no authorization policy, so it answers local (loopback) requests only; add .RequireAuthorization(policy) to MapConveyorDashboard() to open it to others")]
    public static partial void LocalOnly(ILogger logger, string prefix);

    [LoggerMessage(1603, LogLevel.Information, "Conveyor dashboard at {Prefix}: authorization required ({Policies})")]
    public static partial void Authorized(ILogger logger, string prefix, string policies);

    [LoggerMessage(1604, LogLevel.Information, "Conveyor dashboard: {User} ran {Action} on {Target}: {Result}")]
    public static partial void ActionRan(ILogger logger, string user, string action, string target, string result);

    [LoggerMessage(1605, LogLevel.Warning, "Conveyor dashboard: {Action} refused for {User}: {Reason}")]
    public static partial void ActionRefused(ILogger logger, string action, string user, string reason);
}
