using BenchmarkDotNet.Attributes;
using Conveyor.Serialization;

namespace Conveyor.Benchmarks;

/// <summary>The SUCCESS state of <c>add</c> (one int64 result): what the worker stores per task and a client reads back.</summary>
[Config(typeof(ShortRunConfig))]
[MemoryDiagnoser]
public class TaskStateSerializationBenchmarks
{
    private TaskStateRecord _state = null!;
    private byte[] _json = null!;

    [GlobalSetup]
    public void Setup()
    {
        _state = Samples.NewSuccessState(Samples.NewAddSignature());
        _json = WireFormat.SerializeState(_state);
    }

    [Benchmark]
    public byte[] SerializeState() => WireFormat.SerializeState(_state);

    [Benchmark]
    public TaskStateRecord ParseState() => WireFormat.DeserializeState(_json);

    /// <summary>Both directions, as the result crosses the backend once.</summary>
    [Benchmark]
    public TaskStateRecord SerializeParseState() => WireFormat.DeserializeState(WireFormat.SerializeState(_state));
}
