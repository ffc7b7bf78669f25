using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Threading.Channels;
using Amazon.SQS.Model;

namespace Conveyor.Sqs.Internal;

/// <summary>
/// One subscription to an SQS queue, as three small loops: the receiver long-polls for as many messages as the
/// prefetch allows (up to 10 a call), the heartbeat extends the visibility of every unsettled message, and the
/// deleter acknowledges in batches of up to 10 whatever is waiting.
/// </summary>
internal sealed class SqsConsumer : IMessageConsumer
{
    private readonly SqsBroker _broker;
    private readonly SqsQueue _queue;
    private readonly PrefetchWindow<IBrokerDelivery> _window;
    private readonly Channel<PendingDelete> _deletes = Channel.CreateUnbounded<PendingDelete>(new UnboundedChannelOptions { SingleReader = true });
    private readonly ConcurrentDictionary<SqsDelivery, byte> _unsettled = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly CancellationTokenSource _stopDeletes = new();
    private Task _receiver = Task.CompletedTask;
    private Task _heartbeat = Task.CompletedTask;
    private Task _deleter = Task.CompletedTask;
    private int _stopped;

    public SqsConsumer(SqsBroker broker, SqsQueue queue, int prefetch)
    {
        _broker = broker;
        _queue = queue;
        _window = new PrefetchWindow<IBrokerDelivery>(prefetch, refillBatch: SqsBroker.MaxBatch);
    }

    public ChannelReader<IBrokerDelivery> Deliveries => _window.Reader;

