using System.Collections.Concurrent;
using Conveyor.Internal;

namespace Conveyor.Tests.Core;

public sealed class GroupCommitQueueTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task AddAsync_Idle_StartsTheWriteOnTheCallersThreadWithoutTheLoop()
    {
        int? writerThread = null;
        await using var queue = new GroupCommitQueue<int>(
            (items, _) =>
            {
                writerThread = Environment.CurrentManagedThreadId;
                return ValueTask.CompletedTask;
            },
            capacity: 16,
            maxBatch: 8);

        await queue.AddAsync(1, CancellationToken.None);

        Assert.Equal(Environment.CurrentManagedThreadId, writerThread);
    }

    [Fact]
    public async Task AddAsync_OneWriteInFlight_KeepsEveryCallersOrderAcrossInlineAndLoopWrites()
    {
        var written = new ConcurrentQueue<int>();
        var batches = 0;
        var queue = new GroupCommitQueue<int>(
            async (items, ct) =>
            {
                Interlocked.Increment(ref batches);
                await Task.Yield(); // a write in flight while the next items gather
                foreach (var item in items)
                {
                    written.Enqueue(item);
                }
            },
            capacity: 64,
            maxBatch: 16);

        // Four producers, each adding its own increasing sequence: each sequence must be written in order.
        const int perProducer = 2_000;
        await Task.WhenAll(Enumerable.Range(0, 4).Select(p => Task.Run(async () =>
        {
            for (var i = 0; i < perProducer; i++)
            {
                await queue.AddAsync((p * 1_000_000) + i, CancellationToken.None);
            }
        })));
        await queue.CompleteAsync().WaitAsync(Patience);
        await queue.DisposeAsync();

        var all = written.ToArray();
        Assert.Equal(4 * perProducer, all.Length);
        for (var p = 0; p < 4; p++)
        {
            var own = all.Where(v => v / 1_000_000 == p).Select(v => v % 1_000_000).ToArray();
            Assert.Equal(Enumerable.Range(0, perProducer), own);
        }

        Assert.True(batches < all.Length, $"{batches} writes for {all.Length} items: nothing was batched");
    }

    [Fact]
    public async Task CompleteAsync_WaitsForAWriteStartedInline()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var wroteAll = false;
        var queue = new GroupCommitQueue<int>(
            async (items, _) =>
            {
                await release.Task;
                wroteAll = true;
            },
            capacity: 16,
            maxBatch: 8);

        await queue.AddAsync(1, CancellationToken.None); // inline: held in its write
        var completing = queue.CompleteAsync();
        await Task.Delay(50);
        Assert.False(completing.IsCompleted);

        release.SetResult();
        await completing.WaitAsync(Patience);
        Assert.True(wroteAll);
        await queue.DisposeAsync();
    }

    [Fact]
    public async Task AddAndWaitAsync_WriteFails_FailsTheCallerWithTheWritesError()
    {
        await using var queue = new GroupCommitQueue<int>(
            (_, _) => ValueTask.FromException(new InvalidOperationException("engine refused")),
            capacity: 16,
            maxBatch: 8);

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => queue.AddAndWaitAsync(1, CancellationToken.None).WaitAsync(Patience));
        Assert.Equal("engine refused", error.Message);
    }
}
