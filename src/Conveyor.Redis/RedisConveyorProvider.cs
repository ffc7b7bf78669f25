using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace Conveyor.Redis;

/// <summary>
/// The <c>redis://</c>, <c>rediss://</c> and <c>redis+sentinel://</c> provider for configuration-driven setup
/// (<c>UseRedis()</c>). One multiplexer per URL and container, shared by the broker, backend and lock on it, as
/// StackExchange.Redis intends; the container disposes the provider after what it created, so the multiplexer closes
/// last. A host opens it asynchronously at start (<see cref="ConnectAsync"/>); only a component created before that,
/// outside a host's start, connects synchronously.
/// </summary>
internal sealed class RedisConveyorProvider(IEnumerable<IConfigureOptions<RedisConveyorOptions>> configure) : IConveyorProvider, IAsyncDisposable
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, ConnectionMultiplexer> _connections = new(StringComparer.Ordinal);

    public string Name => "Redis";

    public IReadOnlyList<string> Schemes { get; } = ["redis", "rediss", "redis+sentinel"];

    public ConveyorComponents Components => ConveyorComponents.Broker | ConveyorComponents.ResultBackend | ConveyorComponents.Lock;

    public IReadOnlyList<string> UrlForms { get; } =
    [
        "redis://[[user]:password@]host[:port][/db]",
        "rediss://… (TLS)",
        "redis+sentinel://[[user]:password@]host[:port][,host[:port]…]/master-name[/db]",
        "…?visibility_timeout=30&heartbeat_interval=10&result_ttl=3600&key_prefix=app1: (seconds)",
    ];

    public async ValueTask ConnectAsync(string url, IServiceProvider services, CancellationToken cancellationToken = default)
    {
        var key = RedisUrl.ConnectionPart(url);
        ConnectionMultiplexer? connection;
        lock (_gate)
        {
            _connections.TryGetValue(key, out connection);
        }

        if (connection is null)
        {
            // Not aborting on a failed first connect: the multiplexer keeps retrying in the background, so a host
            // that starts anyway recovers on its own once Redis is back.
            var opened = await ConnectionMultiplexer.ConnectAsync(Configuration(key)).WaitAsync(cancellationToken).ConfigureAwait(false);
            lock (_gate)
            {
                if (!_connections.TryAdd(key, opened))
                {
                    connection = _connections[key];
                }
            }

            if (connection is not null)
            {
                await opened.DisposeAsync().ConfigureAwait(false);
            }
            else
            {
                connection = opened;
            }
        }

        if (!connection.IsConnected)
        {
            throw new RedisConnectionException(ConnectionFailureType.UnableToConnect, $"no Redis answers at {string.Join(", ", connection.GetEndPoints().Select(e => e.ToString()))}");
        }
    }

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
                connection = ConnectionMultiplexer.Connect(Configuration(key));
                _connections[key] = connection;
            }

            return connection;
        }
    }

    // A host must start even while Redis is down (it reconnects in the background; health checks say so).
    private static ConfigurationOptions Configuration(string connectionPart)
    {
        var configuration = RedisUrl.Parse(connectionPart);
        configuration.AbortOnConnectFail = false;
        configuration.ClientName ??= $"conveyor-{Environment.ProcessId}";
        return configuration;
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
