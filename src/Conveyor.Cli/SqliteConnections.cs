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
        try
        {
            return SqliteUrl.Parse("sqlite://" + rest);
        }
        catch (FormatException ex)
        {
            throw new CliException(ex.Message.Replace("sqlite://" + rest, url, StringComparison.Ordinal));
        }
    }
}
