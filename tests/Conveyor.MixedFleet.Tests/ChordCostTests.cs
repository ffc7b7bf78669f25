using System.Collections.Concurrent;
using Conveyor.Redis;

namespace Conveyor.MixedFleet.Tests;

/// <summary>A result backend that counts the calls made to it, by member name, and passes them on.</summary>
internal sealed class CountingResultBackend(IResultBackend inner) : IResultBackend
{
    public ConcurrentDictionary<string, int> Calls { get; } = new(StringComparer.Ordinal);

    public int this[string member] => Calls.GetValueOrDefault(member);

    public ResultBackendCapabilities Capabilities => inner.Capabilities;

    private void Count(string member) => Calls.AddOrUpdate(member, 1, static (_, n) => n + 1);

    public ValueTask SetStateAsync(TaskStateRecord state, CancellationToken cancellationToken = default)
    {
        Count(nameof(SetStateAsync));
        return inner.SetStateAsync(state, cancellationToken);
    }

    public ValueTask<TaskStateRecord?> GetStateAsync(string taskId, CancellationToken cancellationToken = default)
    {
        Count(nameof(GetStateAsync));
        return inner.GetStateAsync(taskId, cancellationToken);
    }

    public ValueTask<IReadOnlyList<TaskStateRecord?>> GetStatesAsync(IReadOnlyList<string> taskIds, CancellationToken cancellationToken = default)
    {
        Count(nameof(GetStatesAsync));
        return inner.GetStatesAsync(taskIds, cancellationToken);
    }

    public ValueTask InitGroupAsync(GroupMeta meta, CancellationToken cancellationToken = default)
    {
        Count(nameof(InitGroupAsync));
        return inner.InitGroupAsync(meta, cancellationToken);
    }

    public ValueTask<GroupMeta?> GetGroupMetaAsync(string groupId, CancellationToken cancellationToken = default)
    {
        Count(nameof(GetGroupMetaAsync));
        return inner.GetGroupMetaAsync(groupId, cancellationToken);
    }

    public ValueTask<GroupCompletion> CompleteGroupMemberAsync(string groupId, string taskId, bool succeeded, string? traceParent = null, CancellationToken cancellationToken = default)
    {
        Count(nameof(CompleteGroupMemberAsync));
        return inner.CompleteGroupMemberAsync(groupId, taskId, succeeded, traceParent, cancellationToken);
    }

    public ValueTask<IReadOnlyList<string>> GetGroupMemberTraceParentsAsync(string groupId, int maxCount, CancellationToken cancellationToken = default)
    {
        Count(nameof(GetGroupMemberTraceParentsAsync));
        return inner.GetGroupMemberTraceParentsAsync(groupId, maxCount, cancellationToken);
    }

    public ValueTask<ChordClaim> ClaimChordAsync(string groupId, string claimantId, CancellationToken cancellationToken = default)
    {
        Count(nameof(ClaimChordAsync));
        return inner.ClaimChordAsync(groupId, claimantId, cancellationToken);
    }

    public ValueTask MarkChordTriggeredAsync(string groupId, CancellationToken cancellationToken = default)
    {
        Count(nameof(MarkChordTriggeredAsync));
        return inner.MarkChordTriggeredAsync(groupId, cancellationToken);
    }

    public ValueTask WaitForChangeAsync(string taskId, TimeSpan maxWait, CancellationToken cancellationToken = default) =>
        inner.WaitForChangeAsync(taskId, maxWait, cancellationToken);

    public ValueTask DeleteStateAsync(string taskId, CancellationToken cancellationToken = default) => inner.DeleteStateAsync(taskId, cancellationToken);

    public ValueTask DeleteGroupAsync(string groupId, CancellationToken cancellationToken = default) => inner.DeleteGroupAsync(groupId, cancellationToken);

    public ValueTask DisposeAsync() => inner.DisposeAsync();
}

/// <summary>What a chord costs the result backend when only Conveyor workers run it.</summary>
public sealed class ChordCostTests(RedisFleetFixture fixture) : IClassFixture<RedisFleetFixture>
{
    [Fact]
    public async Task Chord_OfTenThousandMembers_OnConveyorWorkersAlone_CostsOneBackendCallPerMember()
    {
        const int Size = 10_000;
        const int Concurrency = 8;
        var queue = "chord_cost_" + Guid.NewGuid().ToString("N")[..8];
        await using var broker = new RedisBroker(fixture.Redis, fixture.Options);
        var backend = new CountingResultBackend(new RedisResultBackend(fixture.Redis, fixture.Options));
        await using var _ = backend;
        var client = new ConveyorClient(broker, backend, new ConveyorClientOptions { DefaultQueue = queue });
        var registry = new TaskRegistry().Register("add", (long a, long b) => a + b).Register("sum", (params long[] values) => values.Sum());
        var members = Enumerable.Range(0, Size).Select(i => new Signature("add", TaskArgument.Int64(i), TaskArgument.Int64(1))).ToList();
        var callback = new Signature("sum");
        var chord = await client.SendChordAsync(new Chord(new TaskGroup(members), callback));

        using var worker = new ConveyorWorker(client, registry, new WorkerOptions { Queue = queue, Concurrency = Concurrency });
        await worker.StartAsync(CancellationToken.None);
        try
        {
            var sum = await chord.Callback.GetValueAsync<long>(TimeSpan.FromSeconds(120));
            Assert.Equal(((long)Size * (Size - 1) / 2) + Size, sum);
        }
        finally
        {
            await worker.StopAsync(CancellationToken.None);
        }

        // One completion call per member (each O(1) amortized on the server); only members that find the group
        // complete claim the callback, at most one per task running at that moment; the winner alone reads.
        Assert.Equal(Size, backend[nameof(IResultBackend.CompleteGroupMemberAsync)]);
        Assert.InRange(backend[nameof(IResultBackend.ClaimChordAsync)], 1, Concurrency);
        Assert.Equal(1, backend[nameof(IResultBackend.GetGroupMetaAsync)]);
        Assert.Equal(1, backend[nameof(IResultBackend.GetStatesAsync)]);
        Assert.Equal(1, backend[nameof(IResultBackend.MarkChordTriggeredAsync)]);
        await fixture.Redis.GetDatabase().KeyDeleteAsync(queue);
    }
}
