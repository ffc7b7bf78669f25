namespace Conveyor;

/// <summary>A task was revoked (<see cref="ConveyorManagement.RevokeAsync"/>): it never ran, or its run was canceled.</summary>
public sealed class TaskRevokedException : OperationCanceledException
{
    /// <summary>Creates the exception with the message <c>revoked</c>.</summary>
    public TaskRevokedException()
        : base(RevocationExtensions.RevokedErrorPrefix)
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">The stored error, which starts with <c>revoked</c>.</param>
    public TaskRevokedException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">The stored error.</param>
    /// <param name="innerException">The cause.</param>
    public TaskRevokedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
