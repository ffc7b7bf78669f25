using Microsoft.Extensions.DependencyInjection;
using Spectre.Console;
using Spectre.Console.Cli;
using Spectre.Console.Cli.Help;
using Spectre.Console.Rendering;

namespace Conveyor.Cli;

/// <summary>
/// Spectre's help, followed by the URL forms of every provider the command has (asked from the providers
/// themselves, so a provider added in <see cref="CliHost.UseEveryProvider"/> shows here too) and where settings come from.
/// </summary>
internal sealed class CliHelp(ICommandAppSettings settings) : HelpProvider(settings)
{
    public override IEnumerable<IRenderable> GetFooter(ICommandModel model, ICommandInfo? command)
    {
        var lines = new List<IRenderable>(base.GetFooter(model, command))
        {
            Text.NewLine,
            new Markup("[yellow]URLS:[/]"),
            Text.NewLine,
        };
        foreach (var provider in Providers())
        {
            lines.Add(new Markup($"    {Markup.Escape(provider.Name)}: {Markup.Escape(string.Join("  ", provider.UrlForms))}"));
            lines.Add(Text.NewLine);
        }

        lines.Add(Text.NewLine);
        lines.Add(new Markup("[yellow]SETTINGS:[/]"));
        lines.Add(Text.NewLine);
        lines.Add(new Markup(Markup.Escape("    Lowest to highest: appsettings.json in the current folder (or --config FILE), CONVEYOR_BROKER / CONVEYOR_RESULT_BACKEND / CONVEYOR_DEFAULT_QUEUE, Conveyor__* variables (Conveyor__Broker, Conveyor__Worker__Concurrency, Conveyor__FailFast …), the flags. Passwords are masked in everything printed.")));
        lines.Add(Text.NewLine);
        return lines;
    }

    /// <summary>The providers <see cref="CliHost.UseEveryProvider"/> adds.</summary>
    public static IReadOnlyList<IConveyorProvider> Providers()
    {
        var services = new ServiceCollection();
        services.AddConveyor(conveyor => conveyor.UseEveryProvider());
        // Not disposed: the providers have opened nothing, and the Redis one disposes only asynchronously.
        var provider = services.BuildServiceProvider();
        return [.. provider.GetServices<IConveyorProvider>()];
    }
}
