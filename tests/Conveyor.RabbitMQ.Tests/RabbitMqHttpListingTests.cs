using System.Collections.Concurrent;
using System.Diagnostics;
using Conveyor.Conformance;
using Conveyor.RabbitMQ.Internal;
using Conveyor.Redis;

namespace Conveyor.RabbitMQ.Tests;

/// <summary>
/// The RabbitMQ broker + Redis backend with the management plugin's URL configured (<c>?management=</c>), wired as
/// Conveyor.Hosting wires it: the provider wraps the Redis store so that listings of pending and scheduled tasks
/// come from the plugin's HTTP API on the node in <c>CONVEYOR_TEST_RABBITMQ_HTTP</c>.
/// </summary>
public sealed class RabbitMqHttpRedisProviderFactory : RabbitMqRedisProviderFactory
{
    public override string Name => "rabbitmq broker (management plugin's HTTP API) + redis backend";

    /// <summary>The broker URL a host would be given.</summary>
    public string BrokerUrl => $"{TestServers.AmqpUrl}?exchange={Exchange}&max_priority=10&management={Uri.EscapeDataString(TestServers.HttpUrl)}";

    public override async ValueTask<IManagementStore?> CreateManagementStoreAsync(IBroker broker, IResultBackend backend)
    {
        var inner = new RedisManagementStore(await MultiplexerAsync(), RedisOptions, ownsBroker: false);
        return new RabbitMqConveyorProvider([]).ExtendManagementStore(BrokerUrl, inner, EmptyServices.Instance);
    }

    private sealed class EmptyServices : IServiceProvider
    {
        public static readonly EmptyServices Instance = new();

        public object? GetService(Type serviceType) => null;
    }
}

/// <summary>
/// Listings of a RabbitMQ broker's messages through the management plugin's HTTP API, against the real plugin; and
/// the worker-control suite (revoke, pause, workers) through the wrapped store.
/// </summary>
public sealed class RabbitMqHttpListingTests(RabbitMqHttpRedisProviderFactory factory) : WorkerControlConformanceTests<RabbitMqHttpRedisProviderFactory>(factory)
{
    private static readonly TimeSpan Wait = ConveyorTestContext.Timeout;

    [Fact]
    public async Task ListTasks_PendingThroughHttpApi_PagesEveryTaskOnceInQueueOrderAndLeavesThemToRun()
    {
        await using var m = await CreateAsync();
        Assert.True(m.Store.Capabilities.HasFlag(ManagementCapabilities.ReadMessages));
        var ran = new ConcurrentBag<string>();
        m.T.Registry.Register("add", (TaskContext context, long a, long b) => { ran.Add(context.TaskId); return a + b; });
        m.T.Registry.Register("other", () => { });
        var sent = new List<AsyncResult>();
        for (var i = 0; i < 5; i++)
        {
            sent.Add(await m.T.Client.SendAsync(new Signature("add", TaskArgument.Int64(i), TaskArgument.Int64(10))));
        }

        await m.T.Client.SendAsync(new Signature("other"));

        var seen = new List<TaskSummary>();
        string? after = null;
        var pages = 0;
        do
        {
            var page = await m.Api.ListTasksAsync(new TaskQuery { State = ManagedTaskState.Pending, Name = "add", Limit = 2, After = after });
            Assert.True(page.Tasks.Count <= 2);
            seen.AddRange(page.Tasks);
            after = page.Next;
            pages++;
        }
        while (after is not null && pages < 10);

        Assert.Equal(sent.Select(s => s.TaskId), seen.Select(s => s.Id));
        Assert.All(seen, s => Assert.Equal(ManagedTaskState.Pending, s.State));
        Assert.All(seen, s => Assert.Equal(m.T.Queue, s.Queue));
        Assert.Equal([TaskArgument.Int64(3), TaskArgument.Int64(10)], seen[3].Args);
        Assert.Equal(6, (await m.Api.ListTasksAsync(new TaskQuery { State = ManagedTaskState.Pending, Limit = 100 })).Tasks.Count);

        // Peeked, not taken: every task still runs, once.
        await m.StartWorkerAsync();
        foreach (var result in sent)
        {
            await result.WaitAsync(Wait);
        }

        Assert.Equal(sent.Select(s => s.TaskId).Order(), ran.Order());
        await ConveyorTestContext.EventuallyAsync(
            async () => (await m.Api.ListTasksAsync(new TaskQuery { State = ManagedTaskState.Pending })).Tasks.Count == 0,
            "the queue is empty once the worker took everything");
    }

