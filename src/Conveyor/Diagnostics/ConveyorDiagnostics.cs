using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Conveyor.Diagnostics;

/// <summary>
/// Conveyor's telemetry: one ActivitySource and one Meter, both named <c>"Conveyor"</c>. Spans follow the
/// OpenTelemetry messaging conventions; the W3C trace context travels in the signature's headers, so a chain
/// or chord is one trace across processes.
/// </summary>
public sealed class ConveyorDiagnostics : IDisposable
{
    /// <summary>The name of the ActivitySource and the Meter.</summary>
    public const string Name = "Conveyor";

    internal static readonly ActivitySource ActivitySource = new(Name, typeof(ConveyorDiagnostics).Assembly.GetName().Version?.ToString());

    private readonly Meter _meter;
    private readonly bool _ownsMeter;

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
        ProcessDuration = _meter.CreateHistogram<double>("messaging.process.duration", "s", "How long a task's handler ran.");
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
}
