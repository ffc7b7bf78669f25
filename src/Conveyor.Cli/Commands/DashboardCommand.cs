using System.ComponentModel;
using System.Net;
using Conveyor.Dashboard;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Spectre.Console;
using Spectre.Console.Cli;

namespace Conveyor.Cli.Commands;

internal sealed class DashboardSettings : ConnectionSettings
{
    [CommandOption("--port <PORT>")]
    [Description("The TCP port; 0 picks a free one. Default: 8080")]
    [DefaultValue(8080)]
    public int Port { get; init; } = 8080;

    [CommandOption("--bind <ADDRESS>")]
    [Description("The address to listen on. Default: 127.0.0.1 (loopback: this machine only; the dashboard has no policy here, so it answers local requests only on any address)")]
    [DefaultValue("127.0.0.1")]
    public string Bind { get; init; } = "127.0.0.1";

    [CommandOption("--read-only")]
    [Description("Show everything, change nothing (every action answers 403). Default: off")]
    public bool ReadOnly { get; init; }

    [CommandOption("--title <TEXT>")]
    [Description("The page's title. Default: Conveyor")]
    public string? Title { get; init; }

    public override ValidationResult Validate() =>
        Port is < 0 or > 65535 ? ValidationResult.Error("--port: 0 to 65535")
        : !IPAddress.TryParse(Bind, out _) ? ValidationResult.Error($"--bind: {Bind} is not an IP address")
        : ValidationResult.Success();
}

/// <summary>
/// <c>conveyor dashboard</c>: the web dashboard on Kestrel, over the same configuration and providers as every other
/// command (Conveyor.Hosting resolves the URLs). It listens on loopback unless told otherwise, and has no
/// authorization policy, so it answers local requests only.
/// </summary>
internal sealed class DashboardCommand : AsyncCommand<DashboardSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, DashboardSettings settings, CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { ContentRootPath = Directory.GetCurrentDirectory() });
        CliHost.Configure(builder, settings, LogLevel.Warning);
        builder.Logging.AddFilter("Conveyor.Dashboard", LogLevel.Information);
        builder.WebHost.UseKestrelCore().ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Parse(settings.Bind), settings.Port));
        builder.Services.AddRoutingCore();
        builder.Services.AddConveyorDashboard();

        WebApplication app;
        try
        {
            app = builder.Build();
            app.Services.GetRequiredService<IStartupValidator>().Validate();
        }
        catch (Exception ex) when (CliHost.Explain(ex) is { } message)
        {
            throw new CliException(message, ex);
        }

        await using (app.ConfigureAwait(false))
        {
            app.UseRouting();
            app.MapConveyorDashboard("/", new ConveyorDashboardOptions
            {
                Title = string.IsNullOrWhiteSpace(settings.Title) ? "Conveyor" : settings.Title,
                IsReadOnly = settings.ReadOnly ? _ => true : null,
            });
            try
            {
                await app.StartAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (CliHost.Explain(ex) is { } message)
            {
                throw new CliException(message, ex);
            }
            catch (IOException ex)
            {
                throw new CliException($"cannot listen on {settings.Bind}:{settings.Port}: {ex.Message}", ex);
            }

            var options = app.Services.GetRequiredService<IOptions<ConveyorOptions>>().Value;
            var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
            var broker = ConveyorUrls.Redact(options.Broker);
            var backend = ConveyorUrls.Redact(string.IsNullOrWhiteSpace(options.ResultBackend) ? options.Broker : options.ResultBackend);
            Console.WriteLine($"dashboard on {string.Join(", ", addresses.Select(a => a.TrimEnd('/') + "/"))} (broker {broker}, backend {backend}{(settings.ReadOnly ? ", read-only" : string.Empty)}); Ctrl+C stops");
            if (!IPAddress.IsLoopback(IPAddress.Parse(settings.Bind)))
            {
                AnsiConsole.MarkupLine("[yellow]listening beyond loopback, but without an authorization policy the dashboard answers local requests only[/]");
            }

            try
            {
                await Task.Delay(Timeout.Infinite, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
            }

            await app.StopAsync(CancellationToken.None).ConfigureAwait(false);
        }

        return ExitCodes.Success;
    }
}
