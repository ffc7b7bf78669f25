using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Conveyor.Cli.Bench;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Spectre.Console;
using Spectre.Console.Cli;

namespace Conveyor.Cli.Commands;

internal sealed class BenchSettings : ConnectionSettings
{
    [CommandOption("-n|--tasks <N>")]
    [Description("How many add tasks to publish")]
    [DefaultValue(10_000)]
    public int Tasks { get; init; } = 10_000;

    [CommandOption("--rate <R>")]
    [Description("Publish R tasks a second instead of all at once. Default: all at once")]
    public double? Rate { get; init; }

    [CommandOption("-c|--concurrency <C>")]
    [Description("Concurrency of each worker started with --workers, and publishes in flight")]
    [DefaultValue(16)]
    public int Concurrency { get; init; } = 16;

    [CommandOption("-w|--workers <W>")]
    [Description("Start W worker processes for the run. Default: 1")]
    public int? Workers { get; init; }

    [CommandOption("--no-worker")]
    [Description("Start no worker: use workers started elsewhere on the same broker and queue. Default: off")]
    public bool NoWorker { get; init; }

    [CommandOption("--warmup <N>")]
    [Description("Run N add tasks first, at full speed and not counted, so that the measured run sees the code the JIT has optimized (a new .NET process runs its first seconds slower while the JIT compiles, and on 2 cores that took about 100,000 tasks); with --rate, then two seconds at that rate; the warm-up's own figure is printed too")]
    [DefaultValue(100_000)]
    public int WarmUp { get; init; } = 100_000;

    [CommandOption("--latencies <FILE>")]
    [Description("Write each measured task's publish time (ms from the run's start) and latency (ms) to FILE as CSV. Default: none")]
    public string? LatenciesFile { get; init; }

    [CommandOption("--timeout <SECONDS>")]
    [Description("Stop waiting for results after this long; tasks not finished count as lost")]
    [DefaultValue(300.0)]
    public double Timeout { get; init; } = 300;

    [CommandOption("--json")]
    [Description("Print one JSON object. Default: off (a table)")]
    public bool Json { get; init; }

    public int WorkerCount => NoWorker ? 0 : Workers ?? 1;

    public override ValidationResult Validate() =>
        Tasks < 1 ? ValidationResult.Error("-n must be at least 1")
        : WarmUp < 0 ? ValidationResult.Error("--warmup must be 0 or more")
        : NoWorker && Workers is not null ? ValidationResult.Error("use --workers or --no-worker, not both")
        : Workers is < 1 ? ValidationResult.Error("--workers must be at least 1")
        : Rate is <= 0 ? ValidationResult.Error("--rate must be positive")
        : Concurrency < 1 ? ValidationResult.Error("--concurrency must be at least 1")
        : ValidationResult.Success();
}

/// <summary>
/// <c>conveyor bench</c>: the end-to-end benchmark. Publishes N add tasks, watches their states until the
/// producer has seen every result, and reports throughput, latency (from just before publish to SUCCESS seen by
/// the producer), lost tasks and duplicates (tasks that ran more than once: each worker counts what it ran in memory
/// and reports it a few times per run, see <see cref="BenchReports"/>), the CPU time of the producer and of the
/// workers, and, on Redis, the server's calls and CPU per task. The benchmark adds no backend work per task of its
/// own beyond reading the states it waits for.
/// </summary>
internal sealed class BenchCommand : AsyncCommand<BenchSettings>
{
    private const int PublishersAtOnce = 128;

