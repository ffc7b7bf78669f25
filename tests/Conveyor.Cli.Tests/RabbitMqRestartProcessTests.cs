using System.Text.Json;
using Conveyor.Testing;
using Xunit.Abstractions;

namespace Conveyor.Cli.Tests;

/// <summary>
/// A full RabbitMQ node restart in the middle of a run (<c>rabbitmqctl stop</c>: the Erlang VM exits, then the server
/// starts again on the same data), on a node of the test's own: the producer's publishes wait out the outage and are
/// confirmed, the two worker processes reconnect by themselves, and every task ends with its result.
/// </summary>
public sealed class RabbitMqRestartProcessTests(ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(180);
    private readonly string _directory = Directory.CreateTempSubdirectory("conveyor-rabbitmq-restart-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task Bench_FullNodeRestartMidRun_LosesNoConfirmedTask()
    {
        await using var rabbit = await PrivateRabbitMq.StartAsync();
        const int Tasks = 6000;

        // Published over ~10 s, so the restart falls in the middle of publishing and running.
        using var bench = CliProcess.Start(_directory, "bench", "--warmup", "0", "-n", Tasks.ToString(System.Globalization.CultureInfo.InvariantCulture), "--rate", "600",
            "--workers", "2", "--concurrency", "8", "--json", "--timeout", "150", "--broker", rabbit.AmqpUrl, "--backend", "sqlite://results.db");
        await Task.Delay(TimeSpan.FromSeconds(4));
        Assert.False(bench.HasExited, $"bench ended before the restart:\n{bench.Output}\n{bench.Error}");
        var stopped = System.Diagnostics.Stopwatch.StartNew();
        await rabbit.StopAsync();
        await Task.Delay(TimeSpan.FromSeconds(1));
        await rabbit.StartAgainAsync();
        output.WriteLine($"node stopped and started again {stopped.Elapsed.TotalSeconds:0.0} s after it went down");
        var exitCode = await bench.WaitForExitAsync(Generous);

        Assert.True(exitCode == 0, $"bench exit {exitCode}\n{bench.Output}\n{bench.Error}");
        // Warnings logged during the outage go to the console too; the report is the JSON line.
        var json = bench.Output.Split('\n').LastOrDefault(line => line.TrimStart().StartsWith('{'));
        Assert.True(json is not null, $"no JSON report in:\n{bench.Output}");
        output.WriteLine(json);
        using var report = JsonDocument.Parse(json);
        Assert.Equal(Tasks, report.RootElement.GetProperty("tasks").GetInt32());
        Assert.Equal(0, report.RootElement.GetProperty("lost").GetInt32());
    }
}
