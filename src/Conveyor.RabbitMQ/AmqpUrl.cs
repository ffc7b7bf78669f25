using System.Globalization;
using Conveyor.Tls;

namespace Conveyor.RabbitMQ;

/// <summary>
/// Reads broker settings from URLs, as the <c>conveyor</c> command line takes them:
/// <c>amqp://user:password@host:5672/vhost?exchange=machinery_exchange&amp;max_priority=10</c>, <c>amqps://…</c> for TLS,
/// and several URLs separated by commas for failover (<c>amqp://h1:5672/,amqp://h2:5672/</c>).
/// </summary>
/// <remarks>
/// Query parameters (on any of the URLs): <c>exchange</c>, <c>exchange_type</c>, <c>binding_key</c>,
/// <c>max_priority</c>, <c>quorum</c> (<c>true</c>/<c>false</c>), <c>dead_letter_queue</c>, <c>publish_channels</c>,
/// <c>confirm_timeout</c> (seconds), <c>delay_granularity_ms</c>, <c>management</c> (the management plugin's
/// <c>http://host:15672</c>: see <see cref="RabbitMqBrokerOptions.ManagementUrl"/>), <c>ca</c> (a PEM file of CA certificates for
/// <c>amqps://</c>: see <see cref="RabbitMqBrokerOptions.CaCertificatesPath"/>). An empty path means the default virtual host <c>/</c>;
/// <c>%2F</c> in the path is the same.
/// </remarks>
public static class AmqpUrl
{
    /// <summary>Parses one URL or a comma-separated list of URLs.</summary>
    /// <param name="urls">The URL(s).</param>
    /// <returns>The options, with <see cref="RabbitMqBrokerOptions.Urls"/> and the query parameters applied.</returns>
    /// <exception cref="FormatException">A URL is malformed, or a parameter is unknown or out of range.</exception>
    public static RabbitMqBrokerOptions Parse(string urls)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(urls);
        var options = new RabbitMqBrokerOptions();
        foreach (var part in urls.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!Uri.TryCreate(part, UriKind.Absolute, out var uri) || uri.Scheme is not ("amqp" or "amqps") || string.IsNullOrEmpty(uri.Host))
            {
                throw new FormatException($"'{part}' is not an AMQP URL; use amqp://user:password@host:5672/vhost or amqps://… for TLS.");
            }

            foreach (var (key, value) in Query(uri))
            {
                Apply(options, key, value, part);
            }

            options.Urls.Add(string.IsNullOrEmpty(uri.Query) ? uri : new UriBuilder(uri) { Query = string.Empty }.Uri);
        }

        if (options.Urls.Count == 0)
        {
            throw new FormatException($"'{urls}' holds no AMQP URL.");
        }

        try
        {
            options.Validate();
        }
        catch (ArgumentException ex)
        {
            throw new FormatException($"'{urls}': {ex.Message}", ex);
        }

        if (options.CaCertificatesPath is { } caPath)
        {
            // A missing or unreadable CA file fails with the URL, before any connection.
            _ = CustomCertificateAuthority.Load(caPath, $"'{ConveyorUrls.Redact(urls)}'");
        }

        return options;
    }

    private static IEnumerable<(string Key, string Value)> Query(Uri uri)
    {
        var query = uri.Query.TrimStart('?');
        foreach (var pair in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var equals = pair.IndexOf('=', StringComparison.Ordinal);
            var key = Uri.UnescapeDataString(equals < 0 ? pair : pair[..equals]);
            var value = equals < 0 ? string.Empty : Uri.UnescapeDataString(pair[(equals + 1)..]);
            yield return (key.ToLowerInvariant(), value);
        }
    }

    private static void Apply(RabbitMqBrokerOptions options, string key, string value, string url)
    {
        switch (key)
        {
            case "exchange":
                options.Exchange = value;
                break;
            case "exchange_type":
                options.ExchangeType = value.ToLowerInvariant();
                break;
            case "binding_key":
                options.BindingKey = value;
                break;
            case "max_priority":
                options.MaxPriority = value.Length == 0 ? null : Int(value, key, url);
                break;
            case "quorum":
                options.UseQuorumQueues = value.Length == 0 || (bool.TryParse(value, out var quorum) ? quorum : throw new FormatException($"{url}: quorum must be true or false."));
                break;
            case "dead_letter_queue":
                options.DeadLetterQueue = value;
                break;
            case "publish_channels":
                options.PublishChannelPoolSize = Int(value, key, url);
                break;
            case "confirm_timeout":
                options.ConfirmTimeout = TimeSpan.FromSeconds(Double(value, key, url));
                break;
            case "ca":
                options.CaCertificatesPath = value;
                break;
            case "management":
                options.ManagementUrl = Uri.TryCreate(value, UriKind.Absolute, out var management) && management.Scheme is "http" or "https"
                    ? management
                    : throw new FormatException($"{ConveyorUrls.Redact(url)}: management must be the management plugin's http://host:15672 URL.");
                break;
            case "delay_granularity_ms":
                options.DelayGranularity = TimeSpan.FromMilliseconds(Double(value, key, url));
                break;
            default:
                throw new FormatException($"{url}: unknown parameter '{key}' (known: exchange, exchange_type, binding_key, max_priority, quorum, dead_letter_queue, publish_channels, confirm_timeout, delay_granularity_ms, management, ca).");
        }
    }

    private static int Int(string value, string key, string url) =>
        int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var result) ? result : throw new FormatException($"{url}: {key} must be an integer.");

    private static double Double(string value, string key, string url) =>
        double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var result) && result >= 0 ? result : throw new FormatException($"{url}: {key} must be a non-negative number.");
}
