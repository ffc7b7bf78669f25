using System.Globalization;
using System.Net;
using Conveyor.Tls;
using StackExchange.Redis;

namespace Conveyor.Redis;

/// <summary>Reads Conveyor's (and machinery's) Redis URLs into StackExchange.Redis configuration.</summary>
public static class RedisUrl
{
    private const int DefaultPort = 6379;
    private const int DefaultSentinelPort = 26379;
    private const string CaSetting = "ca";

    /// <summary>
    /// Parses <c>redis://[[user]:password@]host[:port][/db]</c>, <c>rediss://…</c> (TLS) and
    /// <c>redis+sentinel://[[user]:password@]host[:port][,host[:port]…]/master-name[/db]</c> (Sentinel, default
    /// port 26379; the password is the primary's). The port defaults to 6379, the database to 0.
    /// </summary>
    /// <remarks>
    /// The configuration schedules StackExchange.Redis's socket work on the .NET thread pool
    /// (<see cref="SocketManager.ThreadPool"/>) instead of its own pool of dedicated threads: a worker makes many
    /// small concurrent calls, and on a small machine the hand-offs between the two pools cost about a fifth of the
    /// worker's CPU (measured with <c>conveyor bench</c> on 2 cores).
    /// </remarks>
    /// <para>
    /// <c>?ca=/path/ca.pem</c> (with <c>rediss://</c>) validates the server's certificate against the CA certificates
    /// in that PEM file instead of the machine's trust store (a private CA); the host name must still match. Without
    /// it, the platform's validation applies. No setting accepts an invalid certificate.
    /// </para>
    /// <param name="url">The URL; the rest of its query (see <see cref="ApplyOptions"/>) is checked, not applied.</param>
    /// <returns>Configuration for <see cref="ConnectionMultiplexer.ConnectAsync(ConfigurationOptions, TextWriter?)"/>.</returns>
    /// <exception cref="FormatException">The URL is not one of these forms.</exception>
    public static ConfigurationOptions Parse(string url) => Parse(url, out _);

    /// <summary>As <see cref="Parse(string)"/>, with the private CA the URL names (to explain a failed handshake).</summary>
    internal static ConfigurationOptions Parse(string url, out CustomCertificateAuthority? authority)
    {
        ArgumentException.ThrowIfNullOrEmpty(url);
        authority = null;
        var separator = url.IndexOf("://", StringComparison.Ordinal);
        if (separator <= 0)
        {
            throw new FormatException($"'{url}' is not a Redis URL: use redis://host:port[/db], rediss://host:port[/db] or redis+sentinel://host:port[,host:port]/master-name[/db].");
        }

        var scheme = url[..separator].ToLowerInvariant();
        var sentinel = scheme == "redis+sentinel";
        if (scheme is not ("redis" or "rediss") && !sentinel)
        {
            throw new FormatException($"'{url}': the scheme must be redis, rediss or redis+sentinel.");
        }

        var rest = url[(separator + 3)..];
        var query = rest.IndexOf('?', StringComparison.Ordinal);
        string? caPath = null;
        if (query >= 0)
        {
            // Conveyor's own settings: checked here so that a typo fails at once; applied by ApplyOptions.
            ApplyOptions(url, new RedisConveyorOptions());
            foreach (var (name, value) in Settings(url))
            {
                if (name == CaSetting)
                {
                    caPath = value;
                }
            }

            rest = rest[..query];
        }

        if (rest.Contains('#', StringComparison.Ordinal))
        {
            throw new FormatException($"'{url}': a Redis URL has no fragment.");
        }

        var options = new ConfigurationOptions { Ssl = scheme == "rediss", SocketManager = SocketManager.ThreadPool };
        var at = rest.LastIndexOf('@');
        if (at >= 0)
        {
            var credentials = rest[..at];
            rest = rest[(at + 1)..];
            var colon = credentials.IndexOf(':', StringComparison.Ordinal);
            if (colon < 0)
            {
                options.Password = Uri.UnescapeDataString(credentials);
            }
            else
            {
                if (colon > 0)
                {
                    options.User = Uri.UnescapeDataString(credentials[..colon]);
                }

                options.Password = Uri.UnescapeDataString(credentials[(colon + 1)..]);
            }
        }

        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        var hosts = slash < 0 ? rest : rest[..slash];
        var path = slash < 0 ? [] : rest[(slash + 1)..].Split('/', StringSplitOptions.RemoveEmptyEntries);
        if (hosts.Length == 0)
        {
            throw new FormatException($"'{url}' names no host.");
        }

        var hostList = hosts.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (!sentinel && hostList.Length != 1)
        {
            throw new FormatException($"'{url}': several hosts are only allowed in a redis+sentinel:// URL.");
        }

        foreach (var host in hostList)
        {
            options.EndPoints.Add(ParseEndPoint(host, sentinel ? DefaultSentinelPort : DefaultPort, url));
        }

        var dbIndex = 0;
        if (sentinel)
        {
            if (path.Length == 0)
            {
                throw new FormatException($"'{url}' names no master: use redis+sentinel://host:26379/master-name[/db].");
            }

            options.ServiceName = Uri.UnescapeDataString(path[0]);
            dbIndex = 1;
        }

        if (path.Length > dbIndex + 1)
        {
            throw new FormatException($"'{url}' has more path segments than a database number.");
        }

        if (path.Length == dbIndex + 1)
        {
            if (!int.TryParse(path[dbIndex], NumberStyles.None, CultureInfo.InvariantCulture, out var db) || db > 15_999)
            {
                throw new FormatException($"'{url}': '{path[dbIndex]}' is not a database number.");
            }

            options.DefaultDatabase = db;
        }

        if (options.Ssl && hostList.Length == 1 && options.EndPoints[0] is DnsEndPoint dns)
        {
            options.SslHost = dns.Host;
        }

        if (caPath is not null)
        {
            if (!options.Ssl)
            {
                throw new FormatException($"'{ConveyorUrls.Redact(ConnectionPart(url))}': ca applies to TLS only; use rediss://.");
            }

            authority = CustomCertificateAuthority.Load(caPath, $"'{ConveyorUrls.Redact(ConnectionPart(url))}'");
            options.CertificateValidation += authority.Validator();
        }

        return options;
    }

