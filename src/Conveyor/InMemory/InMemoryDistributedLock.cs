namespace Conveyor.InMemory;

/// <summary>A leased lock inside one process, with fencing tokens, on the injected clock.</summary>
public sealed class InMemoryDistributedLock : IDistributedLock
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, (Guid Owner, DateTimeOffset ExpiresAt)> _holders = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _fences = new(StringComparer.Ordinal);
    private readonly TimeProvider _time;
    private long _fencing;

    /// <summary>Creates the lock store.</summary>
    /// <param name="timeProvider">The clock for leases; the system clock when <see langword="null"/>.</param>
    public InMemoryDistributedLock(TimeProvider? timeProvider = null) => _time = timeProvider ?? TimeProvider.System;

    /// <inheritdoc/>
    public ValueTask<ILockLease?> TryAcquireAsync(string name, TimeSpan lease, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(lease, TimeSpan.Zero);
        lock (_gate)
        {
            var now = _time.GetUtcNow();
            if (_holders.TryGetValue(name, out var holder) && holder.ExpiresAt > now)
            {
                return ValueTask.FromResult<ILockLease?>(null);
            }

            var owner = Guid.NewGuid();
            _holders[name] = (owner, now + lease);
            return ValueTask.FromResult<ILockLease?>(new Lease(this, name, owner, ++_fencing));
        }
    }

    /// <inheritdoc/>
    public ValueTask<bool> TryAdvanceFenceAsync(string name, long token, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        cancellationToken.ThrowIfCancellationRequested();
        lock (_gate)
        {
            if (_fences.TryGetValue(name, out var recorded) && recorded >= token)
            {
                return ValueTask.FromResult(false);
            }

            _fences[name] = token;
            return ValueTask.FromResult(true);
        }
    }

    /// <inheritdoc/>
    public ValueTask<long?> ReadFenceAsync(string name, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        cancellationToken.ThrowIfCancellationRequested();
        lock (_gate)
        {
            return ValueTask.FromResult<long?>(_fences.TryGetValue(name, out var recorded) ? recorded : null);
        }
    }

    private bool Renew(string name, Guid owner, TimeSpan lease)
    {
        lock (_gate)
        {
            var now = _time.GetUtcNow();
            if (_holders.TryGetValue(name, out var holder) && holder.Owner == owner && holder.ExpiresAt > now)
            {
                _holders[name] = (owner, now + lease);
                return true;
            }

            return false;
        }
    }

    private void Release(string name, Guid owner)
    {
        lock (_gate)
        {
            if (_holders.TryGetValue(name, out var holder) && holder.Owner == owner)
            {
                _holders.Remove(name);
            }
        }
    }

    private sealed class Lease(InMemoryDistributedLock store, string name, Guid owner, long fencingToken) : ILockLease
    {
        public string Name { get; } = name;

        public long FencingToken { get; } = fencingToken;

        public ValueTask<bool> RenewAsync(TimeSpan lease, CancellationToken cancellationToken = default)
        {
            ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(lease, TimeSpan.Zero); // as SQLite and Redis refuse it
            return ValueTask.FromResult(store.Renew(Name, owner, lease));
        }

        public ValueTask DisposeAsync()
        {
            store.Release(Name, owner);
            return ValueTask.CompletedTask;
        }
    }
}
