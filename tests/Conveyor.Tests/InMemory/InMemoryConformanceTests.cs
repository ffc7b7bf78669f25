using Conveyor.Conformance;
using Conveyor.InMemory;
using Microsoft.Extensions.Time.Testing;

namespace Conveyor.Tests.InMemory;

/// <summary>The in-memory provider: one broker and backend per test; "crashing" a consumer is disposing it.</summary>
public sealed class InMemoryProviderFactory : IConveyorProviderFactory
{
    public string Name => "in-memory";

    public TimeSpan RedeliveryTimeout => TimeSpan.Zero;

    public ValueTask<IBroker> CreateBrokerAsync(CancellationToken cancellationToken = default) => ValueTask.FromResult<IBroker>(new InMemoryBroker());

    public ValueTask<IResultBackend> CreateBackendAsync(CancellationToken cancellationToken = default) => ValueTask.FromResult<IResultBackend>(new InMemoryResultBackend());

    public ValueTask<IResultBackend?> CreateBackendAsync(TimeProvider clock, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult<IResultBackend?>(new InMemoryResultBackend(timeProvider: clock));

    public ValueTask SimulateCrashAsync(IMessageConsumer consumer) => consumer.DisposeAsync();

    public ValueTask<IManagementStore?> CreateManagementStoreAsync(IBroker broker, IResultBackend backend) =>
        ValueTask.FromResult<IManagementStore?>(new InMemoryManagementStore((InMemoryBroker)broker, (InMemoryResultBackend)backend));

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

public sealed class InMemoryManagementConformanceTests(InMemoryProviderFactory factory) : ManagementConformanceTests<InMemoryProviderFactory>(factory);

public sealed class InMemoryWorkerConformanceTests(InMemoryProviderFactory factory) : WorkerConformanceTests<InMemoryProviderFactory>(factory);

public sealed class InMemoryBrokerConformanceTests(InMemoryProviderFactory factory) : BrokerConformanceTests<InMemoryProviderFactory>(factory);

public sealed class InMemoryResultBackendConformanceTests(InMemoryProviderFactory factory) : ResultBackendConformanceTests<InMemoryProviderFactory>(factory);

public sealed class InMemoryChordProtocolConformanceTests(InMemoryProviderFactory factory) : ChordProtocolConformanceTests<InMemoryProviderFactory>(factory);

/// <summary>One lock store per test (xunit makes a class instance per test): the in-memory lock is one process's.</summary>
public sealed class InMemoryDistributedLockConformanceTests(InMemoryProviderFactory factory) : DistributedLockConformanceTests<InMemoryProviderFactory>(factory)
{
    private InMemoryDistributedLock? _store;

    protected override ValueTask<IDistributedLock> CreateLockAsync(FakeTimeProvider clock) =>
        ValueTask.FromResult<IDistributedLock>(_store ??= new InMemoryDistributedLock(clock));
}

/// <summary>
/// Three schedulers in one process, as <c>memory://</c> runs them in one host: they share the one broker, backend
/// and lock store (per test).
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "The suite's test disposes the broker and backend it is given.")]
public sealed class InMemorySchedulerConformanceTests(InMemoryProviderFactory factory) : SchedulerConformanceTests<InMemoryProviderFactory>(factory)
{
    private readonly InMemoryBroker _broker = new();
    private readonly InMemoryResultBackend _backend = new();
    private readonly InMemoryDistributedLock _locks = new();

    protected override ValueTask<IDistributedLock> CreateLockAsync() => ValueTask.FromResult<IDistributedLock>(_locks);

    protected override ValueTask<IBroker> CreateBrokerAsync() => ValueTask.FromResult<IBroker>(_broker);

    protected override ValueTask<IResultBackend> CreateBackendAsync() => ValueTask.FromResult<IResultBackend>(_backend);
}
