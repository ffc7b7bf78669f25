using Microsoft.Extensions.Logging;

namespace Conveyor.Cli;

/// <summary>Opens the SQLite provider (wired once Conveyor.Sqlite is referenced).</summary>
internal static class SqliteConnections
{
    public static IBroker OpenBroker(string path, ILoggerFactory loggerFactory) =>
        throw new CliException($"sqlite:// is not available in this build ({path}, {loggerFactory}); use memory://");

    public static IResultBackend OpenBackend(string path, ILoggerFactory loggerFactory) =>
        throw new CliException($"sqlite:// is not available in this build ({path}, {loggerFactory}); use memory://");
}
