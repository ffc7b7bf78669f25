using System.Text;
using Conveyor.Serialization;

namespace Conveyor.Tests.Wire;

/// <summary>What Go's decoder accepts, Conveyor accepts; what is not a message fails with <see cref="WireFormatException"/>.</summary>
public sealed class SignatureReaderTests
{
    [Fact]
    public void DeserializeSignature_MinimalLowerCaseMessage_ParsesWithDefaults()
    {
        // Go matches keys case-insensitively and leaves absent fields at their zero values.
        var signature = WireMessages.Parse("{\"uuid\":\"task_x\",\"name\":\"add\",\"args\":[{\"type\":\"int64\",\"value\":1}]}");

        Assert.Equal("task_x", signature.Id);
        Assert.Equal("add", signature.Name);
        var arg = Assert.Single(signature.Args);
        Assert.Equal(new TaskArgument(MachineryTypes.Int64, 1L), arg);
        Assert.Equal(string.Empty, signature.RoutingKey);
        Assert.Null(signature.Eta);
        Assert.Equal(string.Empty, signature.GroupId);
        Assert.Equal(0, signature.RetryCount);
        Assert.Null(signature.ChordCallback);
        Assert.Empty(signature.OnSuccess);

        // Written back in full, as Go would (Headers absent is a nil map: null).
        Assert.Equal(
            WireMessages.Canonical("[{\"Name\":\"\",\"Type\":\"int64\",\"Value\":1}]", "null").Replace(WireMessages.TaskId, "task_x", StringComparison.Ordinal).Replace("\"Name\":\"t\"", "\"Name\":\"add\"", StringComparison.Ordinal),
            WireMessages.Write(signature));
    }

    [Theory]
    [InlineData("{\"Args\":[{\"Value\":9007199254740993,\"Type\":\"int64\",\"Name\":\"n\"}],\"Name\":\"add\",\"UUID\":\"task_x\"}")]
    [InlineData("{\"NAME\":\"add\",\"uUiD\":\"task_x\",\"ARGS\":[{\"VALUE\":9007199254740993,\"name\":\"n\",\"tYpE\":\"int64\"}]}")]
    [InlineData("{\"\\u0055UID\":\"task_x\",\"N\\u0061me\":\"add\",\"Args\":[{\"Name\":\"n\",\"\\u0054ype\":\"int64\",\"Value\":9007199254740993}]}")]
    public void DeserializeSignature_KeysInAnyOrderOrCase_ReadTheSameMessage(string json)
    {
        var signature = WireMessages.Parse(json);

        Assert.Equal("task_x", signature.Id);
        Assert.Equal("add", signature.Name);
        Assert.Equal(new TaskArgument(MachineryTypes.Int64, 9007199254740993L, "n"), Assert.Single(signature.Args));
    }

    [Theory]
    [InlineData("[\"a\",\"b c\",\"\"]", "[]string")]
    [InlineData("2.0", "int64")]
    public void DeserializeSignature_ValueBeforeType_IsReadAsTheLaterType(string valueJson, string type)
    {
        var signature = WireMessages.Parse($"{{\"UUID\":\"task_x\",\"Name\":\"t\",\"Args\":[{{\"Value\":{valueJson},\"Name\":\"\",\"Type\":\"{type}\"}}]}}");

        var arg = Assert.Single(signature.Args);
        Assert.Equal(type, arg.Type);
        Assert.Equal(valueJson, WireMessages.FirstArgValueJson(signature));
        Assert.Equal(type == "int64", arg.IsInvalid); // 2.0 is not an int64 wherever the Type key is
    }

