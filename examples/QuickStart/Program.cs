// Conveyor in one process: a worker and a producer sharing the in-memory broker and result backend.
// Swap InMemoryBroker/InMemoryResultBackend for a SQLite, Redis or RabbitMQ provider and the rest stays the same.
using System.Globalization;
using Conveyor;
using Conveyor.InMemory;

await using var broker = new InMemoryBroker();
await using var backend = new InMemoryResultBackend();
var client = new ConveyorClient(broker, backend);

// Handlers take machinery's types (int64 = long, []string = string[], ...) and return one value, a tuple or nothing.
var registry = new TaskRegistry()
    .Register("add", (long a, long b) => a + b)
    .Register("multiply", (long a, long b) => a * b)
    .Register("sum", (params long[] values) => values.Sum())
    .Register("concat", (string[] parts) => string.Concat(parts));

using var worker = new ConveyorWorker(client, registry, new WorkerOptions { Concurrency = 4 });
await worker.StartAsync(CancellationToken.None);
var timeout = TimeSpan.FromSeconds(10);

var task = await client.SendAsync(new Signature("add", TaskArgument.Int64(2), TaskArgument.Int64(3)));
Print("task  add(2, 3)", await task.GetAsync(timeout));

var group = await client.SendGroupAsync(new TaskGroup(
    new Signature("multiply", TaskArgument.Int64(2), TaskArgument.Int64(21)),
    new Signature("concat", TaskArgument.From(new[] { "con", "vey", "or" }))));
var groupResults = await group.GetAsync(timeout);
Print("group multiply(2, 21) | concat([con vey or])", [.. groupResults.SelectMany(r => r)]);

var chord = await client.SendChordAsync(new Chord(
    new TaskGroup(Enumerable.Range(1, 10).Select(i => new Signature("multiply", TaskArgument.Int64(i), TaskArgument.Int64(i)))),
    new Signature("sum")));
Print("chord sum(multiply(i, i) for i in 1..10)", await chord.GetAsync(timeout));

var chain = await client.SendChainAsync(new Chain(
    new Signature("add", TaskArgument.Int64(1), TaskArgument.Int64(2)),
    new Signature("multiply", TaskArgument.Int64(10)),
    new Signature("sum", TaskArgument.Int64(100))));
Print("chain add(1, 2) -> multiply(10, _) -> sum(100, _)", await chain.GetAsync(timeout));

await worker.StopAsync(CancellationToken.None);

static void Print(string what, IReadOnlyList<TaskResult> results) =>
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{what,-48} = {string.Join(", ", results.Select(r => $"{r.Value} ({r.Type})"))}"));
