using System.Text.Json;
using System.Text.Json.Serialization;

namespace Conveyor.Serialization;

/// <summary>Reads and writes machinery's typed results, <c>[{"Type","Value"}]</c> or <c>null</c>.</summary>
internal sealed class TaskResultListJsonConverter : JsonConverter<IReadOnlyList<TaskResult>?>
{
    public override bool HandleNull => true;

    public override IReadOnlyList<TaskResult>? Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType == JsonTokenType.Null)
        {
            return null;
        }

        if (reader.TokenType != JsonTokenType.StartArray)
        {
            throw new JsonException("Results must be an array.");
        }

        var results = new List<TaskResult>(1);
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            var (_, type, value) = SignatureJson.ReadTypedValue(ref reader, "Results", wantName: false);
            results.Add(new TaskResult(type, value));
        }

        return results;
    }

    public override void Write(Utf8JsonWriter writer, IReadOnlyList<TaskResult>? value, JsonSerializerOptions options)
    {
        if (value is null)
        {
            writer.WriteNullValue();
            return;
        }

        writer.WriteStartArray();
        foreach (var result in value)
        {
            writer.WriteStartObject();
            writer.WriteString("Type"u8, result.Type);
            writer.WritePropertyName("Value"u8);
            WireValues.Write(writer, result.Value);
            writer.WriteEndObject();
        }

        writer.WriteEndArray();
    }
}
