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

    public IResultBackend CreateResultBackend(string url, IServiceProvider services)
    {
        // The URL's settings first, then code (UseDynamoDb's configure).
        var options = DynamoDbUrl.Parse(url);
        foreach (var action in configure)
        {
            action.Configure(options);
        }

        return new DynamoDbResultBackend(options, services.GetService<TimeProvider>(), services.GetService<ILoggerFactory>());
    }

    public IDistributedLock CreateLock(string url, IServiceProvider services) =>
        throw new NotSupportedException("The DynamoDB provider has no lock yet: give Conveyor:Lock a redis:// or sqlite:// URL for the scheduler.");
}
