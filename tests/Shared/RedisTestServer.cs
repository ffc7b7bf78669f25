using StackExchange.Redis;

namespace Conveyor.Testing;

/// <summary>
/// The Redis the tests run against: <c>CONVEYOR_TEST_REDIS</c> (host:port), which <c>scripts/test.sh</c> sets after
/// starting a private redis-server. A missing variable or a Redis that does not answer fails the tests with a message
/// that says so: a silent skip would let a broken setup pass. Linked into each test project that needs Redis.
/// </summary>
internal static class RedisTestServer
{
    public const string Variable = "CONVEYOR_TEST_REDIS";

    public static string Address =>
        Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } address
            ? address
            : throw new InvalidOperationException(
                $"{Variable} is not set: these tests need a Redis server. Run them through `bash scripts/test.sh` (it installs and starts one), " +
                $"or start one yourself and set {Variable}=127.0.0.1:PORT.");

    /// <summary>The server as a Conveyor URL: <c>redis://host:port</c>.</summary>
    public static string Url => "redis://" + Address;

    /// <summary>Connects a new multiplexer, or fails with a message naming the variable.</summary>
    public static async Task<ConnectionMultiplexer> ConnectAsync(string? clientName = null, bool admin = false)
    {
        var address = Address;
        var options = ConfigurationOptions.Parse(address);
        options.AbortOnConnectFail = true;
        options.ConnectTimeout = 5000;
        options.AllowAdmin = admin;
        if (clientName is not null)
        {
            options.ClientName = clientName;
        }

        try
        {
            return await ConnectionMultiplexer.ConnectAsync(options);
        }
        catch (RedisConnectionException ex)
        {
            throw new InvalidOperationException(
                $"{Variable}={address}, but no Redis answers there ({ex.Message}). Run the tests through `bash scripts/test.sh`, or start redis-server on that address.",
                ex);
        }
    }
}
