using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace Conveyor.Hosting;

/// <summary>Healthy when the broker answers a statistics request for the default queue; reports its counts.</summary>
internal sealed class BrokerHealthCheck(IBroker broker, IOptions<ConveyorOptions> options) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var queue = options.Value.DefaultQueue;
        try
        {
            var statistics = await broker.GetQueueStatisticsAsync(queue, cancellationToken).ConfigureAwait(false);
            return HealthCheckResult.Healthy($"queue {queue}: {statistics.Ready} ready", new Dictionary<string, object>
            {
                ["queue"] = queue,
                ["ready"] = statistics.Ready,
                ["delayed"] = statistics.Delayed,
                ["in_flight"] = statistics.InFlight,
                ["dead_lettered"] = statistics.DeadLettered,
            });
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return new HealthCheckResult(context.Registration.FailureStatus, $"broker unreachable: {ex.Message}", ex);
        }
    }
}

/// <summary>Healthy when the result backend answers a read.</summary>
internal sealed class ResultBackendHealthCheck(IResultBackend backend) : IHealthCheck
{
    // A task id no producer makes (not a UUID): the read costs one round trip and finds nothing.
    private const string ProbeTaskId = "conveyor-health-probe";

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        try
        {
            await backend.GetStateAsync(ProbeTaskId, cancellationToken).ConfigureAwait(false);
            return HealthCheckResult.Healthy("result backend answered");
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            return new HealthCheckResult(context.Registration.FailureStatus, $"result backend unreachable: {ex.Message}", ex);
        }
    }
}
