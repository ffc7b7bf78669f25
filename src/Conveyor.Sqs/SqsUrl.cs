using System.Globalization;
using Conveyor.Aws;

namespace Conveyor.Sqs;

/// <summary>
/// Parses the broker's connection URL: <c>sqs://[region]/[account]/[?setting=value&amp;…]</c>.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item><c>sqs://eu-west-1/</c>: queues of the caller's account in eu-west-1; <c>sqs://</c> takes the region from the SDK's chain.</item>
/// <item><c>sqs://us-east-1/123456789012/</c>: queues of account 123456789012 (the path machinery's broker URL
/// <c>https://sqs.us-east-1.amazonaws.com/123456789012</c> ends with).</item>
/// <item>Settings: <c>endpoint</c> (an http(s) URL, for a local emulator), <c>visibility_timeout</c>,
/// <c>heartbeat_interval</c> and <c>wait_time</c> (seconds), <c>create_queues</c> (true/false),
/// <c>max_receive_count</c> (a redrive policy on the queues the broker creates).</item>
/// </list>
/// Credentials never go in the URL: they come from the SDK's chain (environment, profile, role).
/// </remarks>
public static class SqsUrl
{
    /// <summary>The URL scheme.</summary>
    public const string Scheme = "sqs";

    private const string Usage = "use sqs://[region]/[account]/[?endpoint=http://127.0.0.1:4566&visibility_timeout=30&heartbeat_interval=10&wait_time=20&create_queues=true&max_receive_count=5]";

    /// <summary>Parses a URL into broker settings.</summary>
    /// <param name="url">The URL.</param>
    /// <returns>The settings the URL gives (the rest keep their defaults).</returns>
    /// <exception cref="FormatException">The URL is not of this form; the message says what is wrong in one line, without secrets.</exception>
    public static SqsBrokerOptions Parse(string url)
    {
        var options = new SqsBrokerOptions();
        Apply(url, options);
        return options;
    }

    /// <summary>Applies a URL's region, account and settings to <paramref name="options"/>.</summary>
    /// <param name="url">The URL.</param>
    /// <param name="options">The settings to change.</param>
    /// <exception cref="FormatException">The URL is not of this form.</exception>
    public static void Apply(string url, SqsBrokerOptions options)
    {
        ArgumentException.ThrowIfNullOrEmpty(url);
        ArgumentNullException.ThrowIfNull(options);
        var (rest, settings) = AwsUrlParts.Split(
            url,
            Scheme,
            $"not an SQS URL: {Usage}.",
            "an sqs:// URL carries no credentials: they come from the AWS SDK's chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile or a role).");
        var parts = rest.Split('/');
        var region = parts[0];
        if (region.Length > 0)
        {
            options.Region = AwsUrlParts.Region(Scheme, region, Usage);
        }

        var path = parts.Skip(1).Where(p => p.Length > 0).ToArray();
        if (path.Length > 1)
        {
            throw new FormatException($"sqs:// URL: the path is at most an account id, not '{string.Join('/', path)}'; {Usage}.");
        }

        if (path.Length == 1)
        {
            if (path[0].Length != 12 || !path[0].All(char.IsAsciiDigit))
            {
                throw new FormatException($"sqs:// URL: '{path[0]}' is not a 12-digit AWS account id; {Usage}.");
            }

            options.AccountId = path[0];
        }

        foreach (var (name, value) in settings)
        {
            switch (name)
            {
                case "endpoint":
                    options.ServiceUrl = AwsUrlParts.Endpoint(Scheme, value, "http://127.0.0.1:4566");
                    break;
                case "visibility_timeout":
                    options.VisibilityTimeout = AwsUrlParts.Seconds(Scheme, name, value, 1, 43_200);
                    break;
                case "heartbeat_interval":
                    options.HeartbeatInterval = AwsUrlParts.Seconds(Scheme, name, value, 0.1, 43_200);
                    break;
                case "wait_time":
                    options.WaitTime = AwsUrlParts.Seconds(Scheme, name, value, 0, 20);
                    break;
                case "create_queues":
                    options.CreateQueues = AwsUrlParts.Flag(Scheme, name, value);
                    break;
                case "max_receive_count":
                    options.MaxReceiveCount = int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var count) && count is >= 1 and <= 1000
                        ? count
                        : throw new FormatException("sqs:// URL: max_receive_count must be a whole number from 1 to 1000.");
                    break;
                default:
                    throw new FormatException($"sqs:// URL: unknown setting '{name}'; the settings are endpoint, visibility_timeout, heartbeat_interval, wait_time, create_queues, max_receive_count.");
            }
        }

        AwsUrlParts.Validate(Scheme, options.Validate);
    }
}
