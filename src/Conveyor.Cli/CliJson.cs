using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace Conveyor.Cli;

/// <summary>JSON output of the command (reflection-based: the CLI is an application, not a hot path).</summary>
internal static class CliJson
{
    public static JsonSerializerOptions Options { get; } = new()
    {
        TypeInfoResolver = new DefaultJsonTypeInfoResolver(),
        WriteIndented = false,
    };

    /// <summary>Values as JSON understands them; arrays stay arrays, bytes become base64.</summary>
    public static object? Value(object? value) => value switch
    {
        byte[] bytes => Convert.ToBase64String(bytes),
        _ => value,
    };
}
