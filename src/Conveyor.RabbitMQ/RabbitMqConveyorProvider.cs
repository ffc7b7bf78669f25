using Conveyor.RabbitMQ.Internal;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Conveyor.RabbitMQ;

/// <summary>
/// The <c>amqp://</c> and <c>amqps://</c> provider for configuration-driven setup (<c>UseRabbitMq()</c>): a broker
/// only; results go to a Redis or SQLite backend.
/// </summary>
internal sealed class RabbitMqConveyorProvider(IEnumerable<IConfigureOptions<RabbitMqBrokerOptions>> configure) : IConveyorProvider
{
    public string Name => "RabbitMQ";

    public IReadOnlyList<string> Schemes { get; } = ["amqp", "amqps"];

    public ConveyorComponents Components => ConveyorComponents.Broker;

    public IReadOnlyList<string> UrlForms { get; } =
    [
        "amqp://user:password@host:5672/[vhost][?exchange=machinery_exchange&max_priority=10&quorum=true] (broker only)",
        "amqp://host1:5672/,amqp://host2:5672/ (failover)",
        "amqps://…[?ca=/path/ca.pem] (TLS; ca: a private CA)",
        "amqp://…?management=http://127.0.0.1:15672 (the management plugin's HTTP API: listings of pending and scheduled tasks)",
    ];

    // A throwaway connection proves the broker, credentials and vhost: the host's broker is created after this and
    // connects on first use.
    public async ValueTask ConnectAsync(string url, IServiceProvider services, CancellationToken cancellationToken = default)
    {
        var options = Options(url);
        var probe = new RabbitMqBroker(options, services.GetService<TimeProvider>());
        await using var _ = probe.ConfigureAwait(false);
        try
        {
            await probe.ConnectAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            throw new InvalidOperationException(RabbitMqConnectFailure.Explain(ex, options), ex);
        }
    }

    public string? Validate(string url)
    {
        try
        {
            Options(url).Validate();
            return null;
        }
        catch (Exception ex) when (ex is FormatException or ArgumentException)
        {
            return ex.Message;
        }
    }

    // The broker connects on first use, so a host starts while RabbitMQ is down and catches up when it is back.
    public IBroker CreateBroker(string url, IServiceProvider services) =>
        new RabbitMqBroker(Options(url), services.GetService<TimeProvider>(), services.GetService<ILoggerFactory>());

    public IResultBackend CreateResultBackend(string url, IServiceProvider services) =>
        throw new NotSupportedException("RabbitMQ is a broker only; use a redis:// or sqlite:// result backend.");

    public IDistributedLock CreateLock(string url, IServiceProvider services) =>
        throw new NotSupportedException("RabbitMQ has no lock; the scheduler uses the result backend's.");

    // A RabbitMQ broker keeps no store: the result backend's keeps the control state, and the management plugin's
    // HTTP API, when configured, lists what the queues hold.
    public IManagementStore ExtendManagementStore(string brokerUrl, IManagementStore backendStore, IServiceProvider services)
    {
        var options = Options(brokerUrl);
        if (options.ManagementUrl is not { } management)
        {
            return backendStore;
        }

        var amqp = options.EffectiveUrls[0];
        var (user, password) = Credentials(management) ?? Credentials(amqp) ?? ("guest", "guest");
        var path = Uri.UnescapeDataString(amqp.AbsolutePath.TrimStart('/'));
        var api = new RabbitMqHttpApi(management, user, password, path.Length == 0 ? "/" : path);
        return new RabbitMqManagementStore(backendStore, api, options.Exchange, options.EffectiveDeadLetterQueue);
    }

    private static (string User, string Password)? Credentials(Uri url)
    {
        if (string.IsNullOrEmpty(url.UserInfo))
        {
            return null;
        }

        var colon = url.UserInfo.IndexOf(':', StringComparison.Ordinal);
        return colon < 0
            ? (Uri.UnescapeDataString(url.UserInfo), string.Empty)
            : (Uri.UnescapeDataString(url.UserInfo[..colon]), Uri.UnescapeDataString(url.UserInfo[(colon + 1)..]));
    }

    private RabbitMqBrokerOptions Options(string url)
    {
        var options = AmqpUrl.Parse(url);
        foreach (var action in configure)
        {
            action.Configure(options);
        }

        return options;
    }
}
