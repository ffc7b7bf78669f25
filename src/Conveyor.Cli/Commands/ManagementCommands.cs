using System.ComponentModel;
using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Spectre.Console;
using Spectre.Console.Cli;

namespace Conveyor.Cli.Commands;

internal sealed class TasksSettings : JsonConnectionSettings
{
    [CommandOption("--state <STATE>")]
    [Description("pending, scheduled, active, dead, succeeded, failed or revoked. Default: pending")]
    [DefaultValue("pending")]
    public string State { get; init; } = "pending";

    [CommandOption("--name <NAME>")]
    [Description("Only tasks with this name. Default: any")]
    public string? Name { get; init; }

    [CommandOption("--limit <N>")]
    [Description("The most to list, 1 to 1000. Default: 50")]
    [DefaultValue(50)]
    public int Limit { get; init; } = 50;

    [CommandOption("--after <CURSOR>")]
    [Description("The cursor printed under the previous page, for the next one. Default: the first page")]
    public string? After { get; init; }

    public override ValidationResult Validate() =>
        Limit is < 1 or > 1000 ? ValidationResult.Error("--limit: 1 to 1000")
        : ManagedTaskStateNames.Parse(State) is null ? ValidationResult.Error($"--state: {State} is none of pending, scheduled, active, dead, succeeded, failed, revoked")
        : ValidationResult.Success();
}

/// <summary><c>conveyor tasks</c>: tasks in one state, a page at a time.</summary>
internal sealed class TasksCommand : AsyncCommand<TasksSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, TasksSettings settings, CancellationToken cancellationToken)
    {
        await using var session = await CliHost.StartAsync(CliHost.CreateBuilder(settings, LogLevel.Warning), cancellationToken).ConfigureAwait(false);
        var state = ManagedTaskStateNames.Parse(settings.State)!.Value;
        var messages = state is ManagedTaskState.Pending or ManagedTaskState.Scheduled or ManagedTaskState.Active;
        var page = await ManagementCli.Run(() => ManagementCli.Api(session).ListTasksAsync(
            new TaskQuery { State = state, Queue = messages || !string.IsNullOrWhiteSpace(settings.Queue) ? session.Queue : null, Name = settings.Name, Limit = settings.Limit, After = settings.After },
            cancellationToken)).ConfigureAwait(false);
        if (settings.Json)
        {
            Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object?> { ["tasks"] = page.Tasks.Select(ManagementCli.ToJson).ToList(), ["next"] = page.Next }, CliJson.Options));
            return ExitCodes.Success;
        }

        var table = new Table().AddColumns("id", "name", "queue", "state", "args", "attempts", state == ManagedTaskState.Scheduled ? "eta" : "since", state == ManagedTaskState.Active ? "worker" : "error");
        foreach (var task in page.Tasks)
        {
            var when = state == ManagedTaskState.Scheduled ? task.Eta : task.Since;
            table.AddRow(
                Markup.Escape(task.Id),
                Markup.Escape(task.Name),
                Markup.Escape(task.Queue),
                ManagedTaskStateNames.Name(task.State),
                Markup.Escape(string.Join(' ', task.Args.Select(a => $"{a.Type}:{ArgumentParser.Format(a.Value)}"))),
                task.Attempts.ToString(CultureInfo.InvariantCulture),
                when?.ToString("u", CultureInfo.InvariantCulture) ?? string.Empty,
                Markup.Escape((state == ManagedTaskState.Active ? task.Worker : task.Error) ?? string.Empty));
        }

        AnsiConsole.Write(table);
        Console.WriteLine(page.Next is { } next ? $"more: --after {next}" : $"{page.Tasks.Count} task(s)");
        return ExitCodes.Success;
    }
}

internal sealed class TaskSettings : JsonConnectionSettings
{
    [CommandArgument(0, "<TASK_ID>")]
    [Description("The task id (task_...)")]
    public string TaskId { get; init; } = string.Empty;
}

