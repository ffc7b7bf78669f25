namespace Conveyor.Cli.Tests;

public sealed class ArgumentParserTests
{
    [Fact]
    public void Parse_MachineryTypeStrings_GiveTypedArguments()
    {
        Assert.Equal(new TaskArgument("int64", 2L), ArgumentParser.Parse("int64:2"));
        Assert.Equal(new TaskArgument("string", "hello:world"), ArgumentParser.Parse("string:hello:world"));
        Assert.Equal(new TaskArgument("bool", true), ArgumentParser.Parse("bool:true"));
        Assert.Equal(new TaskArgument("float64", 2.5), ArgumentParser.Parse("float64:2.5"));
        Assert.Equal(new TaskArgument("uint8", (byte)255), ArgumentParser.Parse("uint8:255"));
        Assert.Equal(new TaskArgument("int", 9007199254740993L), ArgumentParser.Parse("int:9007199254740993"));

        var list = ArgumentParser.Parse("[]string:a,b c,");
        Assert.Equal("[]string", list.Type);
        Assert.Equal(["a", "b c", ""], (string[])list.Value!);
        Assert.Equal([1L, 2L, 3L], (long[])ArgumentParser.Parse("[]int64:1,2,3").Value!);
        Assert.Empty((string[])ArgumentParser.Parse("[]string:").Value!);
        Assert.Equal([1, 2, 3], (byte[])ArgumentParser.Parse("[]byte:AQID").Value!);
    }

    [Theory]
    [InlineData("2", "must be TYPE:VALUE")]
    [InlineData("complex128:1", "unknown type 'complex128'")]
    [InlineData("int64:2.0", "'2.0' is not a valid int64")]
    [InlineData("int8:300", "'300' is not a valid int8")]
    [InlineData("[]int64:1,x", "is not a valid []int64")]
    [InlineData("bool:yes", "is not a valid bool")]
    public void Parse_BadArgument_SaysWhatToFix(string text, string expected)
    {
        var error = Assert.Throws<CliException>(() => ArgumentParser.Parse(text));
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Format_ArraysLikeGo()
    {
        Assert.Equal("[a b]", ArgumentParser.Format(new[] { "a", "b" }));
        Assert.Equal("[1 2]", ArgumentParser.Format(new[] { 1L, 2L }));
        Assert.Equal("2.5", ArgumentParser.Format(2.5));
        Assert.Equal("null", ArgumentParser.Format(null));
    }
}
