using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Conveyor.Hosting;

/// <summary>
/// Connects to the configured engines when the host starts, asynchronously, before anything is created on them
/// (<see cref="ConveyorConnections.ConnectAsync"/>): with <see cref="ConveyorOptions.FailFast"/> the start fails
/// with one line; without, it goes on and the health checks tell.
/// </summary>
internal sealed class ConveyorStartup(ConveyorConnections connections) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken) => connections.ConnectAsync(cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}

/// <summary>
/// A worker as a hosted service, made when the host starts rather than when the host resolves its hosted services:
/// the broker and backend it needs are created only after <see cref="ConveyorConnections.ConnectAsync"/>, so no
/// provider connects synchronously on the start path.
/// </summary>
internal sealed class ConveyorWorkerService(IServiceProvider services, string name) : IHostedService, IDisposable
{
    private ConveyorWorker? _worker;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        await services.GetRequiredService<ConveyorConnections>().ConnectAsync(cancellationToken).ConfigureAwait(false);
        _worker = new ConveyorWorker(
            services.GetRequiredService<ConveyorClient>(),
            services.GetRequiredService<TaskRegistry>(),
            services.GetRequiredService<IOptionsMonitor<WorkerOptions>>().Get(name),
            services.GetService<ILoggerFactory>(),
            services);
        await _worker.StartAsync(cancellationToken).ConfigureAwait(false);
    }

    public Task StopAsync(CancellationToken cancellationToken) => _worker?.StopAsync(cancellationToken) ?? Task.CompletedTask;

    public void Dispose() => _worker?.Dispose();
}
