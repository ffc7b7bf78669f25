namespace Conveyor.Cli.Tests;

/// <summary>
/// The servers <c>scripts/test.sh</c> starts: <c>CONVEYOR_TEST_REDIS</c> (host:port) and <c>CONVEYOR_TEST_AMQP</c>
/// (an amqp:// URL). Missing, the test fails saying so: it never skips.
/// </summary>
internal static class TestServers
{
    public static string RedisUrl => "redis://" + Require("CONVEYOR_TEST_REDIS", "127.0.0.1:PORT");

    public static string AmqpUrl => Require("CONVEYOR_TEST_AMQP", "amqp://guest:guest@127.0.0.1:PORT/");

    private static string Require(string variable, string example) =>
        Environment.GetEnvironmentVariable(variable) is { Length: > 0 } value
            ? value
            : throw new InvalidOperationException(
                $"{variable} is not set: this test needs a real server. Run it through `bash scripts/test.sh` (it installs and starts Redis and RabbitMQ), " +
                $"or start one yourself and set {variable}={example}.");
}