    [Fact]
    public async Task ListTasks_ScheduledThroughHttpApi_MergesDelayQueuesInEtaOrderAndAPeekedTaskStillRunsAtItsEta()
    {
        await using var m = await CreateAsync();
        var ran = new ConcurrentDictionary<string, DateTimeOffset>();
        m.T.Registry.Register("note", (TaskContext context) => ran.TryAdd(context.TaskId, DateTimeOffset.UtcNow));
        var now = DateTimeOffset.UtcNow;
        // 60 s and 30 s wait in machinery's delay.<ms>… queues, 3 s in Conveyor's conveyor.delay.<ms>… (shorter than 5 s).
        var inAMinute = await m.T.Client.SendAsync(new Signature("note") { Eta = now.AddSeconds(60) });
        var inHalfAMinute = await m.T.Client.SendAsync(new Signature("note") { Eta = now.AddSeconds(30) });
        var soon = await m.T.Client.SendAsync(new Signature("note") { Eta = now.AddSeconds(3) });
        var pending = await m.T.Client.SendAsync(new Signature("note"));

        var scheduled = (await m.Api.ListTasksAsync(new TaskQuery { State = ManagedTaskState.Scheduled })).Tasks;
        var pendingNow = (await m.Api.ListTasksAsync(new TaskQuery { State = ManagedTaskState.Pending })).Tasks;

        Assert.Equal([soon.TaskId, inHalfAMinute.TaskId, inAMinute.TaskId], scheduled.Select(t => t.Id));
        Assert.All(scheduled, t => Assert.Equal(m.T.Queue, t.Queue));
        Assert.InRange((scheduled[2].Eta!.Value - now.AddSeconds(60)).Duration(), TimeSpan.Zero, TimeSpan.FromMilliseconds(5));
        Assert.Equal([pending.TaskId], pendingNow.Select(t => t.Id));
        var page = await m.Api.ListTasksAsync(new TaskQuery { State = ManagedTaskState.Scheduled, Limit = 2 });
        Assert.Equal([soon.TaskId, inHalfAMinute.TaskId], page.Tasks.Select(t => t.Id));
        Assert.Equal([inAMinute.TaskId], (await m.Api.ListTasksAsync(new TaskQuery { State = ManagedTaskState.Scheduled, Limit = 2, After = page.Next })).Tasks.Select(t => t.Id));

        // The peek requeued the 3 s task: RabbitMQ keeps its expiry, so it runs at its ETA, not 3 s after the peek.
        await m.StartWorkerAsync();
        await soon.WaitAsync(Wait);
        var late = ran[soon.TaskId] - now.AddSeconds(3);
        Assert.InRange(late, TimeSpan.FromMilliseconds(-50), TimeSpan.FromSeconds(2));
        Assert.False(ran.ContainsKey(inHalfAMinute.TaskId));
    }

