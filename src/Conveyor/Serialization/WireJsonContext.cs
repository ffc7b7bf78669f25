using System.Text.Json;
using System.Text.Json.Serialization;

namespace Conveyor.Serialization;

[JsonSourceGenerationOptions(PropertyNameCaseInsensitive = true, GenerationMode = JsonSourceGenerationMode.Default)]
[JsonSerializable(typeof(TaskStateRecord))]
[JsonSerializable(typeof(GroupMeta))]
internal sealed partial class WireJsonContext : JsonSerializerContext
{
    /// <summary>The context with Go's string escaping, used for everything Conveyor stores.</summary>
    public static WireJsonContext Go { get; } = new(new JsonSerializerOptions
    {
        Encoder = GoJsonEncoder.Instance,
        PropertyNameCaseInsensitive = true,
    });
}
