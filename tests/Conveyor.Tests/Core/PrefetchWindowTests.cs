namespace Conveyor.Tests.Core;

public sealed class PrefetchWindowTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(5);

    [Fact]
    public async Task WaitForRoom_Empty_OffersTheWholePrefetchUpToTheBatch()
    {
        var window = new PrefetchWindow<string>(prefetch: 8, refillBatch: 2);

        Assert.Equal(5, await window.WaitForRoomAsync(5, CancellationToken.None));
        Assert.Equal(8, await window.WaitForRoomAsync(100, CancellationToken.None));
    }

    [Fact]
    public async Task WaitForRoom_AllHeld_WaitsUntilASettlementReleasesACredit()
    {
        var window = new PrefetchWindow<string>(prefetch: 2, refillBatch: 1);
        Assert.True(window.TryAdd("a"));
        Assert.True(window.TryAdd("b"));
        Assert.True(window.Reader.TryRead(out _)); // read but not settled: still held
        Assert.True(window.Reader.TryRead(out _));

        var room = window.WaitForRoomAsync(10, CancellationToken.None).AsTask();
        await Task.Delay(50);
        Assert.False(room.IsCompleted);

        window.Release();
        Assert.Equal(1, await room.WaitAsync(Patience));
        Assert.Equal(1, window.Held);
    }

    [Fact]
    public async Task WaitForRoom_DeliveriesStillBuffered_WaitsForARefillBatchOfCredits()
    {
        var window = new PrefetchWindow<string>(prefetch: 4, refillBatch: 2);
        for (var i = 0; i < 4; i++)
        {
            Assert.True(window.TryAdd("m" + i));
        }

        Assert.True(window.Reader.TryRead(out _)); // three still buffered
        window.Release();
        var room = window.WaitForRoomAsync(10, CancellationToken.None).AsTask();
        await Task.Delay(50);
        Assert.False(room.IsCompleted); // one free credit is not worth a fetch while the runners have work

        Assert.True(window.Reader.TryRead(out _));
        window.Release();
        Assert.Equal(2, await room.WaitAsync(Patience));
    }

    [Fact]
    public async Task WaitForRoom_BufferRanDry_OneFreeCreditIsWorthAFetch()
    {
        var window = new PrefetchWindow<string>(prefetch: 4, refillBatch: 4);
        for (var i = 0; i < 4; i++)
        {
            Assert.True(window.TryAdd("m" + i));
            Assert.True(window.Reader.TryRead(out _));
        }

        window.Release();
        Assert.Equal(1, await window.WaitForRoomAsync(10, CancellationToken.None).AsTask().WaitAsync(Patience));
    }

    [Fact]
    public async Task Nudge_WhileWaiting_ReturnsZeroSoTheLoopCanDoOtherWorkFirst()
    {
        var window = new PrefetchWindow<string>(prefetch: 1, refillBatch: 1);
        Assert.True(window.TryAdd("a"));
        var room = window.WaitForRoomAsync(1, CancellationToken.None).AsTask();

        window.Nudge();

        Assert.Equal(0, await room.WaitAsync(Patience));
    }

    [Fact]
    public async Task TryAdd_AfterComplete_IsRefusedAndTheReaderEndsAfterWhatWasBuffered()
    {
        var window = new PrefetchWindow<string>(prefetch: 4, refillBatch: 1);
        Assert.True(window.TryAdd("a"));
        window.Complete();

        Assert.False(window.TryAdd("b"));
        Assert.Equal(1, window.Held);
        var read = new List<string>();
        await foreach (var item in window.Reader.ReadAllAsync())
        {
            read.Add(item);
        }

        Assert.Equal(["a"], read);
    }

    [Fact]
    public async Task ConcurrentSettlements_NeverLetMoreThanPrefetchBeHeld()
    {
        const int prefetch = 8;
        var window = new PrefetchWindow<object>(prefetch, refillBatch: 3);
        var maxHeld = 0;
        var settled = 0;
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var runners = Enumerable.Range(0, 4).Select(_ => Task.Run(async () =>
        {
            await foreach (var _ in window.Reader.ReadAllAsync(stop.Token))
            {
                await Task.Yield();
                window.Release();
                Interlocked.Increment(ref settled);
            }
        })).ToArray();

        var added = 0;
        while (added < 20_000)
        {
            var room = await window.WaitForRoomAsync(5, stop.Token);
            for (var i = 0; i < room && added < 20_000; i++)
            {
                Assert.True(window.TryAdd(new object()));
                added++;
                var held = window.Held;
                if (held > maxHeld)
                {
                    maxHeld = held;
                }
            }
        }

        window.Complete();
        await Task.WhenAll(runners);
        Assert.Equal(20_000, settled);
        Assert.InRange(maxHeld, 1, prefetch);
        Assert.Equal(0, window.Held);
    }
}
