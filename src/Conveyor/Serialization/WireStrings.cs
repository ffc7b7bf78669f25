using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;

namespace Conveyor.Serialization;

/// <summary>
/// Reuses the strings that repeat in every message (task names, queue names, machinery's type strings) instead of
/// allocating them per message. Bounded: past <see cref="MaxEntries"/> distinct values, strings are allocated as usual.
/// </summary>
internal static class WireStrings
{
    private const int MaxEntries = 4096;
    private const int MaxLength = 128;

    private static readonly ConcurrentDictionary<string, string> Cache = new(StringComparer.Ordinal);
    private static readonly ConcurrentDictionary<string, string>.AlternateLookup<ReadOnlySpan<char>> Lookup = Cache.GetAlternateLookup<ReadOnlySpan<char>>();

    /// <summary>Reads the current string token, reusing a cached instance for a short, frequent value.</summary>
    public static string Read(ref Utf8JsonReader reader, string field)
    {
        if (reader.TokenType == JsonTokenType.Null)
        {
            return string.Empty;
        }

        if (reader.TokenType != JsonTokenType.String)
        {
            throw new JsonException($"{field} must be a string, not {reader.TokenType}.");
        }

        if (reader.HasValueSequence || reader.ValueIsEscaped || reader.ValueSpan.Length > MaxLength)
        {
            return reader.GetString()!;
        }

        var utf8 = reader.ValueSpan;
        if (utf8.Length == 0)
        {
            return string.Empty;
        }

        Span<char> chars = stackalloc char[MaxLength];
        if (!Encoding.UTF8.TryGetChars(utf8, chars, out var length))
        {
            return reader.GetString()!;
        }

        var text = chars[..length];
        if (Lookup.TryGetValue(text, out var cached))
        {
            return cached;
        }

        var created = text.ToString();
        if (Cache.Count < MaxEntries)
        {
            Cache.TryAdd(created, created);
        }

        return created;
    }
}