    [Fact]
    public void DeserializeSignature_UnknownFields_AreIgnored()
    {
        const string json =
            "{\"Extra\":{\"nested\":[1,2,{\"a\":null}],\"s\":\"}\"},\"UUID\":\"task_x\",\"Name\":\"add\"," +
            "\"AVeryLongFieldNameThatNoMachineryVersionHasEverHad\":[[[]]],\"RoutingKey\":\"q\",\"Unknown\":null," +
            "\"Args\":[{\"Name\":\"\",\"Type\":\"int64\",\"Value\":1,\"Comment\":{\"x\":[true]}}],\"Trailer\":1.5e300," +
            "\"ChordCallback\":{\"UUID\":\"task_cb\",\"Name\":\"cb\",\"Future\":\"field\"}}";

        var signature = WireMessages.Parse(json);

        Assert.Equal("task_x", signature.Id);
        Assert.Equal("add", signature.Name);
        Assert.Equal("q", signature.RoutingKey);
        Assert.Equal(new TaskArgument(MachineryTypes.Int64, 1L), Assert.Single(signature.Args));
        Assert.Equal("cb", signature.ChordCallback?.Name);
        Assert.DoesNotContain("Extra", WireMessages.Write(signature), StringComparison.Ordinal);
    }

    [Fact]
    public void DeserializeSignature_SqsFields_RoundTripThoughNotInThePublicApi()
    {
        var json = WireMessages.Canonical("[]")
            .Replace("\"BrokerMessageGroupId\":\"\"", "\"BrokerMessageGroupId\":\"g1\"", StringComparison.Ordinal)
            .Replace("\"SQSReceiptHandle\":\"\"", "\"SQSReceiptHandle\":\"r\\u0026h\"", StringComparison.Ordinal)
            .Replace("\"StopTaskDeletionOnError\":false", "\"StopTaskDeletionOnError\":true", StringComparison.Ordinal)
            .Replace("\"IgnoreWhenTaskNotRegistered\":false", "\"IgnoreWhenTaskNotRegistered\":true", StringComparison.Ordinal);

        var signature = WireMessages.Parse(json);

        Assert.True(signature.IgnoreWhenTaskNotRegistered);
        Assert.Equal(json, WireMessages.Write(signature));
        Assert.Equal(json, WireMessages.Write(signature.Clone()));
    }

    [Fact]
    public void DeserializeSignature_EveryScalarField_RoundTrips()
    {
        var json = WireMessages.Canonical("null")
            .Replace("\"RoutingKey\":\"\"", "\"RoutingKey\":\"q\"", StringComparison.Ordinal)
            .Replace("\"ETA\":null", "\"ETA\":\"2026-11-26T17:18:44.5241254Z\"", StringComparison.Ordinal)
            .Replace("\"GroupUUID\":\"\",\"GroupTaskCount\":0", "\"GroupUUID\":\"group_g\",\"GroupTaskCount\":3", StringComparison.Ordinal)
            .Replace("\"Priority\":0,\"Immutable\":false,\"RetryCount\":0,\"RetryTimeout\":0", "\"Priority\":255,\"Immutable\":true,\"RetryCount\":4,\"RetryTimeout\":13", StringComparison.Ordinal)
            .Replace("\"OnError\":null", "\"OnError\":[" + WireMessages.Canonical("[]", "null") + "]", StringComparison.Ordinal);

        var signature = WireMessages.Parse(json);

        Assert.Equal((byte)255, signature.Priority);
        Assert.True(signature.Immutable);
        Assert.Equal(4, signature.RetryCount);
        Assert.Equal(13, signature.RetryTimeout);
        Assert.Equal(3, signature.GroupTaskCount);
        Assert.Single(signature.OnError);
        Assert.Equal(json, WireMessages.Write(signature));
    }