    public void Start()
    {
        _receiver = Task.Run(ReceiveLoopAsync);
        _heartbeat = Task.Run(HeartbeatLoopAsync);
        _deleter = Task.Run(DeleteLoopAsync);
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
        {
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(_receiver, _heartbeat).ConfigureAwait(false);
        _window.Complete();

        // Acknowledgements already asked for go out first; then whatever is still unsettled goes back at once.
        _deletes.Writer.TryComplete();
        await _deleter.ConfigureAwait(false);
        var left = _unsettled.Keys.Where(d => d.TrySettle()).ToList();
        _unsettled.Clear();
        if (left.Count > 0)
        {
            try
            {
                await _broker.ChangeVisibilityAsync(_queue.Url, [.. left.Select(d => d.ReceiptHandle)], TimeSpan.Zero, CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                Log.HandBackFailed(_broker.Logger, ex, _queue.Name, left.Count);
            }
        }

        _broker.Forget(this);
        _stop.Dispose();
        _stopDeletes.Dispose();
    }

    public async ValueTask CrashAsync()
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
        {
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        await _stopDeletes.CancelAsync().ConfigureAwait(false);
        _deletes.Writer.TryComplete();
        await Task.WhenAll(_receiver, _heartbeat, _deleter).ConfigureAwait(false);
        _window.Complete();
        foreach (var delivery in _unsettled.Keys)
        {
            delivery.TrySettle();
        }

        _unsettled.Clear();
        _broker.Forget(this);
    }

    private async Task ReceiveLoopAsync()
    {
        var token = _stop.Token;
        var options = _broker.Options;
        var failures = 0;
        while (!token.IsCancellationRequested)
        {
            try
            {
                // Each receive is a billed request: while deliveries are buffered, wait for a whole batch of room.
                var wanted = await _window.WaitForRoomAsync(SqsBroker.MaxBatch, token).ConfigureAwait(false);
                var response = await _broker.Client.ReceiveMessageAsync(
                    new ReceiveMessageRequest
                    {
                        QueueUrl = _queue.Url,
                        MaxNumberOfMessages = wanted,
                        WaitTimeSeconds = (int)options.WaitTime.TotalSeconds,
                        VisibilityTimeout = (int)options.VisibilityTimeout.TotalSeconds,
                        MessageAttributeNames = ["All"],
                        MessageSystemAttributeNames = ["ApproximateReceiveCount"],
                    },
                    token).ConfigureAwait(false);
                failures = 0;
                foreach (var message in response.Messages ?? [])
                {
                    if (await RedelayIfEarlyAsync(message, token).ConfigureAwait(false))
                    {
                        continue;
                    }

                    var delivery = new SqsDelivery(this, message);
                    _unsettled.TryAdd(delivery, 0);
                    _window.TryAdd(delivery); // refused only while stopping: the stop hands it back with the rest
                }
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex)
            {
                var delay = TimeSpan.FromMilliseconds(Math.Min(5000, 100 * (1 << Math.Min(failures++, 6))));
                Log.LoopFailed(_broker.Logger, ex, _queue.Name, "receive", delay);
                await DelayAsync(delay, token).ConfigureAwait(false);
            }
        }
    }

    // A message held for an ETA beyond SQS's 15 minutes arrives early: send it again for the time left.
    private async Task<bool> RedelayIfEarlyAsync(Message message, CancellationToken cancellationToken)
    {
        if (_queue.Fifo
            || message.MessageAttributes is not { } attributes
            || !attributes.TryGetValue(SqsBroker.EtaAttribute, out var etaAttribute)
            || !long.TryParse(etaAttribute.StringValue, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var etaMs))
        {
            return false;
        }

        var eta = DateTimeOffset.FromUnixTimeMilliseconds(etaMs);
        var now = _broker.Time.GetUtcNow();
        if (eta <= now)
        {
            return false;
        }

        var request = new SendMessageRequest { QueueUrl = _queue.Url, MessageBody = message.Body, MessageAttributes = attributes };
        SqsBroker.SetDelay(request, eta, now);
        await _broker.Client.SendMessageAsync(request, cancellationToken).ConfigureAwait(false);
        await _broker.Client.DeleteMessageAsync(new DeleteMessageRequest { QueueUrl = _queue.Url, ReceiptHandle = message.ReceiptHandle }, cancellationToken).ConfigureAwait(false);
        Log.Redelayed(_broker.Logger, _queue.Name, message.MessageId, eta);
        return true;
    }

    private async Task HeartbeatLoopAsync()
    {
        var token = _stop.Token;
        var interval = _broker.Options.EffectiveHeartbeatInterval;
        while (!token.IsCancellationRequested)
        {
            if (!await DelayAsync(interval, token).ConfigureAwait(false))
            {
                break;
            }

            var held = _unsettled.Keys.ToList();
            for (var start = 0; start < held.Count; start += SqsBroker.MaxBatch)
            {
                var batch = held.Skip(start).Take(SqsBroker.MaxBatch).ToList();
                try
                {
                    var response = await _broker.Client.ChangeMessageVisibilityBatchAsync(
                        new ChangeMessageVisibilityBatchRequest
                        {
                            QueueUrl = _queue.Url,
                            Entries = [.. batch.Select((d, i) => new ChangeMessageVisibilityBatchRequestEntry
                            {
                                Id = i.ToString(CultureInfo.InvariantCulture),
                                ReceiptHandle = d.ReceiptHandle,
                                VisibilityTimeout = (int)_broker.Options.VisibilityTimeout.TotalSeconds,
                            })],
                        },
                        token).ConfigureAwait(false);

                    // Entries of messages settled meanwhile fail (their receipt handle is gone); only the others matter.
                    var failed = (response.Failed ?? []).Count(f => int.TryParse(f.Id, NumberStyles.None, CultureInfo.InvariantCulture, out var i) && i < batch.Count && _unsettled.ContainsKey(batch[i]));
                    if (failed > 0)
                    {
                        Log.HeartbeatFailed(_broker.Logger, _queue.Name, failed);
                    }
                }
                catch (OperationCanceledException) when (token.IsCancellationRequested)
                {
                    return;
                }
                catch (Exception ex)
                {
                    Log.LoopFailed(_broker.Logger, ex, _queue.Name, "heartbeat", interval);
                }
            }
        }
    }

    private async Task DeleteLoopAsync()
    {
        var token = _stopDeletes.Token;
        var batch = new List<PendingDelete>(SqsBroker.MaxBatch);
        try
        {
            while (await _deletes.Reader.WaitToReadAsync(token).ConfigureAwait(false))
            {
                while (batch.Count < SqsBroker.MaxBatch && _deletes.Reader.TryRead(out var pending))
                {
                    batch.Add(pending);
                }

                await DeleteBatchAsync(batch, token).ConfigureAwait(false);
                batch.Clear();
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            foreach (var pending in batch)
            {
                pending.Done.TrySetCanceled(token);
            }
        }
    }

    private async Task DeleteBatchAsync(List<PendingDelete> batch, CancellationToken cancellationToken)
    {
        try
        {
            var response = await _broker.Client.DeleteMessageBatchAsync(
                new DeleteMessageBatchRequest
                {
                    QueueUrl = _queue.Url,
                    Entries = [.. batch.Select((p, i) => new DeleteMessageBatchRequestEntry { Id = i.ToString(CultureInfo.InvariantCulture), ReceiptHandle = p.ReceiptHandle })],
                },
                cancellationToken).ConfigureAwait(false);
            var failures = (response.Failed ?? []).ToDictionary(f => f.Id, StringComparer.Ordinal);
            for (var i = 0; i < batch.Count; i++)
            {
                if (failures.TryGetValue(i.ToString(CultureInfo.InvariantCulture), out var failure))
                {
                    batch[i].Done.TrySetException(new InvalidOperationException($"SQS did not delete a message of queue {_queue.Name}: {failure.Code} {failure.Message}"));
                }
                else
                {
                    batch[i].Done.TrySetResult();
                }
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            foreach (var pending in batch)
            {
                pending.Done.TrySetException(ex);
            }
        }
    }

    private async Task<bool> DelayAsync(TimeSpan delay, CancellationToken token)
    {
        try
        {
            await Task.Delay(delay, _broker.Time, token).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            return false;
        }
    }

    private void Finish(SqsDelivery delivery)
    {
        if (_unsettled.TryRemove(delivery, out _))
        {
            _window.Release();
        }
    }

    private async ValueTask AckAsync(SqsDelivery delivery, CancellationToken cancellationToken)
    {
        if (!delivery.TrySettle())
        {
            return;
        }

        try
        {
            var pending = new PendingDelete(delivery.ReceiptHandle, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
            if (_deletes.Writer.TryWrite(pending))
            {
                await pending.Done.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            else
            {
                // The consumer has stopped (a task finished during shutdown): delete on its own.
                await _broker.Client.DeleteMessageAsync(new DeleteMessageRequest { QueueUrl = _queue.Url, ReceiptHandle = delivery.ReceiptHandle }, cancellationToken).ConfigureAwait(false);
            }
        }
        finally
        {
            Finish(delivery);
        }
    }

    private async ValueTask ReleaseAsync(SqsDelivery delivery, CancellationToken cancellationToken)
    {
        if (!delivery.TrySettle())
        {
            return;
        }

        try
        {
            await _broker.Client.ChangeMessageVisibilityAsync(
                new ChangeMessageVisibilityRequest { QueueUrl = _queue.Url, ReceiptHandle = delivery.ReceiptHandle, VisibilityTimeout = 0 },
                cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            Finish(delivery);
        }
    }

    private async ValueTask DeadLetterAsync(SqsDelivery delivery, string reason, CancellationToken cancellationToken)
    {
        if (!delivery.TrySettle())
        {
            return;
        }

        try
        {
            var deadLetterUrl = await _broker.DeadLetterQueueUrlAsync(_queue.SqsName, cancellationToken).ConfigureAwait(false);
            var request = new SendMessageRequest
            {
                QueueUrl = deadLetterUrl,
                MessageBody = delivery.Message.Body,
                MessageAttributes = new Dictionary<string, MessageAttributeValue>(StringComparer.Ordinal)
                {
                    [SqsBroker.ReasonAttribute] = new() { DataType = "String", StringValue = reason.Length == 0 ? "(no reason given)" : reason },
                    [SqsBroker.QueueAttribute] = new() { DataType = "String", StringValue = _queue.Name },
                    [SqsBroker.DeadLetteredAtAttribute] = new() { DataType = "Number", StringValue = _broker.Time.GetUtcNow().ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture) },
                },
            };
            if (_queue.Fifo)
            {
                request.MessageGroupId = "conveyor-dead-letters";
                request.MessageDeduplicationId = delivery.Message.MessageId;
            }

            // Stored before it leaves the queue: a crash in between keeps a copy in both, never in neither.
            await _broker.Client.SendMessageAsync(request, cancellationToken).ConfigureAwait(false);
            await _broker.Client.DeleteMessageAsync(new DeleteMessageRequest { QueueUrl = _queue.Url, ReceiptHandle = delivery.ReceiptHandle }, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            Finish(delivery);
        }
    }

    private sealed record PendingDelete(string ReceiptHandle, TaskCompletionSource Done);

    private sealed class SqsDelivery(SqsConsumer owner, Message message) : IBrokerDelivery
    {
        private readonly byte[] _body = Encoding.UTF8.GetBytes(message.Body ?? string.Empty);
        private int _settled;

        public Message Message { get; } = message;

        public string ReceiptHandle => Message.ReceiptHandle;

        public ReadOnlyMemory<byte> Body => _body;

        public string Queue => owner._queue.Name;

        public int DeliveryCount => Message.Attributes is { } attributes
            && attributes.TryGetValue("ApproximateReceiveCount", out var count)
            && int.TryParse(count, NumberStyles.None, CultureInfo.InvariantCulture, out var value) ? value : 1;

        public bool TrySettle() => Interlocked.Exchange(ref _settled, 1) == 0;

        public ValueTask AckAsync(CancellationToken cancellationToken = default) => owner.AckAsync(this, cancellationToken);

        public ValueTask ReleaseAsync(CancellationToken cancellationToken = default) => owner.ReleaseAsync(this, cancellationToken);

        public ValueTask DeadLetterAsync(string reason, CancellationToken cancellationToken = default) => owner.DeadLetterAsync(this, reason, cancellationToken);
    }
}
