using System.Globalization;
using System.ComponentModel;
using Microsoft.Extensions.Logging;
using Spectre.Console;
using Spectre.Console.Cli;

namespace Conveyor.Cli.Commands;

internal sealed class WorkerSettings : ConnectionSettings
{
    [CommandOption("-c|--concurrency <N>")]
    [Description("Tasks run at once. Default: 8")]
    public int Concurrency { get; init; } = 8;

    [CommandOption("--name <TAG>")]
    [Description("Worker name (consumer tag). Default: worker@host:pid")]
    public string? Name { get; init; }

    [CommandOption("--grace <SECONDS>")]
    [Description("On Ctrl+C or SIGTERM, how long running tasks may finish. Default: 30")]
    public double GraceSeconds { get; init; } = 30;

    [CommandOption("--beat")]
    [Description("Also run a periodic scheduler in this process, with the schedules from the configuration")]
    public bool Beat { get; init; }

    [CommandOption("--config <FILE>")]
    [Description("With --beat: JSON configuration with a Conveyor:Schedules section. Default: appsettings.json in the current folder, if any")]
    public string? Config { get; init; }

    [CommandOption("--quiet")]
    [Description("Log warnings and errors only")]
    public bool Quiet { get; init; }

    public override ValidationResult Validate() =>
        Concurrency < 1 ? ValidationResult.Error("--concurrency must be at least 1")
        : GraceSeconds < 0 ? ValidationResult.Error("--grace must not be negative")
        : ValidationResult.Success();
}

/// <summary><c>conveyor worker</c>: runs the built-in tasks until Ctrl+C or SIGTERM, then shuts down gracefully.</summary>
internal sealed class WorkerCommand : AsyncCommand<WorkerSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, WorkerSettings settings, CancellationToken cancellationToken)
    {
        using var loggerFactory = CliLogging.Create(settings.Quiet ? LogLevel.Warning : LogLevel.Information);

        // Read (and check) the schedules before connecting, so that a bad cron spec is the first thing reported.
        var configuration = settings.Beat ? ScheduleConfiguration.Build(settings.Config) : null;
        var schedules = configuration is null ? null : ScheduleConfiguration.Read(configuration);
        await using var providers = await Connections.OpenAsync(settings.BrokerUrl, settings.BackendUrl, loggerFactory, cancellationToken).ConfigureAwait(false);
        var client = new ConveyorClient(providers.Broker, providers.Backend, new ConveyorClientOptions { DefaultQueue = settings.QueueName }, loggerFactory: loggerFactory);
        var registry = BuiltInTasks.Register(new TaskRegistry(), providers.Backend);
        var options = new WorkerOptions
        {
            Queue = settings.QueueName,
            Concurrency = settings.Concurrency,
            ShutdownGracePeriod = TimeSpan.FromSeconds(settings.GraceSeconds),
        };
        if (settings.Name is { Length: > 0 } name)
        {
            options.Name = name;
        }

        using var worker = new ConveyorWorker(client, registry, options, loggerFactory);
        await using var locks = settings.Beat ? await Connections.OpenLockAsync(settings.BackendUrl, loggerFactory, cancellationToken).ConfigureAwait(false) : null;
        await using var beat = locks is null ? null : EmbeddedScheduler.Create(client, locks.Lock, configuration!, schedules!, commandLine: null, loggerFactory);
        if (!settings.Quiet)
        {
            AnsiConsole.MarkupLineInterpolated(CultureInfo.InvariantCulture, $"[green]conveyor worker[/] {options.Name}: queue [bold]{settings.QueueName}[/], concurrency {settings.Concurrency}, broker {providers.BrokerUrl}, backend {providers.BackendUrl}; tasks: {string.Join(", ", registry.Names.Order(StringComparer.Ordinal))}");
        }

        await worker.StartAsync(CancellationToken.None).ConfigureAwait(false);
        if (beat is not null)
        {
            if (!settings.Quiet)
            {
                AnsiConsole.MarkupLineInterpolated(CultureInfo.InvariantCulture, $"[green]conveyor beat[/] in this worker: {beat.Scheduler.Schedules.Count} schedule(s) ({string.Join(", ", beat.Scheduler.Schedules.Select(s => s.Name))}); ticks claimed on {providers.BackendUrl}");
            }

            await beat.Scheduler.StartAsync(CancellationToken.None).ConfigureAwait(false);
        }

        try
        {
            await Task.Delay(Timeout.Infinite, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        if (beat is not null)
        {
            await beat.Scheduler.StopAsync(CancellationToken.None).ConfigureAwait(false);
        }

        // Stop taking tasks, let running ones finish within the grace period, hand the rest back.
        await worker.StopAsync(CancellationToken.None).ConfigureAwait(false);
        return ExitCodes.Success;
    }
}
