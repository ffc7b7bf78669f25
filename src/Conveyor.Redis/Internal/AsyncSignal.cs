namespace Conveyor.Redis.Internal;

/// <summary>
/// A wake-up for one waiter: <see cref="Reset"/> before checking for work, then await <see cref="WaitAsync"/>; a
/// <see cref="Set"/> between the two is not lost.
/// </summary>
internal sealed class AsyncSignal
{
    private TaskCompletionSource _source = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public void Set() => Volatile.Read(ref _source).TrySetResult();

    public void Reset()
    {
        if (Volatile.Read(ref _source).Task.IsCompleted)
        {
            Volatile.Write(ref _source, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        }
    }

    public Task Task => Volatile.Read(ref _source).Task;

    /// <summary>Waits for a <see cref="Set"/>, at most <paramref name="timeout"/>; returns whether it was set.</summary>
    public Task<bool> WaitAsync(TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken) => WaitAnyAsync(Task, timeout, time, cancellationToken);

    /// <summary>
    /// Waits for <paramref name="task"/> at most <paramref name="timeout"/>, without throwing on the timeout (these
    /// waits time out hundreds of times a second on an idle consumer or a polling waiter: an exception each time
    /// costs more than the wait).
    /// </summary>
    public static async Task<bool> WaitAnyAsync(Task task, TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken)
    {
        if (task.IsCompleted)
        {
            return true;
        }

        using var delayCancel = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var delay = Task.Delay(timeout, time, delayCancel.Token);
        var first = await Task.WhenAny(task, delay).ConfigureAwait(false);
        if (first == task)
        {
            await delayCancel.CancelAsync().ConfigureAwait(false);
            return true;
        }

        cancellationToken.ThrowIfCancellationRequested();
        return false;
    }
}
