using System.Buffers;
using System.Text;
using System.Text.Encodings.Web;

namespace Conveyor.Serialization;

/// <summary>
/// Escapes strings exactly as Go's encoding/json does, so Conveyor's messages equal machinery's byte for byte:
/// <c>"</c> and <c>\</c> with a backslash; <c>\n</c>, <c>\r</c>, <c>\t</c>, <c>\b</c>, <c>\f</c> short; other
/// control characters, <c>&lt;</c>, <c>&gt;</c>, <c>&amp;</c>, U+2028 and U+2029 as <c>\u00xx</c> with lowercase hex;
/// every other character as raw UTF-8.
/// </summary>
internal sealed class GoJsonEncoder : JavaScriptEncoder
{
    public static readonly GoJsonEncoder Instance = new();

    // What WillEncode says yes to, as sets the vectorized searches take.
    private static readonly SearchValues<char> EscapedChars = SearchValues.Create(
        "\u0000\u0001\u0002\u0003\u0004\u0005\u0006\u0007\u0008\u0009\u000a\u000b\u000c\u000d\u000e\u000f" +
        "\u0010\u0011\u0012\u0013\u0014\u0015\u0016\u0017\u0018\u0019\u001a\u001b\u001c\u001d\u001e\u001f" +
        "\"\\<>&\u2028\u2029");

    private static readonly SearchValues<byte> EscapedOrNonAsciiBytes = SearchValues.Create(EscapedOrNonAscii());

    private GoJsonEncoder()
    {
    }

    public override int MaxOutputCharactersPerInputCharacter => 6;

    public override bool WillEncode(int unicodeScalar) =>
        unicodeScalar < 0x20 || unicodeScalar is '"' or '\\' or '<' or '>' or '&' or 0x2028 or 0x2029;

    public override unsafe int FindFirstCharacterToEncode(char* text, int textLength)
    {
        var span = new ReadOnlySpan<char>(text, textLength);

        // Vectorized: every string of every message passes here, and nearly none has a character to escape.
        var first = span.IndexOfAny(EscapedChars);
        var scanned = first < 0 ? span : span[..first];
        var surrogate = scanned.IndexOfAnyInRange('\uD800', '\uDFFF');
        if (surrogate < 0)
        {
            return first;
        }

        for (var i = surrogate; i < span.Length; i++)
        {
            var c = span[i];
            if (WillEncode(c))
            {
                return i;
            }

            // A lone surrogate is invalid text; let the encoder replace it.
            if (char.IsSurrogate(c))
            {
                if (char.IsHighSurrogate(c) && i + 1 < span.Length && char.IsLowSurrogate(span[i + 1]))
                {
                    i++;
                    continue;
                }

                return i;
            }
        }

        return -1;
    }

    public override int FindFirstCharacterToEncodeUtf8(ReadOnlySpan<byte> utf8Text)
    {
        var i = utf8Text.IndexOfAny(EscapedOrNonAsciiBytes);
        if (i < 0 || utf8Text[i] < 0x80)
        {
            return i;
        }

        // Non-ASCII is rare in task messages: let the base class decode the rest (it also finds invalid UTF-8).
        var rest = base.FindFirstCharacterToEncodeUtf8(utf8Text[i..]);
        return rest < 0 ? -1 : i + rest;
    }

    public override unsafe bool TryEncodeUnicodeScalar(int unicodeScalar, char* buffer, int bufferLength, out int numberOfCharactersWritten)
    {
        var destination = new Span<char>(buffer, bufferLength);
        ReadOnlySpan<char> escaped = unicodeScalar switch
        {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            '\b' => "\\b",
            '\f' => "\\f",
            _ => default,
        };

        if (escaped.IsEmpty && WillEncode(unicodeScalar))
        {
            if (destination.Length < 6)
            {
                numberOfCharactersWritten = 0;
                return false;
            }

            const string hex = "0123456789abcdef";
            destination[0] = '\\';
            destination[1] = 'u';
            destination[2] = hex[(unicodeScalar >> 12) & 0xF];
            destination[3] = hex[(unicodeScalar >> 8) & 0xF];
            destination[4] = hex[(unicodeScalar >> 4) & 0xF];
            destination[5] = hex[unicodeScalar & 0xF];
            numberOfCharactersWritten = 6;
            return true;
        }

        if (escaped.IsEmpty)
        {
            // Not escaped: write the scalar itself (two UTF-16 units above the BMP).
            if (!new Rune(unicodeScalar).TryEncodeToUtf16(destination, out numberOfCharactersWritten))
            {
                numberOfCharactersWritten = 0;
                return false;
            }

            return true;
        }

        if (!escaped.TryCopyTo(destination))
        {
            numberOfCharactersWritten = 0;
            return false;
        }

        numberOfCharactersWritten = escaped.Length;
        return true;
    }

    private static byte[] EscapedOrNonAscii()
    {
        var bytes = new List<byte>();
        for (var b = 0; b < 256; b++)
        {
            if (b < 0x20 || b >= 0x80 || b is '"' or '\\' or '<' or '>' or '&')
            {
                bytes.Add((byte)b);
            }
        }

        return [.. bytes];
    }
}
