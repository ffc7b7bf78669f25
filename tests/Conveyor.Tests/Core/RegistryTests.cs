namespace Conveyor.Tests.Core;

public sealed class RegistryTests
{
    private static async Task<IReadOnlyList<TaskResult>> RunAsync(TaskRegistry registry, Signature signature)
    {
        Assert.True(registry.TryGet(signature.Name, out var handler));
        return await handler.InvokeAsync(signature, new TaskContext(signature, 1, null, CancellationToken.None), CancellationToken.None);
    }

    [Fact]
    public void Register_ParameterWithoutMachineryType_IsRejectedAtRegistrationNamingTheParameter()
    {
        var error = Assert.Throws<ArgumentException>(() => new TaskRegistry().Register("bad", (DateTime when) => 1L));
        Assert.Contains("'when'", error.Message, StringComparison.Ordinal);
        Assert.Contains("no machinery type", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Register_ReturnTypeWithoutMachineryType_IsRejectedAtRegistration()
    {
        var error = Assert.Throws<ArgumentException>(() => new TaskRegistry().Register("bad", () => new Dictionary<string, int>()));
        Assert.Contains("return type", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Invoke_SyncAsyncAndValueTaskHandlers_AllReturnTypedResults()
    {
        var registry = new TaskRegistry()
            .Register("sync", (long a, long b) => a + b)
            .Register("task", async (string s) =>
            {
                await Task.Yield();
                return s + "!";
            })
            .Register("valuetask", (double x) => new ValueTask<double>(x * 2))
            .Register("void", (bool _) => { })
            .Register("tuple", (int x) => (x, (uint)x, (float)x / 2, new byte[] { 1, 2 }))
            .Register("dynamic", () => new TaskResult("uint8", (byte)7));

        Assert.Equal([new TaskResult("int64", 5L)], await RunAsync(registry, new Signature("sync", TaskArgument.Int64(2), TaskArgument.Int64(3))));
        Assert.Equal([new TaskResult("string", "hi!")], await RunAsync(registry, new Signature("task", TaskArgument.String("hi"))));
        Assert.Equal([new TaskResult("float64", 3.0)], await RunAsync(registry, new Signature("valuetask", TaskArgument.Float64(1.5))));
        Assert.Empty(await RunAsync(registry, new Signature("void", TaskArgument.Bool(true))));
        var tuple = await RunAsync(registry, new Signature("tuple", TaskArgument.From(4)));
        Assert.Equal(["int32", "uint32", "float32", "[]byte"], tuple.Select(r => r.Type));
        Assert.Equal([new TaskResult("uint8", (byte)7)], await RunAsync(registry, new Signature("dynamic")));
    }

    [Fact]
    public async Task Invoke_ContextAndToken_AreInjectedWhereverDeclared()
    {
        using var cts = new CancellationTokenSource();
        var registry = new TaskRegistry().Register("ctx", (TaskContext context, long x, CancellationToken token) =>
            $"{context.TaskName}:{context.Attempt}:{x}:{token.CanBeCanceled}");
        var signature = new Signature("ctx", TaskArgument.Int64(9));
        Assert.True(registry.TryGet("ctx", out var handler));

        var results = await handler.InvokeAsync(signature, new TaskContext(signature, 3, null, cts.Token), cts.Token);

        Assert.Equal("ctx:3:9:True", results[0].Value);
    }

    [Fact]
    public async Task Invoke_ParamsArray_TakesEveryRemainingArgument()
    {
        var registry = new TaskRegistry().Register("sum", (string label, params long[] values) => $"{label}={values.Sum()}");

        Assert.Equal("s=6", (await RunAsync(registry, new Signature("sum", TaskArgument.String("s"), TaskArgument.Int64(1), TaskArgument.Int64(2), TaskArgument.Int64(3))))[0].Value);
        Assert.Equal("s=0", (await RunAsync(registry, new Signature("sum", TaskArgument.String("s"))))[0].Value);
        var error = await Assert.ThrowsAsync<TaskArgumentException>(async () => await RunAsync(registry, new Signature("sum", TaskArgument.String("s"), TaskArgument.String("x"))));
        Assert.Contains("argument 2 must be int64", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Invoke_InvalidWireValue_FailsWithTheParsersReason()
    {
        var registry = new TaskRegistry().Register("add", (long a, long b) => a + b);
        var signature = Serialization.WireFormat.DeserializeSignature(
            """{"UUID":"task_1","Name":"add","Args":[{"Type":"int64","Value":2.0},{"Type":"int64","Value":"2"}]}"""u8);

        var error = await Assert.ThrowsAsync<TaskArgumentException>(async () => await RunAsync(registry, signature));
        Assert.Contains("argument 1 (int64) is invalid", error.Message, StringComparison.Ordinal);
        Assert.Contains("2.0", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RegisterClass_MakesAnInstancePerTaskAndDisposesIt()
    {
        var created = 0;
        var disposed = 0;
        var registry = new TaskRegistry().RegisterHandler("greet", _ =>
        {
            Interlocked.Increment(ref created);
            return new GreetingHandler(() => Interlocked.Increment(ref disposed));
        });

        Assert.Equal("hello, ada", (await RunAsync(registry, new Signature("greet", TaskArgument.String("ada"))))[0].Value);
        Assert.Equal("hello, bob", (await RunAsync(registry, new Signature("greet", TaskArgument.String("bob"))))[0].Value);
        Assert.Equal(2, created);
        Assert.Equal(2, disposed);
    }

    private sealed class GreetingHandler(Action onDispose) : IDisposable
    {
        public Task<string> RunAsync(string name, CancellationToken cancellationToken) => Task.FromResult("hello, " + name);

        public void Dispose() => onDispose();
    }
}