    public static TheoryData<string, string> MalformedMessages => new()
    {
        { "not JSON", "not json" },
        { "empty", string.Empty },
        { "whitespace", "  \n" },
        { "JSON array", "[{\"UUID\":\"task_x\",\"Name\":\"add\",\"Args\":[]}]" },
        { "JSON number", "42" },
        { "JSON null", "null" },
        { "missing UUID", "{\"Name\":\"add\",\"Args\":[]}" },
        { "empty UUID", "{\"UUID\":\"\",\"Name\":\"add\",\"Args\":[]}" },
        { "missing Name", "{\"UUID\":\"task_x\",\"Args\":[]}" },
        { "Args an object", "{\"UUID\":\"task_x\",\"Name\":\"add\",\"Args\":{}}" },
        { "Args a string", "{\"UUID\":\"task_x\",\"Name\":\"add\",\"Args\":\"1,2\"}" },
        { "Args entry not an object", "{\"UUID\":\"task_x\",\"Name\":\"add\",\"Args\":[1]}" },
        { "Args entry without Type", "{\"UUID\":\"task_x\",\"Name\":\"add\",\"Args\":[{\"Value\":1}]}" },
        { "truncated in a string", "{\"UUID\":\"task_x\",\"Name\":\"ad" },
        { "truncated after a value", "{\"UUID\":\"task_x\",\"Name\":\"add\"" },
        { "truncated in Args", "{\"UUID\":\"task_x\",\"Name\":\"add\",\"Args\":[{\"Type\":\"int64\",\"Value\":" },
        { "UUID a number", "{\"UUID\":5,\"Name\":\"add\"}" },
        { "Priority out of uint8", "{\"UUID\":\"task_x\",\"Name\":\"add\",\"Priority\":300}" },
        { "RetryCount not an integer", "{\"UUID\":\"task_x\",\"Name\":\"add\",\"RetryCount\":1.5}" },
        { "ETA not a time", "{\"UUID\":\"task_x\",\"Name\":\"add\",\"ETA\":\"tomorrow\"}" },
        { "ETA a number", "{\"UUID\":\"task_x\",\"Name\":\"add\",\"ETA\":1795713526}" },
        { "ETA escaped and long", "{\"UUID\":\"task_x\",\"Name\":\"add\",\"ETA\":\"" + string.Concat(Enumerable.Repeat("\\u0041", 70)) + "\"}" },
        { "Headers an array", "{\"UUID\":\"task_x\",\"Name\":\"add\",\"Headers\":[]}" },
        { "OnSuccess an object", "{\"UUID\":\"task_x\",\"Name\":\"add\",\"OnSuccess\":{}}" },
        { "callback not an object", "{\"UUID\":\"task_x\",\"Name\":\"add\",\"ChordCallback\":[]}" },
        { "invalid UTF-8", "{\"UUID\":\"task_\u00ff\",\"Name\":\"add\"}" },
    };

    [Theory]
    [MemberData(nameof(MalformedMessages))]
    public void DeserializeSignature_MalformedInput_ThrowsWireFormatExceptionWithAMessage(string what, string json)
    {
        var bytes = what == "invalid UTF-8"
            ? Encoding.Latin1.GetBytes(json)
            : Encoding.UTF8.GetBytes(json);

        var error = Assert.Throws<WireFormatException>(() => WireFormat.DeserializeSignature(bytes));

        Assert.False(string.IsNullOrWhiteSpace(error.Message), what);
    }

