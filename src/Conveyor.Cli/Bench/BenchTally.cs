using System.Runtime.InteropServices;

namespace Conveyor.Cli.Bench;

/// <summary>
/// What this process ran of each benchmark run, counted in memory so that counting costs the backend nothing per
/// task: per run, how many executions, and which tasks (a bitmap over the task's index, the first argument of the
/// benchmark's <c>add(i, 1)</c>), so that the benchmark can tell a task run twice by two processes from two tasks.
/// A worker process reports it now and then through <see cref="BenchReporter"/>; a benchmark with its workers in
/// process reads it directly.
/// </summary>
internal sealed class BenchTally(TimeProvider time)
{
    /// <summary>Indexes from 0 up to this (64 M tasks, an 8 MB bitmap) are tracked; others are only counted.</summary>
    public const long MaxIndex = 1L << 26;

    /// <summary>A run not changed for this long, and reported since, is forgotten (a worker serves many runs).</summary>
    private static readonly TimeSpan Forget = TimeSpan.FromMinutes(10);

    private readonly Lock _gate = new();
    private readonly Dictionary<string, Run> _runs = new(StringComparer.Ordinal);

    /// <summary>Records one execution of task <paramref name="index"/> of run <paramref name="runId"/>.</summary>
    public void Record(string runId, long index)
    {
        lock (_gate)
        {
            if (!_runs.TryGetValue(runId, out var run))
            {
                // Once per run: the process's CPU so far, so the report can say what the run itself cost.
                run = new Run(Environment.CpuUsage.TotalTime);
                _runs.Add(runId, run);
            }

            run.Record(index);
            run.Version++;
            run.ChangedAt = time.GetTimestamp();
        }
    }

    /// <summary>The reports of the runs changed since they were last marked reported; forgets long-idle runs.</summary>
    /// <param name="worker">Who reports (the worker's name).</param>
    public IReadOnlyList<(string RunId, long Version, BenchWorkerReport Report)> Changed(string worker)
    {
        var cpu = Environment.CpuUsage.TotalTime;
        var changed = new List<(string, long, BenchWorkerReport)>();
        lock (_gate)
        {
            foreach (var (runId, run) in _runs)
            {
                if (run.Version != run.ReportedVersion)
                {
                    changed.Add((runId, run.Version, run.ToReport(worker, cpu)));
                }
            }

            foreach (var (runId, run) in _runs.Where(r => r.Value.Version == r.Value.ReportedVersion && time.GetElapsedTime(r.Value.ChangedAt) > Forget).ToList())
            {
                _runs.Remove(runId);
            }
        }

        return changed;
    }

    /// <summary>Marks a run's report up to <paramref name="version"/> as stored.</summary>
    public void MarkReported(string runId, long version)
    {
        lock (_gate)
        {
            if (_runs.TryGetValue(runId, out var run) && run.ReportedVersion < version)
            {
                run.ReportedVersion = version;
            }
        }
    }

    /// <summary>This process's report of one run, or <see langword="null"/> when it ran none of its tasks.</summary>
    public BenchWorkerReport? Report(string runId, string worker)
    {
        lock (_gate)
        {
            return _runs.TryGetValue(runId, out var run) ? run.ToReport(worker, Environment.CpuUsage.TotalTime) : null;
        }
    }

    /// <summary>Forgets a run (the benchmark has read it).</summary>
    public void Remove(string runId)
    {
        lock (_gate)
        {
            _runs.Remove(runId);
        }
    }

    private sealed class Run(TimeSpan cpuAtStart)
    {
        private ulong[] _bits = new ulong[16];
        private long _executions;
        private long _unindexed;

        public long Version { get; set; }

        public long ReportedVersion { get; set; }

        public long ChangedAt { get; set; }

        public void Record(long index)
        {
            _executions++;
            if (index is < 0 or >= MaxIndex)
            {
                _unindexed++;
                return;
            }

            var word = (int)(index >> 6);
            if (word >= _bits.Length)
            {
                Array.Resize(ref _bits, Math.Max(word + 1, _bits.Length * 2));
            }

            _bits[word] |= 1UL << (int)(index & 63);
        }

        public BenchWorkerReport ToReport(string worker, TimeSpan cpuNow)
        {
            // Trailing empty words say nothing: leave them out of the report.
            var used = _bits.Length;
            while (used > 0 && _bits[used - 1] == 0)
            {
                used--;
            }

            return new BenchWorkerReport(
                worker,
                _executions,
                _unindexed,
                Convert.ToBase64String(MemoryMarshal.AsBytes(_bits.AsSpan(0, used))),
                (cpuNow - cpuAtStart).TotalSeconds,
                cpuNow.TotalSeconds);
        }
    }
}

/// <summary>One process's count of one benchmark run, as it reports it (JSON in a result-backend record).</summary>
/// <param name="Worker">The worker's name.</param>
/// <param name="Executions">How many times it ran a task of the run (repeats included).</param>
/// <param name="Unindexed">Of those, how many had an index outside the bitmap (counted, not told apart).</param>
/// <param name="Tasks">The bitmap of the task indexes it ran, little-endian 64-bit words, base64.</param>
/// <param name="RunCpuSeconds">The process's CPU time from its first task of the run until this report.</param>
/// <param name="ProcessCpuSeconds">The process's CPU time since it started, at this report.</param>
internal sealed record BenchWorkerReport(string Worker, long Executions, long Unindexed, string Tasks, double RunCpuSeconds, double ProcessCpuSeconds)
{
    /// <summary>The task bitmap's words.</summary>
    public ulong[] TaskBits()
    {
        var bytes = Convert.FromBase64String(Tasks);
        if (bytes.Length % sizeof(ulong) != 0)
        {
            throw new FormatException($"the task bitmap of worker {Worker} is {bytes.Length} bytes, not whole 64-bit words");
        }

        return MemoryMarshal.Cast<byte, ulong>(bytes).ToArray();
    }
}
