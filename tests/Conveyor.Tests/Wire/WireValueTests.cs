using System.Text;
using Conveyor.Serialization;

namespace Conveyor.Tests.Wire;

/// <summary>Argument and result values by machinery type string; Go's number and string formatting.</summary>
public sealed class WireValueTests
{
    [Theory]
    [InlineData("9007199254740993", 9007199254740993L)] // 2^53 + 1: a double would make it ...992
    [InlineData("9223372036854775807", long.MaxValue)]
    [InlineData("-9223372036854775808", long.MinValue)]
    [InlineData("0", 0L)]
    public void DeserializeSignature_Int64Extremes_SurviveExactly(string literal, long expected)
    {
        var json = WireMessages.WithArg(MachineryTypes.Int64, literal);

        var signature = WireMessages.Parse(json);

        var value = Assert.IsType<long>(signature.Args[0].Value);
        Assert.Equal(expected, value);
        Assert.Equal(json, WireMessages.Write(signature));
        Assert.Equal(literal, WireMessages.FirstArgValueJson(new Signature("t", TaskArgument.Int64(expected))));
    }

    [Fact]
    public void DeserializeSignature_UInt64Max_SurvivesExactly()
    {
        var json = WireMessages.WithArg(MachineryTypes.UInt64, "18446744073709551615");

        var signature = WireMessages.Parse(json);

        Assert.Equal(ulong.MaxValue, Assert.IsType<ulong>(signature.Args[0].Value));
        Assert.Equal(json, WireMessages.Write(signature));
    }

    [Theory]
    [InlineData("bool", "true", typeof(bool))]
    [InlineData("bool", "false", typeof(bool))]
    [InlineData("int", "-42", typeof(long))]
    [InlineData("int8", "-128", typeof(sbyte))]
    [InlineData("int16", "-32768", typeof(short))]
    [InlineData("int32", "2147483647", typeof(int))]
    [InlineData("int64", "-9223372036854775808", typeof(long))]
    [InlineData("uint", "18446744073709551615", typeof(ulong))]
    [InlineData("uint8", "255", typeof(byte))]
    [InlineData("uint16", "65535", typeof(ushort))]
    [InlineData("uint32", "4294967295", typeof(uint))]
    [InlineData("uint64", "18446744073709551615", typeof(ulong))]
    [InlineData("float32", "0.1", typeof(float))]
    [InlineData("float64", "3.25", typeof(double))]
    [InlineData("float64", "1e+21", typeof(double))]
    [InlineData("string", "\"héllo \\u003c\\u0026\\u003e\"", typeof(string))]
    [InlineData("[]bool", "[true,false]", typeof(bool[]))]
    [InlineData("[]int", "[1,-2]", typeof(long[]))]
    [InlineData("[]int8", "[127,-128]", typeof(sbyte[]))]
    [InlineData("[]int16", "[32767,-32768]", typeof(short[]))]
    [InlineData("[]int32", "[2147483647,-2147483648]", typeof(int[]))]
    [InlineData("[]int64", "[9007199254740993,-9223372036854775808]", typeof(long[]))]
    [InlineData("[]uint", "[0,18446744073709551615]", typeof(ulong[]))]
    [InlineData("[]uint16", "[0,65535]", typeof(ushort[]))]
    [InlineData("[]uint32", "[0,4294967295]", typeof(uint[]))]
    [InlineData("[]uint64", "[0,18446744073709551615]", typeof(ulong[]))]
    [InlineData("[]float32", "[0.1,-2.5]", typeof(float[]))]
    [InlineData("[]float64", "[0.30000000000000004,1e-7]", typeof(double[]))]
    [InlineData("[]string", "[\"a\",\"b c\",\"\"]", typeof(string[]))]
    [InlineData("[]string", "[]", typeof(string[]))]
    [InlineData("[]byte", "\"AAEC/w==\"", typeof(byte[]))]
    [InlineData("[]uint8", "\"aGk=\"", typeof(byte[]))]
    public void DeserializeSignature_EveryTableType_ReadsItsClrTypeAndWritesItBack(string type, string valueJson, Type clrType)
    {
        var json = WireMessages.WithArg(type, valueJson, "v");

        var signature = WireMessages.Parse(json);

        var arg = Assert.Single(signature.Args);
        Assert.False(arg.IsInvalid, $"{type} {valueJson}: {arg.Value}");
        Assert.Equal(type, arg.Type);
        Assert.Equal("v", arg.Name);
        Assert.IsType(clrType, arg.Value);
        Assert.True(MachineryTypes.TryGetClrType(type, out var tableType));
        Assert.Equal(tableType, arg.Value!.GetType());
        Assert.Equal(json, WireMessages.Write(signature));
    }