    [Fact]
    public void DeserializeSignature_MissingName_SaysWhichMessage()
    {
        var error = Assert.Throws<WireFormatException>(() => WireMessages.Parse("{\"UUID\":\"task_x\",\"Args\":[]}"));

        Assert.Contains("task_x", error.Message, StringComparison.Ordinal);
        Assert.Contains("Name", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DeserializeSignature_CallbacksNestedTooDeep_ThrowsWireFormatException()
    {
        var json = new StringBuilder();
        const int depth = 100;
        for (var i = 0; i < depth; i++)
        {
            json.Append("{\"UUID\":\"task_x\",\"Name\":\"add\",\"ChordCallback\":");
        }

        json.Append("null").Append('}', depth);

        Assert.Throws<WireFormatException>(() => WireMessages.Parse(json.ToString()));
    }

    [Theory]
    [InlineData("not json")]
    [InlineData("[]")]
    [InlineData("null")]
    [InlineData("{\"TaskName\":\"t\",\"State\":\"SUCCESS\"}")] // no TaskUUID
    [InlineData("{\"TaskUUID\":\"task_x\",\"State\":\"DONE\"}")]
    [InlineData("{\"TaskUUID\":\"task_x\",\"Results\":{}}")]
    [InlineData("{\"TaskUUID\":\"task_x\",\"Results\":[{\"Value\":1}]}")]
    [InlineData("{\"TaskUUID\":\"task_x\",\"CreatedAt\":\"yesterday\"}")]
    [InlineData("{\"TaskUUID\":\"task_x\",\"TaskName\":\"t\"")]
    public void DeserializeState_MalformedInput_ThrowsWireFormatException(string json)
    {
        var error = Assert.Throws<WireFormatException>(() => WireFormat.DeserializeState(Encoding.UTF8.GetBytes(json)));

        Assert.False(string.IsNullOrWhiteSpace(error.Message));
    }

    [Theory]
    [InlineData("not json")]
    [InlineData("[]")]
    [InlineData("null")]
    [InlineData("{\"TaskUUIDs\":[]}")] // no GroupUUID
    [InlineData("{\"GroupUUID\":\"group_g\"}")] // no TaskUUIDs
    [InlineData("{\"GroupUUID\":\"group_g\",\"TaskUUIDs\":\"task_x\"}")]
    public void DeserializeGroupMeta_MalformedInput_ThrowsWireFormatException(string json)
    {
        var error = Assert.Throws<WireFormatException>(() => WireFormat.DeserializeGroupMeta(Encoding.UTF8.GetBytes(json)));

        Assert.False(string.IsNullOrWhiteSpace(error.Message));
    }

    [Fact]
    public void DeserializeStateAndGroupMeta_InvalidUtf8_ThrowWireFormatException()
    {
        byte[] state = [.. "{\"TaskUUID\":\"task_"u8, 0xFF, .. "\",\"TaskName\":\"t\"}"u8];
        byte[] meta = [.. "{\"GroupUUID\":\"group_g\",\"TaskUUIDs\":[\"task_"u8, 0xC3, .. "\"]}"u8];
        byte[] result = [.. "{\"TaskUUID\":\"task_x\",\"Results\":[{\"Type\":\"string\",\"Value\":\""u8, 0xFF, .. "\"}]}"u8];

        Assert.Throws<WireFormatException>(() => WireFormat.DeserializeState(state));
        Assert.Throws<WireFormatException>(() => WireFormat.DeserializeGroupMeta(meta));
        Assert.Throws<WireFormatException>(() => WireFormat.DeserializeState(result));
    }

    [Fact]
    public void DeserializeSignature_EscapedEta_IsUnescapedThenParsed()
    {
        // Go's decoder unescapes before parsing the time, however long the escaped text is.
        var escaped = string.Concat("2026-11-26T17:18:44.524125449Z".Select(c => $"\\u{(int)c:x4}"));

        var signature = WireMessages.Parse($"{{\"UUID\":\"task_x\",\"Name\":\"add\",\"ETA\":\"{escaped}\"}}");

        Assert.Equal(new DateTimeOffset(2026, 11, 26, 17, 18, 44, TimeSpan.Zero).AddTicks(5_241_254), signature.Eta);
    }

    [Fact]
    public void DeserializeState_LowerCaseKeys_Parse()
    {
        var state = WireFormat.DeserializeState(
            "{\"taskuuid\":\"task_x\",\"taskname\":\"t\",\"state\":\"SUCCESS\",\"results\":[{\"value\":3,\"type\":\"int64\"}],\"createdat\":\"2026-11-26T17:18:43Z\"}"u8);

        Assert.Equal("task_x", state.TaskId);
        Assert.Equal(TaskState.Success, state.State);
        Assert.Equal(new TaskResult(MachineryTypes.Int64, 3L), Assert.Single(state.Results!));
        Assert.Equal(new DateTimeOffset(2026, 11, 26, 17, 18, 43, TimeSpan.Zero), state.CreatedAt);
    }
}
