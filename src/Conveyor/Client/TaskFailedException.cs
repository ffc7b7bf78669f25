namespace Conveyor;

/// <summary>A task ended in <see cref="TaskState.Failure"/>; carries its stored error.</summary>
public sealed class TaskFailedException : Exception
{
    /// <summary>Creates the exception.</summary>
    public TaskFailedException()
        : base("The task failed.")
    {
        TaskId = string.Empty;
        TaskError = string.Empty;
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">The message.</param>
    public TaskFailedException(string message)
        : base(message)
    {
        TaskId = string.Empty;
        TaskError = message;
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public TaskFailedException(string message, Exception innerException)
        : base(message, innerException)
    {
        TaskId = string.Empty;
        TaskError = message;
    }

    /// <summary>Creates the exception from a failed state.</summary>
    /// <param name="state">The stored state.</param>
    public TaskFailedException(TaskStateRecord state)
        : base($"Task {state?.TaskName} {state?.TaskId} failed: {state?.Error}")
    {
        ArgumentNullException.ThrowIfNull(state);
        State = state;
        TaskId = state.TaskId;
        TaskError = state.Error;
    }

    /// <summary>The task id.</summary>
    public string TaskId { get; }

    /// <summary>The error the worker stored.</summary>
    public string TaskError { get; }

    /// <summary>The stored state, when known.</summary>
    public TaskStateRecord? State { get; }
}
