using System.Globalization;
using System.ComponentModel;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Spectre.Console;
using Spectre.Console.Cli;

namespace Conveyor.Cli.Commands;

internal sealed class StatusSettings : JsonConnectionSettings
{
    [CommandArgument(0, "<TASK_ID>")]
    [Description("The task id (task_...)")]
    public string TaskId { get; init; } = string.Empty;
}

/// <summary><c>conveyor status</c>: a task's state, results or error.</summary>
internal sealed class StatusCommand : AsyncCommand<StatusSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, StatusSettings settings, CancellationToken cancellationToken)
    {
        await using var session = await CliHost.StartAsync(CliHost.CreateBuilder(settings, LogLevel.Warning), cancellationToken).ConfigureAwait(false);
        var state = await session.Backend.GetStateAsync(settings.TaskId, cancellationToken).ConfigureAwait(false)
            ?? throw new CliException($"no state for task {settings.TaskId} in {session.BackendUrl} (unknown id, or its result expired)");
        // Progress lives in the management store, when the providers keep one.
        var store = session.Services.GetService<IManagementStore>();
        var progress = store is null ? null : await store.GetProgressAsync(settings.TaskId, cancellationToken).ConfigureAwait(false);
        Print(state, settings.Json, progress);
        return state.State == TaskState.Failure ? ExitCodes.TaskFailed : ExitCodes.Success;
    }

    public static void Print(TaskStateRecord state, bool json, TaskProgress? progress = null)
    {
        if (json)
        {
            var fields = ToJson(state);
            fields["revoked"] = state.IsRevoked();
            fields["progress"] = ManagementCli.ToJson(progress);
            Console.WriteLine(JsonSerializer.Serialize(fields, CliJson.Options));
            return;
        }

        var color = state.State switch
        {
            TaskState.Success => "green",
            TaskState.Failure => "red",
            _ => "yellow",
        };
        // A revocation is stored as FAILURE (what Go machinery reads as final); Conveyor says what it was.
        var name = state.IsRevoked() ? "REVOKED" : state.State.ToWireName();
        AnsiConsole.MarkupLineInterpolated(CultureInfo.InvariantCulture, $"{state.TaskId} {state.TaskName} [{color}]{name}[/]");
        if (progress is not null && !state.IsCompleted)
        {
            AnsiConsole.MarkupLineInterpolated(CultureInfo.InvariantCulture, $"  progress: {progress.Percent:0.#} % {progress.Message}");
        }
        if (state.Results is { Count: > 0 } results)
        {
            foreach (var result in results)
            {
                AnsiConsole.MarkupLineInterpolated(CultureInfo.InvariantCulture, $"  {result.Type}: {ArgumentParser.Format(result.Value)}");
            }
        }

        if (state.Error.Length > 0)
        {
            AnsiConsole.MarkupLineInterpolated(CultureInfo.InvariantCulture, $"  error: {state.Error}");
        }
    }

    public static Dictionary<string, object?> ToJson(TaskStateRecord state) => new()
    {
        ["task_id"] = state.TaskId,
        ["task_name"] = state.TaskName,
        ["state"] = state.State.ToWireName(),
        ["results"] = state.Results?.Select(ToJson).ToList(),
        ["error"] = state.Error.Length > 0 ? state.Error : null,
        ["created_at"] = state.CreatedAt,
    };

    public static Dictionary<string, object?> ToJson(TaskResult result) => new() { ["type"] = result.Type, ["value"] = CliJson.Value(result.Value) };
}
