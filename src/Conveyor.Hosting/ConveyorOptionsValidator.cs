using Microsoft.Extensions.Options;

namespace Conveyor.Hosting;

/// <summary>
/// Checks the configured URLs at host start: each must name a scheme some <c>Use…()</c> provider handles, that
/// provider must be able to play the part, and the provider must accept the URL. Each failure is one line that
/// starts with the setting's path (<c>Conveyor:Broker: …</c>), so the operator knows what to fix.
/// </summary>
internal sealed class ConveyorOptionsValidator(IEnumerable<IConveyorProvider> providers) : IValidateOptions<ConveyorOptions>
{
    public ValidateOptionsResult Validate(string? name, ConveyorOptions options)
    {
        var failures = new List<string>();
        var brokerUsable = Check(ConveyorConnections.BrokerSetting, options.Broker, ConveyorComponents.Broker, failures);
        if (!string.IsNullOrWhiteSpace(options.ResultBackend))
        {
            Check(ConveyorConnections.ResultBackendSetting, options.ResultBackend, ConveyorComponents.ResultBackend, failures);
        }
        else if (brokerUsable)
        {
            // An empty backend means the broker's URL; say so, since the operator never typed that URL there.
            Check(ConveyorConnections.ResultBackendSetting + " (not set, so the broker's URL)", options.Broker, ConveyorComponents.ResultBackend, failures);
        }

        if (!string.IsNullOrWhiteSpace(options.Lock))
        {
            Check(ConveyorConnections.LockSetting, options.Lock, ConveyorComponents.Lock, failures);
        }

        if (string.IsNullOrWhiteSpace(options.DefaultQueue))
        {
            failures.Add($"{ConveyorOptions.SectionName}:DefaultQueue: must not be empty");
        }

        if (options.ConnectTimeout <= TimeSpan.Zero)
        {
            failures.Add($"{ConveyorOptions.SectionName}:ConnectTimeout: must be positive, not {options.ConnectTimeout}");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private bool Check(string setting, string url, ConveyorComponents part, List<string> failures)
    {
        var schemes = string.Join(", ", providers.Where(p => p.Components.HasFlag(part)).SelectMany(p => p.Schemes).Select(s => s + "://"));
        if (string.IsNullOrWhiteSpace(url))
        {
            failures.Add(providers.Any()
                ? $"{setting}: not set; give a URL ({Describe(schemes)})"
                : $"{setting}: not set, and no provider added; call UseSqlite(), UseRedis() or UseRabbitMq() on AddConveyor()");
            return false;
        }

        var shown = ConveyorConnections.Redact(url.Trim());
        if (!url.Contains("://", StringComparison.Ordinal))
        {
            failures.Add($"{setting}: '{shown}' is not a URL; expected one of {Describe(schemes)}");
            return false;
        }

        var provider = ConveyorConnections.TryFind(providers, url);
        if (provider is null)
        {
            failures.Add($"{setting}: no provider for '{shown}'; added: {Describe(schemes)} (add the provider's Use…() method for another scheme)");
            return false;
        }

        if (!provider.Components.HasFlag(part))
        {
            failures.Add($"{setting}: {provider.Name} cannot be the {Describe(part)}; use one of {Describe(schemes)}");
            return false;
        }

        if (provider.Validate(url) is { } problem)
        {
            failures.Add($"{setting}: {ConveyorConnections.Redact(problem)}");
            return false;
        }

        return true;
    }

    private static string Describe(string schemes) => schemes.Length == 0 ? "none" : schemes;

    private static string Describe(ConveyorComponents part) => part switch
    {
        ConveyorComponents.Broker => "broker",
        ConveyorComponents.ResultBackend => "result backend",
        _ => "lock",
    };
}