    // Up to this many tasks in flight, the producer waits on the oldest one's change notification (latency runs).
    private const int WatchedPendingMax = 16;
    private const int MinStateWindow = 64;
    private static readonly TimeSpan BacklogPollInterval = TimeSpan.FromMilliseconds(4);
    private const int MaxStateWindow = 4096;
    private static readonly JsonSerializerOptions ReportJson = new(CliJson.Options) { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public override async Task<int> ExecuteAsync(CommandContext context, BenchSettings settings, CancellationToken cancellationToken)
    {
        var builder = CliHost.CreateBuilder(settings, LogLevel.Warning);
        builder.AddBuiltInTasks();
        await using var session = await CliHost.StartAsync(builder, cancellationToken).ConfigureAwait(false);
        var client = session.Client;

        // A broker other processes cannot share (memory://) needs its workers in this process.
        var inProcess = !session.Broker.Capabilities.HasFlag(BrokerCapabilities.Distributed);
        var workers = new List<Process>();
        var localWorkers = new List<ConveyorWorker>();
        try
        {
            for (var i = 0; i < settings.WorkerCount; i++)
            {
                if (!inProcess)
                {
                    workers.Add(StartWorker(settings, session, i));
                    continue;
                }

                var options = new WorkerOptions { Queue = session.Queue, Concurrency = settings.Concurrency, Name = $"bench-worker-{i + 1}" };
                localWorkers.Add(new ConveyorWorker(client, session.Services.GetRequiredService<TaskRegistry>(), options, session.Services.GetService<ILoggerFactory>(), session.Services));
                await localWorkers[^1].StartAsync(cancellationToken).ConfigureAwait(false);
            }

            if (settings.WorkerCount > 0 || settings.NoWorker)
            {
                await WaitForWorkersAsync(client, settings, session, cancellationToken).ConfigureAwait(false);
            }

            Report? warmUp = null;
            int? pacedWarmUp = null;
            if (settings.WarmUp > 0 && (settings.WorkerCount > 0 || settings.NoWorker))
            {
                warmUp = (await RunAsync(client, session, settings, settings.WarmUp, rate: null, counted: false, cancellationToken).ConfigureAwait(false)).Report;
                if (settings.Rate is { } rate)
                {
                    // The paced path (the pacer, idle fetches and wake-ups, single-task batches) is other code than
                    // a backlog's: two seconds of it at the run's rate, so that its first seconds are not measured.
                    var paced = (int)Math.Clamp(rate * 2, 1, settings.WarmUp);
                    var pacedReport = (await RunAsync(client, session, settings, paced, rate, counted: false, cancellationToken).ConfigureAwait(false)).Report;
                    warmUp = warmUp with { Lost = warmUp.Lost + pacedReport.Lost };
                    pacedWarmUp = paced;
                }
            }

            await using var redis = await RedisServerStats.OpenAsync([session.Options.Broker, session.Options.ResultBackend], cancellationToken).ConfigureAwait(false);
            var redisBefore = redis is null ? null : await redis.SnapshotAsync(cancellationToken).ConfigureAwait(false);
            var cpuBefore = Environment.CpuUsage.TotalTime;
            var run = await RunAsync(client, session, settings, settings.Tasks, settings.Rate, counted: true, cancellationToken).ConfigureAwait(false);
            var producerCpu = Environment.CpuUsage.TotalTime - cpuBefore;
            var redisStats = redis is null ? null : RedisServerStats.PerTask(redisBefore!, await redis.SnapshotAsync(cancellationToken).ConfigureAwait(false), settings.Tasks);

            // The workers' counts: in this process, read directly; elsewhere, from their reports, which the workers
            // started here write a last time as they stop.
            BenchExecutionSummary executions;
            if (inProcess)
            {
                var tally = session.Services.GetRequiredService<BenchTally>();
                executions = BenchExecutionSummary.Combine(tally.Report(run.RunId, "in-process") is { } report ? [report] : []);
                tally.Remove(run.RunId);
            }
            else
            {
                await StopWorkersAsync(workers).ConfigureAwait(false);
                workers.Clear();
                executions = await CollectReportsAsync(session.Backend, run, cancellationToken).ConfigureAwait(false);
            }

            var result = run.Report with
            {
                Executions = executions.Workers > 0 ? executions.Executions : null,
                Duplicates = executions.Workers > 0 ? executions.Duplicates : null,
                Uncounted = executions.Workers > 0 ? Math.Max(0, run.Report.Tasks - run.Report.Lost - executions.DistinctTasks) : null,
                WorkersReported = executions.Workers,
                ProducerCpuSeconds = Math.Round(producerCpu.TotalSeconds, 3),
                WorkersCpuSeconds = !inProcess && executions.Workers > 0 ? Math.Round(executions.RunCpuSeconds, 3) : null,
                WorkersProcessCpuSeconds = !inProcess && executions.Workers > 0 ? Math.Round(executions.ProcessCpuSeconds, 3) : null,
                WorkersInProcess = inProcess,
                Redis = redisStats,
                WarmUpTasks = warmUp?.Tasks,
                WarmUpTasksPerSecond = warmUp?.TasksPerSecond,
                WarmUpLost = warmUp?.Lost,
                WarmUpPacedTasks = pacedWarmUp,
            };
            Print(result, settings.Json);
            return result.Lost == 0 && result.WarmUpLost is null or 0 ? ExitCodes.Success : ExitCodes.TaskFailed;
        }
        finally
        {
            await StopWorkersAsync(workers).ConfigureAwait(false);
            foreach (var worker in localWorkers)
            {
                await worker.StopAsync(CancellationToken.None).ConfigureAwait(false);
                worker.Dispose();
            }
        }
    }

    /// <summary>
    /// Reads the workers' reports until they account for every task seen finished (a worker elsewhere reports once
    /// a second) or a few report intervals pass (a worker killed mid-run never reports its last second).
    /// </summary>
    private static async Task<BenchExecutionSummary> CollectReportsAsync(IResultBackend backend, BenchRun run, CancellationToken cancellationToken)
    {
        var finished = run.Report.Tasks - run.Report.Lost;
        var patience = Stopwatch.StartNew();
        try
        {
            BenchExecutionSummary summary;
            while (true)
            {
                summary = BenchExecutionSummary.Combine(await BenchReports.ReadAsync(backend, run.RunId, cancellationToken).ConfigureAwait(false));
                if (summary.DistinctTasks >= finished || patience.Elapsed > BenchReporter.Interval * 3)
                {
                    break;
                }

                await Task.Delay(TimeSpan.FromMilliseconds(200), cancellationToken).ConfigureAwait(false);
            }

            await BenchReports.DeleteAsync(backend, run.RunId, cancellationToken).ConfigureAwait(false);
            return summary;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // The run's figures stand without the counts: say why they are missing.
            await Console.Error.WriteLineAsync($"conveyor bench: reading the workers' counts failed ({ex.GetType().Name}: {ex.Message}); duplicates not counted").ConfigureAwait(false);
            return BenchExecutionSummary.Combine([]);
        }
    }

    private static Process StartWorker(BenchSettings settings, CliSession session, int index)
    {
        var (fileName, prefix) = SelfCommand();
        var start = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        // The effective settings (whatever their source), passwords included: arguments, not output.
        var options = session.Options;
        var backend = string.IsNullOrWhiteSpace(options.ResultBackend) ? options.Broker : options.ResultBackend;
        foreach (var arg in prefix.Concat(["worker", "--broker", options.Broker, "--backend", backend, "--queue", session.Queue,
                     "--concurrency", settings.Concurrency.ToString(CultureInfo.InvariantCulture), "--name", $"bench-worker-{index + 1}-{Environment.ProcessId}", "--quiet"]))
        {
            start.ArgumentList.Add(arg);
        }

        var process = Process.Start(start) ?? throw new CliException("could not start a worker process");
        process.OutputDataReceived += (_, e) => { };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is { Length: > 0 } line)
            {
                Console.Error.WriteLine($"[worker {index + 1}] {line}");
            }
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    /// <summary>The command that runs this tool again: its apphost, or <c>dotnet conveyor.dll</c>.</summary>
    private static (string FileName, string[] Prefix) SelfCommand()
    {
        var processPath = Environment.ProcessPath ?? throw new CliException("cannot tell how this command was started");
        var assembly = typeof(BenchCommand).Assembly.Location;
        return Path.GetFileNameWithoutExtension(processPath).Equals("dotnet", StringComparison.OrdinalIgnoreCase)
            ? (processPath, [assembly])
            : (processPath, []);
    }

    private static async Task StopWorkersAsync(List<Process> workers)
    {
        foreach (var worker in workers.Where(w => !w.HasExited))
        {
            // SIGTERM: the worker shuts down gracefully.
            _ = Process.Start("kill", ["-TERM", worker.Id.ToString(CultureInfo.InvariantCulture)])?.WaitForExit(5000);
        }

        foreach (var worker in workers)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
            try
            {
                await worker.WaitForExitAsync(timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                worker.Kill(entireProcessTree: true);
            }

            worker.Dispose();
        }
    }

    private static async Task WaitForWorkersAsync(ConveyorClient client, BenchSettings settings, CliSession session, CancellationToken cancellationToken)
    {
        var warmUp = await client.SendAsync(new Signature("echo", TaskArgument.String("warm-up")), cancellationToken).ConfigureAwait(false);
        try
        {
            await warmUp.GetAsync(TimeSpan.FromSeconds(60), cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            throw new CliException(settings.NoWorker
                ? $"no worker answered on queue {session.Queue} within 60 s; start one with: conveyor worker --broker {session.BrokerUrl} --backend {session.BackendUrl} --queue {session.Queue}"
                : "the benchmark's workers did not start within 60 s");
        }
    }

    /// <summary>The run's figures; the JSON output's fields, snake_case.</summary>
    private sealed record Report(
        int Tasks, double Seconds, double TasksPerSecond, double PublishPerSecond, double P50Ms, double P99Ms,
        int Lost, string Broker, string Backend)
    {
        /// <summary>Executions the workers reported (repeats included); null when no worker reported.</summary>
        public long? Executions { get; init; }

        /// <summary>Executions beyond a task's first, by any worker; null when no worker reported.</summary>
        public long? Duplicates { get; init; }

        /// <summary>Finished tasks no worker's report accounts for (a worker died before its last report).</summary>
        public long? Uncounted { get; init; }

        public int WorkersReported { get; init; }

        public bool WorkersInProcess { get; init; }

        /// <summary>This process's CPU time during the run (its workers' too when they run in it).</summary>
        public double ProducerCpuSeconds { get; init; }

        /// <summary>The worker processes' CPU time from their first task of the run to their last report.</summary>
        public double? WorkersCpuSeconds { get; init; }

        /// <summary>The worker processes' CPU time since they started (start-up and warm-up included).</summary>
        public double? WorkersProcessCpuSeconds { get; init; }

        /// <summary>Tasks run before the measured run, not counted in it; null without a warm-up.</summary>
        public int? WarmUpTasks { get; init; }

        /// <summary>The warm-up's own throughput (start-up JIT included).</summary>
        public double? WarmUpTasksPerSecond { get; init; }

        /// <summary>With --rate: warm-up tasks sent at the run's rate after the others; null otherwise.</summary>
        public int? WarmUpPacedTasks { get; init; }

        /// <summary>Warm-up tasks that did not finish in time (a lost task is a failure, counted or not).</summary>
        public int? WarmUpLost { get; init; }

        /// <summary>What each Redis server of the run did, per task; null when neither broker nor backend is Redis.</summary>
        public IReadOnlyList<RedisRunStats>? Redis { get; init; }
    }

    private sealed record BenchRun(string RunId, Report Report);

    private static async Task WaitForAnyChangeAsync(IResultBackend backend, List<int> pending, string[] ids, CancellationToken cancellationToken)
    {
        var maxWait = TimeSpan.FromMilliseconds(2);
        if (pending.Count == 1)
        {
            await backend.WaitForChangeAsync(ids[pending[0]], maxWait, cancellationToken).ConfigureAwait(false);
            return;
        }

        var waits = new Task[pending.Count];
        for (var j = 0; j < waits.Length; j++)
        {
            waits[j] = backend.WaitForChangeAsync(ids[pending[j]], maxWait, cancellationToken).AsTask();
        }

        var first = await Task.WhenAny(waits).ConfigureAwait(false);
        foreach (var wait in waits)
        {
            // The others end within maxWait; their faults are the first one's and are not worth a second report.
            _ = wait.ContinueWith(static t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        }

        await first.ConfigureAwait(false);
    }

    /// <summary>Publishes <paramref name="count"/> add tasks and waits for them; uncounted ones carry no run id, so no worker tallies them.</summary>
    private static async Task<BenchRun> RunAsync(ConveyorClient client, CliSession session, BenchSettings settings, int count, double? rate, bool counted, CancellationToken cancellationToken)
    {
        var runId = Guid.NewGuid().ToString("N");
        var ids = new string[count];
        var published = new long[count];
        var completed = new long[count];
        var publishedCount = 0;
        var publishedQueue = new System.Collections.Concurrent.ConcurrentQueue<int>();
        using var publishedSignal = new SemaphoreSlim(0);

        var startTimestamp = Stopwatch.GetTimestamp();
        var stopwatch = Stopwatch.StartNew();
        async ValueTask PublishOneAsync(int i, CancellationToken ct)
        {
            var signature = new Signature("add", TaskArgument.Int64(i), TaskArgument.Int64(1));
            if (counted)
            {
                signature.Headers[BuiltInTasks.BenchHeader] = runId;
            }

            ids[i] = signature.Id;
            published[i] = Stopwatch.GetTimestamp();

            // A broker or backend restart mid-run: retry the publish (at least once; a retried publish may
            // duplicate the message, which the workers' duplicate count then shows).
            for (var attempt = 1; ; attempt++)
            {
                try
                {
                    await client.SendAsync(signature, ct).ConfigureAwait(false);
                    break;
                }
                catch (Exception ex) when (ex is not OperationCanceledException && attempt < 100)
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(1000, 50 * attempt)), ct).ConfigureAwait(false);
                }
            }

            Interlocked.Increment(ref publishedCount);
            publishedQueue.Enqueue(i);
            publishedSignal.Release();
        }

        var publisher = rate is { } perSecond
            ? PaceAsync(count, perSecond, stopwatch, PublishOneAsync, cancellationToken)
            : Task.Run(() => Parallel.ForAsync(0, count, new ParallelOptions { MaxDegreeOfParallelism = PublishersAtOnce, CancellationToken = cancellationToken }, PublishOneAsync), cancellationToken);

        var publishSeconds = 0.0;
        var done = 0;
        var deadline = TimeSpan.FromSeconds(settings.Timeout);
        var pending = new List<int>(count);
        var progress = counted && !settings.Json && !Console.IsOutputRedirected;
        var lastPrinted = TimeSpan.Zero;
        var lastError = TimeSpan.FromSeconds(-10);
        var lastFinished = 0;
        while (done < count && stopwatch.Elapsed < deadline)
        {
            // Watch every task once its publish has completed.
            while (publishedQueue.TryDequeue(out var index))
            {
                pending.Add(index);
            }

            if (publisher.IsCompleted && publishSeconds == 0)
            {
                await publisher.ConfigureAwait(false);
                publishSeconds = stopwatch.Elapsed.TotalSeconds;
            }

            // Read the oldest pending states only: tasks finish roughly in publish order, so a window half again
            // as large as what finished last pass catches nearly everything with few reads per task (each read
            // of a task still running is backend work the product would not do).
            var finishedThisPass = 0;
            var window = Math.Min(pending.Count, Math.Clamp(lastFinished + (lastFinished / 2), MinStateWindow, MaxStateWindow));
            if (window > 0)
            {
                try
                {
                    var windowIds = new string[window];
                    for (var j = 0; j < window; j++)
                    {
                        windowIds[j] = ids[pending[j]];
                    }

                    var states = await session.Backend.GetStatesAsync(windowIds, cancellationToken).ConfigureAwait(false);
                    var now = Stopwatch.GetTimestamp();
                    for (var j = 0; j < window; j++)
                    {
                        if (states[j] is { IsCompleted: true })
                        {
                            completed[pending[j]] = now;
                            finishedThisPass++;
                        }
                    }
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    // The backend is restarting or unreachable: keep waiting (the timeout still applies).
                    if (stopwatch.Elapsed - lastError > TimeSpan.FromSeconds(1))
                    {
                        lastError = stopwatch.Elapsed;
                        await Console.Error.WriteLineAsync($"conveyor bench: reading results failed ({ex.GetType().Name}: {ex.Message}); retrying").ConfigureAwait(false);
                    }

                    await Task.Delay(100, cancellationToken).ConfigureAwait(false);
                    continue;
                }
            }

            lastFinished = finishedThisPass;
            if (finishedThisPass > 0)
            {
                done += finishedThisPass;

                // Only the window was read: compact it, not the whole backlog (its tail is untouched).
                var kept = 0;
                for (var j = 0; j < window; j++)
                {
                    if (completed[pending[j]] == 0)
                    {
                        pending[kept++] = pending[j];
                    }
                }

                pending.RemoveRange(kept, window - kept);
            }

            if (finishedThisPass < window && pending.Count > WatchedPendingMax)
            {
                // A backlog: poll again shortly; with every task sent at once, in a few milliseconds (at most that
                // late in a run of seconds), long enough for a few hundred tasks to finish, so that each is read
                // about 1.5 times rather than 4 (a paced run's latencies keep the 1 ms poll). Waiting on each
                // oldest task in turn would leave a subscription per task behind (each lingers a few seconds), and
                // every state write would then check them.
                await Task.Delay(rate is null ? BacklogPollInterval : TimeSpan.FromMilliseconds(1), cancellationToken).ConfigureAwait(false);
            }
            else if (finishedThisPass < window / 2 && pending.Count > 0)
            {
                // Little finished: sleep until any of the few tasks in flight changes state (pushed where the backend
                // can) or 2 ms pass. Waiting on the oldest alone measured the producer's polling, not the task: a
                // younger task that finished first waited for the oldest's wake-up or the timeout.
                try
                {
                    await WaitForAnyChangeAsync(session.Backend, pending, ids, cancellationToken).ConfigureAwait(false);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    await Task.Delay(100, cancellationToken).ConfigureAwait(false);
                }
            }
            else if (pending.Count == 0)
            {
                // Nothing in flight: wake at the next publish (a timer's 1 ms is several on a busy machine, and it
                // showed in every latency).
                await publishedSignal.WaitAsync(TimeSpan.FromMilliseconds(5), cancellationToken).ConfigureAwait(false);
            }

            if (progress && stopwatch.Elapsed - lastPrinted > TimeSpan.FromSeconds(1))
            {
                lastPrinted = stopwatch.Elapsed;
                AnsiConsole.MarkupLineInterpolated(CultureInfo.InvariantCulture, $"[grey]{stopwatch.Elapsed.TotalSeconds:F0}s: published {Volatile.Read(ref publishedCount):N0}, finished {done:N0} of {count:N0}[/]");
            }
        }

        var seconds = stopwatch.Elapsed.TotalSeconds;
        if (publishSeconds == 0)
        {
            publishSeconds = seconds;
        }

        var latencies = Enumerable.Range(0, count)
            .Where(i => completed[i] != 0)
            .Select(i => Stopwatch.GetElapsedTime(published[i], completed[i]).TotalMilliseconds)
            .Order()
            .ToArray();
        if (settings.LatenciesFile is { Length: > 0 } file && counted)
        {
            // Where the slow ones are in the run (its start, a burst, evenly spread) says more than p99 alone.
            await File.WriteAllLinesAsync(
                file,
                Enumerable.Range(0, count).Where(i => completed[i] != 0).Select(i => string.Create(
                    CultureInfo.InvariantCulture,
                    $"{i},{Stopwatch.GetElapsedTime(startTimestamp, published[i]).TotalMilliseconds:F2},{Stopwatch.GetElapsedTime(published[i], completed[i]).TotalMilliseconds:F2}")).Prepend("task,published_ms,latency_ms"),
                cancellationToken).ConfigureAwait(false);
        }

        var lastCompletion = completed.Where(c => c != 0).DefaultIfEmpty(0).Max();
        var elapsed = lastCompletion == 0 ? seconds : Stopwatch.GetElapsedTime(startTimestamp, lastCompletion).TotalSeconds;
        return new BenchRun(runId, new Report(
            count,
            Math.Round(elapsed, 3),
            Math.Round(latencies.Length / elapsed, 1),
            Math.Round(count / publishSeconds, 1),
            Math.Round(Percentile(latencies, 0.50), 2),
            Math.Round(Percentile(latencies, 0.99), 2),
            count - latencies.Length,
            session.BrokerUrl,
            session.BackendUrl));
    }

