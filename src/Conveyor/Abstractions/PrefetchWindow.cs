using System.Threading.Channels;

namespace Conveyor;

/// <summary>
/// The consumer side of a broker that fetches on its own (SQLite, Redis, SQS, in-memory): at most
/// <see cref="Prefetch"/> deliveries are held between fetch and settlement, and the fetched ones wait in a bounded
/// channel for the worker's runners. The fetch loop asks <see cref="WaitForRoomAsync"/> how many to fetch, adds each
/// delivery with <see cref="TryAdd"/>, and every settlement gives its credit back with <see cref="Release"/>.
/// </summary>
/// <remarks>
/// Credits are held until a delivery is settled, not only until it is read, so a slow handler holds its message and
/// nothing more is fetched on its behalf. Under load the loop fetches in batches: while deliveries are still
/// buffered it waits until <c>refillBatch</c> credits are free, rather than one fetch per settled message; when the
/// buffer runs dry any free credit is worth a fetch, or the runners starve.
/// </remarks>
/// <typeparam name="T">The delivery.</typeparam>
public sealed class PrefetchWindow<T>
    where T : class
{
    private readonly Channel<T> _buffer;
    private readonly int _refillBatch;
    private TaskCompletionSource _freed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _held;
    private int _nudged;

    /// <summary>Creates a window.</summary>
    /// <param name="prefetch">Deliveries held at most, fetched but not settled.</param>
    /// <param name="refillBatch">Free credits to wait for before fetching again while deliveries are buffered.</param>
    public PrefetchWindow(int prefetch, int refillBatch)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(prefetch, 1);
        Prefetch = prefetch;
        _refillBatch = Math.Clamp(refillBatch, 1, prefetch);

        // Never full in practice: a delivery is added only against a credit, so the buffer holds at most Prefetch.
        _buffer = Channel.CreateBounded<T>(new BoundedChannelOptions(prefetch)
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleWriter = true,
            AllowSynchronousContinuations = false,
        });
    }

    /// <summary>Deliveries held at most.</summary>
    public int Prefetch { get; }

    /// <summary>Deliveries held now: fetched and not yet released.</summary>
    public int Held => Volatile.Read(ref _held);

    /// <summary>The fetched deliveries, in fetch order, for the worker's runners.</summary>
    public ChannelReader<T> Reader => _buffer.Reader;

    /// <summary>
    /// Waits until a fetch is worth making and returns how many deliveries it may bring (at most
    /// <paramref name="maxBatch"/>); returns 0 early after <see cref="Nudge"/>, so the loop can do other work first.
    /// </summary>
    /// <param name="maxBatch">The most one fetch may bring.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>The number of deliveries to fetch, or 0 after a nudge.</returns>
    public async ValueTask<int> WaitForRoomAsync(int maxBatch, CancellationToken cancellationToken)
    {
        while (true)
        {
            var freed = Volatile.Read(ref _freed);
            if (freed.Task.IsCompleted)
            {
                // Consumed: the next release or nudge completes a fresh one. Read after this swap, so a release
                // that lands in between is seen either in the count or through the new source.
                // (A full fence, so the count below is not read before the new source is visible to Release.)
                freed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                Interlocked.Exchange(ref _freed, freed);
            }

            if (Interlocked.Exchange(ref _nudged, 0) == 1)
            {
                return 0;
            }

            var free = Prefetch - Volatile.Read(ref _held);
            if (free > 0 && (free >= _refillBatch || _buffer.Reader.Count == 0))
            {
                return Math.Min(free, maxBatch);
            }

            await freed.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Adds a fetched delivery against one credit.</summary>
    /// <param name="delivery">The delivery.</param>
    /// <returns>False once the window is completed (the caller still holds the delivery and must hand it back).</returns>
    public bool TryAdd(T delivery)
    {
        // Counted first, so a runner that settles it at once never takes the count below zero.
        Interlocked.Increment(ref _held);
        if (_buffer.Writer.TryWrite(delivery))
        {
            return true;
        }

        Interlocked.Decrement(ref _held);
        return false;
    }

    /// <summary>A delivery was settled (acknowledged, released or dead-lettered): its credit returns. Once per delivery.</summary>
    public void Release()
    {
        Interlocked.Decrement(ref _held);
        Volatile.Read(ref _freed).TrySetResult();
    }

    /// <summary>Makes a pending <see cref="WaitForRoomAsync"/> return 0 (for example to reconcile after an error).</summary>
    public void Nudge()
    {
        Volatile.Write(ref _nudged, 1);
        Volatile.Read(ref _freed).TrySetResult();
    }

    /// <summary>No more deliveries: the runners finish what is buffered and then see the end.</summary>
    public void Complete() => _buffer.Writer.TryComplete();
}
