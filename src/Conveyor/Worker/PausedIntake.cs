using Conveyor.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Conveyor;

/// <summary>
/// What a worker does with its consumer when its queue gets paused: the runners stop taking deliveries at once,
/// and this stops the consumer's intake and hands the buffered, unstarted deliveries back to the broker, so they
/// do not wait in this worker until its running tasks finish (a long task would hold them for its whole run).
/// </summary>
internal static class PausedIntake
{
    /// <summary>
    /// Waits until the loops' token is canceled by a pause (not a stop) or the loops end, then stops the consumer's
    /// intake and releases what it buffered. Never throws: a delivery that cannot be released goes back when the
    /// consumer is disposed.
    /// </summary>
    public static async Task HandBackWhenPausedAsync(IMessageConsumer consumer, Task loops, ILogger logger, string workerName, CancellationToken loopToken, CancellationToken stoppingToken)
    {
        var paused = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using (loopToken.Register(static state => ((TaskCompletionSource)state!).TrySetResult(), paused))
        {
            await Task.WhenAny(loops, paused.Task).ConfigureAwait(false);
        }

        if (!loopToken.IsCancellationRequested || stoppingToken.IsCancellationRequested)
        {
            return; // the consumer ended, or the worker stops: disposing the consumer hands everything back
        }

        var released = 0;
        try
        {
            if (!await consumer.StopReceivingAsync(stoppingToken).ConfigureAwait(false))
            {
                return;
            }

            while (consumer.Deliveries.TryRead(out var delivery))
            {
                await delivery.ReleaseAsync(stoppingToken).ConfigureAwait(false);
                released++;
            }
        }
        catch (Exception ex)
        {
            Log.PausedHandBackFailed(logger, ex, workerName);
            return;
        }

        Log.PausedDeliveriesHandedBack(logger, workerName, released);
    }
}
