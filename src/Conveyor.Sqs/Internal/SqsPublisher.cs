using System.Globalization;
using System.Text;
using System.Threading.Channels;
using Amazon.SQS.Model;

namespace Conveyor.Sqs.Internal;

/// <summary>
/// Sends one queue's publishes: whatever is waiting goes out in one <c>SendMessageBatch</c> (up to 10 messages and
/// 256 KiB), so concurrent publishers share round trips; a lone publish goes at once. Order is kept, and each
/// publish completes when SQS has accepted its own entry.
/// </summary>
internal sealed class SqsPublisher : IAsyncDisposable
{
    private const int MaxBatchBytes = 256 * 1024;
    private readonly SqsBroker _broker;
    private readonly SqsQueue _queue;
    private readonly Channel<Pending> _pending = Channel.CreateUnbounded<Pending>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Task _loop;

    public SqsPublisher(SqsBroker broker, SqsQueue queue)
    {
        _broker = broker;
        _queue = queue;
        _loop = Task.Run(SendLoopAsync);
    }

    public async ValueTask SendAsync(SendMessageRequest request, CancellationToken cancellationToken)
    {
        var pending = new Pending(request, Encoding.UTF8.GetByteCount(request.MessageBody), new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        ObjectDisposedException.ThrowIf(!_pending.Writer.TryWrite(pending), _broker);

        await pending.Done.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        _pending.Writer.TryComplete();
        await _loop.ConfigureAwait(false);
    }

    private async Task SendLoopAsync()
    {
        var batch = new List<Pending>(SqsBroker.MaxBatch);
        Pending? carried = null;
        while (carried is not null || await _pending.Reader.WaitToReadAsync().ConfigureAwait(false))
        {
            var bytes = 0;
            if (carried is { } first)
            {
                batch.Add(first);
                bytes = first.Bytes;
                carried = null;
            }

            while (batch.Count < SqsBroker.MaxBatch && _pending.Reader.TryRead(out var next))
            {
                if (batch.Count > 0 && bytes + next.Bytes > MaxBatchBytes)
                {
                    carried = next; // the next batch starts with it
                    break;
                }

                batch.Add(next);
                bytes += next.Bytes;
            }

            if (batch.Count > 0)
            {
                await SendBatchAsync(batch).ConfigureAwait(false);
                batch.Clear();
            }
        }
    }

    private async Task SendBatchAsync(List<Pending> batch)
    {
        try
        {
            if (batch.Count == 1)
            {
                await _broker.Client.SendMessageAsync(batch[0].Request, CancellationToken.None).ConfigureAwait(false);
                batch[0].Done.TrySetResult();
                return;
            }

            var response = await _broker.Client.SendMessageBatchAsync(
                new SendMessageBatchRequest
                {
                    QueueUrl = _queue.Url,
                    Entries = [.. batch.Select((p, i) => new SendMessageBatchRequestEntry
                    {
                        Id = i.ToString(CultureInfo.InvariantCulture),
                        MessageBody = p.Request.MessageBody,
                        DelaySeconds = p.Request.DelaySeconds,
                        MessageAttributes = p.Request.MessageAttributes,
                        MessageGroupId = p.Request.MessageGroupId,
                        MessageDeduplicationId = p.Request.MessageDeduplicationId,
                    })],
                },
                CancellationToken.None).ConfigureAwait(false);
            var failures = (response.Failed ?? []).ToDictionary(f => f.Id, StringComparer.Ordinal);
            for (var i = 0; i < batch.Count; i++)
            {
                if (failures.TryGetValue(i.ToString(CultureInfo.InvariantCulture), out var failure))
                {
                    batch[i].Done.TrySetException(new InvalidOperationException($"SQS did not accept a message for queue {_queue.Name}: {failure.Code} {failure.Message}"));
                }
                else
                {
                    batch[i].Done.TrySetResult();
                }
            }
        }
        catch (Exception ex)
        {
            foreach (var pending in batch)
            {
                pending.Done.TrySetException(ex);
            }
        }
    }

    private sealed record Pending(SendMessageRequest Request, int Bytes, TaskCompletionSource Done);
}
