using System.Diagnostics;
using System.Globalization;
using Conveyor;
using Conveyor.Redis;
using StackExchange.Redis;

// Chords end to end on Redis, workers in this process: publish a chord of N `add` members and a `sum` callback,
// run it on one worker, and print how long the chord took from publish to the callback's result, with what Redis
// did for it (INFO commandstats and INFO cpu deltas). Usage:
//   dotnet run -c Release --project bench/Conveyor.ChordBench -- [--redis 127.0.0.1:6379] [--size 10000] [--chords 3] [--concurrency 8]
var redisAddress = Option("--redis", "127.0.0.1:6379");
var size = int.Parse(Option("--size", "10000"), CultureInfo.InvariantCulture);
var chords = int.Parse(Option("--chords", "3"), CultureInfo.InvariantCulture);
var concurrency = int.Parse(Option("--concurrency", "8"), CultureInfo.InvariantCulture);

var configuration = ConfigurationOptions.Parse(redisAddress);
configuration.AllowAdmin = true;
await using var redis = await ConnectionMultiplexer.ConnectAsync(configuration);
var server = redis.GetServers()[0];
var options = new RedisConveyorOptions { KeyPrefix = "chordbench:" + Guid.NewGuid().ToString("N")[..8] + ":" };
var queue = "chordbench";
await using var broker = new RedisBroker(redis, options);
await using var backend = new RedisResultBackend(redis, options);
var client = new ConveyorClient(broker, backend, new ConveyorClientOptions { DefaultQueue = queue });
var registry = new TaskRegistry().Register("add", (long a, long b) => a + b).Register("sum", (params long[] values) => values.Sum());
using var worker = new ConveyorWorker(client, registry, new WorkerOptions { Queue = queue, Concurrency = concurrency });
await worker.StartAsync(CancellationToken.None);

Console.WriteLine($"chords of {size} members on Redis {redisAddress}, one worker of concurrency {concurrency}");
var times = new List<double>();
for (var c = 0; c < chords; c++)
{
    var before = await StatsAsync();
    var members = Enumerable.Range(0, size).Select(i => new Signature("add", TaskArgument.Int64(i), TaskArgument.Int64(1))).ToList();
    var watch = Stopwatch.StartNew();
    var chord = await client.SendChordAsync(new Chord(new TaskGroup(members), new Signature("sum")));
    var sum = await chord.Callback.GetValueAsync<long>(TimeSpan.FromMinutes(5));
    watch.Stop();
    var after = await StatsAsync();
    if (sum != ((long)size * (size - 1) / 2) + size)
    {
        Console.Error.WriteLine($"wrong sum {sum}");
        return 1;
    }

    times.Add(watch.Elapsed.TotalSeconds);
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"chord {c + 1}: {watch.Elapsed.TotalSeconds:F2} s, {size / watch.Elapsed.TotalSeconds:F0} members/s; Redis: {(double)(after.Calls - before.Calls) / size:F1} calls and {(after.CpuSeconds - before.CpuSeconds) * 1e6 / size:F1} µs CPU per member"));
}

times.Sort();
Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"median {times[times.Count / 2]:F2} s per chord, {size / times[times.Count / 2]:F0} members/s"));
await worker.StopAsync(CancellationToken.None);
return 0;

async Task<(long Calls, double CpuSeconds)> StatsAsync()
{
    var calls = 0L;
    foreach (var group in await server.InfoAsync("commandstats"))
    {
        foreach (var pair in group)
        {
            // cmdstat_get: calls=12,usec=…
            var text = pair.Value;
            var start = text.IndexOf("calls=", StringComparison.Ordinal) + 6;
            var end = text.IndexOf(',', start);
            calls += long.Parse(text[start..end], CultureInfo.InvariantCulture);
        }
    }

    var cpu = 0.0;
    foreach (var group in await server.InfoAsync("cpu"))
    {
        foreach (var pair in group)
        {
            if (pair.Key is "used_cpu_sys" or "used_cpu_user")
            {
                cpu += double.Parse(pair.Value, CultureInfo.InvariantCulture);
            }
        }
    }

    return (calls, cpu);
}

string Option(string name, string fallback)
{
    var index = Array.IndexOf(args, name);
    return index >= 0 && index + 1 < args.Length ? args[index + 1] : fallback;
}
