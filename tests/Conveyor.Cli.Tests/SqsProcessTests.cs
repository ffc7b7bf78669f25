using System.Text.Json;
using Conveyor.Testing;

namespace Conveyor.Cli.Tests;

/// <summary>
/// The <c>conveyor</c> command on SQS (the fauxqs emulator) with the Redis backend, as separate processes: a worker
/// killed with SIGKILL mid-run loses nothing, because its unacknowledged messages become visible again when their
/// visibility timeout ends (it stops extending them) and the other worker takes them.
/// </summary>
public sealed class SqsProcessTests : IDisposable
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(180);
    private readonly string _directory = Directory.CreateTempSubdirectory("conveyor-cli-sqs-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task Bench_TwoWorkersOnSqs_OneKilledMidRun_NothingIsLost()
    {
        var broker = $"sqs://us-east-1/?endpoint={AwsTestServers.SqsEndpoint}&visibility_timeout=3&wait_time=1";
        var backend = $"{RedisTestServer.Url}?key_prefix=conveyor-cli-sqs-{Guid.NewGuid():N}:&result_ttl=600";
        var queue = "conveyor-cli-kill-" + Guid.NewGuid().ToString("N")[..12];
        var environment = AwsTestServers.ChildEnvironment;
        using var first = CliProcess.Start(_directory, environment, "worker", "--broker", broker, "--backend", backend, "--queue", queue, "--concurrency", "8", "--name", "first");
        using var second = CliProcess.Start(_directory, environment, "worker", "--broker", broker, "--backend", backend, "--queue", queue, "--concurrency", "8", "--name", "second");
        await first.WaitForOutputAsync("conveyor worker", Generous);
        await second.WaitForOutputAsync("conveyor worker", Generous);

        using var bench = CliProcess.Start(_directory, environment, "bench", "--warmup", "0", "-n", "5000", "--no-worker", "--json", "--broker", broker, "--backend", backend, "--queue", queue);
        await Task.Delay(TimeSpan.FromSeconds(1));
        first.Kill();
        var exitCode = await bench.WaitForExitAsync(Generous);

        Assert.True(exitCode == 0, $"bench exit {exitCode}\n{bench.Output}\n{bench.Error}");
        using var report = JsonDocument.Parse(bench.Output);
        Assert.Equal(5000, report.RootElement.GetProperty("tasks").GetInt32());
        Assert.Equal(0, report.RootElement.GetProperty("lost").GetInt32());
        Assert.True(report.RootElement.GetProperty("seconds").GetDouble() > 1, $"the run ended before the kill: {bench.Output}");
        second.Signal("TERM");
        Assert.Equal(0, await second.WaitForExitAsync(Generous));
    }

    [Theory]
    [InlineData("--broker", "sqs://nowhere/", "conveyor: Conveyor:Broker: sqs:// URL: 'nowhere' is not an AWS region")]
    [InlineData("--backend", "dynamodb://us-east-1?colour=blue", "conveyor: Conveyor:ResultBackend: dynamodb:// URL: unknown setting 'colour'")]
    [InlineData("--broker", "sqs://AKIAEXAMPLE:hunter2@us-east-1/", "conveyor: Conveyor:Broker: an sqs:// URL carries no credentials")]
    public async Task Send_BadAwsUrl_ExitsTwoWithOneLineThatSaysWhatToFix(string option, string url, string expected)
    {
        var (exitCode, output, error) = await CliProcess.RunAsync(_directory, Generous, "send", "add", "int64:1", "int64:2", option, url);

        Assert.Equal(2, exitCode);
        Assert.StartsWith(expected, error.Trim(), StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.Trim());
        Assert.DoesNotContain("hunter2", error, StringComparison.Ordinal);
        Assert.Equal(string.Empty, output.Trim());
    }
}
