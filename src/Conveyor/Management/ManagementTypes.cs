using System.Text.Json;
using System.Text.Json.Serialization;
using Conveyor.Serialization;

namespace Conveyor;

/// <summary>Where a task stands, as the management API lists it.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<ManagedTaskState>))]
public enum ManagedTaskState
{
    /// <summary>In its queue, ready to be delivered.</summary>
    Pending,

    /// <summary>Waiting for its ETA (a delayed task or a retry).</summary>
    Scheduled,

    /// <summary>Delivered to a worker and not settled yet.</summary>
    Active,

    /// <summary>In the dead-letter store.</summary>
    DeadLettered,

    /// <summary>Finished with SUCCESS, within the result retention.</summary>
    Succeeded,

    /// <summary>Finished with FAILURE (not revoked), within the result retention.</summary>
    Failed,

    /// <summary>Revoked: stored as FAILURE with an error that starts with <c>revoked</c>.</summary>
    Revoked,
}

/// <summary>Which tasks to list.</summary>
public sealed record TaskQuery
{
    /// <summary>The state to list. The default value is <see cref="ManagedTaskState.Pending"/>.</summary>
    public ManagedTaskState State { get; init; } = ManagedTaskState.Pending;

    /// <summary>The queue; <see langword="null"/> means the default queue for message states, every queue for the others.</summary>
    public string? Queue { get; init; }

    /// <summary>Only tasks with this name; <see langword="null"/> for any.</summary>
    public string? Name { get; init; }

    /// <summary>The most tasks on one page, 1 to 1,000. The default value is 50.</summary>
    public int Limit { get; init; } = 50;

    /// <summary>The cursor of the previous page (<see cref="TaskPage.Next"/>); <see langword="null"/> for the first page.</summary>
    public string? After { get; init; }

    /// <summary>Whether a stored state belongs in this listing of finished tasks (its state and name).</summary>
    /// <param name="state">The state.</param>
    /// <returns>Whether it matches.</returns>
    public bool Matches(TaskStateRecord state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (Name is { } name && state.TaskName != name)
        {
            return false;
        }

        return State switch
        {
            ManagedTaskState.Succeeded => state.State == TaskState.Success,
            ManagedTaskState.Failed => state.State == TaskState.Failure && !state.IsRevoked(),
            ManagedTaskState.Revoked => state.IsRevoked(),
            _ => false,
        };
    }
}

/// <summary>One page of tasks.</summary>
/// <param name="Tasks">The tasks, in the order of the listing.</param>
/// <param name="Next">The cursor of the next page; <see langword="null"/> when this is the last.</param>
public sealed record TaskPage(IReadOnlyList<TaskSummary> Tasks, string? Next);

/// <summary>A task as a listing shows it.</summary>
public sealed record TaskSummary
{
    /// <summary>The task id.</summary>
    public required string Id { get; init; }

    /// <summary>The task name.</summary>
    public string Name { get; init; } = string.Empty;

    /// <summary>The queue its message is in, or came from; empty when unknown (a state without a message).</summary>
    public string Queue { get; init; } = string.Empty;

    /// <summary>Where it stands.</summary>
    public ManagedTaskState State { get; init; }

    /// <summary>The arguments, when the message is at hand.</summary>
    public IReadOnlyList<TaskArgument> Args { get; init; } = [];

    /// <summary>How many times it has run or been delivered (the attempt header, or the broker's delivery count).</summary>
    public int Attempts { get; init; }

    /// <summary>When it may run (its ETA), for scheduled tasks.</summary>
    public DateTimeOffset? Eta { get; init; }

    /// <summary>When it entered the listing's state where the store knows (enqueued, dead-lettered, state created).</summary>
    public DateTimeOffset? Since { get; init; }

    /// <summary>The worker (consumer) that holds it, for active tasks.</summary>
    public string? Worker { get; init; }

    /// <summary>The error, for failed, revoked and dead-lettered tasks.</summary>
    public string? Error { get; init; }

    /// <summary>The group it belongs to; empty for none.</summary>
    public string GroupId { get; init; } = string.Empty;

