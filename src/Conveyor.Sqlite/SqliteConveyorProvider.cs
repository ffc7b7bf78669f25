using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Conveyor.Sqlite;

/// <summary>The <c>sqlite://</c> provider for configuration-driven setup (<c>UseSqlite()</c>).</summary>
internal sealed class SqliteConveyorProvider(IEnumerable<IConfigureOptions<SqliteConveyorOptions>> configure) : IConveyorProvider
{
    public string Name => "SQLite";

    public IReadOnlyList<string> Schemes { get; } = ["sqlite"];

    public ConveyorComponents Components => ConveyorComponents.Broker | ConveyorComponents.ResultBackend | ConveyorComponents.Lock;

    public IReadOnlyList<string> UrlForms { get; } =
    [
        "sqlite://conveyor.db (relative to the working folder)",
        "sqlite:///var/lib/conveyor.db (absolute)",
        "…?visibility_timeout=6&result_ttl=3600&busy_timeout=5 (seconds)",
    ];

    public string? Validate(string url)
    {
        try
        {
            SqliteUrl.Parse(url);
            return null;
        }
        catch (FormatException ex)
        {
            return ex.Message;
        }
    }

    public IBroker CreateBroker(string url, IServiceProvider services) =>
        new SqliteBroker(Options(url), services.GetService<TimeProvider>(), services.GetService<ILoggerFactory>());

    public IResultBackend CreateResultBackend(string url, IServiceProvider services) =>
        new SqliteResultBackend(Options(url), services.GetService<TimeProvider>(), services.GetService<ILoggerFactory>());

    public IDistributedLock CreateLock(string url, IServiceProvider services) =>
        new SqliteDistributedLock(Options(url), services.GetService<TimeProvider>(), services.GetService<ILoggerFactory>());

    public IManagementStore? CreateManagementStore(string url, bool ownsBroker, IServiceProvider services) =>
        new SqliteManagementStore(Options(url), ownsBroker, services.GetService<TimeProvider>(), services.GetService<ILoggerFactory>());

    // The URL gives the file and its query options; code (UseSqlite's configure) then adjusts the rest.
    private SqliteConveyorOptions Options(string url)
    {
        var options = SqliteUrl.Parse(url);
        foreach (var action in configure)
        {
            action.Configure(options);
        }

        return options;
    }
}