    [Fact]
    public void DeserializeSignature_TypedValues_HoldTheRightClrValues()
    {
        var signature = WireMessages.Parse(WireMessages.Canonical(
            "[{\"Name\":\"\",\"Type\":\"[]byte\",\"Value\":\"AAEC/w==\"}," +
            "{\"Name\":\"\",\"Type\":\"[]string\",\"Value\":[\"a\",\"b c\",\"\"]}," +
            "{\"Name\":\"\",\"Type\":\"float32\",\"Value\":0.1}," +
            "{\"Name\":\"\",\"Type\":\"int8\",\"Value\":-128}," +
            "{\"Name\":\"\",\"Type\":\"[]int\",\"Value\":[1,-2]}," +
            "{\"Name\":\"\",\"Type\":\"[]int64\",\"Value\":null}]"));

        Assert.Equal(new byte[] { 0, 1, 2, 255 }, signature.Args[0].Value);
        Assert.Equal(new[] { "a", "b c", string.Empty }, signature.Args[1].Value);
        Assert.Equal(0.1f, signature.Args[2].Value);
        Assert.Equal((sbyte)-128, signature.Args[3].Value);
        Assert.Equal(new[] { 1L, -2L }, signature.Args[4].Value);
        Assert.Null(signature.Args[5].Value); // a nil slice; machinery hands the task an empty one
    }

    [Fact]
    public void DeserializeSignature_BytesAsNumberArray_IsAcceptedAndWrittenAsBase64LikeGo()
    {
        // Machinery accepts []uint8 as numbers too, but Go's encoding/json always writes []byte as base64.
        var signature = WireMessages.Parse(WireMessages.WithArg("[]byte", "[104,105]"));

        Assert.Equal("hi"u8.ToArray(), signature.Args[0].Value);
        Assert.Equal("\"aGk=\"", WireMessages.FirstArgValueJson(signature));
    }

    [Theory]
    [InlineData("int64", "2.0")] // Go: json.Number("2.0").Int64() fails, the task ends in FAILURE
    [InlineData("int64", "\"2\"")] // a string is not a number
    [InlineData("int64", "1e3")]
    [InlineData("int64", "9223372036854775808")] // one past long.MaxValue
    [InlineData("complex128", "[1,2]")] // not in machinery's table
    [InlineData("complex128", "{\"re\":1,\"im\":2}")]
    [InlineData("Int64", "1")] // type strings are case-sensitive in machinery's typesMap
    [InlineData("int8", "300")]
    [InlineData("uint8", "-1")]
    [InlineData("uint64", "18446744073709551616")]
    [InlineData("bool", "1")]
    [InlineData("string", "null")]
    [InlineData("[]string", "[\"a\",null]")]
    [InlineData("[]int64", "\"1,2\"")]
    [InlineData("[]byte", "\"not base64!\"")]
    public void DeserializeSignature_ValueThatDoesNotFitItsType_IsInvalidAndKeptVerbatim(string type, string valueJson)
    {
        var json = WireMessages.WithArg(type, valueJson);

        var signature = WireMessages.Parse(json);

        var arg = Assert.Single(signature.Args);
        Assert.True(arg.IsInvalid, $"{type} {valueJson} was read as {arg.Value?.GetType()} {arg.Value}");
        var invalid = Assert.IsType<InvalidWireValue>(arg.Value);
        Assert.False(string.IsNullOrWhiteSpace(invalid.Reason));
        Assert.Equal(valueJson, Encoding.UTF8.GetString(invalid.RawJson));
        Assert.Equal(type, arg.Type);
        Assert.Equal(json, WireMessages.Write(signature)); // handed on (retry, dead letter) unchanged
    }

