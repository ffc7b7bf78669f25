using System.Text.Json.Serialization;

namespace Conveyor;

/// <summary>The states of a task, as machinery names them on the wire.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<TaskState>))]
public enum TaskState
{
    /// <summary>Published, waiting in the broker. Recorded at publish.</summary>
    [JsonStringEnumMemberName("PENDING")]
    Pending,

    /// <summary>Taken from the broker by a worker.</summary>
    [JsonStringEnumMemberName("RECEIVED")]
    Received,

    /// <summary>The handler is running.</summary>
    [JsonStringEnumMemberName("STARTED")]
    Started,

    /// <summary>The handler failed and the task was published again with a delay.</summary>
    [JsonStringEnumMemberName("RETRY")]
    Retry,

    /// <summary>The handler succeeded; the results are stored.</summary>
    [JsonStringEnumMemberName("SUCCESS")]
    Success,

    /// <summary>The task failed for good; the error is stored.</summary>
    [JsonStringEnumMemberName("FAILURE")]
    Failure,
}

/// <summary>Helpers for <see cref="TaskState"/>.</summary>
public static class TaskStateExtensions
{
    /// <summary>Tells whether a state is final (<see cref="TaskState.Success"/> or <see cref="TaskState.Failure"/>).</summary>
    /// <param name="state">The state.</param>
    /// <returns><see langword="true"/> for a final state.</returns>
    public static bool IsCompleted(this TaskState state) => state is TaskState.Success or TaskState.Failure;

    /// <summary>The wire name of a state (<c>"SUCCESS"</c>, ...).</summary>
    /// <param name="state">The state.</param>
    /// <returns>The name machinery uses.</returns>
    public static string ToWireName(this TaskState state) => state switch
    {
        TaskState.Pending => "PENDING",
        TaskState.Received => "RECEIVED",
        TaskState.Started => "STARTED",
        TaskState.Retry => "RETRY",
        TaskState.Success => "SUCCESS",
        TaskState.Failure => "FAILURE",
        _ => throw new ArgumentOutOfRangeException(nameof(state), state, null),
    };
}
