using System.Globalization;

namespace Conveyor.Aws;

/// <summary>
/// What the <c>sqs://</c> and <c>dynamodb://</c> URLs have in common: <c>scheme://path?setting=value&amp;…</c>, no
/// credentials (they come from the AWS SDK's chain), a region as the first path segment, an <c>endpoint</c> for a
/// local emulator, and settings in seconds or true/false. Linked into both provider packages (neither depends on the
/// other); every error is a <see cref="FormatException"/> whose message starts with the scheme.
/// </summary>
internal static class AwsUrlParts
{
    /// <summary>Splits a URL into its path (after <c>://</c>) and its settings, lower-case names, unescaped.</summary>
    /// <param name="url">The URL.</param>
    /// <param name="scheme">The provider's scheme.</param>
    /// <param name="notThisKind">The error for a URL of another scheme.</param>
    /// <param name="credentialsError">The error for a URL with user info.</param>
    /// <returns>The path and the settings in URL order.</returns>
    public static (string Path, List<(string Name, string Value)> Settings) Split(string url, string scheme, string notThisKind, string credentialsError)
    {
        var separator = url.IndexOf("://", StringComparison.Ordinal);
        if (separator <= 0 || !url[..separator].Equals(scheme, StringComparison.OrdinalIgnoreCase))
        {
            throw new FormatException(notThisKind);
        }

        var rest = url[(separator + 3)..];
        var queryStart = rest.IndexOf('?', StringComparison.Ordinal);
        var query = queryStart < 0 ? string.Empty : rest[(queryStart + 1)..];
        if (queryStart >= 0)
        {
            rest = rest[..queryStart];
        }

        if (rest.Contains('@', StringComparison.Ordinal))
        {
            throw new FormatException(credentialsError);
        }

        var settings = new List<(string Name, string Value)>();
        foreach (var pair in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var equals = pair.IndexOf('=', StringComparison.Ordinal);
            settings.Add((
                Uri.UnescapeDataString(equals < 0 ? pair : pair[..equals]).ToLowerInvariant(),
                equals < 0 ? string.Empty : Uri.UnescapeDataString(pair[(equals + 1)..])));
        }

        return (rest, settings);
    }

    /// <summary>Whether the text looks like an AWS region (<c>us-east-1</c>).</summary>
    public static bool IsRegion(string region) =>
        region.Length is >= 4 and <= 32 && region.All(c => char.IsAsciiLetterOrDigit(c) || c == '-') && region.Contains('-', StringComparison.Ordinal);

    /// <summary>The region, lower-case, or an error naming it.</summary>
    public static string Region(string scheme, string region, string usage) =>
        IsRegion(region) ? region.ToLowerInvariant()
        : throw new FormatException($"{scheme}:// URL: '{region}' is not an AWS region (such as us-east-1); {usage}.");

    /// <summary>The <c>endpoint</c> setting: an http(s) URL without credentials.</summary>
    public static Uri Endpoint(string scheme, string value, string example) =>
        Uri.TryCreate(value, UriKind.Absolute, out var endpoint) && endpoint.Scheme is "http" or "https" && endpoint.UserInfo.Length == 0
            ? endpoint
            : throw new FormatException($"{scheme}:// URL: endpoint must be an http:// or https:// URL without credentials, such as {example}.");

    /// <summary>A setting in seconds, from <paramref name="min"/> to <paramref name="max"/>.</summary>
    public static TimeSpan Seconds(string scheme, string name, string value, double min, double max) =>
        double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) && seconds >= min && seconds <= max
            ? TimeSpan.FromSeconds(seconds)
            : throw new FormatException($"{scheme}:// URL: {name} must be a number of seconds from {min.ToString(CultureInfo.InvariantCulture)} to {max.ToString(CultureInfo.InvariantCulture)}.");

    /// <summary>A true/false setting (also 1/0).</summary>
    public static bool Flag(string scheme, string name, string value) => value.ToLowerInvariant() switch
    {
        "true" or "1" => true,
        "false" or "0" => false,
        _ => throw new FormatException($"{scheme}:// URL: {name} must be true or false."),
    };

    /// <summary>Runs the options' own validation, its message as the URL's error.</summary>
    public static void Validate(string scheme, Action validate)
    {
        try
        {
            validate();
        }
        catch (ArgumentException ex)
        {
            throw new FormatException($"{scheme}:// URL: " + ex.Message, ex);
        }
    }
}
