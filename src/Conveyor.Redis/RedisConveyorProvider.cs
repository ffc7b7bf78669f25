using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using System.Net.Sockets;
using Conveyor.Redis.Internal;
using Conveyor.Tls;
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
    private readonly Dictionary<string, Task<ConnectionMultiplexer>> _connections = new(StringComparer.Ordinal);

    public string Name => "Redis";

    public IReadOnlyList<string> Schemes { get; } = ["redis", "rediss", "redis+sentinel"];

    public ConveyorComponents Components => ConveyorComponents.Broker | ConveyorComponents.ResultBackend | ConveyorComponents.Lock;

    public IReadOnlyList<string> UrlForms { get; } =
    [
        "redis://[[user]:password@]host[:port][/db]",
        "rediss://… (TLS)",
        "redis+sentinel://[[user]:password@]host[:port][,host[:port]…]/master-name[/db]",
        "…?visibility_timeout=6&heartbeat_interval=2&result_ttl=3600&key_prefix=app1:&ca=/path/ca.pem (seconds; ca: a private CA for rediss://)",
        "redis://node:7000 on a Redis Cluster: its layout is detected; ?cluster=true forces it",
    ];

    public async ValueTask ConnectAsync(string url, IServiceProvider services, CancellationToken cancellationToken = default)
    {
        var key = RedisUrl.ConnectionPart(url);
        Task<ConnectionMultiplexer>? existing;
        lock (_gate)
        {
            _connections.TryGetValue(key, out existing);
        }

        if (existing is not null)
        {
            var connection = await existing.WaitAsync(cancellationToken).ConfigureAwait(false);
            if (!connection.IsConnected)
            {
                throw new RedisConnectionException(ConnectionFailureType.UnableToConnect, $"no Redis answers at {EndPoints(connection.GetEndPoints())}");
            }

            await RedisAccessCheck.VerifyAsync(connection, RedisUrl.Parse(key), Options(url).KeyPrefix, cancellationToken).ConfigureAwait(false);
            return;
        }

        try
        {
            // A refused or unroutable endpoint answers at once through a plain socket; StackExchange.Redis may wait
            // out its whole connect timeout first. The client's connect then checks the rest (TLS, password, role).
            var configuration = Configuration(key, abortOnConnectFail: true);
            await ProbeAsync(configuration.EndPoints, cancellationToken).ConfigureAwait(false);
            if (configuration.Ssl)
            {
                // A refused certificate can make StackExchange.Redis wait out its whole connect timeout, or fail with
                // a bare AuthenticationFailure: one handshake of our own, validated the same way, says why at once.
                _ = RedisUrl.Parse(key, out var authority);
                var endPoint = configuration.EndPoints[0];
                if (await CustomCertificateAuthority.DiagnoseAsync(endPoint, configuration.SslHost ?? HostOf(endPoint), authority, cancellationToken).ConfigureAwait(false) is { } problem)
                {
                    throw new UnauthorizedAccessException($"Redis at {EndPoints([endPoint])}: {problem}");
                }
            }
            var connected = await ConnectionMultiplexer.ConnectAsync(configuration).WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                await RedisAccessCheck.VerifyAsync(connected, configuration, Options(url).KeyPrefix, cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                await connected.DisposeAsync().ConfigureAwait(false);
                throw;
            }

            bool added;
            lock (_gate)
            {
                added = _connections.TryAdd(key, Task.FromResult(connected));
            }

            if (!added)
            {
                await connected.DisposeAsync().ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is RedisConnectionException or OperationCanceledException)
        {
            if (services.GetService<IOptions<ConveyorOptions>>()?.Value.FailFast != true)
            {
                // Starting anyway: a multiplexer that keeps retrying in the background, so the host recovers on its
                // own once Redis is back, opened here so that nothing connects synchronously later.
                Task<ConnectionMultiplexer> retrying;
                lock (_gate)
                {
                    if (!_connections.TryGetValue(key, out retrying!))
                    {
                        retrying = ConnectionMultiplexer.ConnectAsync(Configuration(key, abortOnConnectFail: false));
                        _connections[key] = retrying;
                    }
                }

                // Its first attempt is bounded by the client's own connect timeout (5 s by default), not by the
                // caller's token: the components created next must find it made, or they would block on it.
                await retrying.ConfigureAwait(false);
            }

            if (ex is not RedisConnectionException failure)
            {
                throw;
            }

            throw new RedisConnectionException(failure.FailureType, RedisConnectFailure.Explain(failure, EndPoints(RedisUrl.Parse(key).EndPoints)), failure);
        }
    }

    private static async Task ProbeAsync(EndPointCollection endPoints, CancellationToken cancellationToken)
    {
        SocketException? refused = null;
        foreach (var endPoint in endPoints)
        {
            try
            {
                using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
                await socket.ConnectAsync(endPoint, cancellationToken).ConfigureAwait(false);
                return;
            }
            catch (SocketException ex)
            {
                refused = ex;
            }
        }

        throw new RedisConnectionException(ConnectionFailureType.UnableToConnect, refused?.Message ?? "no endpoint", refused);
    }

    private static string HostOf(System.Net.EndPoint endPoint) => endPoint switch
    {
        System.Net.DnsEndPoint dns => dns.Host,
        System.Net.IPEndPoint ip => ip.Address.ToString(),
        _ => endPoint.ToString() ?? string.Empty,
    };

    private static string EndPoints(IEnumerable<System.Net.EndPoint> endPoints) => string.Join(", ", endPoints.Select(e => e is System.Net.DnsEndPoint dns ? $"{dns.Host}:{dns.Port}" : e.ToString()));

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

    public IManagementStore? CreateManagementStore(string url, bool ownsBroker, IServiceProvider services) =>
        new RedisManagementStore(Connect(url), Options(url), ownsBroker, services.GetService<TimeProvider>());

    public async ValueTask DisposeAsync()
    {
        Task<ConnectionMultiplexer>[] connections;
        lock (_gate)
        {
            connections = [.. _connections.Values];
            _connections.Clear();
        }

        foreach (var pending in connections)
        {
            ConnectionMultiplexer connection;
            try
            {
                connection = await pending.ConfigureAwait(false);
            }
            catch (RedisConnectionException)
            {
                continue;
            }

            await connection.CloseAsync().ConfigureAwait(false);
            await connection.DisposeAsync().ConfigureAwait(false);
        }
    }

    private ConnectionMultiplexer Connect(string url)
    {
        // URLs that differ only in Conveyor's query settings share a connection.
        var key = RedisUrl.ConnectionPart(url);
        Task<ConnectionMultiplexer>? connection;
        lock (_gate)
        {
            if (!_connections.TryGetValue(key, out connection))
            {
                // Only outside a host's start (which calls ConnectAsync first): a synchronous connect.
                connection = Task.FromResult(ConnectionMultiplexer.Connect(Configuration(key, abortOnConnectFail: false)));
                _connections[key] = connection;
            }
        }

        // Completed, unless a start that went on without Redis is still making its first attempt.
        return connection.IsCompletedSuccessfully ? connection.Result : connection.GetAwaiter().GetResult();
    }

    // A host must start even while Redis is down (it reconnects in the background; health checks say so).
    private static ConfigurationOptions Configuration(string connectionPart, bool abortOnConnectFail)
    {
        var configuration = RedisUrl.Parse(connectionPart);
        configuration.AbortOnConnectFail = abortOnConnectFail;
        if (abortOnConnectFail)
        {
            // One attempt: with retries StackExchange.Redis waits out ConnectTimeout even on a refused connection.
            // ConnectRetry only governs this first connect; once connected, the multiplexer reconnects by itself.
            configuration.ConnectRetry = 1;
        }

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
