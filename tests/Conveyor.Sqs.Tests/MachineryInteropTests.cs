using System.Globalization;
using Amazon.DynamoDBv2.Model;
using Amazon.SQS.Model;
using Conveyor.Conformance;
using Conveyor.DynamoDb;

namespace Conveyor.Sqs.Tests;

/// <summary>
/// machinery's all-AWS setup: a message sent as machinery's <c>v2/brokers/sqs/sqs.go</c> sends it (the body is
/// <c>json.Marshal(signature)</c>, the same bytes machinery's Redis broker pushes, captured in <c>shared/wire</c>; no
/// message attributes; queue URL = broker URL + "/" + routing key) runs on a Conveyor worker, and the state item
/// Conveyor writes has the attribute names and types of machinery's <c>v2/backends/dynamodb</c>: its PENDING
/// <c>PutItem</c> of <c>dynamodbattribute.MarshalMap(TaskState)</c> (empty strings and nil slices as NULL, time.Time
/// as an RFC 3339 string, int64 as N) and its <c>setTaskState</c> update (Results as L of M {Type S, Value S} with
/// <c>fmt.Sprintf("%v")</c> values, TTL as N).
/// </summary>
public sealed class MachineryInteropTests(SqsDynamoDbProviderFactory factory) : IClassFixture<SqsDynamoDbProviderFactory>
{
    private const string SampleTaskId = "task_e843b4c1-ab4f-4d87-9c03-e5efb37559dc";
    private const string MachineryCreatedAt = "2026-11-26T17:18:43.513345115Z";

    [Fact]
    public async Task MachineryBody_SentAsSqsGoSendsIt_RunsOnConveyor_AndTheStateItemHasMachinerysAttributes()
    {
        await using var t = await ConveyorTestContext.CreateAsync(factory);
        t.Registry.Register("wire_types", (string s, long i, double f, bool b, string[] list) =>
            (s.ToUpperInvariant(), i + 1, f * 2, !b, list.Append("z").ToArray()));
        var id = "task_" + Guid.NewGuid();
        var body = WireSamples.Redis("broker_task_wire_types.raw.json")
            .Replace(SampleTaskId, id, StringComparison.Ordinal)
            .Replace("\"RoutingKey\":\"machinery_wire\"", $"\"RoutingKey\":\"{t.Queue}\"", StringComparison.Ordinal);
        var options = factory.BackendOptions();
        using var dynamo = DynamoDbResultBackend.CreateClient(options);

        // machinery's SetStatePending: PutItem of MarshalMap(NewPendingTaskState(signature)).
        await dynamo.PutItemAsync(new PutItemRequest
        {
            TableName = options.StatesTable,
            Item = new()
            {
                ["TaskUUID"] = new() { S = id },
                ["TaskName"] = new() { S = "wire_types" },
                ["State"] = new() { S = "PENDING" },
                ["Results"] = new() { NULL = true },
                ["Error"] = new() { NULL = true },
                ["CreatedAt"] = new() { S = MachineryCreatedAt },
                ["TTL"] = new() { N = "0" },
            },
        });

        // machinery's Publish: SendMessage with the body and the queue URL, nothing else.
        var sqs = ((SqsBroker)t.Broker).Client;
        var queueUrl = (await sqs.CreateQueueAsync(Internal.SqsQueueNames.ToSqsName(t.Queue))).QueueUrl;
        await sqs.SendMessageAsync(new SendMessageRequest { QueueUrl = queueUrl, MessageBody = body });
        await t.StartWorkerAsync();

        var final = await t.Client.GetResult(id).WaitAsync(ConveyorTestContext.Timeout);
        Assert.Equal(TaskState.Success, final.State);
        Assert.Equal(9007199254740994L, final.Results![1].Value);
        Assert.Equal(["a", "b c", "", "z"], (string[])final.Results[4].Value!);

        var item = (await dynamo.GetItemAsync(new GetItemRequest { TableName = options.StatesTable, Key = new() { ["TaskUUID"] = new() { S = id } }, ConsistentRead = true })).Item;
        Assert.Equal(["CreatedAt", "Error", "Results", "State", "TTL", "TaskName", "TaskUUID"], item.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(id, item["TaskUUID"].S);
        Assert.Equal("wire_types", item["TaskName"].S);
        Assert.Equal("SUCCESS", item["State"].S);
        Assert.True(item["Error"].NULL);
        Assert.Equal(MachineryCreatedAt, item["CreatedAt"].S); // kept from machinery's PENDING item
        var expiresAt = long.Parse(item["TTL"].N, CultureInfo.InvariantCulture);
        Assert.InRange(expiresAt, DateTimeOffset.UtcNow.AddMinutes(9).ToUnixTimeSeconds(), DateTimeOffset.UtcNow.AddMinutes(11).ToUnixTimeSeconds());

        var results = item["Results"].L;
        Assert.Equal(5, results.Count);
        Assert.All(results, r => Assert.Equal(["Type", "Value"], r.M.Keys.Order(StringComparer.Ordinal)));
        Assert.All(results, r => Assert.NotNull(r.M["Type"].S));
        Assert.All(results, r => Assert.NotNull(r.M["Value"].S));
        Assert.Equal(["string", "int64", "float64", "bool", "[]string"], results.Select(r => r.M["Type"].S));

        // Go's fmt.Sprintf("%v") of each scalar result, as machinery's setTaskState writes it.
        Assert.Equal(["HÉLLO \"WÖRLD\" <&>", "9007199254740994", "6.5", "false"], results.Take(4).Select(r => r.M["Value"].S));
        Assert.Equal("""["a","b c","","z"]""", results[4].M["Value"].S);
    }

    [Fact]
    public async Task MachineryWrittenResults_WithGoFormattedValues_ReadBackTyped()
    {
        await using var backend = await factory.CreateBackendAsync();
        var options = factory.BackendOptions();
        using var dynamo = DynamoDbResultBackend.CreateClient(options);
        var id = "task_" + Guid.NewGuid();
        AttributeValue Result(string type, string value) => new() { M = new() { ["Type"] = new() { S = type }, ["Value"] = new() { S = value } } };
        await dynamo.PutItemAsync(new PutItemRequest
        {
            TableName = options.StatesTable,
            Item = new()
            {
                ["TaskUUID"] = new() { S = id },
                ["TaskName"] = new() { S = "go_task" },
                ["State"] = new() { S = "SUCCESS" },
                ["Results"] = new() { L = [Result("int64", "42"), Result("string", "42"), Result("[]int64", "[1 2 3]"), Result("float64", "2.5")] },
                ["Error"] = new() { NULL = true },
                ["CreatedAt"] = new() { S = MachineryCreatedAt },
                ["TTL"] = new() { N = "1700000000" },
            },
        });

        var state = await backend.GetStateAsync(id);
        Assert.NotNull(state);
        Assert.Equal(42L, state.Results![0].Value);
        Assert.Equal("42", state.Results[1].Value);
        Assert.Equal([1L, 2L, 3L], (long[])state.Results[2].Value!);
        Assert.Equal(2.5, state.Results[3].Value);
        Assert.Equal(string.Empty, state.Error);
        Assert.Equal(1700000000, state.Ttl);
    }
}
