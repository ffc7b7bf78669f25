namespace Conveyor.Hosting.Tests;

/// <summary>
/// The RabbitMQ the host tests use: <c>CONVEYOR_TEST_AMQP</c> (amqp:// URL), set by <c>scripts/test.sh</c> after it
/// starts a private node (Redis: <see cref="RedisTestServer"/>). Missing → the test fails saying so, never skips.
/// </summary>
internal static class TestServers
{
    public const string AmqpVariable = "CONVEYOR_TEST_AMQP";

    public static string AmqpUrl => Require(AmqpVariable, "amqp://guest:guest@127.0.0.1:PORT/");

    private static string Require(string variable, string example) =>
        Environment.GetEnvironmentVariable(variable) is { Length: > 0 } value
            ? value
            : throw new InvalidOperationException(
                $"{variable} is not set: these tests need a real server. Run them through `bash scripts/test.sh` (it installs and starts Redis and RabbitMQ), " +
                $"or start one yourself and set {variable}={example}.");
}

/// <summary>A SQLite file in a temporary folder, deleted with the folder.</summary>
internal sealed class TempDatabase : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("conveyor-hosting-").FullName;

    public string Url => $"sqlite://{Path.Combine(_folder, "conveyor.db")}";

    public void Dispose()
    {
        try
        {
            Directory.Delete(_folder, recursive: true);
        }
        catch (IOException)
        {
            // A file still open by a finalizer-pending connection; the OS temp cleaner takes it.
        }
    }
}
