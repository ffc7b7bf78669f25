using Conveyor.Hosting;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Health checks for Conveyor's broker and result backend.</summary>
public static class ConveyorHealthChecksBuilderExtensions
{
    /// <summary>The name of the broker's check.</summary>
    public const string BrokerCheckName = "conveyor-broker";

    /// <summary>The name of the result backend's check.</summary>
    public const string ResultBackendCheckName = "conveyor-result-backend";

    /// <summary>
    /// Adds two checks: <c>conveyor-broker</c> (the broker answers a statistics request for the default queue) and
    /// <c>conveyor-result-backend</c> (the backend answers a read). Needs <c>AddConveyor()</c>.
    /// </summary>
    /// <param name="builder">The health checks builder.</param>
    /// <param name="failureStatus">What a failed check reports. The default value is <see cref="HealthStatus.Unhealthy"/>.</param>
    /// <param name="tags">Tags for filtering (readiness, liveness); none when <see langword="null"/>.</param>
    /// <param name="timeout">How long a check may take. The default value is 5 seconds.</param>
    /// <returns>The builder.</returns>
    public static IHealthChecksBuilder AddConveyor(
        this IHealthChecksBuilder builder,
        HealthStatus? failureStatus = null,
        IEnumerable<string>? tags = null,
        TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var limit = timeout ?? TimeSpan.FromSeconds(5);
        builder.Add(new HealthCheckRegistration(
            BrokerCheckName,
            static sp => ActivatorUtilities.CreateInstance<BrokerHealthCheck>(sp),
            failureStatus,
            tags,
            limit));
        builder.Add(new HealthCheckRegistration(
            ResultBackendCheckName,
            static sp => ActivatorUtilities.CreateInstance<ResultBackendHealthCheck>(sp),
            failureStatus,
            tags,
            limit));
        return builder;
    }
}
