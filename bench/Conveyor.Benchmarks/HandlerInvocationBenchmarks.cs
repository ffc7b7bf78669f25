using BenchmarkDotNet.Attributes;

namespace Conveyor.Benchmarks;

/// <summary>Running the registered <c>add</c> delegate on an already parsed signature.</summary>
[Config(typeof(ShortRunConfig))]
[MemoryDiagnoser]
public class HandlerInvocationBenchmarks
{
    private Signature _signature = null!;
    private TaskHandler _handler = null!;
    private TaskContext _context = null!;

    [GlobalSetup]
    public void Setup()
    {
        // Parsed rather than constructed, so the argument values are boxed exactly as they are for a delivery.
        _signature = Conveyor.Serialization.WireFormat.DeserializeSignature(Samples.SerializedAddSignature());
        _handler = Samples.GetAddHandler(Samples.NewRegistry());
        _context = new TaskContext(_signature, attempt: 1, services: null, CancellationToken.None);
    }

    /// <summary>
    /// Argument binding and type checks, the compiled call and the mapping of the result to <see cref="TaskResult"/>s.
    /// The handler completes synchronously; the worker takes the same <c>IsCompletedSuccessfully</c> fast path.
    /// </summary>
    [Benchmark]
    public IReadOnlyList<TaskResult> InvokeAdd()
    {
        var invocation = _handler.InvokeAsync(_signature, _context, CancellationToken.None);
        return invocation.IsCompletedSuccessfully ? invocation.Result : invocation.AsTask().GetAwaiter().GetResult();
    }
}