/// <summary><c>conveyor task ID</c>: everything known about one task.</summary>
internal sealed class TaskCommand : AsyncCommand<TaskSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, TaskSettings settings, CancellationToken cancellationToken)
    {
        await using var session = await CliHost.StartAsync(CliHost.CreateBuilder(settings, LogLevel.Warning), cancellationToken).ConfigureAwait(false);
        var detail = await ManagementCli.Run(() => ManagementCli.Api(session).GetTaskAsync(settings.TaskId, cancellationToken)).ConfigureAwait(false)
            ?? throw new CliException($"nothing known of task {settings.TaskId} in {session.BrokerUrl} or {session.BackendUrl} (unknown id, or its result expired)");
        if (settings.Json)
        {
            Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object?>
            {
                ["task_id"] = detail.Id,
                ["status"] = detail.Status is { } s ? ManagedTaskStateNames.Name(s) : null,
                ["revoked"] = detail.Revoked,
                ["state"] = detail.State is { } state ? StatusCommand.ToJson(state) : null,
                ["messages"] = detail.Messages.Select(ManagementCli.ToJson).ToList(),
                ["group"] = detail.Group is { } g ? new Dictionary<string, object?> { ["group_id"] = g.GroupId, ["task_ids"] = g.TaskIds, ["chord_triggered"] = g.ChordTriggered } : null,
                ["chord_callback"] = detail.Signature?.ChordCallback?.Id,
                ["progress"] = ManagementCli.ToJson(detail.Progress),
            }, CliJson.Options));
            return ExitCodes.Success;
        }

        AnsiConsole.MarkupLineInterpolated(CultureInfo.InvariantCulture, $"{detail.Id} [bold]{(detail.Status is { } status ? ManagedTaskStateNames.Name(status) : "unknown")}[/]");
        if (detail.State is { } stored)
        {
            StatusCommand.Print(stored, json: false, detail.Progress);
        }
        else if (detail.Progress is { } progress)
        {
            AnsiConsole.MarkupLineInterpolated(CultureInfo.InvariantCulture, $"  progress: {progress.Percent:0.#} % {progress.Message}");
        }

        foreach (var message in detail.Messages)
        {
            AnsiConsole.MarkupLineInterpolated(CultureInfo.InvariantCulture, $"  message in {message.Queue}: {ManagedTaskStateNames.Name(message.State)}{(message.Eta is { } eta ? " eta " + eta.ToString("u", CultureInfo.InvariantCulture) : string.Empty)}{(message.Worker is { } w ? " held by " + w : string.Empty)}, attempt {message.Attempts}");
        }

        if (detail.Signature is { } signature)
        {
            AnsiConsole.MarkupLineInterpolated(CultureInfo.InvariantCulture, $"  name: {signature.Name} args: {string.Join(' ', signature.Args.Select(a => $"{a.Type}:{ArgumentParser.Format(a.Value)}"))}");
            if (signature.ChordCallback is { } callback)
            {
                AnsiConsole.MarkupLineInterpolated(CultureInfo.InvariantCulture, $"  chord callback: {callback.Name} {callback.Id}");
            }
        }

        if (detail.Group is { } group)
        {
            AnsiConsole.MarkupLineInterpolated(CultureInfo.InvariantCulture, $"  group {group.GroupId}: {group.TaskIds.Count} member(s)");
        }

        return ExitCodes.Success;
    }
}

internal sealed class RevokeSettings : ConnectionSettings
{
    [CommandArgument(0, "<ID>")]
    [Description("Task or group ids: a group revokes its members and its chord callback")]
    public string[] Ids { get; init; } = [];

    [CommandOption("--reason <TEXT>")]
    [Description("Why; stored after \"revoked: \" in the task's error. Default: none")]
    public string? Reason { get; init; }
}

/// <summary><c>conveyor revoke ID…</c>.</summary>
internal sealed class RevokeCommand : AsyncCommand<RevokeSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, RevokeSettings settings, CancellationToken cancellationToken)
    {
        await using var session = await CliHost.StartAsync(CliHost.CreateBuilder(settings, LogLevel.Warning), cancellationToken).ConfigureAwait(false);
        var revoked = await ManagementCli.Run(() => ManagementCli.Api(session).RevokeAsync(settings.Ids, settings.Reason, cancellationToken)).ConfigureAwait(false);
        foreach (var id in revoked)
        {
            Console.WriteLine($"revoked {id}");
        }

        return ExitCodes.Success;
    }
}

internal sealed class QueueNameSettings : ConnectionSettings
{
    [CommandArgument(0, "[QUEUE]")]
    [Description("The queue. Default: the default queue (-q, Conveyor:DefaultQueue)")]
    public string? Name { get; init; }
}

/// <summary><c>conveyor pause Q</c>: the fleet stops taking messages from the queue, until resumed.</summary>
internal sealed class PauseCommand : AsyncCommand<QueueNameSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, QueueNameSettings settings, CancellationToken cancellationToken)
    {
        await using var session = await CliHost.StartAsync(CliHost.CreateBuilder(settings, LogLevel.Warning), cancellationToken).ConfigureAwait(false);
        var queue = string.IsNullOrWhiteSpace(settings.Name) ? session.Queue : settings.Name;
        await ManagementCli.Run(async () =>
        {
            await ManagementCli.Api(session).PauseQueueAsync(queue, cancellationToken).ConfigureAwait(false);
            return 0;
        }).ConfigureAwait(false);
        Console.WriteLine($"paused {queue} (Go machinery workers on it go on)");
        return ExitCodes.Success;
    }
}

