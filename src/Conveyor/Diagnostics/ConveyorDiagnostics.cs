using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;

namespace Conveyor.Diagnostics;

/// <summary>
/// Conveyor's telemetry: one ActivitySource and one Meter, both named <c>"Conveyor"</c>. Spans follow the
/// OpenTelemetry messaging conventions; the W3C trace context travels in the signature's headers, so a chain
/// or chord is one trace across processes.
/// </summary>
/// <remarks>
/// Instruments (all tagged with <c>messaging.destination.name</c>, the queue): the counters
/// <c>messaging.client.sent.messages</c>, <c>messaging.client.consumed.messages</c>, <c>conveyor.task.succeeded</c>,
/// <c>conveyor.task.failed</c>, <c>conveyor.task.retried</c>, <c>conveyor.task.dead_lettered</c>; the histograms (seconds)
/// <c>messaging.process.duration</c>, <c>messaging.client.operation.duration</c> (broker publish) and
/// <c>conveyor.task.queue_wait.duration</c>; the up-down counter <c>conveyor.task.in_flight</c>; and the gauge
/// <c>conveyor.queue.depth</c>, per queue and <c>conveyor.queue.state</c>, as last sampled by a worker.
/// Use one instance per process (<see cref="Shared"/>, or one from the host's <see cref="IMeterFactory"/>): the
/// OpenTelemetry SDK aggregates meters of one name together, and disposing one of them stops the export of all
/// (opentelemetry-dotnet#6412).
/// </remarks>
public sealed class ConveyorDiagnostics : IDisposable
{
    /// <summary>The name of the ActivitySource and the Meter.</summary>
    public const string Name = "Conveyor";

    /// <summary>The header that carries a chord callback's links: the W3C <c>traceparent</c> of each member's process span, space-separated.</summary>
    internal const string LinksHeader = "conveyor-links";

    /// <summary>The header with the publish time (Unix milliseconds), the start of the queue wait.</summary>
    internal const string PublishedHeader = "conveyor-published";

    internal const string MessagingSystem = "conveyor";

    internal static readonly ActivitySource ActivitySource = new(Name, typeof(ConveyorDiagnostics).Assembly.GetName().Version?.ToString());

