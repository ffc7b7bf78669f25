using Conveyor.Redis;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;

namespace Conveyor.Cli;

/// <summary>
/// Opens the Redis provider for redis://, rediss:// and redis+sentinel:// URLs. One multiplexer per URL and process:
/// a broker and a backend on the same URL share it, and it closes when the last of them is disposed (whatever the
/// order), so the broker's consumers never lose their connection before they have handed their messages back.
/// </summary>
internal static class RedisConnections
{
    private static readonly Lock Gate = new();
    private static readonly Dictionary<string, SharedConnection> Connections = new(StringComparer.Ordinal);

    public static async ValueTask<IBroker> OpenBrokerAsync(string url, ILoggerFactory loggerFactory, CancellationToken cancellationToken)
    {
        var connection = await AcquireAsync(url, cancellationToken).ConfigureAwait(false);
        var broker = new RedisBroker(connection.Multiplexer, Options(url), loggerFactory: loggerFactory);
        return new OwnedBroker(broker, connection);
    }

    public static async ValueTask<IResultBackend> OpenBackendAsync(string url, ILoggerFactory loggerFactory, CancellationToken cancellationToken)
    {
        var connection = await AcquireAsync(url, cancellationToken).ConfigureAwait(false);
        var backend = new RedisResultBackend(connection.Multiplexer, Options(url), loggerFactory: loggerFactory);
        return new OwnedBackend(backend, connection);
    }

    public static async ValueTask<LockHandle> OpenLockAsync(string url, ILoggerFactory loggerFactory, CancellationToken cancellationToken)
    {
        var connection = await AcquireAsync(url, cancellationToken).ConfigureAwait(false);
        return new LockHandle(new RedisDistributedLock(connection.Multiplexer, Options(url), loggerFactory: loggerFactory), new ConnectionRelease(connection));
    }

    private sealed class ConnectionRelease(SharedConnection connection) : IAsyncDisposable
    {
        public ValueTask DisposeAsync() => connection.ReleaseAsync();
    }

    // The URL's query settings (?visibility_timeout=10&key_prefix=…), already checked when the connection was opened.
    private static RedisConveyorOptions Options(string url)
    {
        var options = new RedisConveyorOptions();
        RedisUrl.ApplyOptions(url, options);
        return options;
    }

