using System.Collections.Frozen;
using System.Diagnostics.CodeAnalysis;

namespace Conveyor;

/// <summary>
/// The closed table between machinery's argument type strings (<c>"int64"</c>, <c>"[]string"</c>, ...) and CLR types.
/// </summary>
/// <remarks>
/// Conveyor never loads a CLR type named by a message: a type string that is not in this table is an error.
/// Go's <c>int</c> and <c>uint</c> are 64-bit, so they read as <see cref="long"/> and <see cref="ulong"/>; when
/// Conveyor writes a value it always uses the sized names (<c>int64</c>, <c>uint64</c>).
/// <c>[]byte</c> (and its Go alias <c>[]uint8</c>) travels as base64, as Go's encoding/json writes it.
/// </remarks>
public static class MachineryTypes
{
    /// <summary>Go <c>bool</c>, CLR <see cref="bool"/>.</summary>
    public const string Bool = "bool";
    /// <summary>Go <c>int</c> (64-bit), CLR <see cref="long"/>.</summary>
    public const string Int = "int";
    /// <summary>Go <c>int8</c>, CLR <see cref="sbyte"/>.</summary>
    public const string Int8 = "int8";
    /// <summary>Go <c>int16</c>, CLR <see cref="short"/>.</summary>
    public const string Int16 = "int16";
    /// <summary>Go <c>int32</c>, CLR <see cref="int"/>.</summary>
    public const string Int32 = "int32";
    /// <summary>Go <c>int64</c>, CLR <see cref="long"/>.</summary>
    public const string Int64 = "int64";
    /// <summary>Go <c>uint</c> (64-bit), CLR <see cref="ulong"/>.</summary>
    public const string UInt = "uint";
    /// <summary>Go <c>uint8</c>, CLR <see cref="byte"/>.</summary>
    public const string UInt8 = "uint8";
    /// <summary>Go <c>uint16</c>, CLR <see cref="ushort"/>.</summary>
    public const string UInt16 = "uint16";
    /// <summary>Go <c>uint32</c>, CLR <see cref="uint"/>.</summary>
    public const string UInt32 = "uint32";
    /// <summary>Go <c>uint64</c>, CLR <see cref="ulong"/>.</summary>
    public const string UInt64 = "uint64";
    /// <summary>Go <c>float32</c>, CLR <see cref="float"/>.</summary>
    public const string Float32 = "float32";
    /// <summary>Go <c>float64</c>, CLR <see cref="double"/>.</summary>
    public const string Float64 = "float64";
    /// <summary>Go <c>string</c>, CLR <see cref="string"/>.</summary>
    public const string String = "string";
    /// <summary>Go <c>[]byte</c>, CLR <see cref="byte"/>[] (base64 on the wire).</summary>
    public const string Bytes = "[]byte";

    internal enum Kind : byte
    {
        Bool,
        Int8,
        Int16,
        Int32,
        Int64,
        UInt8,
        UInt16,
        UInt32,
        UInt64,
        Float32,
        Float64,
        String,
        Bytes,
    }

    internal readonly record struct Entry(Kind Kind, bool IsSlice, Type ClrType, string CanonicalName);

    private static readonly FrozenDictionary<string, Entry> ByName = BuildByName();
    private static readonly FrozenDictionary<Type, string> ByClrType = BuildByClrType();

    private static FrozenDictionary<string, Entry> BuildByName()
    {
        var scalars = new (string Name, Kind Kind, Type Type, Type SliceType, string Canonical)[]
        {
            (Bool, Kind.Bool, typeof(bool), typeof(bool[]), Bool),
            (Int, Kind.Int64, typeof(long), typeof(long[]), Int64),
            (Int8, Kind.Int8, typeof(sbyte), typeof(sbyte[]), Int8),
            (Int16, Kind.Int16, typeof(short), typeof(short[]), Int16),
            (Int32, Kind.Int32, typeof(int), typeof(int[]), Int32),
            (Int64, Kind.Int64, typeof(long), typeof(long[]), Int64),
            (UInt, Kind.UInt64, typeof(ulong), typeof(ulong[]), UInt64),
            (UInt8, Kind.UInt8, typeof(byte), typeof(byte[]), UInt8),
            (UInt16, Kind.UInt16, typeof(ushort), typeof(ushort[]), UInt16),
            (UInt32, Kind.UInt32, typeof(uint), typeof(uint[]), UInt32),
            (UInt64, Kind.UInt64, typeof(ulong), typeof(ulong[]), UInt64),
            (Float32, Kind.Float32, typeof(float), typeof(float[]), Float32),
            (Float64, Kind.Float64, typeof(double), typeof(double[]), Float64),
            (String, Kind.String, typeof(string), typeof(string[]), String),
        };
        var table = new Dictionary<string, Entry>(StringComparer.Ordinal);
        foreach (var (name, kind, type, sliceType, canonical) in scalars)
        {
            table[name] = new Entry(kind, false, type, canonical);
            table["[]" + name] = new Entry(kind, true, sliceType, "[]" + canonical);
        }

        // Go's []uint8 is []byte, which encoding/json writes as base64.
        table[Bytes] = new Entry(Kind.Bytes, false, typeof(byte[]), Bytes);
        table["[]uint8"] = new Entry(Kind.Bytes, false, typeof(byte[]), Bytes);
        return table.ToFrozenDictionary(StringComparer.Ordinal);
    }

    private static FrozenDictionary<Type, string> BuildByClrType()
    {
        var table = new Dictionary<Type, string>();
        foreach (var entry in ByName.Values)
        {
            table.TryAdd(entry.ClrType, entry.CanonicalName);
        }

        table[typeof(byte[])] = Bytes;
        return table.ToFrozenDictionary();
    }

    /// <summary>Gets the CLR type that a machinery type string maps to.</summary>
    /// <param name="typeName">A machinery type string such as <c>"int64"</c> or <c>"[]string"</c>.</param>
    /// <param name="clrType">The CLR type, when the type string is in the table.</param>
    /// <returns><see langword="true"/> when the type string is known.</returns>
    public static bool TryGetClrType(string typeName, [NotNullWhen(true)] out Type? clrType)
    {
        ArgumentNullException.ThrowIfNull(typeName);
        if (ByName.TryGetValue(typeName, out var entry))
        {
            clrType = entry.ClrType;
            return true;
        }

        clrType = null;
        return false;
    }

    /// <summary>Gets the machinery type string Conveyor writes for a CLR type.</summary>
    /// <param name="clrType">A CLR type from the table, such as <see cref="long"/> or <see cref="string"/>[].</param>
    /// <param name="typeName">The machinery type string.</param>
    /// <returns><see langword="true"/> when the CLR type is in the table.</returns>
    public static bool TryGetTypeName(Type clrType, [NotNullWhen(true)] out string? typeName)
    {
        ArgumentNullException.ThrowIfNull(clrType);
        return ByClrType.TryGetValue(clrType, out typeName);
    }

    /// <summary>Tells whether a CLR type can travel as a machinery argument or result.</summary>
    /// <param name="clrType">The CLR type.</param>
    /// <returns><see langword="true"/> when the CLR type is in the table.</returns>
    public static bool IsSupported(Type clrType) => clrType is not null && ByClrType.ContainsKey(clrType);

    internal static bool TryGetEntry(string typeName, out Entry entry) => ByName.TryGetValue(typeName, out entry);
}
