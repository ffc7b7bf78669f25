using Conveyor.Conformance;
using Conveyor.InMemory;

namespace Conveyor.Tests.InMemory;

/// <summary>The in-memory provider: one broker and backend per test; "crashing" a consumer is disposing it.</summary>
public sealed class InMemoryProviderFactory : IConveyorProviderFactory
{
    public string Name => "in-memory";

    public TimeSpan RedeliveryTimeout => TimeSpan.Zero;

    public ValueTask<IBroker> CreateBrokerAsync(CancellationToken cancellationToken = default) => ValueTask.FromResult<IBroker>(new InMemoryBroker());

    public ValueTask<IResultBackend> CreateBackendAsync(CancellationToken cancellationToken = default) => ValueTask.FromResult<IResultBackend>(new InMemoryResultBackend());

    public ValueTask SimulateCrashAsync(IMessageConsumer consumer) => consumer.DisposeAsync();

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

public sealed class InMemoryWorkerConformanceTests(InMemoryProviderFactory factory) : WorkerConformanceTests<InMemoryProviderFactory>(factory);

public sealed class InMemoryBrokerConformanceTests(InMemoryProviderFactory factory) : BrokerConformanceTests<InMemoryProviderFactory>(factory);

public sealed class InMemoryResultBackendConformanceTests(InMemoryProviderFactory factory) : ResultBackendConformanceTests<InMemoryProviderFactory>(factory);

public sealed class InMemoryChordProtocolConformanceTests(InMemoryProviderFactory factory) : ChordProtocolConformanceTests<InMemoryProviderFactory>(factory);
