using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Conveyor.Hosting.Tests;

public sealed class AddConveyorTests
{
    [Fact]
    public async Task AddConveyorWorker_SqliteFromConfiguration_RunsTaskSentThroughInjectedClient()
    {
        using var database = new TempDatabase();
        var queue = HostBuilders.UniqueQueue(nameof(AddConveyorWorker_SqliteFromConfiguration_RunsTaskSentThroughInjectedClient));
        var builder = HostBuilders.Create(new Dictionary<string, string?>
        {
            ["Conveyor:Broker"] = database.Url,
            ["Conveyor:DefaultQueue"] = queue,
            ["Conveyor:Worker:Concurrency"] = "3",
        });
        builder.Services.AddConveyor(c => c.UseSqlite().AddTask("add", (long a, long b) => a + b));
        builder.Services.AddConveyorWorker();

        using var host = builder.Build();
        await host.StartAsync(CancellationToken.None);
        var client = host.Services.GetRequiredService<ConveyorClient>();
        var result = await client.SendAsync(new Signature("add", TaskArgument.Int64(2), TaskArgument.Int64(3)), CancellationToken.None);
        var value = await result.GetValueAsync<long>(TimeSpan.FromSeconds(30), CancellationToken.None);
        await host.StopAsync(CancellationToken.None);

        Assert.Equal(5L, value);
        Assert.Equal(queue, client.Options.DefaultQueue);
        Assert.Equal(3, host.Services.GetRequiredService<IOptionsMonitor<WorkerOptions>>().Get(Options.DefaultName).Concurrency);
    }

    [Fact]
    public void AddConveyorWorker_TwoWorkersLeftAtTheDefaultName_GetDistinctNames()
    {
        var services = new ServiceCollection();
        services.AddSingleton<Microsoft.Extensions.Configuration.IConfiguration>(new Microsoft.Extensions.Configuration.ConfigurationBuilder().Build());
        services.AddConveyor(c => c.UseInMemory());
        services.AddConveyorWorker();
        services.AddConveyorWorker("reports", o => o.Queue = "reports");
        services.AddConveyorWorker("named", o => { o.Queue = "named"; o.Name = "billing-worker"; });
        using var provider = services.BuildServiceProvider();
        var monitor = provider.GetRequiredService<IOptionsMonitor<WorkerOptions>>();

        var processDefault = new WorkerOptions().Name;
        Assert.Equal(processDefault, monitor.Get(Options.DefaultName).Name);
        Assert.Equal(processDefault + "/reports", monitor.Get("reports").Name);
        Assert.Equal("billing-worker", monitor.Get("named").Name); // a name of its own stays
    }

    [Fact]
    public void AddConveyor_CalledTwice_RegistersOnceAndReturnsSameBuilder()
    {
        var services = new ServiceCollection();
        var first = services.AddConveyor(c => c.UseInMemory());
        var second = services.AddConveyor();

        Assert.Same(first, second);
        Assert.Single(services, d => d.ServiceType == typeof(ConveyorClient));
        Assert.Single(services, d => d.ServiceType == typeof(IConveyorProvider));
    }

    [Fact]
    public async Task AddTaskHandler_ScopedDependency_NewScopePerTaskDisposedAfterIt()
    {
        var queue = HostBuilders.UniqueQueue(nameof(AddTaskHandler_ScopedDependency_NewScopePerTaskDisposedAfterIt));
        var builder = HostBuilders.Create(new Dictionary<string, string?> { ["Conveyor:DefaultQueue"] = queue });
        builder.Services.AddScoped<ScopeProbe>();
        builder.Services.AddSingleton<ScopeLog>();
        builder.Services.AddConveyor(c => c.UseInMemory().AddTaskHandler<ScopedHandler>("scoped"));
        builder.Services.AddConveyorWorker(o => o.Concurrency = 1);

        using var host = builder.Build();
        await host.StartAsync(CancellationToken.None);
        var client = host.Services.GetRequiredService<ConveyorClient>();
        var ids = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            var result = await client.SendAsync(new Signature("scoped"), CancellationToken.None);
            ids.Add(await result.GetValueAsync<string>(TimeSpan.FromSeconds(30), CancellationToken.None));
        }

        await host.StopAsync(CancellationToken.None);
        var log = host.Services.GetRequiredService<ScopeLog>();

