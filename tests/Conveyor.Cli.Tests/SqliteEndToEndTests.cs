using System.Text.Json;

namespace Conveyor.Cli.Tests;

/// <summary>The <c>conveyor</c> command on the embedded SQLite default, as separate processes sharing one file.</summary>
public sealed class SqliteEndToEndTests : IDisposable
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(120);
    private readonly string _directory = Directory.CreateTempSubdirectory("conveyor-cli-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task Demo_OnTheEmbeddedDefault_PrintsATaskAGroupAChordAndAChain()
    {
        var (exitCode, output, error) = await CliProcess.RunAsync(_directory, Generous, "demo");

        Assert.True(exitCode == 0, $"exit {exitCode}\n{output}\n{error}");
        Assert.Contains("task  add(2, 3) = 5", output, StringComparison.Ordinal);
        Assert.Contains("= 42, hello, conveyor", output, StringComparison.Ordinal);
        Assert.Contains("sum(multiply(i, i) for i in 1..5) = 55", output, StringComparison.Ordinal);
        Assert.Contains("add(1, 2) -> multiply(10, _) -> add(100, _) = 130", output, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(_directory, "conveyor.db")), "the demo uses sqlite://conveyor.db by default");
    }

    [Fact]
    public async Task Send_UnregisteredTask_ReportsItDeadLetteredAsNotRegistered_AndTheWorkerGoesOn()
    {
        using var worker = CliProcess.Start(_directory, "worker", "--concurrency", "2");
        await worker.WaitForOutputAsync("conveyor worker", Generous);

        var unknown = await CliProcess.RunAsync(_directory, Generous, "send", "nosuchtask", "int64:1", "--wait", "--timeout", "60");
        var known = await CliProcess.RunAsync(_directory, Generous, "send", "add", "int64:2", "int64:3", "--wait", "--json");
        var letters = await CliProcess.RunAsync(_directory, Generous, "dead-letters", "--json");

        Assert.Equal(1, unknown.ExitCode);
        Assert.Contains("FAILURE", unknown.Output, StringComparison.Ordinal);
        Assert.Contains("dead-lettered: task \"nosuchtask\" is not registered", unknown.Output, StringComparison.Ordinal);
        Assert.Equal(0, known.ExitCode);
        using (var json = JsonDocument.Parse(known.Output))
        {
            Assert.Equal("SUCCESS", json.RootElement.GetProperty("state").GetString());
            Assert.Equal(5, json.RootElement.GetProperty("results")[0].GetProperty("value").GetInt64());
        }

        using (var json = JsonDocument.Parse(letters.Output))
        {
            var letter = Assert.Single(json.RootElement.EnumerateArray());
            Assert.Contains("not registered", letter.GetProperty("reason").GetString(), StringComparison.Ordinal);
            Assert.StartsWith("nosuchtask task_", letter.GetProperty("task").GetString(), StringComparison.Ordinal);
        }

        worker.Signal("TERM");
        Assert.Equal(0, await worker.WaitForExitAsync(Generous));
    }

    [Fact]
    public async Task Bench_TwoWorkers_OneKilledMidRun_NothingIsLost()
    {
        // A short visibility timeout so the dead worker's leases pass to the other worker quickly.
        const string url = "sqlite://conveyor.db?visibility_timeout=2";
        using var first = CliProcess.Start(_directory, "worker", "--broker", url, "--backend", url, "--concurrency", "4", "--name", "first");
        using var second = CliProcess.Start(_directory, "worker", "--broker", url, "--backend", url, "--concurrency", "4", "--name", "second");
        await first.WaitForOutputAsync("conveyor worker", Generous);
        await second.WaitForOutputAsync("conveyor worker", Generous);

        using var bench = CliProcess.Start(_directory, "bench", "--warmup", "0", "-n", "3000", "--rate", "1500", "--no-worker", "--json", "--broker", url, "--backend", url);
        await Task.Delay(TimeSpan.FromSeconds(1));
        first.Kill();
        var exitCode = await bench.WaitForExitAsync(Generous);

        Assert.True(exitCode == 0, $"bench exit {exitCode}\n{bench.Output}\n{bench.Error}");
        using var report = JsonDocument.Parse(bench.Output);
        Assert.Equal(3000, report.RootElement.GetProperty("tasks").GetInt32());
        Assert.Equal(0, report.RootElement.GetProperty("lost").GetInt32());
        Assert.True(report.RootElement.GetProperty("tasks_per_second").GetDouble() > 0);
    }

    [Fact]
    public async Task BadUrl_ExitsTwoWithOneLineThatSaysWhatToFix()
    {
        var (exitCode, output, error) = await CliProcess.RunAsync(_directory, Generous, "send", "add", "int64:1", "int64:2", "--broker", "sqlite:///no/such/dir/x.db");

        Assert.Equal(2, exitCode);
        Assert.Equal("conveyor: Conveyor:Broker: cannot open sqlite:///no/such/dir/x.db: the folder /no/such/dir does not exist", error.Trim());
        Assert.Equal(string.Empty, output.Trim());
    }
}
