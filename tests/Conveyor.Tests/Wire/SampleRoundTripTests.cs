using System.Globalization;
using System.Text;
using System.Text.Json;
using Conveyor.Serialization;

namespace Conveyor.Tests.Wire;

/// <summary>Every message, state and group meta that Go machinery wrote parses, and Conveyor writes it back the same.</summary>
public sealed class SampleRoundTripTests
{
    public static TheoryData<string> RawJsonFiles => WireSamples.AsTheoryData(WireSamples.RawJsonFiles());

    public static TheoryData<string> DeliveryFiles => WireSamples.AsTheoryData(WireSamples.DeliveryFiles());

    [Fact]
    public void Locate_SharedWireFolder_FindsEveryKindOfSample()
    {
        Assert.True(WireSamples.Folder is not null, WireSamples.NotFoundMessage);
        var raw = WireSamples.RawJsonFiles();
        var kinds = raw.GroupBy(WireSamples.KindOf).ToDictionary(g => g.Key, g => g.Count());

        // The README's table: 11 Redis messages + 4 AMQP bodies, 15 states, 5 group metas, 4 AMQP deliveries.
        Assert.Equal(15, kinds.GetValueOrDefault(WireSamples.Kind.Signature));
        Assert.Equal(15, kinds.GetValueOrDefault(WireSamples.Kind.State));
        Assert.Equal(5, kinds.GetValueOrDefault(WireSamples.Kind.GroupMeta));
        Assert.Equal(4, WireSamples.DeliveryFiles().Count);
        Assert.Contains("redis/broker_task_wire_types.raw.json", raw);
        Assert.Contains("amqp/amqp_task_wire_types.body.raw.json", raw);
    }

    [Theory]
    [MemberData(nameof(RawJsonFiles))]
    public void Deserialize_MachinerySample_ParsesEveryField(string file)
    {
        var bytes = WireSamples.ReadBytes(file);
        using var document = JsonDocument.Parse(bytes);
        var json = document.RootElement;

        switch (WireSamples.KindOf(file))
        {
            case WireSamples.Kind.Signature:
                AssertSignatureMatches(json, WireFormat.DeserializeSignature(bytes));
                break;
            case WireSamples.Kind.State:
                var state = WireFormat.DeserializeState(bytes);
                Assert.Equal(json.GetProperty("TaskUUID").GetString(), state.TaskId);
                Assert.Equal(json.GetProperty("TaskName").GetString(), state.TaskName);
                Assert.Equal(json.GetProperty("State").GetString(), state.State.ToWireName());
                Assert.Equal(json.GetProperty("Error").GetString(), state.Error);
                Assert.Equal(json.GetProperty("TTL").GetInt64(), state.Ttl);
                AssertSameInstant(json.GetProperty("CreatedAt").GetString()!, state.CreatedAt);
                var results = json.GetProperty("Results");
                if (results.ValueKind == JsonValueKind.Null)
                {
                    Assert.Null(state.Results);
                }
                else
                {
                    Assert.NotNull(state.Results);
                    Assert.Equal(results.EnumerateArray().Select(r => r.GetProperty("Type").GetString()), state.Results.Select(r => r.Type));
                    Assert.All(state.Results, r => Assert.False(r.Value is InvalidWireValue, $"{file}: result {r} did not fit its type"));
                }

                break;
            case WireSamples.Kind.GroupMeta:
                var meta = WireFormat.DeserializeGroupMeta(bytes);
                Assert.Equal(json.GetProperty("GroupUUID").GetString(), meta.GroupId);
                Assert.Equal(json.GetProperty("TaskUUIDs").EnumerateArray().Select(e => e.GetString()), meta.TaskIds);
                Assert.Equal(json.GetProperty("ChordTriggered").GetBoolean(), meta.ChordTriggered);
                Assert.Equal(json.GetProperty("Lock").GetBoolean(), meta.Lock);
                Assert.Equal(json.GetProperty("TTL").GetInt64(), meta.Ttl);
                AssertSameInstant(json.GetProperty("CreatedAt").GetString()!, meta.CreatedAt);
                break;
        }
    }

    [Theory]
    [MemberData(nameof(RawJsonFiles))]
    public void Serialize_ParsedMachinerySample_ReproducesTheBytes(string file)
    {
        var raw = WireSamples.ReadBytes(file);
        var rawText = Encoding.UTF8.GetString(raw);
        var kind = WireSamples.KindOf(file);

        var written = WireSamples.Reserialize(kind, raw);

        if (!WireSamples.HasSubTickTimestamps(rawText))
        {
            // No time, or one .NET holds exactly: Go's bytes, unchanged.
            Assert.Equal(rawText, Encoding.UTF8.GetString(written));
            Assert.True(raw.AsSpan().SequenceEqual(written), $"{file}: the text matches but the bytes differ");
        }
        else
        {
            // Go wrote nanoseconds; .NET keeps 100 ns ticks, so only the last two digits may differ.
            Assert.Equal(WireSamples.NormalizeTimestamps(rawText), Encoding.UTF8.GetString(written));
        }

        // What Conveyor wrote reads back to the same thing (the truncation happens once, on the first read).
        Assert.Equal(Encoding.UTF8.GetString(written), Encoding.UTF8.GetString(WireSamples.Reserialize(kind, written)));
    }