    /// <summary>
    /// Starts task i at i / rate from one thread that sleeps in whole milliseconds, so that tasks go out evenly: a
    /// task is at most about a millisecond late and none waits for others due after it. (Several lanes each awaiting
    /// a timer woke together and sent their tasks in bursts of four, whose last ones then queued behind the first.)
    /// </summary>
    private static Task PaceAsync(int count, double rate, Stopwatch clock, Func<int, CancellationToken, ValueTask> publishOne, CancellationToken cancellationToken)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var inFlight = new SemaphoreSlim(PublishersAtOnce);
        var publishes = new Task[count];
        var pacer = new Thread(() =>
        {
            try
            {
                for (var i = 0; i < count; i++)
                {
                    var due = TimeSpan.FromSeconds(i / rate);
                    while (clock.Elapsed < due)
                    {
                        cancellationToken.ThrowIfCancellationRequested();
                        Thread.Sleep(1);
                    }

                    inFlight.Wait(cancellationToken);
                    publishes[i] = RunAsync(i);
                }

                Task.WhenAll(publishes).ContinueWith(
                    all =>
                    {
                        if (all.Exception is { } error)
                        {
                            done.TrySetException(error.InnerExceptions);
                        }
                        else if (all.IsCanceled)
                        {
                            done.TrySetCanceled(cancellationToken);
                        }
                        else
                        {
                            done.TrySetResult();
                        }
                    },
                    CancellationToken.None,
                    TaskContinuationOptions.ExecuteSynchronously,
                    TaskScheduler.Default);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                done.TrySetCanceled(cancellationToken);
            }
            catch (Exception ex)
            {
                done.TrySetException(ex);
            }
        })
        {
            IsBackground = true,
            Name = "conveyor bench pacer",
        };
        pacer.Start();
        return done.Task;

