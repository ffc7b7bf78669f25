using Conveyor.Diagnostics;
using Conveyor.Internal;
using Microsoft.Extensions.Logging;

namespace Conveyor;

/// <summary>
/// The worker's last stage: stores task states and acknowledges messages for many tasks at once. Task runners hand
/// it their transitions (RECEIVED and STARTED before the handler runs, the final state with its acknowledgement
/// after) and go on; it writes whatever gathered while the previous batch was in flight, in order, through
/// <see cref="IResultBackend.SettleAsync"/> (one script or transaction where broker and backend share an engine),
/// then acknowledges the batch's messages. A message is acknowledged only after its final state is stored.
/// </summary>
/// <remarks>
/// One batch is written at a time, so a task's STARTED is always stored before its SUCCESS. A failed write is
/// retried, with backoff, until it succeeds or the worker's grace period ends; then the unacknowledged messages go
/// back to the broker with the consumer, and run again.
/// </remarks>
internal sealed class StateSettler : IAsyncDisposable
{
    private const int Capacity = 8192;
    private const int MaxBatch = 512;
    private static readonly TimeSpan MaxRetryDelay = TimeSpan.FromSeconds(1);

    private readonly IResultBackend _backend;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly string _workerName;
    private readonly CancellationToken _hardStop;
    private readonly GroupCommitQueue<Steps> _queue;

    public StateSettler(IResultBackend backend, ILogger logger, TimeProvider time, string workerName, CancellationToken hardStop)
    {
        _backend = backend;
        _logger = logger;
        _time = time;
        _workerName = workerName;
        _hardStop = hardStop;
        // At low load a runner starts its task's one-item write itself (a thread hop less on the latency path);
        // under load the batches stay whole.
        _queue = new GroupCommitQueue<Steps>(WriteAsync, Capacity, MaxBatch, inlineStart: InlineStart.WhenIdle);
    }

    /// <summary>Queues a state (and an acknowledgement after it) without waiting for the write.</summary>
    public ValueTask AddAsync(TaskStateRecord? state, IBrokerDelivery? ack = null) => _queue.AddAsync(new Steps(new Settlement(state, ack)), _hardStop);

    /// <summary>Queues two states of one task, in order, in one batch, without waiting for the write.</summary>
    public ValueTask AddAsync(TaskStateRecord first, TaskStateRecord second) =>
        _queue.AddAsync(new Steps(new Settlement(first, null), new Settlement(second, null)), _hardStop);

    /// <summary>
    /// Queues a task's RECEIVED, STARTED and final state with its acknowledgement, in order and in one batch (a
    /// handler that finished before it first awaited): one round trip for the whole task.
    /// </summary>
    public ValueTask AddAsync(TaskStateRecord received, TaskStateRecord started, TaskStateRecord final, IBrokerDelivery ack) =>
        _queue.AddAsync(new Steps(new Settlement(received, null), new Settlement(started, null), new Settlement(final, ack)), _hardStop);

    /// <summary>Queues a state (or nothing: a barrier) and waits until it and everything queued before it are stored.</summary>
    public Task WriteAsync(TaskStateRecord? state) => _queue.AddAndWaitAsync(new Steps(new Settlement(state, null)), _hardStop);

    /// <summary>Writes everything queued, then stops.</summary>
    public Task CompleteAsync() => _queue.CompleteAsync();

    public ValueTask DisposeAsync() => _queue.DisposeAsync();

    private async ValueTask WriteAsync(List<Steps> queued, CancellationToken loopToken)
    {
        var batch = new List<Settlement>(queued.Count * 2);
        foreach (var steps in queued)
        {
            batch.Add(steps.First);
            if (steps.Count > 1)
            {
                batch.Add(steps.Second);
            }

            if (steps.Count > 2)
            {
                batch.Add(steps.Third);
            }
        }

        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await _backend.SettleAsync(batch, _hardStop).ConfigureAwait(false);
                break;
            }
            catch (Exception ex) when (!_hardStop.IsCancellationRequested && !loopToken.IsCancellationRequested)
            {
                var delay = TimeSpan.FromMilliseconds(Math.Min(MaxRetryDelay.TotalMilliseconds, 25 * Math.Pow(2, Math.Min(attempt, 10))));
                Log.SettleFailed(_logger, ex, _workerName, batch.Count, attempt, delay);
                try
                {
                    await Task.Delay(delay, _time, _hardStop).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                }
            }
            catch (Exception) when (_hardStop.IsCancellationRequested || loopToken.IsCancellationRequested)
            {
                Log.SettleAbandoned(_logger, _workerName, batch.Count);
                throw;
            }
        }

        // Acknowledgements the backend did in its own step are no-ops here.
        List<Task>? pending = null;
        foreach (var step in batch)
        {
            if (step.Ack is not { } delivery)
            {
                continue;
            }

            var ack = AckAsync(delivery);
            if (!ack.IsCompleted)
            {
                (pending ??= []).Add(ack);
            }
        }

        if (pending is not null)
        {
            await Task.WhenAll(pending).ConfigureAwait(false);
        }
    }

    private async Task AckAsync(IBrokerDelivery delivery)
    {
        try
        {
            await delivery.AckAsync(CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            Log.AckFailed(_logger, ex, _workerName, delivery.Queue);
        }
    }

    /// <summary>Up to three steps of one task that go into the same batch, in order.</summary>
    private readonly struct Steps
    {
        public Steps(Settlement first)
        {
            First = first;
            Count = 1;
        }

        public Steps(Settlement first, Settlement second)
        {
            First = first;
            Second = second;
            Count = 2;
        }

        public Steps(Settlement first, Settlement second, Settlement third)
        {
            First = first;
            Second = second;
            Third = third;
            Count = 3;
        }

        public Settlement First { get; }

        public Settlement Second { get; }

        public Settlement Third { get; }

        public int Count { get; }
    }
}
