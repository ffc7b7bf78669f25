using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Conveyor.RawProbe;
using RabbitMQ.Client;
using StackExchange.Redis;

// The raw-engine probe: the workload of `conveyor bench` (N add tasks published, run by W worker processes, every
// result read back by the producer) through StackExchange.Redis and RabbitMQ.Client directly, with the minimal
// reliable sequence (see ProbeRun). It prints what `conveyor bench --json` prints for the same run, so the two
// compare line by line (bench/side-by-side.sh). Usage:
//   Conveyor.RawProbe [--redis HOST:PORT] [--amqp amqp://USER:PASS@HOST:PORT/] [-n 50000] [--workers 2]
//                     [--batch 64] [--loops 4] [--prefetch 256] [--publishers 8] [--publish-batch 8]
//                     [--all-states] [--notify] [--scripts] [--json]
var arguments = args.ToList();
var isWorker = arguments.Remove("worker");
var options = new ProbeOptions(
    Option("--redis", "127.0.0.1:6379"),
    OptionalOption("--amqp"),
    IntOption("-n", 50_000),
    IntOption("--workers", 2),
    IntOption("--batch", 64),
    IntOption("--loops", 4),
    IntOption("--prefetch", 256),
    IntOption("--publishers", 8),
    IntOption("--publish-batch", 8),
    arguments.Contains("--all-states"),
    arguments.Contains("--notify"),
    arguments.Contains("--scripts"),
    arguments.Contains("--json"));

var redisConfiguration = ConfigurationOptions.Parse(options.Redis);
redisConfiguration.AllowAdmin = true; // INFO, for the parent's figures
await using var redis = await ConnectionMultiplexer.ConnectAsync(redisConfiguration);
IConnection? amqp = options.Amqp is null ? null : await new ConnectionFactory { Uri = new Uri(options.Amqp) }.CreateConnectionAsync();
try
{
    return isWorker ? await WorkerAsync() : await ParentAsync();
}
finally
{
    if (amqp is not null)
    {
        await amqp.DisposeAsync();
    }
}

// A worker process: consumes until its standard input closes, then prints its count and CPU time.
async Task<int> WorkerAsync()
{
    var run = new ProbeRun(options, Option("--run", string.Empty), redis.GetDatabase());
    using var stop = new CancellationTokenSource();
    _ = Task.Run(async () =>
    {
        await Console.In.ReadToEndAsync();
        await stop.CancelAsync();
    });
    TimeSpan? cpuAtFirstTask = null;
    var work = run.WorkAsync(amqp, () => cpuAtFirstTask ??= Environment.CpuUsage.TotalTime, stop.Token);
    Console.WriteLine("ready");
    var executed = await work;
    var cpu = Environment.CpuUsage.TotalTime;
    Console.WriteLine(JsonSerializer.Serialize(new WorkerReport(executed, (cpu - (cpuAtFirstTask ?? cpu)).TotalSeconds, cpu.TotalSeconds)));
    return 0;
}

