using Conveyor.RabbitMQ;
using Microsoft.Extensions.Logging;
using RabbitMQ.Client.Exceptions;

namespace Conveyor.Cli;

/// <summary>
/// Opens the RabbitMQ provider for amqp:// and amqps:// URLs (several, comma-separated, for failover). The broker
/// connects at once, so that a wrong URL or an absent RabbitMQ is a one-line error at startup; once connected, the
/// client recovers by itself after a broker restart, and workers and producers resume.
/// </summary>
internal static class AmqpConnections
{
    public static async ValueTask<IBroker> OpenBrokerAsync(string url, ILoggerFactory loggerFactory, CancellationToken cancellationToken)
    {
        RabbitMqBrokerOptions options;
        try
        {
            options = AmqpUrl.Parse(url);
        }
        catch (FormatException ex)
        {
            throw new CliException(ex.Message);
        }

        var broker = new RabbitMqBroker(options, loggerFactory: loggerFactory);
        try
        {
            await broker.ConnectAsync(cancellationToken).ConfigureAwait(false);
            return broker;
        }
        catch (Exception ex) when (ex is BrokerUnreachableException or OperationInterruptedException or AuthenticationFailureException or IOException or TimeoutException)
        {
            await broker.DisposeAsync().ConfigureAwait(false);
            throw new CliException($"{Redact(url)}: cannot connect to RabbitMQ ({(ex.InnerException ?? ex).Message})");
        }
    }

    private static string Redact(string url) =>
        string.Join(',', url.Split(',').Select(part => Uri.TryCreate(part.Trim(), UriKind.Absolute, out var uri) && uri.UserInfo.Contains(':', StringComparison.Ordinal)
            ? new UriBuilder(uri) { Password = "***" }.Uri.ToString()
            : part));
}
