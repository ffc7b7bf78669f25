using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Conveyor.Hosting.Tests;

/// <summary>What a host does at start when an engine does not answer: fail at once, or start anyway.</summary>
public sealed class StartupTests
{
    // Port 1 on loopback: nothing listens, so the connection is refused at once.
    private const string DeadRedis = "redis://user:secret@127.0.0.1:1";

    [Fact]
    public async Task StartAsync_FailFastAndRedisNotListening_FailsWithOneLineNamingTheSettingWithoutThePassword()
    {
        var builder = HostBuilders.Create(new Dictionary<string, string?> { ["Conveyor:Broker"] = DeadRedis, ["Conveyor:FailFast"] = "true" });
        builder.Services.AddConveyor(c => c.UseRedis().AddTask("add", (long a, long b) => a + b));
        builder.Services.AddConveyorWorker();
        using var host = builder.Build();

        var error = await Assert.ThrowsAsync<ConveyorConnectionException>(() => host.StartAsync());

        Assert.StartsWith("Conveyor:Broker: redis://user:***@127.0.0.1:1: no Redis answers at 127.0.0.1:1 (", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("secret", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Fact]
    public async Task StartAsync_RedisNotListeningWithoutFailFast_StartsWithItsWorkerAndTheChecksReportUnhealthy()
    {
        var builder = HostBuilders.Create(new Dictionary<string, string?> { ["Conveyor:Broker"] = DeadRedis, ["Conveyor:ConnectTimeout"] = "00:00:01" });
        builder.Services.AddConveyor(c => c.UseRedis().AddTask("add", (long a, long b) => a + b));
        builder.Services.AddConveyorWorker();
        builder.Services.AddHealthChecks().AddConveyor(timeout: TimeSpan.FromSeconds(5));
        using var host = builder.Build();

        await host.StartAsync();
        try
        {
            var report = await host.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync();
            Assert.Equal(HealthStatus.Unhealthy, report.Entries[ConveyorHealthChecksBuilderExtensions.BrokerCheckName].Status);
            Assert.DoesNotContain("secret", report.Entries[ConveyorHealthChecksBuilderExtensions.BrokerCheckName].Description ?? string.Empty, StringComparison.Ordinal);
        }
        finally
        {
            await host.StopAsync();
        }
    }

    [Fact]
    public async Task StartAsync_FailFastAndRedisListening_StartsAndRunsATask()
    {
        var queue = HostBuilders.UniqueQueue(nameof(StartAsync_FailFastAndRedisListening_StartsAndRunsATask));
        var builder = HostBuilders.Create(new Dictionary<string, string?> { ["Conveyor:Broker"] = RedisTestServer.Url, ["Conveyor:DefaultQueue"] = queue, ["Conveyor:FailFast"] = "true" });
        builder.Services.AddConveyor(c => c.UseRedis().AddTask("add", (long a, long b) => a + b));
        builder.Services.AddConveyorWorker();
        using var host = builder.Build();

        await host.StartAsync();
        try
        {
            var client = host.Services.GetRequiredService<ConveyorClient>();
            var result = await client.SendAsync(new Signature("add", TaskArgument.Int64(2), TaskArgument.Int64(3)));
            Assert.Equal(5L, await result.GetValueAsync<long>(TimeSpan.FromSeconds(30)));
        }
        finally
        {
            await host.StopAsync();
        }
    }
}
