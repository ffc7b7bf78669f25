namespace Conveyor;

/// <summary>Helpers for connection URLs in messages and logs.</summary>
public static class ConveyorUrls
{
    /// <summary>
    /// Hides the password of every URL in a comma-separated list (<c>amqp://u:***@a/,amqp://u:***@b/</c>) before it
    /// goes into a message or a log. Text without a password is returned as it is.
    /// </summary>
    /// <param name="url">A URL, or several separated by commas.</param>
    /// <returns>The URL with each password replaced by <c>***</c>.</returns>
    public static string Redact(string url)
    {
        ArgumentNullException.ThrowIfNull(url);
        return url.Contains(',', StringComparison.Ordinal)
            ? string.Join(',', url.Split(',').Select(RedactOne))
            : RedactOne(url);
    }

    private static string RedactOne(string url)
    {
        var schemeEnd = url.IndexOf("://", StringComparison.Ordinal);
        var at = url.LastIndexOf('@');
        if (schemeEnd < 0 || at < schemeEnd)
        {
            return url;
        }

        var colon = url.IndexOf(':', schemeEnd + 3);
        return colon > 0 && colon < at ? string.Concat(url.AsSpan(0, colon + 1), "***", url.AsSpan(at)) : url;
    }
}
