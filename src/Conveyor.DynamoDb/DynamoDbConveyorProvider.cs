using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Conveyor.DynamoDb;

/// <summary>
/// The <c>dynamodb://</c> provider for configuration-driven setup (<c>UseDynamoDb()</c>): a result backend only; pair
/// it with a broker of another provider (<c>sqs://</c>, …).
/// </summary>
internal sealed class DynamoDbConveyorProvider(IEnumerable<IConfigureOptions<DynamoDbBackendOptions>> configure) : IConveyorProvider
{
    public string Name => "DynamoDB";

    public IReadOnlyList<string> Schemes { get; } = [DynamoDbUrl.Scheme];

    public ConveyorComponents Components => ConveyorComponents.ResultBackend;

    public IReadOnlyList<string> UrlForms { get; } =
    [
        "dynamodb://[region] (result backend only; credentials and a missing region from the AWS SDK's chain)",
        "…?endpoint=http://127.0.0.1:8000&states_table=task_states&groups_table=group_metas&result_ttl=3600&create_tables=true (seconds)",
    ];

    // One cheap call (ListTables, one name) with the URL's region, endpoint and the SDK's credentials: a wrong
    // endpoint, region or missing credentials fail here, at start, instead of at the first state written.
    public async ValueTask ConnectAsync(string url, IServiceProvider services, CancellationToken cancellationToken = default)
    {
        var options = Options(url);
        if (options.Client is { } client)
        {
            await client.ListTablesAsync(new Amazon.DynamoDBv2.Model.ListTablesRequest { Limit = 1 }, cancellationToken).ConfigureAwait(false);
            return;
        }

        using var probe = DynamoDbResultBackend.CreateClient(options);
        await probe.ListTablesAsync(new Amazon.DynamoDBv2.Model.ListTablesRequest { Limit = 1 }, cancellationToken).ConfigureAwait(false);
    }

    public string? Validate(string url)
    {
        try
        {
            DynamoDbUrl.Parse(url);
            return null;
        }
        catch (FormatException ex)
        {
            return ex.Message;
        }
    }

    public IBroker CreateBroker(string url, IServiceProvider services) =>
        throw new NotSupportedException("DynamoDB is a result backend only: use another provider's URL (sqs://, redis://, amqp://) as the broker.");

    public IResultBackend CreateResultBackend(string url, IServiceProvider services) =>
        new DynamoDbResultBackend(Options(url), services.GetService<TimeProvider>(), services.GetService<ILoggerFactory>());

    public IDistributedLock CreateLock(string url, IServiceProvider services) =>
        throw new NotSupportedException("The DynamoDB provider has no lock yet: give Conveyor:Lock a redis:// or sqlite:// URL for the scheduler.");

    // The URL's settings first, then code (UseDynamoDb's configure).
    private DynamoDbBackendOptions Options(string url)
    {
        var options = DynamoDbUrl.Parse(url);
        foreach (var action in configure)
        {
            action.Configure(options);
        }

        return options;
    }
}
