using RabbitMQ.Client;

namespace Conveyor.RabbitMQ.Tests;

/// <summary>
/// The RabbitMQ the tests run against: <c>CONVEYOR_TEST_AMQP</c> (an amqp:// URI), set by <c>scripts/test.sh</c> after
/// it starts a private node (the Redis backend's server: <see cref="RedisTestServer"/>). A missing variable or a server
/// that does not answer fails the tests with a message that says so: a skip would let a broken setup pass.
/// </summary>
internal static class TestServers
{
    public const string AmqpVariable = "CONVEYOR_TEST_AMQP";

    public static Uri AmqpUrl =>
        Environment.GetEnvironmentVariable(AmqpVariable) is { Length: > 0 } url
            ? new Uri(url)
            : throw new InvalidOperationException(
                $"{AmqpVariable} is not set: the RabbitMQ tests need a RabbitMQ server. Run them through `bash scripts/test.sh` (it installs and starts one), " +
                $"or start one yourself and set {AmqpVariable}=amqp://guest:guest@127.0.0.1:PORT/.");

    public const string AmqpTlsVariable = "CONVEYOR_TEST_AMQP_TLS";

    public const string HttpVariable = "CONVEYOR_TEST_RABBITMQ_HTTP";

    /// <summary>The same node's management plugin (its HTTP API, <c>http://127.0.0.1:PORT</c>), which <c>scripts/test.sh</c> enables.</summary>
    public static string HttpUrl =>
        Environment.GetEnvironmentVariable(HttpVariable) is { Length: > 0 } url
            ? url
            : throw new InvalidOperationException(
                $"{HttpVariable} is not set: these tests need the rabbitmq_management plugin's HTTP API. Run them through `bash scripts/test.sh` (it enables the plugin on a loopback port), " +
                $"or enable it yourself (rabbitmq-plugins enable rabbitmq_management) and set {HttpVariable}=http://127.0.0.1:15672.");

    /// <summary>
    /// The same node's TLS listener: <c>CONVEYOR_TEST_AMQP_TLS</c>, an <c>amqps://user:password@host:port/vhost?ca=/path/ca.pem</c>
    /// URL whose user is allowed on that one vhost only (<c>scripts/test.sh</c> makes the CA, the vhost and the user).
    /// </summary>
    public static string AmqpTlsUrl =>
        Environment.GetEnvironmentVariable(AmqpTlsVariable) is { Length: > 0 } url
            ? url
            : throw new InvalidOperationException(
                $"{AmqpTlsVariable} is not set: these tests need RabbitMQ's TLS listener and a user limited to one vhost. Run them through `bash scripts/test.sh` (it makes a throwaway CA and sets both up), " +
                $"or set {AmqpTlsVariable}=amqps://user:password@127.0.0.1:PORT/vhost?ca=/path/ca.pem.");

    /// <summary>Options for a broker on the test server, on an exchange of its own.</summary>
    public static RabbitMqBrokerOptions BrokerOptions(string exchange) => BrokerOptions(exchange, tls: false, quorum: false);

    /// <summary>Options for a broker on the test server (over TLS as the one-vhost user, or plain), on an exchange of its own.</summary>
    public static RabbitMqBrokerOptions BrokerOptions(string exchange, bool tls, bool quorum)
    {
        var options = tls ? global::Conveyor.RabbitMQ.AmqpUrl.Parse(AmqpTlsUrl) : new RabbitMqBrokerOptions();
        options.Exchange = exchange;
        options.MaxPriority = quorum ? null : 10; // quorum queues have no x-max-priority
        options.UseQuorumQueues = quorum;
        options.NetworkRecoveryInterval = TimeSpan.FromMilliseconds(200);
        options.ConfirmTimeout = TimeSpan.FromSeconds(10);
        options.PublishRetryTimeout = TimeSpan.FromSeconds(5);
        if (!tls)
        {
            options.Urls.Add(AmqpUrl);
        }

        return options;
    }

    /// <summary>A raw client connection (another AMQP client, as Go machinery or rabbitmqadmin would be).</summary>
    public static async Task<IConnection> ConnectRawAsync()
    {
        var url = AmqpUrl;
        try
        {
            return await new ConnectionFactory { Uri = url }.CreateConnectionAsync();
        }
        catch (Exception ex) when (ex is global::RabbitMQ.Client.Exceptions.BrokerUnreachableException)
        {
            throw new InvalidOperationException(
                $"{AmqpVariable}={url}, but no RabbitMQ answers there ({ex.InnerException?.Message ?? ex.Message}). Run the tests through `bash scripts/test.sh`, or start rabbitmq-server on that address.",
                ex);
        }
    }

    /// <summary>A raw client connection to the TLS listener as the one-vhost user, the certificate checked against the test CA.</summary>
    public static async Task<IConnection> ConnectRawTlsAsync()
    {
        var options = global::Conveyor.RabbitMQ.AmqpUrl.Parse(AmqpTlsUrl);
        var url = options.Urls[0];
        var factory = new ConnectionFactory { Uri = url };
        factory.Ssl.Enabled = true;
        factory.Ssl.ServerName = url.Host;
        factory.Ssl.CertificateValidationCallback = global::Conveyor.Tls.CustomCertificateAuthority.Load(options.CaCertificatesPath!, AmqpTlsVariable).Validator();
        return await factory.CreateConnectionAsync();
    }

    /// <summary>Fails with a clear message when RabbitMQ is not there.</summary>
    public static async Task EnsureAmqpAsync()
    {
        await using var connection = await ConnectRawAsync();
    }
}