        Assert.Equal(3, ids.Distinct().Count());
        Assert.Equal(ids.Order(), log.Disposed.Order());
    }

    [Theory]
    [InlineData("nonsense", "Conveyor:Broker: 'nonsense' is not a URL")]
    [InlineData("kafka://localhost:9092", "Conveyor:Broker: no provider for 'kafka://localhost:9092'")]
    [InlineData("redis://localhost:notaport", "Conveyor:Broker:")]
    [InlineData("sqlite://", "Conveyor:Broker: 'sqlite://' names no database file")]
    [InlineData("redis://localhost:6379?visibility=5", "Conveyor:Broker: 'redis://localhost:6379': unknown option 'visibility'")]
    public async Task StartAsync_BadBroker_FailsWithOneLineNamingTheSetting(string broker, string expected)
    {
        var builder = HostBuilders.Create(new Dictionary<string, string?> { ["Conveyor:Broker"] = broker });
        builder.Services.AddConveyor(c => c.UseSqlite().UseRedis().UseRabbitMq());
        builder.Services.AddConveyorWorker();
        using var host = builder.Build();

        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync(CancellationToken.None));

        Assert.StartsWith(expected, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Fact]
    public async Task StartAsync_RabbitMqBrokerWithoutBackend_NamesTheResultBackendSetting()
    {
        var builder = HostBuilders.Create(new Dictionary<string, string?> { ["Conveyor:Broker"] = "amqp://guest:secret@localhost:5672/" });
        builder.Services.AddConveyor(c => c.UseSqlite(url: null).UseRabbitMq());
        using var host = builder.Build();

        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync(CancellationToken.None));

        Assert.StartsWith("Conveyor:ResultBackend (not set, so the broker's URL): RabbitMQ cannot be the result backend; use one of sqlite://", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("secret", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task StartAsync_WorkerConcurrencyZero_NamesTheWorkerSetting()
    {
        var builder = HostBuilders.Create(new Dictionary<string, string?> { ["Conveyor:Worker:Concurrency"] = "0" });
        builder.Services.AddConveyor(c => c.UseInMemory());
        builder.Services.AddConveyorWorker();
        using var host = builder.Build();

        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync(CancellationToken.None));

        Assert.StartsWith("Conveyor:Worker:Concurrency: ", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Options_BrokerFromConfiguration_WinsOverCodeAndAlsoHoldsResults()
    {
        using var database = new TempDatabase();
        var builder = HostBuilders.Create(new Dictionary<string, string?> { ["Conveyor:Broker"] = database.Url });
        builder.Services.AddConveyor(c => c.UseRedis("redis://127.0.0.1:1").UseSqlite());
        using var host = builder.Build();

        var options = host.Services.GetRequiredService<IOptions<ConveyorOptions>>().Value;

        Assert.Equal(database.Url, options.Broker);
        Assert.Equal(string.Empty, options.ResultBackend);
    }

    [Fact]
    public void Options_RabbitMqBrokerFromConfiguration_ResultBackendFromCode()
    {
        var builder = HostBuilders.Create(new Dictionary<string, string?> { ["Conveyor:Broker"] = "amqp://localhost:5672/" });
        builder.Services.AddConveyor(c => c.UseRabbitMq().UseRedis("redis://127.0.0.1:6379"));
        using var host = builder.Build();

        var options = host.Services.GetRequiredService<IOptions<ConveyorOptions>>().Value;

        Assert.Equal("amqp://localhost:5672/", options.Broker);
        Assert.Equal("redis://127.0.0.1:6379", options.ResultBackend);
    }

    [Fact]
    public void Options_NothingConfigured_FirstCodeDefaultWins()
    {
        var builder = HostBuilders.Create(new Dictionary<string, string?>());
        builder.Services.AddConveyor(c => c.UseRedis("redis://first:6379").UseSqlite());
        using var host = builder.Build();

        var options = host.Services.GetRequiredService<IOptions<ConveyorOptions>>().Value;

        Assert.Equal("redis://first:6379", options.Broker);
        Assert.Equal("redis://first:6379", options.ResultBackend);
    }

    public sealed class ScopeLog
    {
        public List<string> Disposed { get; } = [];
    }

    public sealed class ScopeProbe(ScopeLog log) : IDisposable
    {
        public string Id { get; } = Guid.NewGuid().ToString("N");

        public void Dispose()
        {
            lock (log.Disposed)
            {
                log.Disposed.Add(Id);
            }
        }
    }

    public sealed class ScopedHandler(ScopeProbe probe)
    {
        public string Run() => probe.Id;
    }
}
