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
            .Register("add", async (long a, long b, TaskContext context) =>
            {
                await TrackBenchExecutionAsync(context).ConfigureAwait(false);
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
            .Register("fail", string (string message) => throw new InvalidOperationException(message))

            // Kills the worker's process, as a stack overflow or an out-of-memory would: to see a poison message
            // dead-lettered after Worker:MaxDeliveries deliveries instead of crashing every worker in turn.
            .Register("crash", string (string message) =>
            {
                Environment.FailFast(message);
                return message;
            });
    }

    /// <summary>
    /// Counts benchmark executions through the backend's idempotent group counter: the first run of a task
    /// registers it, a second run registers the task as a duplicate. Works across processes and providers.
    /// </summary>
    private static async ValueTask TrackBenchExecutionAsync(TaskContext context)
    {
        if (context.Signature.GetHeader(BenchHeader) is not { Length: > 0 } runId)
        {
            return;
        }

        var backend = (context.Services ?? throw new InvalidOperationException("the built-in tasks run in the CLI's host")).GetRequiredService<IResultBackend>();

        // Counting is the benchmark's business, not the task's: a backend hiccup here must not fail the task, so
        // it is retried a few times and then given up (the run's duplicate count may then be an undercount).
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                var execution = await backend.CompleteGroupMemberAsync(ExecutionGroup(runId), context.TaskId, succeeded: true, cancellationToken: context.CancellationToken).ConfigureAwait(false);
                if (!execution.IsFirstCompletion)
                {
                    await backend.CompleteGroupMemberAsync(DuplicateGroup(runId), context.TaskId, succeeded: true, cancellationToken: context.CancellationToken).ConfigureAwait(false);
                }

                return;
            }
            catch (Exception) when (attempt < 5 && !context.CancellationToken.IsCancellationRequested)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(200 * attempt), context.CancellationToken).ConfigureAwait(false);
            }
            catch (Exception) when (!context.CancellationToken.IsCancellationRequested)
            {
                return;
            }
        }
    }

    public static string ExecutionGroup(string runId) => "conveyor_bench_exec_" + runId;

    public static string DuplicateGroup(string runId) => "conveyor_bench_dup_" + runId;
}
