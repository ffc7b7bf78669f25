using System.Buffers;
using System.Globalization;
using System.Text.Json;
using Amazon.DynamoDBv2.Model;
using Conveyor.Serialization;

namespace Conveyor.DynamoDb.Internal;

/// <summary>
/// Converts states and group metas to and from machinery's DynamoDB items. machinery writes them with the Go SDK's
/// <c>dynamodbattribute.MarshalMap</c> and its own <c>UpdateItem</c> calls, so the attributes are:
/// <c>TaskUUID</c> S, <c>TaskName</c> S, <c>State</c> S, <c>Results</c> L of M {<c>Type</c> S, <c>Value</c> S} or
/// NULL, <c>Error</c> S or NULL (empty), <c>CreatedAt</c> S (RFC 3339 with nanoseconds), <c>TTL</c> N (Unix seconds);
/// <c>GroupUUID</c> S, <c>TaskUUIDs</c> L of S, <c>ChordTriggered</c> BOOL, <c>Lock</c> BOOL, <c>CreatedAt</c> S,
/// <c>TTL</c> N.
/// </summary>
/// <remarks>
/// A result's <c>Value</c> is a string, as machinery writes it (<c>fmt.Sprintf("%v")</c>): the same text for numbers,
/// booleans and strings; for arrays Conveyor writes JSON (<c>[1,2,3]</c>, <c>["a","b"]</c>) so that they read back
/// exactly, and it also reads Go's <c>[1 2 3]</c>. Conveyor's chord counter lives in attributes of its own on the
/// group item (<c>ConveyorCompleted</c>, <c>ConveyorFailed</c>, <c>ConveyorMembers</c>, <c>ConveyorTraces</c>, the
/// cursor over members a peer ran <c>ConveyorScanned</c>, <c>ConveyorPeerFailed</c>, <c>ConveyorPeerSeen</c>, and the
/// chord claim <c>ConveyorClaimant</c>, <c>ConveyorPublished</c>), which machinery ignores.
/// </remarks>
internal static class DynamoItems
{
    public const string TaskKey = "TaskUUID";
    public const string GroupKey = "GroupUUID";
    public const string Completed = "ConveyorCompleted";
    public const string Failed = "ConveyorFailed";
    public const string Members = "ConveyorMembers";
    public const string Traces = "ConveyorTraces";
    public const string Scanned = "ConveyorScanned";
    public const string PeerFailed = "ConveyorPeerFailed";
    public const string PeerSeen = "ConveyorPeerSeen";
    public const string Claimant = "ConveyorClaimant";
    public const string Published = "ConveyorPublished";