// The parent: starts the workers, publishes, reads every result back, and reports.
async Task<int> ParentAsync()
{
    var runId = Guid.NewGuid().ToString("N")[..12];
    var db = redis.GetDatabase();
    var run = new ProbeRun(options, runId, db);
    IChannel? admin = null;
    if (amqp is not null)
    {
        admin = await amqp.CreateChannelAsync();
        await admin.QueueDeclareAsync(run.AmqpQueue, durable: true, exclusive: false, autoDelete: false);
    }

    var workers = new List<Process>();
    var reports = new List<Task<string?>>();
    for (var i = 0; i < options.Workers; i++)
    {
        workers.Add(StartWorker(runId));
    }

    foreach (var worker in workers)
    {
        if (await worker.StandardOutput.ReadLineAsync() != "ready")
        {
            throw new InvalidOperationException($"worker {worker.Id} did not start: {await worker.StandardError.ReadToEndAsync()}");
        }

        reports.Add(worker.StandardOutput.ReadLineAsync());
    }

    // One task through the whole path first, as `conveyor bench` does.
    var publisher = new Publisher(run, db, amqp);
    await publisher.InitAsync();
    var warmUp = "task_" + Guid.NewGuid();
    await publisher.PublishAsync([(warmUp, Messages.Task(warmUp, 0, 0))]);
    while (!(await db.StringGetAsync(run.StateKey(warmUp)) is { HasValue: true } state && Messages.IsFinal((byte[])state!)))
    {
        await Task.Delay(1);
    }

    var server = redis.GetServers().First(s => s.IsConnected && !s.IsReplica);
    var before = await RedisStatsAsync(server);
    var cpuBefore = Environment.CpuUsage.TotalTime;
    var ids = Enumerable.Range(0, options.Tasks).Select(_ => "task_" + Guid.NewGuid()).ToArray();
    var watch = Stopwatch.StartNew();
    var next = -options.PublishBatch;
    var publishing = Task.WhenAll(Enumerable.Range(0, options.Publishers).Select(_ => Task.Run(async () =>
    {
        // Each publisher takes the next batch of indexes and publishes it as one batch (its confirms awaited together).
        for (var start = Interlocked.Add(ref next, options.PublishBatch); start < options.Tasks; start = Interlocked.Add(ref next, options.PublishBatch))
        {
            var end = Math.Min(start + options.PublishBatch, options.Tasks);
            await publisher.PublishAsync([.. Enumerable.Range(start, end - start).Select(i => (ids[i], Messages.Task(ids[i], i, 1)))]);
        }
    })));

    // Read the oldest pending states, in windows a little larger than what finished last pass (as `conveyor bench`).
    var pending = new List<int>(Enumerable.Range(0, options.Tasks));
    var lastFinished = 0;
    var finished = 0;
    while (pending.Count > 0 && watch.Elapsed < TimeSpan.FromMinutes(5))
    {
        var window = Math.Min(pending.Count, Math.Clamp(lastFinished * 2, 64, 4096));
        var states = await db.StringGetAsync([.. pending.Take(window).Select(i => run.StateKey(ids[i]))]);
        var done = new HashSet<int>();
        for (var j = 0; j < window; j++)
        {
            if (states[j] is { HasValue: true } value && Messages.IsFinal((byte[])value!))
            {
                done.Add(pending[j]);
            }
        }

        lastFinished = done.Count;
        finished += done.Count;
        pending.RemoveAll(done.Contains);
        if (done.Count < window / 2)
        {
            await Task.Delay(1);
        }
    }

    var seconds = watch.Elapsed.TotalSeconds;
    await publishing;
    var producerCpu = (Environment.CpuUsage.TotalTime - cpuBefore).TotalSeconds;
    var after = await RedisStatsAsync(server);

    foreach (var worker in workers)
    {
        worker.StandardInput.Close();
    }

    var workerReports = new List<WorkerReport>();
    foreach (var (worker, report) in workers.Zip(reports))
    {
        workerReports.Add(JsonSerializer.Deserialize<WorkerReport>(await report ?? "null") ?? throw new InvalidOperationException($"worker {worker.Id} reported nothing: {await worker.StandardError.ReadToEndAsync()}"));
        await worker.WaitForExitAsync();
        worker.Dispose();
    }

    await run.CleanUpAsync([warmUp, .. ids], admin);
    if (admin is not null)
    {
        await admin.DisposeAsync();
    }

    var result = new ProbeReport(
        options.Engine,
        options.Tasks,
        Math.Round(seconds, 3),
        Math.Round(finished / seconds, 1),
        options.Tasks - finished,
        workerReports.Sum(r => r.Executed) - 1, // less the warm-up
        Math.Round(producerCpu, 3),
        Math.Round(workerReports.Sum(r => r.RunCpuSeconds), 3),
        Math.Round(workerReports.Sum(r => r.ProcessCpuSeconds), 3),
        Math.Round((double)(after.Calls - before.Calls) / options.Tasks, 2),
        Math.Round((after.CpuSeconds - before.CpuSeconds) * 1e6 / options.Tasks, 2),
        options.AllStates ? "PENDING, RECEIVED, STARTED, SUCCESS" : "PENDING, SUCCESS",
        options.Notify,
        options.Scripts);
    Console.WriteLine(options.Json
        ? JsonSerializer.Serialize(result, new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower })
        : string.Create(CultureInfo.InvariantCulture, $"""
            raw {result.Engine} probe: {result.Tasks:N0} tasks, {options.Workers} worker process(es), states {result.States}{(options.Notify ? " with PUBLISH" : "")}{(options.Scripts ? ", one script call per batch" : ", one command each")}
            {result.Seconds:F2} s, {result.TasksPerSecond:N0} tasks/s, lost {result.Lost}, executions {result.Executions:N0}
            CPU: producer {result.ProducerCpuSeconds:F2} s ({result.ProducerCpuSeconds * 1e6 / result.Tasks:F1} µs per task), workers {result.WorkersCpuSeconds:F2} s ({result.WorkersCpuSeconds * 1e6 / result.Tasks:F1} µs per task) during the run, {result.WorkersProcessCpuSeconds:F2} s in all
            Redis: {result.RedisCallsPerTask:F1} calls and {result.RedisCpuUsPerTask:F1} µs CPU per task
            """));
    return result.Lost == 0 ? 0 : 1;
}

Process StartWorker(string runId)
{
    var start = new ProcessStartInfo(Environment.ProcessPath!)
    {
        RedirectStandardInput = true,
        RedirectStandardOutput = true,
        RedirectStandardError = true,
        UseShellExecute = false,
    };
    if (Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet")
    {
        start.ArgumentList.Add(typeof(ProbeRun).Assembly.Location);
    }

    foreach (var arg in args.Append("worker").Append("--run").Append(runId))
    {
        start.ArgumentList.Add(arg);
    }

    return Process.Start(start) ?? throw new InvalidOperationException("could not start a worker");
}

static async Task<(long Calls, double CpuSeconds)> RedisStatsAsync(IServer server)
{
    long calls = 0;
    foreach (var group in await server.InfoAsync("commandstats"))
    {
        foreach (var (_, value) in group)
        {
            var field = value.Split(',').First(f => f.StartsWith("calls=", StringComparison.Ordinal));
            calls += long.Parse(field["calls=".Length..], CultureInfo.InvariantCulture);
        }
    }

    var cpu = 0.0;
    foreach (var group in await server.InfoAsync("cpu"))
    {
        foreach (var (key, value) in group)
        {
            if (key is "used_cpu_sys" or "used_cpu_user")
            {
                cpu += double.Parse(value, CultureInfo.InvariantCulture);
            }
        }
    }

    return (calls, cpu);
}

string Option(string name, string fallback) => OptionalOption(name) ?? fallback;

string? OptionalOption(string name) => arguments.IndexOf(name) is var i and >= 0 && i + 1 < arguments.Count ? arguments[i + 1] : null;

int IntOption(string name, int fallback) => OptionalOption(name) is { } value ? int.Parse(value, CultureInfo.InvariantCulture) : fallback;

internal sealed record WorkerReport(long Executed, double RunCpuSeconds, double ProcessCpuSeconds);

internal sealed record ProbeReport(
    string Engine, int Tasks, double Seconds, double TasksPerSecond, int Lost, long Executions,
    double ProducerCpuSeconds, double WorkersCpuSeconds, double WorkersProcessCpuSeconds,
    double RedisCallsPerTask, double RedisCpuUsPerTask, string States, bool Notify, bool Scripts);
