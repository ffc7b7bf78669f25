using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Conveyor.Hosting.Tests;

internal static class HostBuilders
{
    /// <summary>A host whose configuration is exactly <paramref name="settings"/> (no files, no environment).</summary>
    public static HostApplicationBuilder Create(IDictionary<string, string?> settings)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(settings);
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(10));
        return builder;
    }

    public static string UniqueQueue(string test) => $"hosting-{test}-{Guid.NewGuid():N}";
}
