using Conveyor;
using Conveyor.Sqs;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Adds the Amazon SQS broker to a Conveyor host.</summary>
public static class SqsConveyorBuilderExtensions
{
    /// <summary>
    /// Lets <c>sqs://</c> URLs in <c>Conveyor:Broker</c> work (see <see cref="SqsUrl"/>), and makes
    /// <paramref name="url"/> the broker when configuration names none. SQS is a broker only: configure a result
    /// backend of another provider.
    /// </summary>
    /// <param name="builder">The builder.</param>
    /// <param name="url">An SQS URL such as <c>sqs://eu-west-1/</c>; <see langword="null"/> to take the URL from configuration only. The default value is <see langword="null"/>.</param>
    /// <param name="configure">Adjusts the broker's settings (credentials, client, visibility timeout, …); <see langword="null"/> for none.</param>
    /// <returns>The builder.</returns>
    public static IConveyorBuilder UseSqs(this IConveyorBuilder builder, string? url = null, Action<SqsBrokerOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        if (configure is not null)
        {
            builder.Services.Configure(configure);
        }

        return builder.AddProvider<SqsConveyorProvider>(url, null);
    }
}
