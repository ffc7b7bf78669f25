namespace Conveyor.Conformance;

/// <summary>
/// What a provider supplies to run the conformance suites: its broker and result backend, connected to a real
/// engine, and a way to make a consumer look dead. One factory instance is shared by a test class (xunit class
/// fixture); every test uses queues of its own, so tests never see each other's messages. See README.md beside
/// this file for what a new provider implements and derives from.
/// </summary>
public interface IConveyorProviderFactory : IAsyncDisposable
{
    /// <summary>The provider's name, for messages.</summary>
    string Name { get; }

    /// <summary>How long until a dead consumer's unsettled messages are delivered again.</summary>
    TimeSpan RedeliveryTimeout { get; }

    /// <summary>Creates a broker (a new connection or a shared one; disposed by the test).</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The broker.</returns>
    ValueTask<IBroker> CreateBrokerAsync(CancellationToken cancellationToken = default);

    /// <summary>Creates a result backend (disposed by the test).</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The backend.</returns>
    ValueTask<IResultBackend> CreateBackendAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Creates a result backend whose timers (the longest wait of <see cref="IResultBackend.WaitForChangeAsync"/>)
    /// run on <paramref name="clock"/>, so that a suite can move time instead of waiting for it. The default,
    /// <see langword="null"/>, says the backend cannot take a clock: the suite then waits in real time (shortly).
    /// </summary>
    /// <param name="clock">The clock, usually a <c>FakeTimeProvider</c>.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The backend (disposed by the test), or <see langword="null"/>.</returns>
    ValueTask<IResultBackend?> CreateBackendAsync(TimeProvider clock, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult<IResultBackend?>(null);

    /// <summary>
    /// Makes a consumer stop as if its process had been killed: it settles nothing and hands nothing back
    /// itself. The default for a provider without leases is to dispose it.
    /// </summary>
    /// <param name="consumer">The consumer.</param>
    /// <returns>A task that completes when the consumer is dead.</returns>
    ValueTask SimulateCrashAsync(IMessageConsumer consumer);

    /// <summary>
    /// Creates the provider's management store over the broker and backend a test made (for the management
    /// suite); <see langword="null"/> when the provider keeps none, which fails that suite.
    /// </summary>
    /// <param name="broker">The test's broker.</param>
    /// <param name="backend">The test's backend.</param>
    /// <returns>The store.</returns>
    ValueTask<IManagementStore?> CreateManagementStoreAsync(IBroker broker, IResultBackend backend) => ValueTask.FromResult<IManagementStore?>(null);
}
