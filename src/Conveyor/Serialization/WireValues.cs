using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Conveyor.Serialization;

/// <summary>Reads and writes argument and result values by their machinery type string.</summary>
internal static class WireValues
{
    /// <summary>
    /// Reads the value at the reader's current token as the declared machinery type. A value that does not fit
    /// (for example <c>2.0</c> or <c>"2"</c> for <c>int64</c>, or an unknown type) comes back as an
    /// <see cref="InvalidWireValue"/> holding the raw JSON, so that running the task fails with a clear error.
    /// </summary>
    public static object? Read(ref Utf8JsonReader reader, string typeName)
    {
        if (!MachineryTypes.TryGetEntry(typeName, out var entry))
        {
            return Invalid(ref reader, $"unsupported argument type \"{typeName}\"");
        }

        var start = reader;
        if (TryRead(ref reader, entry, out var value, out var reason))
        {
            return value;
        }

        reader = start;
        return Invalid(ref reader, reason);
    }

    private static InvalidWireValue Invalid(ref Utf8JsonReader reader, string reason)
    {
        using var document = JsonDocument.ParseValue(ref reader);
        return new InvalidWireValue(Encoding.UTF8.GetBytes(document.RootElement.GetRawText()), reason);
    }

    private static bool TryRead(ref Utf8JsonReader reader, MachineryTypes.Entry entry, out object? value, out string reason)
    {
        if (entry.Kind == MachineryTypes.Kind.Bytes)
        {
            return TryReadBytes(ref reader, out value, out reason);
        }

        if (!entry.IsSlice)
        {
            return TryReadScalar(ref reader, entry.Kind, entry.CanonicalName, out value, out reason);
        }

        if (reader.TokenType == JsonTokenType.Null)
        {
            value = null;
            reason = string.Empty;
            return true;
        }

        if (reader.TokenType != JsonTokenType.StartArray)
        {
            value = null;
            reason = $"expected a JSON array for {entry.CanonicalName}, got {Describe(reader.TokenType)}";
            return false;
        }

        var elementName = entry.CanonicalName[2..];
        switch (entry.Kind)
        {
            case MachineryTypes.Kind.Bool: return TryReadArray<bool>(ref reader, entry.Kind, elementName, out value, out reason);
            case MachineryTypes.Kind.Int8: return TryReadArray<sbyte>(ref reader, entry.Kind, elementName, out value, out reason);
            case MachineryTypes.Kind.Int16: return TryReadArray<short>(ref reader, entry.Kind, elementName, out value, out reason);
            case MachineryTypes.Kind.Int32: return TryReadArray<int>(ref reader, entry.Kind, elementName, out value, out reason);
            case MachineryTypes.Kind.Int64: return TryReadArray<long>(ref reader, entry.Kind, elementName, out value, out reason);
            case MachineryTypes.Kind.UInt8: return TryReadArray<byte>(ref reader, entry.Kind, elementName, out value, out reason);
            case MachineryTypes.Kind.UInt16: return TryReadArray<ushort>(ref reader, entry.Kind, elementName, out value, out reason);
            case MachineryTypes.Kind.UInt32: return TryReadArray<uint>(ref reader, entry.Kind, elementName, out value, out reason);
            case MachineryTypes.Kind.UInt64: return TryReadArray<ulong>(ref reader, entry.Kind, elementName, out value, out reason);
            case MachineryTypes.Kind.Float32: return TryReadArray<float>(ref reader, entry.Kind, elementName, out value, out reason);
            case MachineryTypes.Kind.Float64: return TryReadArray<double>(ref reader, entry.Kind, elementName, out value, out reason);
            case MachineryTypes.Kind.String: return TryReadArray<string>(ref reader, entry.Kind, elementName, out value, out reason);
            default:
                value = null;
                reason = $"unsupported argument type \"{entry.CanonicalName}\"";
                return false;
        }
    }

    private static bool TryReadArray<T>(ref Utf8JsonReader reader, MachineryTypes.Kind kind, string elementName, out object? value, out string reason)
    {
        var items = new List<T>();
        var index = 0;
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (!TryReadScalar(ref reader, kind, elementName, out var item, out reason))
            {
                value = null;
                reason = $"element {index}: {reason}";
                return false;
            }

            items.Add((T)item!);
            index++;
        }

