using System.ComponentModel;
using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Spectre.Console;
using Spectre.Console.Cli;

namespace Conveyor.Cli.Commands;

internal sealed class SendSettings : JsonConnectionSettings
{
    [CommandArgument(0, "[TASK]")]
    [Description("A task name (add), or with --group/--chord/--chain the first task spec 'NAME TYPE:VALUE ...'")]
    public string? Task { get; init; }

    [CommandArgument(1, "[ARG]")]
    [Description("The task's arguments as TYPE:VALUE (int64:2 string:hello [[]]string:a,b), or with --group/--chord/--chain more task specs")]
    public string[] Args { get; init; } = [];

    [CommandOption("--group")]
    [Description("Send every TASK spec as one group, run in parallel: --group 'add int64:1 int64:2' 'add int64:3 int64:4'. Default: off")]
    public bool Group { get; init; }

    [CommandOption("--chord <CALLBACK>")]
    [Description("Send the TASK specs as a group, then CALLBACK ('NAME [[TYPE:VALUE ...]]') with every member's results: --chord sum 'multiply int64:2 int64:3' 'multiply int64:4 int64:5'. Default: none (not a chord)")]
    public string? Chord { get; init; }

    [CommandOption("--chain")]
    [Description("Send the TASK specs as a chain, each result appended to the next task's arguments: --chain 'add int64:1 int64:2' 'multiply int64:10'. Default: off")]
    public bool Chain { get; init; }

    [CommandOption("-f|--file <FILE>")]
    [Description("Send the workflow in a JSON file, tasks written as specs: {\"group\": [[\"add int64:1 int64:2\", ...]]}, {\"chord\": {\"group\": [[...]], \"callback\": \"sum\"}}, {\"chain\": [[...]]}, {\"task\": \"add int64:1 int64:2\"}. Default: none")]
    public string? File { get; init; }

    [CommandOption("--eta <TIME>")]
    [Description("Run at or after this time (ISO 8601, e.g. 2026-11-26T18:00:00Z); a group's or chord's members, a chain's first task. Default: now")]
    public string? Eta { get; init; }

    [CommandOption("--countdown <SECONDS>")]
    [Description("Run after this many seconds (instead of --eta). Default: 0")]
    public double? Countdown { get; init; }

    [CommandOption("--priority <N>")]
    [Description("Priority 0-255, higher first (every task)")]
    [DefaultValue(0)]
    public int Priority { get; init; }

    [CommandOption("--retries <N>")]
    [Description("Retries after a failure, Fibonacci backoff (every task)")]
    [DefaultValue(0)]
    public int Retries { get; init; }

    [CommandOption("--wait")]
    [Description("Wait for the final states: print each task's state and results, then the final result (exit 1 if a task failed). Default: off (print the ids)")]
    public bool Wait { get; init; }

    [CommandOption("--timeout <SECONDS>")]
    [Description("With --wait: how long to wait for everything")]
    [DefaultValue(60.0)]
    public double Timeout { get; init; } = 60;

    public override ValidationResult Validate()
    {
        var kinds = (Group ? 1 : 0) + (Chord is not null ? 1 : 0) + (Chain ? 1 : 0) + (File is not null ? 1 : 0);
        return kinds > 1 ? ValidationResult.Error("use one of --group, --chord, --chain and -f")
            : File is null && string.IsNullOrWhiteSpace(Task) ? ValidationResult.Error("name a TASK (conveyor send add int64:2 int64:3), give task specs with --group/--chord/--chain, or -f FILE")
            : File is not null && Task is not null ? ValidationResult.Error("-f FILE takes no TASK arguments")
            : Eta is not null && Countdown is not null ? ValidationResult.Error("use --eta or --countdown, not both")
            : Priority is < 0 or > 255 ? ValidationResult.Error("--priority must be 0-255")
            : Retries < 0 ? ValidationResult.Error("--retries must not be negative")
            : Timeout <= 0 ? ValidationResult.Error("--timeout must be positive")
            : ValidationResult.Success();
    }

