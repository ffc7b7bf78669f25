using Conveyor.Aws;

namespace Conveyor.DynamoDb;

/// <summary>
/// Parses the backend's connection URL: <c>dynamodb://[region][?setting=value&amp;…]</c>.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item><c>dynamodb://eu-west-1</c>: machinery's tables (<c>task_states</c>, <c>group_metas</c>) in eu-west-1;
/// <c>dynamodb://</c> takes the region from the SDK's chain.</item>
/// <item>Settings: <c>endpoint</c> (an http(s) URL, for a local emulator), <c>states_table</c>, <c>groups_table</c>,
/// <c>result_ttl</c> (seconds), <c>create_tables</c> (true/false).</item>
/// </list>
/// Credentials never go in the URL: they come from the SDK's chain (environment, profile, role).
/// </remarks>
public static class DynamoDbUrl
{
    /// <summary>The URL scheme.</summary>
    public const string Scheme = "dynamodb";

    private const string Usage = "use dynamodb://[region][?endpoint=http://127.0.0.1:8000&states_table=task_states&groups_table=group_metas&result_ttl=3600&create_tables=true]";

    /// <summary>Parses a URL into backend settings.</summary>
    /// <param name="url">The URL.</param>
    /// <returns>The settings the URL gives (the rest keep their defaults).</returns>
    /// <exception cref="FormatException">The URL is not of this form; the message says what is wrong in one line, without secrets.</exception>
    public static DynamoDbBackendOptions Parse(string url)
    {
        var options = new DynamoDbBackendOptions();
        Apply(url, options);
        return options;
    }

    /// <summary>Applies a URL's region and settings to <paramref name="options"/>.</summary>
    /// <param name="url">The URL.</param>
    /// <param name="options">The settings to change.</param>
    /// <exception cref="FormatException">The URL is not of this form.</exception>
    public static void Apply(string url, DynamoDbBackendOptions options)
    {
        ArgumentException.ThrowIfNullOrEmpty(url);
        ArgumentNullException.ThrowIfNull(options);
        var (path, settings) = AwsUrlParts.Split(
            url,
            Scheme,
            $"not a DynamoDB URL: {Usage}.",
            "a dynamodb:// URL carries no credentials: they come from the AWS SDK's chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, a profile or a role).");
        var region = path.TrimEnd('/');
        if (region.Contains('/', StringComparison.Ordinal))
        {
            throw new FormatException($"dynamodb:// URL: after the region comes no path ('{region}'); {Usage}.");
        }

        if (region.Length > 0)
        {
            options.Region = AwsUrlParts.Region(Scheme, region, Usage);
        }

        foreach (var (name, value) in settings)
        {
            switch (name)
            {
                case "endpoint":
                    options.ServiceUrl = AwsUrlParts.Endpoint(Scheme, value, "http://127.0.0.1:8000");
                    break;
                case "states_table":
                    options.StatesTable = DynamoDbBackendOptions.IsTableName(value) ? value
                        : throw new FormatException("dynamodb:// URL: states_table must be a DynamoDB table name (3 to 255 letters, digits, '_', '-' or '.').");
                    break;
                case "groups_table":
                    options.GroupsTable = DynamoDbBackendOptions.IsTableName(value) ? value
                        : throw new FormatException("dynamodb:// URL: groups_table must be a DynamoDB table name (3 to 255 letters, digits, '_', '-' or '.').");
                    break;
                case "result_ttl":
                    options.ResultTtl = AwsUrlParts.Seconds(Scheme, name, value, 1, 315_360_000);
                    break;
                case "create_tables":
                    options.CreateTables = AwsUrlParts.Flag(Scheme, name, value);
                    break;
                default:
                    throw new FormatException($"dynamodb:// URL: unknown setting '{name}'; the settings are endpoint, states_table, groups_table, result_ttl, create_tables.");
            }
        }

        AwsUrlParts.Validate(Scheme, options.Validate);
    }
}