    [Fact]
    public void Serialize_SignaturesWithoutEta_AreAllByteExact()
    {
        // Guards the partition above: if a capture ever gained an ETA or a longer fraction, this says which.
        Assert.True(WireSamples.Folder is not null, WireSamples.NotFoundMessage);
        var exact = WireSamples.RawJsonFiles()
            .Where(f => WireSamples.KindOf(f) == WireSamples.Kind.Signature && !WireSamples.HasSubTickTimestamps(WireSamples.ReadText(f)))
            .ToList();

        Assert.Equal(12, exact.Count);
        Assert.All(exact, f => Assert.Contains("\"ETA\":null", WireSamples.ReadText(f), StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(DeliveryFiles))]
    public void Deserialize_AmqpDeliveryBody_ParsesAsTheSignatureOfThatDelivery(string file)
    {
        using var delivery = JsonDocument.Parse(WireSamples.ReadBytes(file));
        var body = delivery.RootElement.GetProperty("body");
        Assert.Equal(JsonValueKind.Object, body.ValueKind);

        // The delivery file holds the body as an indented object: write it back compactly with Go's escaping.
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = GoJsonEncoder.Instance }))
        {
            body.WriteTo(writer);
        }

        var signature = WireFormat.DeserializeSignature(buffer.WrittenSpan);

        AssertSignatureMatches(body, signature);
        Assert.Equal(delivery.RootElement.GetProperty("routing_key").GetString(), signature.RoutingKey);
        Assert.Equal("application/json", delivery.RootElement.GetProperty("content_type").GetString());

        // The same message as the capture's raw body.
        var rawBody = WireSamples.ReadText(file.Replace(".delivery.json", ".body.raw.json", StringComparison.Ordinal));
        Assert.Equal(WireSamples.NormalizeTimestamps(rawBody), Encoding.UTF8.GetString(WireFormat.SerializeSignature(signature)));
    }

    private static void AssertSignatureMatches(JsonElement json, Signature signature)
    {
        Assert.Equal(json.GetProperty("UUID").GetString(), signature.Id);
        Assert.StartsWith("task_", signature.Id, StringComparison.Ordinal);
        Assert.Equal(json.GetProperty("Name").GetString(), signature.Name);
        Assert.Equal(json.GetProperty("RoutingKey").GetString(), signature.RoutingKey);
        Assert.Equal(json.GetProperty("GroupUUID").GetString(), signature.GroupId);
        Assert.Equal(json.GetProperty("GroupTaskCount").GetInt32(), signature.GroupTaskCount);
        Assert.Equal(json.GetProperty("RetryCount").GetInt32(), signature.RetryCount);
        Assert.Equal(json.GetProperty("RetryTimeout").GetInt32(), signature.RetryTimeout);
        Assert.Equal(json.GetProperty("Priority").GetByte(), signature.Priority);
        Assert.Equal(json.GetProperty("Immutable").GetBoolean(), signature.Immutable);

        var eta = json.GetProperty("ETA");
        if (eta.ValueKind == JsonValueKind.Null)
        {
            Assert.Null(signature.Eta);
        }
        else
        {
            Assert.NotNull(signature.Eta);
            AssertSameInstant(eta.GetString()!, signature.Eta.Value);
        }

        var args = json.GetProperty("Args").EnumerateArray().ToList();
        Assert.Equal(args.Count, signature.Args.Count);
        for (var i = 0; i < args.Count; i++)
        {
            Assert.Equal(args[i].GetProperty("Name").GetString(), signature.Args[i].Name);
            Assert.Equal(args[i].GetProperty("Type").GetString(), signature.Args[i].Type);
            Assert.False(signature.Args[i].IsInvalid, $"{signature.Id}: argument {i} ({signature.Args[i]}) did not fit its type");
        }

        var onSuccess = json.GetProperty("OnSuccess");
        Assert.Equal(onSuccess.ValueKind == JsonValueKind.Null ? 0 : onSuccess.GetArrayLength(), signature.OnSuccess.Count);
        for (var i = 0; i < signature.OnSuccess.Count; i++)
        {
            AssertSignatureMatches(onSuccess[i], signature.OnSuccess[i]);
        }

        var callback = json.GetProperty("ChordCallback");
        if (callback.ValueKind == JsonValueKind.Null)
        {
            Assert.Null(signature.ChordCallback);
        }
        else
        {
            Assert.NotNull(signature.ChordCallback);
            AssertSignatureMatches(callback, signature.ChordCallback);
        }
    }

    // The parsed instant is the wire instant truncated to the 100 ns tick (computed here without GoTime).
    private static void AssertSameInstant(string goTime, DateTimeOffset parsed)
    {
        var truncated = WireSamples.NormalizeTimestamps($"\"{goTime}\"").Trim('"');
        var expected = DateTimeOffset.Parse(truncated, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);
        Assert.Equal(expected.UtcTicks, parsed.UtcTicks);
        Assert.Equal(TimeSpan.Zero, parsed.Offset);
    }
}
