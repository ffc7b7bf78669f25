using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OpenTelemetry.Trace;

namespace Conveyor.Hosting.Tests;

/// <summary>
/// A producer host and a worker host, each with its own container, Redis connections and OpenTelemetry tracer
/// provider, sharing only a real Redis: the trace context must travel in the messages.
/// </summary>
public sealed class HostedTelemetryTests
{
    [Fact]
    public async Task ProducerAndWorkerHosts_ThreeStepChain_OneTraceEachProcessSpanChildOfItsSend()
    {
        await using var pair = await HostPair.StartAsync(nameof(ProducerAndWorkerHosts_ThreeStepChain_OneTraceEachProcessSpanChildOfItsSend));

        var chain = await pair.Client.SendChainAsync(new Chain(
            new Signature("add", TaskArgument.Int64(1), TaskArgument.Int64(2)),
            new Signature("multiply", TaskArgument.Int64(10)),
            new Signature("add", TaskArgument.Int64(100))));
        Assert.Equal([new TaskResult("int64", 130L)], await chain.GetAsync(TimeSpan.FromSeconds(30)));
        var ids = chain.Tasks.Select(s => s.TaskId).ToList();
        var spans = await pair.WaitForSpansAsync(s => ids.Contains(Tag(s, "messaging.message.id") ?? string.Empty), expected: 6);

        var process = spans.Where(s => s.Kind == ActivityKind.Consumer).ToList();
        var send = spans.Where(s => s.Kind == ActivityKind.Producer).ToList();
        Assert.Equal(3, process.Count);
        Assert.Single(spans.Select(s => s.TraceId).Distinct());
        Assert.All(process, p => Assert.Equal(
            send.Single(s => Tag(s, "messaging.message.id") == Tag(p, "messaging.message.id")).SpanId,
            p.ParentSpanId));
    }

    [Fact]
    public async Task ProducerAndWorkerHosts_Chord_CallbackProcessSpanLinksToEveryMember()
    {
        await using var pair = await HostPair.StartAsync(nameof(ProducerAndWorkerHosts_Chord_CallbackProcessSpanLinksToEveryMember));

        var chord = await pair.Client.SendChordAsync(new Chord(
            new TaskGroup(Enumerable.Range(1, 4).Select(i => new Signature("multiply", TaskArgument.Int64(i), TaskArgument.Int64(i)))),
            new Signature("sum")));
        Assert.Equal(30L, await chord.Callback.GetValueAsync<long>(TimeSpan.FromSeconds(30)));
        var memberIds = chord.Group.Tasks.Select(t => t.TaskId).ToList();
        var members = await pair.WaitForSpansAsync(s => s.Kind == ActivityKind.Consumer && memberIds.Contains(Tag(s, "messaging.message.id") ?? string.Empty), expected: 4);
        var callback = (await pair.WaitForSpansAsync(s => s.Kind == ActivityKind.Consumer && Tag(s, "messaging.message.id") == chord.Callback.TaskId, expected: 1)).Single();

        Assert.Equal(
            members.Select(m => (m.TraceId, m.SpanId)).OrderBy(x => x.SpanId.ToHexString()),
            callback.Links.Select(l => (l.Context.TraceId, l.Context.SpanId)).OrderBy(x => x.SpanId.ToHexString()));
    }

    private static string? Tag(Activity activity, string name) => activity.GetTagItem(name)?.ToString();

    /// <summary>Two started hosts on one Redis and one queue; spans from both tracer providers, de-duplicated.</summary>
    private sealed class HostPair : IAsyncDisposable
    {
        private readonly LockedCollection<Activity> _producerSpans = new();
        private readonly LockedCollection<Activity> _workerSpans = new();
        private IHost? _producer;
        private IHost? _worker;

        public ConveyorClient Client => _producer!.Services.GetRequiredService<ConveyorClient>();

        public static async Task<HostPair> StartAsync(string test)
        {
            var pair = new HostPair();
            var queue = HostBuilders.UniqueQueue(test);
            pair._worker = Build(queue, pair._workerSpans, worker: true);
            pair._producer = Build(queue, pair._producerSpans, worker: false);
            await pair._worker.StartAsync();
            await pair._producer.StartAsync();
            return pair;
        }

        public async Task<List<Activity>> WaitForSpansAsync(Func<Activity, bool> match, int expected)
        {
            var stopwatch = Stopwatch.StartNew();
            while (true)
            {
                // In one test process both providers see every span; a span id says which are the same.
                List<Activity> found = [.. _producerSpans.Snapshot().Concat(_workerSpans.Snapshot()).Where(match).DistinctBy(s => s.SpanId)];

                if (found.Count >= expected)
                {
                    return found;
                }

                Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(30), $"{found.Count} of {expected} spans exported within 30 s");
                await Task.Delay(20);
            }
        }

        public async ValueTask DisposeAsync()
        {
            foreach (var host in new[] { _producer, _worker })
            {
                if (host is not null)
                {
                    await host.StopAsync();
                    host.Dispose();
                }
            }
        }

        private static IHost Build(string queue, LockedCollection<Activity> spans, bool worker)
        {
            var builder = HostBuilders.Create(new Dictionary<string, string?>
            {
                ["Conveyor:Broker"] = RedisTestServer.Url,
                ["Conveyor:DefaultQueue"] = queue,
            });
            builder.Services.AddConveyor(c =>
            {
                c.UseRedis();
                if (worker)
                {
                    c.AddTask("add", (long a, long b) => a + b)
                        .AddTask("multiply", (long a, long b) => a * b)
                        .AddTask("sum", (params long[] values) => values.Sum());
                }
            });
            if (worker)
            {
                builder.Services.AddConveyorWorker();
            }

            builder.Services.AddOpenTelemetry().WithTracing(t => t.AddConveyorInstrumentation().AddInMemoryExporter(spans));
            return builder.Build();
        }
    }
}
