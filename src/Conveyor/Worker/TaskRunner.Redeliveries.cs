using Conveyor.Diagnostics;

namespace Conveyor;

internal sealed partial class TaskRunner
{
    /// <summary>
    /// The delivery count of a redelivery the broker did not count (a RabbitMQ classic queue): one first delivery
    /// and the redeliveries the result backend counted. Only redeliveries get here, so the normal path costs
    /// nothing. A backend that does not count, or fails to, leaves the broker's own figure: the task runs. Not
    /// cancelled by the hard stop, like the runner's other backend reads (the client's own timeouts bound it).
    /// </summary>
    private async ValueTask<int> CountDeliveriesAsync(IBrokerDelivery delivery, Signature signature)
    {
        try
        {
            return await _client.Backend.CountRedeliveryAsync(signature.Id).ConfigureAwait(false) is { } redeliveries
                ? 1 + redeliveries
                : delivery.DeliveryCount;
        }
        catch (Exception ex)
        {
            Log.RedeliveryCountFailed(_logger, ex, delivery.Queue, signature.Id);
            return delivery.DeliveryCount;
        }
    }
}