    // OpenTelemetry's recommended boundaries for durations in seconds; the SDK's defaults are for milliseconds.
    private static readonly InstrumentAdvice<double> SecondsAdvice = new()
    {
        HistogramBucketBoundaries = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 30, 60, 300],
    };

    private readonly Meter _meter;
    private readonly bool _ownsMeter;

    // The last queue statistics a worker sampled, per queue: an observable callback must not do I/O.
    private readonly ConcurrentDictionary<string, QueueStatistics> _queueSamples = new(StringComparer.Ordinal);

    /// <summary>Creates the instruments on a meter from <paramref name="meterFactory"/>, or on a meter of its own.</summary>
    /// <param name="meterFactory">The host's meter factory, when there is one.</param>
    public ConveyorDiagnostics(IMeterFactory? meterFactory = null)
    {
        if (meterFactory is null)
        {
            _meter = new Meter(Name);
            _ownsMeter = true;
        }
        else
        {
            _meter = meterFactory.Create(Name);
        }

        Published = _meter.CreateCounter<long>("messaging.client.sent.messages", "{message}", "Tasks published.");
        Consumed = _meter.CreateCounter<long>("messaging.client.consumed.messages", "{message}", "Task messages taken from the broker.");
        Succeeded = _meter.CreateCounter<long>("conveyor.task.succeeded", "{task}", "Tasks that ended in SUCCESS.");
        Failed = _meter.CreateCounter<long>("conveyor.task.failed", "{task}", "Tasks that ended in FAILURE.");
        Retried = _meter.CreateCounter<long>("conveyor.task.retried", "{task}", "Task runs that failed and were scheduled again.");
        DeadLettered = _meter.CreateCounter<long>("conveyor.task.dead_lettered", "{message}", "Messages moved to the dead-letter store.");
        ScheduleTicks = _meter.CreateCounter<long>("conveyor.schedule.ticks", "{tick}", "Schedule ticks seen by this scheduler, by schedule and outcome (published, claimed_elsewhere, skipped, failed).");
        ProcessDuration = _meter.CreateHistogram("messaging.process.duration", "s", "How long a task's handler ran.", tags: null, SecondsAdvice);
        PublishDuration = _meter.CreateHistogram("messaging.client.operation.duration", "s", "How long publishing a message to the broker took.", tags: null, SecondsAdvice);
        QueueWait = _meter.CreateHistogram(
            "conveyor.task.queue_wait.duration",
            "s",
            "From when a task could first run (its publish time, or its ETA when later) to when a worker started it.",
            tags: null,
            SecondsAdvice);
        InFlight = _meter.CreateUpDownCounter<long>("conveyor.task.in_flight", "{task}", "Messages a worker is processing now.");
        QueueDepth = _meter.CreateObservableGauge("conveyor.queue.depth", ObserveQueueDepth, "{message}", "Messages in a queue by state, as last sampled by a worker.");
    }

    internal Meter Meter => _meter;

    internal Counter<long> Published { get; }

    internal Counter<long> Consumed { get; }

    internal Counter<long> Succeeded { get; }

    internal Counter<long> Failed { get; }

    internal Counter<long> Retried { get; }

    internal Counter<long> DeadLettered { get; }

    internal Histogram<double> ProcessDuration { get; }

    internal Counter<long> ScheduleTicks { get; }

    internal Histogram<double> PublishDuration { get; }

    internal Histogram<double> QueueWait { get; }

    internal UpDownCounter<long> InFlight { get; }

    internal ObservableGauge<long> QueueDepth { get; }

    /// <summary>A shared instance for code that has no host (one meter per process).</summary>
    public static ConveyorDiagnostics Shared { get; } = new();

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_ownsMeter)
        {
            _meter.Dispose();
        }
    }

    internal void RecordQueueSample(QueueStatistics statistics) => _queueSamples[statistics.Queue] = statistics;

    internal void RemoveQueueSample(string queue) => _queueSamples.TryRemove(queue, out _);

    private IEnumerable<Measurement<long>> ObserveQueueDepth()
    {
        foreach (var sample in _queueSamples.Values)
        {
            var queue = new KeyValuePair<string, object?>("messaging.destination.name", sample.Queue);
            yield return new Measurement<long>(sample.Ready, queue, new("conveyor.queue.state", "ready"));
            yield return new Measurement<long>(sample.Delayed, queue, new("conveyor.queue.state", "delayed"));
            yield return new Measurement<long>(sample.InFlight, queue, new("conveyor.queue.state", "in_flight"));
            yield return new Measurement<long>(sample.DeadLettered, queue, new("conveyor.queue.state", "dead_lettered"));
        }
    }

    internal static void InjectContext(Activity? activity, Signature signature)
    {
        if (activity is null)
        {
            return;
        }

        DistributedContextPropagator.Current.Inject(activity, signature, static (carrier, key, value) =>
        {
            if (carrier is Signature s)
            {
                s.Headers[key] = value;
            }
        });
    }

    internal static ActivityContext ExtractContext(Signature signature)
    {
        if (signature.HeadersOrNull is null)
        {
            return default;
        }

        DistributedContextPropagator.Current.ExtractTraceIdAndState(signature, static (object? carrier, string name, out string? value, out IEnumerable<string>? values) =>
        {
            values = null;
            value = (carrier as Signature)?.GetHeader(name);
        }, out var traceParent, out var traceState);
        return ActivityContext.TryParse(traceParent, traceState, isRemote: true, out var context) ? context : default;
    }

    /// <summary>The W3C <c>traceparent</c> of a span, or <see langword="null"/> when there is none to link to.</summary>
    internal static string? TraceParentOf(Activity? activity) =>
        activity is { IdFormat: ActivityIdFormat.W3C } ? activity.Id : null;

    /// <summary>Reads the links a chord callback carries; unparsable entries are skipped (a header is user input).</summary>
    internal static List<ActivityLink>? ReadLinks(Signature signature)
    {
        if (signature.HeadersOrNull?.GetValueOrDefault(LinksHeader) is not string header || header.Length == 0)
        {
            return null;
        }

        List<ActivityLink>? links = null;
        foreach (var range in header.AsSpan().Split(' '))
        {
            var traceParent = header[range];
            if (traceParent.Length > 0 && ActivityContext.TryParse(traceParent, null, isRemote: true, out var context))
            {
                (links ??= []).Add(new ActivityLink(context));
            }
        }

        return links;
    }

    /// <summary>When a task could first run: its ETA when later than its publish time, else its publish time.</summary>
    internal static DateTimeOffset? ReadyAt(Signature signature)
    {
        DateTimeOffset? published = signature.HeadersOrNull?.GetValueOrDefault(PublishedHeader) switch
        {
            long ms => DateTimeOffset.FromUnixTimeMilliseconds(ms),
            double ms when ms is > 0 and < 1e15 => DateTimeOffset.FromUnixTimeMilliseconds((long)ms),
            string s when long.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms),
            _ => null,
        };
        return (published, signature.Eta) switch
        {
            ({ } p, { } eta) => eta > p ? eta : p,
            ({ } p, null) => p,
            (null, { } eta) => eta,
            _ => null,
        };
    }
}
