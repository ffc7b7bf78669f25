using Conveyor.InMemory;
using BenchmarkDotNet.Attributes;

namespace Conveyor.Benchmarks;

/// <summary>
/// A whole batch through the worker's pipeline in process: 1,000 <c>add</c> tasks published by a client and run by a
/// worker on the in-memory broker and backend (delivery, parse, invoke, RECEIVED/STARTED/SUCCESS through the
/// settler's batches, acknowledgement). Divide by 1,000 for the pipeline's own CPU and allocation per task, with no
/// engine behind it.
/// </summary>
[Config(typeof(ShortRunConfig))]
[MemoryDiagnoser]
public class WorkerBatchBenchmarks
{
    private const int Tasks = 1_000;

    private InMemoryBroker _broker = null!;
    private InMemoryResultBackend _backend = null!;
    private ConveyorClient _client = null!;
    private ConveyorWorker _worker = null!;
    private Signature[] _signatures = null!;

    [GlobalSetup]
    public async Task SetupAsync()
    {
        _broker = new InMemoryBroker();
        _backend = new InMemoryResultBackend();
        _client = new ConveyorClient(_broker, _backend);
        _worker = new ConveyorWorker(_client, Samples.NewRegistry(), new WorkerOptions { Concurrency = 4 });
        await _worker.StartAsync(CancellationToken.None);
    }

    [GlobalCleanup]
    public async Task CleanupAsync()
    {
        await _worker.StopAsync(CancellationToken.None);
        _worker.Dispose();
        await _broker.DisposeAsync();
        await _backend.DisposeAsync();
    }

    [IterationSetup]
    public void MakeSignatures() => _signatures = [.. Enumerable.Range(0, Tasks).Select(_ => Samples.NewAddSignature())];

    /// <summary>Publishes the batch (concurrently, as many producers would) and waits until every task succeeded.</summary>
    [Benchmark(OperationsPerInvoke = Tasks)]
    public async Task PublishAndRunBatch()
    {
        await Parallel.ForEachAsync(_signatures, new ParallelOptions { MaxDegreeOfParallelism = 32 }, async (signature, ct) => await _client.SendAsync(signature, ct));
        foreach (var signature in _signatures)
        {
            var state = await _client.GetResult(signature.Id).WaitAsync(TimeSpan.FromSeconds(30));
            if (state.State != TaskState.Success)
            {
                throw new InvalidOperationException($"task {signature.Id} ended {state.State}");
            }
        }

    }
}
