using System.Diagnostics;
using System.Globalization;
using Conveyor.Diagnostics;
using Conveyor.Internal;
using Conveyor.Serialization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Conveyor;

/// <summary>
/// Publishes tasks, groups, chords and chains, and reads their results (machinery's <c>Server</c>, as an async
/// client). Thread-safe; make one per process.
/// </summary>
public sealed class ConveyorClient
{
    private const int EnqueueCapacity = 4096;
    private const int MaxEnqueueBatch = 256;

    // Batches of publishes may overlap: nothing orders concurrent publishers, and a caller that awaits each publish
    // is ordered anyway (a client that pipelines, like StackExchange.Redis, also keeps the batches in order).
    private const int EnqueueWritesInFlight = 4;

    private readonly ILogger _logger;
    private GroupCommitQueue<PendingPublish>? _enqueuer;

    /// <summary>Creates a client.</summary>
    /// <param name="broker">Where tasks are published.</param>
    /// <param name="backend">Where states and results are stored.</param>
    /// <param name="options">Settings; defaults when <see langword="null"/>.</param>
    /// <param name="timeProvider">The clock; the system clock when <see langword="null"/>.</param>
    /// <param name="loggerFactory">Logging; none when <see langword="null"/>.</param>
    /// <param name="diagnostics">Metrics; a process-wide instance when <see langword="null"/>.</param>
    public ConveyorClient(
        IBroker broker,
        IResultBackend backend,
        ConveyorClientOptions? options = null,
        TimeProvider? timeProvider = null,
        ILoggerFactory? loggerFactory = null,
        ConveyorDiagnostics? diagnostics = null)
    {
        ArgumentNullException.ThrowIfNull(broker);
        ArgumentNullException.ThrowIfNull(backend);
        Broker = broker;
        Backend = backend;
        Options = options ?? new ConveyorClientOptions();
        TimeProvider = timeProvider ?? TimeProvider.System;
        Diagnostics = diagnostics ?? ConveyorDiagnostics.Shared;
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<ConveyorClient>();
    }

    /// <summary>The broker.</summary>
    public IBroker Broker { get; }

    /// <summary>The result backend.</summary>
    public IResultBackend Backend { get; }

    /// <summary>The settings.</summary>
    public ConveyorClientOptions Options { get; }

    /// <summary>The clock.</summary>
    public TimeProvider TimeProvider { get; }

    /// <summary>The metrics.</summary>
    public ConveyorDiagnostics Diagnostics { get; }

    /// <summary>Publishes a task. Its state is PENDING once this returns.</summary>
    /// <param name="signature">The task.</param>
    /// <param name="cancellationToken">Cancels the publish.</param>
    /// <returns>A handle to the task's result.</returns>
    public async ValueTask<AsyncResult> SendAsync(Signature signature, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(signature);
        await PublishAsync(signature, cancellationToken).ConfigureAwait(false);
        return new AsyncResult(signature, this);
    }

    /// <summary>Publishes a group: records the group's members, then publishes them in parallel.</summary>
    /// <param name="group">The group.</param>
    /// <param name="sendConcurrency">How many to publish at once; 0 uses <see cref="ConveyorClientOptions.GroupSendConcurrency"/>.</param>
    /// <param name="cancellationToken">Cancels the publish.</param>
    /// <returns>Handles to the members' results.</returns>
    public async ValueTask<GroupResult> SendGroupAsync(TaskGroup group, int sendConcurrency = 0, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(group);
        await Backend.InitGroupAsync(
            new GroupMeta
            {
                GroupId = group.GroupId,
                TaskIds = [.. group.Tasks.Select(t => t.Id)],
                CreatedAt = TimeProvider.GetUtcNow(),
            },
            cancellationToken).ConfigureAwait(false);

        var concurrency = sendConcurrency > 0 ? sendConcurrency : Options.GroupSendConcurrency;
        await Parallel.ForEachAsync(
            group.Tasks,
            new ParallelOptions { MaxDegreeOfParallelism = concurrency > 0 ? concurrency : -1, CancellationToken = cancellationToken },
            async (task, ct) => await PublishAsync(task, ct).ConfigureAwait(false)).ConfigureAwait(false);

        return new GroupResult(group.GroupId, [.. group.Tasks.Select(t => new AsyncResult(t, this))]);
    }

