using System.Collections.Concurrent;
using Conveyor.Redis;
using Conveyor.Serialization;
using StackExchange.Redis;

namespace Conveyor.MixedFleet.Tests;

/// <summary>Who runs a chord member: a Conveyor worker or the machinery peer.</summary>
public enum Side
{
    Conveyor,
    Machinery,
}

/// <summary>
/// One test's mixed fleet on one Redis result backend with machinery's layout (no key prefix, so the group metas,
/// states and <c>TriggerChordMutex</c> are the keys Go uses): a Conveyor worker on queue <see cref="ConveyorQueue"/>,
/// a machinery peer on <see cref="MachineryQueue"/>, each started and stopped by the test, and the same tasks
/// registered on both sides. Members are routed to a side by their routing key; callbacks go to
/// <see cref="CallbackQueue"/>, which nobody consumes, so the test counts the callbacks published.
/// </summary>
internal sealed class Fleet : IAsyncDisposable
{
    private readonly ConveyorWorkerHost _conveyor;

    private Fleet(IConnectionMultiplexer redis, IBroker broker, RedisResultBackend backend, MachineryPeer peer, string id)
    {
        Redis = redis;
        Broker = broker;
        Backend = backend;
        Peer = peer;
        ConveyorQueue = $"mix_{id}_conveyor";
        MachineryQueue = $"mix_{id}_machinery";
        CallbackQueue = $"mix_{id}_callbacks";
        ErrorQueue = $"mix_{id}_errors";
        Client = new ConveyorClient(broker, backend, new ConveyorClientOptions { DefaultQueue = ConveyorQueue, MaxResultPollInterval = TimeSpan.FromMilliseconds(20) });
        _conveyor = new ConveyorWorkerHost(Client, Registry, ConveyorQueue);
        RegisterOnBothSides();
    }

    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    public IConnectionMultiplexer Redis { get; }

    public IBroker Broker { get; }

    public RedisResultBackend Backend { get; }

    public MachineryPeer Peer { get; }

    public ConveyorClient Client { get; }

    public TaskRegistry Registry { get; } = new();

    public string ConveyorQueue { get; }

    public string MachineryQueue { get; }

    public string CallbackQueue { get; }

    public string ErrorQueue { get; }

    /// <summary>Tasks the Conveyor worker ran (task id, name).</summary>
    public ConcurrentQueue<(string TaskId, string Name)> ConveyorRuns { get; } = new();

    public ConveyorWorker? ConveyorWorker => _conveyor.Worker;

    public static Fleet Create(IConnectionMultiplexer redis, RedisConveyorOptions options, IBroker broker, IMachineryBroker machineryBroker, string? id = null)
    {
        id ??= Guid.NewGuid().ToString("N")[..10];
        var backend = new RedisResultBackend(redis, options);
        var peer = new MachineryPeer(redis, machineryBroker, $"mix_{id}_machinery", options.ResultTtl);
        return new Fleet(redis, broker, backend, peer, id);
    }

    public string QueueOf(Side side) => side == Side.Conveyor ? ConveyorQueue : MachineryQueue;

    public Task StartConveyorAsync() => _conveyor.StartAsync();

    public Task StopConveyorAsync() => _conveyor.StopAsync();

    public void StartMachinery(int concurrency = 4) => Peer.Start(MachineryQueue, concurrency);

    public Task StopMachineryAsync() => Peer.StopAsync();

    /// <summary>
    /// The same tasks on both sides: <c>add</c>, <c>multiply</c>, <c>sum</c> (any number of int64), <c>fail</c>
    /// (throws its string), <c>record</c> (returns its arguments as strings, for callbacks).
    /// </summary>
    private void RegisterOnBothSides()
    {
        Registry
            .Register("add", (long a, long b, TaskContext c) => Ran(c, a + b))
            .Register("multiply", (long a, long b, TaskContext c) => Ran(c, a * b))
            .Register("sum", (TaskContext c, params long[] values) => Ran(c, values.Sum()))
            .Register("fail", (string message, TaskContext c) =>
            {
                ConveyorRuns.Enqueue((c.TaskId, "fail"));
                throw new InvalidOperationException(message);
            })
            .Register("record", (TaskContext c, params string[] values) => Ran(c, string.Join("|", values)));
        Peer
            .Register("add", args => [new TaskResult("int64", (long)args[0].Value! + (long)args[1].Value!)])
            .Register("multiply", args => [new TaskResult("int64", (long)args[0].Value! * (long)args[1].Value!)])
            .Register("sum", args => [new TaskResult("int64", args.Sum(a => (long)a.Value!))])
            .Register("fail", args => throw new InvalidOperationException((string)args[0].Value!))
            .Register("record", args => [new TaskResult("string", string.Join("|", args.Select(a => Convert.ToString(a.Value, System.Globalization.CultureInfo.InvariantCulture))))]);
    }

