// A worker with tasks of its own, on the embedded SQLite provider. Run it, then run examples/Producer (in another
// terminal, from the same folder, so both open the same conveyor.db). Ctrl+C stops it gracefully.
using Conveyor;
using Conveyor.Sqlite;

var options = new SqliteConveyorOptions { DatabasePath = Path.GetFullPath(args.Length > 0 ? args[0] : "conveyor.db") };
await using var broker = new SqliteBroker(options);
await using var backend = new SqliteResultBackend(options);
var client = new ConveyorClient(broker, backend, new ConveyorClientOptions { DefaultQueue = "example_tasks" });

var registry = new TaskRegistry()
    // Parameters use machinery's types: int64 is long, []string is string[], and so on.
    .Register("resize_image", async (string path, long width, CancellationToken cancellationToken) =>
    {
        await Task.Delay(50, cancellationToken); // stands in for real work; honour the token to stop promptly
        return $"{Path.GetFileNameWithoutExtension(path)}_{width}w{Path.GetExtension(path)}";
    })
    // Several results: return a tuple.
    .Register("word_stats", (string text) =>
    {
        var words = text.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return ((long)words.Length, words.Length == 0 ? 0.0 : words.Average(w => w.Length));
    })
    .Register("count_words", (string text) => (long)text.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length)
    // A chord callback receives every member's results as extra arguments: take them with params.
    .Register("total", (params long[] counts) => counts.Sum())
    // Throwing fails the task; RetryCount on the signature retries it with machinery's Fibonacci backoff.
    .Register("flaky", (TaskContext context) => context.Attempt < 3 ? throw new InvalidOperationException($"attempt {context.Attempt} failed") : "ok on attempt 3");

using var worker = new ConveyorWorker(client, registry, new WorkerOptions { Queue = "example_tasks", Concurrency = 4 });
using var stop = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    stop.Cancel();
};

await worker.StartAsync(CancellationToken.None);
Console.WriteLine($"worker running on {options.DatabasePath}, queue example_tasks; Ctrl+C to stop");
try
{
    await Task.Delay(Timeout.Infinite, stop.Token);
}
catch (OperationCanceledException)
{
}

await worker.StopAsync(CancellationToken.None); // finishes running tasks, hands the rest back
