using Conveyor.InMemory;
using Microsoft.Extensions.Logging;

namespace Conveyor.Cli;

/// <summary>
/// Maps connection URLs to providers; the only place that knows every provider. <c>memory://</c> (one process),
/// <c>sqlite://PATH</c> (relative, or <c>sqlite:///abs/path.db</c>).
/// </summary>
internal static class Connections
{
    public const string DefaultUrl = "sqlite://conveyor.db";
    public const string BrokerVariable = "CONVEYOR_BROKER";
    public const string BackendVariable = "CONVEYOR_RESULT_BACKEND";
    public const string QueueVariable = "CONVEYOR_DEFAULT_QUEUE";
    public const string DefaultQueue = "machinery_tasks";

    public static string ResolveBroker(string? url) => Pick(url, BrokerVariable);

    public static string ResolveBackend(string? url) => Pick(url, BackendVariable);

    public static string ResolveQueue(string? queue) =>
        !string.IsNullOrWhiteSpace(queue) ? queue
        : Environment.GetEnvironmentVariable(QueueVariable) is { Length: > 0 } fromEnvironment ? fromEnvironment
        : DefaultQueue;

    private static string Pick(string? url, string variable) =>
        !string.IsNullOrWhiteSpace(url) ? url
        : Environment.GetEnvironmentVariable(variable) is { Length: > 0 } fromEnvironment ? fromEnvironment
        : DefaultUrl;

    public static async Task<Providers> OpenAsync(string brokerUrl, string backendUrl, ILoggerFactory loggerFactory, CancellationToken cancellationToken)
    {
        IBroker? broker = null;
        try
        {
            broker = await OpenBrokerAsync(brokerUrl, loggerFactory, cancellationToken).ConfigureAwait(false);
            var backend = await OpenBackendAsync(backendUrl, loggerFactory, cancellationToken).ConfigureAwait(false);
            return new Providers(broker, backend, brokerUrl, backendUrl);
        }
        catch
        {
            if (broker is not null)
            {
                await broker.DisposeAsync().ConfigureAwait(false);
            }

            throw;
        }
    }

    /// <summary>
    /// Opens the lock store of the result backend's URL: the scheduler's ticks are claimed where the results are
    /// kept (a RabbitMQ broker has no lock; its backend's store serves).
    /// </summary>
    public static async Task<LockHandle> OpenLockAsync(string backendUrl, ILoggerFactory loggerFactory, CancellationToken cancellationToken)
    {
        var (scheme, rest) = Split(backendUrl);
        return scheme switch
        {
            "memory" => new LockHandle(new InMemoryDistributedLock(), null),
            "sqlite" => SqliteConnections.OpenLock(rest, backendUrl, loggerFactory),
            "redis" or "rediss" or "redis+sentinel" => await RedisConnections.OpenLockAsync(backendUrl, loggerFactory, cancellationToken).ConfigureAwait(false),
            _ => throw Unsupported(backendUrl, "result backend"),
        };
    }

    private static ValueTask<IBroker> OpenBrokerAsync(string url, ILoggerFactory loggerFactory, CancellationToken cancellationToken)
    {
        var (scheme, rest) = Split(url);
        return scheme switch
        {
            "memory" => ValueTask.FromResult<IBroker>(new InMemoryBroker()),
            "sqlite" => ValueTask.FromResult(SqliteConnections.OpenBroker(rest, url, loggerFactory)),
            "redis" or "rediss" or "redis+sentinel" => RedisConnections.OpenBrokerAsync(url, loggerFactory, cancellationToken),
            "amqp" or "amqps" => AmqpConnections.OpenBrokerAsync(url, loggerFactory, cancellationToken),
            "sqs" => ValueTask.FromResult(AwsConnections.OpenBroker(url, loggerFactory)),
            _ => throw Unsupported(url, "broker"),
        };
    }

    private static ValueTask<IResultBackend> OpenBackendAsync(string url, ILoggerFactory loggerFactory, CancellationToken cancellationToken)
    {
        var (scheme, rest) = Split(url);
        return scheme switch
        {
            "memory" => ValueTask.FromResult<IResultBackend>(new InMemoryResultBackend()),
            "sqlite" => ValueTask.FromResult(SqliteConnections.OpenBackend(rest, url, loggerFactory)),
            "redis" or "rediss" or "redis+sentinel" => RedisConnections.OpenBackendAsync(url, loggerFactory, cancellationToken),
            "dynamodb" => ValueTask.FromResult(AwsConnections.OpenBackend(url, loggerFactory)),
            _ => throw Unsupported(url, "result backend"),
        };
    }

    private static (string Scheme, string Remainder) Split(string url)
    {
        var separator = url.IndexOf("://", StringComparison.Ordinal);
        if (separator <= 0)
        {
            throw new CliException($"'{url}' is not a connection URL; use sqlite://PATH, memory://, redis://HOST:PORT, amqp://HOST:PORT, sqs://REGION/ or dynamodb://REGION");
        }

        return (url[..separator].ToLowerInvariant(), url[(separator + 3)..]);
    }

    private static CliException Unsupported(string url, string role) =>
        new($"'{url}' is not a supported {role} URL; use sqlite://PATH, redis://HOST:PORT, amqp://HOST:PORT (broker only), sqs://REGION/ (broker only), dynamodb://REGION (result backend only) or memory://");
}

/// <summary>An open broker and backend, disposed together.</summary>
internal sealed record Providers(IBroker Broker, IResultBackend Backend, string BrokerUrl, string BackendUrl) : IAsyncDisposable
{
    public async ValueTask DisposeAsync()
    {
        await Broker.DisposeAsync().ConfigureAwait(false);
        await Backend.DisposeAsync().ConfigureAwait(false);
    }
}

/// <summary>A lock store and what closes it.</summary>
internal sealed record LockHandle(IDistributedLock Lock, IAsyncDisposable? Owner) : IAsyncDisposable
{
    public ValueTask DisposeAsync() => Owner?.DisposeAsync() ?? ValueTask.CompletedTask;
}