        value = items.ToArray();
        reason = string.Empty;
        return true;
    }

    private static bool TryReadBytes(ref Utf8JsonReader reader, out object? value, out string reason)
    {
        reason = string.Empty;
        switch (reader.TokenType)
        {
            case JsonTokenType.Null:
                value = null;
                return true;
            case JsonTokenType.String when reader.TryGetBytesFromBase64(out var bytes):
                value = bytes;
                return true;
            case JsonTokenType.StartArray:
                // Some producers write []byte as an array of numbers; accept it.
                return TryReadArray<byte>(ref reader, MachineryTypes.Kind.UInt8, MachineryTypes.UInt8, out value, out reason);
            default:
                value = null;
                reason = "expected base64 text for []byte";
                return false;
        }
    }

    private static bool TryReadScalar(ref Utf8JsonReader reader, MachineryTypes.Kind kind, string typeName, out object? value, out string reason)
    {
        reason = string.Empty;
        value = null;
        var token = reader.TokenType;
        switch (kind)
        {
            case MachineryTypes.Kind.Bool:
                if (token is JsonTokenType.True or JsonTokenType.False)
                {
                    value = BoxedBool(token == JsonTokenType.True);
                    return true;
                }

                break;
            case MachineryTypes.Kind.String:
                if (token == JsonTokenType.String)
                {
                    value = reader.GetString();
                    return true;
                }

                break;
            case MachineryTypes.Kind.Float32 or MachineryTypes.Kind.Float64:
                if (token == JsonTokenType.Number && reader.TryGetDouble(out var d))
                {
                    value = kind == MachineryTypes.Kind.Float32 ? (object)(float)d : d;
                    return true;
                }

                break;
            case MachineryTypes.Kind.UInt8 or MachineryTypes.Kind.UInt16 or MachineryTypes.Kind.UInt32 or MachineryTypes.Kind.UInt64:
                if (token == JsonTokenType.Number)
                {
                    if (!reader.TryGetUInt64(out var u))
                    {
                        reason = $"{Raw(ref reader)} is not an integer literal in the range of {typeName}";
                        return false;
                    }

                    switch (kind)
                    {
                        case MachineryTypes.Kind.UInt8 when u <= byte.MaxValue: value = (byte)u; return true;
                        case MachineryTypes.Kind.UInt16 when u <= ushort.MaxValue: value = (ushort)u; return true;
                        case MachineryTypes.Kind.UInt32 when u <= uint.MaxValue: value = (uint)u; return true;
                        case MachineryTypes.Kind.UInt64: value = u; return true;
                        default:
                            reason = $"{u} overflows {typeName}";
                            return false;
                    }
                }

                break;
            default: // signed integers
                if (token == JsonTokenType.Number)
                {
                    if (!reader.TryGetInt64(out var l))
                    {
                        reason = $"{Raw(ref reader)} is not an integer literal in the range of {typeName}";
                        return false;
                    }

                    switch (kind)
                    {
                        case MachineryTypes.Kind.Int8 when l is >= sbyte.MinValue and <= sbyte.MaxValue: value = (sbyte)l; return true;
                        case MachineryTypes.Kind.Int16 when l is >= short.MinValue and <= short.MaxValue: value = (short)l; return true;
                        case MachineryTypes.Kind.Int32 when l is >= int.MinValue and <= int.MaxValue: value = (int)l; return true;
                        case MachineryTypes.Kind.Int64: value = l; return true;
                        default:
                            reason = $"{l} overflows {typeName}";
                            return false;
                    }
                }

                break;
        }

        reason = $"expected {typeName}, got {Describe(token)}" + (token is JsonTokenType.String or JsonTokenType.Number ? $" {Raw(ref reader)}" : string.Empty);
        return false;
    }

    private static readonly object BoxedTrue = true;
    private static readonly object BoxedFalse = false;

    private static object BoxedBool(bool value) => value ? BoxedTrue : BoxedFalse;

    private static string Raw(ref Utf8JsonReader reader)
    {
        var text = reader.HasValueSequence ? Encoding.UTF8.GetString(reader.ValueSequence) : Encoding.UTF8.GetString(reader.ValueSpan);
        return reader.TokenType == JsonTokenType.String ? "\"" + text + "\"" : text;
    }

    private static string Describe(JsonTokenType token) => token switch
    {
        JsonTokenType.String => "a string",
        JsonTokenType.Number => "a number",
        JsonTokenType.True or JsonTokenType.False => "a boolean",
        JsonTokenType.Null => "null",
        JsonTokenType.StartArray => "an array",
        JsonTokenType.StartObject => "an object",
        _ => token.ToString(),
    };

    /// <summary>Writes a value by its CLR type; the declared type string is written separately by the caller.</summary>
    public static void Write(Utf8JsonWriter writer, object? value)
    {
        switch (value)
        {
            case null: writer.WriteNullValue(); break;
            case bool b: writer.WriteBooleanValue(b); break;
            case long l: writer.WriteNumberValue(l); break;
            case int i: writer.WriteNumberValue(i); break;
            case short s: writer.WriteNumberValue(s); break;
            case sbyte sb: writer.WriteNumberValue(sb); break;
            case ulong ul: writer.WriteNumberValue(ul); break;
            case uint ui: writer.WriteNumberValue(ui); break;
            case ushort us: writer.WriteNumberValue(us); break;
            case byte by: writer.WriteNumberValue(by); break;
            case double d: WriteGoFloat(writer, d, false); break;
            case float f: WriteGoFloat(writer, f, true); break;
            case string str: writer.WriteStringValue(str); break;
            // The CLR lets an sbyte[] pass `is byte[]`; only a real byte[] is Go's []byte (base64).
            case byte[] bytes when bytes.GetType() == typeof(byte[]): writer.WriteBase64StringValue(bytes); break;
            case InvalidWireValue invalid: writer.WriteRawValue(invalid.RawJson, skipInputValidation: true); break;
            case JsonElement element: element.WriteTo(writer); break;
            case System.Collections.IEnumerable sequence:
                writer.WriteStartArray();
                foreach (var item in sequence)
                {
                    Write(writer, item);
                }

                writer.WriteEndArray();
                break;
            default:
                throw new ArgumentException($"A value of type {value.GetType()} cannot travel in a machinery message; use a type from MachineryTypes.", nameof(value));
        }
    }

    /// <summary>
    /// Writes a float the way Go's encoding/json does: the shortest text that round-trips, in plain decimal for
    /// 1e-6 &lt;= |x| &lt; 1e21 and in exponent form (<c>1e+21</c>, <c>1.5e-7</c>) outside it.
    /// </summary>
    public static void WriteGoFloat(Utf8JsonWriter writer, double value, bool is32)
    {
        if (!double.IsFinite(value))
        {
            throw new ArgumentException($"{value} cannot be written as JSON (Go's encoding/json rejects it too).", nameof(value));
        }

        writer.WriteRawValue(FormatGoFloat(value, is32), skipInputValidation: true);
    }

    public static string FormatGoFloat(double value, bool is32)
    {
        var shortest = is32 ? ((float)value).ToString("R", CultureInfo.InvariantCulture) : value.ToString("R", CultureInfo.InvariantCulture);
        bool plain;
        if (is32)
        {
            // Go compares a float32's cutoffs in float32: float32(0.000001) is not below float32(1e-6).
            var abs32 = Math.Abs((float)value);
            plain = abs32 == 0 || (abs32 >= 1e-6f && abs32 < 1e21f);
        }
        else
        {
            var abs = Math.Abs(value);
            plain = abs == 0 || (abs >= 1e-6 && abs < 1e21);
        }

        var exponentAt = shortest.IndexOf('E', StringComparison.Ordinal);
        if (plain && exponentAt < 0)
        {
            return shortest;
        }

        // Split the shortest form into sign, digits and the decimal point's position.
        var negative = shortest[0] == '-';
        var mantissa = exponentAt < 0 ? shortest : shortest[..exponentAt];
        if (negative)
        {
            mantissa = mantissa[1..];
        }

        var exponent = exponentAt < 0 ? 0 : int.Parse(shortest.AsSpan(exponentAt + 1), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
        var dot = mantissa.IndexOf('.', StringComparison.Ordinal);
        var digits = dot < 0 ? mantissa : mantissa.Remove(dot, 1);
        var point = (dot < 0 ? mantissa.Length : dot) + exponent;
        var leadingZeros = 0;
        while (leadingZeros < digits.Length - 1 && digits[leadingZeros] == '0')
        {
            leadingZeros++;
        }

        digits = digits[leadingZeros..];
        point -= leadingZeros;
        digits = digits.TrimEnd('0');
        if (digits.Length == 0)
        {
            digits = "0";
        }

        var builder = new StringBuilder(32);
        if (negative)
        {
            builder.Append('-');
        }

        if (plain)
        {
            if (point <= 0)
            {
                builder.Append("0.").Append('0', -point).Append(digits);
            }
            else if (point >= digits.Length)
            {
                builder.Append(digits).Append('0', point - digits.Length);
            }
            else
            {
                builder.Append(digits, 0, point).Append('.').Append(digits, point, digits.Length - point);
            }

            return builder.ToString();
        }

        builder.Append(digits[0]);
        if (digits.Length > 1)
        {
            builder.Append('.').Append(digits, 1, digits.Length - 1);
        }

        var e = point - 1;
        builder.Append('e').Append(e < 0 ? '-' : '+');
        var magnitude = Math.Abs(e);

        // strconv pads the exponent to two digits, then encoding/json cleans "e-07" up to "e-7" (positive exponents are >= 21 here).
        if (e >= 0 && magnitude < 10)
        {
            builder.Append('0');
        }

        builder.Append(magnitude.ToString(CultureInfo.InvariantCulture));
        return builder.ToString();
    }

    /// <summary>Reads a header value: strings, integers, floats, booleans and null; anything else as a <see cref="JsonElement"/>.</summary>
    public static object? ReadHeaderValue(ref Utf8JsonReader reader)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.String: return reader.GetString();
            case JsonTokenType.Number: return reader.TryGetInt64(out var l) ? l : (object)reader.GetDouble();
            case JsonTokenType.True: return BoxedTrue;
            case JsonTokenType.False: return BoxedFalse;
            case JsonTokenType.Null: return null;
            default: return JsonElement.ParseValue(ref reader);
        }
    }
}
