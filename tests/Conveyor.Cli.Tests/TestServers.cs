namespace Conveyor.Cli.Tests;

/// <summary>
/// The servers <c>scripts/test.sh</c> starts: <c>CONVEYOR_TEST_REDIS</c> (host:port) and <c>CONVEYOR_TEST_AMQP</c>
/// (an amqp:// URL). Missing, the test fails saying so: it never skips.
/// </summary>
internal static class TestServers
{
    public static string RedisUrl => "redis://" + Require("CONVEYOR_TEST_REDIS", "127.0.0.1:PORT");

    public static string AmqpUrl => Require("CONVEYOR_TEST_AMQP", "amqp://guest:guest@127.0.0.1:PORT/");

    /// <summary>The same RabbitMQ node's management plugin (its HTTP API), which <c>scripts/test.sh</c> enables.</summary>
    public static string RabbitMqHttpUrl => Require("CONVEYOR_TEST_RABBITMQ_HTTP", "http://127.0.0.1:15672");

    /// <summary>Redis over TLS as an ACL user limited to keys and channels under <c>conveyor-tls:</c> (a rediss:// URL with <c>?ca=</c>).</summary>
    public static string RedisTlsUrl => Require("CONVEYOR_TEST_REDIS_TLS", "rediss://user:password@127.0.0.1:PORT?ca=/path/ca.pem");

    /// <summary>RabbitMQ's TLS listener as a user allowed on one vhost only (an amqps:// URL with <c>?ca=</c>).</summary>
    public static string AmqpTlsUrl => Require("CONVEYOR_TEST_AMQP_TLS", "amqps://user:password@127.0.0.1:PORT/vhost?ca=/path/ca.pem");

    private static string Require(string variable, string example) =>
        Environment.GetEnvironmentVariable(variable) is { Length: > 0 } value
            ? value
            : throw new InvalidOperationException(
                $"{variable} is not set: this test needs a real server. Run it through `bash scripts/test.sh` (it installs and starts Redis and RabbitMQ), " +
                $"or start one yourself and set {variable}={example}.");
}
