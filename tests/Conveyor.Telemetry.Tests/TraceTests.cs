using System.Diagnostics;
using static Conveyor.Telemetry.Tests.TelemetryAssertions;

namespace Conveyor.Telemetry.Tests;

/// <summary>
/// Traces across a producer and a worker that share only a real Redis (broker and backend), each with its own
/// OpenTelemetry providers set up by <c>AddConveyorInstrumentation()</c> and the in-memory exporter.
/// </summary>
public sealed class TraceTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task Chain_ThreeStepsAcrossProducerAndWorker_OneTraceAndEachProcessSpanIsTheChildOfItsSendSpan()
    {
        await using var keyspace = new RedisKeyspace("chain");
        await using var producer = await ConveyorProcess.StartAsync(keyspace);
        await using var worker = await ConveyorProcess.StartAsync(keyspace);
        await worker.StartWorkerAsync(TestTasks.Registry());

        var chain = new Chain(
            new Signature("add", TaskArgument.Int64(1), TaskArgument.Int64(2)),
            new Signature("add_many", TaskArgument.Int64(10)),
            new Signature("add_many", TaskArgument.Int64(100)));
        var result = await producer.Client.SendChainAsync(chain);

        Assert.Equal([new TaskResult("int64", 113L)], await result.GetAsync(Timeout));
        await TestTasks.EventuallyAsync(() => chain.Tasks.All(t => ProcessSpans(ConveyorSpans(producer.Telemetry, worker.Telemetry), t.Id).Count == 1), "three process spans");
        var spans = ConveyorSpans(producer.Telemetry, worker.Telemetry);

        var traceId = AssertChainIsOneTrace(spans, keyspace.Queue, chain.Tasks);
        // The first send span starts the trace (no ambient span in the producer); the worker's own provider saw it
        // only through the message: its process spans carry the producer's trace id.
        Assert.Equal(default, SendSpans(spans, chain.Tasks[0].Id).Single().ParentSpanId);
        Assert.Contains(worker.Telemetry.Spans, s => s.Kind == ActivityKind.Consumer && s.TraceId == traceId);
    }

    [Fact]
    public async Task Chord_FiveMembers_CallbackProcessSpanLinksToEachMembersProcessSpan()
    {
        await using var keyspace = new RedisKeyspace("chord");
        await using var producer = await ConveyorProcess.StartAsync(keyspace);
        await using var worker = await ConveyorProcess.StartAsync(keyspace);
        await worker.StartWorkerAsync(TestTasks.Registry());

        var members = Enumerable.Range(1, 5).Select(i => new Signature("square", TaskArgument.Int64(i))).ToList();
        var chord = new Chord(new TaskGroup(members), new Signature("add_many"));
        var result = await producer.Client.SendChordAsync(chord);

        Assert.Equal([new TaskResult("int64", 55L)], await result.GetAsync(Timeout));
        // The last member's span ends after it published the callback, so it may be exported after the callback's.
        await TestTasks.EventuallyAsync(
            () => chord.Group.Tasks.Append(chord.Callback).All(t => ProcessSpans(ConveyorSpans(producer.Telemetry, worker.Telemetry), t.Id).Count == 1),
            "the members' and the callback's process spans");
        var spans = ConveyorSpans(producer.Telemetry, worker.Telemetry);

        AssertCallbackLinksEveryMember(spans, chord.Group.Tasks, chord.Callback);
        // The members' spans come from the exporter, so the links point at spans that really were exported.
        var callbackProcess = ProcessSpans(spans, chord.Callback.Id).Single();
        Assert.Equal(5, callbackProcess.Links.Count());
        Assert.All(callbackProcess.Links, l => Assert.Contains(spans, s => s.SpanId == l.Context.SpanId && s.Kind == ActivityKind.Consumer));
    }

    [Fact]
    public async Task Retry_FailedFirstRun_EachRunIsAProcessSpanOfItsOwnWithItsAttemptInOneTrace()
    {
        await using var keyspace = new RedisKeyspace("retry");
        await using var producer = await ConveyorProcess.StartAsync(keyspace);
        await using var worker = await ConveyorProcess.StartAsync(keyspace);
        await worker.StartWorkerAsync(TestTasks.Registry());

        var task = new Signature("flaky") { RetryCount = 2 };
        var result = await producer.Client.SendAsync(task);

        Assert.Equal(2L, await result.GetValueAsync<long>(Timeout));
        await TestTasks.EventuallyAsync(() => ProcessSpans(ConveyorSpans(producer.Telemetry, worker.Telemetry), task.Id).Count == 2, "two process spans");
        var spans = ConveyorSpans(producer.Telemetry, worker.Telemetry);

        AssertRetriesAreSeparateSpans(spans, keyspace.Queue, task, runs: 2);
        Assert.Equal("SUCCESS", ProcessSpans(spans, task.Id)[1].GetTagItem("conveyor.task.state"));
    }

    [Fact]
    public async Task Failure_HandlerThrows_ProcessSpanHasErrorStatusAndErrorType()
    {
        await using var keyspace = new RedisKeyspace("failure");
        await using var producer = await ConveyorProcess.StartAsync(keyspace);
        await using var worker = await ConveyorProcess.StartAsync(keyspace);
        await worker.StartWorkerAsync(TestTasks.Registry());

        var task = new Signature("bad");
        var result = await producer.Client.SendAsync(task);

        Assert.Equal(TaskState.Failure, (await result.WaitAsync(Timeout)).State);
        await TestTasks.EventuallyAsync(() => ProcessSpans(ConveyorSpans(producer.Telemetry, worker.Telemetry), task.Id).Count == 1, "the process span");
        var process = ProcessSpans(ConveyorSpans(producer.Telemetry, worker.Telemetry), task.Id).Single();

        Assert.Equal(ActivityStatusCode.Error, process.Status);
        Assert.Equal("always fails", process.StatusDescription);
        Assert.Equal(typeof(InvalidOperationException).FullName, process.GetTagItem("error.type"));
        Assert.Equal("FAILURE", process.GetTagItem("conveyor.task.state"));
    }
}
