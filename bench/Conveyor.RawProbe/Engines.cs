using System.Threading.Channels;
using RabbitMQ.Client;
using RabbitMQ.Client.Events;
using StackExchange.Redis;

namespace Conveyor.RawProbe;

/// <summary>The probe's settings, the same in the parent and in the workers it starts.</summary>
internal sealed record ProbeOptions(
    string Redis, string? Amqp, int Tasks, int Workers, int Batch, int Loops, int Prefetch, int Publishers, int PublishBatch,
    bool AllStates, bool Notify, bool Scripts, bool Json)
{
    public static readonly TimeSpan StateTtl = TimeSpan.FromHours(1);

    public string Engine => Amqp is null ? "redis" : "rabbitmq+redis";
}

/// <summary>
/// One run's keys and queue on the engines, and the minimal reliable sequence on them. Redis: publish = PENDING
/// state SET + RPUSH; fetch = one script that LMOVEs up to a batch into the consumer's in-flight list; settle, per
/// batch in one round trip = SET of each final state (+ PUBLISH of its name with <c>--notify</c>) then LREM of each
/// message from the in-flight list (after its state: one connection keeps the order). RabbitMQ broker + Redis
/// backend: publish = PENDING SET + a persistent publish whose confirm is awaited (per publish batch); consume with
/// a prefetch; settle per batch = the SETs, then one <c>basic.ack</c> with <c>multiple</c>. <c>--all-states</c> also
/// writes RECEIVED and STARTED before running a batch, as Conveyor and machinery do (one round trip for both).
/// <c>--scripts</c> sends each batch's commands as one script call instead of one command each (the same commands
/// run in Redis; the client sends, and waits for, one reply per batch).
/// </summary>
internal sealed class ProbeRun(ProbeOptions options, string runId, IDatabase redis)
{
    // The fetch: up to ARGV[1] messages from the queue to the consumer's in-flight list, in one call.
    private const string FetchScript = """
        local out = {}
        for i = 1, tonumber(ARGV[1]) do
          local message = redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT')
          if not message then break end
          out[i] = message
        end
        return out
        """;

    // SET KEYS[i] ARGV[i + 1] EX ARGV[1] for every key (a key may come twice: RECEIVED, then STARTED), with a
    // PUBLISH of the state's name per key when ARGV[#KEYS + 2] is '1'.
    public const string SetStatesScript = """
        local n = #KEYS
        for i = 1, n do
          redis.call('SET', KEYS[i], ARGV[i + 1], 'EX', ARGV[1])
          if ARGV[n + 2] == '1' then redis.call('PUBLISH', 'rawprobe:state:' .. KEYS[i], ARGV[n + 2 + i]) end
        end
        return n
        """;

    // Publish: SET KEYS[i + 1] ARGV[i + 1] EX ARGV[1] (the PENDING states), then one RPUSH of every message to KEYS[1].
    public const string PublishScript = """
        local n = #KEYS - 1
        local messages = {}
        for i = 1, n do
          redis.call('SET', KEYS[i + 1], ARGV[i + 1], 'EX', ARGV[1])
          messages[i] = ARGV[n + 1 + i]
        end
        redis.call('RPUSH', KEYS[1], unpack(messages))
        return n
        """;

    // Settle: SET KEYS[i + 1] ARGV[i + 1] EX ARGV[1] (the final states, PUBLISH when ARGV[2n + 2] is '1'), then
    // LREM of each message ARGV[n + 1 + i] from the in-flight list KEYS[1].
    private const string SettleScript = """
        local n = #KEYS - 1
        for i = 1, n do
          redis.call('SET', KEYS[i + 1], ARGV[i + 1], 'EX', ARGV[1])
          if ARGV[2 * n + 2] == '1' then redis.call('PUBLISH', 'rawprobe:state:' .. KEYS[i + 1], 'SUCCESS') end
        end
        for i = 1, n do
          redis.call('LREM', KEYS[1], 1, ARGV[n + 1 + i])
        end
        return n
        """;

