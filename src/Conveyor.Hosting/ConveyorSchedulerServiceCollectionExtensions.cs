using Conveyor;
using Conveyor.Hosting;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers Conveyor's periodic scheduler in a .NET host.</summary>
public static class ConveyorSchedulerServiceCollectionExtensions
{
    /// <summary>
    /// Adds the periodic scheduler as a hosted service: the schedules in <c>Conveyor:Schedules:{name}</c>
    /// (<see cref="ScheduleOptions"/>; checked at start, one line per bad setting; added, changed and removed as the
    /// configuration reloads) and those added in code. Any number of hosts may run it: each tick is published once,
    /// claimed through the lock store (<c>Conveyor:Lock</c>, by default the result backend). Inject
    /// <see cref="ConveyorScheduler"/> to add or remove schedules while running.
    /// </summary>
    /// <param name="services">The services.</param>
    /// <param name="configure">Adds schedules in code and adjusts settings (<c>Conveyor:Scheduler</c>); <see langword="null"/> for none.</param>
    /// <returns>The services.</returns>
    public static IServiceCollection AddConveyorScheduler(this IServiceCollection services, Action<SchedulerOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddConveyor();
        var options = services.AddOptions<SchedulerOptions>().BindConfiguration($"{ConveyorOptions.SectionName}:Scheduler");
        if (configure is not null)
        {
            options.Configure(configure);
        }

        if (services.Any(d => d.ServiceType == typeof(ConveyorScheduler)))
        {
            return services;
        }

        services.AddOptions<ConfiguredSchedules>().BindConfiguration(ConveyorOptions.SectionName).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ConfiguredSchedules>, ConfiguredSchedulesValidator>());
        services.TryAddSingleton(static sp =>
        {
            var schedulerOptions = sp.GetRequiredService<IOptions<SchedulerOptions>>().Value;
            schedulerOptions.ManagementStore ??= sp.GetService<IManagementStore>(); // the dashboard's schedule switches
            return new ConveyorScheduler(sp.GetRequiredService<ConveyorClient>(), sp.GetRequiredService<IDistributedLock>(), schedulerOptions, sp.GetService<ILoggerFactory>());
        });

        // One hosted service puts the configuration's schedules in and then starts the scheduler.
        services.AddSingleton<IHostedService, ConfiguredScheduleSync>();
        return services;
    }
}