    /// <summary>
    /// A summary of a message body (machinery JSON). A body that is not a signature gives a summary with the
    /// error that says so, never an exception: listings show what is there.
    /// </summary>
    /// <param name="body">The message.</param>
    /// <param name="queue">The queue it is in.</param>
    /// <param name="state">Where it stands.</param>
    /// <param name="fallbackId">The id to show when the body cannot be read.</param>
    /// <returns>The summary.</returns>
    public static TaskSummary FromMessage(ReadOnlySpan<byte> body, string queue, ManagedTaskState state, string fallbackId = "")
    {
        try
        {
            var signature = WireFormat.DeserializeSignature(body);
            return new TaskSummary
            {
                Id = signature.Id,
                Name = signature.Name,
                Queue = queue,
                State = state,
                Args = [.. signature.Args],
                Attempts = Attempt(signature),
                Eta = signature.Eta,
                GroupId = signature.GroupId,
            };
        }
        catch (WireFormatException ex)
        {
            return new TaskSummary { Id = fallbackId, Queue = queue, State = state, Error = "unreadable message: " + ex.Message };
        }
    }

    /// <summary>A summary of a stored state.</summary>
    /// <param name="state">The state.</param>
    /// <returns>The summary.</returns>
    public static TaskSummary FromState(TaskStateRecord state)
    {
        ArgumentNullException.ThrowIfNull(state);
        return new TaskSummary
        {
            Id = state.TaskId,
            Name = state.TaskName,
            State = state.State == TaskState.Success ? ManagedTaskState.Succeeded : state.IsRevoked() ? ManagedTaskState.Revoked : ManagedTaskState.Failed,
            Since = state.CreatedAt,
            Error = state.Error.Length > 0 ? state.Error : null,
        };
    }

    internal static int Attempt(Signature signature) => signature.HeadersOrNull?.GetValueOrDefault(ConveyorWorker.AttemptHeader) switch
    {
        long l when l is > 0 and < int.MaxValue => (int)l,
        int i when i > 0 => i,
        string s when int.TryParse(s, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var parsed) && parsed > 0 => parsed,
        _ => 1,
    };
}

/// <summary>Everything known about one task.</summary>
public sealed record TaskDetail
{
    /// <summary>The task id.</summary>
    public required string Id { get; init; }

    /// <summary>The stored state, or <see langword="null"/> when none is (unknown, expired, or never stored).</summary>
    public TaskStateRecord? State { get; init; }

    /// <summary>Where it stands now: the message's state when a message is found, else the state's.</summary>
    public ManagedTaskState? Status { get; init; }

    /// <summary>The messages of this task found in the broker (pending, scheduled, active), with their queues.</summary>
    public IReadOnlyList<TaskSummary> Messages { get; init; } = [];

    /// <summary>The signature, from a message when one is found: arguments, headers, callbacks, chain and chord.</summary>
    public Signature? Signature { get; init; }

    /// <summary>The meta of its group, when it belongs to one.</summary>
    public GroupMeta? Group { get; init; }

    /// <summary>Whether it was revoked.</summary>
    public bool Revoked { get; init; }

    /// <summary>The last progress its handler reported, if any.</summary>
    public TaskProgress? Progress { get; init; }
}

/// <summary>A handler's report of how far it is (<see cref="TaskContext.ReportProgressAsync"/>).</summary>
/// <param name="Percent">0 to 100.</param>
/// <param name="Message">A word on what it does; may be empty.</param>
/// <param name="At">When it was reported.</param>
public sealed record TaskProgress(double Percent, string Message, DateTimeOffset At);

/// <summary>A running worker, as its last heartbeat described it.</summary>
public sealed record WorkerInfo
{
    /// <summary>The worker's name (unique in the fleet).</summary>
    public required string Name { get; init; }

    /// <summary>The machine.</summary>
    public string Host { get; init; } = string.Empty;

    /// <summary>The process id.</summary>
    public int ProcessId { get; init; }

    /// <summary>The queues it consumes.</summary>
    public IReadOnlyList<string> Queues { get; init; } = [];

    /// <summary>How many tasks it runs at once.</summary>
    public int Concurrency { get; init; }

