using System.Buffers.Text;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Conveyor.Serialization;

/// <summary>
/// Go's <c>time.Time</c> JSON form (RFC 3339 with up to nine fractional digits, trailing zeros trimmed).
/// </summary>
/// <remarks>
/// .NET keeps time in 100 ns ticks, so a Go timestamp with nanoseconds is read truncated to the tick, and written
/// back with at most seven fractional digits. Parsing what Conveyor wrote gives the same instant again.
/// </remarks>
internal static class GoTime
{
    private const int MaxLength = 35; // 2006-01-02T15:04:05.999999999+07:00

    public static void Write(Utf8JsonWriter writer, DateTimeOffset value)
    {
        Span<byte> buffer = stackalloc byte[MaxLength];
        var length = Format(value, buffer);
        writer.WriteStringValue(buffer[..length]);
    }

    public static string ToString(DateTimeOffset value)
    {
        Span<byte> buffer = stackalloc byte[MaxLength];
        var length = Format(value, buffer);
        return System.Text.Encoding.ASCII.GetString(buffer[..length]);
    }

    public static int Format(DateTimeOffset value, Span<byte> destination)
    {
        var utc = value.UtcDateTime;
        Utf8Formatter.TryFormat(utc, destination, out var written, new System.Buffers.StandardFormat('O'));

        // 'O' writes "yyyy-MM-ddTHH:mm:ss.fffffffZ" for UTC; Go trims trailing zeros and the dot.
        var fractionStart = 20;
        var end = written - 1; // before 'Z'
        while (end > fractionStart && destination[end - 1] == (byte)'0')
        {
            end--;
        }

        if (end == fractionStart)
        {
            end--; // drop the '.'
        }

        destination[end] = (byte)'Z';
        return end + 1;
    }

    public static DateTimeOffset Read(ref Utf8JsonReader reader)
    {
        if (reader.TokenType != JsonTokenType.String)
        {
            throw new JsonException("A time must be an RFC 3339 string.");
        }

        Span<byte> buffer = stackalloc byte[64];
        scoped ReadOnlySpan<byte> text;
        if (!reader.HasValueSequence && !reader.ValueIsEscaped)
        {
            text = reader.ValueSpan;
        }
        else
        {
            // Unescaping never lengthens text, so an escaped value that fits the buffer is copied; a longer one (not a
            // time, or a time with needless escapes) goes through a string rather than overflow the buffer.
            var escapedLength = reader.HasValueSequence ? reader.ValueSequence.Length : reader.ValueSpan.Length;
            text = escapedLength <= buffer.Length ? buffer[..reader.CopyString(buffer)] : System.Text.Encoding.UTF8.GetBytes(reader.GetString()!);
        }

        if (!TryParse(text, out var result))
        {
            throw new JsonException($"'{System.Text.Encoding.UTF8.GetString(text)}' is not an RFC 3339 time.");
        }

        return result;
    }

    public static bool TryParse(ReadOnlySpan<byte> text, out DateTimeOffset result)
    {
        result = default;
        if (text.Length < 20 || text[4] != '-' || text[7] != '-' || (text[10] != 'T' && text[10] != 't') || text[13] != ':' || text[16] != ':')
        {
            return false;
        }

        if (!TryDigits(text[..4], out var year) || !TryDigits(text.Slice(5, 2), out var month) || !TryDigits(text.Slice(8, 2), out var day) ||
            !TryDigits(text.Slice(11, 2), out var hour) || !TryDigits(text.Slice(14, 2), out var minute) || !TryDigits(text.Slice(17, 2), out var second))
        {
            return false;
        }

        var position = 19;
        long ticks = 0;
        if (text[position] == '.')
        {
            position++;
            var digits = 0;
            while (position < text.Length && text[position] is >= (byte)'0' and <= (byte)'9')
            {
                if (digits < 7)
                {
                    ticks = (ticks * 10) + (text[position] - '0');
                }

                digits++;
                position++;
            }

            if (digits == 0)
            {
                return false;
            }

            for (var i = digits; i < 7; i++)
            {
                ticks *= 10;
            }
        }

        if (position >= text.Length)
        {
            return false;
        }

        TimeSpan offset;
        if (text[position] is (byte)'Z' or (byte)'z' && position == text.Length - 1)
        {
            offset = TimeSpan.Zero;
        }
        else if (text[position] is (byte)'+' or (byte)'-' && text.Length - position == 6 && text[position + 3] == ':' &&
                 TryDigits(text.Slice(position + 1, 2), out var offsetHours) && TryDigits(text.Slice(position + 4, 2), out var offsetMinutes))
        {
            offset = new TimeSpan(offsetHours, offsetMinutes, 0);
            if (text[position] == '-')
            {
                offset = -offset;
            }
        }
        else
        {
            return false;
        }

        try
        {
            result = new DateTimeOffset(year, month, day, hour, minute, second, offset).AddTicks(ticks);
            return true;
        }
        catch (ArgumentOutOfRangeException)
        {
            return false;
        }
    }

    private static bool TryDigits(ReadOnlySpan<byte> text, out int value) =>
        Utf8Parser.TryParse(text, out value, out var consumed) && consumed == text.Length && text[0] != '-' && text[0] != '+';

    public static string Describe(DateTimeOffset value) => value.ToString("O", CultureInfo.InvariantCulture);
}

/// <summary>Reads and writes a <see cref="DateTimeOffset"/> as Go's <c>time.Time</c>.</summary>
internal sealed class GoTimeJsonConverter : JsonConverter<DateTimeOffset>
{
    public override DateTimeOffset Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => GoTime.Read(ref reader);

    public override void Write(Utf8JsonWriter writer, DateTimeOffset value, JsonSerializerOptions options) => GoTime.Write(writer, value);
}