    /// <summary>Publishes a chord: its group now, its callback when every member has succeeded.</summary>
    /// <param name="chord">The chord.</param>
    /// <param name="sendConcurrency">How many members to publish at once; 0 uses the client's setting.</param>
    /// <param name="cancellationToken">Cancels the publish.</param>
    /// <returns>Handles to the members' and the callback's results.</returns>
    public async ValueTask<ChordResult> SendChordAsync(Chord chord, int sendConcurrency = 0, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(chord);
        var group = await SendGroupAsync(chord.Group, sendConcurrency, cancellationToken).ConfigureAwait(false);
        return new ChordResult(group, new AsyncResult(chord.Callback, this));
    }

    /// <summary>Publishes a chain: its first task now, each next one when the previous succeeds.</summary>
    /// <param name="chain">The chain.</param>
    /// <param name="cancellationToken">Cancels the publish.</param>
    /// <returns>Handles to every task's result.</returns>
    public async ValueTask<ChainResult> SendChainAsync(Chain chain, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(chain);
        await PublishAsync(chain.Tasks[0], cancellationToken).ConfigureAwait(false);
        return new ChainResult([.. chain.Tasks.Select(t => new AsyncResult(t, this))]);
    }

    /// <summary>Gets a handle to a task's result by id (for a task published elsewhere).</summary>
    /// <param name="taskId">The task id.</param>
    /// <returns>The handle.</returns>
    public AsyncResult GetResult(string taskId)
    {
        ArgumentException.ThrowIfNullOrEmpty(taskId);
        return new AsyncResult(new Signature { Id = taskId }, this);
    }

    /// <summary>
    /// Runs the pre-publish hook, records PENDING and publishes; the publish span (a child of the current span, so
    /// a callback, a chain's next step or a retry published by a worker stays in the task's trace) carries the trace
    /// context, and a chord callback's span carries <paramref name="links"/> to its members.
    /// </summary>
    internal async ValueTask PublishAsync(Signature signature, CancellationToken cancellationToken, IEnumerable<ActivityLink>? links = null)
    {
        if (signature.Id.Length == 0)
        {
            signature.Id = TaskIds.NewTaskId();
        }

        if (string.IsNullOrEmpty(signature.RoutingKey))
        {
            signature.RoutingKey = Options.DefaultQueue;
        }

        var queue = signature.RoutingKey;
        var headers = signature.Headers; // machinery publishes "Headers":{} at the top level
        var source = ConveyorDiagnostics.ActivitySource;
        using var activity = source.HasListeners() ? source.StartActivity(ActivityKind.Producer, links: links, name: "send " + queue) : null;
        if (activity is not null || Diagnostics.Published.Enabled)
        {
            // The start of the queue wait. Only a process with telemetry on adds it (as it adds the trace context):
            // without, the message is byte for byte what machinery publishes.
            // A string, as every header Conveyor adds: Go workers decode headers as json.Number, which machinery's
            // AMQP broker cannot put in a table when it republishes (a retry, a callback).
            headers[ConveyorDiagnostics.PublishedHeader] = TimeProvider.GetUtcNow().ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture);
        }

        if (activity is not null)
        {
            activity.SetTag("messaging.system", ConveyorDiagnostics.MessagingSystem);
            activity.SetTag("messaging.operation.type", "send");
            activity.SetTag("messaging.operation.name", "send");
            activity.SetTag("messaging.destination.name", queue);
            activity.SetTag("messaging.message.id", signature.Id);
            activity.SetTag("conveyor.task.name", signature.Name);
            if (signature.GroupId.Length > 0)
            {
                activity.SetTag("conveyor.group.id", signature.GroupId);
            }

            ConveyorDiagnostics.InjectContext(activity, signature);
        }

