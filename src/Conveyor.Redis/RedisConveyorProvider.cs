using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace Conveyor.Redis;

/// <summary>
/// The <c>redis://</c>, <c>rediss://</c> and <c>redis+sentinel://</c> provider for configuration-driven setup
/// (<c>UseRedis()</c>). One multiplexer per URL and container, shared by the broker, backend and lock on it, as
/// StackExchange.Redis intends; the container disposes the provider after what it created, so the multiplexer closes
/// last.
/// </summary>
internal sealed class RedisConveyorProvider(IEnumerable<IConfigureOptions<RedisConveyorOptions>> configure) : IConveyorProvider, IAsyncDisposable
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, ConnectionMultiplexer> _connections = new(StringComparer.Ordinal);

    public string Name => "Redis";

    public IReadOnlyList<string> Schemes { get; } = ["redis", "rediss", "redis+sentinel"];

    public ConveyorComponents Components => ConveyorComponents.Broker | ConveyorComponents.ResultBackend | ConveyorComponents.Lock;

    public string? Validate(string url)
    {
        try
        {
            RedisUrl.Parse(url);
            return null;
        }
        catch (FormatException ex)
        {
            return ex.Message;
        }
    }

    public IBroker CreateBroker(string url, IServiceProvider services) =>
        new RedisBroker(Connect(url), Options(url), services.GetService<TimeProvider>(), services.GetService<ILoggerFactory>());

    public IResultBackend CreateResultBackend(string url, IServiceProvider services) =>
        new RedisResultBackend(Connect(url), Options(url), services.GetService<TimeProvider>(), services.GetService<ILoggerFactory>());

    public IDistributedLock CreateLock(string url, IServiceProvider services) =>
        new RedisDistributedLock(Connect(url), Options(url), services.GetService<TimeProvider>(), services.GetService<ILoggerFactory>());

    public async ValueTask DisposeAsync()
    {
        ConnectionMultiplexer[] connections;
        lock (_gate)
        {
            connections = [.. _connections.Values];
            _connections.Clear();
        }

        foreach (var connection in connections)
        {
            await connection.CloseAsync().ConfigureAwait(false);
            await connection.DisposeAsync().ConfigureAwait(false);
        }
    }

    private ConnectionMultiplexer Connect(string url)
    {
        // URLs that differ only in Conveyor's query settings share a connection.
        var key = RedisUrl.ConnectionPart(url);
        lock (_gate)
        {
            if (!_connections.TryGetValue(key, out var connection))
            {
                var configuration = RedisUrl.Parse(key);

                // A host must start even while Redis is down (it reconnects in the background; health checks say
                // so), unlike the CLI, which fails at once.
                configuration.AbortOnConnectFail = false;
                configuration.ClientName ??= $"conveyor-{Environment.ProcessId}";
                connection = ConnectionMultiplexer.Connect(configuration);
                _connections[key] = connection;
            }

            return connection;
        }
    }

    // The URL's query settings first, then code (UseRedis's configure).
    private RedisConveyorOptions Options(string url)
    {
        var options = new RedisConveyorOptions();
        RedisUrl.ApplyOptions(url, options);
        foreach (var action in configure)
        {
            action.Configure(options);
        }

        return options;
    }
}
