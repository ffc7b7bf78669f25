using System.Text.Json;
using Microsoft.Extensions.Time.Testing;

namespace Conveyor.Conformance;

/// <summary>
/// What every lock store must do for the periodic scheduler, on the real store: several schedulers sharing the store
/// publish each tick once. The schedulers run on a fake clock (ticks come when the test says), the store and broker
/// are real. The fences the ticks are claimed with are proven by <see cref="DistributedLockConformanceTests{TFactory}"/>.
/// </summary>
/// <typeparam name="TFactory">The provider's factory.</typeparam>
public abstract class SchedulerConformanceTests<TFactory> : IClassFixture<TFactory>
    where TFactory : class, IConveyorProviderFactory
{
    /// <summary>Creates the suite.</summary>
    /// <param name="factory">The provider's factory (a class fixture).</param>
    protected SchedulerConformanceTests(TFactory factory) => Factory = factory;

    /// <summary>The provider's factory.</summary>
    protected TFactory Factory { get; }

    /// <summary>Creates a lock store on the provider's engine; every call must reach the same store.</summary>
    /// <returns>The lock store (disposed by the test when it is disposable).</returns>
    protected abstract ValueTask<IDistributedLock> CreateLockAsync();

    /// <summary>
    /// Creates the broker of one scheduler's process; every call must reach the same queues. The default is the
    /// factory's (a new connection per call); a one-process provider returns its one broker.
    /// </summary>
    /// <returns>The broker (disposed by the test).</returns>
    protected virtual ValueTask<IBroker> CreateBrokerAsync() => Factory.CreateBrokerAsync();

    /// <summary>Creates the result backend of one scheduler's process; the default is the factory's.</summary>
    /// <returns>The backend (disposed by the test).</returns>
    protected virtual ValueTask<IResultBackend> CreateBackendAsync() => Factory.CreateBackendAsync();

    [Fact]
    public async Task Scheduler_ThreeSchedulersOnOneStore_PublishEveryTickExactlyOnce()
    {
        const int ticks = 8;
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 11, 27, 4, 0, 0, 500, TimeSpan.Zero));
        var queue = "beat." + Guid.NewGuid().ToString("N");
        var name = "every-second-" + Guid.NewGuid().ToString("N");
        var disposables = new List<IAsyncDisposable>();
        var schedulers = new List<ConveyorScheduler>();
        try
        {
            IBroker? reader = null;
            for (var i = 0; i < 3; i++)
            {
                var broker = await CreateBrokerAsync();
                var backend = await CreateBackendAsync();
                var locks = await CreateLockAsync();
                disposables.Add(broker);
                disposables.Add(backend);
                if (locks is IAsyncDisposable disposableLock)
                {
                    disposables.Add(disposableLock);
                }

                reader ??= broker;
                var client = new ConveyorClient(broker, backend, new ConveyorClientOptions { DefaultQueue = queue }, time);
                var options = new SchedulerOptions();
                options.Schedules.Add(new PeriodicSchedule(name, ScheduleTrigger.Every(TimeSpan.FromSeconds(1)), new Signature("tick")));
                schedulers.Add(new ConveyorScheduler(client, locks, options));
            }

            foreach (var scheduler in schedulers)
            {
                await scheduler.StartAsync(CancellationToken.None);
            }

            await ConveyorTestContext.EventuallyAsync(() => Task.FromResult(schedulers.All(s => s.Passes >= 1)), "every scheduler's first pass");
            for (var k = 1; k <= ticks; k++)
            {
                var passes = schedulers.Select(s => s.Passes).ToArray();
                time.Advance(TimeSpan.FromSeconds(1));
                var expected = k;
                await ConveyorTestContext.EventuallyAsync(
                    async () => (await reader!.GetQueueStatisticsAsync(queue)).Ready >= expected && schedulers.Select((s, i) => s.Passes > passes[i]).All(x => x),
                    $"tick {k} published and seen by every scheduler");
            }

            var messages = await ScheduledMessages.DrainAsync(reader!, queue, ticks);
            Assert.Equal(ticks, messages.Count);
            Assert.All(messages, m => Assert.Equal(name, m.Schedule));
            Assert.Equal(ticks, messages.Select(m => m.Tick).Distinct().Count());
            var first = new DateTimeOffset(2026, 11, 27, 4, 0, 1, TimeSpan.Zero);
            Assert.Equal(
                Enumerable.Range(0, ticks).Select(i => first.AddSeconds(i).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture)),
                messages.Select(m => m.Tick).Order(StringComparer.Ordinal));
            Assert.Equal((long?)first.AddSeconds(ticks - 1).ToUnixTimeMilliseconds(), (await schedulers[2].GetLastTickAsync(name))?.ToUnixTimeMilliseconds());
        }
        finally
        {
            foreach (var scheduler in schedulers)
            {
                await scheduler.StopAsync(CancellationToken.None);
                scheduler.Dispose();
            }

            foreach (var disposable in disposables)
            {
                await disposable.DisposeAsync();
            }
        }
    }
}

/// <summary>Reads the messages a scheduler published, with their schedule and tick headers.</summary>
public static class ScheduledMessages
{
    /// <summary>Consumes and acknowledges <paramref name="count"/> messages of a queue.</summary>
    /// <param name="broker">The broker.</param>
    /// <param name="queue">The queue.</param>
    /// <param name="count">How many to read.</param>
    /// <returns>The task name, schedule header and tick header of each, in delivery order.</returns>
    public static async Task<List<(string Task, string? Schedule, string? Tick)>> DrainAsync(IBroker broker, string queue, int count)
    {
        ArgumentNullException.ThrowIfNull(broker);
        var messages = new List<(string, string?, string?)>();
        await using var consumer = await broker.ConsumeAsync(queue, new ConsumeOptions { Prefetch = Math.Max(1, count) });
        while (messages.Count < count)
        {
            var delivery = await consumer.Deliveries.ReadAsync().AsTask().WaitAsync(ConveyorTestContext.Timeout);
            using (var json = JsonDocument.Parse(delivery.Body))
            {
                var root = json.RootElement;
                var headers = root.GetProperty("Headers");
                messages.Add((
                    root.GetProperty("Name").GetString()!,
                    headers.TryGetProperty(ConveyorScheduler.ScheduleHeader, out var s) ? s.GetString() : null,
                    headers.TryGetProperty(ConveyorScheduler.TickHeader, out var t) ? t.GetString() : null));
            }

            await delivery.AckAsync();
        }

        return messages;
    }
}
