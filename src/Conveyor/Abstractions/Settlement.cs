namespace Conveyor;

/// <summary>
/// One step of a batch that a worker settles: a state to store and, once it and every state before it in the batch
/// are stored, a delivery to acknowledge. Either part may be absent (a task's RECEIVED has no acknowledgement).
/// </summary>
/// <param name="State">The state to store, or <see langword="null"/>.</param>
/// <param name="Ack">The delivery to acknowledge after the states, or <see langword="null"/>.</param>
public readonly record struct Settlement(TaskStateRecord? State, IBrokerDelivery? Ack);

/// <summary>A message to enqueue together with its task's PENDING state, which is stored first.</summary>
/// <param name="State">The PENDING state.</param>
/// <param name="Message">The message.</param>
public sealed record PendingPublish(TaskStateRecord State, OutgoingMessage Message);
