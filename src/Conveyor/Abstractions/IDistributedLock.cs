namespace Conveyor;

/// <summary>A named, leased lock shared by processes (used by the periodic scheduler).</summary>
public interface IDistributedLock
{
    /// <summary>Tries to take a lock for a time; returns at once.</summary>
    /// <param name="name">The lock name.</param>
    /// <param name="lease">How long the lock holds unless renewed.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The lease, or <see langword="null"/> when another holder has it.</returns>
    ValueTask<ILockLease?> TryAcquireAsync(string name, TimeSpan lease, CancellationToken cancellationToken = default);
}

/// <summary>A held lock. Disposing releases it, if it is still held.</summary>
public interface ILockLease : IAsyncDisposable
{
    /// <summary>The lock name.</summary>
    string Name { get; }

    /// <summary>
    /// A number that grows with every acquisition of this lock. A holder passes it along with its writes so that a
    /// store can refuse a write from a holder whose lease has passed to another (fencing).
    /// </summary>
    long FencingToken { get; }

    /// <summary>Extends the lease, if this holder still has it.</summary>
    /// <param name="lease">The new lease length from now.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns><see langword="true"/> when the lease was extended; <see langword="false"/> when it was lost.</returns>
    ValueTask<bool> RenewAsync(TimeSpan lease, CancellationToken cancellationToken = default);
}
