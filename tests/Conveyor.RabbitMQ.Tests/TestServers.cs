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

    /// <summary>Options for a broker on the test server, on an exchange of its own.</summary>
    public static RabbitMqBrokerOptions BrokerOptions(string exchange)
    {
        var options = new RabbitMqBrokerOptions
        {
            Exchange = exchange,
            MaxPriority = 10,
            NetworkRecoveryInterval = TimeSpan.FromMilliseconds(200),
            ConfirmTimeout = TimeSpan.FromSeconds(10),
            PublishRetryTimeout = TimeSpan.FromSeconds(5),
        };
        options.Urls.Add(AmqpUrl);
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

    /// <summary>Fails with a clear message when RabbitMQ is not there.</summary>
    public static async Task EnsureAmqpAsync()
    {
        await using var connection = await ConnectRawAsync();
    }
}
