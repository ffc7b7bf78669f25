using System.ComponentModel;
using System.Globalization;
using Conveyor.Cli.Bench;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Spectre.Console;
using Spectre.Console.Cli;

namespace Conveyor.Cli.Commands;

internal sealed class WorkerSettings : ConnectionSettings
{
    [CommandOption("-c|--concurrency <N>")]
    [Description("Tasks run at once; sets Conveyor:Worker:Concurrency. Default: Conveyor:Worker:Concurrency, else 8")]
    public int? Concurrency { get; init; }

    [CommandOption("--name <TAG>")]
    [Description("Worker name (consumer tag); sets Conveyor:Worker:Name. Default: worker@host:pid")]
    public string? Name { get; init; }

    [CommandOption("--grace <SECONDS>")]
    [Description("On Ctrl+C or SIGTERM, how long running tasks may finish; sets Conveyor:Worker:ShutdownGracePeriod. Default: 30")]
    public double? GraceSeconds { get; init; }

    [CommandOption("--beat")]
    [Description("Also run a periodic scheduler in this process, with the schedules of Conveyor:Schedules. Default: off")]
    public bool Beat { get; init; }

    [CommandOption("--quiet")]
    [Description("Log warnings and errors only. Default: off")]
    public bool Quiet { get; init; }

    public override ValidationResult Validate() =>
        Concurrency < 1 ? ValidationResult.Error("--concurrency must be at least 1")
        : GraceSeconds < 0 ? ValidationResult.Error("--grace must not be negative")
        : ValidationResult.Success();

    /// <summary>The flags as the settings they stand for.</summary>
    public Dictionary<string, string?> WorkerFlags()
    {
        var flags = new Dictionary<string, string?>();
        if (Concurrency is { } concurrency)
        {
            flags["Conveyor:Worker:Concurrency"] = concurrency.ToString(CultureInfo.InvariantCulture);
        }

        if (Name is { Length: > 0 } name)
        {
            flags["Conveyor:Worker:Name"] = name;
        }

        if (GraceSeconds is { } grace)
        {
            flags["Conveyor:Worker:ShutdownGracePeriod"] = TimeSpan.FromSeconds(grace).ToString("c", CultureInfo.InvariantCulture);
        }

        return flags;
    }
}

/// <summary><c>conveyor worker</c>: runs the built-in tasks until Ctrl+C or SIGTERM, then shuts down gracefully.</summary>
internal sealed class WorkerCommand : AsyncCommand<WorkerSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, WorkerSettings settings, CancellationToken cancellationToken)
    {
        var builder = CliHost.CreateBuilder(settings, settings.Quiet ? LogLevel.Warning : LogLevel.Information, settings.WorkerFlags(), followChanges: settings.Beat);
        builder.AddBuiltInTasks();

        // Before the worker: the host stops services in reverse order, so the last report follows the drain.
        builder.Services.AddHostedService<BenchReporter>();
        builder.Services.AddConveyorWorker();
        if (settings.Beat)
        {
            builder.Services.AddConveyorScheduler();
        }

        // The host waits for its services to stop for ShutdownTimeout: leave the worker its grace period and more.
        builder.Services.AddOptions<HostOptions>().Configure<IOptionsMonitor<WorkerOptions>>((host, worker) =>
            host.ShutdownTimeout = worker.Get(Options.DefaultName).ShutdownGracePeriod + TimeSpan.FromSeconds(15));

        await using var session = await CliHost.StartAsync(builder, cancellationToken).ConfigureAwait(false);
        var options = session.Services.GetRequiredService<IOptionsMonitor<WorkerOptions>>().Get(Options.DefaultName);
        if (!settings.Quiet)
        {
            var tasks = string.Join(", ", session.Services.GetRequiredService<TaskRegistry>().Names.Order(StringComparer.Ordinal));
            AnsiConsole.MarkupLineInterpolated(CultureInfo.InvariantCulture, $"[green]conveyor worker[/] {options.Name}: queue [bold]{session.Queue}[/], concurrency {options.Concurrency}, broker {session.BrokerUrl}, backend {session.BackendUrl}; tasks: {tasks}");
            if (settings.Beat)
            {
                var scheduler = session.Services.GetRequiredService<ConveyorScheduler>();
                AnsiConsole.MarkupLineInterpolated(CultureInfo.InvariantCulture, $"[green]conveyor beat[/] in this worker: {scheduler.Schedules.Count} schedule(s) ({string.Join(", ", scheduler.Schedules.Select(s => s.Name))}); ticks claimed on {session.BackendUrl}");
            }
        }

        await WaitForStopAsync(session, cancellationToken).ConfigureAwait(false);
        return ExitCodes.Success;
    }

    /// <summary>Runs until Ctrl+C or SIGTERM (the CLI's token) or the host stops; disposing the session then drains.</summary>
    public static async Task WaitForStopAsync(CliSession session, CancellationToken cancellationToken)
    {
        var lifetime = session.Services.GetRequiredService<IHostApplicationLifetime>();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, lifetime.ApplicationStopping);
        try
        {
            await Task.Delay(Timeout.Infinite, stop.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }
}
