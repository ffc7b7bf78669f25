namespace Conveyor.Telemetry.Tests;

/// <summary>The handlers the telemetry tests run.</summary>
public static class TestTasks
{
    public static TaskRegistry Registry() => new TaskRegistry()
        .Register("add", (long a, long b) => a + b)
        .Register("add_many", (params long[] values) => values.Sum())
        .Register("square", (long x) => x * x)
        .Register("ok", () => 1L)
        .Register("flaky", (TaskContext context) => context.Attempt == 1 ? throw new InvalidOperationException("first run fails") : 2L)
        .Register("bad", string () => throw new InvalidOperationException("always fails"));

    /// <summary>Waits until <paramref name="condition"/> holds (telemetry is exported after the final state is stored).</summary>
    public static Task EventuallyAsync(Func<bool> condition, string what, TimeSpan? timeout = null) =>
        EventuallyAsync(condition, () => what, timeout);

    /// <summary>Waits until <paramref name="condition"/> holds; <paramref name="what"/> describes the last state seen on timeout.</summary>
    public static async Task EventuallyAsync(Func<bool> condition, Func<string> what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(15));
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"Timed out waiting for {what()}.");
            }

            await Task.Delay(20);
        }
    }
}
