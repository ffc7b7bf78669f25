using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Conveyor.Sqs;

/// <summary>
/// The <c>sqs://</c> provider for configuration-driven setup (<c>UseSqs()</c>): a broker only; pair it with a result
/// backend of another provider (<c>dynamodb://</c>, <c>redis://</c>, …).
/// </summary>
internal sealed class SqsConveyorProvider(IEnumerable<IConfigureOptions<SqsBrokerOptions>> configure) : IConveyorProvider
{
    public string Name => "SQS";

    public IReadOnlyList<string> Schemes { get; } = [SqsUrl.Scheme];

    public ConveyorComponents Components => ConveyorComponents.Broker;

    public IReadOnlyList<string> UrlForms { get; } =
    [
        "sqs://[region]/[account]/ (broker only; credentials and a missing region from the AWS SDK's chain)",
        "…?endpoint=http://127.0.0.1:4566&visibility_timeout=30&heartbeat_interval=10&wait_time=20&create_queues=true&max_receive_count=5 (seconds)",
    ];

    // One cheap call (ListQueues, one result) with the URL's region, endpoint and the SDK's credentials: a wrong
    // endpoint, region or missing credentials fail here, at start, instead of at the first publish.
    public async ValueTask ConnectAsync(string url, IServiceProvider services, CancellationToken cancellationToken = default)
    {
        var options = Options(url);
        if (options.Client is { } client)
        {
            await client.ListQueuesAsync(new Amazon.SQS.Model.ListQueuesRequest { MaxResults = 1 }, cancellationToken).ConfigureAwait(false);
            return;
        }

        using var probe = SqsBroker.CreateClient(options);
        await probe.ListQueuesAsync(new Amazon.SQS.Model.ListQueuesRequest { MaxResults = 1 }, cancellationToken).ConfigureAwait(false);
    }

    public string? Validate(string url)
    {
        try
        {
            SqsUrl.Parse(url);
            return null;
        }
        catch (FormatException ex)
        {
            return ex.Message;
        }
    }

    public IBroker CreateBroker(string url, IServiceProvider services) =>
        new SqsBroker(Options(url), services.GetService<TimeProvider>(), services.GetService<ILoggerFactory>());

    public IResultBackend CreateResultBackend(string url, IServiceProvider services) =>
        throw new NotSupportedException("SQS is a broker only: use another provider's URL (dynamodb://, redis://, sqlite://) as the result backend.");

    public IDistributedLock CreateLock(string url, IServiceProvider services) =>
        throw new NotSupportedException("SQS has no locks: the scheduler's lock comes from the result backend's provider.");

    // The URL's settings first, then code (UseSqs's configure).
    private SqsBrokerOptions Options(string url)
    {
        var options = SqsUrl.Parse(url);
        foreach (var action in configure)
        {
            action.Configure(options);
        }

        return options;
    }
}
