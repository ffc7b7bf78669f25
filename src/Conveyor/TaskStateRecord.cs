using System.Text.Json.Serialization;
using Conveyor.Serialization;

namespace Conveyor;

/// <summary>
/// A task's state in the result backend: machinery's <c>tasks.TaskState</c>, stored under the task id.
/// </summary>
public sealed class TaskStateRecord
{
    /// <summary>The task id (machinery's <c>TaskUUID</c>).</summary>
    [JsonPropertyName("TaskUUID")]
    public required string TaskId { get; init; }

    /// <summary>The task name.</summary>
    [JsonPropertyName("TaskName")]
    public string TaskName { get; init; } = string.Empty;

    /// <summary>The state.</summary>
    [JsonPropertyName("State")]
    public TaskState State { get; init; }

    /// <summary>The results, on <see cref="TaskState.Success"/>; otherwise <see langword="null"/>.</summary>
    [JsonPropertyName("Results")]
    [JsonConverter(typeof(TaskResultListJsonConverter))]
    public IReadOnlyList<TaskResult>? Results { get; init; }

    /// <summary>The error message, on <see cref="TaskState.Failure"/>; otherwise empty.</summary>
    [JsonPropertyName("Error")]
    public string Error { get; init; } = string.Empty;

    /// <summary>When the task's first state was recorded (kept across later states, as machinery does).</summary>
    [JsonPropertyName("CreatedAt")]
    [JsonConverter(typeof(GoTimeJsonConverter))]
    public DateTimeOffset CreatedAt { get; init; }

    /// <summary>Machinery's <c>TTL</c> field in seconds; 0 means the backend's default expiry applies.</summary>
    [JsonPropertyName("TTL")]
    public long Ttl { get; init; }

    /// <summary>Tells whether the state is final.</summary>
    [JsonIgnore]
    public bool IsCompleted => State.IsCompleted();

    /// <summary>Copies this record with another state, results and error, keeping the id, name and creation time.</summary>
    /// <param name="state">The new state.</param>
    /// <param name="results">The results, for <see cref="TaskState.Success"/>.</param>
    /// <param name="error">The error, for <see cref="TaskState.Failure"/>.</param>
    /// <returns>The new record.</returns>
    public TaskStateRecord With(TaskState state, IReadOnlyList<TaskResult>? results = null, string error = "") => new()
    {
        TaskId = TaskId,
        TaskName = TaskName,
        State = state,
        Results = results,
        Error = error,
        CreatedAt = CreatedAt,
        Ttl = Ttl,
    };

    /// <inheritdoc/>
    public override string ToString() => $"{TaskName}[{TaskId}] {State.ToWireName()}";
}

/// <summary>A group's metadata in the result backend: machinery's <c>tasks.GroupMeta</c>, stored under the group id.</summary>
public sealed class GroupMeta
{
    /// <summary>The group id (machinery's <c>GroupUUID</c>).</summary>
    [JsonPropertyName("GroupUUID")]
    public required string GroupId { get; init; }

    /// <summary>The member task ids, in member order.</summary>
    [JsonPropertyName("TaskUUIDs")]
    public required IReadOnlyList<string> TaskIds { get; init; }

    /// <summary>Whether the chord callback has been published.</summary>
    [JsonPropertyName("ChordTriggered")]
    public bool ChordTriggered { get; init; }

    /// <summary>Machinery's group lock flag; Conveyor does not lock groups and only carries it.</summary>
    [JsonPropertyName("Lock")]
    public bool Lock { get; init; }

    /// <summary>When the group was created.</summary>
    [JsonPropertyName("CreatedAt")]
    [JsonConverter(typeof(GoTimeJsonConverter))]
    public DateTimeOffset CreatedAt { get; init; }

    /// <summary>Machinery's <c>TTL</c> field in seconds.</summary>
    [JsonPropertyName("TTL")]
    public long Ttl { get; init; }
}