    public Workflow ToWorkflow()
    {
        if (File is not null)
        {
            return TaskSpec.ReadFile(File);
        }

        if (!Group && Chord is null && !Chain)
        {
            return new Workflow(WorkflowKind.Task, [new Signature(Task!, Args.Select(ArgumentParser.Parse))], null);
        }

        List<Signature> specs = [.. new[] { Task! }.Concat(Args).Select(TaskSpec.Parse)];
        return Group ? new Workflow(WorkflowKind.Group, specs, null)
            : Chain ? new Workflow(WorkflowKind.Chain, specs, null)
            : new Workflow(WorkflowKind.Chord, specs, TaskSpec.Parse(Chord!));
    }
}

/// <summary>
/// <c>conveyor send</c>: publishes a task, a group, a chord or a chain; prints the ids, or with <c>--wait</c> each
/// task's final state and the final result.
/// </summary>
internal sealed class SendCommand : AsyncCommand<SendSettings>
{
    /// <summary>From this many tasks on, an interactive terminal shows a progress bar while waiting.</summary>
    private const int ProgressThreshold = 10;

    public override async Task<int> ExecuteAsync(CommandContext context, SendSettings settings, CancellationToken cancellationToken)
    {
        var workflow = settings.ToWorkflow();
        DateTimeOffset? eta = null;
        if (settings.Eta is { } text)
        {
            eta = DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var parsed)
                ? parsed
                : throw new CliException($"--eta '{text}' is not a time; use ISO 8601 such as 2026-11-26T18:00:00Z");
        }
        else if (settings.Countdown is { } countdown)
        {
            eta = TimeProvider.System.GetUtcNow().AddSeconds(countdown);
        }

        await using var session = await CliHost.StartAsync(CliHost.CreateBuilder(settings, LogLevel.Warning), cancellationToken).ConfigureAwait(false);
        foreach (var signature in workflow.Tasks.Append(workflow.Callback).OfType<Signature>())
        {
            signature.RoutingKey = session.Queue;
            signature.Priority = (byte)settings.Priority;
            signature.RetryCount = settings.Retries;
        }

        foreach (var signature in workflow.Kind == WorkflowKind.Chain ? workflow.Tasks.Take(1) : workflow.Tasks)
        {
            signature.Eta = eta;
        }

        var client = session.Client;
        var (groupId, tasks, callback) = workflow.Kind switch
        {
            WorkflowKind.Task => (null, [await client.SendAsync(workflow.Tasks[0], cancellationToken).ConfigureAwait(false)], null),
            WorkflowKind.Group => Unpack(await client.SendGroupAsync(new TaskGroup(workflow.Tasks), cancellationToken: cancellationToken).ConfigureAwait(false)),
            WorkflowKind.Chord => Unpack(await client.SendChordAsync(new Chord(new TaskGroup(workflow.Tasks), workflow.Callback!), cancellationToken: cancellationToken).ConfigureAwait(false)),
            _ => (null, (await client.SendChainAsync(new Chain(workflow.Tasks), cancellationToken).ConfigureAwait(false)).Tasks, (AsyncResult?)null),
        };

        var kind = workflow.Kind.ToString().ToLowerInvariant();
        if (!settings.Wait)
        {
            PrintSent(kind, groupId, tasks, callback, settings.Json);
            return ExitCodes.Success;
        }

        var deadline = TimeProvider.System.GetUtcNow().AddSeconds(settings.Timeout);
        var states = workflow.Kind == WorkflowKind.Chain
            ? await WaitInOrderAsync(tasks, deadline, session, cancellationToken).ConfigureAwait(false)
            : await WaitAllAsync(tasks, deadline, session, showProgress: !settings.Json && tasks.Count >= ProgressThreshold && AnsiConsole.Profile.Capabilities.Interactive, cancellationToken).ConfigureAwait(false);
        TaskStateRecord? callbackState = null;
        var membersSucceeded = states.All(s => s?.State == TaskState.Success);
        if (callback is not null && membersSucceeded)
        {
            callbackState = (await WaitInOrderAsync([callback], deadline, session, cancellationToken).ConfigureAwait(false))[0];
        }

