using Conveyor.Cli.Bench;
using Microsoft.Extensions.DependencyInjection;

namespace Conveyor.Cli;

/// <summary>The example tasks every <c>conveyor worker</c> runs.</summary>
internal static class BuiltInTasks
{
    /// <summary>The header that marks a benchmark task; its value is the benchmark run id.</summary>
    public const string BenchHeader = "conveyor-bench";

    public static TaskRegistry Register(TaskRegistry registry)
    {
        return registry
            .Register("add", (long a, long b, TaskContext context) =>
            {
                TrackBenchExecution(a, context);
                return a + b;
            })
            .Register("multiply", (long a, long b) => a * b)
            .Register("sum", (params long[] values) => values.Sum())
            .Register("concat", (params string[] values) => string.Concat(values))
            .Register("echo", (string text) => text)
            .Register("sleep", async (long milliseconds, CancellationToken cancellationToken) =>
            {
                await Task.Delay(TimeSpan.FromMilliseconds(milliseconds), cancellationToken).ConfigureAwait(false);
                return milliseconds;
            })
            .Register("fail", string (string message) => throw new InvalidOperationException(message));
    }

    /// <summary>
    /// Counts a benchmark task in this process's <see cref="BenchTally"/> (memory only: the workers report their
    /// tallies now and then, so counting costs the backend nothing per task). The benchmark publishes
    /// <c>add(i, 1)</c>: the first argument is the task's index in the run.
    /// </summary>
    private static void TrackBenchExecution(long index, TaskContext context)
    {
        if (context.Signature.GetHeader(BenchHeader) is not { Length: > 0 } runId)
        {
            return;
        }

        var services = context.Services ?? throw new InvalidOperationException("the built-in tasks run in the CLI's host");
        services.GetRequiredService<BenchTally>().Record(runId, index);
    }
}