    /// <summary>
    /// Applies the settings in a URL's query to <paramref name="options"/>:
    /// <c>?visibility_timeout=10&amp;heartbeat_interval=2&amp;result_ttl=3600</c> (seconds) and <c>key_prefix=app1:</c>.
    /// A URL without a query changes nothing.
    /// </summary>
    /// <param name="url">The URL.</param>
    /// <param name="options">The options to change.</param>
    /// <exception cref="FormatException">An unknown setting, or a value that is not a positive number of seconds.</exception>
    public static void ApplyOptions(string url, RedisConveyorOptions options)
    {
        ArgumentNullException.ThrowIfNull(url);
        ArgumentNullException.ThrowIfNull(options);
        var query = url.IndexOf('?', StringComparison.Ordinal);
        if (query < 0)
        {
            return;
        }

        foreach (var (name, value) in Settings(url))
        {
            switch (name)
            {
                case "visibility_timeout": options.VisibilityTimeout = Seconds(url, name, value); break;
                case "heartbeat_interval": options.HeartbeatInterval = Seconds(url, name, value); break;
                case "result_ttl": options.ResultTtl = Seconds(url, name, value); break;
                case "key_prefix": options.KeyPrefix = value; break;
                case "wait_replicas":
                    options.WaitForReplicas = int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var replicas) && replicas <= 16
                        ? replicas
                        : throw new FormatException($"'{ConveyorUrls.Redact(ConnectionPart(url))}': option 'wait_replicas' needs a number of replicas (0 to 16), not '{value}'");
                    break;
                case "wait_timeout": options.ReplicaWaitTimeout = Seconds(url, name, value); break;
                case "cluster":
                    options.Cluster = bool.TryParse(value, out var cluster)
                        ? cluster
                        : throw new FormatException($"'{ConveyorUrls.Redact(ConnectionPart(url))}': option 'cluster' needs true or false, not '{value}'");
                    break;
                case CaSetting: break; // the connection's (Parse)
                default:
                    throw new FormatException($"'{url[..query]}': unknown option '{name}'; use visibility_timeout, heartbeat_interval, result_ttl, wait_timeout (seconds), key_prefix, wait_replicas, cluster (true/false) or ca (a CA file for rediss://)");
            }
        }
    }

    /// <summary>The URL without the components' settings: what the connection depends on.</summary>
    /// <param name="url">The URL.</param>
    /// <returns>The part before <c>?</c>, with the connection's own setting (<c>ca</c>) if the URL has it.</returns>
    public static string ConnectionPart(string url)
    {
        ArgumentNullException.ThrowIfNull(url);
        var query = url.IndexOf('?', StringComparison.Ordinal);
        if (query < 0)
        {
            return url;
        }

        var connection = Settings(url).Where(s => s.Name == CaSetting).Select(s => $"{s.Name}={Uri.EscapeDataString(s.Value)}").ToList();
        return connection.Count == 0 ? url[..query] : url[..query] + "?" + string.Join('&', connection);
    }

    private static IEnumerable<(string Name, string Value)> Settings(string url)
    {
        var query = url.IndexOf('?', StringComparison.Ordinal);
        if (query < 0)
        {
            yield break;
        }

        foreach (var pair in url[(query + 1)..].Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var equals = pair.IndexOf('=', StringComparison.Ordinal);
            yield return (equals < 0 ? pair : pair[..equals], Uri.UnescapeDataString(equals < 0 ? string.Empty : pair[(equals + 1)..]));
        }
    }

    private static TimeSpan Seconds(string url, string name, string value) =>
        double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) && seconds > 0 && seconds < TimeSpan.MaxValue.TotalSeconds
            ? TimeSpan.FromSeconds(seconds)
            : throw new FormatException($"'{ConnectionPart(url)}': option '{name}' needs a positive number of seconds, not '{value}'");

    private static EndPoint ParseEndPoint(string host, int defaultPort, string url)
    {
        string name;
        var port = defaultPort;
        if (host.StartsWith('['))
        {
            var close = host.IndexOf(']', StringComparison.Ordinal);
            if (close < 0)
            {
                throw new FormatException($"'{url}': unclosed IPv6 address in '{host}'.");
            }

            name = host[1..close];
            var after = host[(close + 1)..];
            if (after.Length > 0)
            {
                port = after.StartsWith(':') ? ParsePort(after[1..], url) : throw new FormatException($"'{url}': unexpected '{after}' after an IPv6 address.");
            }
        }
        else
        {
            var colon = host.LastIndexOf(':');
            name = colon < 0 ? host : host[..colon];
            if (colon >= 0)
            {
                port = ParsePort(host[(colon + 1)..], url);
            }
        }

        if (name.Length == 0)
        {
            throw new FormatException($"'{url}' names no host.");
        }

        return IPAddress.TryParse(name, out var address) ? new IPEndPoint(address, port) : new DnsEndPoint(name, port);
    }

    private static int ParsePort(string text, string url) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var port) && port is > 0 and <= 65535
            ? port
            : throw new FormatException($"'{url}': '{text}' is not a port.");
}
