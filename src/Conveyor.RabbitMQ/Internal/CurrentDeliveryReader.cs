using System.Diagnostics.CodeAnalysis;
using System.Threading.Channels;

namespace Conveyor.RabbitMQ.Internal;

/// <summary>
/// The consumer's deliveries as the worker reads them, minus those received on a channel that has closed since.
/// </summary>
/// <remarks>
/// When the connection drops, RabbitMQ requeues every unacked delivery and, once the client recovers, delivers them
/// again on the new channel. The copies still buffered here (up to the prefetch count) would then run twice, and
/// their acks could never reach the server anyway (their tags belong to the dead channel). So a delivery is
/// dropped on read when its epoch is over: the redelivered copy is the one that runs. A delivery the worker had
/// already taken before the loss is not recalled: it runs to its end, its ack is refused as stale, and the
/// redelivered copy runs again (at-least-once: only the broker's redelivery can settle it now).
/// </remarks>
internal sealed class CurrentDeliveryReader(ChannelReader<IBrokerDelivery> inner, Func<IBrokerDelivery, bool> dropIfStale) : ChannelReader<IBrokerDelivery>
{
    public override Task Completion => inner.Completion;

    public override bool CanCount => inner.CanCount;

    public override int Count => inner.Count;

    public override bool TryRead([MaybeNullWhen(false)] out IBrokerDelivery item)
    {
        while (inner.TryRead(out item))
        {
            if (!dropIfStale(item))
            {
                return true;
            }
        }

        return false;
    }

    public override ValueTask<bool> WaitToReadAsync(CancellationToken cancellationToken = default) => inner.WaitToReadAsync(cancellationToken);
}
