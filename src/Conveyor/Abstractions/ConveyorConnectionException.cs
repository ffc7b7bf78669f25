namespace Conveyor;

/// <summary>
/// An engine (broker, result backend, lock store) did not answer when a host started with
/// <see cref="ConveyorOptions.FailFast"/>. The message is one line per setting, naming it, with passwords masked:
/// <c>Conveyor:Broker: redis://user:***@10.0.0.5:6379: …</c>.
/// </summary>
public sealed class ConveyorConnectionException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ConveyorConnectionException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">What did not answer, and why.</param>
    public ConveyorConnectionException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and its cause.</summary>
    /// <param name="message">What did not answer, and why.</param>
    /// <param name="innerException">The cause.</param>
    public ConveyorConnectionException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
