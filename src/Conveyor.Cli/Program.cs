using System.Runtime.InteropServices;
using Conveyor;
using Conveyor.Cli;
using Conveyor.Cli.Commands;
using Spectre.Console.Cli;

// The CLI, not the library, owns the process's signals: Ctrl+C and SIGTERM cancel the command, which then shuts
// its worker down gracefully.
using var stop = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    stop.Cancel();
};
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, context =>
{
    context.Cancel = true;
    stop.Cancel();
});

// Redirected output (CI, pipes) keeps whole lines instead of wrapping at 80 columns.
if (Console.IsOutputRedirected)
{
    Spectre.Console.AnsiConsole.Profile.Width = 240;
}

var app = new CommandApp();
app.Configure(config =>
{
    config.SetApplicationName("conveyor");
    config.SetHelpProvider(new CliHelp(config.Settings));
    config.AddCommand<WorkerCommand>("worker").WithDescription("Run the built-in example tasks until Ctrl+C or SIGTERM");
    config.AddCommand<BeatCommand>("beat").WithDescription("Run a periodic scheduler: conveyor beat --name tick --cron '*/1 * * * * *' echo string:hi (any number on one store, each tick published once)");
    config.AddCommand<SchedulesCommand>("schedules").WithDescription("List the configured schedules, their next ticks and the last tick claimed");
    config.AddCommand<SendCommand>("send").WithDescription("Publish a task, a group, a chord or a chain; --wait prints each task's state and the final result")
        .WithExample("send", "add", "int64:2", "int64:3", "--wait")
        .WithExample("send", "--group", "'add int64:1 int64:2'", "'add int64:3 int64:4'", "--wait")
        .WithExample("send", "--chord", "sum", "'multiply int64:2 int64:3'", "'multiply int64:4 int64:5'", "--wait")
        .WithExample("send", "--chain", "'add int64:1 int64:2'", "'multiply int64:10'", "'add int64:100'", "--wait", "--json")
        .WithExample("send", "-f", "flow.json", "--wait");
    config.AddCommand<StatusCommand>("status").WithDescription("Show a task's state and results");
    config.AddCommand<QueuesCommand>("queues").WithDescription("Pending, delayed, in-flight and dead-lettered counts per queue");
    config.AddCommand<PurgeCommand>("purge").WithDescription("Delete a queue's pending and delayed tasks");
    config.AddCommand<DeadLettersCommand>("dead-letters").WithDescription("List dead letters with their reasons, or --requeue them");
    config.AddCommand<TasksCommand>("tasks").WithDescription("List tasks by state: pending, scheduled, active, dead, succeeded, failed, revoked (pages with --after)")
        .WithExample("tasks", "--state", "scheduled", "--json");
    config.AddCommand<TaskCommand>("task").WithDescription("Everything known about one task: state, messages, signature, group, progress");
    config.AddCommand<RevokeCommand>("revoke").WithDescription("Revoke tasks or groups: pending ones never run, running ones are canceled within a second");
    config.AddCommand<PauseCommand>("pause").WithDescription("Pause a queue for the whole fleet (publishing goes on; running tasks finish)");
    config.AddCommand<ResumeCommand>("resume").WithDescription("Resume a paused queue");
    config.AddCommand<WorkersCommand>("workers").WithDescription("The running workers: host, pid, queues, concurrency, running tasks, last heartbeat");
    config.AddCommand<DashboardCommand>("dashboard").WithDescription("Serve the web dashboard on http://127.0.0.1:8080/ (loopback; --port, --bind, --read-only)");
    config.AddCommand<DemoCommand>("demo").WithDescription("Run a worker in this process and send a task, a group, a chord and a chain");
    config.AddCommand<BenchCommand>("bench").WithDescription("End-to-end benchmark: tasks/s, latency p50/p99, lost, duplicates");
    config.SetExceptionHandler((exception, _) =>
    {
        // One line that says what to fix: no stack trace.
        var message = exception switch
        {
            CliException cli => cli.Message,
            ConveyorConnectionException connection => connection.Message,
            CommandParseException or CommandRuntimeException => exception.Message,
            OperationCanceledException => "canceled",
            _ => $"{exception.GetType().Name}: {exception.Message}",
        };
        // Whatever the exception says, a password in it never reaches the terminal.
        Console.Error.WriteLine($"conveyor: {ConveyorUrls.Redact(message.ReplaceLineEndings(" "))}");
        return ExitCodes.UsageOrConnection;
    });
});

return await app.RunAsync(args, stop.Token).ConfigureAwait(false);

// The web framework would make the top-level Program public (for test hosts); the CLI exposes no API.
internal sealed partial class Program;