    [Fact]
    public void DeserializeState_ResultThatDoesNotFitItsType_IsKeptVerbatim()
    {
        const string json = "{\"TaskUUID\":\"task_x\",\"TaskName\":\"t\",\"State\":\"SUCCESS\",\"Results\":[{\"Type\":\"int64\",\"Value\":2.5},{\"Type\":\"uint\",\"Value\":7}],\"Error\":\"\",\"CreatedAt\":\"2026-11-26T17:18:43.5133451Z\",\"TTL\":0}";

        var state = WireFormat.DeserializeState(Encoding.UTF8.GetBytes(json));

        Assert.NotNull(state.Results);
        Assert.IsType<InvalidWireValue>(state.Results[0].Value);
        Assert.Equal(7UL, state.Results[1].Value);
        Assert.Equal(json, Encoding.UTF8.GetString(WireFormat.SerializeState(state)));
    }

    [Theory]
    [InlineData(3.25, "3.25")]
    [InlineData(1e21, "1e+21")]
    [InlineData(-1e21, "-1e+21")]
    [InlineData(1e20, "100000000000000000000")]
    [InlineData(123456789012345678901.0, "123456789012345680000")]
    [InlineData(1e15, "1000000000000000")]
    [InlineData(1e-7, "1e-7")] // Go's encoding/json turns strconv's "e-07" into "e-7"
    [InlineData(1.5e-7, "1.5e-7")]
    [InlineData(1e-10, "1e-10")]
    [InlineData(0.000001, "0.000001")]
    [InlineData(0.0000012345, "0.0000012345")]
    [InlineData(123456789.125, "123456789.125")]
    [InlineData(-0.5, "-0.5")]
    [InlineData(0.0, "0")]
    [InlineData(-0.0, "-0")]
    [InlineData(0.1 + 0.2, "0.30000000000000004")]
    [InlineData(double.MaxValue, "1.7976931348623157e+308")]
    [InlineData(double.Epsilon, "5e-324")]
    [InlineData(9007199254740993.0, "9007199254740992")]
    public void FormatGoFloat_Float64_WritesWhatGoWrites(double value, string expected)
    {
        Assert.Equal(expected, WireValues.FormatGoFloat(value, is32: false));
    }

    [Theory]
    [InlineData(0.1f, "0.1")]
    [InlineData(3.25f, "3.25")]
    [InlineData(16777217f, "16777216")]
    [InlineData(float.MaxValue, "3.4028235e+38")]
    [InlineData(1e21f, "1e+21")]
    [InlineData(1e-7f, "1e-7")]
    [InlineData(0.000001f, "0.000001")] // Go compares float32 cutoffs in float32: float32(1e-6) is not below float32(1e-6)
    [InlineData(-0.5f, "-0.5")]
    public void FormatGoFloat_Float32_WritesWhatGoWrites(float value, string expected)
    {
        Assert.Equal(expected, WireValues.FormatGoFloat(value, is32: true));
    }

    [Fact]
    public void SerializeSignature_NonFiniteFloat_IsRejectedLikeGo()
    {
        // Go's encoding/json fails with UnsupportedValueError; a message must not carry NaN.
        var signature = new Signature("t", TaskArgument.Float64(double.NaN));

        Assert.ThrowsAny<ArgumentException>(() => WireFormat.SerializeSignature(signature));
    }

