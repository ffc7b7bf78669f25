using System.Buffers;
using System.Text.Json;

namespace Conveyor.RawProbe;

/// <summary>
/// The bytes the probe moves: a task message and its states in machinery v2's JSON, the same fields (and so about
/// the same size: ~470 and ~190 bytes) as Conveyor's, written and read with System.Text.Json directly.
/// </summary>
internal static class Messages
{
    public static byte[] Task(string id, long a, long b)
    {
        var buffer = new ArrayBufferWriter<byte>(512);
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("UUID", id);
            json.WriteString("Name", "add");
            json.WriteString("RoutingKey", "machinery_tasks");
            json.WriteNull("ETA");
            json.WriteString("GroupUUID", string.Empty);
            json.WriteNumber("GroupTaskCount", 0);
            json.WriteStartArray("Args");
            foreach (var value in new[] { a, b })
            {
                json.WriteStartObject();
                json.WriteString("Name", string.Empty);
                json.WriteString("Type", "int64");
                json.WriteNumber("Value", value);
                json.WriteEndObject();
            }

            json.WriteEndArray();
            json.WriteStartObject("Headers");
            json.WriteEndObject();
            json.WriteNumber("Priority", 0);
            json.WriteBoolean("Immutable", false);
            json.WriteNumber("RetryCount", 0);
            json.WriteNumber("RetryTimeout", 0);
            json.WriteNull("OnSuccess");
            json.WriteNull("OnError");
            json.WriteNull("ChordCallback");
            json.WriteString("BrokerMessageGroupId", string.Empty);
            json.WriteString("SQSReceiptHandle", string.Empty);
            json.WriteBoolean("StopTaskDeletionOnError", false);
            json.WriteBoolean("IgnoreWhenTaskNotRegistered", false);
            json.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Reads a task message: its id and its two int64 arguments.</summary>
    public static (string Id, long A, long B) ReadTask(ReadOnlySpan<byte> message)
    {
        var reader = new Utf8JsonReader(message);
        string? id = null;
        Span<long> args = stackalloc long[2];
        var arg = 0;
        while (reader.Read())
        {
            if (reader.TokenType != JsonTokenType.PropertyName || reader.CurrentDepth is not (1 or 3))
            {
                continue;
            }

            if (reader.CurrentDepth == 1 && reader.ValueTextEquals("UUID"u8))
            {
                reader.Read();
                id = reader.GetString();
            }
            else if (reader.CurrentDepth == 3 && reader.ValueTextEquals("Value"u8) && arg < 2)
            {
                reader.Read();
                args[arg++] = reader.GetInt64();
            }
        }

        return (id ?? throw new FormatException("a task message without UUID"), args[0], args[1]);
    }

    public static byte[] State(string id, string state, long? result, DateTimeOffset createdAt)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("TaskUUID", id);
            json.WriteString("TaskName", "add");
            json.WriteString("State", state);
            if (result is { } value)
            {
                json.WriteStartArray("Results");
                json.WriteStartObject();
                json.WriteString("Type", "int64");
                json.WriteNumber("Value", value);
                json.WriteEndObject();
                json.WriteEndArray();
            }
            else
            {
                json.WriteNull("Results");
            }

            json.WriteString("Error", string.Empty);
            json.WriteString("CreatedAt", createdAt.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", System.Globalization.CultureInfo.InvariantCulture));
            json.WriteNumber("TTL", 0);
            json.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Whether a stored state is final (the producer's check), without parsing the whole record.</summary>
    public static bool IsFinal(ReadOnlySpan<byte> state) =>
        state.IndexOf("\"State\":\"SUCCESS\""u8) >= 0 || state.IndexOf("\"State\":\"FAILURE\""u8) >= 0;
}