    /// <summary>The ids of the tasks it runs now.</summary>
    public IReadOnlyList<string> RunningTasks { get; init; } = [];

    /// <summary>Whether it stopped taking messages because its queue is paused.</summary>
    public bool Paused { get; init; }

    /// <summary>When it started.</summary>
    public DateTimeOffset StartedAt { get; init; }

    /// <summary>When it last said it was alive.</summary>
    public DateTimeOffset LastHeartbeat { get; init; }
}

/// <summary>What changed in the control state since a cursor (<see cref="IManagementStore.ReadControlAsync"/>).</summary>
/// <param name="Cursor">The cursor to read from next time.</param>
/// <param name="Revoked">Task ids revoked since the cursor (may repeat ids seen before).</param>
/// <param name="PausedQueues">Every paused queue now.</param>
public sealed record ControlChanges(long Cursor, IReadOnlyList<string> Revoked, IReadOnlyList<string> PausedQueues);

/// <summary>What a management store can do beyond the control state (revoke, pause, workers, progress), which every store keeps.</summary>
[Flags]
public enum ManagementCapabilities
{
    /// <summary>Only the control state.</summary>
    None = 0,

    /// <summary>Lists, finds, deletes and moves the broker's messages (pending, scheduled, active).</summary>
    Messages = 1,

    /// <summary>Lists the result backend's finished states.</summary>
    States = 2,

    /// <summary>
    /// Lists and finds the broker's pending and scheduled messages without being able to delete or move them (a
    /// RabbitMQ broker through its management plugin's HTTP API, which peeks at the head of each queue).
    /// </summary>
    ReadMessages = 4,
}

/// <summary>The stored forms of the management records, shared by every provider (JSON, no type names).</summary>
public static class ManagementJson
{
    /// <summary>Serializes a worker's heartbeat record.</summary>
    /// <param name="worker">The worker.</param>
    /// <returns>UTF-8 JSON.</returns>
    public static byte[] Serialize(WorkerInfo worker) => JsonSerializer.SerializeToUtf8Bytes(worker, ManagementJsonContext.Default.WorkerInfo);

    /// <summary>Serializes a progress report.</summary>
    /// <param name="progress">The report.</param>
    /// <returns>UTF-8 JSON.</returns>
    public static byte[] Serialize(TaskProgress progress) => JsonSerializer.SerializeToUtf8Bytes(progress, ManagementJsonContext.Default.TaskProgress);

    /// <summary>Reads a worker's heartbeat record.</summary>
    /// <param name="json">UTF-8 JSON.</param>
    /// <returns>The worker, or <see langword="null"/> when the JSON is not one.</returns>
    public static WorkerInfo? DeserializeWorker(ReadOnlySpan<byte> json)
    {
        try
        {
            return JsonSerializer.Deserialize(json, ManagementJsonContext.Default.WorkerInfo);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>Reads a progress report.</summary>
    /// <param name="json">UTF-8 JSON.</param>
    /// <returns>The report, or <see langword="null"/> when the JSON is not one.</returns>
    public static TaskProgress? DeserializeProgress(ReadOnlySpan<byte> json)
    {
        try
        {
            return JsonSerializer.Deserialize(json, ManagementJsonContext.Default.TaskProgress);
        }
        catch (JsonException)
        {
            return null;
        }
    }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(WorkerInfo))]
[JsonSerializable(typeof(TaskProgress))]
internal sealed partial class ManagementJsonContext : JsonSerializerContext;

/// <summary>Reading revocations off stored states.</summary>
public static class RevocationExtensions
{
    /// <summary>The prefix of a revoked task's error: machinery sees FAILURE, a final state, and this reason.</summary>
    public const string RevokedErrorPrefix = "revoked";

    /// <summary>Whether the state is a revocation (FAILURE with an error that starts with <c>revoked</c>).</summary>
    /// <param name="state">The state.</param>
    /// <returns>Whether the task was revoked.</returns>
    public static bool IsRevoked(this TaskStateRecord state)
    {
        ArgumentNullException.ThrowIfNull(state);
        return state.State == TaskState.Failure && state.Error.StartsWith(RevokedErrorPrefix, StringComparison.Ordinal);
    }
}
