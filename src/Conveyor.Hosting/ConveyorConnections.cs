using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Conveyor.Hosting;

/// <summary>
/// Finds the provider for each configured URL, connects to it at start (<see cref="ConnectAsync"/>) and asks it for
/// the broker, backend and lock.
/// </summary>
internal sealed partial class ConveyorConnections(IOptions<ConveyorOptions> options, IEnumerable<IConveyorProvider> providers, IServiceProvider services)
{
    private readonly Lock _gate = new();
    private Task? _connect;

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

    /// <summary>
    /// The management store: the broker's provider's, or else (a RabbitMQ broker) the result backend's, which then
    /// keeps the control state but cannot list the broker's messages; <see langword="null"/> when neither keeps one.
    /// </summary>
    public IManagementStore? CreateManagementStore()
    {
        var settings = options.Value;
        var broker = Find(providers, settings.Broker);
        var store = broker.CreateManagementStore(settings.Broker, ownsBroker: true, services);
        if (store is null)
        {
            var backend = ResultBackendUrl(settings);
            store = Find(providers, backend).CreateManagementStore(backend, ownsBroker: false, services);
            if (store is not null)
            {
                store = broker.ExtendManagementStore(settings.Broker, store, services);
            }
        }

        return store;
    }

    /// <summary>
    /// Connects to every configured engine once; later callers share the first attempt. With
    /// <see cref="ConveyorOptions.FailFast"/> an engine that does not answer within
    /// <see cref="ConveyorOptions.ConnectTimeout"/> throws <see cref="ConveyorConnectionException"/> (one line per
    /// setting, passwords masked); without, it is logged once and the host starts anyway.
    /// </summary>
    public Task ConnectAsync(CancellationToken cancellationToken)
    {
        lock (_gate)
        {
            _connect ??= ConnectOnceAsync();
        }

        return _connect.WaitAsync(cancellationToken);
    }

    private async Task ConnectOnceAsync()
    {
        var settings = options.Value;
        List<(string Setting, string Url)> targets = [(BrokerSetting, settings.Broker), (ResultBackendSetting, ResultBackendUrl(settings))];
        if (!string.IsNullOrWhiteSpace(settings.Lock))
        {
            targets.Add((LockSetting, settings.Lock));
        }

        var failures = new List<string>();
        foreach (var (setting, url) in targets.DistinctBy(t => t.Url, StringComparer.Ordinal))
        {
            using var timeout = new CancellationTokenSource(settings.ConnectTimeout);
            try
            {
                await Find(providers, url).ConnectAsync(url, services, timeout.Token).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                var reason = ex is OperationCanceledException ? $"no answer within {settings.ConnectTimeout.TotalSeconds:0.###} s" : OneLine(ex);
                failures.Add($"{setting}: {Redact(url)}: {HidePassword(reason, url)}");
            }
        }

        if (failures.Count == 0)
        {
            return;
        }

        var message = string.Join("; ", failures);
        if (settings.FailFast)
        {
            throw new ConveyorConnectionException(message);
        }

        LogUnreachable(services.GetService<ILoggerFactory>()?.CreateLogger<ConveyorConnections>() ?? NullLogger<ConveyorConnections>.Instance, message);
    }

    private static string OneLine(Exception ex) => (ex.InnerException is { } inner && ex.Message.Length == 0 ? inner.Message : ex.Message).ReplaceLineEndings(" ").Trim();

    // A provider's message names endpoints, not secrets; this is the belt to those braces.
    private static string HidePassword(string text, string url)
    {
        var redacted = Redact(url);
        if (redacted == url)
        {
            return text;
        }

        var schemeEnd = url.IndexOf("://", StringComparison.Ordinal) + 3;
        var userInfo = url[schemeEnd..url.LastIndexOf('@')];
        var password = userInfo[(userInfo.IndexOf(':', StringComparison.Ordinal) + 1)..];
        return password.Length == 0 ? text : text.Replace(password, "***", StringComparison.Ordinal);
    }

    [LoggerMessage(5001, LogLevel.Warning, "Starting although not every engine answers (Conveyor:FailFast is off; the health checks report it, and the connection keeps retrying): {Problem}")]
    private static partial void LogUnreachable(ILogger logger, string problem);

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
    public static string Redact(string url) => ConveyorUrls.Redact(url);
}
