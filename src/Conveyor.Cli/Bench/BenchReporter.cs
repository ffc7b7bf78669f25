using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Conveyor.Cli.Bench;

/// <summary>
/// Runs in <c>conveyor worker</c>: stores this process's <see cref="BenchTally"/> of each benchmark run through the
/// result backend (<see cref="BenchReports"/>) once a second while the run changes it, and a last time when the
/// worker has stopped (it is registered before the worker, so the host stops it after the worker has drained). A
/// worker that runs no benchmark task writes nothing.
/// </summary>
internal sealed partial class BenchReporter(
    BenchTally tally,
    IResultBackend backend,
    IOptionsMonitor<WorkerOptions> workerOptions,
    TimeProvider time,
    ILogger<BenchReporter> logger) : BackgroundService
{
    /// <summary>How often a changed tally is stored.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    private readonly Dictionary<string, int> _slots = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _flushing = new(1, 1);

    // Unique per process, so that two workers with the same name still take two slots.
    private readonly string _workerKey = $"{Environment.ProcessId}-{Guid.NewGuid():N}";

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
            {
                await FlushAsync(stoppingToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
        await FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    public override void Dispose()
    {
        _flushing.Dispose();
        base.Dispose();
    }

    private async Task FlushAsync(CancellationToken cancellationToken)
    {
        await _flushing.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var worker = workerOptions.Get(Options.DefaultName).Name;
            foreach (var (runId, version, report) in tally.Changed(worker))
            {
                try
                {
                    if (!_slots.TryGetValue(runId, out var slot))
                    {
                        slot = await BenchReports.TakeSlotAsync(backend, runId, _workerKey, cancellationToken).ConfigureAwait(false);
                        _slots[runId] = slot;
                    }

                    await BenchReports.StoreAsync(backend, runId, slot, report, cancellationToken).ConfigureAwait(false);
                    tally.MarkReported(runId, version);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    // The count is the benchmark's business, not the tasks': try again at the next tick.
                    LogReportFailed(logger, runId, ex);
                }
            }
        }
        finally
        {
            _flushing.Release();
        }
    }

    [LoggerMessage(7000, LogLevel.Warning, "Could not store this worker's count of benchmark run {RunId}; retrying in a second")]
    private static partial void LogReportFailed(ILogger logger, string runId, Exception exception);
}
