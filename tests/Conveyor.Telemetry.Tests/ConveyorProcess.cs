using Conveyor.Diagnostics;
using Conveyor.Redis;
using StackExchange.Redis;

namespace Conveyor.Telemetry.Tests;

/// <summary>
/// A simulated process on the shared Redis: its own connection, broker, backend, <see cref="ConveyorDiagnostics"/>
/// (meter), client and OpenTelemetry providers; and, for a worker process, a <see cref="ConveyorWorker"/>. A
/// producer process and a worker process share nothing but Redis, so a trace that connects them went through the
/// message headers.
/// </summary>
public sealed class ConveyorProcess : IAsyncDisposable
{
    private readonly ConnectionMultiplexer _redis;
    private ConveyorWorker? _worker;

    private ConveyorProcess(ConnectionMultiplexer redis, RedisKeyspace keyspace)
    {
        _redis = redis;
        Telemetry = new TelemetryCapture();
        Diagnostics = new ConveyorDiagnostics();
        Broker = new RedisBroker(redis, keyspace.Options);
        Backend = new RedisResultBackend(redis, keyspace.Options);
        Client = new ConveyorClient(Broker, Backend, new ConveyorClientOptions { DefaultQueue = keyspace.Queue }, diagnostics: Diagnostics);
    }

    public TelemetryCapture Telemetry { get; }

    public ConveyorDiagnostics Diagnostics { get; }

    public RedisBroker Broker { get; }

    public RedisResultBackend Backend { get; }

    public ConveyorClient Client { get; }

    public static async Task<ConveyorProcess> StartAsync(RedisKeyspace keyspace) => new(await RedisTestServer.ConnectAsync(), keyspace);

    /// <summary>Starts a worker on the keyspace's queue, with short retry delays unless <paramref name="options"/> says otherwise.</summary>
    public async Task<ConveyorWorker> StartWorkerAsync(TaskRegistry registry, WorkerOptions? options = null)
    {
        options ??= new WorkerOptions();
        options.Concurrency = Math.Max(options.Concurrency, 4);
        if (options.RetryPolicy is FibonacciRetryPolicy)
        {
            options.RetryPolicy = new ExponentialRetryPolicy(TimeSpan.FromMilliseconds(10), TimeSpan.FromMilliseconds(20));
        }

        _worker = new ConveyorWorker(Client, registry, options);
        await _worker.StartAsync(CancellationToken.None);
        return _worker;
    }

    public async ValueTask DisposeAsync()
    {
        if (_worker is not null)
        {
            await _worker.StopAsync(CancellationToken.None);
            _worker.Dispose();
        }

        await Broker.DisposeAsync();
        await Backend.DisposeAsync();
        Telemetry.Dispose();
        Diagnostics.Dispose();
        await _redis.DisposeAsync();
    }
}
