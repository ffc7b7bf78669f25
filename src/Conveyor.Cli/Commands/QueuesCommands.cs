using System.ComponentModel;
using System.Globalization;
using System.Text.Json;
using Conveyor.Serialization;
using Microsoft.Extensions.Logging;
using Spectre.Console;
using Spectre.Console.Cli;

namespace Conveyor.Cli.Commands;

/// <summary><c>conveyor queues</c>: pending, delayed, in-flight and dead-lettered counts per queue.</summary>
internal sealed class QueuesCommand : AsyncCommand<JsonConnectionSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, JsonConnectionSettings settings, CancellationToken cancellationToken)
    {
        await using var session = await CliHost.StartAsync(CliHost.CreateBuilder(settings, LogLevel.Warning), cancellationToken).ConfigureAwait(false);
        var queues = new List<QueueStatistics>();
        foreach (var queue in await session.Broker.ListQueuesAsync(cancellationToken).ConfigureAwait(false))
        {
            queues.Add(await session.Broker.GetQueueStatisticsAsync(queue, cancellationToken).ConfigureAwait(false));
        }

        if (settings.Json)
        {
            Console.WriteLine(JsonSerializer.Serialize(
                queues.Select(q => new Dictionary<string, object> { ["queue"] = q.Queue, ["pending"] = q.Ready, ["delayed"] = q.Delayed, ["in_flight"] = q.InFlight, ["dead_lettered"] = q.DeadLettered }),
                CliJson.Options));
            return ExitCodes.Success;
        }

        var table = new Table().AddColumns("queue", "pending", "delayed", "in flight", "dead-lettered");
        foreach (var q in queues)
        {
            table.AddRow(Markup.Escape(q.Queue), Count(q.Ready), Count(q.Delayed), Count(q.InFlight), Count(q.DeadLettered));
        }

        AnsiConsole.Write(table);
        return ExitCodes.Success;
    }

    private static string Count(long value) => value.ToString("N0", CultureInfo.InvariantCulture);
}

internal sealed class PurgeSettings : ConnectionSettings
{
    [CommandArgument(0, "<QUEUE>")]
    [Description("The queue to empty (pending and delayed tasks; running ones are left to their workers)")]
    public string Target { get; init; } = string.Empty;
}

/// <summary><c>conveyor purge QUEUE</c>.</summary>
internal sealed class PurgeCommand : AsyncCommand<PurgeSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, PurgeSettings settings, CancellationToken cancellationToken)
    {
        await using var session = await CliHost.StartAsync(CliHost.CreateBuilder(settings, LogLevel.Warning), cancellationToken).ConfigureAwait(false);
        var removed = await session.Broker.PurgeAsync(settings.Target, cancellationToken).ConfigureAwait(false);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"purged {removed} task(s) from {settings.Target}"));
        return ExitCodes.Success;
    }
}

internal sealed class DeadLettersSettings : JsonConnectionSettings
{
    [CommandOption("--requeue")]
    [Description("Move every dead letter back to its queue. Default: off (list them)")]
    public bool Requeue { get; init; }

    [CommandOption("--limit <N>")]
    [Description("The most to list or requeue")]
    [DefaultValue(1000)]
    public int Limit { get; init; } = 1000;
}

/// <summary><c>conveyor dead-letters</c>: lists dead letters with their reasons, or requeues them.</summary>
internal sealed class DeadLettersCommand : AsyncCommand<DeadLettersSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, DeadLettersSettings settings, CancellationToken cancellationToken)
    {
        await using var session = await CliHost.StartAsync(CliHost.CreateBuilder(settings, LogLevel.Warning), cancellationToken).ConfigureAwait(false);
        if (settings.Requeue)
        {
            var moved = await session.Broker.RequeueDeadLettersAsync(settings.Limit, cancellationToken).ConfigureAwait(false);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"requeued {moved} dead letter(s)"));
            return ExitCodes.Success;
        }

        var letters = await session.Broker.GetDeadLettersAsync(settings.Limit, cancellationToken).ConfigureAwait(false);
        var rows = letters.Select(letter => (letter, task: Describe(letter))).ToList();
        if (settings.Json)
        {
            Console.WriteLine(JsonSerializer.Serialize(
                rows.Select(r => new Dictionary<string, object?>
                {
                    ["id"] = r.letter.Id,
                    ["queue"] = r.letter.Queue,
                    ["reason"] = r.letter.Reason,
                    ["task"] = r.task,
                    ["dead_lettered_at"] = r.letter.DeadLetteredAt,
                    ["body"] = System.Text.Encoding.UTF8.GetString(r.letter.Body.Span),
                }),
                CliJson.Options));
            return ExitCodes.Success;
        }

        var table = new Table().AddColumns("id", "queue", "task", "reason", "when");
        foreach (var (letter, task) in rows)
        {
            table.AddRow(Markup.Escape(letter.Id), Markup.Escape(letter.Queue), Markup.Escape(task), Markup.Escape(letter.Reason), letter.DeadLetteredAt.ToString("u", CultureInfo.InvariantCulture));
        }

        AnsiConsole.Write(table);
        return ExitCodes.Success;
    }

    private static string Describe(DeadLetter letter)
    {
        try
        {
            var signature = WireFormat.DeserializeSignature(letter.Body.Span);
            return $"{signature.Name} {signature.Id}";
        }
        catch (WireFormatException)
        {
            return "(malformed)";
        }
    }
}
