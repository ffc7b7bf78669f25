using System.Collections.Concurrent;
using System.Text;
using Conveyor.Serialization;
using StackExchange.Redis;

namespace Conveyor.MixedFleet.Tests;

/// <summary>The broker half of a machinery worker: how it publishes and how it takes messages.</summary>
internal interface IMachineryBroker : IAsyncDisposable
{
    /// <summary>machinery's <c>Broker.Publish</c>: routing, ETA, bytes.</summary>
    Task PublishAsync(Signature signature);

    /// <summary>machinery's <c>StartConsuming</c>: runs until <paramref name="stop"/> is cancelled.</summary>
    Task ConsumeAsync(string queue, int concurrency, MachineryPeer peer, CancellationToken stop);
}

/// <summary>
/// A test peer that does what Go machinery v2's worker does, step by step, so that mixed-fleet tests can run without
/// Go. Written from machinery's <c>v2/worker.go</c> (<c>Process</c>, <c>taskRetry</c>, <c>taskSucceeded</c>,
/// <c>taskFailed</c>), <c>v2/server.go</c> (<c>SendTask</c>: PENDING, then publish; <c>SendChord</c>/<c>SendGroup</c>:
/// <c>InitGroup</c>, then each member), <c>v2/backends/redis/goredis.go</c> (state writes as GET then
/// <c>SET … EX</c> keeping CreatedAt and TaskName, <c>GroupCompleted</c> reading every member's state,
/// <c>TriggerChord</c> under the redsync mutex <c>TriggerChordMutex</c>, <c>GroupTaskStates</c>) and redsync v4's
/// mutex (<c>SET name value NX PX 8000</c>, 32 tries 50–250 ms apart, released by a compare-and-delete script).
/// It knows nothing of Conveyor's own keys: no chord counter, no in-flight lists, no heartbeats.
/// </summary>
internal sealed class MachineryPeer : IAsyncDisposable
{
    private const string MutexName = "TriggerChordMutex";
    private static readonly TimeSpan MutexExpiry = TimeSpan.FromSeconds(8);

    // redsync's unlock script: delete the mutex only while this holder's value is in it.
    private const string UnlockScript = """
        if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) else return 0 end
        """;

    private readonly IDatabase _redis;
    private readonly TimeSpan _resultsExpireIn;
    private readonly ConcurrentDictionary<string, Func<IList<TaskArgument>, TaskResult[]>> _tasks = new(StringComparer.Ordinal);
    private CancellationTokenSource? _stop;
    private Task? _consuming;
    private int _inFlight;

    public MachineryPeer(IConnectionMultiplexer redis, IMachineryBroker broker, string defaultQueue, TimeSpan? resultsExpireIn = null)
    {
        _redis = redis.GetDatabase();
        Broker = broker;
        DefaultQueue = defaultQueue;
        _resultsExpireIn = resultsExpireIn ?? TimeSpan.FromHours(1);
    }

    public IMachineryBroker Broker { get; }

    public string DefaultQueue { get; }

    /// <summary>Tasks this peer ran (task id, name), in the order they were called.</summary>
    public ConcurrentQueue<(string TaskId, string Name)> Runs { get; } = new();

    /// <summary>Errors <c>Process</c> returned, which machinery's worker only logs (the message is gone).</summary>
    public ConcurrentQueue<string> Errors { get; } = new();

    /// <summary>Messages taken and not yet processed to the end.</summary>
    public int InFlight => Volatile.Read(ref _inFlight);

    public MachineryPeer Register(string name, Func<IList<TaskArgument>, TaskResult[]> task)
    {
        _tasks[name] = task;
        return this;
    }

    public bool IsTaskRegistered(string name) => _tasks.ContainsKey(name);

    public void Start(string queue, int concurrency = 4)
    {
        _stop = new CancellationTokenSource();
        _consuming = Broker.ConsumeAsync(queue, concurrency, this, _stop.Token);
    }

    public async Task StopAsync()
    {
        if (_stop is null)
        {
            return;
        }

        await _stop.CancelAsync();
        await _consuming!;
        _stop.Dispose();
        _stop = null;
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        await Broker.DisposeAsync();
    }

    internal void Taken() => Interlocked.Increment(ref _inFlight);

    internal void Done() => Interlocked.Decrement(ref _inFlight);

    // ---- server.go ------------------------------------------------------------------------------------------