        async Task RunAsync(int i)
        {
            try
            {
                await publishOne(i, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                inFlight.Release();
            }
        }
    }

    private static double Percentile(double[] sorted, double p) =>
        sorted.Length == 0 ? double.NaN : sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)];

    private static void Print(Report report, bool json)
    {
        if (json)
        {
            Console.WriteLine(JsonSerializer.Serialize(report, ReportJson));
            return;
        }

        var table = new Table().AddColumns("tasks", "seconds", "tasks/s", "publish/s", "p50 ms", "p99 ms", "lost", "duplicates");
        table.AddRow(
            report.Tasks.ToString("N0", CultureInfo.InvariantCulture),
            report.Seconds.ToString("F2", CultureInfo.InvariantCulture),
            report.TasksPerSecond.ToString("N0", CultureInfo.InvariantCulture),
            report.PublishPerSecond.ToString("N0", CultureInfo.InvariantCulture),
            report.P50Ms.ToString("F2", CultureInfo.InvariantCulture),
            report.P99Ms.ToString("F2", CultureInfo.InvariantCulture),
            report.Lost.ToString(CultureInfo.InvariantCulture),
            report.Duplicates?.ToString(CultureInfo.InvariantCulture) ?? "?");
        AnsiConsole.MarkupLineInterpolated(CultureInfo.InvariantCulture, $"broker {report.Broker}, backend {report.Backend}");
        if (report.WarmUpTasks is { } warmUpTasks)
        {
            var paced = report.WarmUpPacedTasks is { } pacedTasks ? string.Create(CultureInfo.InvariantCulture, $", then {pacedTasks:N0} at the run's rate") : string.Empty;
            AnsiConsole.MarkupLineInterpolated(CultureInfo.InvariantCulture, $"warm-up: {warmUpTasks:N0} tasks at {report.WarmUpTasksPerSecond:N0} tasks/s (start-up JIT included){paced}, {report.WarmUpLost} lost, not counted below");
        }

        AnsiConsole.Write(table);
        foreach (var line in CpuAndRedisLines(report))
        {
            Console.WriteLine(line);
        }
    }

    /// <summary>The table's footnotes: who counted, CPU of each side, and what Redis did per task.</summary>
    private static IEnumerable<string> CpuAndRedisLines(Report report)
    {
        var perTask = 1e6 / report.Tasks;
        if (report.WorkersReported == 0)
        {
            yield return "duplicates: not counted (no worker reported its count of this run)";
        }
        else if (report.Uncounted > 0)
        {
            yield return string.Create(CultureInfo.InvariantCulture, $"duplicates: at least {report.Duplicates}; {report.Uncounted} finished task(s) were not in any worker's report (a worker died before reporting)");
        }

        yield return report.WorkersInProcess
            ? string.Create(CultureInfo.InvariantCulture, $"CPU: {report.ProducerCpuSeconds:F2} s producer and workers (one process), {report.ProducerCpuSeconds * perTask:F1} µs per task")
            : string.Create(CultureInfo.InvariantCulture, $"CPU: producer {report.ProducerCpuSeconds:F2} s ({report.ProducerCpuSeconds * perTask:F1} µs per task), workers {Seconds(report.WorkersCpuSeconds)} s ({PerTask(report.WorkersCpuSeconds, perTask)} µs per task) during the run, {Seconds(report.WorkersProcessCpuSeconds)} s in all ({report.WorkersReported} worker(s) reported)");
        foreach (var redis in report.Redis ?? [])
        {
            var top = string.Join(", ", redis.Calls.Take(8).Select(c => string.Create(CultureInfo.InvariantCulture, $"{c.Key} {c.Value:F2}")));
            yield return string.Create(CultureInfo.InvariantCulture, $"Redis {redis.Server}: {redis.CallsPerTask:F1} calls and {redis.CpuUsPerTask:F1} µs CPU per task ({top})");
        }

        static string Seconds(double? seconds) => seconds?.ToString("F2", CultureInfo.InvariantCulture) ?? "?";

        static string PerTask(double? seconds, double perTask) => seconds is { } s ? (s * perTask).ToString("F1", CultureInfo.InvariantCulture) : "?";
    }
}