    [Theory]
    [InlineData("<>&", "\\u003c\\u003e\\u0026")]
    [InlineData("\u0001", "\\u0001")]
    [InlineData("\u001f\u001b", "\\u001f\\u001b")]
    [InlineData("\n\t\r", "\\n\\t\\r")]
    [InlineData("\b\f", "\\b\\f")] // Go 1.22+ (the captures' toolchain); older Go wrote \u0008\u000c
    [InlineData("\u2028\u2029", "\\u2028\\u2029")]
    [InlineData("é中😀", "é中😀")]
    [InlineData("\"\\", "\\\"\\\\")]
    [InlineData("/'`+\u007f", "/'`+\u007f")] // Go escapes neither / nor ' nor DEL
    [InlineData("a<😀>é\u2028z\u0000", "a\\u003c😀\\u003eé\\u2028z\\u0000")]
    [InlineData("héllo \"wörld\" <&>", "héllo \\\"wörld\\\" \\u003c\\u0026\\u003e")]
    public void SerializeSignature_StringValue_IsEscapedLikeGo(string value, string expectedEscaped)
    {
        var signature = new Signature("t", TaskArgument.String(value)) { Id = WireMessages.TaskId };
        _ = signature.Headers;

        var written = WireFormat.SerializeSignature(signature);

        var expected = WireMessages.WithArg(MachineryTypes.String, $"\"{expectedEscaped}\"");
        Assert.Equal(expected, Encoding.UTF8.GetString(written));
        Assert.True(Encoding.UTF8.GetBytes(expected).AsSpan().SequenceEqual(written)); // non-ASCII as raw UTF-8 bytes
        Assert.Equal(value, WireFormat.DeserializeSignature(written).Args[0].Value);
    }

    [Fact]
    public void SerializeState_ErrorAndResultStrings_AreEscapedLikeGo()
    {
        var state = new TaskStateRecord
        {
            TaskId = "task_x",
            TaskName = "t<1>",
            State = TaskState.Failure,
            Results = [new TaskResult(MachineryTypes.String, "é&\u2028")],
            Error = "a <b> & \"c\"\n😀",
        };

        var written = Encoding.UTF8.GetString(WireFormat.SerializeState(state));

        Assert.Equal(
            "{\"TaskUUID\":\"task_x\",\"TaskName\":\"t\\u003c1\\u003e\",\"State\":\"FAILURE\",\"Results\":[{\"Type\":\"string\",\"Value\":\"é\\u0026\\u2028\"}]," +
            "\"Error\":\"a \\u003cb\\u003e \\u0026 \\\"c\\\"\\n😀\",\"CreatedAt\":\"0001-01-01T00:00:00Z\",\"TTL\":0}",
            written);
    }

    [Fact]
    public void SerializeSignature_HeadersOfEveryKind_AreReadAndWrittenInGoMapOrder()
    {
        var json = WireMessages.Canonical(
            "[]",
            "{\"traceparent\":\"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\",\"n\":9007199254740993,\"f\":1.5,\"b\":true,\"z\":null,\"o\":{\"k\":[1,\"\\u003c\"]}}");

        var signature = WireMessages.Parse(json);

        Assert.Equal("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", signature.GetHeader("traceparent"));
        Assert.Equal(9007199254740993L, signature.Headers["n"]);
        Assert.Equal(1.5, signature.Headers["f"]);
        Assert.Equal(true, signature.Headers["b"]);
        Assert.Null(signature.Headers["z"]);

        // Headers is a Go map: encoding/json writes its keys sorted, whatever order they arrived or were added in.
        Assert.Equal(
            WireMessages.Canonical(
                "[]",
                "{\"b\":true,\"f\":1.5,\"n\":9007199254740993,\"o\":{\"k\":[1,\"\\u003c\"]},\"traceparent\":\"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\",\"z\":null}"),
            WireMessages.Write(signature));
    }

    [Fact]
    public void SerializeSignature_HeadersAddedOutOfOrder_AreWrittenSortedByKey()
    {
        var signature = new Signature("t") { Id = WireMessages.TaskId };
        signature.Headers["tracestate"] = "k=v";
        signature.Headers["traceparent"] = "00-1-2-01";
        signature.Headers["Z"] = 1L; // ordinal, as Go compares strings byte by byte: upper case first
        signature.Headers["a"] = "x";

        Assert.Equal(
            WireMessages.Canonical("[]", "{\"Z\":1,\"a\":\"x\",\"traceparent\":\"00-1-2-01\",\"tracestate\":\"k=v\"}"),
            WireMessages.Write(signature));
    }
}
