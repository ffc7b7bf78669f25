using Microsoft.Extensions.Options;

namespace Conveyor.Hosting;

/// <summary>Finds the provider for each configured URL and asks it for the broker, backend and lock.</summary>
internal sealed class ConveyorConnections(IOptions<ConveyorOptions> options, IEnumerable<IConveyorProvider> providers, IServiceProvider services)
{
    public const string BrokerSetting = ConveyorOptions.SectionName + ":Broker";
    public const string ResultBackendSetting = ConveyorOptions.SectionName + ":ResultBackend";
    public const string LockSetting = ConveyorOptions.SectionName + ":Lock";

    // Reading Value runs the validators, so a bad URL fails here with the same one-line message as at host start.
    public IBroker CreateBroker()
    {
        var url = options.Value.Broker;
        return Find(providers, url).CreateBroker(url, services);
    }

    public IResultBackend CreateResultBackend()
    {
        var url = ResultBackendUrl(options.Value);
        return Find(providers, url).CreateResultBackend(url, services);
    }

    public IDistributedLock CreateLock()
    {
        var url = LockUrl(options.Value);
        return Find(providers, url).CreateLock(url, services);
    }

    public static string ResultBackendUrl(ConveyorOptions options) =>
        string.IsNullOrWhiteSpace(options.ResultBackend) ? options.Broker : options.ResultBackend;

    public static string LockUrl(ConveyorOptions options) =>
        string.IsNullOrWhiteSpace(options.Lock) ? ResultBackendUrl(options) : options.Lock;

    public static IConveyorProvider Find(IEnumerable<IConveyorProvider> providers, string url) =>
        TryFind(providers, url) ?? throw new InvalidOperationException($"No Conveyor provider for '{Redact(url)}'.");

    public static IConveyorProvider? TryFind(IEnumerable<IConveyorProvider> providers, string url)
    {
        var separator = url.IndexOf("://", StringComparison.Ordinal);
        if (separator <= 0)
        {
            return null;
        }

        var scheme = url[..separator];
        return providers.FirstOrDefault(p => p.Schemes.Contains(scheme, StringComparer.OrdinalIgnoreCase));
    }

    /// <summary>Hides a password in a URL before it goes into a message or a log.</summary>
    public static string Redact(string url)
    {
        var schemeEnd = url.IndexOf("://", StringComparison.Ordinal);
        var at = url.LastIndexOf('@');
        if (schemeEnd < 0 || at < schemeEnd)
        {
            return url;
        }

        var colon = url.IndexOf(':', schemeEnd + 3);
        return colon > 0 && colon < at ? string.Concat(url.AsSpan(0, colon + 1), "***", url.AsSpan(at)) : url;
    }
}
