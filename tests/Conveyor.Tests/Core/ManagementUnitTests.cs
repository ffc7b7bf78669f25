namespace Conveyor.Tests.Core;

public sealed class ManagementUnitTests
{
    [Fact]
    public void Reserve_EmptyBucketAtTenASecond_GivesTurnsOneTenthOfASecondApart()
    {
        double tokens = 1;

        var first = TokenBucket.Reserve(ref tokens, 0, 10, 1, TimeSpan.FromSeconds(5));
        var second = TokenBucket.Reserve(ref tokens, 0, 10, 1, TimeSpan.FromSeconds(5));
        var third = TokenBucket.Reserve(ref tokens, 0, 10, 1, TimeSpan.FromSeconds(5));

        Assert.Equal(new TokenReservation(true, TimeSpan.Zero), first);
        Assert.Equal(new TokenReservation(true, TimeSpan.FromMilliseconds(100)), second);
        Assert.Equal(new TokenReservation(true, TimeSpan.FromMilliseconds(200)), third);
        Assert.Equal(-2, tokens, 6);
    }

    [Fact]
    public void Reserve_TurnBeyondMaxWait_RefusesAndKeepsTheBucket()
    {
        double tokens = -4; // five turns already given at 10 a second: the next is 0.5 s away

        var refused = TokenBucket.Reserve(ref tokens, 0, 10, 1, TimeSpan.FromMilliseconds(300));

        Assert.False(refused.Granted);
        Assert.Equal(TimeSpan.FromMilliseconds(200), refused.Wait);
        Assert.Equal(-4, tokens);
    }

    [Fact]
    public void Reserve_AfterAQuietSpell_RefillsOnlyUpToTheBurst()
    {
        double tokens = 0;

        TokenBucket.Reserve(ref tokens, elapsedMs: 60_000, ratePerSecond: 10, burst: 3, maxWait: TimeSpan.Zero);

        Assert.Equal(2, tokens, 6);
    }

    [Fact]
    public void DefaultKey_SameNameAndArguments_SameKeyOtherArgumentsOtherKey()
    {
        var a = UniqueOptions.DefaultKey(new Signature("add", TaskArgument.Int64(1), TaskArgument.Int64(2)));
        var b = UniqueOptions.DefaultKey(new Signature("add", TaskArgument.Int64(1), TaskArgument.Int64(2)));
        var c = UniqueOptions.DefaultKey(new Signature("add", TaskArgument.Int64(2), TaskArgument.Int64(1)));

        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
        Assert.StartsWith("unique:add:", a, StringComparison.Ordinal);
    }

    [Fact]
    public void IsRevoked_FailureWithRevokedError_TrueOtherFailuresFalse()
    {
        var state = new TaskStateRecord { TaskId = "task_1", State = TaskState.Failure, Error = "revoked: by hand" };

        Assert.True(state.IsRevoked());
        Assert.False(state.With(TaskState.Failure, error: "boom").IsRevoked());
        Assert.False(state.With(TaskState.Success).IsRevoked());
        Assert.Equal(ManagedTaskState.Revoked, TaskSummary.FromState(state).State);
    }
}
