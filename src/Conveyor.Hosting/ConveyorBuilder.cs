using Microsoft.Extensions.DependencyInjection;

namespace Conveyor.Hosting;

internal sealed class ConveyorBuilder(IServiceCollection services, TaskRegistry tasks) : IConveyorBuilder
{
    public IServiceCollection Services { get; } = services;

    public TaskRegistry Tasks { get; } = tasks;
}
