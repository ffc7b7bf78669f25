using Microsoft.Extensions.DependencyInjection;

namespace Conveyor;

/// <summary>
/// What <c>services.AddConveyor()</c> returns: provider packages add their <c>Use…()</c> methods to it, and tasks are
/// registered through it. The core owns the type so that a provider package needs no hosting package.
/// </summary>
public interface IConveyorBuilder
{
    /// <summary>The service collection Conveyor registers into.</summary>
    IServiceCollection Services { get; }

    /// <summary>The task handlers that workers in this container run.</summary>
    TaskRegistry Tasks { get; }
}
