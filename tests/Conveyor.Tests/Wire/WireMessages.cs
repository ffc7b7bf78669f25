using System.Text;
using System.Text.Json;
using Conveyor.Serialization;

namespace Conveyor.Tests.Wire;

/// <summary>Small machinery messages written out in full, in Go's field order, for tests that need no capture.</summary>
internal static class WireMessages
{
    public const string TaskId = "task_00000000-0000-4000-8000-000000000001";

    /// <summary>A whole message as Go's encoding/json writes a <c>tasks.Signature</c>, with the given <c>Args</c> JSON.</summary>
    public static string Canonical(string argsJson, string headersJson = "{}") =>
        $"{{\"UUID\":\"{TaskId}\",\"Name\":\"t\",\"RoutingKey\":\"\",\"ETA\":null,\"GroupUUID\":\"\",\"GroupTaskCount\":0," +
        $"\"Args\":{argsJson},\"Headers\":{headersJson},\"Priority\":0,\"Immutable\":false,\"RetryCount\":0,\"RetryTimeout\":0," +
        "\"OnSuccess\":null,\"OnError\":null,\"ChordCallback\":null,\"BrokerMessageGroupId\":\"\",\"SQSReceiptHandle\":\"\"," +
        "\"StopTaskDeletionOnError\":false,\"IgnoreWhenTaskNotRegistered\":false}";

    /// <summary>A canonical message with one argument.</summary>
    public static string WithArg(string type, string valueJson, string name = "") =>
        Canonical($"[{{\"Name\":\"{name}\",\"Type\":\"{type}\",\"Value\":{valueJson}}}]");

    public static Signature Parse(string json) => WireFormat.DeserializeSignature(Encoding.UTF8.GetBytes(json));

    public static string Write(Signature signature) => Encoding.UTF8.GetString(WireFormat.SerializeSignature(signature));

    /// <summary>The raw JSON text Conveyor writes for the first argument's value.</summary>
    public static string FirstArgValueJson(Signature signature)
    {
        using var document = JsonDocument.Parse(WireFormat.SerializeSignature(signature));
        return document.RootElement.GetProperty("Args")[0].GetProperty("Value").GetRawText();
    }
}
