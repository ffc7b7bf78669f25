using System.Globalization;

namespace Conveyor.Sqlite;

/// <summary>Reads <c>sqlite://</c> URLs into <see cref="SqliteConveyorOptions"/>.</summary>
public static class SqliteUrl
{
    /// <summary>
    /// Parses <c>sqlite://PATH[?option=value&amp;…]</c>: <c>sqlite://conveyor.db</c> is relative to the working
    /// directory, <c>sqlite:///var/lib/conveyor.db</c> absolute. Options, in seconds: <c>visibility_timeout</c>,
    /// <c>result_ttl</c>, <c>busy_timeout</c>.
    /// </summary>
    /// <param name="url">The URL.</param>
    /// <returns>The options, with <see cref="SqliteConveyorOptions.DatabasePath"/> made absolute.</returns>
    /// <exception cref="FormatException">The URL is not a usable <c>sqlite://</c> URL; the message says why, in one line.</exception>
    public static SqliteConveyorOptions Parse(string url)
    {
        ArgumentNullException.ThrowIfNull(url);
        const string Scheme = "sqlite://";
        if (!url.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase))
        {
            throw new FormatException($"'{url}' is not a sqlite:// URL");
        }

        var rest = url[Scheme.Length..];
        var query = rest.IndexOf('?', StringComparison.Ordinal);
        var pathPart = query < 0 ? rest : rest[..query];
        if (pathPart.Length == 0)
        {
            throw new FormatException($"'{url}' names no database file; use sqlite://conveyor.db or sqlite:///absolute/path.db");
        }

        var path = Path.GetFullPath(Uri.UnescapeDataString(pathPart));
        var directory = Path.GetDirectoryName(path);
        if (directory is not null && !Directory.Exists(directory))
        {
            throw new FormatException($"cannot open {url}: the folder {directory} does not exist");
        }

        var options = new SqliteConveyorOptions { DatabasePath = path };
        if (query >= 0)
        {
            foreach (var pair in rest[(query + 1)..].Split('&', StringSplitOptions.RemoveEmptyEntries))
            {
                var equals = pair.IndexOf('=', StringComparison.Ordinal);
                var name = equals < 0 ? pair : pair[..equals];
                var value = equals < 0 ? string.Empty : pair[(equals + 1)..];
                var seconds = double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var parsed) && parsed > 0
                    ? TimeSpan.FromSeconds(parsed)
                    : throw new FormatException($"{url}: option '{name}' needs a positive number of seconds, not '{value}'");
                switch (name)
                {
                    case "visibility_timeout": options.VisibilityTimeout = seconds; break;
                    case "result_ttl": options.ResultTtl = seconds; break;
                    case "busy_timeout": options.BusyTimeout = seconds; break;
                    default: throw new FormatException($"{url}: unknown option '{name}'; use visibility_timeout, result_ttl or busy_timeout (seconds)");
                }
            }
        }

        return options;
    }
}
