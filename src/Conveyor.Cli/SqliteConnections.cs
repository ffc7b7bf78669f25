using System.Globalization;
using Conveyor.Sqlite;
using Microsoft.Extensions.Logging;

namespace Conveyor.Cli;

/// <summary>
/// Opens the SQLite provider for <c>sqlite://PATH[?option=value&amp;...]</c>. <c>sqlite://conveyor.db</c> is relative to
/// the working directory, <c>sqlite:///var/lib/x.db</c> absolute. Options (seconds): <c>visibility_timeout</c>,
/// <c>result_ttl</c>, <c>busy_timeout</c>.
/// </summary>
internal static class SqliteConnections
{
    public static IBroker OpenBroker(string rest, string url, ILoggerFactory loggerFactory) => new SqliteBroker(Options(rest, url), loggerFactory: loggerFactory);

    public static IResultBackend OpenBackend(string rest, string url, ILoggerFactory loggerFactory) => new SqliteResultBackend(Options(rest, url), loggerFactory: loggerFactory);

    public static LockHandle OpenLock(string rest, string url, ILoggerFactory loggerFactory)
    {
        var locks = new SqliteDistributedLock(Options(rest, url), loggerFactory: loggerFactory);
        return new LockHandle(locks, locks);
    }

    public static SqliteConveyorOptions Options(string rest, string url)
    {
        var query = rest.IndexOf('?', StringComparison.Ordinal);
        var pathPart = query < 0 ? rest : rest[..query];
        if (pathPart.Length == 0)
        {
            throw new CliException($"'{url}' names no database file; use sqlite://conveyor.db or sqlite:///absolute/path.db");
        }

        var path = Path.GetFullPath(Uri.UnescapeDataString(pathPart));
        var directory = Path.GetDirectoryName(path);
        if (directory is not null && !Directory.Exists(directory))
        {
            throw new CliException($"cannot open {url}: the folder {directory} does not exist");
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
                    : throw new CliException($"{url}: option '{name}' needs a positive number of seconds, not '{value}'");
                switch (name)
                {
                    case "visibility_timeout": options.VisibilityTimeout = seconds; break;
                    case "result_ttl": options.ResultTtl = seconds; break;
                    case "busy_timeout": options.BusyTimeout = seconds; break;
                    default: throw new CliException($"{url}: unknown option '{name}'; use visibility_timeout, result_ttl or busy_timeout (seconds)");
                }
            }
        }

        return options;
    }
}
