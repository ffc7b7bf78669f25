namespace Conveyor;

/// <summary>
/// Named, leased locks with fencing tokens, and named monotonic fences, shared by processes. The periodic scheduler
/// claims each tick through a fence (<see cref="TryAdvanceFenceAsync"/>).
/// </summary>
public interface IDistributedLock
{
    /// <summary>Tries to take a lock for a time; returns at once.</summary>
    /// <param name="name">The lock name.</param>
    /// <param name="lease">How long the lock holds unless renewed.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The lease, or <see langword="null"/> when another holder has it.</returns>
    ValueTask<ILockLease?> TryAcquireAsync(string name, TimeSpan lease, CancellationToken cancellationToken = default);

    /// <summary>
    /// Atomically records <paramref name="token"/> as the fence of <paramref name="name"/> when it is greater than
    /// the one recorded (or none is): a monotonic claim. Of any number of concurrent callers, in any number of
    /// processes, with the same token, exactly one gets <see langword="true"/>; a token at or below the recorded one
    /// is always refused, so a caller that paused or fell behind can never claim an older token. Fences have no
    /// lease and are not tied to <see cref="TryAcquireAsync"/>'s locks of the same name; one small record per name
    /// is kept for good.
    /// </summary>
    /// <param name="name">The fence name.</param>
    /// <param name="token">The token to record, for example a tick time in Unix milliseconds.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns><see langword="true"/> for the one call that advanced the fence to <paramref name="token"/>.</returns>
    ValueTask<bool> TryAdvanceFenceAsync(string name, long token, CancellationToken cancellationToken = default);

    /// <summary>Reads the token last recorded by <see cref="TryAdvanceFenceAsync"/>.</summary>
    /// <param name="name">The fence name.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The recorded token, or <see langword="null"/> when the fence was never advanced.</returns>
    ValueTask<long?> ReadFenceAsync(string name, CancellationToken cancellationToken = default);
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
