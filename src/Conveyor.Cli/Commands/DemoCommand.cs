using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Spectre.Console;
using Spectre.Console.Cli;

namespace Conveyor.Cli.Commands;

/// <summary>
/// <c>conveyor demo</c>: starts a worker in this process on the embedded default (or the given URLs), sends a
/// task, a group, a chord and a chain, and prints each result as it arrives.
/// </summary>
internal sealed class DemoCommand : AsyncCommand<ConnectionSettings>
{
    public override async Task<int> ExecuteAsync(CommandContext context, ConnectionSettings settings, CancellationToken cancellationToken)
    {
        var queue = settings.Queue ?? "conveyor_demo";
        var builder = CliHost.CreateBuilder(settings, LogLevel.Warning, new Dictionary<string, string?>
        {
            ["Conveyor:DefaultQueue"] = queue,
            ["Conveyor:Worker:Concurrency"] = "4",
        });
        builder.AddBuiltInTasks();
        builder.Services.AddConveyorWorker();
        await using var session = await CliHost.StartAsync(builder, cancellationToken).ConfigureAwait(false);
        var client = session.Client;
        AnsiConsole.MarkupLineInterpolated(CultureInfo.InvariantCulture, $"[green]conveyor demo[/]: worker in this process on queue [bold]{queue}[/]; broker {session.BrokerUrl}, backend {session.BackendUrl}");
        var timeout = TimeSpan.FromSeconds(30);
        var task = await client.SendAsync(new Signature("add", TaskArgument.Int64(2), TaskArgument.Int64(3)), cancellationToken).ConfigureAwait(false);
        Show("task ", "add(2, 3)", await task.GetAsync(timeout, cancellationToken).ConfigureAwait(false));

        var group = await client.SendGroupAsync(
            new TaskGroup(
                new Signature("multiply", TaskArgument.Int64(6), TaskArgument.Int64(7)),
                new Signature("echo", TaskArgument.String("hello")),
                new Signature("concat", TaskArgument.From(new[] { "con", "vey", "or" }))),
            cancellationToken: cancellationToken).ConfigureAwait(false);
        var groupResults = await group.GetAsync(timeout, cancellationToken).ConfigureAwait(false);
        Show("group", "multiply(6, 7) | echo(\"hello\") | concat([con vey or])", [.. groupResults.SelectMany(r => r)]);

        var chordOfSums = await client.SendChordAsync(
            new Chord(
                new TaskGroup(Enumerable.Range(1, 5).Select(i => new Signature("multiply", TaskArgument.Int64(i), TaskArgument.Int64(i)))),
                new Signature("sum")),
            cancellationToken: cancellationToken).ConfigureAwait(false);
        Show("chord", "sum(multiply(i, i) for i in 1..5)", await chordOfSums.GetAsync(timeout, cancellationToken).ConfigureAwait(false));

        var chain = await client.SendChainAsync(
            new Chain(
                new Signature("add", TaskArgument.Int64(1), TaskArgument.Int64(2)),
                new Signature("multiply", TaskArgument.Int64(10)),
                new Signature("add", TaskArgument.Int64(100))),
            cancellationToken).ConfigureAwait(false);
        Show("chain", "add(1, 2) -> multiply(10, _) -> add(100, _)", await chain.GetAsync(timeout, cancellationToken).ConfigureAwait(false));

        return ExitCodes.Success;
    }

    private static void Show(string kind, string what, IReadOnlyList<TaskResult> results) =>
        AnsiConsole.MarkupLineInterpolated(CultureInfo.InvariantCulture, $"[blue]{kind}[/] {what} = [bold]{string.Join(", ", results.Select(r => ArgumentParser.Format(r.Value)))}[/]");
}
