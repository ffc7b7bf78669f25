// The dashboard with a large backlog: fills a Redis queue with N pending tasks (machinery JSON, one Lua call per
// 10,000, the bodies built in Redis from one template), starts the dashboard on that Redis in this process, and
// times its overview and first tasks page (the JSON each page loads, and the page itself) over several requests.
// Prints the medians. A benchmark, not a test: the figures go in the notes.
//
//   dotnet run -c Release --project bench/Conveyor.DashboardBench -- --redis 127.0.0.1:6379 [--tasks 1000000] [--requests 15]
using System.Diagnostics;
using System.Globalization;
using Conveyor;
using Conveyor.Serialization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

var redis = Arg("--redis") ?? throw new ArgumentException("--redis HOST:PORT is required (a Redis you started on loopback)");
var tasks = int.Parse(Arg("--tasks") ?? "1000000", CultureInfo.InvariantCulture);
var requests = int.Parse(Arg("--requests") ?? "15", CultureInfo.InvariantCulture);
var prefix = "bench-dash-" + Guid.NewGuid().ToString("N")[..8] + ":";
const string Queue = "dashboard_bench";

using var multiplexer = await ConnectionMultiplexer.ConnectAsync(redis + ",allowAdmin=true");
var db = multiplexer.GetDatabase();
try
{
    var fill = Stopwatch.StartNew();
    await FillAsync(db, prefix, Queue, tasks);
    var length = await db.ListLengthAsync(prefix + Queue);
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"filled {length:N0} pending tasks in {fill.Elapsed.TotalSeconds:F1} s (Redis used_memory {Memory(multiplexer)})"));

    var builder = WebApplication.CreateSlimBuilder();
    builder.Logging.SetMinimumLevel(LogLevel.Warning);
    builder.WebHost.UseKestrel(k => k.Listen(System.Net.IPAddress.Loopback, 0));
    builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
    {
        ["Conveyor:Broker"] = "redis://" + redis,
        ["Conveyor:DefaultQueue"] = Queue,
    });
    builder.Services.AddConveyor(c => c.UseRedis(configure: o => o.KeyPrefix = prefix));
    builder.Services.AddConveyorDashboard();
    await using var app = builder.Build();
    app.MapConveyorDashboard("/conveyor");
    await app.StartAsync();
    var address = app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
    using var http = new HttpClient { BaseAddress = new Uri(address) };

    Console.WriteLine($"medians of {requests} requests (after 2 warm-up requests each):");
    await TimeAsync(http, "page (HTML)", "/conveyor/", requests);
    await TimeAsync(http, "page script", "/conveyor/assets/app.js", requests);
    var overview = await TimeAsync(http, "overview (api/overview)", "/conveyor/api/overview", requests);
    var first = await TimeAsync(http, "first tasks page (api/tasks?state=pending, 50)", "/conveyor/api/tasks?state=pending&queue=" + Queue, requests);
    await TimeAsync(http, "tasks page after 500,000 (api/tasks&after=…)", "/conveyor/api/tasks?state=pending&queue=" + Queue + "&after=0:500000", requests);
    var body = await http.GetStringAsync("/conveyor/api/overview");
    Console.WriteLine("overview reports: " + body[..Math.Min(body.Length, 200)] + "…");
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"target under 300 ms each: overview {(overview < 300 ? "met" : "MISSED")}, first tasks page {(first < 300 ? "met" : "MISSED")}"));
    await app.StopAsync();
}
finally
{
    // Only this run's keys (a 1,000,000-entry list is freed in the background by UNLINK).
    var server = multiplexer.GetServers()[0];
    await foreach (var key in server.KeysAsync(pattern: prefix + "*", pageSize: 1000))
    {
        await db.ExecuteAsync("UNLINK", key);
    }
}

static async Task FillAsync(IDatabase db, string prefix, string queue, int count)
{
    // One template body, the id's digits replaced in Lua: RPUSH of 10,000 bodies per call.
    var template = System.Text.Encoding.UTF8.GetString(WireFormat.SerializeSignature(new Signature("report", TaskArgument.String("invoice"), TaskArgument.Int64(3))
    {
        Id = "task_00000000-0000-0000-0000-000000000000",
        RoutingKey = queue,
    }));
    const string Script = """
        local template = ARGV[1]
        local first = tonumber(ARGV[2])
        local n = tonumber(ARGV[3])
        local batch = {}
        for i = first, first + n - 1 do
          batch[#batch + 1] = string.gsub(template, '000000000000"', string.format('%012d"', i), 1)
          if #batch == 1000 then redis.call('RPUSH', KEYS[1], unpack(batch)); batch = {} end
        end
        if #batch > 0 then redis.call('RPUSH', KEYS[1], unpack(batch)) end
        redis.call('SADD', KEYS[2], ARGV[4])
        return n
        """;
    const int Chunk = 10_000;
    for (var first = 0; first < count; first += Chunk)
    {
        await db.ScriptEvaluateAsync(Script, [prefix + queue, prefix + "conveyor:queues"], [template, first, Math.Min(Chunk, count - first), queue]);
    }

    // The oldest task's PENDING state, as machinery's producer stores it: the overview reads its age from it.
    var state = new TaskStateRecord { TaskId = "task_00000000-0000-0000-0000-000000000000", TaskName = "report", State = TaskState.Pending, CreatedAt = DateTimeOffset.UtcNow.AddMinutes(-42) };
    await db.StringSetAsync(prefix + state.TaskId, WireFormat.SerializeState(state), TimeSpan.FromHours(1));
}

static async Task<double> TimeAsync(HttpClient http, string what, string path, int requests)
{
    for (var i = 0; i < 2; i++)
    {
        (await http.GetAsync(path)).EnsureSuccessStatusCode();
    }

    var times = new List<double>();
    long bytes = 0;
    for (var i = 0; i < requests; i++)
    {
        var watch = Stopwatch.StartNew();
        using var response = await http.GetAsync(path);
        var content = await response.Content.ReadAsByteArrayAsync();
        watch.Stop();
        response.EnsureSuccessStatusCode();
        bytes = content.Length;
        times.Add(watch.Elapsed.TotalMilliseconds);
    }

    times.Sort();
    var median = times[times.Count / 2];
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {what,-50} median {median,8:F1} ms   min {times[0],7:F1}   max {times[^1],7:F1}   ({bytes:N0} bytes)"));
    return median;
}

static string Memory(ConnectionMultiplexer multiplexer)
{
    var info = multiplexer.GetServers()[0].Info("memory").SelectMany(g => g).FirstOrDefault(p => p.Key == "used_memory_human");
    return info.Value ?? "?";
}

string? Arg(string name)
{
    var index = Array.IndexOf(args, name);
    return index >= 0 && index + 1 < args.Length ? args[index + 1] : null;
}
