using Conveyor.Dashboard.Internal;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers what Conveyor's dashboard needs.</summary>
public static class ConveyorDashboardServiceCollectionExtensions
{
    /// <summary>
    /// Adds the dashboard's services: antiforgery (every state-changing request carries its token) and
    /// authorization (the per-action policies). Conveyor itself comes from <c>services.AddConveyor(…)</c>. Calling it
    /// again changes nothing.
    /// </summary>
    /// <param name="services">The services.</param>
    /// <returns>The services.</returns>
    public static IServiceCollection AddConveyorDashboard(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddAntiforgery();
        services.AddAuthorization();
        services.TryAddSingleton<DashboardServicesMarker>();
        return services;
    }
}
