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
            maxBatch: 8,
            inlineStart: InlineStart.Always);

        await queue.AddAsync(1, CancellationToken.None);

        Assert.Equal(Environment.CurrentManagedThreadId, writerThread);
    }

    [Fact]
    public async Task AddAsync_InlineStartOff_LeavesEveryWriteToTheLoop()
    {
        var caller = Environment.CurrentManagedThreadId;
        var adding = true;
        var written = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var queue = new GroupCommitQueue<int>(
            (items, _) =>
            {
                written.TrySetResult(Volatile.Read(ref adding) && Environment.CurrentManagedThreadId == caller);
                return ValueTask.CompletedTask;
            },
            capacity: 16,
            maxBatch: 8);

        await queue.AddAsync(1, CancellationToken.None);
        Volatile.Write(ref adding, false);

        Assert.False(await written.Task.WaitAsync(Patience), "the write ran inside AddAsync, on the caller's thread");
    }

    [Fact]
    public async Task AddAsync_InlineWhenIdle_StartsInlineAfterOneItemWritesAndLeavesItToTheLoopAfterABatch()
    {
        var inlineWrites = new List<int>();
        var loopWrites = new List<List<int>>();
        var adding = false;
        var caller = 0;
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var writing = new SemaphoreSlim(0);
        await using var queue = new GroupCommitQueue<int>(
            async (items, _) =>
            {
                lock (loopWrites)
                {
                    if (Volatile.Read(ref adding) && Environment.CurrentManagedThreadId == caller)
                    {
                        inlineWrites.AddRange(items);
                    }
                    else
                    {
                        loopWrites.Add([.. items]);
                    }
                }

                writing.Release();
                if (items.Contains(2))
                {
                    await release.Task; // holds the write slot while 3, 4 and 5 queue up behind it
                }
            },
            capacity: 16,
            maxBatch: 8,
            inlineStart: InlineStart.WhenIdle);

        async Task AddOnThisThreadAsync(int item)
        {
            caller = Environment.CurrentManagedThreadId;
            Volatile.Write(ref adding, true);
            await queue.AddAsync(item, CancellationToken.None);
            Volatile.Write(ref adding, false);
        }

        // Idle: 1 and 2 each start on the caller's thread.
        await AddOnThisThreadAsync(1);
        Assert.True(await writing.WaitAsync(Patience));
        await AddOnThisThreadAsync(2);
        Assert.True(await writing.WaitAsync(Patience));

        // 2's write is in flight: 3, 4, 5 queue and go to the loop together once it ends.
        await queue.AddAsync(3, CancellationToken.None);
        await queue.AddAsync(4, CancellationToken.None);
        await queue.AddAsync(5, CancellationToken.None);
        release.SetResult();
        Assert.True(await writing.WaitAsync(Patience));

        // The last write carried three items: 6 goes to the loop too, though nothing is queued or in flight.
        await WhenNoWriteInFlightAsync(queue);
        await AddOnThisThreadAsync(6);
        Assert.True(await writing.WaitAsync(Patience));
        await WhenNoWriteInFlightAsync(queue);

        // 6's write carried one item: 7 starts inline again.
        await AddOnThisThreadAsync(7);
        Assert.True(await writing.WaitAsync(Patience));

        lock (loopWrites)
        {
            Assert.Equal([1, 2, 7], inlineWrites);
            Assert.Equal([[3, 4, 5], [6]], loopWrites);
        }
    }

    private static async Task WhenNoWriteInFlightAsync(GroupCommitQueue<int> queue)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (queue.WritesInFlight > 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "a write stayed in flight");
            await Task.Yield();
        }
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
            maxBatch: 16,
            inlineStart: InlineStart.Always);

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
            maxBatch: 8,
            inlineStart: InlineStart.Always);

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
