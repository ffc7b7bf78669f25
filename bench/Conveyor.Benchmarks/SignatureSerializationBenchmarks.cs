using System.Buffers;
using BenchmarkDotNet.Attributes;
using Conveyor.Serialization;

namespace Conveyor.Benchmarks;

/// <summary>Machinery's signature JSON for <c>add(2, 3)</c>: what the client publishes and the worker parses.</summary>
[Config(typeof(ShortRunConfig))]
[MemoryDiagnoser]
public class SignatureSerializationBenchmarks
{
    private Signature _signature = null!;
    private byte[] _json = null!;
    private ArrayBufferWriter<byte> _buffer = null!;

    [GlobalSetup]
    public void Setup()
    {
        _signature = Samples.NewAddSignature();
        _json = WireFormat.SerializeSignature(_signature);
        _buffer = new ArrayBufferWriter<byte>(1024);
    }

    /// <summary>The client's publish path: a thread-static writer, then one exact-size array for the broker.</summary>
    [Benchmark]
    public byte[] SerializeSignature() => WireFormat.SerializeSignature(_signature);

    /// <summary>Into a caller-owned buffer that is reused, so only the serializer's own allocations show.</summary>
    [Benchmark]
    public int SerializeSignatureToBufferWriter()
    {
        _buffer.ResetWrittenCount();
        WireFormat.SerializeSignature(_signature, _buffer);
        return _buffer.WrittenCount;
    }

    /// <summary>The worker's receive path: bytes from the broker to a <see cref="Signature"/>.</summary>
    [Benchmark]
    public Signature ParseSignature() => WireFormat.DeserializeSignature(_json);
}
