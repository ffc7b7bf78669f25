using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Conveyor.Tls;

/// <summary>
/// Server certificate validation against the certificate authorities in one PEM file (a private CA), instead of the
/// machine's trust store: the chain must end at one of those roots, and the name must match as usual. Nothing here
/// ever accepts a certificate that fails; without a CA file the platform's own validation applies. Linked into the
/// Redis and RabbitMQ packages (neither depends on the other).
/// </summary>
internal sealed class CustomCertificateAuthority
{
    private readonly X509Certificate2Collection _roots;

    private CustomCertificateAuthority(string path, X509Certificate2Collection roots)
    {
        Path = path;
        _roots = roots;
    }

    /// <summary>The PEM file the roots came from.</summary>
    public string Path { get; }

    /// <summary>Reads the certificates of a PEM file.</summary>
    /// <param name="path">The file.</param>
    /// <param name="context">What the error messages start with (the setting or URL, never a password).</param>
    /// <returns>The authority.</returns>
    /// <exception cref="FormatException">The file is missing, unreadable or holds no certificate.</exception>
    public static CustomCertificateAuthority Load(string path, string context)
    {
        if (string.IsNullOrWhiteSpace(path))
        {
            throw new FormatException($"{context}: ca needs the path of a PEM file of CA certificates.");
        }

        var roots = new X509Certificate2Collection();
        try
        {
            roots.ImportFromPemFile(path);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or CryptographicException)
        {
            throw new FormatException($"{context}: cannot read the CA file {path} ({ex.Message.ReplaceLineEndings(" ")})", ex);
        }

        return roots.Count == 0
            ? throw new FormatException($"{context}: the CA file {path} holds no PEM certificate.")
            : new CustomCertificateAuthority(path, roots);
    }

    /// <summary>A validation callback for <see cref="SslStream"/> that trusts these roots only.</summary>
    /// <returns>The callback.</returns>
    public RemoteCertificateValidationCallback Validator() => Validate;

    /// <summary>
    /// Makes one TLS handshake with a server, validating as a client would (against <paramref name="authority"/>'s
    /// roots, or the machine's when <see langword="null"/>), to say why a client's connect failed.
    /// </summary>
    /// <param name="endPoint">The server.</param>
    /// <param name="host">The name the certificate must have.</param>
    /// <param name="authority">The private CA, if any.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>Why the certificate was refused, or <see langword="null"/> when the handshake succeeds or fails for another reason.</returns>
    public static async Task<string?> DiagnoseAsync(System.Net.EndPoint endPoint, string host, CustomCertificateAuthority? authority, CancellationToken cancellationToken)
    {
        string? problem = null;
        try
        {
            using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
            await socket.ConnectAsync(endPoint, cancellationToken).ConfigureAwait(false);
            var stream = new System.Net.Sockets.NetworkStream(socket, ownsSocket: false);
            await using var streamScope = stream.ConfigureAwait(false);
            var tls = new SslStream(stream, leaveInnerStreamOpen: false, (sender, certificate, chain, errors) =>
            {
                var trusted = authority is null ? errors == SslPolicyErrors.None : authority.Validate(sender, certificate, chain, errors, out problem);
                if (!trusted && authority is null)
                {
                    problem = Describe(errors, chain) + "; for a private CA, add ?ca=/path/ca.pem";
                }

                return trusted;
            });
            await using var tlsScope = tls.ConfigureAwait(false);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(TimeSpan.FromSeconds(5));
            await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = host }, timeout.Token).ConfigureAwait(false);
            return null;
        }
        catch (Exception ex) when (ex is System.Security.Authentication.AuthenticationException or IOException or System.Net.Sockets.SocketException or OperationCanceledException)
        {
            return problem;
        }
    }

    private static string Describe(SslPolicyErrors errors, X509Chain? chain)
    {
        if ((errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0)
        {
            return "the server's TLS certificate does not name the host";
        }

        var status = chain is null ? string.Empty : string.Join(", ", chain.ChainStatus.Select(s => s.Status).Distinct());
        return $"the server's TLS certificate is not trusted ({(status.Length > 0 ? status : errors.ToString())})";
    }

    private bool Validate(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors) =>
        Validate(sender, certificate, chain, errors, out _);

    private bool Validate(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors, out string? problem)
    {
        problem = null;
        if ((errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0)
        {
            problem = "the server's TLS certificate does not name the host";
            return false;
        }

        // The name check and the presence of a certificate stay the platform's; only the roots change.
        if (certificate is null || (errors & (SslPolicyErrors.RemoteCertificateNotAvailable | SslPolicyErrors.RemoteCertificateNameMismatch)) != 0)
        {
            return false;
        }

        using var leaf = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        using var custom = new X509Chain();
        custom.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        custom.ChainPolicy.CustomTrustStore.AddRange(_roots);
        custom.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck; // a private CA publishes no revocation list
        if (chain is not null)
        {
            // Intermediates the server sent.
            foreach (var element in chain.ChainElements)
            {
                if (!element.Certificate.RawDataMemory.Span.SequenceEqual(leaf.RawDataMemory.Span))
                {
                    custom.ChainPolicy.ExtraStore.Add(element.Certificate);
                }
            }
        }

        if (custom.Build(leaf))
        {
            return true;
        }

        problem = $"the server's TLS certificate does not chain to the CA file {Path} ({string.Join(", ", custom.ChainStatus.Select(s => s.Status).Distinct())})";
        return false;
    }
}
