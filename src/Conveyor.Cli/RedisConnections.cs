using Microsoft.Extensions.Logging;

namespace Conveyor.Cli;

/// <summary>Opens the Redis provider for redis://, rediss:// and redis+sentinel:// URLs.</summary>
internal static class RedisConnections
{
    public static ValueTask<IBroker> OpenBrokerAsync(string url, ILoggerFactory loggerFactory, CancellationToken cancellationToken) =>
        throw new CliException($"{url}: the Redis provider is not part of this build yet");

    public static ValueTask<IResultBackend> OpenBackendAsync(string url, ILoggerFactory loggerFactory, CancellationToken cancellationToken) =>
        throw new CliException($"{url}: the Redis provider is not part of this build yet");
}
