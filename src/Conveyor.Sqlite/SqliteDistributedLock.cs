using Conveyor.Sqlite.Internal;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Conveyor.Sqlite;

/// <summary>
/// Leased, named locks in a SQLite database file, shared by every process that opens the same file. Each
/// acquisition gets a fencing token one higher than the last one of that lock (a released lock keeps its row, so
/// the tokens keep growing). Acquiring, renewing and releasing are each one write transaction. Fences (the
/// scheduler's tick claims) are one row each in the counters table, advanced by one conditional upsert.
/// </summary>
public sealed class SqliteDistributedLock : IDistributedLock, IAsyncDisposable
{
    private readonly SqliteStore _store;
    private readonly TimeProvider _time;
    private int _disposed;

    /// <summary>Creates the lock store. Does no I/O: the database is opened (and its schema created) on first use.</summary>
    /// <param name="options">The settings; <see cref="SqliteConveyorOptions.DatabasePath"/> is required.</param>
    /// <param name="timeProvider">The clock for leases; the system clock when <see langword="null"/>.</param>
    /// <param name="loggerFactory">Logging; none when <see langword="null"/>.</param>
    public SqliteDistributedLock(SqliteConveyorOptions options, TimeProvider? timeProvider = null, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _time = timeProvider ?? TimeProvider.System;
        _store = SqliteStore.Acquire(options, _time, loggerFactory ?? NullLoggerFactory.Instance);
    }

    private long NowMs => _time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <inheritdoc/>
    public async ValueTask<ILockLease?> TryAcquireAsync(string name, TimeSpan lease, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(lease, TimeSpan.Zero);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        var owner = Guid.NewGuid().ToString("N");
        var fencing = await _store.WriteAsync((Lock: this, Name: name, Owner: owner, LeaseMs: ToMs(lease)), static (context, s) =>
        {
            var now = s.Lock.NowMs;
            long last = 0;
            using (var reader = context.Command(Sql.SelectLock).With("$name", s.Name).ExecuteReader())
            {
                if (reader.Read())
                {
                    if (!reader.IsDBNull(0) && reader.GetInt64(1) > now)
                    {
                        return 0L; // held by another, and not expired
                    }

                    last = reader.GetInt64(2);
                }
            }

            context.Command(Sql.UpsertLock)
                .With("$name", s.Name)
                .With("$owner", s.Owner)
                .With("$expires_at", now + s.LeaseMs)
                .With("$fencing", last + 1)
                .ExecuteNonQuery();
            return last + 1;
        }, cancellationToken).ConfigureAwait(false);

        return fencing == 0 ? null : new Lease(this, name, owner, fencing);
    }

    /// <inheritdoc/>
    /// <remarks>One write transaction through the process's writer; the row is the counter <c>fence:{name}</c>.</remarks>
    public async ValueTask<bool> TryAdvanceFenceAsync(string name, long token, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        return await _store.WriteAsync((Name: Sql.FencePrefix + name, Token: token), static (context, s) =>
            context.Command(Sql.AdvanceFence).With("$name", s.Name).With("$token", s.Token).ExecuteNonQuery() == 1, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public ValueTask<long?> ReadFenceAsync(string name, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        return _store.ReadAsync(Sql.FencePrefix + name, static (connection, fenceName) =>
            connection.Command(Sql.SelectFence).With("$name", fenceName).ExecuteScalarInt64(), cancellationToken);
    }

    /// <summary>Closes the database when no other component of this process uses it. Leases still held expire.</summary>
    /// <returns>A task that completes when the lock store is closed.</returns>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            await _store.ReleaseAsync().ConfigureAwait(false);
        }
    }

    private static long ToMs(TimeSpan lease) => Math.Max(1, (long)Math.Ceiling(lease.TotalMilliseconds));

    private sealed class Lease(SqliteDistributedLock store, string name, string owner, long fencingToken) : ILockLease
    {
        private int _released;

        public string Name { get; } = name;

        public long FencingToken { get; } = fencingToken;

        public async ValueTask<bool> RenewAsync(TimeSpan lease, CancellationToken cancellationToken = default)
        {
            ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(lease, TimeSpan.Zero);
            if (Volatile.Read(ref _released) != 0)
            {
                return false;
            }

            return await store._store.WriteAsync((Lease: this, LeaseMs: ToMs(lease)), static (context, s) =>
            {
                var now = s.Lease.NowMs;
                return context.Command(Sql.RenewLock)
                    .With("$name", s.Lease.Name)
                    .With("$owner", s.Lease.Owner)
                    .With("$now", now)
                    .With("$expires_at", now + s.LeaseMs)
                    .ExecuteNonQuery() == 1;
            }, cancellationToken).ConfigureAwait(false);
        }

        public async ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref _released, 1) != 0 || Volatile.Read(ref store._disposed) != 0)
            {
                return;
            }

            await store._store.WriteAsync((Name, Owner), static (context, s) =>
                context.Command(Sql.ReleaseLock).With("$name", s.Name).With("$owner", s.Owner).ExecuteNonQuery(), CancellationToken.None).ConfigureAwait(false);
        }

        private string Owner { get; } = owner;

        private long NowMs => store.NowMs;
    }
}
