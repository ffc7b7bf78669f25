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

    public IBroker CreateBroker(string url, IServiceProvider services)
    {
        // The URL's settings first, then code (UseSqs's configure).
        var options = SqsUrl.Parse(url);
        foreach (var action in configure)
        {
            action.Configure(options);
        }

        return new SqsBroker(options, services.GetService<TimeProvider>(), services.GetService<ILoggerFactory>());
    }

    public IResultBackend CreateResultBackend(string url, IServiceProvider services) =>
        throw new NotSupportedException("SQS is a broker only: use another provider's URL (dynamodb://, redis://, sqlite://) as the result backend.");

    public IDistributedLock CreateLock(string url, IServiceProvider services) =>
        throw new NotSupportedException("SQS has no locks: the scheduler's lock comes from the result backend's provider.");
}
