using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Conveyor.Diagnostics;
using Conveyor.InMemory;
using Microsoft.Extensions.Time.Testing;

namespace Conveyor.Tests.Core;

public sealed class TelemetryTests
{
    private static readonly ActivitySource TestSource = new("Conveyor.Tests.Telemetry");

    [Fact]
    public async Task Chain_PublishAndProcessSpans_ShareOneTraceAndNestAcrossTheBroker()
    {
        var spans = new ConcurrentQueue<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name is ConveyorDiagnostics.Name or "Conveyor.Tests.Telemetry",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = spans.Enqueue,
        };
        ActivitySource.AddActivityListener(listener);

        await using var broker = new InMemoryBroker();
        await using var backend = new InMemoryResultBackend();
        var client = new ConveyorClient(broker, backend, new ConveyorClientOptions { DefaultQueue = "telemetry" });
        var registry = new TaskRegistry()
            .Register("add", (long a, long b) => a + b)
            .Register("add_many", (params long[] values) => values.Sum());
        using var worker = new ConveyorWorker(client, registry, new WorkerOptions { Queue = "telemetry" });
        await worker.StartAsync(CancellationToken.None);

        ActivityTraceId traceId;
        ChainResult chain;
        using (var root = TestSource.StartActivity("test-root"))
        {
            traceId = root!.TraceId;
            chain = await client.SendChainAsync(new Chain(
                new Signature("add", TaskArgument.Int64(1), TaskArgument.Int64(2)),
                new Signature("add_many", TaskArgument.Int64(10)),
                new Signature("add_many", TaskArgument.Int64(100))));
        }

        Assert.Equal([new TaskResult("int64", 113L)], await chain.GetAsync(TimeSpan.FromSeconds(10)));
        await FakeTimeWorld.EventuallyAsync(() => spans.Count(s => s.TraceId == traceId && s.Kind == ActivityKind.Consumer) == 3, "three process spans");
        await worker.StopAsync(CancellationToken.None);

