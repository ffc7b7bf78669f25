using Conveyor;
using Conveyor.Redis;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Adds the Redis provider to a Conveyor host.</summary>
public static class RedisConveyorBuilderExtensions
{
    /// <summary>
    /// Lets <c>redis://</c>, <c>rediss://</c> and <c>redis+sentinel://</c> URLs in <c>Conveyor:Broker</c>,
    /// <c>Conveyor:ResultBackend</c> and <c>Conveyor:Lock</c> work, and makes <paramref name="url"/> the broker and
    /// result backend when configuration names none.
    /// </summary>
    /// <param name="builder">The builder.</param>
    /// <param name="url">A Redis URL such as <c>redis://localhost:6379/0</c>; <see langword="null"/> to take the URLs from configuration only. The default value is <see langword="null"/>.</param>
    /// <param name="configure">Adjusts the provider's settings (key prefix, visibility timeout, …); <see langword="null"/> for none.</param>
    /// <returns>The builder.</returns>
    public static IConveyorBuilder UseRedis(this IConveyorBuilder builder, string? url = null, Action<RedisConveyorOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        if (configure is not null)
        {
            builder.Services.Configure(configure);
        }

        return builder.AddProvider<RedisConveyorProvider>(url, url);
    }
}
