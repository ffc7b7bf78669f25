using System.Net;
using StackExchange.Redis;

namespace Conveyor.Redis.Tests;

public sealed class RedisUrlTests
{
    [Fact]
    public void Parse_PlainUrl_HostPortDatabase()
    {
        var options = RedisUrl.Parse("redis://127.0.0.1:6390/3");
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, 6390), Assert.Single(options.EndPoints));
        Assert.Equal(3, options.DefaultDatabase);
        Assert.False(options.Ssl);
        Assert.Null(options.Password);
    }

    [Fact]
    public void Parse_DefaultsAndPassword_AsMachineryWritesThem()
    {
        var options = RedisUrl.Parse("redis://:s3cr%40t@redis.example");
        Assert.Equal(new DnsEndPoint("redis.example", 6379), Assert.Single(options.EndPoints));
        Assert.Equal("s3cr@t", options.Password);
        Assert.Null(options.User);
        Assert.Null(options.DefaultDatabase);
    }

    [Fact]
    public void Parse_Tls_UserAndPassword()
    {
        var options = RedisUrl.Parse("rediss://app:pw@cache.internal:6380/1");
        Assert.True(options.Ssl);
        Assert.Equal("cache.internal", options.SslHost);
        Assert.Equal("app", options.User);
        Assert.Equal("pw", options.Password);
        Assert.Equal(1, options.DefaultDatabase);
    }

    [Fact]
    public void Parse_Sentinel_HostsMasterNameAndDatabase()
    {
        var options = RedisUrl.Parse("redis+sentinel://:pw@10.0.0.1,10.0.0.2:26380/mymaster/2");
        Assert.Equal("mymaster", options.ServiceName);
        Assert.Equal([new IPEndPoint(IPAddress.Parse("10.0.0.1"), 26379), new IPEndPoint(IPAddress.Parse("10.0.0.2"), 26380)], options.EndPoints.ToArray());
        Assert.Equal(2, options.DefaultDatabase);
        Assert.Equal("pw", options.Password);
    }

    [Fact]
    public void Parse_IPv6()
    {
        var options = RedisUrl.Parse("redis://[::1]:7000");
        Assert.Equal(new IPEndPoint(IPAddress.IPv6Loopback, 7000), Assert.Single(options.EndPoints));
    }

    [Theory]
    [InlineData("http://localhost")]
    [InlineData("redis://")]
    [InlineData("redis://host:notaport")]
    [InlineData("redis://host/db")]
    [InlineData("redis://a,b")]
    [InlineData("redis+sentinel://host")]
    [InlineData("redis://host?ssl=true")]
    public void Parse_Invalid_ThrowsFormatExceptionWithTheUrl(string url)
    {
        var error = Assert.Throws<FormatException>(() => RedisUrl.Parse(url));
        Assert.Contains(url.Split('?')[0], error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_ConveyorQuerySettings_ConnectionIgnoresThemAndApplyOptionsSetsThem()
    {
        const string Url = "redis://127.0.0.1:6390/2?visibility_timeout=7.5&heartbeat_interval=2&result_ttl=600&key_prefix=app1%3A";
        var connection = RedisUrl.Parse(Url);
        var options = new RedisConveyorOptions();
        RedisUrl.ApplyOptions(Url, options);

        Assert.Equal(2, connection.DefaultDatabase);
        Assert.Equal("127.0.0.1:6390", connection.EndPoints.Single().ToString());
        Assert.Equal(TimeSpan.FromSeconds(7.5), options.VisibilityTimeout);
        Assert.Equal(TimeSpan.FromSeconds(2), options.HeartbeatInterval);
        Assert.Equal(TimeSpan.FromMinutes(10), options.ResultTtl);
        Assert.Equal("app1:", options.KeyPrefix);
        Assert.Equal("redis://127.0.0.1:6390/2", RedisUrl.ConnectionPart(Url));
    }

    [Fact]
    public void ApplyOptions_WaitReplicas_SetsTheReplicasAndTheirTimeout()
    {
        var options = new RedisConveyorOptions();

        RedisUrl.ApplyOptions("redis+sentinel://h:26379/primary?wait_replicas=1&wait_timeout=0.5", options);

        Assert.Equal(1, options.WaitForReplicas);
        Assert.Equal(TimeSpan.FromMilliseconds(500), options.ReplicaWaitTimeout);
        Assert.Equal(0, new RedisConveyorOptions().WaitForReplicas);
    }

    [Theory]
    [InlineData("redis://h:7000?cluster=true", true)]
    [InlineData("redis://h:7000?cluster=false", false)]
    [InlineData("redis://h:7000", null)]
    public void ApplyOptions_Cluster_ForcesTheLayoutOrLeavesItToTheServer(string url, bool? expected)
    {
        var options = new RedisConveyorOptions();

        RedisUrl.ApplyOptions(url, options);

        Assert.Equal(expected, options.Cluster);
    }

    [Fact]
    public void ApplyOptions_BadCluster_ThrowsNamingIt()
    {
        var error = Assert.Throws<FormatException>(() => RedisUrl.ApplyOptions("redis://h:1?cluster=yes", new RedisConveyorOptions()));

        Assert.Contains("option 'cluster' needs true or false, not 'yes'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_CaFile_ValidatesAgainstItAndTheConnectionKeepsIt()
    {
        var ca = Path.Combine(Path.GetTempPath(), $"conveyor-ca-{Guid.NewGuid():N}.pem");
        using (var key = System.Security.Cryptography.ECDsa.Create())
        {
            var request = new System.Security.Cryptography.X509Certificates.CertificateRequest("CN=test CA", key, System.Security.Cryptography.HashAlgorithmName.SHA256);
            using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow, DateTimeOffset.UtcNow.AddDays(1));
            File.WriteAllText(ca, certificate.ExportCertificatePem());
        }

        try
        {
            var url = $"rediss://app:pw@cache.internal:6380?key_prefix=a%3A&ca={Uri.EscapeDataString(ca)}";

            var options = RedisUrl.Parse(url);

            Assert.True(options.Ssl);
            Assert.Equal($"rediss://app:pw@cache.internal:6380?ca={Uri.EscapeDataString(ca)}", RedisUrl.ConnectionPart(url));
            RedisUrl.ApplyOptions(url, new RedisConveyorOptions()); // ca is the connection's, not unknown
        }
        finally
        {
            File.Delete(ca);
        }
    }

    [Theory]
    [InlineData("rediss://u:hunter2@h:1?ca=/no/such/ca.pem", "cannot read the CA file /no/such/ca.pem")]
    [InlineData("redis://u:hunter2@h:1?ca=/etc/hostname", "ca applies to TLS only; use rediss://")]
    [InlineData("rediss://u:hunter2@h:1?ca=", "ca needs the path of a PEM file")]
    public void Parse_BadCa_ThrowsSayingWhyWithoutThePassword(string url, string expected)
    {
        var error = Assert.Throws<FormatException>(() => RedisUrl.Parse(url));

        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("redis://h:1?visibility_timeout=0", "option 'visibility_timeout' needs a positive number of seconds, not '0'")]
    [InlineData("redis://h:1?result_ttl=soon", "option 'result_ttl' needs a positive number of seconds, not 'soon'")]
    [InlineData("redis://h:1?ssl=true", "unknown option 'ssl'")]
    [InlineData("redis://h:1?wait_replicas=all", "option 'wait_replicas' needs a number of replicas (0 to 16), not 'all'")]
    public void ApplyOptions_BadSetting_ThrowsNamingIt(string url, string expected)
    {
        var error = Assert.Throws<FormatException>(() => RedisUrl.ApplyOptions(url, new RedisConveyorOptions()));

        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.StartsWith("'redis://h:1'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Options_HeartbeatNotShorterThanVisibility_IsRejectedByTheConstructor_WhichDoesNoIo()
    {
        var multiplexer = System.Reflection.DispatchProxy.Create<IConnectionMultiplexer, NoIoProxy>();
        var options = new RedisConveyorOptions { VisibilityTimeout = TimeSpan.FromSeconds(1), HeartbeatInterval = TimeSpan.FromSeconds(1) };
        Assert.Throws<ArgumentException>(() => new RedisBroker(multiplexer, options));
        _ = new RedisResultBackend(multiplexer, new RedisConveyorOptions());
        _ = new RedisBroker(multiplexer, new RedisConveyorOptions());
    }

    /// <summary>A multiplexer that fails on any use: the constructors must not touch it.</summary>
    public class NoIoProxy : System.Reflection.DispatchProxy
    {
        protected override object? Invoke(System.Reflection.MethodInfo? targetMethod, object?[]? args) =>
            throw new InvalidOperationException($"I/O in a constructor: {targetMethod?.Name}");
    }
}

public sealed class RedisConveyorOptionsTests
{
    [Fact]
    public void ToConfigurationOptions_UrlOrConfigurationString_OrOptions()
    {
        Assert.Equal(4, new RedisConveyorOptions { Configuration = "redis://h:1/4" }.ToConfigurationOptions().DefaultDatabase);
        Assert.Equal("pw", new RedisConveyorOptions { Configuration = "h:1,password=pw" }.ToConfigurationOptions().Password);
        var configured = new ConfigurationOptions { ClientName = "x" };
        Assert.Equal("x", new RedisConveyorOptions { ConfigurationOptions = configured, Configuration = "ignored:1" }.ToConfigurationOptions().ClientName);
        Assert.Throws<InvalidOperationException>(() => new RedisConveyorOptions().ToConfigurationOptions());
    }

    [Fact]
    public void Defaults_AreMachinerys()
    {
        var options = new RedisConveyorOptions();
        Assert.Equal(string.Empty, options.KeyPrefix);
        Assert.Equal(TimeSpan.FromSeconds(3600), options.ResultTtl);
        Assert.Equal("delayed_tasks", options.DelayedTasksKey);
        Assert.Equal(TimeSpan.FromSeconds(6), options.VisibilityTimeout); // a dead worker's tasks are back within 8 s
        Assert.Equal(TimeSpan.FromSeconds(2), options.EffectiveHeartbeatInterval);
        Assert.Equal(0, options.WaitForReplicas);
    }
}
