using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Jobs;

namespace Conveyor.Benchmarks;

/// <summary>
/// One launch, 3 warm-up and 8 measured iterations: enough for sub-microsecond, allocation-bound code to settle, and
/// short enough that the whole suite runs in under three minutes on a 2-core machine. For steadier numbers pass
/// <c>--job default</c> (or <c>--iterationCount 30</c>) on the command line.
/// </summary>
public sealed class ShortRunConfig : ManualConfig
{
    public ShortRunConfig()
    {
        AddJob(Job.Default
            .WithLaunchCount(1)
            .WithWarmupCount(3)
            .WithIterationCount(8)
            .WithId("Short"));
        AddDiagnoser(MemoryDiagnoser.Default);

        // On a shared machine the mean moves with other processes; the median is the steadier figure to compare.
        AddColumn(StatisticColumn.Median);
    }
}
