using static Conveyor.Telemetry.Tests.TelemetryAssertions;

namespace Conveyor.Telemetry.Tests;

/// <summary>
/// The Conveyor meter read through an OpenTelemetry meter provider (in-memory exporter, <c>AddConveyorInstrumentation()</c>)
/// after a known mix of outcomes on a real Redis. Every instrument is tagged with the queue, and each test has a
/// queue of its own, so measurements of tests running in parallel do not count.
/// </summary>
public sealed class MetricTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task Meter_KnownMixOfOutcomes_EachCountHistogramInFlightAndQueueDepthAsExpected()
    {
        await using var keyspace = new RedisKeyspace("metrics");
        await using var producer = await ConveyorProcess.StartAsync(keyspace);
        await using var worker = await ConveyorProcess.StartAsync(keyspace);
        await worker.StartWorkerAsync(TestTasks.Registry(), new WorkerOptions { QueueDepthSampleInterval = TimeSpan.FromMilliseconds(50) });
        var queue = keyspace.Queue;

        // 5 sends + 1 retry = 6 published; ok, ok, flaky (2nd run) succeed; bad and unknown fail; flaky retried
        // once; unknown dead-lettered.
        var tasks = new[]
        {
            new Signature("ok"),
            new Signature("ok"),
            new Signature("flaky") { RetryCount = 1 },
            new Signature("bad"),
            new Signature("unknown"),
        };
        foreach (var task in tasks)
        {
            await producer.Client.SendAsync(task);
        }

        foreach (var task in tasks)
        {
            await producer.Client.GetResult(task.Id).WaitAsync(Timeout);
        }

        // The gauge reports the worker's last sample (every 50 ms here), and a message is acknowledged just after
        // its final state is stored: wait for a sample of the settled queue, with the dead letter.
        IReadOnlyList<OpenTelemetry.Metrics.MetricSnapshot> metrics = [];
        await TestTasks.EventuallyAsync(
            () =>
            {
                metrics = worker.Telemetry.CollectMetrics();
                return QueueDepth(metrics, queue, "dead_lettered") == 1 && QueueDepth(metrics, queue, "ready") == 0
                    && QueueDepth(metrics, queue, "delayed") == 0 && QueueDepth(metrics, queue, "in_flight") == 0
                    && Sum(metrics, "conveyor.task.in_flight", queue) == 0;
            },
            () => "a queue depth sample of the settled queue with the dead letter (last: " +
                string.Join(", ", new[] { "ready", "delayed", "in_flight", "dead_lettered" }.Select(state => $"{state} {QueueDepth(metrics, queue, state)?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none"}")) +
                $"), and no message in flight (last: {Sum(metrics, "conveyor.task.in_flight", queue)})",
            TimeSpan.FromSeconds(30));

        // Both simulated processes record on a "Conveyor" meter: the worker's provider sees the producer's sends too.
        Assert.Equal(6, Sum(metrics, "messaging.client.sent.messages", queue));
        Assert.Equal(6, Sum(metrics, "messaging.client.consumed.messages", queue));
        Assert.Equal(3, Sum(metrics, "conveyor.task.succeeded", queue));
        Assert.Equal(2, Sum(metrics, "conveyor.task.failed", queue));
        Assert.Equal(1, Sum(metrics, "conveyor.task.retried", queue));
        Assert.Equal(1, Sum(metrics, "conveyor.task.dead_lettered", queue));
        Assert.Equal(0, Sum(metrics, "conveyor.task.in_flight", queue));
        Assert.Equal(6, HistogramCount(metrics, "messaging.client.operation.duration", queue));
        Assert.Equal(5, HistogramCount(metrics, "messaging.process.duration", queue)); // every handler run: not "unknown"
        Assert.Equal(5, HistogramCount(metrics, "conveyor.task.queue_wait.duration", queue));
        Assert.Equal(
            2,
            Points(metrics, "messaging.process.duration", queue).Where(p => Tag(p, "error.type") as string == typeof(InvalidOperationException).FullName).Sum(p => p.GetHistogramCount()));
        Assert.Equal(["dead_lettered", "delayed", "in_flight", "ready"], Points(metrics, "conveyor.queue.depth", queue).Select(p => (string)Tag(p, "conveyor.queue.state")!).Order());

        // Durations are in seconds: the advised buckets, not the SDK's millisecond defaults (0, 5, 10, 25 …).
        var buckets = Points(metrics, "messaging.process.duration", queue)[0].GetHistogramBuckets();
        var bounds = new List<double>();
        foreach (var bucket in buckets)
        {
            bounds.Add(bucket.ExplicitBound);
        }

        Assert.Equal(0.005, bounds[0]);
    }
}
