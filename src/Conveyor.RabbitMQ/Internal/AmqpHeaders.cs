using System.Collections;
using System.Globalization;
using System.Text;
using RabbitMQ.Client;

namespace Conveyor.RabbitMQ.Internal;

/// <summary>Converts between Conveyor's header values and AMQP field tables.</summary>
internal static class AmqpHeaders
{
    public const string Reason = "x-conveyor-reason";
    public const string Queue = "x-conveyor-queue";
    public const string DeadLetteredAt = "x-conveyor-dead-lettered-at";
    public const string Id = "x-conveyor-id";

    /// <summary>
    /// Turns signature headers into values the AMQP table writer accepts (it throws on other types). Strings go as
    /// long strings (UTF-8), as machinery's amqp.Table does; other numbers widen to long or double.
    /// </summary>
    public static Dictionary<string, object?>? ToTable(IReadOnlyDictionary<string, object?>? headers)
    {
        if (headers is null || headers.Count == 0)
        {
            return null;
        }

        var table = new Dictionary<string, object?>(headers.Count, StringComparer.Ordinal);
        foreach (var (key, value) in headers)
        {
            table[key] = ToField(value);
        }

        return table;
    }

    private static object? ToField(object? value) => value switch
    {
        null => null,
        string or bool or byte[] or long or int or double or decimal or AmqpTimestamp => value,
        sbyte or byte or short or ushort or uint => Convert.ToInt64(value, CultureInfo.InvariantCulture),
        ulong u => u <= long.MaxValue ? (long)u : u.ToString(CultureInfo.InvariantCulture),
        float f => (double)f,
        DateTimeOffset d => d.ToString("O", CultureInfo.InvariantCulture),
        DateTime d => d.ToString("O", CultureInfo.InvariantCulture),
        IReadOnlyDictionary<string, object?> nested => ToTable(nested),
        IDictionary<string, object?> nested => nested.ToDictionary(p => p.Key, p => ToField(p.Value), StringComparer.Ordinal),
        IEnumerable list => list.Cast<object?>().Select(ToField).ToList(),
        _ => Convert.ToString(value, CultureInfo.InvariantCulture),
    };

    /// <summary>Reads a header written as a string (AMQP long strings arrive as byte arrays).</summary>
    public static string? GetString(IDictionary<string, object?>? headers, string key) =>
        headers is not null && headers.TryGetValue(key, out var value)
            ? value switch
            {
                byte[] bytes => Encoding.UTF8.GetString(bytes),
                string s => s,
                null => null,
                _ => Convert.ToString(value, CultureInfo.InvariantCulture),
            }
            : null;

    /// <summary>Reads an integer header (<c>x-delivery-count</c>).</summary>
    public static long? GetInt64(IDictionary<string, object?>? headers, string key) =>
        headers is not null && headers.TryGetValue(key, out var value)
            ? value switch
            {
                long l => l,
                int i => i,
                short s => s,
                byte b => b,
                sbyte sb => sb,
                ushort us => us,
                uint ui => ui,
                byte[] bytes when long.TryParse(Encoding.UTF8.GetString(bytes), NumberStyles.Integer, CultureInfo.InvariantCulture, out var parsed) => parsed,
                _ => null,
            }
            : null;
}
