using Conveyor.Conformance;
using Conveyor.Tests.InMemory;

namespace Conveyor.Tests.Core;

public sealed class WorkflowScaleTests
{
    [Fact]
    public async Task Chord_TenThousandMembers_CallbackRunsOnceWithEveryResultInMemberOrder()
    {
        await using var t = await ConveyorTestContext.CreateAsync(new InMemoryProviderFactory());
        var callbackRuns = 0;
        long[]? received = null;
        t.Registry.Register("identity", (long x) => x);
        t.Registry.Register("collect", (params long[] values) =>
        {
            Interlocked.Increment(ref callbackRuns);
            received = values;
            return (long)values.Length;
        });
        await t.StartWorkerAsync(o => o.Concurrency = 16);

        const int members = 10_000;
        var group = new TaskGroup(Enumerable.Range(0, members).Select(i => new Signature("identity", TaskArgument.Int64(i))));
        var result = await t.Client.SendChordAsync(new Chord(group, new Signature("collect")), sendConcurrency: 8);

        Assert.Equal((long)members, await result.Callback.GetValueAsync<long>(TimeSpan.FromMinutes(2)));
        await Task.Delay(100);
        Assert.Equal(1, Volatile.Read(ref callbackRuns));
        Assert.Equal(Enumerable.Range(0, members).Select(i => (long)i), received);
    }
}
