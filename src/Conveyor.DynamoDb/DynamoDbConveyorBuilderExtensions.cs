using Conveyor;
using Conveyor.DynamoDb;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Adds the Amazon DynamoDB result backend to a Conveyor host.</summary>
public static class DynamoDbConveyorBuilderExtensions
{
    /// <summary>
    /// Lets <c>dynamodb://</c> URLs in <c>Conveyor:ResultBackend</c> work (see <see cref="DynamoDbUrl"/>), and makes
    /// <paramref name="url"/> the result backend when configuration names none. DynamoDB is a result backend only:
    /// configure a broker of another provider.
    /// </summary>
    /// <param name="builder">The builder.</param>
    /// <param name="url">A DynamoDB URL such as <c>dynamodb://eu-west-1</c>; <see langword="null"/> to take the URL from configuration only. The default value is <see langword="null"/>.</param>
    /// <param name="configure">Adjusts the backend's settings (credentials, client, tables, …); <see langword="null"/> for none.</param>
    /// <returns>The builder.</returns>
    public static IConveyorBuilder UseDynamoDb(this IConveyorBuilder builder, string? url = null, Action<DynamoDbBackendOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        if (configure is not null)
        {
            builder.Services.Configure(configure);
        }

        return builder.AddProvider<DynamoDbConveyorProvider>(null, url);
    }
}
