namespace Conveyor;

/// <summary>What a running task knows about itself. Declare a parameter of this type to receive it.</summary>
public sealed class TaskContext
{
    internal TaskContext(Signature signature, int attempt, IServiceProvider? services, CancellationToken cancellationToken)
    {
        Signature = signature;
        Attempt = attempt;
        Services = services;
        CancellationToken = cancellationToken;
    }

    /// <summary>The signature being run.</summary>
    public Signature Signature { get; }

    /// <summary>The task id.</summary>
    public string TaskId => Signature.Id;

    /// <summary>The task name.</summary>
    public string TaskName => Signature.Name;

    /// <summary>Which run this is: 1 for the first, 2 for the first retry, and so on.</summary>
    public int Attempt { get; }

    /// <summary>The signature's headers.</summary>
    public IDictionary<string, object?> Headers => Signature.Headers;

    /// <summary>Services of the task's scope, when the worker runs in a host; otherwise <see langword="null"/>.</summary>
    public IServiceProvider? Services { get; }

    /// <summary>Canceled when the task times out or the worker stops.</summary>
    public CancellationToken CancellationToken { get; }

    /// <summary>Where progress reports go: the worker's management store; none without one.</summary>
    internal IManagementStore? Progress { get; init; }

    /// <summary>The worker's clock, for the time of a progress report.</summary>
    internal TimeProvider Clock { get; init; } = TimeProvider.System;

    /// <summary>
    /// Reports how far the task is: stored beside its state (kept as long as results are), shown by
    /// <c>conveyor status</c> and <see cref="ConveyorManagement.GetTaskAsync"/>. Does nothing when the worker has
    /// no management store (SQS, DynamoDB); a store that fails is logged by nobody and does not fail the task.
    /// </summary>
    /// <param name="percent">0 to 100.</param>
    /// <param name="message">A word on what it does now; <see langword="null"/> for none.</param>
    /// <param name="cancellationToken">Cancels the call; the task's own token when not given.</param>
    /// <returns>A task that completes when the report is stored.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="percent"/> is not within 0 to 100.</exception>
    public async ValueTask ReportProgressAsync(double percent, string? message = null, CancellationToken cancellationToken = default)
    {
        if (double.IsNaN(percent) || percent is < 0 or > 100)
        {
            throw new ArgumentOutOfRangeException(nameof(percent), percent, "Progress is a percentage, 0 to 100.");
        }

        if (Progress is not { } store)
        {
            return;
        }

        try
        {
            var token = cancellationToken.CanBeCanceled ? cancellationToken : CancellationToken;
            await store.SetProgressAsync(TaskId, new TaskProgress(percent, message ?? string.Empty, Clock.GetUtcNow()), token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // Progress is advice: the task goes on.
        }
    }
}

/// <summary>
/// Thrown by a handler to run the task again after a delay (machinery's <c>ErrRetryTaskLater</c>). Unlike
/// machinery, this counts toward the signature's <see cref="Signature.RetryCount"/>: a task cannot retry forever.
/// </summary>
public sealed class RetryTaskLaterException : Exception
{
    /// <summary>Creates the exception.</summary>
    public RetryTaskLaterException()
        : this(TimeSpan.Zero)
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">Why the task is retried.</param>
    public RetryTaskLaterException(string message)
        : this(message, TimeSpan.Zero)
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">Why the task is retried.</param>
    /// <param name="innerException">The underlying error.</param>
    public RetryTaskLaterException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="delay">How long to wait before the next run.</param>
    public RetryTaskLaterException(TimeSpan delay)
        : this($"retry requested in {delay}", delay)
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">Why the task is retried.</param>
    /// <param name="delay">How long to wait before the next run.</param>
    public RetryTaskLaterException(string message, TimeSpan delay)
        : base(message)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(delay, TimeSpan.Zero);
        Delay = delay;
    }

    /// <summary>How long to wait before the next run.</summary>
    public TimeSpan Delay { get; }
}

/// <summary>
/// The arguments of a message do not fit the registered handler (count or type). Such a task fails at once and
/// is not retried: running it again cannot help.
/// </summary>
public sealed class TaskArgumentException : ArgumentException
{
    /// <summary>Creates the exception.</summary>
    public TaskArgumentException()
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">What does not fit.</param>
    public TaskArgumentException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">What does not fit.</param>
    /// <param name="innerException">The underlying error.</param>
    public TaskArgumentException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
