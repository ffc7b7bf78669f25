using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Conveyor.Dashboard.Tests;

/// <summary>
/// A real application on Kestrel (loopback, a free port) with Conveyor on a real provider, two workers, and the
/// dashboard mapped four ways: <c>/conveyor</c> (local-only, every action allowed), <c>/ro</c> (read-only),
/// <c>/secure</c> (<c>.RequireAuthorization("ops")</c>) and <c>/strict</c> (revoking needs the policy "revokers").
/// It then makes tasks in every state: succeeded, failed, revoked, pending, scheduled, running (with progress),
/// dead-lettered, and a chord for the workflow tree.
/// </summary>
public abstract class DashboardHost : IAsyncLifetime
{
    public const string TestScheme = "test";
    public const string UserHeader = "X-Test-User";

    private readonly string _suffix = Guid.NewGuid().ToString("N")[..8];
    private WebApplication? _app;

    /// <summary>Queues: <see cref="IdleQueue"/> has no worker; <see cref="WorkQueue"/> runs ok, fail and sleep; <see cref="PoisonQueue"/> dead-letters what it gets (no handler is registered for its tasks) and is paused once it has.</summary>
    public string IdleQueue => "dash-idle-" + _suffix;

    public string WorkQueue => "dash-work-" + _suffix;

    public string PoisonQueue => "dash-poison-" + _suffix;

    public string BaseUrl { get; private set; } = string.Empty;

    public IServiceProvider Services => _app?.Services ?? throw new InvalidOperationException("not started");

    public ConveyorManagement Management => Services.GetRequiredService<ConveyorManagement>();

    public ConveyorClient Client => Services.GetRequiredService<ConveyorClient>();

    /// <summary>Ids of the tasks made at start, by what they are for.</summary>
    public string PendingId { get; private set; } = string.Empty;

    public string ScheduledId { get; private set; } = string.Empty;

    public string RunningId { get; private set; } = string.Empty;

    public string RunningToRevokeId { get; private set; } = string.Empty;

    public string RevokedId { get; private set; } = string.Empty;

    public string SucceededId { get; private set; } = string.Empty;

    public string FailedId { get; private set; } = string.Empty;

    public string ChordMemberId { get; private set; } = string.Empty;

    public string ChordCallbackId { get; private set; } = string.Empty;

    public DeadLetterSummary DeadLetter { get; private set; } = null!;

    public DeadLetterSummary DeadLetterToRequeue { get; private set; } = null!;

    public string ScheduleName => "nightly-report";

    /// <summary>Adds the provider: its URL and options.</summary>
    protected abstract void UseProvider(IConveyorBuilder conveyor, IDictionary<string, string?> settings);

    protected virtual Task CleanUpAsync() => Task.CompletedTask;

    public async Task InitializeAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseKestrel(k => k.Listen(System.Net.IPAddress.Loopback, 0));
        var settings = new Dictionary<string, string?>
        {
            ["Conveyor:DefaultQueue"] = IdleQueue,
            ["Conveyor:FailFast"] = "true",
            [$"Conveyor:Schedules:{ScheduleName}:Cron"] = "0 2 * * *",
            [$"Conveyor:Schedules:{ScheduleName}:TimeZone"] = "Europe/Berlin",
            [$"Conveyor:Schedules:{ScheduleName}:Task"] = "report",
            [$"Conveyor:Schedules:{ScheduleName}:Args:0"] = "string:nightly",
            [$"Conveyor:Schedules:{ScheduleName}:Queue"] = IdleQueue,
        };
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Services.AddConveyor(conveyor =>
        {
            UseProvider(conveyor, settings);
            conveyor.AddTask("ok", (long a, long b) => a + b);
            conveyor.AddTask("fail", string (string why) => throw new InvalidOperationException("failed on purpose: " + why + " (password=hunter2)"));
            conveyor.AddTask("sleep", async (TaskContext context) =>
            {
                await context.ReportProgressAsync(40, "halfway");
                await Task.Delay(Timeout.Infinite, context.CancellationToken);
            });
        });
        builder.Configuration.AddInMemoryCollection(settings);
        builder.Services.AddConveyorWorker("work", o =>
        {
            o.Queue = WorkQueue;
            o.Name = "work@" + Environment.MachineName + ":" + Environment.ProcessId;
            o.Concurrency = 4;
            o.HeartbeatInterval = TimeSpan.FromMilliseconds(250);
            o.ShutdownGracePeriod = TimeSpan.FromSeconds(1);
        });
        builder.Services.AddConveyorWorker("poison", o =>
        {
            o.Queue = PoisonQueue;
            o.Name = "poison@" + Environment.MachineName + ":" + Environment.ProcessId;
            o.Concurrency = 1;
            o.HeartbeatInterval = TimeSpan.FromMilliseconds(250);
            o.ShutdownGracePeriod = TimeSpan.FromSeconds(1);
        });
        builder.Services.AddConveyorDashboard();
        builder.Services.AddAuthentication(TestScheme).AddScheme<AuthenticationSchemeOptions, HeaderAuthenticationHandler>(TestScheme, null);
        builder.Services.AddAuthorizationBuilder()
            .AddPolicy("ops", p => p.RequireAuthenticatedUser().RequireRole("ops"))
            .AddPolicy("revokers", p => p.RequireAuthenticatedUser().RequireRole("revokers"));

