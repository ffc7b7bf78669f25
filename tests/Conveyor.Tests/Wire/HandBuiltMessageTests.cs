using System.Text;
using System.Text.Json;
using Conveyor.Serialization;

namespace Conveyor.Tests.Wire;

/// <summary>
/// Conveyor writes what machinery writes: the tasks of the captures, built again with Conveyor's public API, serialize
/// to the captured bytes.
/// </summary>
public sealed class HandBuiltMessageTests
{
    private const string Queue = "machinery_wire";

    [Fact]
    public void SerializeSignature_WireTypesTaskBuiltByHand_EqualsMachineryBytes()
    {
        var expected = WireSamples.ReadBytes("redis/broker_task_wire_types.raw.json");
        var signature = new Signature(
            "wire_types",
            new TaskArgument(MachineryTypes.String, "héllo \"wörld\" <&>", "s"),
            TaskArgument.Int64(9007199254740993),
            TaskArgument.Float64(3.25),
            TaskArgument.Bool(true),
            TaskArgument.From(new[] { "a", "b c", string.Empty }))
        {
            Id = IdOf(expected),
            RoutingKey = Queue,
        };
        _ = signature.Headers; // machinery's producer always sends a (possibly empty) header map: {} rather than null

        AssertSameBytes(expected, WireFormat.SerializeSignature(signature));
    }

    [Fact]
    public void SerializeSignature_WireTypesTaskBuiltByHand_EqualsAmqpBodyToo()
    {
        // The AMQP run used another UUID, but the same bytes otherwise: one format for both brokers.
        var expected = WireSamples.ReadBytes("amqp/amqp_task_wire_types.body.raw.json");
        var signature = new Signature(
            "wire_types",
            new TaskArgument(MachineryTypes.String, "héllo \"wörld\" <&>", "s"),
            TaskArgument.Int64(9007199254740993),
            TaskArgument.Float64(3.25),
            TaskArgument.Bool(true),
            TaskArgument.From(new[] { "a", "b c", string.Empty }))
        {
            Id = IdOf(expected),
            RoutingKey = Queue,
        };
        _ = signature.Headers;

        AssertSameBytes(expected, WireFormat.SerializeSignature(signature));
    }

    [Fact]
    public void SerializeSignature_ChainHeadBuiltByHand_EqualsMachineryBytes()
    {
        var expected = WireSamples.ReadBytes("redis/broker_chain_head.raw.json");
        using var document = JsonDocument.Parse(expected);
        var second = document.RootElement.GetProperty("OnSuccess")[0];
        var third = second.GetProperty("OnSuccess")[0];

        var head = new Signature("add", TaskArgument.Int64(1), TaskArgument.Int64(2))
        {
            Id = document.RootElement.GetProperty("UUID").GetString()!,
            RoutingKey = Queue,
        };
        _ = head.Headers; // only the published head gets headers; the nested ones stay null, as in machinery
        var addTen = new Signature("add_many", TaskArgument.Int64(10)) { Id = second.GetProperty("UUID").GetString()! };
        var addHundred = new Signature("add_many", TaskArgument.Int64(100)) { Id = third.GetProperty("UUID").GetString()! };

        var chain = new Chain(head, addTen, addHundred);

        Assert.Same(head, chain.Tasks[0]);
        AssertSameBytes(expected, WireFormat.SerializeSignature(chain.Tasks[0]));
    }