    private static readonly RedisValue TtlSeconds = (long)ProbeOptions.StateTtl.TotalSeconds;

    private readonly string _prefix = $"rawprobe:{runId}:";

    public ProbeOptions Options => options;

    public RedisKey StateKey(string taskId) => _prefix + taskId;

    public RedisKey Queue => _prefix + "queue";

    public string AmqpQueue => "rawprobe-" + runId;

    /// <summary>Deletes the run's keys (and its RabbitMQ queue).</summary>
    public async Task CleanUpAsync(IReadOnlyList<string> taskIds, IChannel? amqp)
    {
        foreach (var chunk in taskIds.Chunk(1000))
        {
            await redis.KeyDeleteAsync([.. chunk.Select(StateKey)]);
        }

        await redis.KeyDeleteAsync(Queue);
        if (amqp is not null)
        {
            await amqp.QueueDeleteAsync(AmqpQueue);
        }
    }

    /// <summary>Runs a worker's consumer loops until <paramref name="stop"/>; returns how many tasks they ran.</summary>
    public async Task<long> WorkAsync(IConnection? amqp, Action firstTask, CancellationToken stop)
    {
        var loops = new List<Task<long>>();
        for (var i = 0; i < options.Loops; i++)
        {
            loops.Add(amqp is null
                ? Task.Run(() => RedisLoopAsync($"{_prefix}inflight:{Environment.ProcessId}:{i}", firstTask, stop), CancellationToken.None)
                : AmqpLoopAsync(amqp, firstTask, stop));
        }

        return (await Task.WhenAll(loops)).Sum();
    }

    private async Task<long> RedisLoopAsync(RedisKey inFlight, Action firstTask, CancellationToken stop)
    {
        long executed = 0;
        var keys = new[] { Queue, inFlight };
        var args = new RedisValue[] { options.Batch };
        var settles = new List<Task>();
        var idle = 0;
        while (!stop.IsCancellationRequested)
        {
            var fetched = (RedisResult[])(await redis.ScriptEvaluateAsync(FetchScript, keys, args))!;
            if (fetched.Length == 0)
            {
                // An empty queue: poll again after 1, 2, 4 … up to 32 ms, so idle loops cost Redis little.
                await DelayAsync(TimeSpan.FromMilliseconds(1 << Math.Min(idle++, 5)), stop);
                continue;
            }

            idle = 0;

            firstTask();
            var tasks = fetched.Select(m => Messages.ReadTask((byte[])m!)).ToArray();
            if (options.AllStates)
            {
                await WriteStartStatesAsync(tasks);
            }

            if (options.Scripts)
            {
                var now2 = TimeProvider.System.GetUtcNow();
                var scriptKeys = new RedisKey[tasks.Length + 1];
                var scriptArgs = new RedisValue[(2 * tasks.Length) + 2];
                scriptKeys[0] = inFlight;
                scriptArgs[0] = TtlSeconds;
                for (var i = 0; i < tasks.Length; i++)
                {
                    var (id, a, b) = tasks[i];
                    scriptKeys[i + 1] = StateKey(id);
                    scriptArgs[i + 1] = Messages.State(id, "SUCCESS", a + b, now2);
                    scriptArgs[tasks.Length + 1 + i] = (byte[])fetched[i]!;
                }

                scriptArgs[^1] = options.Notify ? "1" : "0";
                await redis.ScriptEvaluateAsync(SettleScript, scriptKeys, scriptArgs);
                executed += tasks.Length;
                continue;
            }

            settles.Clear();
            var now = TimeProvider.System.GetUtcNow();
            for (var i = 0; i < tasks.Length; i++)
            {
                var (id, a, b) = tasks[i];
                settles.Add(redis.StringSetAsync(StateKey(id), Messages.State(id, "SUCCESS", a + b, now), ProbeOptions.StateTtl));
                if (options.Notify)
                {
                    settles.Add(redis.PublishAsync(RedisChannel.Literal("rawprobe:state:" + id), "SUCCESS"));
                }

                settles.Add(redis.ListRemoveAsync(inFlight, (byte[])fetched[i]!, 1));
            }

            await Task.WhenAll(settles);
            executed += tasks.Length;
        }

        return executed;
    }

