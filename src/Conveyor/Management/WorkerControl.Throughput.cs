namespace Conveyor;

/// <summary>
/// A worker's finished-task counts since its last heartbeat: the task runner adds one per final state (an
/// interlocked increment, no I/O), and the heartbeat adds them to the store's per-minute counters
/// (<see cref="IManagementStore.RecordThroughputAsync"/>), so the dashboard's rates come from counters and cost the
/// hot path no round trip. Counts are put in the minute of the heartbeat that carries them (at most one heartbeat
/// interval late).
/// </summary>
internal sealed class ThroughputCounter
{
    private long _succeeded;
    private long _failed;

    public void Succeeded() => Interlocked.Increment(ref _succeeded);

    public void Failed() => Interlocked.Increment(ref _failed);

    /// <summary>Takes the counts, leaving zero.</summary>
    public (long Succeeded, long Failed) Take() => (Interlocked.Exchange(ref _succeeded, 0), Interlocked.Exchange(ref _failed, 0));

    /// <summary>Puts counts back (the store did not take them).</summary>
    public void Restore(long succeeded, long failed)
    {
        Interlocked.Add(ref _succeeded, succeeded);
        Interlocked.Add(ref _failed, failed);
    }
}

internal sealed partial class WorkerControl
{
    /// <summary>The counts the next heartbeat stores.</summary>
    public ThroughputCounter Throughput { get; } = new();

    /// <summary>Stores what was counted since the last heartbeat; on a failure the counts wait for the next one.</summary>
    private async Task FlushThroughputAsync(DateTimeOffset now, CancellationToken cancellationToken)
    {
        var (succeeded, failed) = Throughput.Take();
        if (succeeded == 0 && failed == 0)
        {
            return;
        }

        var minute = ThroughputSample.MinuteOf(now);
        try
        {
            await _store.RecordThroughputAsync([.. _identity.Queues.Take(1).Select(q => new ThroughputSample(q, minute, succeeded, failed))], cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            Throughput.Restore(succeeded, failed);
            throw;
        }
    }
}