    /// <summary><c>Server.SendTask</c>: the PENDING state, then the broker's publish.</summary>
    public async Task SendTaskAsync(Signature signature)
    {
        if (signature.RoutingKey.Length == 0)
        {
            signature.RoutingKey = DefaultQueue; // Broker.AdjustRoutingKey
        }

        await SetStateAsync(signature, TaskState.Pending, merge: false);
        await Broker.PublishAsync(signature);
    }

    /// <summary><c>Server.SendChord</c>: <c>NewChord</c> marks the members, <c>SendGroup</c> stores the meta and sends each.</summary>
    public async Task SendChordAsync(IReadOnlyList<Signature> members, Signature callback)
    {
        var groupId = "group_" + Guid.NewGuid();
        foreach (var member in members)
        {
            member.GroupId = groupId;
            member.GroupTaskCount = members.Count;
            member.ChordCallback = callback;
        }

        var meta = new GroupMeta { GroupId = groupId, TaskIds = [.. members.Select(m => m.Id)], CreatedAt = DateTimeOffset.UtcNow };
        await _redis.StringSetAsync(groupId, WireFormat.SerializeGroupMeta(meta), _resultsExpireIn);
        await Task.WhenAll(members.Select(SendTaskAsync));
    }

    // ---- worker.go ------------------------------------------------------------------------------------------

    /// <summary><c>Worker.Process</c>.</summary>
    public async Task ProcessAsync(Signature signature)
    {
        try
        {
            if (!_tasks.TryGetValue(signature.Name, out var task))
            {
                return;
            }

            await SetStateAsync(signature, TaskState.Received);
            await SetStateAsync(signature, TaskState.Started);
            Runs.Enqueue((signature.Id, signature.Name));
            TaskResult[] results;
            try
            {
                results = task(signature.Args);
            }
            catch (Exception ex)
            {
                if (signature.RetryCount > 0)
                {
                    await TaskRetryAsync(signature);
                }
                else
                {
                    await TaskFailedAsync(signature, ex.Message);
                }

                return;
            }

            await TaskSucceededAsync(signature, results);
        }
        catch (Exception ex)
        {
            Errors.Enqueue($"{signature.Name} {signature.Id}: {ex.Message}");
        }
    }

    /// <summary><c>Worker.taskRetry</c>: RETRY, one retry fewer, Fibonacci backoff in seconds, a new publish with an ETA.</summary>
    private async Task TaskRetryAsync(Signature signature)
    {
        await SetStateAsync(signature, TaskState.Retry);
        signature.RetryCount--;
        signature.RetryTimeout = FibonacciNext(signature.RetryTimeout);
        signature.Eta = DateTimeOffset.UtcNow.AddSeconds(signature.RetryTimeout);
        await SendTaskAsync(signature);
    }

    /// <summary><c>retry.FibonacciNext</c>: the first Fibonacci number above <paramref name="start"/>.</summary>
    internal static int FibonacciNext(int start)
    {
        int a = 0, b = 1;
        while (true)
        {
            (a, b) = (b, a + b);
            if (a > start)
            {
                return a;
            }
        }
    }

    /// <summary><c>Worker.taskSucceeded</c>.</summary>
    private async Task TaskSucceededAsync(Signature signature, TaskResult[] results)
    {
        await SetStateAsync(signature, TaskState.Success, results: results);

        foreach (var successTask in signature.OnSuccess)
        {
            if (!signature.Immutable)
            {
                foreach (var result in results)
                {
                    successTask.Args.Add(result.ToArgument());
                }
            }

            await SendTaskAsync(successTask);
        }

        if (signature.GroupId.Length == 0)
        {
            return;
        }

        if (!await GroupCompletedAsync(signature.GroupId, signature.GroupTaskCount) || signature.ChordCallback is not { } callback)
        {
            return;
        }

        if (!await TriggerChordAsync(signature.GroupId))
        {
            return;
        }

        var states = await GroupTaskStatesAsync(signature.GroupId);
        foreach (var state in states)
        {
            if (state.State != TaskState.Success)
            {
                return; // machinery drops the chord when a member failed
            }

            if (!callback.Immutable)
            {
                foreach (var result in state.Results ?? [])
                {
                    callback.Args.Add(result.ToArgument());
                }
            }
        }

        await SendTaskAsync(callback);
    }

    /// <summary><c>Worker.taskFailed</c>: FAILURE, then each OnError task with the error prepended as a string.</summary>
    private async Task TaskFailedAsync(Signature signature, string error)
    {
        await SetStateAsync(signature, TaskState.Failure, error: error);
        foreach (var errorTask in signature.OnError)
        {
            errorTask.Args.Insert(0, TaskArgument.String(error));
            await SendTaskAsync(errorTask);
        }
    }

