using System.Text;
using Conveyor.Serialization;

namespace Conveyor.Tests.Wire;

/// <summary>Go's <c>time.Time</c> JSON (RFC 3339 with up to nine fractional digits) on .NET's 100 ns ticks.</summary>
public sealed class GoTimeTests
{
    private static DateTimeOffset Parse(string text)
    {
        Assert.True(GoTime.TryParse(Encoding.UTF8.GetBytes(text), out var value), $"'{text}' did not parse");
        return value;
    }

    [Fact]
    public void TryParse_NineFractionalDigits_TruncatesToTheTick()
    {
        var value = Parse("2026-11-26T17:18:44.524125449Z");

        // .524125449 s = 5_241_254 ticks + 49 ns, and the 49 ns are dropped (truncated, not rounded).
        Assert.Equal(new DateTimeOffset(2026, 11, 26, 17, 18, 44, TimeSpan.Zero).AddTicks(5_241_254), value);
        Assert.Equal(TimeSpan.Zero, value.Offset);
        Assert.Equal(Parse("2026-11-26T17:18:44.5241254Z"), Parse("2026-11-26T17:18:44.524125499Z"));
    }

    [Theory]
    [InlineData("2026-11-26T17:18:44.524125449Z", "2026-11-26T17:18:44.5241254Z")]
    [InlineData("2026-11-26T17:18:43.51447441Z", "2026-11-26T17:18:43.5144744Z")]
    [InlineData("2026-11-26T17:18:48.22847859Z", "2026-11-26T17:18:48.2284785Z")]
    [InlineData("2026-11-26T17:18:43.500000009Z", "2026-11-26T17:18:43.5Z")]
    [InlineData("2026-11-26T17:18:43.000000099Z", "2026-11-26T17:18:43Z")]
    [InlineData("2026-11-26T17:18:43.1Z", "2026-11-26T17:18:43.1Z")]
    [InlineData("2026-11-26T17:18:43Z", "2026-11-26T17:18:43Z")]
    [InlineData("2026-11-26T17:18:43.0000001Z", "2026-11-26T17:18:43.0000001Z")]
    public void ToString_ParsedGoTime_TrimsTrailingZerosLikeGo(string wire, string expected)
    {
        Assert.Equal(expected, GoTime.ToString(Parse(wire)));
        Assert.Equal(expected, WireSamples.NormalizeTimestamps($"\"{wire}\"").Trim('"')); // the tests' normalization agrees
    }

    [Fact]
    public void TryParse_GoZeroTime_RoundTrips()
    {
        var value = Parse("0001-01-01T00:00:00Z");

        Assert.Equal(default, value);
        Assert.Equal(DateTimeOffset.MinValue, value);
        Assert.Equal("0001-01-01T00:00:00Z", GoTime.ToString(value));
        Assert.Equal("0001-01-01T00:00:00Z", GoTime.ToString(default));
    }

    [Theory]
    [InlineData("2026-11-26T19:18:44.5+02:00", "2026-11-26T17:18:44.5Z")]
    [InlineData("2026-11-26T11:48:44-05:30", "2026-11-26T17:18:44Z")]
    [InlineData("2026-11-27T00:18:44.524125449+07:00", "2026-11-26T17:18:44.5241254Z")]
    [InlineData("2026-11-26T17:18:44+00:00", "2026-11-26T17:18:44Z")]
    [InlineData("2026-01-01T01:00:00+02:00", "2025-12-31T23:00:00Z")]
    public void TryParse_Offset_GivesTheUtcInstantAndWritesUtc(string wire, string expectedUtc)
    {
        var value = Parse(wire);

        Assert.Equal(Parse(expectedUtc).UtcTicks, value.UtcTicks);
        Assert.Equal(expectedUtc, GoTime.ToString(value));
    }

    [Fact]
    public void ToString_LocalOffsetAndWholeSeconds_WritesUtcWithoutFraction()
    {
        var value = new DateTimeOffset(2026, 11, 27, 2, 18, 44, TimeSpan.FromHours(9));

        Assert.Equal("2026-11-26T17:18:44Z", GoTime.ToString(value));
        Assert.Equal("2026-11-26T17:18:44.1Z", GoTime.ToString(value.AddTicks(1_000_000)));
        Assert.Equal("2026-11-26T17:18:44.0000001Z", GoTime.ToString(value.AddTicks(1)));
        Assert.Equal("2026-11-26T17:18:44.12Z", GoTime.ToString(value.AddTicks(1_200_000)));
    }

    [Theory]
    [InlineData("")]
    [InlineData("2026-11-26")]
    [InlineData("2026-11-26T17:18:44")] // Go's RFC 3339 needs a zone
    [InlineData("2026-11-26T17:18:44.Z")]
    [InlineData("2026-11-26T17:18:44.5")]
    [InlineData("2026-13-01T00:00:00Z")]
    [InlineData("2026-02-30T00:00:00Z")]
    [InlineData("2026-11-26T25:00:00Z")]
    [InlineData("2026-11-26 17:18:44Z")]
    [InlineData("2026-11-26T17:18:44+0200")]
    [InlineData("2026-11-26T17:18:44Z ")]
    [InlineData("+2026-11-26T17:18:44Z")]
    [InlineData("tomorrow at noon, please")]
    public void TryParse_NotRfc3339_ReturnsFalse(string text)
    {
        Assert.False(GoTime.TryParse(Encoding.UTF8.GetBytes(text), out _), text);
    }

    [Fact]
    public void DeserializeSignature_EtaWithNanoseconds_IsTheTruncatedInstantAndWritesSevenDigits()
    {
        var json = WireMessages.Canonical("[]").Replace("\"ETA\":null", "\"ETA\":\"2026-11-26T17:18:44.524125449Z\"", StringComparison.Ordinal);

        var signature = WireMessages.Parse(json);

        Assert.Equal(new DateTimeOffset(2026, 11, 26, 17, 18, 44, TimeSpan.Zero).AddTicks(5_241_254), signature.Eta);
        Assert.Equal(json.Replace(".524125449Z", ".5241254Z", StringComparison.Ordinal), WireMessages.Write(signature));
    }

    [Fact]
    public void SerializeSignature_EtaWithOffset_IsWrittenAsUtc()
    {
        var signature = new Signature("t") { Id = WireMessages.TaskId, Eta = new DateTimeOffset(2026, 11, 26, 19, 18, 44, 500, TimeSpan.FromHours(2)) };
        _ = signature.Headers;

        Assert.Equal(
            WireMessages.Canonical("[]").Replace("\"ETA\":null", "\"ETA\":\"2026-11-26T17:18:44.5Z\"", StringComparison.Ordinal),
            WireMessages.Write(signature));
    }

    [Fact]
    public void DeserializeState_ZeroCreatedAt_RoundTrips()
    {
        const string json = "{\"TaskUUID\":\"task_x\",\"TaskName\":\"t\",\"State\":\"PENDING\",\"Results\":null,\"Error\":\"\",\"CreatedAt\":\"0001-01-01T00:00:00Z\",\"TTL\":0}";

        var state = WireFormat.DeserializeState(Encoding.UTF8.GetBytes(json));

        Assert.Equal(default, state.CreatedAt);
        Assert.Equal(json, Encoding.UTF8.GetString(WireFormat.SerializeState(state)));
    }
}