    private T Ran<T>(TaskContext context, T result)
    {
        ConveyorRuns.Enqueue((context.TaskId, context.Signature.Name));
        return result;
    }

    /// <summary>
    /// Reads the messages published to a queue that nobody consumes: the Redis list by default; a RabbitMQ fleet
    /// drains the queue and keeps what it read.
    /// </summary>
    public Func<string, Task<IReadOnlyList<Signature>>>? ReadQueue { get; set; }

    /// <summary>The messages in a queue nobody consumes, decoded, oldest first.</summary>
    public async Task<IReadOnlyList<Signature>> PublishedToAsync(string queue)
    {
        if (ReadQueue is { } read)
        {
            return await read(queue);
        }

        var values = await Redis.GetDatabase().ListRangeAsync(queue);
        return [.. values.Select(v => WireFormat.DeserializeSignature(((ReadOnlyMemory<byte>)v).Span))];
    }

    /// <summary>
    /// Waits until every task is in a final state and neither side holds a message: from then on no callback can
    /// still be published (both sides publish before they let go of a message).
    /// </summary>
    public async Task SettleAsync(IEnumerable<string> taskIds)
    {
        var ids = taskIds.ToList();
        var deadline = DateTime.UtcNow + Timeout;
        while (true)
        {
            var states = await Backend.GetStatesAsync(ids);
            var final = states.All(s => s is { IsCompleted: true });
            if (final && (ConveyorWorker?.InFlight ?? 0) == 0 && Peer.InFlight == 0)
            {
                return;
            }

            if (DateTime.UtcNow > deadline)
            {
                var open = states.Count(s => s is not { IsCompleted: true });
                throw new TimeoutException($"{open} of {ids.Count} tasks are not final after {Timeout.TotalSeconds} s; in flight: conveyor {ConveyorWorker?.InFlight}, machinery {Peer.InFlight}; machinery errors: {string.Join("; ", Peer.Errors.Take(3))}");
            }

            await Task.Delay(20);
        }
    }

    /// <summary>Waits until a queue nobody consumes holds at least <paramref name="count"/> messages.</summary>
    public async Task<IReadOnlyList<Signature>> WaitForPublishedAsync(string queue, int count)
    {
        var deadline = DateTime.UtcNow + Timeout;
        while (true)
        {
            var published = await PublishedToAsync(queue);
            if (published.Count >= count)
            {
                return published;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"{queue} holds {published.Count} messages, not {count}, after {Timeout.TotalSeconds} s; machinery errors: {string.Join("; ", Peer.Errors.Take(3))}");
            }

            await Task.Delay(20);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _conveyor.StopAsync();
        await Peer.DisposeAsync();
        await Broker.DisposeAsync();
        await Backend.DisposeAsync();
        var db = Redis.GetDatabase();
        await db.KeyDeleteAsync([ConveyorQueue, MachineryQueue, CallbackQueue, ErrorQueue]);
    }

    /// <summary>A Conveyor worker that a test starts and stops, more than once.</summary>
    private sealed class ConveyorWorkerHost(ConveyorClient client, TaskRegistry registry, string queue)
    {
        public ConveyorWorker? Worker { get; private set; }

        public async Task StartAsync()
        {
            Worker = new ConveyorWorker(client, registry, new WorkerOptions { Queue = queue, Concurrency = 4, ShutdownGracePeriod = TimeSpan.FromSeconds(10) });
            await Worker.StartAsync(CancellationToken.None);
        }

        public async Task StopAsync()
        {
            if (Worker is { } worker)
            {
                await worker.StopAsync(CancellationToken.None);
                worker.Dispose();
            }
        }
    }
}
