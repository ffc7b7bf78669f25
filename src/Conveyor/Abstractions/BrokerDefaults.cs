namespace Conveyor;

/// <summary>The default paths of <see cref="IBroker"/>'s batch members, public so that a provider can fall back to them.</summary>
public static class BrokerDefaults
{
    /// <summary>Publishes every message concurrently through <see cref="IBroker.PublishAsync"/> and waits for all.</summary>
    /// <param name="broker">The broker.</param>
    /// <param name="messages">The messages.</param>
    /// <param name="cancellationToken">Cancels the publishes.</param>
    /// <returns>A task that completes when the broker holds every message (and fails with the first error).</returns>
    public static async ValueTask PublishBatchAsync(IBroker broker, IReadOnlyList<OutgoingMessage> messages, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(broker);
        ArgumentNullException.ThrowIfNull(messages);
        if (messages.Count == 1)
        {
            await broker.PublishAsync(messages[0], cancellationToken).ConfigureAwait(false);
            return;
        }

        var publishes = new Task[messages.Count];
        for (var i = 0; i < publishes.Length; i++)
        {
            publishes[i] = broker.PublishAsync(messages[i], cancellationToken).AsTask();
        }

        await Task.WhenAll(publishes).ConfigureAwait(false);
    }
}
