using System.Runtime.CompilerServices;

namespace Conveyor.Conformance;

/// <summary>
/// One test's world: a broker, a backend, a client on a queue of its own, a registry, and workers started on
/// demand. Disposing stops the workers and the providers.
/// </summary>
public sealed class ConveyorTestContext : IAsyncDisposable
{
    private readonly List<ConveyorWorker> _workers = [];

    private ConveyorTestContext(IBroker broker, IResultBackend backend, string queue)
    {
        Broker = broker;
        Backend = backend;
        Queue = queue;
        Client = new ConveyorClient(broker, backend, new ConveyorClientOptions { DefaultQueue = queue, MaxResultPollInterval = TimeSpan.FromMilliseconds(20) });
    }

    /// <summary>The broker.</summary>
    public IBroker Broker { get; }

    /// <summary>The backend.</summary>
    public IResultBackend Backend { get; }

    /// <summary>The test's own queue.</summary>
    public string Queue { get; }

    /// <summary>The client, publishing to <see cref="Queue"/> by default.</summary>
    public ConveyorClient Client { get; }

    /// <summary>The handlers the workers run.</summary>
    public TaskRegistry Registry { get; } = new();

    /// <summary>A generous bound for waits, so a broken provider fails instead of hanging.</summary>
    public static TimeSpan Timeout { get; } = TimeSpan.FromSeconds(30);

    /// <summary>Creates a context with a queue named after the test.</summary>
    /// <param name="factory">The provider factory.</param>
    /// <param name="testName">The calling test (filled in by the compiler).</param>
    /// <returns>The context.</returns>
    public static async Task<ConveyorTestContext> CreateAsync(IConveyorProviderFactory factory, [CallerMemberName] string testName = "")
    {
        ArgumentNullException.ThrowIfNull(factory);
        var broker = await factory.CreateBrokerAsync();
        var backend = await factory.CreateBackendAsync();
        var queue = $"conformance.{testName}.{Guid.NewGuid():N}"[..Math.Min(120, 30 + testName.Length + 12)];
        return new ConveyorTestContext(broker, backend, queue);
    }

    /// <summary>Starts a worker on the test's queue.</summary>
    /// <param name="configure">Changes to the default options (concurrency 4, exponential retries of a few ms).</param>
    /// <returns>The running worker.</returns>
    public async Task<ConveyorWorker> StartWorkerAsync(Action<WorkerOptions>? configure = null)
    {
        var options = new WorkerOptions
        {
            Queue = Queue,
            Concurrency = 4,
            RetryPolicy = new ExponentialRetryPolicy(TimeSpan.FromMilliseconds(5), TimeSpan.FromMilliseconds(20)),
            ShutdownGracePeriod = TimeSpan.FromSeconds(5),
            Name = $"worker-{_workers.Count + 1}-{Guid.NewGuid():N}",
        };
        configure?.Invoke(options);
        var worker = new ConveyorWorker(Client, Registry, options);
        _workers.Add(worker);
        await worker.StartAsync(CancellationToken.None);
        return worker;
    }

    /// <summary>Stops a worker and waits for it.</summary>
    /// <param name="worker">The worker.</param>
    /// <returns>A task that completes when the worker stopped.</returns>
    public async Task StopWorkerAsync(ConveyorWorker worker)
    {
        ArgumentNullException.ThrowIfNull(worker);
        using var timeout = new CancellationTokenSource(Timeout);
        await worker.StopAsync(timeout.Token);
        await (worker.ExecuteTask ?? Task.CompletedTask).WaitAsync(Timeout);
    }

    /// <summary>Waits until a condition holds, or fails the test.</summary>
    /// <param name="condition">The condition.</param>
    /// <param name="what">What is awaited, for the failure message.</param>
    /// <param name="timeout">How long; <see cref="Timeout"/> when <see langword="null"/>.</param>
    /// <returns>A task that completes when the condition holds.</returns>
    public static async Task EventuallyAsync(Func<Task<bool>> condition, string what, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(condition);
        var deadline = DateTime.UtcNow + (timeout ?? Timeout);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"Timed out waiting for: {what}");
            }

            await Task.Delay(10);
        }
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        foreach (var worker in _workers)
        {
            using var timeout = new CancellationTokenSource(Timeout);
            try
            {
                await worker.StopAsync(timeout.Token);
            }
            finally
            {
                worker.Dispose();
            }
        }

        try
        {
            await Broker.PurgeAsync(Queue);
        }
        catch (ObjectDisposedException)
        {
        }

        await Broker.DisposeAsync();
        await Backend.DisposeAsync();
    }
}