        var ours = spans.Where(s => s.TraceId == traceId && s.Source.Name == ConveyorDiagnostics.Name).ToList();
        var publishes = ours.Where(s => s.Kind == ActivityKind.Producer).ToList();
        var processes = ours.Where(s => s.Kind == ActivityKind.Consumer).ToList();
        Assert.Equal(3, publishes.Count);
        Assert.Equal(["add", "add_many", "add_many"], processes.OrderBy(p => p.StartTimeUtc).Select(p => (string)p.GetTagItem("conveyor.task.name")!));
        foreach (var process in processes)
        {
            // Each process span's parent is the publish span of its message (W3C context carried in the headers).
            Assert.Contains(publishes, p => p.SpanId == process.ParentSpanId && (string?)p.GetTagItem("messaging.message.id") == (string?)process.GetTagItem("messaging.message.id"));
            Assert.Equal("process", process.GetTagItem("messaging.operation.type"));
            Assert.Equal("telemetry", process.GetTagItem("messaging.destination.name"));
        }
    }

    [Fact]
    public async Task Meter_CountsPublishedSucceededFailedRetriedAndDeadLettered()
    {
        using var diagnostics = new ConveyorDiagnostics();
        var counts = new ConcurrentDictionary<string, long>();
        var durations = 0;
        using var meterListener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (ReferenceEquals(instrument.Meter, diagnostics.Meter))
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        meterListener.SetMeasurementEventCallback<long>((instrument, value, _, _) => counts.AddOrUpdate(instrument.Name, value, (_, old) => old + value));
        meterListener.SetMeasurementEventCallback<double>((instrument, _, _, _) =>
        {
            if (instrument.Name == "messaging.process.duration")
            {
                Interlocked.Increment(ref durations);
            }
        });
        meterListener.Start();

        // Other tests run in parallel with the shared "Conveyor" meter: listen to this test's meter instance only.
        await using var broker = new InMemoryBroker();
        await using var backend = new InMemoryResultBackend();
        var client = new ConveyorClient(broker, backend, new ConveyorClientOptions { DefaultQueue = "metrics-" + Guid.NewGuid().ToString("N") }, diagnostics: diagnostics);
        var registry = new TaskRegistry()
            .Register("ok", () => 1L)
            .Register("flaky", (TaskContext c) => c.Attempt == 1 ? throw new InvalidOperationException("first") : 2L)
            .Register("bad", string () => throw new InvalidOperationException("always"));
        using var worker = new ConveyorWorker(client, registry, new WorkerOptions { RetryPolicy = new ExponentialRetryPolicy(TimeSpan.FromMilliseconds(1), TimeSpan.FromMilliseconds(2)) });
        await worker.StartAsync(CancellationToken.None);

        var ok = await client.SendAsync(new Signature("ok"));
        var ok2 = await client.SendAsync(new Signature("ok"));
        var flaky = await client.SendAsync(new Signature("flaky") { RetryCount = 1 });
        var bad = await client.SendAsync(new Signature("bad"));
        var unknown = await client.SendAsync(new Signature("unknown"));
        foreach (var result in new[] { ok, ok2, flaky, bad, unknown })
        {
            await result.WaitAsync(TimeSpan.FromSeconds(10));
        }

        await worker.StopAsync(CancellationToken.None);
        meterListener.RecordObservableInstruments();

        Assert.Equal(6, counts.GetValueOrDefault("messaging.client.sent.messages")); // 5 sends + 1 retry
        Assert.Equal(3, counts.GetValueOrDefault("conveyor.task.succeeded"));
        Assert.Equal(2, counts.GetValueOrDefault("conveyor.task.failed")); // "bad", and "unknown" recorded as FAILURE
        Assert.Equal(1, counts.GetValueOrDefault("conveyor.task.retried"));
        Assert.Equal(1, counts.GetValueOrDefault("conveyor.task.dead_lettered"));
        Assert.Equal(6, counts.GetValueOrDefault("messaging.client.consumed.messages"));
        Assert.Equal(5, Volatile.Read(ref durations));
    }

    [Fact]
    public async Task QueueWait_TasksWaitingInTheQueue_MeasuredFromPublishOrFromALaterEta()
    {
        using var diagnostics = new ConveyorDiagnostics();
        var waits = new ConcurrentBag<(string Task, double Seconds)>();
        using var meterListener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (ReferenceEquals(instrument.Meter, diagnostics.Meter))
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        meterListener.SetMeasurementEventCallback<double>((instrument, value, tags, _) =>
        {
            if (instrument.Name == "conveyor.task.queue_wait.duration")
            {
                foreach (var tag in tags)
                {
                    if (tag.Key == "conveyor.task.name")
                    {
                        waits.Add(((string)tag.Value!, value));
                    }
                }
            }
        });
        meterListener.Start();

        var time = new FakeTimeProvider(new DateTimeOffset(2026, 11, 26, 12, 0, 0, TimeSpan.Zero));
        await using var broker = new InMemoryBroker(time);
        await using var backend = new InMemoryResultBackend(timeProvider: time);
        var client = new ConveyorClient(broker, backend, new ConveyorClientOptions { DefaultQueue = "wait" }, time, diagnostics: diagnostics);
        var registry = new TaskRegistry().Register("now", () => 1L).Register("later", () => 2L);

        var now = await client.SendAsync(new Signature("now"));
        var later = await client.SendAsync(new Signature("later") { Eta = time.GetUtcNow().AddSeconds(3) });
        time.Advance(TimeSpan.FromSeconds(7));
        using var worker = new ConveyorWorker(client, registry, new WorkerOptions { Queue = "wait", QueueDepthSampleInterval = TimeSpan.Zero });
        await worker.StartAsync(CancellationToken.None);
        await now.WaitAsync(TimeSpan.FromSeconds(10));
        await later.WaitAsync(TimeSpan.FromSeconds(10));
        await worker.StopAsync(CancellationToken.None);

        // Published at 12:00:00 and started at 12:00:07; "later" could not start before its ETA, 12:00:03.
        Assert.Equal([("later", 4.0), ("now", 7.0)], waits.OrderBy(w => w.Task));
    }

    [Fact]
    public async Task Chord_MoreMembersThanTheLinkCap_CallbackLinksToThatManyOfItsMembers()
    {
        var spans = new ConcurrentQueue<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == ConveyorDiagnostics.Name,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = spans.Enqueue,
        };
        ActivitySource.AddActivityListener(listener);

        await using var broker = new InMemoryBroker();
        await using var backend = new InMemoryResultBackend();
        var queue = "links-" + Guid.NewGuid().ToString("N");
        var client = new ConveyorClient(broker, backend, new ConveyorClientOptions { DefaultQueue = queue });
        var registry = new TaskRegistry().Register("one", () => 1L).Register("sum", (params long[] values) => values.Sum());
        using var worker = new ConveyorWorker(client, registry, new WorkerOptions { Queue = queue, MaxChordCallbackLinks = 3 });
        await worker.StartAsync(CancellationToken.None);

        var chord = new Chord(new TaskGroup(Enumerable.Range(0, 5).Select(_ => new Signature("one"))), new Signature("sum"));
        var result = await client.SendChordAsync(chord);
        Assert.Equal(5L, (await result.GetAsync(TimeSpan.FromSeconds(10)))[0].Value);
        await FakeTimeWorld.EventuallyAsync(
            () => spans.Count(s => s.Kind == ActivityKind.Consumer && chord.Group.Tasks.Append(chord.Callback).Any(t => t.Id == (string?)s.GetTagItem("messaging.message.id"))) == 6,
            "the members' and the callback's process spans");
        await worker.StopAsync(CancellationToken.None);

        var memberSpanIds = spans.Where(s => s.Kind == ActivityKind.Consumer && (string?)s.GetTagItem("conveyor.group.id") == chord.Group.GroupId).Select(s => s.SpanId).ToHashSet();
        var callback = spans.Single(s => s.Kind == ActivityKind.Consumer && (string?)s.GetTagItem("messaging.message.id") == chord.Callback.Id);
        Assert.Equal(5, memberSpanIds.Count);
        Assert.Equal(3, callback.Links.Select(l => l.Context.SpanId).Distinct().Count(memberSpanIds.Contains));
        Assert.Equal(3, callback.Links.Count());
    }
}
