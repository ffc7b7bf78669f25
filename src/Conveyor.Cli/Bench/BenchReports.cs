using System.Numerics;
using System.Text.Json;

namespace Conveyor.Cli.Bench;

/// <summary>
/// Where worker processes leave their <see cref="BenchWorkerReport"/>s for the benchmark, through the result backend
/// they already share (any provider): a worker takes a slot once per run from the backend's idempotent group
/// counter (<c>conveyor_bench_workers_{run}</c>: the count after its first completion is its slot), then stores its
/// report as the result of the record <c>conveyor_bench_report_{run}_{slot}</c>, rewritten now and then. The
/// benchmark reads the slot count the same way (a member of its own) and every slot's record in one read. That is
/// two backend writes per worker and run plus one a second while it runs, instead of a counter call per task.
/// </summary>
internal static class BenchReports
{
    private const string ReportTaskName = "conveyor_bench_report";
    private static readonly JsonSerializerOptions Json = new(CliJson.Options) { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public static string WorkersGroup(string runId) => "conveyor_bench_workers_" + runId;

    public static string ReportId(string runId, int slot) => $"conveyor_bench_report_{runId}_{slot}";

    /// <summary>Takes a slot for this worker in the run (once per run and worker).</summary>
    public static async ValueTask<int> TakeSlotAsync(IResultBackend backend, string runId, string workerKey, CancellationToken cancellationToken)
    {
        var completion = await backend.CompleteGroupMemberAsync(WorkersGroup(runId), workerKey, succeeded: true, cancellationToken: cancellationToken).ConfigureAwait(false);
        return completion.Completed;
    }

    public static ValueTask StoreAsync(IResultBackend backend, string runId, int slot, BenchWorkerReport report, CancellationToken cancellationToken) =>
        backend.SetStateAsync(
            new TaskStateRecord
            {
                TaskId = ReportId(runId, slot),
                TaskName = ReportTaskName,
                State = TaskState.Success,
                Results = [new TaskResult(MachineryTypes.String, JsonSerializer.Serialize(report, Json))],
            },
            cancellationToken);

    /// <summary>Every report stored for the run so far, and how many slots were taken.</summary>
    public static async ValueTask<IReadOnlyList<BenchWorkerReport>> ReadAsync(IResultBackend backend, string runId, CancellationToken cancellationToken)
    {
        // The benchmark's own member takes a slot too (once): the slots are 1..Completed, one of them empty.
        var completion = await backend.CompleteGroupMemberAsync(WorkersGroup(runId), "bench", succeeded: true, cancellationToken: cancellationToken).ConfigureAwait(false);
        if (completion.Completed <= 1)
        {
            return [];
        }

        var ids = Enumerable.Range(1, completion.Completed).Select(slot => ReportId(runId, slot)).ToList();
        var states = await backend.GetStatesAsync(ids, cancellationToken).ConfigureAwait(false);
        var reports = new List<BenchWorkerReport>();
        foreach (var state in states)
        {
            if (state is { Results: [{ Value: string json }] })
            {
                reports.Add(JsonSerializer.Deserialize<BenchWorkerReport>(json, Json)
                    ?? throw new FormatException($"{state.TaskId} holds no report"));
            }
        }

        return reports;
    }

    /// <summary>Deletes the run's slot counter and reports.</summary>
    public static async ValueTask DeleteAsync(IResultBackend backend, string runId, CancellationToken cancellationToken)
    {
        var completion = await backend.CompleteGroupMemberAsync(WorkersGroup(runId), "bench", succeeded: true, cancellationToken: cancellationToken).ConfigureAwait(false);
        for (var slot = 1; slot <= completion.Completed; slot++)
        {
            await backend.DeleteStateAsync(ReportId(runId, slot), cancellationToken).ConfigureAwait(false);
        }

        await backend.DeleteGroupAsync(WorkersGroup(runId), cancellationToken).ConfigureAwait(false);
    }
}

/// <summary>What the workers' reports of one run add up to.</summary>
/// <param name="Workers">How many processes reported.</param>
/// <param name="Executions">Task executions, repeats included.</param>
/// <param name="DistinctTasks">Tasks run at least once.</param>
/// <param name="RunCpuSeconds">The reporting processes' CPU time from their first task of the run to their last report.</param>
/// <param name="ProcessCpuSeconds">The reporting processes' CPU time since they started, at their last report.</param>
internal sealed record BenchExecutionSummary(int Workers, long Executions, long DistinctTasks, double RunCpuSeconds, double ProcessCpuSeconds)
{
    /// <summary>Executions beyond the first of a task: the same task run again (in one process or in two).</summary>
    public long Duplicates => Executions - DistinctTasks;

    public static BenchExecutionSummary Combine(IReadOnlyCollection<BenchWorkerReport> reports)
    {
        var union = Array.Empty<ulong>();
        long executions = 0, unindexed = 0;
        double runCpu = 0, processCpu = 0;
        foreach (var report in reports)
        {
            executions += report.Executions;
            unindexed += report.Unindexed;
            runCpu += report.RunCpuSeconds;
            processCpu += report.ProcessCpuSeconds;
            var bits = report.TaskBits();
            if (bits.Length > union.Length)
            {
                Array.Resize(ref union, bits.Length);
            }

            for (var i = 0; i < bits.Length; i++)
            {
                union[i] |= bits[i];
            }
        }

        // Tasks without an index cannot be told apart: each counts as a task of its own.
        var distinct = unindexed + union.Sum(word => (long)BitOperations.PopCount(word));
        return new BenchExecutionSummary(reports.Count, executions, distinct, runCpu, processCpu);
    }
}
