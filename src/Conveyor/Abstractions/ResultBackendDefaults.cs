namespace Conveyor;

/// <summary>
/// The default batch paths of <see cref="IResultBackend"/>, for a backend that overrides them for some batches (for
/// a broker on its own engine) and takes the default for the rest.
/// </summary>
public static class ResultBackendDefaults
{
    /// <summary>Stores the batch's states with <see cref="IResultBackend.SetStatesAsync"/>; acknowledges nothing.</summary>
    /// <param name="backend">The backend.</param>
    /// <param name="batch">The steps, in order.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when every state is stored.</returns>
    public static async ValueTask SettleAsync(IResultBackend backend, IReadOnlyList<Settlement> batch, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(batch);
        var states = new List<TaskStateRecord>(batch.Count);
        foreach (var step in batch)
        {
            if (step.State is { } state)
            {
                states.Add(state);
            }
        }

        if (states.Count > 0)
        {
            await backend.SetStatesAsync(states, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Stores the PENDING states with <see cref="IResultBackend.SetStatesAsync"/>, then publishes the messages concurrently.</summary>
    /// <param name="backend">The backend.</param>
    /// <param name="broker">The broker.</param>
    /// <param name="batch">The publishes.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when every message is enqueued.</returns>
    public static async ValueTask EnqueueAsync(IResultBackend backend, IBroker broker, IReadOnlyList<PendingPublish> batch, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentNullException.ThrowIfNull(broker);
        ArgumentNullException.ThrowIfNull(batch);
        if (batch.Count == 1)
        {
            await backend.SetStateAsync(batch[0].State, cancellationToken).ConfigureAwait(false);
            await broker.PublishAsync(batch[0].Message, cancellationToken).ConfigureAwait(false);
            return;
        }

        var states = new TaskStateRecord[batch.Count];
        for (var i = 0; i < states.Length; i++)
        {
            states[i] = batch[i].State;
        }

        await backend.SetStatesAsync(states, cancellationToken).ConfigureAwait(false);
        var messages = new OutgoingMessage[batch.Count];
        for (var i = 0; i < messages.Length; i++)
        {
            messages[i] = batch[i].Message;
        }

        await broker.PublishBatchAsync(messages, cancellationToken).ConfigureAwait(false);
    }
}
