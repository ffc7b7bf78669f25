namespace Conveyor.Conformance;

/// <summary>
/// The chord protocol that Conveyor shares with Go machinery workers: a group completes when every member's state is
/// final, whether a Conveyor worker recorded the member or a peer only wrote its state (machinery's
/// <c>GroupCompleted</c>), and the callback is claimed once through <c>ChordTriggered</c> (machinery's
/// <c>TriggerChord</c>).
/// </summary>
/// <typeparam name="TFactory">The provider's factory.</typeparam>
public abstract class ChordProtocolConformanceTests<TFactory> : IClassFixture<TFactory>
    where TFactory : class, IConveyorProviderFactory
{
    /// <summary>Creates the suite.</summary>
    /// <param name="factory">The provider's factory (a class fixture).</param>
    protected ChordProtocolConformanceTests(TFactory factory) => Factory = factory;

    /// <summary>The provider's factory.</summary>
    protected TFactory Factory { get; }

    private static TaskStateRecord State(string id, TaskState state, string error = "") =>
        new() { TaskId = id, TaskName = "add", State = state, CreatedAt = DateTimeOffset.UnixEpoch, Error = error };

    private static async Task<(string GroupId, List<string> Members)> NewGroupAsync(IResultBackend backend, int size)
    {
        var groupId = TaskIds.NewGroupId();
        var members = Enumerable.Range(0, size).Select(_ => TaskIds.NewTaskId()).ToList();
        await backend.InitGroupAsync(new GroupMeta { GroupId = groupId, TaskIds = members, CreatedAt = DateTimeOffset.UnixEpoch });
        foreach (var id in members)
        {
            await backend.SetStateAsync(State(id, TaskState.Pending));
        }

        return (groupId, members);
    }

    [Fact]
    public async Task CompleteGroupMember_MembersAPeerFinishedWithStatesOnly_CountTowardCompletion()
    {
        await using var backend = await Factory.CreateBackendAsync();
        var (groupId, members) = await NewGroupAsync(backend, 6);

        // Even members: a peer (a Go machinery worker) writes SUCCESS and never calls CompleteGroupMember.
        for (var i = 0; i < members.Count; i += 2)
        {
            await backend.SetStateAsync(State(members[i], TaskState.Success));
        }

        var first = await backend.CompleteGroupMemberAsync(groupId, members[1], succeeded: true);
        var second = await backend.CompleteGroupMemberAsync(groupId, members[3], succeeded: true);
        Assert.InRange(first.Completed, 1, 5);
        Assert.InRange(second.Completed, 2, 5);
        await backend.SetStateAsync(State(members[5], TaskState.Success));
        var last = await backend.CompleteGroupMemberAsync(groupId, members[5], succeeded: true);

        Assert.Equal(new GroupCompletion(6, 0, true, false), last);
    }

    [Fact]
    public async Task CompleteGroupMember_APeersFailure_IsCountedOnce()
    {
        await using var backend = await Factory.CreateBackendAsync();
        var (groupId, members) = await NewGroupAsync(backend, 3);
        await backend.SetStateAsync(State(members[0], TaskState.Failure, "boom"));
        await backend.SetStateAsync(State(members[1], TaskState.Success));

        await backend.SetStateAsync(State(members[2], TaskState.Success));
        var last = await backend.CompleteGroupMemberAsync(groupId, members[2], succeeded: true);
        var again = await backend.CompleteGroupMemberAsync(groupId, members[2], succeeded: true);

        Assert.Equal(new GroupCompletion(3, 1, true, false), last);
        Assert.Equal(new GroupCompletion(3, 1, false, false), again);
    }

    [Fact]
    public async Task CompleteGroupMember_AMemberStillRunning_KeepsTheGroupOpen()
    {
        await using var backend = await Factory.CreateBackendAsync();
        var (groupId, members) = await NewGroupAsync(backend, 3);
        await backend.SetStateAsync(State(members[0], TaskState.Success));
        await backend.SetStateAsync(State(members[1], TaskState.Started)); // a peer runs it
        await backend.SetStateAsync(State(members[2], TaskState.Success));

        var completion = await backend.CompleteGroupMemberAsync(groupId, members[2], succeeded: true);
        Assert.True(completion.Completed < 3, $"completed {completion.Completed} of 3 with a member still STARTED");

        // The peer finishes it; the next completion call (a redelivery here) sees the whole group.
        await backend.SetStateAsync(State(members[1], TaskState.Success));
        Assert.Equal(3, (await backend.CompleteGroupMemberAsync(groupId, members[2], succeeded: true)).Completed);
    }

    [Fact]
    public async Task ClaimChord_ConcurrentClaimants_ExactlyOneWins_AndTheMetaSaysTriggered()
    {
        await using var backend = await Factory.CreateBackendAsync();
        var (groupId, members) = await NewGroupAsync(backend, 20);

        var claims = await Task.WhenAll(members.Select(id => Task.Run(async () => await backend.ClaimChordAsync(groupId, id))));

        Assert.Single(claims, c => c == ChordClaim.Won);
        Assert.Equal(members.Count - 1, claims.Count(c => c == ChordClaim.Lost));
        Assert.True((await backend.GetGroupMetaAsync(groupId))!.ChordTriggered);
        Assert.True((await backend.CompleteGroupMemberAsync(groupId, members[0], succeeded: true)).ChordTriggered);
    }

    [Fact]
    public async Task ClaimChord_TheWinnerAgainBeforeItPublished_Resumes_AndAfterTheMark_Loses()
    {
        await using var backend = await Factory.CreateBackendAsync();
        var (groupId, members) = await NewGroupAsync(backend, 2);

        Assert.Equal(ChordClaim.Won, await backend.ClaimChordAsync(groupId, members[1]));
        Assert.Equal(ChordClaim.Lost, await backend.ClaimChordAsync(groupId, members[0]));
        Assert.Equal(ChordClaim.Resumed, await backend.ClaimChordAsync(groupId, members[1])); // its redelivery
        await backend.MarkChordTriggeredAsync(groupId);
        Assert.Equal(ChordClaim.Lost, await backend.ClaimChordAsync(groupId, members[1]));
        Assert.True((await backend.GetGroupMetaAsync(groupId))!.ChordTriggered);
    }

    [Fact]
    public async Task ClaimChord_AMetaAPeerAlreadyMarked_Loses()
    {
        await using var backend = await Factory.CreateBackendAsync();
        var groupId = TaskIds.NewGroupId();
        var members = new[] { TaskIds.NewTaskId(), TaskIds.NewTaskId() };

        // What machinery's TriggerChord leaves: the meta re-written with ChordTriggered true.
        await backend.InitGroupAsync(new GroupMeta { GroupId = groupId, TaskIds = members, ChordTriggered = true, CreatedAt = DateTimeOffset.UnixEpoch });

        Assert.Equal(ChordClaim.Lost, await backend.ClaimChordAsync(groupId, members[0]));
    }

    [Fact]
    public async Task ClaimChord_WithoutAGroupMeta_ThrowsSayingSo()
    {
        await using var backend = await Factory.CreateBackendAsync();
        var error = await Assert.ThrowsAsync<InvalidOperationException>(async () => await backend.ClaimChordAsync(TaskIds.NewGroupId(), TaskIds.NewTaskId()));
        Assert.Contains("group meta is missing", error.Message, StringComparison.Ordinal);
    }
}
