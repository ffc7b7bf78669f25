using System.Threading.Channels;

namespace Conveyor.Internal;

/// <summary>
/// Group commit: callers add items to a bounded channel; one loop takes whatever is waiting (up to a batch size)
/// and writes it with one call, while the next items gather behind it. Nothing waits for a batch to fill: under
/// low load a batch is one item and costs one hop; under load the batches grow by themselves, and the round trips
/// per item fall.
/// </summary>
/// <typeparam name="T">The item.</typeparam>
internal sealed class GroupCommitQueue<T> : IAsyncDisposable
{
    private readonly Channel<Entry> _channel;
    private readonly Func<List<T>, CancellationToken, ValueTask> _write;
    private readonly int _maxBatch;
    private readonly SemaphoreSlim _writes;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private readonly int _maxWritesInFlight;
    private readonly InlineStart _inlineStart;
    private volatile bool _completed;
    private int _lastBatch;

    /// <summary>Starts the loop.</summary>
    /// <param name="write">Writes one batch; an exception fails the batch's waiting callers.</param>
    /// <param name="capacity">Items waiting at most; adding more waits (backpressure on the callers).</param>
    /// <param name="maxBatch">Items per write at most.</param>
    /// <param name="maxWritesInFlight">Writes at once: 1 keeps batches in order (a task's STARTED before its SUCCESS).</param>
    /// <param name="inlineStart">
    /// When a caller that finds nothing queued and a write slot free starts its one-item batch itself (see
    /// <see cref="TryStartWriteInline"/>): a thread hop less per item under low load.
    /// </param>
    public GroupCommitQueue(Func<List<T>, CancellationToken, ValueTask> write, int capacity, int maxBatch, int maxWritesInFlight = 1, InlineStart inlineStart = InlineStart.Never)
    {
        _inlineStart = inlineStart;
        _write = write;
        _maxBatch = maxBatch;
        _writes = new SemaphoreSlim(maxWritesInFlight, maxWritesInFlight);
        _maxWritesInFlight = maxWritesInFlight;
        _channel = Channel.CreateBounded<Entry>(new BoundedChannelOptions(capacity)
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleReader = true,
            AllowSynchronousContinuations = false,
        });
        _loop = Task.Run(() => RunAsync(_stop.Token));
    }

    /// <summary>Adds an item; the returned task completes when the item's batch is written (or fails with it).</summary>
    /// <param name="item">The item.</param>
    /// <param name="cancellationToken">Cancels waiting for room in the channel (not the write).</param>
    /// <returns>The item's write.</returns>
    public async Task AddAndWaitAsync(T item, CancellationToken cancellationToken)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!TryStartWriteInline(item, done))
        {
            await _channel.Writer.WriteAsync(new Entry(item, done), cancellationToken).ConfigureAwait(false);
        }

        await done.Task.ConfigureAwait(false);
    }

    /// <summary>Writes in flight now (for tests: a write's slot is given back just after its callers learn it ended).</summary>
    internal int WritesInFlight => _maxWritesInFlight - _writes.CurrentCount;

    /// <summary>Adds an item without waiting for its write (only for room in the channel).</summary>
    /// <param name="item">The item.</param>
    /// <param name="cancellationToken">Cancels waiting for room.</param>
    /// <returns>A task that completes when the item is queued.</returns>
    public ValueTask AddAsync(T item, CancellationToken cancellationToken)
    {
        return TryStartWriteInline(item, null) || _channel.Writer.TryWrite(new Entry(item, null))
            ? ValueTask.CompletedTask
            : _channel.Writer.WriteAsync(new Entry(item, null), cancellationToken);
    }

    /// <summary>
    /// Under low load nothing is queued and no write is in flight: then the caller starts a batch of its one item
    /// itself, up to the write's first await, rather than waking the loop for it (a thread hop on the latency path).
    /// Order holds: the loop reads items only while it holds a write slot, so with the slot taken here and nothing
    /// queued, no earlier item is unwritten.
    /// </summary>
    private bool TryStartWriteInline(T item, TaskCompletionSource? done)
    {
        var allowed = _inlineStart == InlineStart.Always || (_inlineStart == InlineStart.WhenIdle && Volatile.Read(ref _lastBatch) <= 1);
        if (!allowed || _completed || _channel.Reader.Count != 0 || !_writes.Wait(0))
        {
            return false;
        }

        if (_completed || _channel.Reader.Count != 0)
        {
            _writes.Release();
            return false;
        }

        _ = WriteAsync([item], done is null ? [] : [done], _stop.Token);
        return true;
    }

    /// <summary>Writes what is queued, then ends the loop.</summary>
    /// <returns>A task that completes when the loop ended.</returns>
    public async Task CompleteAsync()
    {
        _completed = true;
        _channel.Writer.TryComplete();
        await _loop.ConfigureAwait(false);
    }

    /// <summary>Ends the loop now: queued items are dropped and their waiting callers cancelled.</summary>
    /// <returns>A task that completes when the loop ended.</returns>
    public async ValueTask DisposeAsync()
    {
        _completed = true;
        _channel.Writer.TryComplete();
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await _loop.ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }

        while (_channel.Reader.TryRead(out var entry))
        {
            entry.Done?.TrySetCanceled();
        }

        _stop.Dispose();
    }

    private async Task RunAsync(CancellationToken token)
    {
        var reader = _channel.Reader;
        var writes = new List<Task>();
        try
        {
            while (await reader.WaitToReadAsync(token).ConfigureAwait(false))
            {
                await _writes.WaitAsync(token).ConfigureAwait(false);
                var items = new List<T>(Math.Min(reader.Count, _maxBatch));
                var waiting = new List<TaskCompletionSource>();
                while (items.Count < _maxBatch && reader.TryRead(out var entry))
                {
                    items.Add(entry.Item);
                    if (entry.Done is not null)
                    {
                        waiting.Add(entry.Done);
                    }
                }

                writes.Add(WriteAsync(items, waiting, token));
                writes.RemoveAll(static w => w.IsCompleted);
            }
        }
        finally
        {
            await Task.WhenAll(writes).ConfigureAwait(false);

            // Writes started inline are not in the list: each holds a slot until it ends.
            for (var i = 0; i < _maxWritesInFlight; i++)
            {
                await _writes.WaitAsync(CancellationToken.None).ConfigureAwait(false);
            }
        }
    }

    private async Task WriteAsync(List<T> items, List<TaskCompletionSource> waiting, CancellationToken token)
    {
        Volatile.Write(ref _lastBatch, items.Count);
        try
        {
            await _write(items, token).ConfigureAwait(false);
            foreach (var done in waiting)
            {
                done.TrySetResult();
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            foreach (var done in waiting)
            {
                done.TrySetCanceled(token);
            }
        }
        catch (Exception ex)
        {
            foreach (var done in waiting)
            {
                done.TrySetException(ex);
            }
        }
        finally
        {
            _writes.Release();
        }
    }

    private readonly record struct Entry(T Item, TaskCompletionSource? Done);
}

/// <summary>When a <see cref="GroupCommitQueue{T}"/> caller starts its own one-item write instead of the loop.</summary>
internal enum InlineStart
{
    /// <summary>Never: every write goes through the loop.</summary>
    Never,

    /// <summary>
    /// While the previous write carried one item (a queue at low load, where the hop is the latency): under load the
    /// writes stay batched even when they keep up with the callers (inline starts then split the batches).
    /// </summary>
    WhenIdle,

    /// <summary>Whenever nothing is queued and a write slot is free, at the price of smaller batches when the writes keep up.</summary>
    Always,
}