    private static async Task<SharedConnection> AcquireAsync(string url, CancellationToken cancellationToken)
    {
        ConfigurationOptions configuration;
        try
        {
            configuration = RedisUrl.Parse(url);
        }
        catch (FormatException ex)
        {
            throw new CliException(ex.Message);
        }

        SharedConnection? shared;
        lock (Gate)
        {
            if (Connections.TryGetValue(url, out shared))
            {
                shared.References++;
            }
        }

        if (shared is not null)
        {
            return shared;
        }

        // Fail at once with a clear message when Redis is not there at start; once connected, StackExchange.Redis
        // reconnects on its own and the consumers retry, so a worker outlives a Redis restart.
        configuration.AbortOnConnectFail = true;
        configuration.ClientName = $"conveyor-{Environment.ProcessId}";

        ConnectionMultiplexer multiplexer;
        try
        {
            multiplexer = await ConnectionMultiplexer.ConnectAsync(configuration).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (RedisConnectionException ex)
        {
            throw new CliException($"cannot connect to {url}: {ex.Message}");
        }

        lock (Gate)
        {
            if (Connections.TryGetValue(url, out shared))
            {
                // Another open won the race: use its connection.
                shared.References++;
            }
            else
            {
                Connections[url] = new SharedConnection(url, multiplexer);
                return Connections[url];
            }
        }

        await multiplexer.DisposeAsync().ConfigureAwait(false);
        return shared;
    }

    private sealed class SharedConnection(string url, IConnectionMultiplexer multiplexer)
    {
        public IConnectionMultiplexer Multiplexer { get; } = multiplexer;

        public int References { get; set; } = 1;

        public async ValueTask ReleaseAsync()
        {
            lock (Gate)
            {
                if (--References > 0)
                {
                    return;
                }

                Connections.Remove(url);
            }

            await Multiplexer.CloseAsync().ConfigureAwait(false);
            await Multiplexer.DisposeAsync().ConfigureAwait(false);
        }
    }

    private sealed class OwnedBroker(RedisBroker inner, SharedConnection connection) : IBroker
    {
        public BrokerCapabilities Capabilities => inner.Capabilities;

        public ValueTask PublishAsync(OutgoingMessage message, CancellationToken cancellationToken = default) => inner.PublishAsync(message, cancellationToken);

        public ValueTask<IMessageConsumer> ConsumeAsync(string queue, ConsumeOptions options, CancellationToken cancellationToken = default) => inner.ConsumeAsync(queue, options, cancellationToken);

        public ValueTask<QueueStatistics> GetQueueStatisticsAsync(string queue, CancellationToken cancellationToken = default) => inner.GetQueueStatisticsAsync(queue, cancellationToken);

        public ValueTask<IReadOnlyList<string>> ListQueuesAsync(CancellationToken cancellationToken = default) => inner.ListQueuesAsync(cancellationToken);

        public ValueTask<long> PurgeAsync(string queue, CancellationToken cancellationToken = default) => inner.PurgeAsync(queue, cancellationToken);

        public ValueTask<IReadOnlyList<DeadLetter>> GetDeadLettersAsync(int maxCount, CancellationToken cancellationToken = default) => inner.GetDeadLettersAsync(maxCount, cancellationToken);

        public ValueTask<int> RequeueDeadLettersAsync(int maxCount, CancellationToken cancellationToken = default) => inner.RequeueDeadLettersAsync(maxCount, cancellationToken);

        public async ValueTask DisposeAsync()
        {
            await inner.DisposeAsync();
            await connection.ReleaseAsync();
        }
    }

    private sealed class OwnedBackend(RedisResultBackend inner, SharedConnection connection) : IResultBackend
    {
        public ResultBackendCapabilities Capabilities => inner.Capabilities;

        public ValueTask SetStateAsync(TaskStateRecord state, CancellationToken cancellationToken = default) => inner.SetStateAsync(state, cancellationToken);

        public ValueTask<TaskStateRecord?> GetStateAsync(string taskId, CancellationToken cancellationToken = default) => inner.GetStateAsync(taskId, cancellationToken);

        public ValueTask<IReadOnlyList<TaskStateRecord?>> GetStatesAsync(IReadOnlyList<string> taskIds, CancellationToken cancellationToken = default) => inner.GetStatesAsync(taskIds, cancellationToken);

        public ValueTask InitGroupAsync(GroupMeta meta, CancellationToken cancellationToken = default) => inner.InitGroupAsync(meta, cancellationToken);

        public ValueTask<GroupMeta?> GetGroupMetaAsync(string groupId, CancellationToken cancellationToken = default) => inner.GetGroupMetaAsync(groupId, cancellationToken);

        public ValueTask<GroupCompletion> CompleteGroupMemberAsync(string groupId, string taskId, bool succeeded, string? traceParent = null, CancellationToken cancellationToken = default) =>
            inner.CompleteGroupMemberAsync(groupId, taskId, succeeded, traceParent, cancellationToken);

        public ValueTask<IReadOnlyList<string>> GetGroupMemberTraceParentsAsync(string groupId, int maxCount, CancellationToken cancellationToken = default) =>
            inner.GetGroupMemberTraceParentsAsync(groupId, maxCount, cancellationToken);

        public ValueTask<ChordClaim> ClaimChordAsync(string groupId, string claimantId, CancellationToken cancellationToken = default) => inner.ClaimChordAsync(groupId, claimantId, cancellationToken);

        public ValueTask MarkChordTriggeredAsync(string groupId, CancellationToken cancellationToken = default) => inner.MarkChordTriggeredAsync(groupId, cancellationToken);

        public ValueTask WaitForChangeAsync(string taskId, TimeSpan maxWait, CancellationToken cancellationToken = default) => inner.WaitForChangeAsync(taskId, maxWait, cancellationToken);

        public ValueTask DeleteStateAsync(string taskId, CancellationToken cancellationToken = default) => inner.DeleteStateAsync(taskId, cancellationToken);

        public ValueTask DeleteGroupAsync(string groupId, CancellationToken cancellationToken = default) => inner.DeleteGroupAsync(groupId, cancellationToken);

        public async ValueTask DisposeAsync()
        {
            await inner.DisposeAsync();
            await connection.ReleaseAsync();
        }
    }
}
