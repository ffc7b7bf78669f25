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

    public const string TlsVariable = "CONVEYOR_TEST_REDIS_TLS";

    /// <summary>
    /// The same kind of server over TLS with an ACL user: <c>CONVEYOR_TEST_REDIS_TLS</c>, a
    /// <c>rediss://user:password@host:port?ca=/path/ca.pem</c> URL whose user may only touch keys and channels under
    /// <c>conveyor-tls:</c> (<c>scripts/test.sh</c> makes the CA and the user).
    /// </summary>
    public static string TlsUrl =>
        Environment.GetEnvironmentVariable(TlsVariable) is { Length: > 0 } url
            ? url
            : throw new InvalidOperationException(
                $"{TlsVariable} is not set: these tests need Redis over TLS with an ACL user. Run them through `bash scripts/test.sh` (it makes a throwaway CA and starts one), " +
                $"or set {TlsVariable}=rediss://user:password@127.0.0.1:PORT?ca=/path/ca.pem for a server whose user may touch keys and channels under conveyor-tls:.");

    /// <summary>The key prefix the TLS server's ACL user is limited to.</summary>
    public const string TlsKeyPrefix = "conveyor-tls:";

    public const string ClusterVariable = "CONVEYOR_TEST_REDIS_CLUSTER";

    /// <summary>
    /// A Redis Cluster of three masters: <c>CONVEYOR_TEST_REDIS_CLUSTER</c>, their <c>host:port</c> list
    /// (<c>scripts/test.sh</c> starts them with <c>--cluster-enabled yes</c> and joins them with <c>redis-cli --cluster create</c>).
    /// </summary>
    public static string ClusterAddresses =>
        Environment.GetEnvironmentVariable(ClusterVariable) is { Length: > 0 } addresses
            ? addresses
            : throw new InvalidOperationException(
                $"{ClusterVariable} is not set: these tests need a Redis Cluster. Run them through `bash scripts/test.sh` (it starts three masters on loopback and joins them), " +
                $"or start one yourself and set {ClusterVariable}=127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3.");

    /// <summary>Connects to the cluster, or fails with a message that says what is wrong (not set, not answering, not a cluster).</summary>
    public static async Task<ConnectionMultiplexer> ConnectClusterAsync()
    {
        var addresses = ClusterAddresses;
        var options = ConfigurationOptions.Parse(addresses);
        options.AbortOnConnectFail = true;
        options.ConnectTimeout = 5000;
        ConnectionMultiplexer multiplexer;
        try
        {
            multiplexer = await ConnectionMultiplexer.ConnectAsync(options);
        }
        catch (RedisConnectionException ex)
        {
            throw new InvalidOperationException(
                $"{ClusterVariable}={addresses}, but no Redis answers there ({ex.Message}). Run the tests through `bash scripts/test.sh`, or start the cluster on those addresses.",
                ex);
        }

        var masters = multiplexer.GetServers().Count(server => server.ServerType == ServerType.Cluster && !server.IsReplica);
        if (masters < 3)
        {
            await multiplexer.DisposeAsync();
            throw new InvalidOperationException(
                $"{ClusterVariable}={addresses} answers, but as {masters} cluster master(s), not 3: start redis-server with --cluster-enabled yes and join the nodes with `redis-cli --cluster create ... --cluster-replicas 0` (scripts/test.sh does).");
        }

        return multiplexer;
    }

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
