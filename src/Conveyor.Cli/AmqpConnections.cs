using Microsoft.Extensions.Logging;

namespace Conveyor.Cli;

/// <summary>Opens the RabbitMQ provider for amqp:// and amqps:// URLs.</summary>
internal static class AmqpConnections
{
    public static ValueTask<IBroker> OpenBrokerAsync(string url, ILoggerFactory loggerFactory, CancellationToken cancellationToken) =>
        throw new CliException($"{url}: the RabbitMQ provider is not part of this build yet");
}
