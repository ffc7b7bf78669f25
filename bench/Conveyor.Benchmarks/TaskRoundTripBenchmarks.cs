using System.Buffers;
using BenchmarkDotNet.Attributes;
using Conveyor.Serialization;

namespace Conveyor.Benchmarks;

/// <summary>
/// One <c>add(2, 3)</c> task end to end in process, without a broker or a backend: the CPU and allocation cost
/// Conveyor itself adds per task. The target is under 2 µs and under 1 KB for <see cref="SerializeParseInvoke"/>.
/// </summary>
[Config(typeof(ShortRunConfig))]
[MemoryDiagnoser]
public class TaskRoundTripBenchmarks
{
    private Signature _signature = null!;
    private TaskRegistry _registry = null!;
    private ArrayBufferWriter<byte> _buffer = null!;
    private DateTimeOffset _createdAt;

    [GlobalSetup]
    public void Setup()
    {
        _signature = Samples.NewAddSignature();
        _registry = Samples.NewRegistry();
        _buffer = new ArrayBufferWriter<byte>(1024);
        _createdAt = new DateTimeOffset(2025, 1, 2, 3, 4, 5, 678, TimeSpan.Zero);
    }

    /// <summary>
    /// Serialize as the client publishes, parse as the worker receives, look the handler up, make the task's context and
    /// run it (the worker's steps, less the broker, the backend, logging and telemetry).
    /// </summary>
    [Benchmark(Baseline = true)]
    public IReadOnlyList<TaskResult> SerializeParseInvoke() => Run(WireFormat.SerializeSignature(_signature)).Results;

    /// <summary>
    /// <see cref="SerializeParseInvoke"/> with the message serialized into a reused buffer instead of a new array:
    /// what the task costs when a broker can publish from a pooled buffer.
    /// </summary>
    [Benchmark]
    public IReadOnlyList<TaskResult> SerializeToBufferParseInvoke()
    {
        _buffer.ResetWrittenCount();
        WireFormat.SerializeSignature(_signature, _buffer);
        return Run(_buffer.WrittenSpan).Results;
    }

    /// <summary>
    /// <see cref="SerializeParseInvoke"/> plus the SUCCESS state the worker writes to the backend (serialized only).
    /// Not part of the target; it shows what a complete task costs before any I/O.
    /// </summary>
    [Benchmark]
    public byte[] SerializeParseInvokeStoreResult()
    {
        var (signature, results) = Run(WireFormat.SerializeSignature(_signature));
        return WireFormat.SerializeState(new TaskStateRecord
        {
            TaskId = signature.Id,
            TaskName = signature.Name,
            State = TaskState.Success,
            Results = results,
            CreatedAt = _createdAt,
        });
    }

    private (Signature Signature, IReadOnlyList<TaskResult> Results) Run(ReadOnlySpan<byte> body)
    {
        var signature = WireFormat.DeserializeSignature(body);
        if (!_registry.TryGet(signature.Name, out var handler))
        {
            throw new InvalidOperationException($"{signature.Name} is not registered.");
        }

        var context = new TaskContext(signature, attempt: 1, services: null, CancellationToken.None);
        var invocation = handler.InvokeAsync(signature, context, CancellationToken.None);
        var results = invocation.IsCompletedSuccessfully ? invocation.Result : invocation.AsTask().GetAwaiter().GetResult();
        return (signature, results);
    }
}