        // The final result: a task's or chord callback's results, a chain's last task's, every member's of a group.
        var succeeded = membersSucceeded && (callback is null || callbackState?.State == TaskState.Success);
        IReadOnlyList<TaskResult> final = !succeeded ? []
            : callbackState is not null ? callbackState.Results ?? []
            : workflow.Kind == WorkflowKind.Chain ? states[^1]!.Results ?? []
            : [.. states.SelectMany(s => s!.Results ?? [])];
        var exitCode = succeeded ? ExitCodes.Success : ExitCodes.TaskFailed;
        if (workflow.Kind == WorkflowKind.Task)
        {
            StatusCommand.Print(states[0]!, settings.Json);
            return exitCode;
        }

        if (settings.Json)
        {
            Console.WriteLine(JsonSerializer.Serialize(
                new Dictionary<string, object?>
                {
                    ["kind"] = kind,
                    ["state"] = succeeded ? "SUCCESS" : "FAILURE",
                    ["group_id"] = groupId,
                    ["tasks"] = tasks.Select((t, i) => Describe(t, states[i])).ToList(),
                    ["callback"] = callback is null ? null : Describe(callback, callbackState),
                    ["results"] = final.Select(StatusCommand.ToJson).ToList(),
                },
                CliJson.Options));
            return exitCode;
        }

        AnsiConsole.MarkupLineInterpolated(CultureInfo.InvariantCulture, $"[blue]{kind}[/] {groupId ?? string.Empty}");
        var rows = tasks.Zip(states, (task, state) => (Task: task, State: state, Label: string.Empty)).ToList();
        if (callback is not null)
        {
            rows.Add((callback, callbackState, "callback "));
        }

        foreach (var (task, state, label) in rows)
        {
            AnsiConsole.Write(label);
            if (state is null)
            {
                AnsiConsole.MarkupLineInterpolated(CultureInfo.InvariantCulture, $"{task.TaskId} {task.Signature.Name} [grey]not run[/]");
            }
            else
            {
                StatusCommand.Print(state, json: false);
            }
        }

