using System.Diagnostics.Metrics;
using Conveyor;
using Conveyor.Diagnostics;
using Conveyor.Hosting;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers Conveyor in a .NET host.</summary>
public static class ConveyorServiceCollectionExtensions
{
    /// <summary>
    /// Adds Conveyor's publishing client (<see cref="ConveyorClient"/>, a singleton to inject anywhere), the broker,
    /// the result backend and the lock, picked by the URLs in the <c>Conveyor</c> configuration section
    /// (<see cref="ConveyorOptions"/>) among the providers added with <c>Use…()</c>, and validated when the host starts.
    /// The host then connects to them asynchronously before its workers and scheduler start, and either fails the start
    /// or goes on when one does not answer (<see cref="ConveyorOptions.FailFast"/>). Calling it again returns the same
    /// builder.
    /// </summary>
    /// <param name="services">The services.</param>
    /// <param name="configure">Adds providers and tasks: <c>c =&gt; c.UseRedis().AddTask("add", (long a, long b) =&gt; a + b)</c>.</param>
    /// <returns>The builder, for more providers and tasks.</returns>
    public static IConveyorBuilder AddConveyor(this IServiceCollection services, Action<IConveyorBuilder>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        var builder = services.FirstOrDefault(d => d.ServiceType == typeof(ConveyorBuilder))?.ImplementationInstance as ConveyorBuilder;
        if (builder is null)
        {
            builder = new ConveyorBuilder(services, new TaskRegistry());
            services.AddSingleton(builder);
            services.AddSingleton(builder.Tasks);

            services.AddOptions<ConveyorOptions>().BindConfiguration(ConveyorOptions.SectionName).ValidateOnStart();
            services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ConveyorOptions>, ConveyorOptionsValidator>());
            services.TryAddEnumerable(ServiceDescriptor.Singleton<IPostConfigureOptions<ConveyorOptions>, ConveyorUrlDefaults>());
            services.AddOptions<ConveyorClientOptions>().BindConfiguration($"{ConveyorOptions.SectionName}:Client");

            services.TryAddSingleton(TimeProvider.System);
            services.TryAddSingleton<ConveyorConnections>();

            // First among the hosted services: the engines are connected (asynchronously) before a worker or
            // scheduler creates anything on them.
            services.AddSingleton<IHostedService, ConveyorStartup>();
            services.TryAddSingleton(static sp => sp.GetRequiredService<ConveyorConnections>().CreateBroker());
            services.TryAddSingleton(static sp => sp.GetRequiredService<ConveyorConnections>().CreateResultBackend());
            services.TryAddSingleton(static sp => sp.GetRequiredService<ConveyorConnections>().CreateLock());
            services.TryAddSingleton(static sp => new ConveyorDiagnostics(sp.GetService<IMeterFactory>()));

            // The management API and the store that workers follow for revocations and pauses; null (and so no
            // control) when no configured provider keeps one.
            services.TryAddSingleton<IManagementStore>(static sp => sp.GetRequiredService<ConveyorConnections>().CreateManagementStore()!);
            services.TryAddSingleton(static sp => new ConveyorManagement(
                sp.GetService<IManagementStore>() ?? throw new NotSupportedException("No configured provider keeps a management store (revocations, pauses, listings): use SQLite or Redis as the broker or the result backend."),
                sp.GetRequiredService<IBroker>(),
                sp.GetRequiredService<IResultBackend>(),
                sp.GetRequiredService<IOptions<ConveyorOptions>>().Value.DefaultQueue,
                sp.GetRequiredService<TimeProvider>()));
            services.TryAddSingleton(static sp =>
            {
                var clientOptions = sp.GetRequiredService<IOptions<ConveyorClientOptions>>().Value;
                clientOptions.DefaultQueue = sp.GetRequiredService<IOptions<ConveyorOptions>>().Value.DefaultQueue;
                return new ConveyorClient(
                    sp.GetRequiredService<IBroker>(),
                    sp.GetRequiredService<IResultBackend>(),
                    clientOptions,
                    sp.GetRequiredService<TimeProvider>(),
                    sp.GetService<ILoggerFactory>(),
                    sp.GetRequiredService<ConveyorDiagnostics>());
            });
        }

        configure?.Invoke(builder);
        return builder;
    }

    /// <summary>
    /// Adds a worker that starts and stops with the host, bound from <c>Conveyor:Worker</c>, running the tasks
    /// registered on the builder; each task runs in its own DI scope. Stopping drains running tasks within
    /// <see cref="WorkerOptions.ShutdownGracePeriod"/> (keep the host's shutdown timeout longer).
    /// </summary>
    /// <param name="services">The services.</param>
    /// <returns>The services.</returns>
    public static IServiceCollection AddConveyorWorker(this IServiceCollection services) =>
        services.AddConveyorWorker(Options.Options.DefaultName, configure: null);

    /// <inheritdoc cref="AddConveyorWorker(IServiceCollection)"/>
    /// <param name="services">The services.</param>
    /// <param name="configure">Adjusts the worker's settings after configuration; <see langword="null"/> for none.</param>
    public static IServiceCollection AddConveyorWorker(this IServiceCollection services, Action<WorkerOptions>? configure) =>
        services.AddConveyorWorker(Options.Options.DefaultName, configure);

    /// <summary>
    /// Adds one more worker, for instance on another queue, bound from <c>Conveyor:Workers:{name}</c>.
    /// </summary>
    /// <param name="services">The services.</param>
    /// <param name="name">The worker's options name (empty for the default worker, bound from <c>Conveyor:Worker</c>).</param>
    /// <param name="configure">Adjusts the worker's settings after configuration; <see langword="null"/> for none.</param>
    /// <returns>The services.</returns>
    public static IServiceCollection AddConveyorWorker(this IServiceCollection services, string name, Action<WorkerOptions>? configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(name);
        services.AddConveyor();
        var section = WorkerOptionsValidator.SectionFor(name);
        var options = services.AddOptions<WorkerOptions>(name).BindConfiguration(section);
        if (configure is not null)
        {
            options.Configure(configure);
        }

        if (name.Length > 0)
        {
            // Workers of one process must not share a name: their heartbeats (conveyor workers, the dashboard) would
            // overwrite each other. A named worker left at the process's default name gets its options name added.
            var processDefault = new WorkerOptions().Name;
            options.PostConfigure(o =>
            {
                if (o.Name == processDefault)
                {
                    o.Name = processDefault + "/" + name;
                }
            });
        }

        options.ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<WorkerOptions>, WorkerOptionsValidator>());

        // Not AddHostedService: it de-duplicates factory registrations by type, and several workers are allowed.
        services.AddSingleton<IHostedService>(sp => new ConveyorWorkerService(sp, name));
        return services;
    }
}
