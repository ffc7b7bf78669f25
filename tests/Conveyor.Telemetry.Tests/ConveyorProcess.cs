using Conveyor.Diagnostics;
using Conveyor.Redis;
using StackExchange.Redis;

namespace Conveyor.Telemetry.Tests;

/// <summary>
/// A simulated process on the shared Redis: its own connection, broker, backend, client and OpenTelemetry providers;
/// and, for a worker process, a <see cref="ConveyorWorker"/>. A producer process and a worker process share nothing
/// but Redis and <see cref="Diagnostics"/>, so a trace that connects them went through the message headers.
/// </summary>
/// <remarks>
/// Every process of the test run records on one <see cref="ConveyorDiagnostics"/> (one "Conveyor" meter), never
/// disposed: the OpenTelemetry SDK stops exporting every meter of a name when one meter of that name is disposed
/// (opentelemetry-dotnet#6412), so a test that disposed its own would silence the others' instruments. Tests tell
/// their measurements apart by the queue tag.
/// </remarks>
public sealed class ConveyorProcess : IAsyncDisposable
{
    private readonly ConnectionMultiplexer _redis;
    private ConveyorWorker? _worker;

    private ConveyorProcess(ConnectionMultiplexer redis, RedisKeyspace keyspace)
    {
        _redis = redis;
        Telemetry = new TelemetryCapture();
        Broker = new RedisBroker(redis, keyspace.Options);
        Backend = new RedisResultBackend(redis, keyspace.Options);
        Client = new ConveyorClient(Broker, Backend, new ConveyorClientOptions { DefaultQueue = keyspace.Queue }, diagnostics: SharedDiagnostics);
    }

    public TelemetryCapture Telemetry { get; }

    /// <summary>The meter every simulated process of the test run records on.</summary>
    public static ConveyorDiagnostics SharedDiagnostics { get; } = new();

    public ConveyorDiagnostics Diagnostics => SharedDiagnostics;

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
        await _redis.DisposeAsync();
    }
}
