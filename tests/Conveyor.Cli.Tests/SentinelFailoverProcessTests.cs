using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Xunit.Abstractions;

namespace Conveyor.Cli.Tests;

/// <summary>
/// Redis Sentinel failover mid-run, on the primary, two replicas and three sentinels <c>scripts/test.sh</c> starts
/// (<c>CONVEYOR_TEST_SENTINEL</c>): the primary is shut down without saving during <c>bench -n 25000 --rate 5000</c> beside two
/// worker processes; the sentinels promote a replica, and the producer and both workers move to it by themselves.
/// </summary>
public sealed class SentinelFailoverProcessTests(ITestOutputHelper output) : IDisposable
{
    private const string Variable = "CONVEYOR_TEST_SENTINEL";
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(180);
    private readonly string _directory = Directory.CreateTempSubdirectory("conveyor-sentinel-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task Bench_PrimaryKilledMidRun_TwoWorkersAndTheProducerMoveToTheNewPrimary()
    {
        var sentinel = Environment.GetEnvironmentVariable(Variable) is { Length: > 0 } value
            ? value
            : throw new InvalidOperationException($"{Variable} is not set: this test needs a Redis primary, a replica and three sentinels. Run it through `bash scripts/test.sh` (it starts them on loopback).");
        // wait_replicas=1: an enqueue or a final state counts as stored once a replica has it, so the failover loses
        // none (the setup has two replicas: the promoted one still has one to wait for).
        var url = sentinel + "?wait_replicas=1&key_prefix=sentinel-" + Guid.NewGuid().ToString("N")[..8] + ":";
        var primary = await PrimaryAsync(sentinel);
        var replication = await RedisCliAsync(primary, "info", "replication");
        Assert.True(
            replication.Contains("connected_slaves:2", StringComparison.Ordinal),
            $"the primary {primary} needs two replicas (one to promote, one left for wait_replicas=1); a failover of this setup already ran, so start it again (bash scripts/test.sh starts a fresh one each run):\n{replication}");
        using var first = CliProcess.Start(_directory, "worker", "--broker", url, "--backend", url, "--concurrency", "16");
        using var second = CliProcess.Start(_directory, "worker", "--broker", url, "--backend", url, "--concurrency", "16");
        await first.WaitForOutputAsync("conveyor worker", Generous);
        await second.WaitForOutputAsync("conveyor worker", Generous);

        // Paced (5 s of publishing), so that the kill at 2.5 s lands mid-run however fast the pipeline is: 20,000 tasks
        // all at once once finished before it.
        using var bench = CliProcess.Start(_directory, "bench", "--warmup", "0", "-n", "25000", "--rate", "5000", "--no-worker", "--json", "--timeout", "150", "--broker", url, "--backend", url);
        await Task.Delay(TimeSpan.FromSeconds(2.5));
        Assert.False(bench.HasExited, $"bench ended before the failover:\n{bench.Output}\n{bench.Error}");
        await RedisCliAsync(primary, "shutdown", "nosave");
        var killed = Stopwatch.StartNew();
        var exitCode = await bench.WaitForExitAsync(Generous);
        var promoted = await PrimaryAsync(sentinel);

        Assert.True(exitCode == 0, $"bench exit {exitCode}\n{bench.Output}\n{bench.Error}");
        Assert.NotEqual(primary, promoted);
        var json = bench.Output.Split('\n').Last(line => line.TrimStart().StartsWith('{'));
        output.WriteLine($"primary {primary} shut down; new primary {promoted}; bench ended {killed.Elapsed.TotalSeconds:0.0} s later: {json}");
        using var report = JsonDocument.Parse(json);
        Assert.Equal(25000, report.RootElement.GetProperty("tasks").GetInt32());
        Assert.Equal(0, report.RootElement.GetProperty("lost").GetInt32());
        Assert.False(first.HasExited, $"worker 1 exited:\n{first.Error}");
        Assert.False(second.HasExited, $"worker 2 exited:\n{second.Error}");
        first.Signal("TERM");
        second.Signal("TERM");
        await first.WaitForExitAsync(Generous);
        await second.WaitForExitAsync(Generous);
    }

    // host:port of the primary the sentinels name now.
    private static async Task<string> PrimaryAsync(string sentinelUrl)
    {
        var hosts = sentinelUrl["redis+sentinel://".Length..sentinelUrl.IndexOf('/', "redis+sentinel://".Length)];
        var firstSentinel = hosts.Split(',')[0];
        var answer = await RedisCliAsync(firstSentinel, "sentinel", "get-master-addr-by-name", "conveyor");
        var lines = answer.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.True(lines.Length == 2, $"the sentinel at {firstSentinel} answered: {answer}");
        return $"{lines[0]}:{lines[1]}";
    }

    private static async Task<string> RedisCliAsync(string address, params string[] args)
    {
        var colon = address.LastIndexOf(':');
        var start = new ProcessStartInfo("redis-cli") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in (string[])["-h", address[..colon], "-p", address[(colon + 1)..], .. args])
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var text = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        return text.ToString(CultureInfo.InvariantCulture);
    }
}