        try
        {
            if (Options.BeforePublish is { } hook)
            {
                await hook(signature, cancellationToken).ConfigureAwait(false);
            }

            var pending = new TaskStateRecord { TaskId = signature.Id, TaskName = signature.Name, State = TaskState.Pending, CreatedAt = TimeProvider.GetUtcNow() };
            var body = WireFormat.SerializeSignature(signature);
            activity?.SetTag("messaging.message.body.size", body.Length);
            var started = TimeProvider.GetTimestamp();
            string? errorType = null;
            try
            {
                var message = new OutgoingMessage(signature.Id, queue, body)
                {
                    Eta = signature.Eta is { } eta && eta > TimeProvider.GetUtcNow() ? eta : null,
                    Priority = signature.Priority,
                    Headers = signature.HeadersOrNull,
                };

                // Group commit: the PENDING state and the message go with the others published meanwhile, in one
                // round trip where broker and backend share an engine.
                await Enqueuer.AddAndWaitAsync(new PendingPublish(pending, message), cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                errorType = ex.GetType().FullName;
                throw;
            }
            finally
            {
                if (Diagnostics.PublishDuration.Enabled)
                {
                    var tags = new TagList
                    {
                        { "messaging.system", ConveyorDiagnostics.MessagingSystem },
                        { "messaging.operation.name", "send" },
                        { "messaging.destination.name", queue },
                    };
                    if (errorType is not null)
                    {
                        tags.Add("error.type", errorType);
                    }

                    Diagnostics.PublishDuration.Record(TimeProvider.GetElapsedTime(started).TotalSeconds, tags);
                }
            }
        }
        catch (Exception ex) when (activity is not null)
        {
            activity.SetStatus(ActivityStatusCode.Error, ex.Message);
            activity.SetTag("error.type", ex.GetType().FullName);
            throw;
        }

        Diagnostics.Published.Add(
            1,
            new KeyValuePair<string, object?>("messaging.system", ConveyorDiagnostics.MessagingSystem),
            new KeyValuePair<string, object?>("messaging.operation.name", "send"),
            new KeyValuePair<string, object?>("messaging.destination.name", queue));
        Log.TaskPublished(_logger, signature.Name, signature.Id, queue);
    }

    /// <summary>
    /// Waits for a task's final state. After a first read, each pass starts listening for a change, reads the
    /// state (so a write between the read and the listen is not missed), then waits: up to a second when the
    /// backend ends waits on change, otherwise for a poll interval that doubles from 1 ms up to
    /// <see cref="ConveyorClientOptions.MaxResultPollInterval"/>.
    /// </summary>
    private GroupCommitQueue<PendingPublish> Enqueuer
    {
        get
        {
            if (Volatile.Read(ref _enqueuer) is { } enqueuer)
            {
                return enqueuer;
            }

            var created = new GroupCommitQueue<PendingPublish>(
                (batch, ct) => Backend.EnqueueAsync(Broker, batch, ct),
                EnqueueCapacity,
                MaxEnqueueBatch,
                EnqueueWritesInFlight,
                inlineStart: InlineStart.Always); // a producer at a modest rate waits for each publish: spare it a hop
            if (Interlocked.CompareExchange(ref _enqueuer, created, null) is { } raced)
            {
                _ = created.DisposeAsync().AsTask();
                return raced;
            }

            return created;
        }
    }

    internal async ValueTask<TaskStateRecord> WaitForCompletionAsync(string taskId, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var state = await Backend.GetStateAsync(taskId, cancellationToken).ConfigureAwait(false);
        if (state is { IsCompleted: true })
        {
            return state;
        }

        var started = TimeProvider.GetTimestamp();
        var pushed = Backend.Capabilities.HasFlag(ResultBackendCapabilities.ChangeNotifications);
        var interval = pushed ? TimeSpan.FromSeconds(1) : TimeSpan.FromMilliseconds(1);
        while (true)
        {
            var remaining = timeout == Timeout.InfiniteTimeSpan ? interval : timeout - TimeProvider.GetElapsedTime(started);
            if (remaining <= TimeSpan.Zero)
            {
                throw new TimeoutException($"Task {taskId} did not finish within {timeout} (last state: {state?.State.ToWireName() ?? "none"}).");
            }

            var change = Backend.WaitForChangeAsync(taskId, remaining < interval ? remaining : interval, cancellationToken).AsTask();
            state = await Backend.GetStateAsync(taskId, cancellationToken).ConfigureAwait(false);
            if (state is { IsCompleted: true })
            {
                return state;
            }

            await change.ConfigureAwait(false);
            if (!pushed)
            {
                interval = TimeSpan.FromTicks(Math.Min(interval.Ticks * 2, Options.MaxResultPollInterval.Ticks));
            }
        }
    }
}