/// <summary><c>conveyor resume Q</c>.</summary>
internal sealed class ResumeCommand : AsyncCommand<QueueNameSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, QueueNameSettings settings, CancellationToken cancellationToken)
    {
        await using var session = await CliHost.StartAsync(CliHost.CreateBuilder(settings, LogLevel.Warning), cancellationToken).ConfigureAwait(false);
        var queue = string.IsNullOrWhiteSpace(settings.Name) ? session.Queue : settings.Name;
        await ManagementCli.Run(async () =>
        {
            await ManagementCli.Api(session).ResumeQueueAsync(queue, cancellationToken).ConfigureAwait(false);
            return 0;
        }).ConfigureAwait(false);
        Console.WriteLine($"resumed {queue}");
        return ExitCodes.Success;
    }
}

/// <summary><c>conveyor workers</c>: the workers whose heartbeat is current.</summary>
internal sealed class WorkersCommand : AsyncCommand<JsonConnectionSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, JsonConnectionSettings settings, CancellationToken cancellationToken)
    {
        await using var session = await CliHost.StartAsync(CliHost.CreateBuilder(settings, LogLevel.Warning), cancellationToken).ConfigureAwait(false);
        var workers = await ManagementCli.Run(() => ManagementCli.Api(session).ListWorkersAsync(cancellationToken)).ConfigureAwait(false);
        if (settings.Json)
        {
            Console.WriteLine(JsonSerializer.Serialize(workers.Select(w => new Dictionary<string, object?>
            {
                ["name"] = w.Name,
                ["host"] = w.Host,
                ["pid"] = w.ProcessId,
                ["queues"] = w.Queues,
                ["concurrency"] = w.Concurrency,
                ["running"] = w.RunningTasks,
                ["paused"] = w.Paused,
                ["started_at"] = w.StartedAt,
                ["last_heartbeat"] = w.LastHeartbeat,
            }), CliJson.Options));
            return ExitCodes.Success;
        }

        var table = new Table().AddColumns("name", "host", "pid", "queues", "concurrency", "running", "paused", "last heartbeat");
        foreach (var w in workers)
        {
            table.AddRow(
                Markup.Escape(w.Name),
                Markup.Escape(w.Host),
                w.ProcessId.ToString(CultureInfo.InvariantCulture),
                Markup.Escape(string.Join(',', w.Queues)),
                w.Concurrency.ToString(CultureInfo.InvariantCulture),
                w.RunningTasks.Count.ToString(CultureInfo.InvariantCulture),
                w.Paused ? "yes" : "no",
                w.LastHeartbeat.ToString("u", CultureInfo.InvariantCulture));
        }

        AnsiConsole.Write(table);
        Console.WriteLine($"{workers.Count} worker(s)");
        return ExitCodes.Success;
    }
}

/// <summary>What the management commands share.</summary>
internal static class ManagementCli
{
    public static ConveyorManagement Api(CliSession session) => session.Services.GetRequiredService<ConveyorManagement>();

    /// <summary>Runs a call; what the provider cannot do is one line that says so.</summary>
    public static async Task<T> Run<T>(Func<ValueTask<T>> call)
    {
        try
        {
            return await call().ConfigureAwait(false);
        }
        catch (NotSupportedException ex)
        {
            throw new CliException(ex.Message, ex);
        }
    }

    public static Dictionary<string, object?> ToJson(TaskSummary task) => new()
    {
        ["task_id"] = task.Id,
        ["task_name"] = task.Name,
        ["queue"] = task.Queue.Length > 0 ? task.Queue : null,
        ["state"] = ManagedTaskStateNames.Name(task.State),
        ["args"] = task.Args.Select(a => new Dictionary<string, object?> { ["type"] = a.Type, ["value"] = CliJson.Value(a.Value) }).ToList(),
        ["attempts"] = task.Attempts,
        ["eta"] = task.Eta,
        ["since"] = task.Since,
        ["worker"] = task.Worker,
        ["error"] = task.Error,
        ["group_id"] = task.GroupId.Length > 0 ? task.GroupId : null,
    };

    public static Dictionary<string, object?>? ToJson(TaskProgress? progress) =>
        progress is null ? null : new() { ["percent"] = progress.Percent, ["message"] = progress.Message, ["at"] = progress.At };
}
