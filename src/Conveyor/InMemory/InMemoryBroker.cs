using System.Globalization;
using System.Threading.Channels;

namespace Conveyor.InMemory;

/// <summary>
/// A broker inside one process: for unit tests, for users' own tests (like machinery's eager mode) and for a
/// single-process app. Honours ETAs (on the injected clock), priorities, prefetch, redelivery of what a disposed
/// consumer left unsettled, and a dead-letter store.
/// </summary>
public sealed partial class InMemoryBroker : IBroker
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, QueueState> _queues = new(StringComparer.Ordinal);
    private readonly PriorityQueue<Message, (long DueTicks, long Sequence)> _delayed = new();
    private readonly List<DeadLetter> _deadLetters = [];
    private readonly TimeProvider _time;
    private readonly ITimer _delayTimer;
    private long _sequence;
    private long _deadLetterSequence;
    private bool _disposed;

    /// <summary>Creates a broker.</summary>
    /// <param name="timeProvider">The clock for ETAs; the system clock when <see langword="null"/>.</param>
    public InMemoryBroker(TimeProvider? timeProvider = null)
    {
        _time = timeProvider ?? TimeProvider.System;
        _delayTimer = _time.CreateTimer(static state => ((InMemoryBroker)state!).MoveDueMessages(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    /// <inheritdoc/>
    public BrokerCapabilities Capabilities => BrokerCapabilities.DelayedDelivery | BrokerCapabilities.Priorities | BrokerCapabilities.Redelivery;

    /// <inheritdoc/>
    public ValueTask PublishAsync(OutgoingMessage message, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(message);
        cancellationToken.ThrowIfCancellationRequested();
        var stored = new Message(message.Queue, message.Body.ToArray(), message.Priority, Interlocked.Increment(ref _sequence)) { TaskId = message.TaskId, Eta = message.Eta };
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var now = _time.GetUtcNow();
            if (message.Eta is { } eta && eta > now)
            {
                GetQueue(message.Queue).DelayedCount++;
                _delayed.Enqueue(stored, (eta.UtcTicks, stored.Sequence));
                if (_delayed.Peek() == stored)
                {
                    _delayTimer.Change(eta - now, Timeout.InfiniteTimeSpan);
                }
            }
            else
            {
                Enqueue(stored);
            }
        }

        return ValueTask.CompletedTask;
    }

    /// <inheritdoc/>
    public ValueTask<IMessageConsumer> ConsumeAsync(string queue, ConsumeOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(queue);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Prefetch, 1, nameof(options));
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var consumer = new Consumer(this, GetQueue(queue), options.Prefetch) { Name = options.ConsumerName, QueueName = queue };
            _live.Add(consumer);
            return ValueTask.FromResult<IMessageConsumer>(consumer);
        }
    }

    /// <inheritdoc/>
    public ValueTask<QueueStatistics> GetQueueStatisticsAsync(string queue, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            var state = GetQueue(queue);
            var dead = _deadLetters.Count(d => d.Queue == queue);
            return ValueTask.FromResult(new QueueStatistics(queue, state.Ready.Count, state.DelayedCount, state.InFlight, dead));
        }
    }

    /// <inheritdoc/>
    public ValueTask<IReadOnlyList<string>> ListQueuesAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            return ValueTask.FromResult<IReadOnlyList<string>>([.. _queues.Keys.Order(StringComparer.Ordinal)]);
        }
    }

    /// <inheritdoc/>
    public ValueTask<long> PurgeAsync(string queue, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            var state = GetQueue(queue);
            long removed = state.Ready.Count;
            state.Ready.Clear();
            var kept = new List<(Message, (long, long))>();
            while (_delayed.TryDequeue(out var message, out var priority))
            {
                if (message.Queue == queue)
                {
                    removed++;
                }
                else
                {
                    kept.Add((message, priority));
                }
            }

            _delayed.EnqueueRange(kept);
            state.DelayedCount = 0;
            return ValueTask.FromResult(removed);
        }
    }

    /// <inheritdoc/>
    public ValueTask<IReadOnlyList<DeadLetter>> GetDeadLettersAsync(int maxCount, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            return ValueTask.FromResult<IReadOnlyList<DeadLetter>>([.. _deadLetters.Take(maxCount)]);
        }
    }

    /// <inheritdoc/>
    public ValueTask<int> RequeueDeadLettersAsync(int maxCount, CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            var moved = _deadLetters.Take(maxCount).ToList();
            _deadLetters.RemoveRange(0, moved.Count);
            foreach (var letter in moved)
            {
                Enqueue(new Message(letter.Queue, letter.Body.ToArray(), 0, Interlocked.Increment(ref _sequence)));
            }

            return ValueTask.FromResult(moved.Count);
        }
    }

    /// <inheritdoc/>
    public ValueTask DisposeAsync()
    {
        lock (_gate)
        {
            _disposed = true;
        }

        _delayTimer.Dispose();
        return ValueTask.CompletedTask;
    }

    private QueueState GetQueue(string queue)
    {
        if (!_queues.TryGetValue(queue, out var state))
        {
            state = new QueueState();
            _queues[queue] = state;
        }

        return state;
    }

    // Called under _gate.
    private void Enqueue(Message message)
    {
        var state = GetQueue(message.Queue);
        state.Ready.Enqueue(message, (-message.Priority, message.Sequence));
        state.Signal();
    }

    private void MoveDueMessages()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            var now = _time.GetUtcNow();
            while (_delayed.TryPeek(out var message, out var due) && due.DueTicks <= now.UtcTicks)
            {
                _delayed.Dequeue();
                GetQueue(message.Queue).DelayedCount--;
                Enqueue(message);
            }

            if (_delayed.TryPeek(out _, out var next))
            {
                var wait = new DateTimeOffset(next.DueTicks, TimeSpan.Zero) - now;
                _delayTimer.Change(wait > TimeSpan.Zero ? wait : TimeSpan.FromTicks(1), Timeout.InfiniteTimeSpan);
            }
        }
    }

    private void Settle(Delivery delivery, Settlement settlement, string? reason)
    {
        lock (_gate)
        {
            if (!delivery.Owner.TryRemove(delivery))
            {
                return; // already settled, or handed back when its consumer went away
            }

            var queue = GetQueue(delivery.Queue);
            queue.InFlight--;
            switch (settlement)
            {
                case Settlement.Release:
                    Enqueue(delivery.Message);
                    break;
                case Settlement.DeadLetter:
                    _deadLetters.Add(new DeadLetter(
                        "dl-" + Interlocked.Increment(ref _deadLetterSequence).ToString(CultureInfo.InvariantCulture),
                        delivery.Queue,
                        reason ?? string.Empty,
                        delivery.Message.Body,
                        _time.GetUtcNow()));
                    break;
            }
        }
    }

    private enum Settlement
    {
        Ack,
        Release,
        DeadLetter,
    }

    private sealed record Message(string Queue, byte[] Body, byte Priority, long Sequence)
    {
        public int DeliveryCount { get; set; }

        public string TaskId { get; init; } = string.Empty;

        public DateTimeOffset? Eta { get; init; }
    }

    private sealed class QueueState
    {
        private TaskCompletionSource _available = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public PriorityQueue<Message, (int Priority, long Sequence)> Ready { get; } = new();

        public long DelayedCount { get; set; }

        public long InFlight { get; set; }

        // Called under the broker's gate: wakes every consumer waiting for this queue.
        public void Signal()
        {
            var available = _available;
            _available = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            available.TrySetResult();
        }

        public Task WhenAvailable => _available.Task;
    }

    private sealed class Consumer : IMessageConsumer
    {
        private readonly InMemoryBroker _broker;
        private readonly QueueState _queue;
        private readonly PrefetchWindow<IBrokerDelivery> _window;
        private readonly HashSet<Delivery> _unsettled = [];
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _pump;

        public Consumer(InMemoryBroker broker, QueueState queue, int prefetch)
        {
            _broker = broker;
            _queue = queue;
            _window = new PrefetchWindow<IBrokerDelivery>(prefetch, refillBatch: 1); // no round trip to save
            _pump = Task.Run(PumpAsync);
        }

        public ChannelReader<IBrokerDelivery> Deliveries => _window.Reader;

        public string Name { get; init; } = string.Empty;

        public string QueueName { get; init; } = string.Empty;

        /// <summary>The deliveries not settled yet; read under the broker's gate.</summary>
        public IEnumerable<Delivery> Unsettled => _unsettled;

        public bool TryRemove(Delivery delivery)
        {
            if (_unsettled.Remove(delivery))
            {
                _window.Release();
                return true;
            }

            return false;
        }

        private async Task PumpAsync()
        {
            var token = _stop.Token;
            try
            {
                while (!token.IsCancellationRequested)
                {
                    await _window.WaitForRoomAsync(1, token).ConfigureAwait(false);
                    while (true)
                    {
                        Task wait;
                        lock (_broker._gate)
                        {
                            if (_queue.Ready.TryDequeue(out var message, out _))
                            {
                                message.DeliveryCount++;
                                _queue.InFlight++;
                                var delivery = new Delivery(this, message);
                                _unsettled.Add(delivery);
                                _window.TryAdd(delivery); // refused only while stopping: the dispose requeues it
                                break;
                            }

                            wait = _queue.WhenAvailable;
                        }

                        await wait.WaitAsync(token).ConfigureAwait(false);
                    }
                }
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
            }
        }

        public async ValueTask DisposeAsync()
        {
            if (_stop.IsCancellationRequested)
            {
                return;
            }

            await _stop.CancelAsync().ConfigureAwait(false);
            await _pump.ConfigureAwait(false);
            _window.Complete();
            lock (_broker._gate)
            {
                // Everything this consumer still holds goes back to the queue, ahead of newer messages.
                foreach (var delivery in _unsettled)
                {
                    _queue.InFlight--;
                    _broker.Enqueue(delivery.Message);
                }

                _unsettled.Clear();
                _broker._live.Remove(this);
            }

            _stop.Dispose();
        }

        public void Settle(Delivery delivery, Settlement settlement, string? reason) => _broker.Settle(delivery, settlement, reason);
    }

    private sealed class Delivery(Consumer owner, Message message) : IBrokerDelivery
    {
        public Consumer Owner { get; } = owner;

        public Message Message { get; } = message;

        public ReadOnlyMemory<byte> Body => Message.Body;

        public string Queue => Message.Queue;

        public int DeliveryCount => Message.DeliveryCount;

        public ValueTask AckAsync(CancellationToken cancellationToken = default)
        {
            Owner.Settle(this, Settlement.Ack, null);
            return ValueTask.CompletedTask;
        }

        public ValueTask ReleaseAsync(CancellationToken cancellationToken = default)
        {
            Owner.Settle(this, Settlement.Release, null);
            return ValueTask.CompletedTask;
        }

        public ValueTask DeadLetterAsync(string reason, CancellationToken cancellationToken = default)
        {
            Owner.Settle(this, Settlement.DeadLetter, reason);
            return ValueTask.CompletedTask;
        }
    }
}