    [Theory]
    [InlineData("redis/broker_chord_task1.raw.json", "redis/broker_chord_task2.raw.json", "redis/groupmeta_chord_initial.raw.json")]
    [InlineData("amqp/amqp_chord_task1.body.raw.json", "amqp/amqp_chord_task2.body.raw.json", "amqp/groupmeta_chord_final.raw.json")]
    public void SerializeSignature_ChordMembersBuiltByHand_EqualMachineryBytes(string member1File, string member2File, string groupMetaFile)
    {
        var member1 = WireSamples.ReadBytes(member1File);
        var member2 = WireSamples.ReadBytes(member2File);
        var groupMetaBytes = WireSamples.ReadBytes(groupMetaFile);
        using var groupMeta = JsonDocument.Parse(groupMetaBytes);
        using var first = JsonDocument.Parse(member1);
        var groupId = groupMeta.RootElement.GetProperty("GroupUUID").GetString()!;
        var callbackId = first.RootElement.GetProperty("ChordCallback").GetProperty("UUID").GetString()!;

        // Members in the group's order (TaskUUIDs), each with the arguments of its capture.
        var members = groupMeta.RootElement.GetProperty("TaskUUIDs").EnumerateArray()
            .Select(id => id.GetString()!)
            .Select(id =>
            {
                using var capture = JsonDocument.Parse(id == IdOf(member1) ? member1 : member2);
                var args = capture.RootElement.GetProperty("Args").EnumerateArray().Select(a => TaskArgument.Int64(a.GetProperty("Value").GetInt64()));
                var task = new Signature("add", args) { Id = id, RoutingKey = Queue };
                _ = task.Headers;
                return task;
            })
            .ToList();
        var callback = new Signature("add_many", TaskArgument.Int64(1000)) { Id = callbackId };
        _ = callback.Headers; // machinery annotates the chord callback with the trace headers: {} on the wire

        var group = new TaskGroup(members);
        var chord = new Chord(group, callback);
        foreach (var task in group.Tasks)
        {
            task.GroupId = groupId; // TaskGroup made its own id; use the capture's
        }

        Assert.All(group.Tasks, t => Assert.Equal(2, t.GroupTaskCount));
        Assert.All(group.Tasks, t => Assert.Same(chord.Callback, t.ChordCallback));
        AssertSameBytes(member1, WireFormat.SerializeSignature(group.Tasks.Single(t => t.Id == IdOf(member1))));
        AssertSameBytes(member2, WireFormat.SerializeSignature(group.Tasks.Single(t => t.Id == IdOf(member2))));

        // And the group meta the producer stores for it.
        var meta = new GroupMeta
        {
            GroupId = groupId,
            TaskIds = [.. group.Tasks.Select(t => t.Id)],
            ChordTriggered = groupMeta.RootElement.GetProperty("ChordTriggered").GetBoolean(),
            CreatedAt = CreatedAtOf(groupMeta.RootElement),
        };
        AssertSameBytesAfterNormalizing(groupMetaBytes, WireFormat.SerializeGroupMeta(meta));
    }

    [Fact]
    public void SerializeSignature_GroupMemberBuiltByHand_EqualsMachineryBytes()
    {
        var expected1 = WireSamples.ReadBytes("redis/broker_group_task1.raw.json");
        var expected2 = WireSamples.ReadBytes("redis/broker_group_task2.raw.json");
        using var document = JsonDocument.Parse(expected1);
        var task1 = new Signature("add", TaskArgument.Int64(1), TaskArgument.Int64(2)) { Id = IdOf(expected1), RoutingKey = Queue };
        var task2 = new Signature("add", TaskArgument.Int64(3), TaskArgument.Int64(4)) { Id = IdOf(expected2), RoutingKey = Queue };
        _ = task1.Headers;
        _ = task2.Headers;

        var group = new TaskGroup(task1, task2);
        foreach (var task in group.Tasks)
        {
            task.GroupId = document.RootElement.GetProperty("GroupUUID").GetString()!;
        }

        AssertSameBytes(expected1, WireFormat.SerializeSignature(task1));
        AssertSameBytes(expected2, WireFormat.SerializeSignature(task2));
    }

    [Fact]
    public void SerializeSignature_RetriedTaskBuiltByHand_EqualsDelayedTasksMemberAfterNormalizing()
    {
        // The retry machinery re-published into delayed_tasks: RetryCount 2 -> 1, RetryTimeout 0 -> 1 s, ETA set.
        var expected = WireSamples.ReadBytes("redis/delayed_tasks_member_retry.raw.json");
        using var document = JsonDocument.Parse(expected);
        var signature = new Signature("fail", TaskArgument.String("retry me"))
        {
            Id = IdOf(expected),
            RoutingKey = Queue,
            RetryCount = 1,
            RetryTimeout = 1,
            Eta = DateTimeOffset.Parse(
                WireSamples.NormalizeTimestamps($"\"{document.RootElement.GetProperty("ETA").GetString()}\"").Trim('"'),
                System.Globalization.CultureInfo.InvariantCulture),
        };
        _ = signature.Headers;

        AssertSameBytesAfterNormalizing(expected, WireFormat.SerializeSignature(signature));
    }

