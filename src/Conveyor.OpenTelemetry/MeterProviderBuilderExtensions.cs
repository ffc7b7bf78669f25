using Conveyor.Diagnostics;

namespace OpenTelemetry.Metrics;

/// <summary>Registers Conveyor's instruments with an OpenTelemetry meter provider.</summary>
public static class ConveyorMeterProviderBuilderExtensions
{
    /// <summary>
    /// Adds Conveyor's Meter (<c>"Conveyor"</c>, every instance of it): published, consumed, succeeded, failed,
    /// retried and dead-lettered counts, processing, publish and queue-wait durations, the in-flight count and the
    /// sampled queue depth (see <see cref="ConveyorDiagnostics"/>).
    /// </summary>
    /// <param name="builder">The meter provider builder.</param>
    /// <returns>The same builder.</returns>
    public static MeterProviderBuilder AddConveyorInstrumentation(this MeterProviderBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.AddMeter(ConveyorDiagnostics.Name);
    }
}
