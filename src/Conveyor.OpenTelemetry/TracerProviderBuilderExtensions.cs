using Conveyor.Diagnostics;

namespace OpenTelemetry.Trace;

/// <summary>Registers Conveyor's spans with an OpenTelemetry tracer provider.</summary>
public static class ConveyorTracerProviderBuilderExtensions
{
    /// <summary>
    /// Adds Conveyor's ActivitySource (<c>"Conveyor"</c>): a producer span per publish (<c>send {queue}</c>) and a
    /// consumer span per task run (<c>process {queue}</c>), parented across processes through the W3C trace context
    /// in the message headers; a chord callback's spans link to each member's process span.
    /// </summary>
    /// <param name="builder">The tracer provider builder.</param>
    /// <returns>The same builder.</returns>
    public static TracerProviderBuilder AddConveyorInstrumentation(this TracerProviderBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.AddSource(ConveyorDiagnostics.Name);
    }
}