    private async Task<long> AmqpLoopAsync(IConnection connection, Action firstTask, CancellationToken stop)
    {
        await using var channel = await connection.CreateChannelAsync(cancellationToken: CancellationToken.None);
        await channel.BasicQosAsync(0, (ushort)options.Prefetch, global: false, CancellationToken.None);
        var deliveries = Channel.CreateBounded<(ulong Tag, byte[] Body)>(new BoundedChannelOptions(options.Prefetch) { FullMode = BoundedChannelFullMode.Wait, SingleReader = true });
        var consumer = new AsyncEventingBasicConsumer(channel);
        consumer.ReceivedAsync += (_, e) => deliveries.Writer.WriteAsync((e.DeliveryTag, e.Body.ToArray())).AsTask();
        await channel.BasicConsumeAsync(AmqpQueue, autoAck: false, consumer, CancellationToken.None);

        long executed = 0;
        var batch = new List<(ulong Tag, byte[] Body)>(options.Batch);
        var settles = new List<Task>();
        try
        {
            while (await deliveries.Reader.WaitToReadAsync(stop))
            {
                batch.Clear();
                while (batch.Count < options.Batch && deliveries.Reader.TryRead(out var delivery))
                {
                    batch.Add(delivery);
                }

                firstTask();
                var tasks = batch.Select(d => Messages.ReadTask(d.Body)).ToArray();
                if (options.AllStates)
                {
                    await WriteStartStatesAsync(tasks);
                }

                var now = TimeProvider.System.GetUtcNow();
                if (options.Scripts)
                {
                    await SetStatesAsync([.. tasks.Select(t => (t.Id, Messages.State(t.Id, "SUCCESS", t.A + t.B, now), "SUCCESS"))]);
                }
                else
                {
                    settles.Clear();
                    foreach (var (id, a, b) in tasks)
                    {
                        settles.Add(redis.StringSetAsync(StateKey(id), Messages.State(id, "SUCCESS", a + b, now), ProbeOptions.StateTtl));
                        if (options.Notify)
                        {
                            settles.Add(redis.PublishAsync(RedisChannel.Literal("rawprobe:state:" + id), "SUCCESS"));
                        }
                    }

                    await Task.WhenAll(settles);
                }

                // Deliveries on one channel are settled in order: one ack for the whole batch.
                await channel.BasicAckAsync(batch[^1].Tag, multiple: true, CancellationToken.None);
                executed += batch.Count;
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }

        return executed;
    }

    /// <summary>One script call that SETs every state (and PUBLISHes its name with <c>--notify</c>).</summary>
    public Task SetStatesAsync(IReadOnlyList<(string Id, byte[] State, string Name)> states)
    {
        var keys = new RedisKey[states.Count];
        var values = new RedisValue[(2 * states.Count) + 2];
        values[0] = TtlSeconds;
        for (var i = 0; i < states.Count; i++)
        {
            keys[i] = StateKey(states[i].Id);
            values[i + 1] = states[i].State;
            values[states.Count + 2 + i] = states[i].Name;
        }

        values[states.Count + 1] = options.Notify ? "1" : "0";
        return redis.ScriptEvaluateAsync(SetStatesScript, keys, values);
    }

    private Task WriteStartStatesAsync((string Id, long A, long B)[] tasks)
    {
        var now = TimeProvider.System.GetUtcNow();
        if (options.Scripts)
        {
            return SetStatesAsync([.. tasks.SelectMany(t => new[]
            {
                (t.Id, Messages.State(t.Id, "RECEIVED", null, now), "RECEIVED"),
                (t.Id, Messages.State(t.Id, "STARTED", null, now), "STARTED"),
            })]);
        }

        var writes = new List<Task>(tasks.Length * 4);
        foreach (var (id, _, _) in tasks)
        {
            foreach (var state in (ReadOnlySpan<string>)["RECEIVED", "STARTED"])
            {
                writes.Add(redis.StringSetAsync(StateKey(id), Messages.State(id, state, null, now), ProbeOptions.StateTtl));
                if (options.Notify)
                {
                    writes.Add(redis.PublishAsync(RedisChannel.Literal("rawprobe:state:" + id), state));
                }
            }
        }

        return Task.WhenAll(writes);
    }

    private static async Task DelayAsync(TimeSpan delay, CancellationToken stop)
    {
        try
        {
            await Task.Delay(delay, stop);
        }
        catch (OperationCanceledException)
        {
        }
    }
}

/// <summary>
/// The producer's publish: PENDING state first (a fast worker's SUCCESS must not be overwritten by it), then the
/// message; per batch of tasks, awaited together. On RabbitMQ, persistent messages on channels with publisher
/// confirms tracked by the client: awaiting a publish awaits its confirm.
/// </summary>
internal sealed class Publisher(ProbeRun run, IDatabase redis, IConnection? amqp)
{
    private static readonly BasicProperties Persistent = new() { DeliveryMode = DeliveryModes.Persistent, ContentType = "application/json" };
    private IChannel[] _channels = [];
    private int _next;