    // ---- backends/redis/goredis.go ---------------------------------------------------------------------------

    /// <summary><c>SetState…</c>: <c>mergeNewTaskState</c> (GET: keep CreatedAt and TaskName), then <c>SET … EX</c>.</summary>
    private async Task SetStateAsync(Signature signature, TaskState state, bool merge = true, IReadOnlyList<TaskResult>? results = null, string error = "")
    {
        var createdAt = state == TaskState.Pending ? DateTimeOffset.UtcNow : default;
        var taskName = signature.Name;
        if (merge && await _redis.StringGetAsync(signature.Id) is { IsNull: false } old)
        {
            var previous = WireFormat.DeserializeState(((ReadOnlyMemory<byte>)old).Span);
            createdAt = previous.CreatedAt;
            taskName = previous.TaskName;
        }

        var record = new TaskStateRecord { TaskId = signature.Id, TaskName = taskName, State = state, Results = results, Error = error, CreatedAt = createdAt };
        await _redis.StringSetAsync(signature.Id, WireFormat.SerializeState(record), _resultsExpireIn);
    }

    /// <summary><c>GroupCompleted</c>: the meta, then every member's state; an error when one is missing (redis.Nil).</summary>
    private async Task<bool> GroupCompletedAsync(string groupId, int groupTaskCount)
    {
        var completed = 0;
        foreach (var state in await GroupTaskStatesAsync(groupId))
        {
            if (state.IsCompleted)
            {
                completed++;
            }
        }

        return completed == groupTaskCount;
    }

    /// <summary><c>GroupTaskStates</c> (<c>getStates</c>: one read of every member, in member order).</summary>
    private async Task<List<TaskStateRecord>> GroupTaskStatesAsync(string groupId)
    {
        var meta = await ReadGroupMetaAsync(groupId);
        var values = await _redis.StringGetAsync([.. meta.TaskIds.Select(id => (RedisKey)id)]);
        var states = new List<TaskStateRecord>(values.Length);
        for (var i = 0; i < values.Length; i++)
        {
            states.Add(values[i].IsNull
                ? throw new InvalidOperationException($"redis: nil (state of {meta.TaskIds[i]})")
                : WireFormat.DeserializeState(((ReadOnlyMemory<byte>)values[i]).Span));
        }

        return states;
    }

    /// <summary><c>TriggerChord</c>: under the mutex, read the meta; if not triggered, set the flag and re-SET the meta.</summary>
    private async Task<bool> TriggerChordAsync(string groupId)
    {
        var value = Convert.ToBase64String(Guid.NewGuid().ToByteArray());
        await LockAsync(value);
        try
        {
            var meta = await ReadGroupMetaAsync(groupId);
            if (meta.ChordTriggered)
            {
                return false;
            }

            var triggered = new GroupMeta { GroupId = meta.GroupId, TaskIds = meta.TaskIds, ChordTriggered = true, Lock = meta.Lock, CreatedAt = meta.CreatedAt, Ttl = meta.Ttl };
            await _redis.StringSetAsync(groupId, WireFormat.SerializeGroupMeta(triggered), _resultsExpireIn);
            return true;
        }
        finally
        {
            await _redis.ScriptEvaluateAsync(UnlockScript, [MutexName], [value]);
        }
    }

    /// <summary>redsync's <c>Mutex.Lock</c>: <c>SET NX PX</c>, up to 32 tries, 50–250 ms apart.</summary>
    private async Task LockAsync(string value)
    {
        for (var attempt = 0; attempt < 32; attempt++)
        {
            if (await _redis.StringSetAsync(MutexName, value, MutexExpiry, When.NotExists))
            {
                return;
            }

            await Task.Delay(Random.Shared.Next(50, 251));
        }

        throw new InvalidOperationException("redsync: failed to acquire lock");
    }

    private async Task<GroupMeta> ReadGroupMetaAsync(string groupId)
    {
        var value = await _redis.StringGetAsync(groupId);
        return value.IsNull
            ? throw new InvalidOperationException($"redis: nil (group meta {groupId})")
            : WireFormat.DeserializeGroupMeta(((ReadOnlyMemory<byte>)value).Span);
    }

    /// <summary>Decodes a message as machinery does (<c>json.Decoder</c> with <c>UseNumber</c> into a Signature).</summary>
    internal static Signature Decode(ReadOnlySpan<byte> body) => WireFormat.DeserializeSignature(body);

    internal static string Text(ReadOnlyMemory<byte> body) => Encoding.UTF8.GetString(body.Span);
}
