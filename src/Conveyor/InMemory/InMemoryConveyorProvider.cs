using Microsoft.Extensions.DependencyInjection;

namespace Conveyor.InMemory;

/// <summary>
/// The <c>memory://</c> provider: one broker, backend and lock per container, so a client and a worker in one host
/// share them.
/// </summary>
internal sealed class InMemoryConveyorProvider : IConveyorProvider
{
    public const string Url = "memory://";

    private readonly Lazy<InMemoryBroker> _broker;
    private readonly Lazy<InMemoryResultBackend> _backend;
    private readonly Lazy<InMemoryDistributedLock> _lock;
    private readonly Lazy<InMemoryManagementStore> _management;

    public InMemoryConveyorProvider(IServiceProvider services)
    {
        var time = services.GetService<TimeProvider>() ?? TimeProvider.System;
        _broker = new(() => new InMemoryBroker(time));
        _backend = new(() => new InMemoryResultBackend(timeProvider: time));
        _lock = new(() => new InMemoryDistributedLock(time));
        _management = new(() => new InMemoryManagementStore(_broker.Value, _backend.Value, time));
    }

    public string Name => "in-memory";

    public IReadOnlyList<string> Schemes { get; } = ["memory"];

    public ConveyorComponents Components => ConveyorComponents.Broker | ConveyorComponents.ResultBackend | ConveyorComponents.Lock;

    public IReadOnlyList<string> UrlForms { get; } = ["memory:// (this process only: tests, demos)"];

    public string? Validate(string url) => null;

    public IBroker CreateBroker(string url, IServiceProvider services) => _broker.Value;

    public IResultBackend CreateResultBackend(string url, IServiceProvider services) => _backend.Value;

    public IDistributedLock CreateLock(string url, IServiceProvider services) => _lock.Value;

    /// <inheritdoc/>
    public IManagementStore? CreateManagementStore(string url, bool ownsBroker, IServiceProvider services) => _management.Value;
}
