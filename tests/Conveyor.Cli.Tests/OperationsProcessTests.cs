using System.Diagnostics;
using System.Text.Json;
using Xunit.Abstractions;

namespace Conveyor.Cli.Tests;

/// <summary>
/// Operating a live queue with the <c>conveyor</c> command, as separate processes: revoke, pause and resume,
/// listings, workers, a global rate limit over three worker processes. Run on SQLite and on Redis.
/// </summary>
public abstract class OperationsProcessTests : IDisposable
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(120);

    /// <summary>Creates the suite in a folder of its own.</summary>
    /// <param name="output">Where the measured figures go.</param>
    protected OperationsProcessTests(ITestOutputHelper output)
    {
        Output = output;
        Directory = System.IO.Directory.CreateTempSubdirectory("conveyor-ops-").FullName;
    }

    /// <summary>Where the measured figures go.</summary>
    protected ITestOutputHelper Output { get; }

    /// <summary>The working folder (the SQLite file lives there).</summary>
    protected string Directory { get; }

    /// <summary>The broker and backend URL of one test.</summary>
    protected abstract string Url { get; }

    public void Dispose()
    {
        System.IO.Directory.Delete(Directory, recursive: true);
        GC.SuppressFinalize(this);
    }

    [Fact]
    public async Task Revoke_RunningSleep_EndsWithinTwoSecondsWorkerGoesOnStatusSaysRevoked()
    {
        var url = Url;
        using var worker = StartWorker(url, "revoker", concurrency: 1);
        await worker.WaitForOutputAsync("conveyor worker", Generous);
        var sleeping = (await RunOkAsync(url, "send", "sleep", "int64:30000")).Trim();
        await EventuallyAsync(async () => (await RunAsync(url, "status", sleeping, "--json")).Output.Contains("\"STARTED\"", StringComparison.Ordinal), "the sleep task started");

        await RunOkAsync(url, "revoke", sleeping);
        // One worker slot: this task can only run once the revoked one has ended; --timeout 2 is the bound.
        var clock = Stopwatch.StartNew();
        var next = await RunAsync(url, "send", "add", "int64:2", "int64:3", "--wait", "--timeout", "2", "--json");
        var elapsed = clock.Elapsed;
        var status = await RunAsync(url, "status", sleeping);
        Output.WriteLine($"the next task finished {elapsed.TotalSeconds:0.00} s after the revoke command returned (one process start included)");

        Assert.True(next.ExitCode == 0, $"the next task did not finish within 2 s of the revoke ({elapsed}): {next.Output} {next.Error}\n{worker.Output}");
        Assert.Contains("SUCCESS", next.Output, StringComparison.Ordinal);
        Assert.Contains("REVOKED", status.Output, StringComparison.Ordinal);
        Assert.Contains("revoked", worker.Output + worker.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Revoke_ScheduledTask_NeverRunsWhenItsEtaComes()
    {
        var url = Url;
        using var worker = StartWorker(url, "scheduled", concurrency: 2);
        await worker.WaitForOutputAsync("conveyor worker", Generous);
        var clock = Stopwatch.StartNew();
        var scheduled = (await RunOkAsync(url, "send", "add", "int64:1", "int64:1", "--countdown", "6")).Trim();

        await RunOkAsync(url, "revoke", scheduled);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"the revoke came {clock.Elapsed} after the send: too close to the ETA to prove anything");
        await Task.Delay(TimeSpan.FromSeconds(7) - clock.Elapsed);
        // A task sent after it, due at once, ran: the worker was there when the ETA came.
        var marker = await RunAsync(url, "send", "add", "int64:1", "int64:2", "--wait", "--timeout", "30");
        var status = await RunAsync(url, "status", scheduled, "--json");

        Assert.Equal(0, marker.ExitCode);
        using var json = JsonDocument.Parse(status.Output);
        Assert.Equal("FAILURE", json.RootElement.GetProperty("state").GetString());
        Assert.True(json.RootElement.GetProperty("revoked").GetBoolean());
        Assert.Equal(JsonValueKind.Null, json.RootElement.GetProperty("results").ValueKind);
    }

    [Fact]
    public async Task Pause_ThousandTasksTwoWorkers_NoneStartsWhilePausedThenAllFinishOnce()
    {
        var url = Url;
        using var first = StartWorker(url, "first", concurrency: 4);
        using var second = StartWorker(url, "second", concurrency: 4);
        await first.WaitForOutputAsync("conveyor worker", Generous);
        await second.WaitForOutputAsync("conveyor worker", Generous);

        // 1,000 tasks published over 10 s; the queue is paused while they come in.
        using var bench = CliProcess.Start(Directory, "bench", "--warmup", "0", "-n", "1000", "--rate", "100", "--no-worker", "--json", "--timeout", "110", "--broker", url, "--backend", url);
        await EventuallyAsync(async () => (await RunOkAsync(url, "queues", "--json")).Contains("machinery_tasks", StringComparison.Ordinal), "the benchmark publishes");
        await Task.Delay(TimeSpan.FromSeconds(1));
        await RunOkAsync(url, "pause");
        await Task.Delay(TimeSpan.FromSeconds(1));
        var before = await PendingIdsAsync(url);
        await Task.Delay(TimeSpan.FromSeconds(1.5));
        var after = await PendingIdsAsync(url);
        var queuedAfter = await RunOkAsync(url, "queues", "--json");
        var workers = await RunOkAsync(url, "workers", "--json");

        // Nothing taken while paused: every task pending a second after the pause is still pending 1.5 s later,
        // and more came in (publishing goes on).
        Output.WriteLine($"pending while paused: {before.Count} then {after.Count}");
        Assert.Empty(before.Except(after));
        Assert.True(after.Count > before.Count, $"{before.Count} then {after.Count} pending while paused");
        Assert.Equal(0, InFlight(queuedAfter));
        using (var list = JsonDocument.Parse(workers))
        {
            Assert.Equal(2, list.RootElement.GetArrayLength());
            Assert.All(list.RootElement.EnumerateArray(), w => Assert.True(w.GetProperty("paused").GetBoolean()));
        }

        await RunOkAsync(url, "resume");
        var exitCode = await bench.WaitForExitAsync(Generous);
        Assert.True(exitCode == 0, $"bench exit {exitCode}\n{bench.Output}\n{bench.Error}");
        using var report = JsonDocument.Parse(bench.Output);
        Assert.Equal(1000, report.RootElement.GetProperty("tasks").GetInt32());
        Assert.Equal(0, report.RootElement.GetProperty("lost").GetInt32());
        Assert.Equal(0, report.RootElement.GetProperty("duplicates").GetInt32());
    }

    [Fact]
    public async Task TasksAndWorkers_CountdownTasksAndTwoWorkers_ListedWithEtasAndNames()
    {
        var url = Url;
        var before = DateTimeOffset.UtcNow;
        var a = (await RunOkAsync(url, "send", "add", "int64:1", "int64:2", "--countdown", "60")).Trim();
        var b = (await RunOkAsync(url, "send", "multiply", "int64:3", "int64:4", "--countdown", "60")).Trim();
        using var first = StartWorker(url, "lister-one", concurrency: 2);
        using var second = StartWorker(url, "lister-two", concurrency: 3);
        await first.WaitForOutputAsync("conveyor worker", Generous);
        await second.WaitForOutputAsync("conveyor worker", Generous);

        var scheduled = await RunOkAsync(url, "tasks", "--state", "scheduled", "--json");
        var table = await RunOkAsync(url, "tasks", "--state", "scheduled");
        string workers = string.Empty;
        await EventuallyAsync(async () => (workers = await RunOkAsync(url, "workers", "--json")).Contains("lister-two", StringComparison.Ordinal), "both workers are listed");

        using (var json = JsonDocument.Parse(scheduled))
        {
            var tasks = json.RootElement.GetProperty("tasks").EnumerateArray().ToList();
            Assert.Equal([a, b], tasks.Select(t => t.GetProperty("task_id").GetString()));
            foreach (var task in tasks)
            {
                var eta = task.GetProperty("eta").GetDateTimeOffset();
                Assert.InRange(eta, before.AddSeconds(59), DateTimeOffset.UtcNow.AddSeconds(61));
                Assert.Equal("scheduled", task.GetProperty("state").GetString());
            }
        }

        Assert.Contains(a, table, StringComparison.Ordinal);
        Assert.Contains("multiply", table, StringComparison.Ordinal);
        using (var json = JsonDocument.Parse(workers))
        {
            var list = json.RootElement.EnumerateArray().ToList();
            Assert.Equal(["lister-one", "lister-two"], list.Select(w => w.GetProperty("name").GetString()));
            Assert.Equal(3, list[1].GetProperty("concurrency").GetInt32());
            Assert.Equal(second.Id, list[1].GetProperty("pid").GetInt32());
        }
    }

    [Fact]
    public async Task RateLimit_FiftyASecondGlobalOverThreeWorkers_AboutFiveHundredRunInTenSecondsNoneFails()
    {
        var url = Url;
        var limit = new Dictionary<string, string>
        {
            ["Conveyor__Worker__RateLimits__0__Task"] = "add",
            ["Conveyor__Worker__RateLimits__0__Limit"] = "50",
            ["Conveyor__Worker__RateLimits__0__Period"] = "00:00:01",
        };
        await RunOkAsync(url, "pause");
        var group = new List<string> { "send", "--group" };
        group.AddRange(Enumerable.Range(0, 1000).Select(i => $"add int64:{i} int64:1"));
        await RunOkAsync(url, [.. group]);
        using var one = StartWorker(url, "rate-one", concurrency: 8, limit);
        using var two = StartWorker(url, "rate-two", concurrency: 8, limit);
        using var three = StartWorker(url, "rate-three", concurrency: 8, limit);
        await one.WaitForOutputAsync("conveyor worker", Generous);
        await two.WaitForOutputAsync("conveyor worker", Generous);
        await three.WaitForOutputAsync("conveyor worker", Generous);
        await EventuallyAsync(async () => (await RunOkAsync(url, "workers", "--json")).Contains("rate-three", StringComparison.Ordinal), "the three workers are up");

        await RunOkAsync(url, "resume");
        await Task.Delay(TimeSpan.FromSeconds(1));

        // Counted twice, 10 s apart, while they run: each count's time is the middle of its command.
        var clock = Stopwatch.StartNew();
        var first = await SucceededAsync(url);
        var t1 = clock.Elapsed / 2;
        await Task.Delay(TimeSpan.FromSeconds(10) - clock.Elapsed);
        var beforeSecond = clock.Elapsed;
        var second = await SucceededAsync(url);
        var t2 = (beforeSecond + clock.Elapsed) / 2;
        var failed = await RunOkAsync(url, "tasks", "--state", "failed", "--json");

        var inTenSeconds = (second - first) * 10 / (t2 - t1).TotalSeconds;
        Output.WriteLine($"{second - first} tasks in {(t2 - t1).TotalSeconds:0.00} s: {inTenSeconds:0} per 10 s");
        Assert.True(second < 1000, "the tasks ran out before the second count");
        Assert.True(inTenSeconds is >= 450 and <= 550, $"{second - first} tasks ran in {t2 - t1}: {inTenSeconds:0} in 10 s at 50 a second (500 ± 50 expected)");
        using var json = JsonDocument.Parse(failed);
        Assert.Empty(json.RootElement.GetProperty("tasks").EnumerateArray());
    }

    private CliProcess StartWorker(string url, string name, int concurrency, IReadOnlyDictionary<string, string>? environment = null) =>
        CliProcess.Start(Directory, environment, "worker", "--broker", url, "--backend", url, "--name", name, "--concurrency", concurrency.ToString(System.Globalization.CultureInfo.InvariantCulture));

    private Task<(int ExitCode, string Output, string Error)> RunAsync(string url, params string[] args) =>
        CliProcess.RunAsync(Directory, Generous, [.. args, "--broker", url, "--backend", url]);

    private async Task<string> RunOkAsync(string url, params string[] args)
    {
        var (exitCode, output, error) = await RunAsync(url, args);
        Assert.True(exitCode == 0, $"conveyor {string.Join(' ', args.Take(3))}: exit {exitCode}\n{output}\n{error}");
        return output;
    }

    /// <summary>How many <c>add</c> tasks succeeded, through every page of <c>conveyor tasks --state succeeded</c>.</summary>
    private async Task<int> SucceededAsync(string url)
    {
        var count = 0;
        string? after = null;
        do
        {
            var output = await RunOkAsync(url, after is null
                ? ["tasks", "--state", "succeeded", "--name", "add", "--limit", "1000", "--json"]
                : ["tasks", "--state", "succeeded", "--name", "add", "--limit", "1000", "--json", "--after", after]);
            using var json = JsonDocument.Parse(output);
            count += json.RootElement.GetProperty("tasks").GetArrayLength();
            after = json.RootElement.GetProperty("next").GetString();
        }
        while (after is not null);

        return count;
    }

    /// <summary>The ids of the first 1,000 pending tasks.</summary>
    private async Task<List<string>> PendingIdsAsync(string url)
    {
        using var json = JsonDocument.Parse(await RunOkAsync(url, "tasks", "--state", "pending", "--limit", "1000", "--json"));
        return [.. json.RootElement.GetProperty("tasks").EnumerateArray().Select(t => t.GetProperty("task_id").GetString()!)];
    }

    private static int Pending(string queuesJson) => Count(queuesJson, "pending");

    private static int InFlight(string queuesJson) => Count(queuesJson, "in_flight");

    private static int Delayed(string queuesJson) => Count(queuesJson, "delayed");

    private static int Count(string queuesJson, string field)
    {
        using var json = JsonDocument.Parse(queuesJson);
        return json.RootElement.EnumerateArray().Where(q => q.GetProperty("queue").GetString() == "machinery_tasks").Sum(q => q.GetProperty(field).GetInt32());
    }

    private static async Task EventuallyAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow + Generous;
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for: {what}");
            await Task.Delay(200);
        }
    }
}

/// <summary>On the embedded SQLite default: one file per test, shared by every process.</summary>
public sealed class SqliteOperationsProcessTests(ITestOutputHelper output) : OperationsProcessTests(output)
{
    protected override string Url => "sqlite://conveyor.db";
}

/// <summary>On the Redis in <c>CONVEYOR_TEST_REDIS</c>, with a key prefix per test.</summary>
public sealed class RedisOperationsProcessTests(ITestOutputHelper output) : OperationsProcessTests(output)
{
    private readonly string _url = $"{TestServers.RedisUrl}?key_prefix=ops-{Guid.NewGuid():N}:&result_ttl=600";

    protected override string Url => _url;
}