    [Fact]
    public async Task GetTask_PendingThroughHttpApi_FindsItsSignatureButDeleteAndRunNowSayWhyNot()
    {
        await using var m = await CreateAsync();
        var sent = await m.T.Client.SendAsync(new Signature("add", TaskArgument.Int64(7), TaskArgument.Int64(8)));
        var later = await m.T.Client.SendAsync(new Signature("add", TaskArgument.Int64(1), TaskArgument.Int64(1)) { Eta = DateTimeOffset.UtcNow.AddMinutes(5) });

        var detail = await m.Api.GetTaskAsync(sent.TaskId);
        var scheduled = await m.Api.GetTaskAsync(later.TaskId);

        Assert.NotNull(detail);
        Assert.Equal(ManagedTaskState.Pending, detail.Status);
        Assert.Equal([TaskArgument.Int64(7), TaskArgument.Int64(8)], detail.Signature!.Args);
        Assert.Equal(m.T.Queue, Assert.Single(detail.Messages).Queue);
        Assert.Equal(ManagedTaskState.Scheduled, scheduled!.Status);
        Assert.Equal(m.T.Queue, Assert.Single(scheduled.Messages).Queue);
        var delete = await Assert.ThrowsAsync<NotSupportedException>(async () => await m.Api.DeleteTaskAsync(sent.TaskId));
        Assert.Contains("revoke", delete.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<NotSupportedException>(async () => await m.Api.RunNowAsync(later.TaskId));

        // Revoking still works without deleting: the worker drops the message.
        var ran = new ConcurrentBag<string>();
        m.T.Registry.Register("add", (TaskContext context, long a, long b) => { ran.Add(context.TaskId); return a + b; });
        await m.Api.RevokeAsync([sent.TaskId]);
        var marker = await m.T.Client.SendAsync(new Signature("add", TaskArgument.Int64(0), TaskArgument.Int64(0)));
        await m.StartWorkerAsync();
        await marker.WaitAsync(Wait);
        Assert.Equal([marker.TaskId], ran);
    }

    [Fact]
    public async Task ListTasks_ActiveOnRabbitMq_ComesFromTheWorkersHeartbeats()
    {
        await using var m = await CreateAsync();
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        m.T.Registry.Register("hold", async () =>
        {
            entered.TrySetResult();
            await gate.Task;
        });
        var worker = await m.StartWorkerAsync();
        var held = await m.T.Client.SendAsync(new Signature("hold"));
        await entered.Task.WaitAsync(Wait);

        TaskSummary? active = null;
        await ConveyorTestContext.EventuallyAsync(
            async () => (active = (await m.Api.ListTasksAsync(new TaskQuery { State = ManagedTaskState.Active })).Tasks.SingleOrDefault()) is not null,
            "the held task is listed as active");
        gate.SetResult();
        await held.WaitAsync(Wait);

        Assert.Equal(held.TaskId, active!.Id);
        Assert.Equal(worker.Name, active.Worker);
    }

    [Fact]
    public async Task ListTasks_QuorumQueue_RefusedBecauseAPeekWouldCountAsADelivery()
    {
        await using var m = await CreateAsync();
        var queue = "conveyor-quorum-" + Guid.NewGuid().ToString("N")[..8];
        await using (var connection = await TestServers.ConnectRawAsync())
        await using (var channel = await connection.CreateChannelAsync())
        {
            await channel.QueueDeclareAsync(queue, durable: true, exclusive: false, autoDelete: false, arguments: new Dictionary<string, object?> { ["x-queue-type"] = "quorum" });
        }

        try
        {
            var refused = await Assert.ThrowsAsync<NotSupportedException>(async () => await m.Api.ListTasksAsync(new TaskQuery { State = ManagedTaskState.Pending, Queue = queue }));
            Assert.Contains("quorum", refused.Message, StringComparison.Ordinal);
        }
        finally
        {
            await using var connection = await TestServers.ConnectRawAsync();
            await using var channel = await connection.CreateChannelAsync();
            await channel.QueueDeleteAsync(queue, ifUnused: false, ifEmpty: false);
        }
    }

    [Fact]
    public async Task HttpApi_WrongPassword_FailsSayingSoWithoutThePassword()
    {
        const string password = "not-the-password-4711";
        var url = new UriBuilder(TestServers.HttpUrl) { UserName = "guest", Password = password }.Uri;
        using var api = new RabbitMqHttpApi(url, "guest", password, "/");

        var error = await Assert.ThrowsAsync<HttpRequestException>(() => api.PeekAsync("machinery_tasks", 1, CancellationToken.None));

        Assert.Contains("401", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(password, error.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain(password, api.BaseAddress.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task HttpApi_QueueCounts_SeeWhatWasPublished()
    {
        await using var m = await CreateAsync();
        await m.T.Client.SendAsync(new Signature("add", TaskArgument.Int64(1), TaskArgument.Int64(1)));
        await m.T.Client.SendAsync(new Signature("add", TaskArgument.Int64(2), TaskArgument.Int64(2)));
        var path = new Uri(TestServers.AmqpUrl.ToString()).AbsolutePath.Trim('/');
        using var api = new RabbitMqHttpApi(new Uri(TestServers.HttpUrl), "guest", "guest", path.Length == 0 ? "/" : path);

        // Counts come from the node's statistics (every second on the test node): they lag, listings do not.
        var clock = Stopwatch.StartNew();
        HttpQueue? queue = null;
        await ConveyorTestContext.EventuallyAsync(async () => (queue = await api.GetQueueAsync(m.T.Queue, CancellationToken.None))?.MessagesReady == 2, "the statistics show both messages");
        Assert.Null(await api.GetQueueAsync("no-such-queue-" + Guid.NewGuid().ToString("N"), CancellationToken.None));
        Assert.Equal(2, queue!.Messages);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), $"statistics took {clock.Elapsed}");
    }
}
