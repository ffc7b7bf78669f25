using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Conveyor.Hosting.Tests;

public sealed class HealthCheckTests
{
    [Fact]
    public async Task AddConveyor_SqliteFile_BothChecksHealthy()
    {
        using var database = new TempDatabase();
        var report = await CheckAsync(new() { ["Conveyor:Broker"] = database.Url }, c => c.UseSqlite());

        Assert.Equal(HealthStatus.Healthy, report.Entries[ConveyorHealthChecksBuilderExtensions.BrokerCheckName].Status);
        Assert.Equal(HealthStatus.Healthy, report.Entries[ConveyorHealthChecksBuilderExtensions.ResultBackendCheckName].Status);
        Assert.Equal(0L, report.Entries[ConveyorHealthChecksBuilderExtensions.BrokerCheckName].Data["ready"]);
    }

    [Fact]
    public async Task AddConveyor_RealRedis_BothChecksHealthy()
    {
        var report = await CheckAsync(
            new() { ["Conveyor:Broker"] = RedisTestServer.Url, ["Conveyor:DefaultQueue"] = HostBuilders.UniqueQueue("health") },
            c => c.UseRedis());

        Assert.Equal(HealthStatus.Healthy, report.Status);
        Assert.Equal(2, report.Entries.Count);
    }

    [Fact]
    public async Task AddConveyor_RealRabbitMqWithRedisBackend_BothChecksHealthy()
    {
        var report = await CheckAsync(
            new()
            {
                ["Conveyor:Broker"] = TestServers.AmqpUrl,
                ["Conveyor:ResultBackend"] = RedisTestServer.Url,
                ["Conveyor:DefaultQueue"] = HostBuilders.UniqueQueue("health"),
            },
            c => c.UseRabbitMq().UseRedis());

        Assert.Equal(HealthStatus.Healthy, report.Entries[ConveyorHealthChecksBuilderExtensions.BrokerCheckName].Status);
        Assert.Equal(HealthStatus.Healthy, report.Entries[ConveyorHealthChecksBuilderExtensions.ResultBackendCheckName].Status);
    }

    [Fact]
    public async Task AddConveyor_NoRedisListening_BothChecksUnhealthyWithReason()
    {
        // Port 1 on loopback: nothing listens, so the connection is refused at once.
        var report = await CheckAsync(new() { ["Conveyor:Broker"] = "redis://127.0.0.1:1" }, c => c.UseRedis());

        Assert.Equal(HealthStatus.Unhealthy, report.Entries[ConveyorHealthChecksBuilderExtensions.BrokerCheckName].Status);
        Assert.Equal(HealthStatus.Unhealthy, report.Entries[ConveyorHealthChecksBuilderExtensions.ResultBackendCheckName].Status);
        Assert.StartsWith("broker unreachable: ", report.Entries[ConveyorHealthChecksBuilderExtensions.BrokerCheckName].Description, StringComparison.Ordinal);
    }

    private static async Task<HealthReport> CheckAsync(Dictionary<string, string?> settings, Action<IConveyorBuilder> configure)
    {
        var builder = HostBuilders.Create(settings);
        builder.Services.AddConveyor(configure);
        builder.Services.AddHealthChecks().AddConveyor(timeout: TimeSpan.FromSeconds(10));
        using var host = builder.Build();
        await host.StartAsync();
        try
        {
            return await host.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync();
        }
        finally
        {
            await host.StopAsync();
        }
    }
}