        var app = builder.Build();
        app.UseAuthentication();
        app.UseAuthorization();
        app.MapConveyorDashboard("/conveyor", new ConveyorDashboardOptions { Title = "Conveyor · Acme production", StatsRefreshInterval = TimeSpan.FromSeconds(1) });
        app.MapConveyorDashboard("/ro", new ConveyorDashboardOptions { IsReadOnly = _ => true });
        app.MapConveyorDashboard("/secure").RequireAuthorization("ops");
        app.MapConveyorDashboard("/strict", new ConveyorDashboardOptions { RevokePolicy = "revokers" });
        _app = app;
        await app.StartAsync();
        BaseUrl = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First().TrimEnd('/');
        await SeedAsync();
    }

    private async Task SeedAsync()
    {
        var client = Client;
        var management = Management;
        var timeout = TimeSpan.FromSeconds(30);

        // Finished: successes and a failure on the work queue.
        AsyncResult? last = null;
        for (var i = 0; i < 5; i++)
        {
            last = await client.SendAsync(new Signature("ok", TaskArgument.Int64(i), TaskArgument.Int64(40)) { RoutingKey = WorkQueue });
        }

        await last!.GetAsync(timeout);
        SucceededId = last.TaskId;
        var failed = await client.SendAsync(new Signature("fail", TaskArgument.String("disk full")) { RoutingKey = WorkQueue });
        await failed.WaitAsync(timeout);
        FailedId = failed.TaskId;

        // Waiting: pending and scheduled tasks on the queue nobody consumes, and a chord whose members wait there.
        var pending = await client.SendAsync(new Signature("report", TaskArgument.String("invoice-4711"), TaskArgument.Int64(3)) { RoutingKey = IdleQueue });
        PendingId = pending.TaskId;
        await client.SendAsync(new Signature("report", TaskArgument.String("invoice-4712"), TaskArgument.Int64(1)) { RoutingKey = IdleQueue });
        var scheduled = await client.SendAsync(new Signature("report", TaskArgument.String("monthly")) { RoutingKey = IdleQueue, Eta = client.TimeProvider.GetUtcNow().AddHours(1) });
        ScheduledId = scheduled.TaskId;
        var chord = new Chord(
            new TaskGroup(new Signature("resize", TaskArgument.String("a.png")) { RoutingKey = IdleQueue }, new Signature("resize", TaskArgument.String("b.png")) { RoutingKey = IdleQueue }),
            new Signature("zip") { RoutingKey = IdleQueue });
        await client.SendChordAsync(chord);
        ChordMemberId = chord.Group.Tasks[0].Id;
        ChordCallbackId = chord.Callback.Id;
        var revoked = await client.SendAsync(new Signature("report", TaskArgument.String("cancelled")) { RoutingKey = IdleQueue });
        await management.RevokeAsync([revoked.TaskId], "not needed");
        RevokedId = revoked.TaskId;

        // Running: two sleeping tasks that report progress (one for the revoke test).
        RunningId = (await client.SendAsync(new Signature("sleep") { RoutingKey = WorkQueue })).TaskId;
        RunningToRevokeId = (await client.SendAsync(new Signature("sleep") { RoutingKey = WorkQueue })).TaskId;
        await WaitUntilAsync("both sleep tasks are active", async () =>
        {
            var active = await management.ListTasksAsync(new TaskQuery { State = ManagedTaskState.Active, Queue = WorkQueue });
            return active.Tasks.Any(t => t.Id == RunningId) && active.Tasks.Any(t => t.Id == RunningToRevokeId);
        });

        // Dead letters: tasks no worker knows, on the poison queue; then the queue is paused, so a requeued one stays.
        var unknown = await client.SendAsync(new Signature("thumbnail.v1", TaskArgument.String("c.png")) { RoutingKey = PoisonQueue });
        var unknownToRequeue = await client.SendAsync(new Signature("thumbnail.v1", TaskArgument.String("d.png")) { RoutingKey = PoisonQueue });
        await WaitUntilAsync("both poison tasks are dead-lettered", async () =>
        {
            var page = await management.ListDeadLettersAsync(PoisonQueue);
            return page.Letters.Any(l => l.Task.Id == unknown.TaskId) && page.Letters.Any(l => l.Task.Id == unknownToRequeue.TaskId);
        });
        await management.PauseQueueAsync(PoisonQueue);
        var letters = (await management.ListDeadLettersAsync(PoisonQueue)).Letters;
        DeadLetter = letters.Single(l => l.Task.Id == unknown.TaskId);
        DeadLetterToRequeue = letters.Single(l => l.Task.Id == unknownToRequeue.TaskId);

        // The throughput counters come with the workers' heartbeats (every 250 ms here).
        await WaitUntilAsync("the finished tasks are counted", async () =>
        {
            var minutes = await management.GetThroughputAsync(5, WorkQueue);
            return minutes.Sum(m => m.Succeeded) >= 5 && minutes.Sum(m => m.Failed) >= 1;
        });
    }

    public static async Task WaitUntilAsync(string what, Func<Task<bool>> condition, int seconds = 30)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"waited {seconds} s, and still not: {what}");
            }

            await Task.Delay(100);
        }
    }

    public async Task DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }

        await CleanUpAsync();
    }
}