        var outcome = succeeded ? $"[green]{kind} SUCCESS[/] = [bold]{Markup.Escape(string.Join(", ", final.Select(r => ArgumentParser.Format(r.Value))))}[/]" : $"[red]{kind} FAILURE[/]";
        AnsiConsole.MarkupLine(outcome);
        return exitCode;
    }

    private static (string?, IReadOnlyList<AsyncResult>, AsyncResult?) Unpack(GroupResult group) => (group.GroupId, group.Tasks, null);

    private static (string?, IReadOnlyList<AsyncResult>, AsyncResult?) Unpack(ChordResult chord) => (chord.Group.GroupId, chord.Group.Tasks, chord.Callback);

    private static Dictionary<string, object?> Describe(AsyncResult task, TaskStateRecord? state) =>
        state is not null ? StatusCommand.ToJson(state) : new() { ["task_id"] = task.TaskId, ["task_name"] = task.Signature.Name, ["state"] = null };

    private static void PrintSent(string kind, string? groupId, IReadOnlyList<AsyncResult> tasks, AsyncResult? callback, bool json)
    {
        var single = tasks.Count == 1 && groupId is null;
        if (json)
        {
            Console.WriteLine(JsonSerializer.Serialize(
                single
                    ? new Dictionary<string, object?> { ["task_id"] = tasks[0].TaskId, ["state"] = "PENDING" }
                    : new() { ["kind"] = kind, ["state"] = "PENDING", ["group_id"] = groupId, ["task_ids"] = tasks.Select(t => t.TaskId).ToList(), ["callback_id"] = callback?.TaskId },
                CliJson.Options));
            return;
        }

        Console.WriteLine(single ? tasks[0].TaskId : $"{kind} {groupId}".TrimEnd());
        foreach (var task in single ? [] : tasks.Append(callback).OfType<AsyncResult>())
        {
            Console.WriteLine($"{task.TaskId} {task.Signature.Name}");
        }
    }

    /// <summary>Waits for each task in turn (a chain runs in order); stops at the first that did not succeed.</summary>
    private static async Task<TaskStateRecord?[]> WaitInOrderAsync(IReadOnlyList<AsyncResult> tasks, DateTimeOffset deadline, CliSession session, CancellationToken cancellationToken)
    {
        var states = new TaskStateRecord?[tasks.Count];
        for (var i = 0; i < tasks.Count; i++)
        {
            try
            {
                states[i] = await tasks[i].WaitAsync(Remaining(deadline), cancellationToken).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                throw await TimedOutAsync(tasks[i], session, cancellationToken).ConfigureAwait(false);
            }

            if (states[i]!.State != TaskState.Success)
            {
                break;
            }
        }

        return states;
    }

    /// <summary>Waits for every task of a group: one read of all states per pass, with a progress bar if asked.</summary>
    private static async Task<TaskStateRecord?[]> WaitAllAsync(IReadOnlyList<AsyncResult> tasks, DateTimeOffset deadline, CliSession session, bool showProgress, CancellationToken cancellationToken)
    {
        var ids = tasks.Select(t => t.TaskId).ToList();
        var states = new TaskStateRecord?[tasks.Count];
        async Task PollAsync(Action<int>? report)
        {
            while (true)
            {
                var read = await session.Backend.GetStatesAsync(ids, cancellationToken).ConfigureAwait(false);
                var done = 0;
                for (var i = 0; i < read.Count; i++)
                {
                    if (read[i] is { IsCompleted: true } state)
                    {
                        states[i] = state;
                        done++;
                    }
                }

                report?.Invoke(done);
                if (done == ids.Count)
                {
                    return;
                }

                if (TimeProvider.System.GetUtcNow() >= deadline)
                {
                    throw await TimedOutAsync(tasks[Array.FindIndex(states, s => s is null)], session, cancellationToken).ConfigureAwait(false);
                }

                // Sleep until the first unfinished task changes (pushed where the backend can), at most 100 ms.
                await session.Backend.WaitForChangeAsync(ids[Array.FindIndex(states, s => s is null)], TimeSpan.FromMilliseconds(100), cancellationToken).ConfigureAwait(false);
            }
        }

        if (!showProgress)
        {
            await PollAsync(null).ConfigureAwait(false);
            return states;
        }

        await AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .StartAsync(async progress =>
            {
                var bar = progress.AddTask($"{tasks.Count} tasks", maxValue: tasks.Count);
                await PollAsync(done =>
                {
                    bar.Value = done;
                    bar.Description = $"{done}/{tasks.Count} tasks";
                }).ConfigureAwait(false);
            }).ConfigureAwait(false);
        return states;
    }

    private static TimeSpan Remaining(DateTimeOffset deadline)
    {
        var left = deadline - TimeProvider.System.GetUtcNow();
        return left > TimeSpan.Zero ? left : TimeSpan.FromMilliseconds(1);
    }

    private static async Task<CliException> TimedOutAsync(AsyncResult task, CliSession session, CancellationToken cancellationToken)
    {
        var last = await task.GetStateAsync(cancellationToken).ConfigureAwait(false);
        return new CliException($"task {task.TaskId} ({task.Signature.Name}) did not finish in time (state {last?.State.ToWireName() ?? "unknown"}); is a worker running on queue {session.Queue}?");
    }
}
