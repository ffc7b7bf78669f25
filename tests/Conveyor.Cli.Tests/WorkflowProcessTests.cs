using System.Text.Json;

namespace Conveyor.Cli.Tests;

/// <summary>
/// <c>conveyor send --group/--chord/--chain/-f … --wait</c> against a running <c>conveyor worker</c>, as separate
/// processes, on each engine.
/// </summary>
public sealed class WorkflowProcessTests : IDisposable
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(120);
    private readonly string _directory = Directory.CreateTempSubdirectory("conveyor-workflows-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public Task Send_GroupChordChainAndFile_OnSqlite_PrintEachStateAndTheFinalResult() =>
        RunWorkflowsAsync("sqlite://conveyor.db", "sqlite://conveyor.db");

    [Fact]
    public Task Send_GroupChordChainAndFile_OnRedis_PrintEachStateAndTheFinalResult() =>
        RunWorkflowsAsync(TestServers.RedisUrl, TestServers.RedisUrl);

    [Fact]
    public Task Send_GroupChordChainAndFile_OnRabbitMqWithRedisBackend_PrintEachStateAndTheFinalResult() =>
        RunWorkflowsAsync(TestServers.AmqpUrl, TestServers.RedisUrl);

    private async Task RunWorkflowsAsync(string broker, string backend)
    {
        var queue = $"cli-workflows-{Guid.NewGuid():N}";
        string[] connection = ["--broker", broker, "--backend", backend, "-q", queue];
        using var worker = CliProcess.Start(_directory, ["worker", "--concurrency", "4", .. connection]);
        await worker.WaitForOutputAsync("conveyor worker", Generous);

        var group = await SendAsync([.. connection, "--group", "add int64:1 int64:2", "add int64:3 int64:4", "multiply int64:5 int64:6"]);
        var chord = await SendAsync([.. connection, "--chord", "sum", "multiply int64:2 int64:3", "multiply int64:4 int64:5", "--json"]);
        var chain = await SendAsync([.. connection, "--chain", "add int64:1 int64:2", "multiply int64:10", "add int64:100", "--json"]);
        var flow = Path.Combine(_directory, $"{queue}.json");
        await File.WriteAllTextAsync(flow, """{ "chord": { "group": [ "echo string:con", "echo string:vey", "echo string:or" ], "callback": "concat" } }""");
        var fromFile = await SendAsync([.. connection, "-f", flow]);
        var failed = await SendAsync([.. connection, "--group", "add int64:1 int64:2", "fail 'string:no luck'"]);

        Assert.True(group.ExitCode == 0, group.Output + group.Error);
        Assert.Equal(3, group.Output.Split('\n').Count(line => line.Contains(" SUCCESS", StringComparison.Ordinal) && line.StartsWith("task_", StringComparison.Ordinal)));
        Assert.Contains("int64: 30", group.Output, StringComparison.Ordinal);
        Assert.Contains("group SUCCESS = 3, 7, 30", group.Output, StringComparison.Ordinal);

        Assert.True(chord.ExitCode == 0, chord.Output + chord.Error);
        using (var json = JsonDocument.Parse(chord.Output))
        {
            var root = json.RootElement;
            Assert.Equal("chord", root.GetProperty("kind").GetString());
            Assert.Equal("SUCCESS", root.GetProperty("state").GetString());
            Assert.Equal([6L, 20L], root.GetProperty("tasks").EnumerateArray().Select(m => m.GetProperty("results")[0].GetProperty("value").GetInt64()));
            Assert.Equal("sum", root.GetProperty("callback").GetProperty("task_name").GetString());
            Assert.Equal(26, root.GetProperty("results")[0].GetProperty("value").GetInt64());
            Assert.StartsWith("group_", root.GetProperty("group_id").GetString(), StringComparison.Ordinal);
        }

        Assert.True(chain.ExitCode == 0, chain.Output + chain.Error);
        using (var json = JsonDocument.Parse(chain.Output))
        {
            var root = json.RootElement;
            Assert.Equal([3L, 30L, 130L], root.GetProperty("tasks").EnumerateArray().Select(t => t.GetProperty("results")[0].GetProperty("value").GetInt64()));
            Assert.Equal(130, root.GetProperty("results")[0].GetProperty("value").GetInt64());
        }

        Assert.True(fromFile.ExitCode == 0, fromFile.Output + fromFile.Error);
        Assert.Contains("callback task_", fromFile.Output, StringComparison.Ordinal);
        Assert.Contains("chord SUCCESS = conveyor", fromFile.Output, StringComparison.Ordinal);

        Assert.Equal(1, failed.ExitCode);
        Assert.Contains("fail FAILURE", failed.Output, StringComparison.Ordinal);
        Assert.Contains("error: no luck", failed.Output, StringComparison.Ordinal);
        Assert.Contains("group FAILURE", failed.Output, StringComparison.Ordinal);

        worker.Signal("TERM");
        Assert.Equal(0, await worker.WaitForExitAsync(Generous));
        foreach (var url in new[] { broker, backend }.Where(u => new Uri(u).UserInfo.Contains(':', StringComparison.Ordinal)))
        {
            // The worker names its URLs, with the password masked (amqp://guest:***@…).
            Assert.DoesNotContain(new Uri(url).UserInfo + "@", worker.Output + worker.Error, StringComparison.Ordinal);
            Assert.Contains(new Uri(url).UserInfo.Split(':')[0] + ":***@", worker.Output, StringComparison.Ordinal);
        }
    }

    private Task<(int ExitCode, string Output, string Error)> SendAsync(string[] args) =>
        CliProcess.RunAsync(_directory, Generous, ["send", "--wait", "--timeout", "60", .. args]);
}