/// <summary>Authenticates a request that names a user in <see cref="DashboardHost.UserHeader"/> (<c>name;role,role</c>); anonymous otherwise.</summary>
public sealed class HeaderAuthenticationHandler(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    protected override Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        if (Request.Headers[DashboardHost.UserHeader].FirstOrDefault() is not { Length: > 0 } value)
        {
            return Task.FromResult(AuthenticateResult.NoResult());
        }

        var parts = value.Split(';');
        var claims = new List<Claim> { new(ClaimTypes.Name, parts[0]) };
        if (parts.Length > 1)
        {
            claims.AddRange(parts[1].Split(',', StringSplitOptions.RemoveEmptyEntries).Select(role => new Claim(ClaimTypes.Role, role)));
        }

        var principal = new ClaimsPrincipal(new ClaimsIdentity(claims, DashboardHost.TestScheme));
        return Task.FromResult(AuthenticateResult.Success(new AuthenticationTicket(principal, DashboardHost.TestScheme)));
    }
}

/// <summary>The dashboard on a SQLite file in a temp dir.</summary>
public sealed class SqliteDashboardHost : DashboardHost
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "conveyor-dashboard-" + Guid.NewGuid().ToString("N"));

    protected override void UseProvider(IConveyorBuilder conveyor, IDictionary<string, string?> settings)
    {
        Directory.CreateDirectory(_dir);
        settings["Conveyor:Broker"] = "sqlite://" + Path.Combine(_dir, "conveyor.db");
        conveyor.UseSqlite(url: null);
    }

    protected override Task CleanUpAsync()
    {
        Directory.Delete(_dir, recursive: true);
        return Task.CompletedTask;
    }
}

/// <summary>The dashboard on the test Redis (<c>CONVEYOR_TEST_REDIS</c>), under a key prefix of its own.</summary>
public sealed class RedisDashboardHost : DashboardHost
{
    private readonly string _prefix = "dash-" + Guid.NewGuid().ToString("N")[..8] + ":";

    protected override void UseProvider(IConveyorBuilder conveyor, IDictionary<string, string?> settings)
    {
        settings["Conveyor:Broker"] = RedisTestServer.Url;
        conveyor.UseRedis(configure: o => o.KeyPrefix = _prefix);
    }
}
