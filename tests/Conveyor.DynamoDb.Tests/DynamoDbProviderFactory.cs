using Conveyor.Conformance;

namespace Conveyor.DynamoDb.Tests;

/// <summary>
/// The DynamoDB result backend on the emulator in <c>CONVEYOR_TEST_DYNAMODB</c>, with tables of its own per test class
/// (created by the backend). The backend pushes nothing, so there is no broker here: the result-backend suite only.
/// </summary>
public sealed class DynamoDbProviderFactory : IConveyorProviderFactory
{
    private readonly string _prefix = "conveyor_test_" + Guid.NewGuid().ToString("N")[..10];

    public string Name => "dynamodb backend";

    public TimeSpan RedeliveryTimeout => TimeSpan.Zero;

    public DynamoDbBackendOptions Options() => new()
    {
        ServiceUrl = AwsTestServers.DynamoDbEndpoint,
        Region = "us-east-1",
        Credentials = AwsTestServers.Credentials,
        StatesTable = _prefix + "_task_states",
        GroupsTable = _prefix + "_group_metas",
        ResultTtl = TimeSpan.FromMinutes(10),
    };

    public ValueTask<IBroker> CreateBrokerAsync(CancellationToken cancellationToken = default) =>
        throw new NotSupportedException("DynamoDB is a result backend only.");

    public ValueTask<IResultBackend> CreateBackendAsync(CancellationToken cancellationToken = default) =>
        ValueTask.FromResult<IResultBackend>(new DynamoDbResultBackend(Options()));

    public ValueTask<IResultBackend?> CreateBackendAsync(TimeProvider clock, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult<IResultBackend?>(new DynamoDbResultBackend(Options(), clock));

    public ValueTask SimulateCrashAsync(IMessageConsumer consumer) => consumer.DisposeAsync();

    public async ValueTask DisposeAsync()
    {
        var options = Options();
        using var client = DynamoDbResultBackend.CreateClient(options);
        foreach (var table in new[] { options.StatesTable, options.GroupsTable })
        {
            try
            {
                await client.DeleteTableAsync(table);
            }
            catch (Amazon.DynamoDBv2.Model.ResourceNotFoundException)
            {
            }
        }
    }
}

public sealed class DynamoDbResultBackendConformanceTests(DynamoDbProviderFactory factory) : ResultBackendConformanceTests<DynamoDbProviderFactory>(factory);

public sealed class DynamoDbChordProtocolConformanceTests(DynamoDbProviderFactory factory) : ChordProtocolConformanceTests<DynamoDbProviderFactory>(factory);
