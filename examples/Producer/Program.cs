// Sends tasks to examples/Worker through the embedded SQLite provider and prints the results.
using Conveyor;
using Conveyor.Sqlite;

var options = new SqliteConveyorOptions { DatabasePath = Path.GetFullPath(args.Length > 0 ? args[0] : "conveyor.db") };
await using var broker = new SqliteBroker(options);
await using var backend = new SqliteResultBackend(options);
var client = new ConveyorClient(broker, backend, new ConveyorClientOptions { DefaultQueue = "example_tasks" });
var timeout = TimeSpan.FromSeconds(60);

// One task; GetValueAsync waits for SUCCESS and throws TaskFailedException on FAILURE.
var resized = await client.SendAsync(new Signature("resize_image", TaskArgument.String("photos/cat.png"), TaskArgument.Int64(640)));
Console.WriteLine($"resize_image -> {await resized.GetValueAsync<string>(timeout)}");

// Several results come back typed.
var stats = await client.SendAsync(new Signature("word_stats", TaskArgument.String("the quick brown fox")));
var results = await stats.GetAsync(timeout);
Console.WriteLine($"word_stats   -> {results[0].Value} words, {results[1].Value} letters on average");

// A chord: three tasks in parallel, then "total" with all their results, in member order.
var chord = await client.SendChordAsync(new Chord(
    new TaskGroup(
        new Signature("count_words", TaskArgument.String("one two")),
        new Signature("count_words", TaskArgument.String("three four five")),
        new Signature("count_words", TaskArgument.String("six"))),
    new Signature("total")));
Console.WriteLine($"chord total  -> {(await chord.GetAsync(timeout))[0].Value}");

// Retries with backoff (1 s, then 2 s): the third attempt succeeds.
var flaky = await client.SendAsync(new Signature("flaky") { RetryCount = 3 });
Console.WriteLine($"flaky        -> {await flaky.GetValueAsync<string>(timeout)}");

// A delayed task runs no earlier than its ETA.
var later = await client.SendAsync(new Signature("resize_image", TaskArgument.String("later.jpg"), TaskArgument.Int64(100)) { Eta = DateTimeOffset.UtcNow.AddSeconds(2) });
Console.WriteLine($"delayed      -> {await later.GetValueAsync<string>(timeout)}");
