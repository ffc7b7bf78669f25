using Conveyor;
using Conveyor.RabbitMQ;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Adds the RabbitMQ broker to a Conveyor host.</summary>
public static class RabbitMqConveyorBuilderExtensions
{
    /// <summary>
    /// Lets <c>amqp://</c> and <c>amqps://</c> URLs in <c>Conveyor:Broker</c> work, and makes <paramref name="url"/>
    /// the broker when configuration names none. RabbitMQ is a broker only: the result backend comes from
    /// <c>Conveyor:ResultBackend</c> (or <c>UseRedis(url)</c> / <c>UseSqlite(url)</c>).
    /// </summary>
    /// <param name="builder">The builder.</param>
    /// <param name="url">An AMQP URL such as <c>amqp://guest:guest@localhost:5672/</c> (several, comma-separated, for failover); <see langword="null"/> to take it from configuration only. The default value is <see langword="null"/>.</param>
    /// <param name="configure">Adjusts the broker's settings (exchange, priorities, quorum queues, …); <see langword="null"/> for none.</param>
    /// <returns>The builder.</returns>
    public static IConveyorBuilder UseRabbitMq(this IConveyorBuilder builder, string? url = null, Action<RabbitMqBrokerOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        if (configure is not null)
        {
            builder.Services.Configure(configure);
        }

        return builder.AddProvider<RabbitMqConveyorProvider>(url, defaultResultBackend: null);
    }
}
