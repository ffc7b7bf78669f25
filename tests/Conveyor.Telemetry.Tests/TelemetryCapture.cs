using System.Diagnostics;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace Conveyor.Telemetry.Tests;

/// <summary>
/// What one process's OpenTelemetry SDK exports, in memory: a tracer provider and a meter provider, each set up
/// with <c>AddConveyorInstrumentation()</c> only. Both listen by name ("Conveyor"), so in one test process they
/// also see the other simulated process's spans and measurements: assertions select by ids and tags.
/// </summary>
public sealed class TelemetryCapture : IDisposable
{
    private readonly LockedCollection<Activity> _spans = new();
    private readonly LockedCollection<MetricSnapshot> _metrics = new();
    private readonly TracerProvider _tracerProvider;
    private readonly MeterProvider _meterProvider;

    public TelemetryCapture()
    {
        _tracerProvider = Sdk.CreateTracerProviderBuilder()
            .AddConveyorInstrumentation()
            .AddInMemoryExporter(_spans)
            .Build();
        _meterProvider = Sdk.CreateMeterProviderBuilder()
            .AddConveyorInstrumentation()
            .AddInMemoryExporter(_metrics)
            .Build();
    }

    /// <summary>The spans exported so far (a copy).</summary>
    public IReadOnlyList<Activity> Spans => _spans.Snapshot();

    /// <summary>Collects every instrument now and returns the snapshots of this collection.</summary>
    public IReadOnlyList<MetricSnapshot> CollectMetrics()
    {
        lock (_metrics)
        {
            _metrics.Clear();
            Assert.True(_meterProvider.ForceFlush(10_000), "the meter provider did not flush within 10 s");
            return _metrics.Snapshot();
        }
    }

    public void Dispose()
    {
        _tracerProvider.Dispose();
        _meterProvider.Dispose();
    }
}