    /// <summary>
    /// A member's key in the group item's maps: 72 bits of the SHA-256 of its task id, 12 characters instead of the
    /// id's 41, so a group item holds about three times more members before DynamoDB's 400 KB limit.
    /// </summary>
    public static string MemberKey(string taskId) =>
        Convert.ToBase64String(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(taskId)), 0, 9).Replace('+', '-').Replace('/', '_');

    public static AttributeValue S(string value) => new() { S = value };

    public static AttributeValue N(long value) => new() { N = value.ToString(CultureInfo.InvariantCulture) };

    public static AttributeValue Null() => new() { NULL = true };

    public static AttributeValue Bool(bool value) => new() { BOOL = value };

    public static AttributeValue StringOrNull(string value) => value.Length == 0 ? Null() : S(value);

    /// <summary>The attributes of a state, machinery's names and types, from Conveyor's own wire JSON of it.</summary>
    public static (string State, string CreatedAt, AttributeValue Results) StateAttributes(TaskStateRecord state)
    {
        using var json = JsonDocument.Parse(WireFormat.SerializeState(state));
        var root = json.RootElement;
        var results = root.GetProperty("Results");
        AttributeValue list;
        if (results.ValueKind != JsonValueKind.Array)
        {
            list = Null();
        }
        else
        {
            list = new AttributeValue { L = [] };
            foreach (var result in results.EnumerateArray())
            {
                var value = result.GetProperty("Value");
                list.L.Add(new AttributeValue
                {
                    M = new Dictionary<string, AttributeValue>(StringComparer.Ordinal)
                    {
                        ["Type"] = S(result.GetProperty("Type").GetString() ?? string.Empty),
                        ["Value"] = S(value.ValueKind == JsonValueKind.String ? value.GetString()! : value.GetRawText()),
                    },
                });
            }
        }

        return (root.GetProperty("State").GetString()!, root.GetProperty("CreatedAt").GetString()!, list);
    }

    /// <summary>Reads a state item (machinery's or Conveyor's) through Conveyor's wire reader.</summary>
    public static TaskStateRecord ToState(Dictionary<string, AttributeValue> item)
    {
        var buffer = new ArrayBufferWriter<byte>(512);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("TaskUUID", Text(item, TaskKey));
            writer.WriteString("TaskName", Text(item, "TaskName"));
            writer.WriteString("State", Text(item, "State"));
            writer.WritePropertyName("Results");
            if (item.TryGetValue("Results", out var results) && results.L is { } list)
            {
                writer.WriteStartArray();
                foreach (var result in list)
                {
                    var fields = result.M ?? [];
                    var type = fields.TryGetValue("Type", out var t) ? t.S ?? string.Empty : string.Empty;
                    writer.WriteStartObject();
                    writer.WriteString("Type", type);
                    writer.WritePropertyName("Value");
                    WriteValue(writer, type, fields.TryGetValue("Value", out var v) ? v : Null());
                    writer.WriteEndObject();
                }

                writer.WriteEndArray();
            }
            else
            {
                writer.WriteNullValue();
            }

            writer.WriteString("Error", Text(item, "Error"));
            var created = Text(item, "CreatedAt");
            writer.WriteString("CreatedAt", created.Length == 0 ? "0001-01-01T00:00:00Z" : created);
            writer.WriteNumber("TTL", Number(item, "TTL"));
            writer.WriteEndObject();
        }

        return WireFormat.DeserializeState(buffer.WrittenSpan);
    }

    public static Dictionary<string, AttributeValue> GroupItem(GroupMeta meta, long ttl) => new(StringComparer.Ordinal)
    {
        [GroupKey] = S(meta.GroupId),
        ["TaskUUIDs"] = new AttributeValue { L = [.. meta.TaskIds.Select(S)] },
        ["ChordTriggered"] = Bool(meta.ChordTriggered),
        ["Lock"] = Bool(meta.Lock),
        ["CreatedAt"] = S(GoTimeText(meta.CreatedAt)),
        ["TTL"] = N(ttl),
        [Members] = new AttributeValue { M = [] },
        [Traces] = new AttributeValue { M = [] },
        [Scanned] = N(0),
        [PeerFailed] = N(0),
        [PeerSeen] = N(0),
    };

    public static GroupMeta? ToGroupMeta(Dictionary<string, AttributeValue> item)
    {
        if (!item.TryGetValue("TaskUUIDs", out var ids))
        {
            return null; // only Conveyor's counter: the meta itself was never stored
        }

        var created = Text(item, "CreatedAt");
        return new GroupMeta
        {
            GroupId = Text(item, GroupKey),
            TaskIds = ids.L is { } list ? [.. list.Select(v => v.S ?? string.Empty)] : ids.SS ?? [],
            ChordTriggered = item.TryGetValue("ChordTriggered", out var triggered) && triggered.BOOL == true,
            Lock = item.TryGetValue("Lock", out var locked) && locked.BOOL == true,
            CreatedAt = created.Length == 0 ? default : ParseGoTime(created),
            Ttl = Number(item, "TTL"),
        };
    }

    public static long Number(Dictionary<string, AttributeValue> item, string name) =>
        item.TryGetValue(name, out var value) && value.N is { } n && long.TryParse(n, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var number) ? number : 0;

    public static string Text(Dictionary<string, AttributeValue> item, string name) =>
        item.TryGetValue(name, out var value) && value.S is { } s ? s : string.Empty;

    private static string GoTimeText(DateTimeOffset value)
    {
        // The wire writer's form of a time: Go's RFC 3339 with trailing zeros trimmed.
        using var json = JsonDocument.Parse(WireFormat.SerializeGroupMeta(new GroupMeta { GroupId = "x", TaskIds = [], CreatedAt = value }));
        return json.RootElement.GetProperty("CreatedAt").GetString()!;
    }

    private static DateTimeOffset ParseGoTime(string text)
    {
        var json = $$"""{"GroupUUID":"x","TaskUUIDs":[],"CreatedAt":{{JsonSerializer.Serialize(text)}}}""";
        return WireFormat.DeserializeGroupMeta(System.Text.Encoding.UTF8.GetBytes(json)).CreatedAt;
    }

    private static void WriteValue(Utf8JsonWriter writer, string type, AttributeValue value)
    {
        if (value.S is not { } text)
        {
            if (value.N is { } number)
            {
                writer.WriteRawValue(number);
            }
            else if (value.BOOL is { } flag)
            {
                writer.WriteBooleanValue(flag);
            }
            else
            {
                writer.WriteNullValue();
            }

            return;
        }

        // Types whose JSON is a string are stored as that string; the others as their JSON text (or Go's %v).
        if (type is MachineryTypes.String or "[]byte" or "[]uint8")
        {
            writer.WriteStringValue(text);
            return;
        }

        if (IsJson(text))
        {
            writer.WriteRawValue(text);
            return;
        }

        if (type.StartsWith("[]", StringComparison.Ordinal) && text.StartsWith('[') && text.EndsWith(']'))
        {
            // Go's fmt %v of a slice: [a b c].
            writer.WriteStartArray();
            foreach (var element in text[1..^1].Split(' ', StringSplitOptions.RemoveEmptyEntries))
            {
                if (type == "[]string" || !IsJson(element))
                {
                    writer.WriteStringValue(element);
                }
                else
                {
                    writer.WriteRawValue(element);
                }
            }

            writer.WriteEndArray();
            return;
        }

        writer.WriteStringValue(text);
    }

    private static bool IsJson(string text)
    {
        try
        {
            using var _ = JsonDocument.Parse(text);
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }
}
