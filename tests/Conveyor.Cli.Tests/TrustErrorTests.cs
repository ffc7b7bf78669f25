using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Conveyor.Cli.Tests;

/// <summary>
/// TLS and accounts on the real servers (Redis's TLS port with an ACL user, RabbitMQ's TLS listener with a user
/// allowed on one vhost): a wrong password, a certificate that does not chain to the configured CA, and a missing
/// permission each end the command with one line on stderr that says which, and the password appears nowhere in
/// what the process printed.
/// </summary>
public sealed class TrustErrorTests : IDisposable
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(60);
    private readonly string _directory = Directory.CreateTempSubdirectory("conveyor-trust-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    public static TheoryData<string> Servers => new() { "redis", "rabbitmq" };

    [Theory]
    [MemberData(nameof(Servers))]
    public async Task Queues_RightAccountOverTls_Works(string server)
    {
        var url = Url(server);

        var (exitCode, output, error) = await RunAsync(url);

        Assert.True(exitCode == 0, $"exit {exitCode}: {error}");
        Assert.DoesNotContain(Password(url), output + error, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Servers))]
    public async Task Queues_WrongPassword_OneLineSayingTheCredentialsWereRefused(string server)
    {
        var url = Url(server);
        var wrong = "wrong-" + Guid.NewGuid().ToString("N")[..12];
        var bad = url.Replace(":" + Password(url) + "@", ":" + wrong + "@", StringComparison.Ordinal);

        var error = await FailAsync(bad, wrong);

        // Redis: StackExchange.Redis goes on as the default user after a refused AUTH; the provider's check catches it.
        Assert.Contains(server == "redis" ? "refused the password of user 'conveyor-tls'" : "refused the login of user 'conveyor-tls' (ACCESS_REFUSED)", error, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Servers))]
    public async Task Queues_CertificateNotFromTheConfiguredCa_OneLineSayingTheCertificateIsNotTrusted(string server)
    {
        var url = Url(server);
        var otherCa = WriteUntrustedCa();
        var bad = url.Replace(CaOf(url), otherCa, StringComparison.Ordinal);

        var error = await FailAsync(bad, Password(url));

        Assert.True(error.Contains("TLS certificate does not chain to the CA file", StringComparison.Ordinal), error);
    }

    [Theory]
    [MemberData(nameof(Servers))]
    public async Task Queues_NoCaGivenAndAPrivateCa_OneLineSayingTheCertificateIsNotTrusted(string server)
    {
        var url = Url(server);
        var bad = url.Replace("ca=" + CaOf(url), "x=", StringComparison.Ordinal).Replace("?x=&", "?", StringComparison.Ordinal).Replace("?x=", string.Empty, StringComparison.Ordinal);
        Assert.DoesNotContain("ca=", bad, StringComparison.Ordinal);

        var error = await FailAsync(bad, Password(url));

        Assert.Contains("TLS certificate is not trusted", error, StringComparison.Ordinal);
        Assert.Contains("?ca=/path/ca.pem", error, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Servers))]
    public async Task Queues_AccountLacksAPermission_OneLineSayingWhichPermission(string server)
    {
        var url = Url(server);

        // Redis: the user may only touch keys under conveyor-tls:, and machinery's layout has no prefix.
        // RabbitMQ: the user is allowed on its own vhost only, not on the default one.
        var bad = server == "redis"
            ? url.Replace("&key_prefix=conveyor-tls:", string.Empty, StringComparison.Ordinal)
            : url.Replace("/conveyor-tls?", "/?", StringComparison.Ordinal);

        var error = await FailAsync(bad, Password(url));

        Assert.Contains(server == "redis" ? "Redis user 'conveyor-tls' at 127.0.0.1:" : "RabbitMQ user 'conveyor-tls' may not use vhost '/' (NOT_ALLOWED)", error, StringComparison.Ordinal);
        if (server == "redis")
        {
            Assert.Contains("lacks a permission Conveyor needs (NOPERM", error, StringComparison.Ordinal);
        }
    }

    // The Redis user may touch keys under conveyor-tls: only, so the working URL puts Conveyor's keys there.
    private static string Url(string server) => server == "redis" ? TestServers.RedisTlsUrl + "&key_prefix=conveyor-tls:" : TestServers.AmqpTlsUrl;

    private static string CaOf(string url)
    {
        var start = url.IndexOf("ca=", StringComparison.Ordinal) + 3;
        var end = url.IndexOf('&', start);
        return end < 0 ? url[start..] : url[start..end];
    }

    private static string Password(string url)
    {
        var start = url.IndexOf("://", StringComparison.Ordinal) + 3;
        var at = url.IndexOf('@', start);
        var colon = url.IndexOf(':', start);
        Assert.True(colon > 0 && colon < at, "the test URL has a user and a password");
        return url[(colon + 1)..at];
    }

    private async Task<(int ExitCode, string Output, string Error)> RunAsync(string url) =>
        await CliProcess.RunAsync(_directory, Generous, "queues", "--broker", url, "--backend", "memory://");

    private async Task<string> FailAsync(string url, string password)
    {
        var (exitCode, output, error) = await RunAsync(url);

        Assert.True(exitCode != 0, $"the command succeeded: {output}");
        var lines = error.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.True(lines.Length == 1, $"expected one line on stderr, got {lines.Length}:\n{error}");
        Assert.DoesNotContain(password, output + error, StringComparison.Ordinal);
        return lines[0];
    }

    private string WriteUntrustedCa()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=Conveyor untrusted test CA", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: true, hasPathLengthConstraint: false, 0, critical: true));
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        var path = Path.Combine(_directory, "untrusted-ca.pem");
        File.WriteAllText(path, certificate.ExportCertificatePem());
        return path;
    }
}