    public async Task InitAsync()
    {
        if (amqp is null)
        {
            return;
        }

        _channels = new IChannel[run.Options.Publishers];
        for (var i = 0; i < _channels.Length; i++)
        {
            _channels[i] = await amqp.CreateChannelAsync(new CreateChannelOptions(publisherConfirmationsEnabled: true, publisherConfirmationTrackingEnabled: true));
        }
    }

    public async Task PublishAsync(IReadOnlyList<(string Id, byte[] Message)> batch)
    {
        var now = TimeProvider.System.GetUtcNow();
        if (run.Options.Scripts && amqp is null)
        {
            var keys = new RedisKey[batch.Count + 1];
            var values = new RedisValue[(2 * batch.Count) + 1];
            keys[0] = run.Queue;
            values[0] = (long)ProbeOptions.StateTtl.TotalSeconds;
            for (var i = 0; i < batch.Count; i++)
            {
                keys[i + 1] = run.StateKey(batch[i].Id);
                values[i + 1] = Messages.State(batch[i].Id, "PENDING", null, now);
                values[batch.Count + 1 + i] = batch[i].Message;
            }

            await redis.ScriptEvaluateAsync(ProbeRun.PublishScript, keys, values);
            return;
        }

        if (run.Options.Scripts)
        {
            await run.SetStatesAsync([.. batch.Select(b => (b.Id, Messages.State(b.Id, "PENDING", null, now), "PENDING"))]);
        }

        var writes = new List<Task>(batch.Count * 2);
        foreach (var (id, message) in batch.Where(_ => !run.Options.Scripts))
        {
            writes.Add(redis.StringSetAsync(run.StateKey(id), Messages.State(id, "PENDING", null, now), ProbeOptions.StateTtl));
            if (amqp is null)
            {
                // Same connection, so Redis runs the SET before the RPUSH.
                writes.Add(redis.ListRightPushAsync(run.Queue, message));
            }
        }

        await Task.WhenAll(writes);
        if (amqp is null)
        {
            return;
        }

        var channel = _channels[(int)((uint)Interlocked.Increment(ref _next) % (uint)_channels.Length)];
        var confirms = new List<Task>(batch.Count);
        foreach (var (_, message) in batch)
        {
            confirms.Add(channel.BasicPublishAsync(string.Empty, run.AmqpQueue, mandatory: true, Persistent, message).AsTask());
        }

        await Task.WhenAll(confirms);
    }
}
