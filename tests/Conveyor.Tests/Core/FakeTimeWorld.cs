using Conveyor.InMemory;
using Microsoft.Extensions.Time.Testing;

namespace Conveyor.Tests.Core;

/// <summary>In-memory providers, a client and workers, all on one fake clock.</summary>
internal sealed class FakeTimeWorld : IAsyncDisposable
{
    private readonly List<ConveyorWorker> _workers = [];

    public FakeTimeWorld(TimeSpan? resultTtl = null)
    {
        Broker = new InMemoryBroker(Time);
        Backend = new InMemoryResultBackend(resultTtl, Time);
        Client = new ConveyorClient(Broker, Backend, new ConveyorClientOptions { DefaultQueue = "tasks" }, Time);
    }

    public FakeTimeProvider Time { get; } = new(new DateTimeOffset(2026, 11, 26, 12, 0, 0, TimeSpan.Zero));

    public InMemoryBroker Broker { get; }

    public InMemoryResultBackend Backend { get; }

    public ConveyorClient Client { get; }

    public TaskRegistry Registry { get; } = new();

    public async Task<ConveyorWorker> StartWorkerAsync(Action<WorkerOptions>? configure = null)
    {
        var options = new WorkerOptions { Concurrency = 2, ShutdownGracePeriod = TimeSpan.FromSeconds(1) };
        configure?.Invoke(options);
        var worker = new ConveyorWorker(Client, Registry, options);
        _workers.Add(worker);
        await worker.StartAsync(CancellationToken.None);
        return worker;
    }

    /// <summary>Waits in real time (the worker runs on the thread pool) until a condition holds.</summary>
    public static Task EventuallyAsync(Func<bool> condition, string what) => EventuallyAsync(() => Task.FromResult(condition()), what);

    /// <summary>Waits in real time until an asynchronous condition holds.</summary>
    public static async Task EventuallyAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"Timed out waiting for: {what}");
            await Task.Delay(5);
        }
    }

    public async Task<TaskState?> StateAsync(string taskId) => (await Backend.GetStateAsync(taskId))?.State;

    public async ValueTask DisposeAsync()
    {
        foreach (var worker in _workers)
        {
            // Shutdown waits on the fake clock's grace period: advance it so StopAsync returns.
            var stopping = worker.StopAsync(CancellationToken.None);
            Time.Advance(TimeSpan.FromSeconds(2));
            await stopping;
            worker.Dispose();
        }

        await Broker.DisposeAsync();
        await Backend.DisposeAsync();
    }
}