    [Theory]
    [InlineData("redis/state_SUCCESS_wire_types.raw.json")]
    [InlineData("amqp/state_SUCCESS_wire_types.raw.json")]
    public void SerializeState_WireTypesSuccessBuiltByHand_EqualsMachineryBytesAfterNormalizing(string file)
    {
        var expected = WireSamples.ReadBytes(file);
        using var document = JsonDocument.Parse(expected);
        var state = new TaskStateRecord
        {
            TaskId = document.RootElement.GetProperty("TaskUUID").GetString()!,
            TaskName = "wire_types",
            State = TaskState.Success,
            Results =
            [
                new TaskResult(MachineryTypes.String, "HÉLLO \"WÖRLD\" <&>"),
                new TaskResult(MachineryTypes.Int64, 9007199254740994L),
                new TaskResult(MachineryTypes.Float64, 6.5),
                new TaskResult(MachineryTypes.Bool, false),
                new TaskResult("[]string", new[] { "a", "b c", string.Empty, "z" }),
            ],
            CreatedAt = CreatedAtOf(document.RootElement),
        };

        AssertSameBytesAfterNormalizing(expected, WireFormat.SerializeState(state));
    }

    [Fact]
    public void SerializeState_PendingBuiltByHand_EqualsMachineryBytesAfterNormalizing()
    {
        var expected = WireSamples.ReadBytes("redis/state_PENDING_wire_types.raw.json");
        using var document = JsonDocument.Parse(expected);
        var state = new TaskStateRecord
        {
            TaskId = document.RootElement.GetProperty("TaskUUID").GetString()!,
            TaskName = "wire_types",
            State = TaskState.Pending,
            CreatedAt = CreatedAtOf(document.RootElement),
        };

        AssertSameBytesAfterNormalizing(expected, WireFormat.SerializeState(state));

        // The later states keep CreatedAt, as machinery does (SUCCESS carries the PENDING time).
        var success = WireFormat.DeserializeState(WireSamples.ReadBytes("redis/state_SUCCESS_wire_types.raw.json"));
        Assert.Equal(state.CreatedAt, success.CreatedAt);
        Assert.Equal(state.CreatedAt, state.With(TaskState.Success).CreatedAt);
    }

    [Fact]
    public void SerializeState_FailureBuiltByHand_EqualsMachineryBytesAfterNormalizing()
    {
        var expected = WireSamples.ReadBytes("redis/state_FAILURE_fail.raw.json");
        using var document = JsonDocument.Parse(expected);
        var pending = new TaskStateRecord
        {
            TaskId = document.RootElement.GetProperty("TaskUUID").GetString()!,
            TaskName = "fail",
            State = TaskState.Pending,
            CreatedAt = CreatedAtOf(document.RootElement),
        };

        AssertSameBytesAfterNormalizing(expected, WireFormat.SerializeState(pending.With(TaskState.Failure, error: "boom")));
    }

    private static string IdOf(byte[] message)
    {
        using var document = JsonDocument.Parse(message);
        return document.RootElement.GetProperty("UUID").GetString()!;
    }

    private static DateTimeOffset CreatedAtOf(JsonElement root)
    {
        Assert.True(GoTime.TryParse(Encoding.UTF8.GetBytes(root.GetProperty("CreatedAt").GetString()!), out var createdAt));
        return createdAt;
    }

    private static void AssertSameBytes(byte[] expected, byte[] actual)
    {
        Assert.Equal(Encoding.UTF8.GetString(expected), Encoding.UTF8.GetString(actual));
        Assert.True(expected.AsSpan().SequenceEqual(actual), "the text matches but the bytes differ");
    }

    private static void AssertSameBytesAfterNormalizing(byte[] expected, byte[] actual) =>
        Assert.Equal(WireSamples.NormalizeTimestamps(Encoding.UTF8.GetString(expected)), Encoding.UTF8.GetString(actual));
}
