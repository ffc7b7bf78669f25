using Conveyor;
using Conveyor.Dashboard;
using Conveyor.Dashboard.Internal;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Maps Conveyor's dashboard into an ASP.NET Core application.</summary>
public static class ConveyorDashboardEndpointRouteBuilderExtensions
{
    /// <summary>
    /// Serves the dashboard under <paramref name="pattern"/>: its page and embedded assets, and the JSON API the page
    /// uses, all views of <see cref="ConveyorManagement"/> (register Conveyor with <c>services.AddConveyor(…)</c> and
    /// the dashboard's services with <see cref="Microsoft.Extensions.DependencyInjection.ConveyorDashboardServiceCollectionExtensions.AddConveyorDashboard"/>).
    /// </summary>
    /// <remarks>
    /// The returned builder takes the usual conventions, so <c>.RequireAuthorization("ops")</c> protects every page,
    /// asset and action. Without any authorization the dashboard answers local (loopback) requests only, and says so
    /// in the log when the application starts. Every state-changing request needs the antiforgery token the page
    /// carries; a read-only request (<see cref="ConveyorDashboardOptions.IsReadOnly"/>) or one that fails its action's
    /// policy gets 403.
    /// </remarks>
    /// <param name="endpoints">The application.</param>
    /// <param name="pattern">The path prefix, such as <c>/conveyor</c>.</param>
    /// <param name="options">The settings; the defaults when <see langword="null"/>.</param>
    /// <returns>The endpoints' convention builder.</returns>
    /// <exception cref="InvalidOperationException">The dashboard's or Conveyor's services are not registered.</exception>
    public static IEndpointConventionBuilder MapConveyorDashboard(this IEndpointRouteBuilder endpoints, string pattern = "/conveyor", ConveyorDashboardOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        ArgumentException.ThrowIfNullOrEmpty(pattern);
        options ??= new ConveyorDashboardOptions();
        options.Validate();
        var services = endpoints.ServiceProvider;
        if (services.GetService<DashboardServicesMarker>() is null)
        {
            throw new InvalidOperationException("MapConveyorDashboard needs the dashboard's services: call services.AddConveyorDashboard() first.");
        }

        // Asked, not resolved: resolving would create the providers' clients before the host connects them.
        if (services.GetService<IServiceProviderIsService>() is { } registered && !registered.IsService(typeof(ConveyorManagement)))
        {
            throw new InvalidOperationException("MapConveyorDashboard needs Conveyor's management API: call services.AddConveyor(c => c.Use…()) first (a broker with a management store).");
        }

        // "/" serves it at the root (the CLI's dashboard); "/conveyor" and "conveyor/" are the same prefix.
        var prefix = pattern.Trim('/') is { Length: > 0 } trimmed ? "/" + trimmed : string.Empty;
        var group = endpoints.MapGroup(prefix);
        var api = new DashboardApi(options, prefix);
        api.Map(group);

        // Which authorization applies is known once every convention has run: at start.
        var logger = services.GetRequiredService<ILoggerFactory>().CreateLogger("Conveyor.Dashboard");
        services.GetService<IHostApplicationLifetime>()?.ApplicationStarted.Register(() => DashboardAccess.LogAccess(endpoints, prefix, prefix.Length > 0 ? prefix : "/", logger));
        return group;
    }
}
