using System.ComponentModel;
using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Spectre.Console;
using Spectre.Console.Cli;

namespace Conveyor.Cli.Commands;

internal sealed class SendSettings : ConnectionSettings
{
    [CommandArgument(0, "<TASK>")]
    [Description("Registered task name, e.g. add")]
    public string Task { get; init; } = string.Empty;

    [CommandArgument(1, "[ARG]")]
    [Description("Arguments as TYPE:VALUE, e.g. int64:2 string:hello []string:a,b")]
    public string[] Args { get; init; } = [];

    [CommandOption("--eta <TIME>")]
    [Description("Run at or after this time (ISO 8601, e.g. 2026-11-26T18:00:00Z)")]
    public string? Eta { get; init; }

    [CommandOption("--countdown <SECONDS>")]
    [Description("Run after this many seconds")]
    public double? Countdown { get; init; }

    [CommandOption("--priority <N>")]
    [Description("Priority 0-255, higher first")]
    public int Priority { get; init; }

    [CommandOption("--retries <N>")]
    [Description("Retries after a failure (Fibonacci backoff)")]
    public int Retries { get; init; }

    [CommandOption("--wait")]
    [Description("Wait for the final state and print the results")]
    public bool Wait { get; init; }

    [CommandOption("--timeout <SECONDS>")]
    [Description("With --wait: how long to wait. Default: 60")]
    public double Timeout { get; init; } = 60;

    [CommandOption("--json")]
    [Description("Print JSON")]
    public bool Json { get; init; }

    public override ValidationResult Validate() =>
        Eta is not null && Countdown is not null ? ValidationResult.Error("use --eta or --countdown, not both")
        : Priority is < 0 or > 255 ? ValidationResult.Error("--priority must be 0-255")
        : Retries < 0 ? ValidationResult.Error("--retries must not be negative")
        : Timeout <= 0 ? ValidationResult.Error("--timeout must be positive")
        : ValidationResult.Success();
}

/// <summary><c>conveyor send</c>: publishes one task; prints its id, or with --wait its final state and results.</summary>
internal sealed class SendCommand : AsyncCommand<SendSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, SendSettings settings, CancellationToken cancellationToken)
    {
        var signature = new Signature(settings.Task, settings.Args.Select(ArgumentParser.Parse))
        {
            RoutingKey = settings.QueueName,
            Priority = (byte)settings.Priority,
            RetryCount = settings.Retries,
        };
        if (settings.Eta is { } eta)
        {
            signature.Eta = DateTimeOffset.TryParse(eta, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var parsed)
                ? parsed
                : throw new CliException($"--eta '{eta}' is not a time; use ISO 8601 such as 2026-11-26T18:00:00Z");
        }
        else if (settings.Countdown is { } countdown)
        {
            signature.Eta = TimeProvider.System.GetUtcNow().AddSeconds(countdown);
        }

        await using var providers = await Connections.OpenAsync(settings.BrokerUrl, settings.BackendUrl, NullLoggerFactory.Instance, cancellationToken).ConfigureAwait(false);
        var client = new ConveyorClient(providers.Broker, providers.Backend, new ConveyorClientOptions { DefaultQueue = settings.QueueName });
        var result = await client.SendAsync(signature, cancellationToken).ConfigureAwait(false);
        if (!settings.Wait)
        {
            if (settings.Json)
            {
                Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object?> { ["task_id"] = result.TaskId, ["state"] = "PENDING" }, CliJson.Options));
            }
            else
            {
                Console.WriteLine(result.TaskId);
            }

            return ExitCodes.Success;
        }

        TaskStateRecord state;
        try
        {
            state = await result.WaitAsync(TimeSpan.FromSeconds(settings.Timeout), cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            var last = await result.GetStateAsync(cancellationToken).ConfigureAwait(false);
            throw new CliException($"task {result.TaskId} did not finish within {settings.Timeout} s (state {last?.State.ToWireName() ?? "unknown"}); is a worker running on queue {settings.QueueName}?");
        }

        StatusCommand.Print(state, settings.Json);
        return state.State == TaskState.Success ? ExitCodes.Success : ExitCodes.TaskFailed;
    }
}
