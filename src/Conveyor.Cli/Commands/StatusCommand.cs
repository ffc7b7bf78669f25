using System.Globalization;
using System.ComponentModel;
using System.Text.Json;
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
        Print(state, settings.Json);
        return state.State == TaskState.Failure ? ExitCodes.TaskFailed : ExitCodes.Success;
    }

    public static void Print(TaskStateRecord state, bool json)
    {
        if (json)
        {
            Console.WriteLine(JsonSerializer.Serialize(ToJson(state), CliJson.Options));
            return;
        }

        var color = state.State switch
        {
            TaskState.Success => "green",
            TaskState.Failure => "red",
            _ => "yellow",
        };
        AnsiConsole.MarkupLineInterpolated(CultureInfo.InvariantCulture, $"{state.TaskId} {state.TaskName} [{color}]{state.State.ToWireName()}[/]");
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
