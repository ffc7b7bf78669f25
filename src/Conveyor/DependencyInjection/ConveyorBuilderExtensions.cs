using System.Diagnostics.CodeAnalysis;
using Conveyor;
using Conveyor.InMemory;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Task registration and provider plumbing on <see cref="IConveyorBuilder"/>.</summary>
public static class ConveyorBuilderExtensions
{
    /// <summary>Registers a task handler delegate (see <see cref="TaskRegistry.Register(string, Delegate)"/>).</summary>
    /// <param name="builder">The builder.</param>
    /// <param name="name">The task name producers send.</param>
    /// <param name="handler">The handler; its parameters are machinery-typed arguments, and optionally a <see cref="TaskContext"/> and a <see cref="CancellationToken"/>.</param>
    /// <returns>The builder.</returns>
    public static IConveyorBuilder AddTask(this IConveyorBuilder builder, string name, Delegate handler)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Tasks.Register(name, handler);
        return builder;
    }

    /// <summary>
    /// Registers a handler class resolved from the container in the task's own scope, so that it can take scoped
    /// services (a DbContext, say) in its constructor. The class has one public <c>RunAsync</c> or <c>Run</c> method.
    /// </summary>
    /// <typeparam name="THandler">The handler class; registered as scoped unless already registered.</typeparam>
    /// <param name="builder">The builder.</param>
    /// <param name="name">The task name producers send.</param>
    /// <returns>The builder.</returns>
    public static IConveyorBuilder AddTaskHandler<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicMethods | DynamicallyAccessedMemberTypes.PublicConstructors)] THandler>(this IConveyorBuilder builder, string name)
        where THandler : class
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.TryAddScoped<THandler>();
        builder.Tasks.RegisterHandler(name, static context =>
            (context.Services ?? throw new InvalidOperationException($"Task {context.Signature.Name} needs services: run its worker through AddConveyorWorker()."))
                .GetRequiredService<THandler>());
        return builder;
    }

    /// <summary>
    /// Adds a provider for configuration-driven setup (what a provider package's <c>Use…()</c> calls), and the URLs
    /// it supplies when configuration leaves <see cref="ConveyorOptions.Broker"/> or
    /// <see cref="ConveyorOptions.ResultBackend"/> empty. Configuration wins over code, so an operator can repoint a
    /// deployed application; among code defaults the first <c>Use…(url)</c> wins.
    /// </summary>
    /// <typeparam name="TProvider">The provider; one instance per container.</typeparam>
    /// <param name="builder">The builder.</param>
    /// <param name="defaultBroker">The broker URL to use when configuration names none; <see langword="null"/> for none.</param>
    /// <param name="defaultResultBackend">The result backend URL to use when configuration names none; <see langword="null"/> for none.</param>
    /// <returns>The builder.</returns>
    public static IConveyorBuilder AddProvider<TProvider>(this IConveyorBuilder builder, string? defaultBroker = null, string? defaultResultBackend = null)
        where TProvider : class, IConveyorProvider
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.TryAddEnumerable(ServiceDescriptor.Singleton<IConveyorProvider, TProvider>());
        if (defaultBroker is not null || defaultResultBackend is not null)
        {
            builder.Services.AddSingleton(new ConveyorUrlDefault(defaultBroker, defaultResultBackend));
        }

        return builder;
    }

    /// <summary>
    /// Uses the in-memory providers (<c>memory://</c>): one process, nothing kept after it exits. For tests and demos.
    /// </summary>
    /// <param name="builder">The builder.</param>
    /// <returns>The builder.</returns>
    public static IConveyorBuilder UseInMemory(this IConveyorBuilder builder) =>
        builder.AddProvider<InMemoryConveyorProvider>(InMemoryConveyorProvider.Url, InMemoryConveyorProvider.Url);
}
