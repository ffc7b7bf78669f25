using System.Globalization;

namespace Conveyor.Cli;

/// <summary>
/// Parses command-line task arguments written <c>TYPE:VALUE</c> with machinery's type strings: <c>int64:2</c>,
/// <c>string:hello</c>, <c>[]string:a,b</c>, <c>bool:true</c>, <c>[]byte:BASE64</c>. Types go through the closed
/// table in <see cref="MachineryTypes"/>.
/// </summary>
internal static class ArgumentParser
{
    public static TaskArgument Parse(string text)
    {
        var colon = text.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0)
        {
            throw new CliException($"argument '{text}' must be TYPE:VALUE, for example int64:2 or string:hello");
        }

        var type = text[..colon];
        var value = text[(colon + 1)..];
        if (!MachineryTypes.TryGetClrType(type, out var clrType))
        {
            throw new CliException($"argument '{text}': unknown type '{type}'; use bool, int, int8..int64, uint, uint8..uint64, float32, float64, string, []T or []byte");
        }

        try
        {
            if (type == MachineryTypes.Bytes || type == "[]uint8")
            {
                return new TaskArgument(MachineryTypes.Bytes, Convert.FromBase64String(value));
            }

            if (clrType.IsArray)
            {
                var elementType = clrType.GetElementType()!;
                var parts = value.Length == 0 ? [] : value.Split(',');
                var array = Array.CreateInstance(elementType, parts.Length);
                for (var i = 0; i < parts.Length; i++)
                {
                    array.SetValue(ParseScalar(parts[i], elementType), i);
                }

                return new TaskArgument(type, array);
            }

            return new TaskArgument(type, ParseScalar(value, clrType));
        }
        catch (Exception ex) when (ex is FormatException or OverflowException)
        {
            throw new CliException($"argument '{text}': '{value}' is not a valid {type}");
        }
    }

    private static object ParseScalar(string value, Type type)
    {
        var culture = CultureInfo.InvariantCulture;
        return type switch
        {
            _ when type == typeof(string) => value,
            _ when type == typeof(bool) => bool.Parse(value),
            _ when type == typeof(long) => long.Parse(value, NumberStyles.Integer, culture),
            _ when type == typeof(int) => int.Parse(value, NumberStyles.Integer, culture),
            _ when type == typeof(short) => short.Parse(value, NumberStyles.Integer, culture),
            _ when type == typeof(sbyte) => sbyte.Parse(value, NumberStyles.Integer, culture),
            _ when type == typeof(ulong) => ulong.Parse(value, NumberStyles.Integer, culture),
            _ when type == typeof(uint) => uint.Parse(value, NumberStyles.Integer, culture),
            _ when type == typeof(ushort) => ushort.Parse(value, NumberStyles.Integer, culture),
            _ when type == typeof(byte) => byte.Parse(value, NumberStyles.Integer, culture),
            _ when type == typeof(double) => double.Parse(value, NumberStyles.Float, culture),
            _ when type == typeof(float) => float.Parse(value, NumberStyles.Float, culture),
            _ => throw new FormatException(),
        };
    }

    /// <summary>Formats a value for people: arrays as <c>[a b c]</c>, like Go's fmt.</summary>
    public static string Format(object? value) => value switch
    {
        null => "null",
        string s => s,
        byte[] bytes => Convert.ToBase64String(bytes),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        System.Collections.IEnumerable items => "[" + string.Join(" ", items.Cast<object?>().Select(Format)) + "]",
        _ => value.ToString() ?? string.Empty,
    };
}
