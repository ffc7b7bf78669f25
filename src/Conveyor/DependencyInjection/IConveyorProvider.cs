namespace Conveyor;

/// <summary>The parts of Conveyor a provider can supply from a connection URL.</summary>
[Flags]
public enum ConveyorComponents
{
    /// <summary>Nothing.</summary>
    None = 0,

    /// <summary>An <see cref="IBroker"/>.</summary>
    Broker = 1,

    /// <summary>An <see cref="IResultBackend"/>.</summary>
    ResultBackend = 2,

    /// <summary>An <see cref="IDistributedLock"/>.</summary>
    Lock = 4,
}

/// <summary>
/// A provider package's entry point for configuration-driven setup: it claims URL schemes (<c>redis://</c>,
/// <c>sqlite://</c>, …) and turns URLs of those schemes into brokers, result backends and locks. Registered by the
/// provider's <c>Use…()</c> method; the host picks the provider whose scheme a configured URL has, so that
/// <c>Conveyor:Broker</c> alone decides where tasks go.
/// </summary>
public interface IConveyorProvider
{
    /// <summary>The provider's name, for messages (<c>"Redis"</c>).</summary>
    string Name { get; }

    /// <summary>The URL schemes the provider handles, lower case, without <c>://</c>.</summary>
    IReadOnlyList<string> Schemes { get; }

    /// <summary>What the provider can supply.</summary>
    ConveyorComponents Components { get; }

    /// <summary>
    /// The URL forms the provider takes, for help texts and error messages (<c>redis://[[user]:password@]host[:port][/db]</c>).
    /// The default value is each scheme followed by <c>://…</c>.
    /// </summary>
    IReadOnlyList<string> UrlForms => [.. Schemes.Select(scheme => scheme + "://…")];

    /// <summary>Checks a URL without connecting.</summary>
    /// <param name="url">The URL; its scheme is one of <see cref="Schemes"/>.</param>
    /// <returns><see langword="null"/> when the URL is usable; otherwise what is wrong with it, in one line.</returns>
    string? Validate(string url);

    /// <summary>
    /// Connects to the engine behind a URL and checks that it answers. A host calls it when it starts, before it
    /// creates anything on the URL, so that creating does no blocking I/O afterwards, and so that it can fail at
    /// start (<see cref="ConveyorOptions.FailFast"/>) or start anyway and report unhealthy. Whatever it opens stays
    /// open for the components created afterwards, and keeps reconnecting in the background after a failure.
    /// The default implementation does nothing (a provider that connects on first use, or has nothing to connect).
    /// </summary>
    /// <param name="url">A URL that passed <see cref="Validate"/>.</param>
    /// <param name="services">The container.</param>
    /// <param name="cancellationToken">Cancels the attempt.</param>
    /// <returns>A task that completes when the engine answered.</returns>
    /// <exception cref="Exception">The engine does not answer; the message is one line without secrets.</exception>
    ValueTask ConnectAsync(string url, IServiceProvider services, CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

    /// <summary>Creates a broker. Connecting may be deferred to first use.</summary>
    /// <param name="url">A URL that passed <see cref="Validate"/>.</param>
    /// <param name="services">The container, for logging, the clock and shared connections.</param>
    /// <returns>The broker; the container disposes it.</returns>
    IBroker CreateBroker(string url, IServiceProvider services);

    /// <summary>Creates a result backend. Connecting may be deferred to first use.</summary>
    /// <param name="url">A URL that passed <see cref="Validate"/>.</param>
    /// <param name="services">The container.</param>
    /// <returns>The result backend; the container disposes it.</returns>
    IResultBackend CreateResultBackend(string url, IServiceProvider services);

    /// <summary>Creates a distributed lock (used by the periodic scheduler).</summary>
    /// <param name="url">A URL that passed <see cref="Validate"/>.</param>
    /// <param name="services">The container.</param>
    /// <returns>The lock.</returns>
    IDistributedLock CreateLock(string url, IServiceProvider services);

    /// <summary>
    /// Creates the management store (<see cref="IManagementStore"/>: revocations, pauses, worker records,
    /// progress, and listings) on the engine at <paramref name="url"/>, sharing the connection of the provider's
    /// other components; <see langword="null"/> when the provider keeps none. The default keeps none.
    /// </summary>
    /// <param name="url">The URL of the broker, or of the result backend when the broker's provider keeps no store.</param>
    /// <param name="ownsBroker">Whether <paramref name="url"/> is the broker's, so that the store may list and change its messages.</param>
    /// <param name="services">The application's services.</param>
    /// <returns>The store, or <see langword="null"/>.</returns>
    IManagementStore? CreateManagementStore(string url, bool ownsBroker, IServiceProvider services) => null;

    /// <summary>
    /// For a broker that keeps no management store of its own (<see cref="CreateManagementStore"/> gave
    /// <see langword="null"/>): wraps the result backend's store to add what the broker can list itself (RabbitMQ:
    /// its pending and scheduled messages, through the management plugin's HTTP API when one is configured). The
    /// default returns <paramref name="backendStore"/> as it is.
    /// </summary>
    /// <param name="brokerUrl">The broker's URL.</param>
    /// <param name="backendStore">The result backend's store: the control state, workers, progress, finished states.</param>
    /// <param name="services">The application's services.</param>
    /// <returns>The store to use.</returns>
    IManagementStore ExtendManagementStore(string brokerUrl, IManagementStore backendStore, IServiceProvider services) => backendStore;
}
