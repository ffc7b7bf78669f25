namespace Conveyor.Cli.Tests;

public sealed class TaskSpecTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("conveyor-spec-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void Parse_NameAndArguments_QuotedValueKeepsItsSpaces()
    {
        var add = TaskSpec.Parse("add int64:1   int64:2");
        var echo = TaskSpec.Parse("echo \"string:hello world\"");
        var sum = TaskSpec.Parse("sum");

        Assert.Equal("add", add.Name);
        Assert.Equal([new TaskArgument("int64", 1L), new TaskArgument("int64", 2L)], add.Args);
        Assert.Equal(new TaskArgument("string", "hello world"), Assert.Single(echo.Args));
        Assert.Empty(sum.Args);
    }

    [Theory]
    [InlineData("   ", "names no task")]
    [InlineData("add int64:1 'int64:2", "a quote is not closed")]
    [InlineData("add 2", "must be TYPE:VALUE")]
    public void Parse_BadSpec_SaysWhatToFix(string spec, string expected)
    {
        var error = Assert.Throws<CliException>(() => TaskSpec.Parse(spec));
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ReadFile_EachKind_GivesItsTasksInOrder()
    {
        var chord = Write("chord.json", """{ "chord": { "group": [ "multiply int64:2 int64:3", "multiply int64:4 int64:5" ], "callback": "sum" } }""");
        var chain = Write("chain.json", """{ "chain": [ "add int64:1 int64:2", "multiply int64:10" ] }""");
        var group = Write("group.json", """{ "group": [ "echo string:a", "echo string:b", ] }""");
        var task = Write("task.json", """{ "Task": "add int64:2 int64:3" }""");

        var readChord = TaskSpec.ReadFile(chord);
        Assert.Equal(WorkflowKind.Chord, readChord.Kind);
        Assert.Equal(["multiply", "multiply"], readChord.Tasks.Select(t => t.Name));
        Assert.Equal(new TaskArgument("int64", 4L), readChord.Tasks[1].Args[0]);
        Assert.Equal("sum", readChord.Callback!.Name);
        Assert.Equal(WorkflowKind.Chain, TaskSpec.ReadFile(chain).Kind);
        Assert.Equal(["echo", "echo"], TaskSpec.ReadFile(group).Tasks.Select(t => t.Name));
        Assert.Equal(WorkflowKind.Task, TaskSpec.ReadFile(task).Kind);
    }

    [Theory]
    [InlineData("""{ "group": [] }""", "give a non-empty \"group\" or \"chain\"")]
    [InlineData("""{ "chord": { "group": [ "add int64:1 int64:2" ] } }""", "a \"chord\" with \"group\" and \"callback\"")]
    [InlineData("""{ "chain": [ { "task": "add" } ] }""", "not a workflow")]
    [InlineData("""{ "grup": [ "add int64:1 int64:2" ] }""", "not a workflow")]
    [InlineData("""{ "group": [ """, "not a workflow")]
    [InlineData("""{ "chain": [ "add int64:x" ] }""", "'x' is not a valid int64")]
    public void ReadFile_BadFile_SaysWhereAndWhat(string json, string expected)
    {
        var error = Assert.Throws<CliException>(() => TaskSpec.ReadFile(Write("bad.json", json)));
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    private string Write(string name, string json)
    {
        var path = Path.Combine(_directory, name);
        File.WriteAllText(path, json);
        return path;
    }
}
