using Conveyor.Conformance;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Conveyor.Sqs.Tests;

/// <summary><c>UseSqs()</c> and <c>UseDynamoDb()</c> in a generic host: URLs from configuration, checked at start.</summary>
public sealed class HostingTests
{
    private static HostApplicationBuilder Create(IDictionary<string, string?> settings)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(settings);
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(10));
        builder.Services.AddConveyor(c => c
            .UseSqs(configure: o => o.Credentials = AwsTestServers.Credentials)
            .UseDynamoDb(configure: o => o.Credentials = AwsTestServers.Credentials));
        return builder;
    }

    [Theory]
    [InlineData("sqs://us-east-1/?colour=blue", "dynamodb://us-east-1", "Conveyor:Broker: sqs:// URL: unknown setting 'colour'")]
    [InlineData("sqs://us-east-1/", "dynamodb://us-east-1?states_table=x", "Conveyor:ResultBackend: dynamodb:// URL: states_table must be")]
    [InlineData("sqs://us-east-1/", null, "Conveyor:ResultBackend (not set, so the broker's URL): SQS cannot be the result backend")]
    [InlineData("dynamodb://us-east-1", "dynamodb://us-east-1", "Conveyor:Broker: DynamoDB cannot be the broker")]
    public async Task StartAsync_BadAwsSettings_FailWithOneLineNamingTheSetting(string broker, string? backend, string expected)
    {
        var builder = Create(new Dictionary<string, string?> { ["Conveyor:Broker"] = broker, ["Conveyor:ResultBackend"] = backend });
        builder.Services.AddConveyorWorker();
        using var host = builder.Build();

        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync(CancellationToken.None));

        Assert.StartsWith(expected, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Fact]
    public async Task StartAsync_FailFast_EndpointsThatDoNotAnswer_FailWithOneLinePerSetting()
    {
        var builder = Create(new Dictionary<string, string?>
        {
            ["Conveyor:Broker"] = "sqs://us-east-1/?endpoint=http://127.0.0.1:1",
            ["Conveyor:ResultBackend"] = "dynamodb://us-east-1?endpoint=http://127.0.0.1:1",
            ["Conveyor:FailFast"] = "true",
            ["Conveyor:ConnectTimeout"] = "00:00:05",
        });
        builder.Services.AddConveyorWorker();
        using var host = builder.Build();

        var error = await Assert.ThrowsAsync<ConveyorConnectionException>(() => host.StartAsync(CancellationToken.None));

        Assert.Contains("Conveyor:Broker: sqs://us-east-1/?endpoint=http://127.0.0.1:1", error.Message, StringComparison.Ordinal);
        Assert.Contains("Conveyor:ResultBackend: dynamodb://us-east-1?endpoint=http://127.0.0.1:1", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("conveyor-test-secret", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Host_SqsBrokerAndDynamoDbBackendFromConfiguration_RunsATask()
    {
        var suffix = Guid.NewGuid().ToString("N")[..10];
        var builder = Create(new Dictionary<string, string?>
        {
            ["Conveyor:Broker"] = $"sqs://us-east-1/?endpoint={AwsTestServers.SqsEndpoint}&wait_time=1",
            ["Conveyor:ResultBackend"] = $"dynamodb://us-east-1?endpoint={AwsTestServers.DynamoDbEndpoint}&states_table=hosting_{suffix}_states&groups_table=hosting_{suffix}_groups",
            ["Conveyor:DefaultQueue"] = "hosting-" + suffix,
            ["Conveyor:Worker:Queue"] = "hosting-" + suffix,
        });
        builder.Services.AddConveyor(c => c.AddTask("add", (long a, long b) => a + b));
        builder.Services.AddConveyorWorker();
        using var host = builder.Build();
        await host.StartAsync(CancellationToken.None);
        try
        {
            var client = host.Services.GetRequiredService<ConveyorClient>();
            var result = await client.SendAsync(new Signature("add", TaskArgument.Int64(2), TaskArgument.Int64(3)), CancellationToken.None);
            Assert.Equal(5, await result.GetValueAsync<long>(ConveyorTestContext.Timeout, CancellationToken.None));
            Assert.IsType<SqsBroker>(host.Services.GetRequiredService<IBroker>());
            Assert.IsType<DynamoDb.DynamoDbResultBackend>(host.Services.GetRequiredService<IResultBackend>());
        }
        finally
        {
            await host.StopAsync(CancellationToken.None);
        }
    }
}
