using System.Diagnostics;
using System.Text.Json;
using Conveyor.RabbitMQ;
using Conveyor.Redis;
using Conveyor.Testing;
using Conveyor.Cli.Bench;
using Conveyor.Sqlite;

namespace Conveyor.Cli.Tests;

/// <summary>
/// <c>conveyor bench</c> and <c>conveyor worker</c> as separate processes: what the benchmark reports (counted by
/// the workers in memory, CPU of each side, Redis calls and CPU per task), and that a worker killed with SIGKILL
/// mid-run loses nothing on Redis and on RabbitMQ (with the Redis backend); the SQLite and SQS ones are in
/// <see cref="SqliteEndToEndTests"/> and <see cref="SqsProcessTests"/>.
/// </summary>
public sealed class BenchProcessTests : IDisposable
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(180);
    private readonly string _directory = Directory.CreateTempSubdirectory("conveyor-cli-bench-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task Bench_TwoWorkersOnSqliteAfterAWarmUp_ReportsEveryTaskRunOnceAndTheCpuOfEachSide()
    {
        var (exitCode, output, error) = await CliProcess.RunAsync(_directory, Generous, "bench", "--warmup", "1000", "-n", "2000", "--workers", "2", "--json");

        Assert.True(exitCode == 0, $"bench exit {exitCode}\n{output}\n{error}");
        using var report = JsonDocument.Parse(output);
        var root = report.RootElement;
        Assert.Equal(2000, root.GetProperty("tasks").GetInt32());
        Assert.Equal(0, root.GetProperty("lost").GetInt32());
        Assert.Equal(1000, root.GetProperty("warm_up_tasks").GetInt32());
        Assert.Equal(0, root.GetProperty("warm_up_lost").GetInt32());
        Assert.True(root.GetProperty("warm_up_tasks_per_second").GetDouble() > 0, output);

        // The warm-up's tasks carry no run id: the workers count the measured run's tasks only.
        Assert.Equal(2000, root.GetProperty("executions").GetInt64());
        Assert.Equal(0, root.GetProperty("duplicates").GetInt64());
        Assert.Equal(0, root.GetProperty("uncounted").GetInt64());
        Assert.Equal(2, root.GetProperty("workers_reported").GetInt32());
        Assert.False(root.GetProperty("workers_in_process").GetBoolean());
        Assert.True(root.GetProperty("producer_cpu_seconds").GetDouble() > 0, output);
        var workersCpu = root.GetProperty("workers_cpu_seconds").GetDouble();
        Assert.True(workersCpu > 0, output);
        Assert.True(root.GetProperty("workers_process_cpu_seconds").GetDouble() >= workersCpu, output);
        Assert.Equal(JsonValueKind.Null, root.GetProperty("redis").ValueKind);
    }

    [Fact]
    public async Task Bench_OneWorkerOnSqlite_PrintsTheCpuOfEachSideUnderTheTable()
    {
        var (exitCode, output, error) = await CliProcess.RunAsync(_directory, Generous, "bench", "--warmup", "0", "-n", "300");

        Assert.True(exitCode == 0, $"bench exit {exitCode}\n{output}\n{error}");
        var row = Assert.Single(output.Split('\n'), line => line.Contains("│ 300 ", StringComparison.Ordinal));
        Assert.EndsWith("│ 0    │ 0          │", row.TrimEnd(), StringComparison.Ordinal); // lost, duplicates
        var cpu = Assert.Single(output.Split('\n'), line => line.StartsWith("CPU: producer ", StringComparison.Ordinal));
        Assert.Contains(" µs per task), workers ", cpu, StringComparison.Ordinal);
        Assert.Contains("(1 worker(s) reported)", cpu, StringComparison.Ordinal);
        Assert.DoesNotContain("Redis ", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Bench_TwoWorkersOnRedis_ReportsRedisCallsAndCpuPerTaskWithNoCounterCallPerTask()
    {
        var url = $"{TestServers.RedisUrl}?key_prefix=conveyor-cli-bench-{Guid.NewGuid():N}:";
        var queue = "conveyor-cli-bench-" + Guid.NewGuid().ToString("N")[..12];
        var (exitCode, output, error) = await CliProcess.RunAsync(_directory, Generous, "bench", "--warmup", "0", "-n", "2000", "--workers", "2", "--json", "--broker", url, "--backend", url, "--queue", queue);

        Assert.True(exitCode == 0, $"bench exit {exitCode}\n{output}\n{error}");
        using var report = JsonDocument.Parse(output);
        var root = report.RootElement;
        Assert.Equal(0, root.GetProperty("lost").GetInt32());
        Assert.Equal(0, root.GetProperty("duplicates").GetInt64());
        Assert.Equal(2000, root.GetProperty("executions").GetInt64());
        var redis = Assert.Single(root.GetProperty("redis").EnumerateArray());
        Assert.Equal(TestServers.RedisUrl["redis://".Length..], redis.GetProperty("server").GetString());

        // At least a publish, a fetch and a state write per task; far from the ~25 of the per-task design.
        var calls = redis.GetProperty("calls_per_task").GetDouble();
        Assert.InRange(calls, 2, 60);
        Assert.True(redis.GetProperty("cpu_us_per_task").GetDouble() > 0, output);
        var byCommand = redis.GetProperty("calls").EnumerateObject().ToDictionary(c => c.Name, c => c.Value.GetDouble());
        Assert.Equal(calls, byCommand.Values.Sum(), 0.05 * calls);

        // The old duplicate counting was the chord counter's script per task (HMGET, SCARD, PEXPIRE in it).
        Assert.True(byCommand.GetValueOrDefault("scard") < 0.01, $"SCARD per task: {output}");
        Assert.True(byCommand.GetValueOrDefault("hmget") < 0.01, $"HMGET per task: {output}");
        Assert.True(root.GetProperty("workers_cpu_seconds").GetDouble() > 0, output);
    }

    [Fact]
    public async Task Worker_BenchTaskRunTwice_ReportsOneDuplicateWhenItStops()
    {
        // Two messages for task index 7 of one run (a publish retried after a lost answer) and one for index 8.
        var database = Path.Combine(_directory, "conveyor.db");
        var url = $"sqlite://{database}";
        var runId = Guid.NewGuid().ToString("N");
        var options = new SqliteConveyorOptions { DatabasePath = database };
        await using (var broker = new SqliteBroker(options))
        await using (var backend = new SqliteResultBackend(options))
        {
            var client = new ConveyorClient(broker, backend);
            foreach (var index in new long[] { 7, 7, 8 })
            {
                var signature = new Signature("add", TaskArgument.Int64(index), TaskArgument.Int64(1));
                signature.Headers[BuiltInTasks.BenchHeader] = runId;
                await client.SendAsync(signature);
            }
        }

        using var worker = CliProcess.Start(_directory, "worker", "--broker", url, "--backend", url, "--name", "counting");
        await worker.WaitForOutputAsync("conveyor worker", Generous);
        await using (var backend = new SqliteResultBackend(options))
        {
            // Wait until the worker has reported all three (it reports a second after a change)...
            var waited = Stopwatch.StartNew();
            while (BenchExecutionSummary.Combine(await BenchReports.ReadAsync(backend, runId, CancellationToken.None)).Executions < 3)
            {
                Assert.True(waited.Elapsed < Generous, $"the worker reported less than 3 executions within {Generous}\n{worker.Output}\n{worker.Error}");
                await Task.Delay(100);
            }

            // ...and again as it stops.
            worker.Signal("TERM");
            Assert.Equal(0, await worker.WaitForExitAsync(Generous));
            var reports = await BenchReports.ReadAsync(backend, runId, CancellationToken.None);
            var summary = BenchExecutionSummary.Combine(reports);

            Assert.Equal("counting", Assert.Single(reports).Worker);
            Assert.Equal(3, summary.Executions);
            Assert.Equal(2, summary.DistinctTasks);
            Assert.Equal(1, summary.Duplicates);
            Assert.True(reports[0].ProcessCpuSeconds >= reports[0].RunCpuSeconds && reports[0].RunCpuSeconds >= 0);
        }
    }

    [Fact]
    public async Task Bench_TwoWorkersOnRedis_OneKilledMidRun_NothingIsLost()
    {
        // A short visibility timeout: the live worker takes the dead one's in-flight messages back after 2 s.
        var url = $"{TestServers.RedisUrl}?visibility_timeout=2&key_prefix=conveyor-cli-kill-{Guid.NewGuid():N}:";
        await using var redis = await RedisTestServer.ConnectAsync();
        var options = new RedisConveyorOptions();
        RedisUrl.ApplyOptions(url, options);
        await using var broker = new RedisBroker(redis, options);
        for (var attempt = 1; ; attempt++)
        {
            // Each run loses nothing (checked inside). The kill lands at a moment the statistics show messages in
            // flight, but the killed worker may have settled its last batch just before it died and held nothing;
            // then the live worker had nothing to recover, and the run is tried again on a fresh queue.
            var (second, bench, statistics) = await KillOneWorkerMidRunAsync(url, url, broker, inFlightSeen: true);
            if (second.Contains("in-flight message(s) of dead consumer", StringComparison.Ordinal))
            {
                return; // the dead worker held messages: the live one moved them back to the queue
            }

            Assert.True(attempt < 3, $"in 3 runs the killed worker never held a message at its death\n{statistics}\n{second}\n{bench}");
        }
    }

    [Fact]
    public async Task Bench_TwoWorkersOnRabbitMqWithRedisBackend_OneKilledMidRun_NothingIsLost()
    {
        // RabbitMQ requeues a consumer's unacknowledged messages as soon as its connection closes (the kill closes
        // the socket): there is no visibility timeout to wait out.
        await using var broker = new RabbitMqBroker(AmqpUrl.Parse(TestServers.AmqpUrl));
        await KillOneWorkerMidRunAsync(TestServers.AmqpUrl, $"{TestServers.RedisUrl}?key_prefix=conveyor-cli-kill-{Guid.NewGuid():N}:", broker, inFlightSeen: false);
    }

    /// <summary>
    /// Two workers of concurrency 2, a benchmark that publishes everything at once, and a SIGKILL of one worker
    /// while a backlog waits in the queue (as <paramref name="broker"/>'s statistics show), so that each worker holds
    /// its full prefetch unacknowledged; with <paramref name="inFlightSeen"/> the statistics must also show more
    /// messages in flight (Redis counts them in the server) than one worker's prefetch (4), so the one killed holds
    /// some. A lost task fails the run after 60 s (the bench's timeout), with
    /// the count in its report. Returns what the live worker and the bench printed, and the statistics at the kill.
    /// </summary>
    private async Task<(string Second, string Bench, QueueStatistics AtKill)> KillOneWorkerMidRunAsync(string brokerUrl, string backendUrl, IBroker broker, bool inFlightSeen)
    {
        var queue = "conveyor-cli-kill-" + Guid.NewGuid().ToString("N")[..12];
        string[] connection = ["--broker", brokerUrl, "--backend", backendUrl, "--queue", queue];
        using var first = CliProcess.Start(_directory, ["worker", "--concurrency", "2", "--name", "first", .. connection]);
        using var second = CliProcess.Start(_directory, ["worker", "--concurrency", "2", "--name", "second", .. connection]);
        await first.WaitForOutputAsync("conveyor worker", Generous);
        await second.WaitForOutputAsync("conveyor worker", Generous);

        using var bench = CliProcess.Start(_directory, ["bench", "--warmup", "0", "-n", "20000", "--no-worker", "--json", "--timeout", "60", .. connection]);
        var waited = Stopwatch.StartNew();
        QueueStatistics statistics;
        while ((statistics = await broker.GetQueueStatisticsAsync(queue)).Ready < 200 || (inFlightSeen && statistics.InFlight <= 4))
        {
            Assert.False(bench.HasExited, $"the bench ended before the kill\n{bench.Output}\n{bench.Error}");
            Assert.True(waited.Elapsed < Generous, $"the run did not start within {Generous}\n{bench.Output}\n{bench.Error}");
            await Task.Delay(20);
        }

        first.Kill();
        var exitCode = await bench.WaitForExitAsync(Generous);

        Assert.True(exitCode == 0, $"bench exit {exitCode}\n{bench.Output}\n{bench.Error}");
        using var report = JsonDocument.Parse(bench.Output);
        Assert.Equal(20000, report.RootElement.GetProperty("tasks").GetInt32());
        Assert.Equal(0, report.RootElement.GetProperty("lost").GetInt32());
        second.Signal("TERM");
        Assert.Equal(0, await second.WaitForExitAsync(Generous));
        return (second.Output, bench.Output, statistics);
    }
}
