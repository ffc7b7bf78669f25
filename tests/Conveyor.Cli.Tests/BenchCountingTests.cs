using Conveyor.Cli.Bench;
using Conveyor.Sqlite;

namespace Conveyor.Cli.Tests;

/// <summary>
/// How the benchmark counts duplicates without a backend call per task: each worker's in-memory tally of what it ran,
/// reported through a real result backend (SQLite) and added up by task index.
/// </summary>
public sealed class BenchCountingTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("conveyor-bench-count-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void Combine_SameTaskInOneProcessAndInTwo_CountsEachRepeatOnce()
    {
        var first = new BenchTally(TimeProvider.System);
        var second = new BenchTally(TimeProvider.System);
        foreach (var index in new long[] { 0, 1, 2, 63, 64, 1000, 1000 })
        {
            first.Record("run", index);
        }

        foreach (var index in new long[] { 2, 3, 64 })
        {
            second.Record("run", index);
        }

        second.Record("another run", 0);

        var summary = BenchExecutionSummary.Combine([first.Report("run", "first")!, second.Report("run", "second")!]);

        Assert.Equal(2, summary.Workers);
        Assert.Equal(10, summary.Executions);
        Assert.Equal(7, summary.DistinctTasks); // 0, 1, 2, 3, 63, 64, 1000
        Assert.Equal(3, summary.Duplicates); // 1000 twice in one process; 2 and 64 in both
        Assert.Null(first.Report("another run", "first"));
    }

    [Fact]
    public void Changed_AfterReported_ListsARunAgainOnlyWhenItChanges()
    {
        var tally = new BenchTally(TimeProvider.System);
        tally.Record("run", 5);

        var changed = Assert.Single(tally.Changed("w"));
        tally.MarkReported(changed.RunId, changed.Version);
        Assert.Empty(tally.Changed("w"));

        tally.Record("run", 5);
        var again = Assert.Single(tally.Changed("w"));
        Assert.Equal(2, again.Report.Executions);
        Assert.Equal("w", again.Report.Worker);
    }

    [Fact]
    public async Task ReadAsync_TwoWorkersReportThroughSqlite_ReturnsBothAndDeleteAsyncLeavesNone()
    {
        await using var backend = new SqliteResultBackend(new SqliteConveyorOptions { DatabasePath = Path.Combine(_directory, "conveyor.db") });
        var runId = Guid.NewGuid().ToString("N");
        var first = new BenchTally(TimeProvider.System);
        var second = new BenchTally(TimeProvider.System);
        first.Record(runId, 1);
        first.Record(runId, 2);
        second.Record(runId, 2);

        var firstSlot = await BenchReports.TakeSlotAsync(backend, runId, "first-worker", CancellationToken.None);
        var secondSlot = await BenchReports.TakeSlotAsync(backend, runId, "second-worker", CancellationToken.None);
        await BenchReports.StoreAsync(backend, runId, firstSlot, first.Report(runId, "first")!, CancellationToken.None);
        await BenchReports.StoreAsync(backend, runId, secondSlot, second.Report(runId, "second")!, CancellationToken.None);
        // A later report of the same worker replaces its earlier one.
        first.Record(runId, 3);
        await BenchReports.StoreAsync(backend, runId, firstSlot, first.Report(runId, "first")!, CancellationToken.None);

        var reports = await BenchReports.ReadAsync(backend, runId, CancellationToken.None);
        var summary = BenchExecutionSummary.Combine(reports);
        await BenchReports.DeleteAsync(backend, runId, CancellationToken.None);

        Assert.NotEqual(firstSlot, secondSlot);
        Assert.Equal(["first", "second"], reports.Select(r => r.Worker).Order(StringComparer.Ordinal));
        Assert.Equal(4, summary.Executions);
        Assert.Equal(3, summary.DistinctTasks);
        Assert.Equal(1, summary.Duplicates);
        Assert.Empty(await BenchReports.ReadAsync(backend, runId, CancellationToken.None));
    }
}
