using System.Diagnostics;
using Conveyor.Diagnostics;
using OpenTelemetry.Metrics;

namespace Conveyor.Telemetry.Tests;

/// <summary>
/// What the telemetry tests check, on exported spans and metric snapshots only, so that a test that builds its
/// client and worker another way (a generic host) can check the same things.
/// </summary>
public static class TelemetryAssertions
{
    /// <summary>The distinct Conveyor spans of several providers (in one test process each sees all of them).</summary>
    public static List<Activity> ConveyorSpans(params IEnumerable<TelemetryCapture> captures) =>
        [.. captures.SelectMany(c => c.Spans).Where(s => s.Source.Name == ConveyorDiagnostics.Name).DistinctBy(s => s.SpanId)];

    public static string? MessageId(Activity span) => span.GetTagItem("messaging.message.id") as string;

    public static List<Activity> SendSpans(IEnumerable<Activity> spans, string taskId) =>
        [.. spans.Where(s => s.Kind == ActivityKind.Producer && MessageId(s) == taskId).OrderBy(s => s.StartTimeUtc)];

    public static List<Activity> ProcessSpans(IEnumerable<Activity> spans, string taskId) =>
        [.. spans.Where(s => s.Kind == ActivityKind.Consumer && MessageId(s) == taskId).OrderBy(s => (int)s.GetTagItem("conveyor.task.attempt")!)];

    /// <summary>A send span with the messaging conventions' name and attributes.</summary>
    public static void AssertSendSpan(Activity span, string queue, string taskName)
    {
        Assert.Equal(ActivityKind.Producer, span.Kind);
        Assert.Equal($"send {queue}", span.DisplayName);
        Assert.Equal("conveyor", span.GetTagItem("messaging.system"));
        Assert.Equal("send", span.GetTagItem("messaging.operation.type"));
        Assert.Equal("send", span.GetTagItem("messaging.operation.name"));
        Assert.Equal(queue, span.GetTagItem("messaging.destination.name"));
        Assert.Equal(taskName, span.GetTagItem("conveyor.task.name"));
        Assert.True(span.GetTagItem("messaging.message.body.size") is int size && size > 0, "messaging.message.body.size");
    }

    /// <summary>A process span with the messaging conventions' name and attributes, a child of its message's send span.</summary>
    public static void AssertProcessSpan(Activity span, Activity send, string queue, string taskName, int attempt)
    {
        Assert.Equal(ActivityKind.Consumer, span.Kind);
        Assert.Equal($"process {queue}", span.DisplayName);
        Assert.Equal(send.TraceId, span.TraceId);
        Assert.Equal(send.SpanId, span.ParentSpanId);
        Assert.Equal("conveyor", span.GetTagItem("messaging.system"));
        Assert.Equal("process", span.GetTagItem("messaging.operation.type"));
        Assert.Equal("process", span.GetTagItem("messaging.operation.name"));
        Assert.Equal(queue, span.GetTagItem("messaging.destination.name"));
        Assert.Equal(MessageId(send), MessageId(span));
        Assert.Equal(taskName, span.GetTagItem("conveyor.task.name"));
        Assert.Equal(attempt, span.GetTagItem("conveyor.task.attempt"));
        Assert.True(span.GetTagItem("messaging.message.body.size") is int size && size > 0, "messaging.message.body.size");
    }

    /// <summary>
    /// Every step of a chain ran in one trace: each step's process span is the child of its send span, and each
    /// next step's send span is the child of the previous step's process span (published by the worker).
    /// </summary>
    public static ActivityTraceId AssertChainIsOneTrace(IReadOnlyCollection<Activity> spans, string queue, IReadOnlyList<Signature> steps)
    {
        var traceId = SendSpans(spans, steps[0].Id).Single().TraceId;
        Activity? previousProcess = null;
        foreach (var step in steps)
        {
            var send = Assert.Single(SendSpans(spans, step.Id));
            var process = Assert.Single(ProcessSpans(spans, step.Id));
            Assert.Equal(traceId, send.TraceId);
            AssertSendSpan(send, queue, step.Name);
            AssertProcessSpan(process, send, queue, step.Name, attempt: 1);
            Assert.Equal(ActivityStatusCode.Unset, process.Status);
            Assert.Equal("SUCCESS", process.GetTagItem("conveyor.task.state"));
            if (previousProcess is not null)
            {
                Assert.Equal(previousProcess.SpanId, send.ParentSpanId);
            }

            previousProcess = process;
        }

        Assert.All(spans.Where(s => s.TraceId == traceId), s => Assert.Contains(MessageId(s), steps.Select(t => t.Id)));
        return traceId;
    }

