namespace Conveyor.InMemory;

/// <summary>Throughput counters, single dead letters and schedule switches, in this process.</summary>
public sealed partial class InMemoryManagementStore
{
    private static readonly TimeSpan ThroughputRetention = TimeSpan.FromDays(1);
    private readonly Dictionary<(string Queue, DateTimeOffset Minute), (long Succeeded, long Failed)> _throughput = [];
    private readonly HashSet<string> _disabledSchedules = new(StringComparer.Ordinal);

    /// <inheritdoc/>
    public ValueTask RecordThroughputAsync(IReadOnlyList<ThroughputSample> samples, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(samples);
        var oldest = ThroughputSample.MinuteOf(_time.GetUtcNow() - ThroughputRetention);
        lock (_gate)
        {
            foreach (var sample in samples)
            {
                var key = (sample.Queue, ThroughputSample.MinuteOf(sample.Minute));
                var (succeeded, failed) = _throughput.GetValueOrDefault(key);
                _throughput[key] = (succeeded + sample.Succeeded, failed + sample.Failed);
            }

            foreach (var key in _throughput.Keys.Where(k => k.Minute < oldest).ToList())
            {
                _throughput.Remove(key);
            }
        }

        return ValueTask.CompletedTask;
    }

    /// <inheritdoc/>
    public ValueTask<IReadOnlyList<ThroughputSample>> ReadThroughputAsync(DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken = default)
    {
        var first = ThroughputSample.MinuteOf(from);
        lock (_gate)
        {
            return ValueTask.FromResult<IReadOnlyList<ThroughputSample>>(
                [.. _throughput.Where(e => e.Key.Minute >= first && e.Key.Minute <= to)
                    .OrderBy(e => e.Key.Minute).ThenBy(e => e.Key.Queue, StringComparer.Ordinal)
                    .Select(e => new ThroughputSample(e.Key.Queue, e.Key.Minute, e.Value.Succeeded, e.Value.Failed))]);
        }
    }

    /// <inheritdoc/>
    public ValueTask<bool> RequeueDeadLetterAsync(string deadLetterId, CancellationToken cancellationToken = default) => ValueTask.FromResult(_broker.RequeueDeadLetter(deadLetterId));

    /// <inheritdoc/>
    public ValueTask<bool> DeleteDeadLetterAsync(string deadLetterId, CancellationToken cancellationToken = default) => ValueTask.FromResult(_broker.DeleteDeadLetter(deadLetterId));

    /// <inheritdoc/>
    public ValueTask SetScheduleEnabledAsync(string name, bool enabled, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        lock (_gate)
        {
            _ = enabled ? _disabledSchedules.Remove(name) : _disabledSchedules.Add(name);
        }

        return ValueTask.CompletedTask;
    }

    /// <inheritdoc/>
    public ValueTask<IReadOnlyList<string>> ListDisabledSchedulesAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            return ValueTask.FromResult<IReadOnlyList<string>>([.. _disabledSchedules.Order(StringComparer.Ordinal)]);
        }
    }
}
