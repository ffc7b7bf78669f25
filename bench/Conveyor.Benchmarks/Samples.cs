using Conveyor.Serialization;

namespace Conveyor.Benchmarks;

/// <summary>The task every benchmark works on: machinery's <c>add(int64, int64)</c>, as a producer publishes it.</summary>
internal static class Samples
{
    public const string TaskName = "add";

    public static Signature NewAddSignature()
    {
        var signature = new Signature(TaskName, TaskArgument.Int64(2), TaskArgument.Int64(3)) { RoutingKey = "machinery_tasks" };

        // A published message carries "Headers":{} (the client adds trace context here); touching the property
        // makes the sample serialize the same way, and makes the parser allocate what it does for a real message.
        _ = signature.Headers;
        return signature;
    }

    public static TaskRegistry NewRegistry() => new TaskRegistry().Register(TaskName, (long a, long b) => a + b);

    public static TaskHandler GetAddHandler(TaskRegistry registry) =>
        registry.TryGet(TaskName, out var handler) ? handler : throw new InvalidOperationException("add is not registered.");

    /// <summary>The SUCCESS state a worker stores for the task: one int64 result.</summary>
    public static TaskStateRecord NewSuccessState(Signature signature) => new()
    {
        TaskId = signature.Id,
        TaskName = signature.Name,
        State = TaskState.Success,
        Results = [new TaskResult(MachineryTypes.Int64, 5L)],
        CreatedAt = new DateTimeOffset(2025, 1, 2, 3, 4, 5, 678, TimeSpan.Zero),
    };

    public static byte[] SerializedAddSignature() => WireFormat.SerializeSignature(NewAddSignature());
}
