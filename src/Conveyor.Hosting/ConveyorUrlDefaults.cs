using Microsoft.Extensions.Options;

namespace Conveyor.Hosting;

/// <summary>
/// Fills what configuration left empty from the <c>Use…(url)</c> calls, after binding (so configuration wins):
/// the broker from the first default; the result backend from configuration's broker when that provider can hold
/// results (one URL for both is the common case), otherwise from the first default backend.
/// </summary>
internal sealed class ConveyorUrlDefaults(IEnumerable<ConveyorUrlDefault> defaults, IEnumerable<IConveyorProvider> providers) : IPostConfigureOptions<ConveyorOptions>
{
    public void PostConfigure(string? name, ConveyorOptions options)
    {
        var brokerFromConfiguration = !string.IsNullOrWhiteSpace(options.Broker);
        if (!brokerFromConfiguration && defaults.FirstOrDefault(d => d.Broker is not null) is { } brokerDefault)
        {
            options.Broker = brokerDefault.Broker!;
        }

        if (!string.IsNullOrWhiteSpace(options.ResultBackend))
        {
            return;
        }

        var brokerHoldsResults = ConveyorConnections.TryFind(providers, options.Broker) is { } provider
            && provider.Components.HasFlag(ConveyorComponents.ResultBackend);
        if (brokerFromConfiguration && brokerHoldsResults)
        {
            return;
        }

        if (defaults.FirstOrDefault(d => d.ResultBackend is not null) is { } backendDefault)
        {
            options.ResultBackend = backendDefault.ResultBackend!;
        }
    }
}