    /// <summary>The chord callback's process span (and its send span) link to each member's process span, once.</summary>
    public static void AssertCallbackLinksEveryMember(IReadOnlyCollection<Activity> spans, IReadOnlyList<Signature> members, Signature callback)
    {
        var memberSpans = members.Select(m => Assert.Single(ProcessSpans(spans, m.Id))).ToList();
        var expected = memberSpans.Select(s => (s.TraceId, s.SpanId)).OrderBy(l => l.SpanId.ToHexString()).ToList();
        Assert.Equal(members.Count, expected.Distinct().Count());

        var callbackProcess = Assert.Single(ProcessSpans(spans, callback.Id));
        var callbackSend = Assert.Single(SendSpans(spans, callback.Id));
        Assert.Equal(callbackSend.SpanId, callbackProcess.ParentSpanId);
        foreach (var span in new[] { callbackProcess, callbackSend })
        {
            var links = span.Links.Select(l => (l.Context.TraceId, l.Context.SpanId)).OrderBy(l => l.SpanId.ToHexString()).ToList();
            Assert.Equal(expected, links);
        }

        Assert.All(memberSpans, s => Assert.Equal(members[0].GroupId, s.GetTagItem("conveyor.group.id")));
        Assert.All(memberSpans, s => Assert.Equal(callback.Name, s.GetTagItem("conveyor.chord.callback")));
    }

    /// <summary>
    /// Each run of a retried task is a process span of its own, in the task's trace, with its attempt number; a
    /// retry's run is the child of the retry's send span, which the failed run published.
    /// </summary>
    public static void AssertRetriesAreSeparateSpans(IReadOnlyCollection<Activity> spans, string queue, Signature task, int runs)
    {
        var sends = SendSpans(spans, task.Id);
        var processes = ProcessSpans(spans, task.Id);
        Assert.Equal(runs, sends.Count);
        Assert.Equal(Enumerable.Range(1, runs), processes.Select(p => (int)p.GetTagItem("conveyor.task.attempt")!));
        Assert.Single(processes.Select(p => p.TraceId).Concat(sends.Select(s => s.TraceId)).Distinct());
        for (var i = 0; i < runs; i++)
        {
            AssertProcessSpan(processes[i], sends[i], queue, task.Name, attempt: i + 1);
            if (i > 0)
            {
                Assert.Equal(processes[i - 1].SpanId, sends[i].ParentSpanId);
            }

            if (i < runs - 1)
            {
                Assert.Equal(ActivityStatusCode.Error, processes[i].Status);
                Assert.Equal(typeof(InvalidOperationException).FullName, processes[i].GetTagItem("error.type"));
                Assert.Equal("RETRY", processes[i].GetTagItem("conveyor.task.state"));
                Assert.Contains(processes[i].Events, e => e.Name == "exception");
            }
        }
    }

    /// <summary>The points of a metric whose <c>messaging.destination.name</c> is <paramref name="queue"/>.</summary>
    public static List<MetricPoint> Points(IReadOnlyList<MetricSnapshot> metrics, string name, string queue)
    {
        var points = new List<MetricPoint>();
        foreach (var metric in metrics.Where(m => m.Name == name))
        {
            foreach (var point in metric.MetricPoints)
            {
                if (Tag(point, "messaging.destination.name") as string == queue)
                {
                    points.Add(point);
                }
            }
        }

        return points;
    }

    public static object? Tag(MetricPoint point, string key)
    {
        foreach (var tag in point.Tags)
        {
            if (tag.Key == key)
            {
                return tag.Value;
            }
        }

        return null;
    }

    public static long Sum(IReadOnlyList<MetricSnapshot> metrics, string name, string queue) =>
        Points(metrics, name, queue).Sum(p => p.GetSumLong());

    public static long HistogramCount(IReadOnlyList<MetricSnapshot> metrics, string name, string queue) =>
        Points(metrics, name, queue).Sum(p => p.GetHistogramCount());

    /// <summary>The queue-depth gauge's last sample of one state of a queue, or null when none was reported.</summary>
    public static long? QueueDepth(IReadOnlyList<MetricSnapshot> metrics, string queue, string state) =>
        Points(metrics, "conveyor.queue.depth", queue).Where(p => Tag(p, "conveyor.queue.state") as string == state).Select(p => (long?)p.GetGaugeLastValueLong()).FirstOrDefault();
}
