using System.Threading.Channels;

namespace Conveyor.Pipelines;

/// <summary>
/// Group commit for a pipeline stage: callers submit items and await their own; one loop takes whatever is waiting
/// (up to <see cref="MaxBatchSize"/>) and writes it in one call, so that under load many tasks share one round trip
/// and a lone item is written at once. The items of one batch, and the batches, are written in submission order,
/// and a failed write fails every item of its batch. Back-pressure comes from a bounded channel that waits when
/// full.
/// </summary>
/// <typeparam name="T">What is written.</typeparam>
public sealed class BatchingWriter<T> : IAsyncDisposable
{
    private readonly Channel<Entry> _channel;
    private readonly Func<IReadOnlyList<T>, CancellationToken, ValueTask> _write;
    private readonly Task _loop;
    private long _batches;

    /// <summary>Starts the writer's loop.</summary>
    /// <param name="write">Writes one batch; it completes when the whole batch is stored.</param>
    /// <param name="maxBatchSize">The most items written in one call. The default value is 256.</param>
    /// <param name="capacity">How many items may wait before <see cref="WriteAsync(T, CancellationToken)"/> waits too. The default value is 4096.</param>
    public BatchingWriter(Func<IReadOnlyList<T>, CancellationToken, ValueTask> write, int maxBatchSize = 256, int capacity = 4096)
    {
        ArgumentNullException.ThrowIfNull(write);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBatchSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _write = write;
        MaxBatchSize = maxBatchSize;
        _channel = Channel.CreateBounded<Entry>(new BoundedChannelOptions(capacity)
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleReader = true,
            AllowSynchronousContinuations = false,
        });
        _loop = Task.Run(RunAsync);
    }

    /// <summary>The most items written in one call.</summary>
    public int MaxBatchSize { get; }

    /// <summary>Batches written so far (for tests and diagnostics).</summary>
    public long Batches => Interlocked.Read(ref _batches);

    /// <summary>Submits an item and waits until the batch it went into is written.</summary>
    /// <param name="item">The item.</param>
    /// <param name="cancellationToken">Cancels the wait for room in the channel; once queued, the item is written.</param>
    /// <returns>A task that completes when the item is stored, or fails with the batch's error.</returns>
    public async ValueTask WriteAsync(T item, CancellationToken cancellationToken = default)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await _channel.Writer.WriteAsync(new Entry(item, done), cancellationToken).ConfigureAwait(false);
        await done.Task.ConfigureAwait(false);
    }

    /// <summary>
    /// Submits two items in this order and waits until the second is written, which means the first is too (it
    /// went into the same batch or an earlier one).
    /// </summary>
    /// <param name="first">The first item.</param>
    /// <param name="second">The second item.</param>
    /// <param name="cancellationToken">Cancels the wait for room in the channel.</param>
    /// <returns>A task that completes when both are stored.</returns>
    public async ValueTask WritePairAsync(T first, T second, CancellationToken cancellationToken = default)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await _channel.Writer.WriteAsync(new Entry(first, null), cancellationToken).ConfigureAwait(false);
        await _channel.Writer.WriteAsync(new Entry(second, done), cancellationToken).ConfigureAwait(false);
        await done.Task.ConfigureAwait(false);
    }

    /// <summary>Writes what was submitted, then stops the loop. Submitting afterwards fails.</summary>
    /// <returns>A task that completes when the loop has ended.</returns>
    public async ValueTask DisposeAsync()
    {
        _channel.Writer.TryComplete();
        await _loop.ConfigureAwait(false);
    }

    private async Task RunAsync()
    {
        var reader = _channel.Reader;
        var items = new List<T>(MaxBatchSize);
        var waiters = new List<TaskCompletionSource>(MaxBatchSize);
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            while (items.Count < MaxBatchSize && reader.TryRead(out var entry))
            {
                items.Add(entry.Item);
                if (entry.Done is not null)
                {
                    waiters.Add(entry.Done);
                }
            }

            try
            {
                await _write(items, CancellationToken.None).ConfigureAwait(false);
                Interlocked.Increment(ref _batches);
                foreach (var waiter in waiters)
                {
                    waiter.TrySetResult();
                }
            }
            catch (Exception ex)
            {
                foreach (var waiter in waiters)
                {
                    waiter.TrySetException(ex);
                }
            }

            items.Clear();
            waiters.Clear();
        }
    }

    private readonly record struct Entry(T Item, TaskCompletionSource? Done);
}
