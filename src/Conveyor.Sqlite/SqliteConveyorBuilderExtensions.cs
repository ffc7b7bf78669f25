using Conveyor;
using Conveyor.Sqlite;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Adds the SQLite provider to a Conveyor host.</summary>
public static class SqliteConveyorBuilderExtensions
{
    /// <summary>The database used when neither configuration nor code names one: <c>sqlite://conveyor.db</c>.</summary>
    public const string DefaultUrl = "sqlite://conveyor.db";

    /// <summary>
    /// Lets <c>sqlite://</c> URLs in <c>Conveyor:Broker</c>, <c>Conveyor:ResultBackend</c> and <c>Conveyor:Lock</c>
    /// work, and makes <paramref name="url"/> the broker and result backend when configuration names none.
    /// </summary>
    /// <param name="builder">The builder.</param>
    /// <param name="url">
    /// The database: a <c>sqlite://</c> URL or a file path. The default value is <c>sqlite://conveyor.db</c> in the
    /// working directory.
    /// </param>
    /// <param name="configure">Adjusts the provider's settings after the URL's; <see langword="null"/> for none.</param>
    /// <returns>The builder.</returns>
    public static IConveyorBuilder UseSqlite(this IConveyorBuilder builder, string? url = DefaultUrl, Action<SqliteConveyorOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        if (configure is not null)
        {
            builder.Services.Configure(configure);
        }

        var effective = url is null || url.Contains("://", StringComparison.Ordinal) ? url : "sqlite://" + url;
        return builder.AddProvider<SqliteConveyorProvider>(effective, effective);
    }
}
