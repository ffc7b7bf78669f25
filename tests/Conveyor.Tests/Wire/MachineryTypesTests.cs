using System.Reflection;

namespace Conveyor.Tests.Wire;

/// <summary>The closed table between machinery's type strings and CLR types.</summary>
public sealed class MachineryTypesTests
{
    /// <summary>Machinery v2's <c>typesMap</c> (tasks/reflect.go), with the CLR type and the name Conveyor writes.</summary>
    public static TheoryData<string, Type, string> Table => new()
    {
        { "bool", typeof(bool), "bool" },
        { "int", typeof(long), "int64" },
        { "int8", typeof(sbyte), "int8" },
        { "int16", typeof(short), "int16" },
        { "int32", typeof(int), "int32" },
        { "int64", typeof(long), "int64" },
        { "uint", typeof(ulong), "uint64" },
        { "uint8", typeof(byte), "uint8" },
        { "uint16", typeof(ushort), "uint16" },
        { "uint32", typeof(uint), "uint32" },
        { "uint64", typeof(ulong), "uint64" },
        { "float32", typeof(float), "float32" },
        { "float64", typeof(double), "float64" },
        { "string", typeof(string), "string" },
        { "[]bool", typeof(bool[]), "[]bool" },
        { "[]int", typeof(long[]), "[]int64" },
        { "[]int8", typeof(sbyte[]), "[]int8" },
        { "[]int16", typeof(short[]), "[]int16" },
        { "[]int32", typeof(int[]), "[]int32" },
        { "[]int64", typeof(long[]), "[]int64" },
        { "[]uint", typeof(ulong[]), "[]uint64" },
        { "[]uint8", typeof(byte[]), "[]byte" }, // Go's []uint8 is []byte
        { "[]uint16", typeof(ushort[]), "[]uint16" },
        { "[]uint32", typeof(uint[]), "[]uint32" },
        { "[]uint64", typeof(ulong[]), "[]uint64" },
        { "[]float32", typeof(float[]), "[]float32" },
        { "[]float64", typeof(double[]), "[]float64" },
        { "[]string", typeof(string[]), "[]string" },
        { "[]byte", typeof(byte[]), "[]byte" },
    };

    [Theory]
    [MemberData(nameof(Table))]
    public void TryGetClrType_EveryMachineryType_MapsToItsClrType(string typeName, Type clrType, string canonicalName)
    {
        Assert.True(MachineryTypes.TryGetClrType(typeName, out var actual));
        Assert.Equal(clrType, actual);

        // And back: the name Conveyor writes for that CLR type is the sized one, and it maps to the same CLR type.
        Assert.True(MachineryTypes.TryGetTypeName(clrType, out var written));
        Assert.Equal(canonicalName, written);
        Assert.True(MachineryTypes.TryGetClrType(written, out var again));
        Assert.Equal(clrType, again);
        Assert.True(MachineryTypes.IsSupported(clrType));
    }

    [Fact]
    public void Table_CoversMachineryTypesMapExactly()
    {
        // 14 scalars, the same 14 as slices, and []byte: nothing more is accepted, nothing less.
        Assert.Equal(29, Table.Count);
        Assert.Equal(29, Table.Select(row => (string)row[0]).Distinct(StringComparer.Ordinal).Count());
    }

    [Theory]
    [InlineData(typeof(bool), "bool")]
    [InlineData(typeof(sbyte), "int8")]
    [InlineData(typeof(short), "int16")]
    [InlineData(typeof(int), "int32")]
    [InlineData(typeof(long), "int64")]
    [InlineData(typeof(byte), "uint8")]
    [InlineData(typeof(ushort), "uint16")]
    [InlineData(typeof(uint), "uint32")]
    [InlineData(typeof(ulong), "uint64")]
    [InlineData(typeof(float), "float32")]
    [InlineData(typeof(double), "float64")]
    [InlineData(typeof(string), "string")]
    [InlineData(typeof(long[]), "[]int64")]
    [InlineData(typeof(ulong[]), "[]uint64")]
    [InlineData(typeof(byte[]), "[]byte")]
    [InlineData(typeof(string[]), "[]string")]
    public void TryGetTypeName_ClrType_GivesTheSizedMachineryName(Type clrType, string expected)
    {
        Assert.True(MachineryTypes.TryGetTypeName(clrType, out var name));
        Assert.Equal(expected, name);
    }

    [Fact]
    public void TypeConstants_IntAndUInt_AreGoSixtyFourBitButWrittenSized()
    {
        Assert.True(MachineryTypes.TryGetClrType(MachineryTypes.Int, out var intType));
        Assert.Equal(typeof(long), intType);
        Assert.True(MachineryTypes.TryGetClrType(MachineryTypes.UInt, out var uintType));
        Assert.Equal(typeof(ulong), uintType);

        Assert.Equal(MachineryTypes.Int64, TaskArgument.From(1L).Type);
        Assert.Equal(MachineryTypes.UInt64, TaskArgument.From(1UL).Type);
        Assert.Equal(MachineryTypes.Bytes, TaskArgument.From(new byte[] { 1 }).Type);
        Assert.Equal("[]string", TaskArgument.From(new[] { "a" }).Type);
    }

    [Theory]
    [InlineData("complex128")]
    [InlineData("complex64")]
    [InlineData("[]complex128")]
    [InlineData("Int64")] // machinery's lookup is case-sensitive
    [InlineData("INT")]
    [InlineData("int64 ")]
    [InlineData("")]
    [InlineData("[]")]
    [InlineData("[][]int64")]
    [InlineData("map[string]interface {}")]
    [InlineData("uintptr")]
    [InlineData("rune")]
    [InlineData("System.Int64")] // a CLR type name is never loaded from a message
    public void TryGetClrType_UnknownTypeString_IsRejected(string typeName)
    {
        Assert.False(MachineryTypes.TryGetClrType(typeName, out var clrType));
        Assert.Null(clrType);
    }

    [Theory]
    [InlineData(typeof(decimal))]
    [InlineData(typeof(DateTime))]
    [InlineData(typeof(char))]
    [InlineData(typeof(object))]
    [InlineData(typeof(List<long>))]
    [InlineData(typeof(long?))]
    [InlineData(typeof(long[][]))]
    public void TryGetTypeName_UnsupportedClrType_IsRejected(Type clrType)
    {
        Assert.False(MachineryTypes.TryGetTypeName(clrType, out var name));
        Assert.Null(name);
        Assert.False(MachineryTypes.IsSupported(clrType));

        // TaskArgument.From<T> refuses it too, so no message can carry a type machinery does not know.
        var from = typeof(TaskArgument).GetMethod(nameof(TaskArgument.From))!.MakeGenericMethod(clrType);
        var value = clrType.IsValueType ? Activator.CreateInstance(clrType) : null;
        var error = Assert.Throws<TargetInvocationException>(() => from.Invoke(null, [value, string.Empty]));
        Assert.IsType<ArgumentException>(error.InnerException);
    }
}
