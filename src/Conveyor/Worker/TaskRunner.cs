using System.Diagnostics;
using System.Globalization;
using Conveyor.Diagnostics;
using Conveyor.Serialization;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Conveyor;

/// <summary>
/// Runs one delivery: parses machinery's message, finds the handler, runs it with the task's timeout and scope,
/// decides the outcome (success, retry, failure, dead letter, hand-back at shutdown), and hands the states and the
/// acknowledgement to the <see cref="StateSettler"/>. A task with nothing after its outcome (no callbacks, no chord,
/// no after-task hook) does not wait for its writes: its runner takes the next message while the settler stores the
/// batch.
/// </summary>
internal sealed partial class TaskRunner
{
    private readonly ConveyorClient _client;
    private readonly TaskRegistry _registry;
    private readonly WorkerOptions _options;
    private readonly IServiceProvider? _services;
    private readonly IServiceScopeFactory? _scopeFactory;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly ConveyorDiagnostics _diagnostics;
    private readonly WorkflowCoordinator _workflow;
    private readonly StateSettler _settler;
    private readonly CancellationToken _hardStop;
    private readonly string _workerName;

    public TaskRunner(
        ConveyorClient client,
        TaskRegistry registry,
        WorkerOptions options,
        IServiceProvider? services,
        IServiceScopeFactory? scopeFactory,
        ILogger logger,
        WorkflowCoordinator workflow,
        StateSettler settler,
        CancellationToken hardStop)
    {
        _client = client;
        _registry = registry;
        _options = options;
        _services = services;
        _scopeFactory = scopeFactory;
        _logger = logger;
        _time = client.TimeProvider;
        _diagnostics = client.Diagnostics;
        _workflow = workflow;
        _settler = settler;
        _hardStop = hardStop;
        _workerName = options.Name;
    }

    /// <summary>The fleet's control state (revocations, unique keys), when the worker follows one.</summary>
    public WorkerControl? Control { get; init; }

    /// <summary>The worker's rate limits, when it has any.</summary>
    public WorkerRateLimits? RateLimits { get; init; }

    public async Task RunAsync(IBrokerDelivery delivery)
    {
        try
        {
            await RunCoreAsync(delivery).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            // The backend or broker failed mid-task: hand the message back so it runs again, after a pause so
            // that an outage does not become a hot loop.
            Log.ProcessingFailed(_logger, ex, delivery.Queue);
            await DelayAsync(TimeSpan.FromSeconds(1)).ConfigureAwait(false);
            try
            {
                await delivery.ReleaseAsync(CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception releaseError)
            {
                // The broker redelivers it on its own (lease expiry or connection loss).
                Log.ProcessingFailed(_logger, releaseError, delivery.Queue);
            }
        }
    }

    private async Task RunCoreAsync(IBrokerDelivery delivery)
    {
        if (_diagnostics.Consumed.Enabled)
        {
            _diagnostics.Consumed.Add(
                1,
                new KeyValuePair<string, object?>("messaging.system", ConveyorDiagnostics.MessagingSystem),
                new KeyValuePair<string, object?>("messaging.operation.name", "process"),
                new KeyValuePair<string, object?>("messaging.destination.name", delivery.Queue));
        }

        Signature signature;
        try
        {
            signature = WireFormat.DeserializeSignature(delivery.Body.Span);
        }
        catch (WireFormatException ex)
        {
            await DeadLetterAsync(delivery, $"malformed message: {ex.Message}").ConfigureAwait(false);
            return;
        }

        if (!_registry.TryGet(signature.Name, out var handler))
        {
            await HandleUnregisteredAsync(delivery, signature).ConfigureAwait(false);
            return;
        }

        if (_options.MaxDeliveries is { } maxDeliveries
            && (delivery.IsUncountedRedelivery ? await CountDeliveriesAsync(delivery, signature).ConfigureAwait(false) : delivery.DeliveryCount) is var deliveries
            && deliveries > maxDeliveries)
        {
            await DeadLetterPoisonAsync(delivery, signature, deliveries - 1).ConfigureAwait(false);
            return;
        }

        var attempt = ReadAttempt(signature);
        if (_diagnostics.QueueWait.Enabled && ConveyorDiagnostics.ReadyAt(signature) is { } readyAt)
        {
            // Clocks of the producer's and this machine may differ: a negative wait is recorded as none.
            var wait = _time.GetUtcNow() - readyAt;
            _diagnostics.QueueWait.Record(
                wait > TimeSpan.Zero ? wait.TotalSeconds : 0,
                new KeyValuePair<string, object?>("messaging.destination.name", delivery.Queue),
                new KeyValuePair<string, object?>("conveyor.task.name", signature.Name));
        }

        using var activity = StartProcessActivity(delivery, signature, attempt);
        var baseState = new TaskStateRecord
        {
            TaskId = signature.Id,
            TaskName = signature.Name,
            State = TaskState.Received,
            CreatedAt = _time.GetUtcNow(),
        };

        using var timeoutSource = _options.TaskTimeout is { } timeout ? new CancellationTokenSource(timeout, _time) : null;
        using var linkedSource = timeoutSource is null ? null : CancellationTokenSource.CreateLinkedTokenSource(timeoutSource.Token, _hardStop);
        var token = linkedSource?.Token ?? _hardStop;
        // A scope per task, as ASP.NET Core has one per request: scoped services (a DbContext) live for one task.
        var scope = _scopeFactory?.CreateAsyncScope();
        await using var scopeDisposal = (scope is { } taskScope ? (IAsyncDisposable)taskScope : NoScope.Instance).ConfigureAwait(false);
        using var running = Control?.Track(signature.Id, token);
        token = running?.Token ?? token;
        var context = new TaskContext(signature, attempt, scope?.ServiceProvider ?? _services, token) { Progress = Control?.Store, Clock = _time };
        if (Control?.IsRevoked(signature.Id) == true)
        {
            // Revoked before it ran: it never runs; its final state says revoked (machinery reads FAILURE as final).
            await FailRevokedAsync(delivery, signature, context, baseState, attempt, activity).ConfigureAwait(false);
            return;
        }

        if (RateLimits is { } limits && await limits.WaitForTurnAsync(signature, token).ConfigureAwait(false) is { Ticks: > 0 } later)
        {
            // Limited: back to the broker with an ETA; not failed, and not a retry (RetryCount and attempt kept).
            signature.Eta = _time.GetUtcNow() + later;
            await _client.PublishAsync(signature, CancellationToken.None).ConfigureAwait(false);
            await delivery.AckAsync(CancellationToken.None).ConfigureAwait(false);
            return;
        }

        // machinery's RECEIVED then STARTED go to the settler once the handler runs; the handler does not wait for
        // them. A handler that finishes before it first awaits has its final state in the same batch (below).
        var statesQueued = false;
        if (_options.BeforeTask is { } beforeTask)
        {
            // The hook sees RECEIVED stored.
            await _settler.WriteAsync(baseState).ConfigureAwait(false);
            await RunHookAsync("before-task", signature, () => beforeTask(context)).ConfigureAwait(false);
            await _settler.AddAsync(baseState.With(TaskState.Started)).ConfigureAwait(false);
            statesQueued = true;
        }

        var started = _time.GetTimestamp();
        IReadOnlyList<TaskResult>? results = null;
        Exception? error = null;
        try
        {
            var invocation = handler.InvokeAsync(signature, context, token);
            if (invocation.IsCompletedSuccessfully)
            {
                results = invocation.Result;
            }
            else
            {
                if (!statesQueued)
                {
                    await _settler.AddAsync(baseState, baseState.With(TaskState.Started)).ConfigureAwait(false);
                    statesQueued = true;
                }

                results = await invocation.AsTask().WaitAsync(token).ConfigureAwait(false);
            }
        }
        catch (Exception ex)
        {
            error = ex;
        }

        if (!statesQueued && (error is not null || !IsPlainSuccess(signature)))
        {
            await _settler.AddAsync(baseState, baseState.With(TaskState.Started)).ConfigureAwait(false);
            statesQueued = true;
        }

        var elapsed = _time.GetElapsedTime(started);
        // Before the duration is recorded, so that its error.type says timeout.
        if (error is not null && timeoutSource?.IsCancellationRequested == true && error is OperationCanceledException)
        {
            Log.TaskTimedOut(_logger, signature.Name, signature.Id, _options.TaskTimeout!.Value);
            error = new TimeoutException($"task timed out after {_options.TaskTimeout!.Value.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s", error);
        }

        if (_diagnostics.ProcessDuration.Enabled)
        {
            var tags = new TagList
            {
                { "messaging.system", ConveyorDiagnostics.MessagingSystem },
                { "messaging.operation.name", "process" },
                { "messaging.destination.name", delivery.Queue },
                { "conveyor.task.name", signature.Name },
            };
            if (error is not null)
            {
                tags.Add("error.type", error.GetType().FullName);
            }

            _diagnostics.ProcessDuration.Record(elapsed.TotalSeconds, tags);
        }

        if (error is not null && _hardStop.IsCancellationRequested && timeoutSource?.IsCancellationRequested != true)
        {
            // Stopped by shutdown, not by its own fault: it runs again on another worker.
            activity?.SetStatus(ActivityStatusCode.Error, "worker stopped");
            activity?.SetTag("error.type", "conveyor.worker_stopped");
            await delivery.ReleaseAsync(CancellationToken.None).ConfigureAwait(false);
            return;
        }

        if (error is not null ? running is { WasRevoked: true } : Control?.IsRevoked(signature.Id) == true)
        {
            // Revoked while it ran: its token was canceled; a handler that ignored it was abandoned (WaitAsync). One
            // that finished anyway after this worker learned of the revocation ends revoked too, so its SUCCESS never
            // lands over the revoked FAILURE the revoke wrote (an in-process lookup, no round trip).
            await FailRevokedAsync(delivery, signature, context, baseState, attempt, activity).ConfigureAwait(false);
            return;
        }

        if (error is null)
        {
            activity?.SetTag("conveyor.task.state", "SUCCESS");
            await SucceedAsync(delivery, signature, context, baseState, results!, elapsed, activity, statesQueued).ConfigureAwait(false);
        }
        else
        {
            if (activity is not null)
            {
                activity.SetStatus(ActivityStatusCode.Error, error.Message);
                activity.SetTag("error.type", error.GetType().FullName);
                activity.AddException(error);
            }

            await FailAsync(delivery, signature, context, baseState, attempt, error, activity).ConfigureAwait(false);
        }
    }

    private async Task SucceedAsync(
        IBrokerDelivery delivery,
        Signature signature,
        TaskContext context,
        TaskStateRecord baseState,
        IReadOnlyList<TaskResult> results,
        TimeSpan elapsed,
        Activity? activity,
        bool statesQueued)
    {
        var final = baseState.With(TaskState.Success, results);
        if (_diagnostics.Succeeded.Enabled)
        {
            _diagnostics.Succeeded.Add(1, DestinationTag(delivery), TaskNameTag(signature));
        }

        Control?.Throughput.Succeeded();

        Log.TaskSucceeded(_logger, signature.Name, signature.Id, elapsed.TotalMilliseconds);
        if (IsPlainSuccess(signature))
        {
            // The common case: SUCCESS and the acknowledgement go in the settler's batch, with RECEIVED and
            // STARTED when the handler finished without awaiting.
            if (statesQueued)
            {
                await _settler.AddAsync(final, delivery).ConfigureAwait(false);
            }
            else
            {
                await _settler.AddAsync(baseState, baseState.With(TaskState.Started), final, delivery).ConfigureAwait(false);
            }

            return;
        }

        await SettleWithFollowUpAsync(delivery, signature, context, final, () => _workflow.OnSucceededAsync(signature, results, activity)).ConfigureAwait(false);
    }

    private async Task FailAsync(
        IBrokerDelivery delivery,
        Signature signature,
        TaskContext context,
        TaskStateRecord baseState,
        int attempt,
        Exception error,
        Activity? activity)
    {
        if (_options.OnError is { } onError)
        {
            await RunHookAsync("error", signature, () => onError(context, error)).ConfigureAwait(false);
        }

        var message = error.Message;
        var retryable = error is not TaskArgumentException;
        if (retryable && signature.RetryCount > 0)
        {
            await _settler.WriteAsync(baseState.With(TaskState.Retry)).ConfigureAwait(false);
            activity?.SetTag("conveyor.task.state", "RETRY");
            var delay = await _workflow.RetryAsync(signature, attempt, error).ConfigureAwait(false);
            _diagnostics.Retried.Add(1, DestinationTag(delivery), TaskNameTag(signature));
            Log.TaskRetrying(_logger, signature.Name, signature.Id, message, attempt + 1, delay, signature.RetryCount);
            await delivery.AckAsync(CancellationToken.None).ConfigureAwait(false);
            return;
        }

        var final = baseState.With(TaskState.Failure, error: message);
        activity?.SetTag("conveyor.task.state", "FAILURE");
        _diagnostics.Failed.Add(1, DestinationTag(delivery), TaskNameTag(signature));
        Control?.Throughput.Failed();
        Log.TaskFailed(_logger, error is TaskArgumentException or TimeoutException or TaskRevokedException ? null : error, signature.Name, signature.Id, message);
        if (!WorkflowCoordinator.HasFailureWork(signature) && _options.AfterTask is null && !HasUniqueKey(signature))
        {
            await _settler.AddAsync(final, delivery).ConfigureAwait(false);
            return;
        }

        await SettleWithFollowUpAsync(delivery, signature, context, final, () => _workflow.OnFailedAsync(signature, message, activity)).ConfigureAwait(false);
    }

    /// <summary>
    /// A final state with work after it: the state is stored first (waiting for the settler's batch), then the
    /// unique key is freed, the workflow runs, the after-task hook, and only then is the message acknowledged.
    /// </summary>
    private async Task SettleWithFollowUpAsync(IBrokerDelivery delivery, Signature signature, TaskContext context, TaskStateRecord final, Func<Task> workflow)
    {
        await _settler.WriteAsync(final).ConfigureAwait(false);
        await ReleaseUniqueAsync(signature).ConfigureAwait(false);
        await workflow().ConfigureAwait(false);
        if (_options.AfterTask is { } afterTask)
        {
            await RunHookAsync("after-task", signature, () => afterTask(context, final)).ConfigureAwait(false);
        }

        await delivery.AckAsync(CancellationToken.None).ConfigureAwait(false);
    }

    /// <summary>Whether a success needs nothing after its SUCCESS state: no callbacks, chord, after-task hook or unique key to free.</summary>
    private bool IsPlainSuccess(Signature signature) => !WorkflowCoordinator.HasSuccessWork(signature) && _options.AfterTask is null && !HasUniqueKey(signature);

    /// <summary>Whether the task holds a unique key to free at its final state (<see cref="UniqueMode.UntilFinished"/>): one header lookup.</summary>
    private bool HasUniqueKey(Signature signature) => Control is not null && signature.HeadersOrNull?.ContainsKey(UniqueTaskExtensions.UniqueKeyHeader) == true;

    /// <summary>Frees a unique task's key once its final state is stored.</summary>
    private ValueTask ReleaseUniqueAsync(Signature signature) =>
        signature.HeadersOrNull?.GetValueOrDefault(UniqueTaskExtensions.UniqueKeyHeader) is string { Length: > 0 } key && Control is { } control
            ? control.Store.ReleaseUniqueAsync(key, signature.Id)
            : ValueTask.CompletedTask;

    /// <summary>A revoked task ends as FAILURE with its revocation's error, never retried; callbacks and chords see a failure.</summary>
    private async Task FailRevokedAsync(IBrokerDelivery delivery, Signature signature, TaskContext context, TaskStateRecord baseState, int attempt, Activity? activity)
    {
        var stored = await _client.Backend.GetStateAsync(signature.Id).ConfigureAwait(false);
        var message = stored is not null && stored.IsRevoked() ? stored.Error : RevocationExtensions.RevokedErrorPrefix;
        Log.TaskRevoked(_logger, signature.Name, signature.Id, message);
        signature.RetryCount = 0;
        activity?.SetTag("error.type", "conveyor.revoked");
        await FailAsync(delivery, signature, context, baseState, attempt, new TaskRevokedException(message), activity).ConfigureAwait(false);
    }

    private async Task HandleUnregisteredAsync(IBrokerDelivery delivery, Signature signature)
    {
        if (_options.UnregisteredTasks == UnregisteredTaskPolicy.Requeue || signature.IgnoreWhenTaskNotRegistered)
        {
            await _workflow.RequeueUnregisteredAsync(signature).ConfigureAwait(false);
            await delivery.AckAsync(CancellationToken.None).ConfigureAwait(false);
            return;
        }

        await FailAndDeadLetterAsync(delivery, signature, $"task \"{signature.Name}\" is not registered").ConfigureAwait(false);
    }

    // Each earlier delivery ended without a settlement: its worker died (or handed the message back) mid-task.
    private Task DeadLetterPoisonAsync(IBrokerDelivery delivery, Signature signature, int deaths) =>
        FailAndDeadLetterAsync(delivery, signature, $"worker died {deaths} times while running this task");

    /// <summary>Records FAILURE (<c>dead-lettered: reason</c>) for machinery's waiters, then moves the message to the dead letters.</summary>
    private async Task FailAndDeadLetterAsync(IBrokerDelivery delivery, Signature signature, string reason)
    {
        await _settler.WriteAsync(new TaskStateRecord
        {
            TaskId = signature.Id,
            TaskName = signature.Name,
            State = TaskState.Failure,
            Error = $"dead-lettered: {reason}",
            CreatedAt = _time.GetUtcNow(),
        }).ConfigureAwait(false);
        _diagnostics.Failed.Add(1, DestinationTag(delivery), TaskNameTag(signature));
        Control?.Throughput.Failed();
        await DeadLetterAsync(delivery, reason).ConfigureAwait(false);
    }

    private async Task DeadLetterAsync(IBrokerDelivery delivery, string reason)
    {
        Log.MessageDeadLettered(_logger, delivery.Queue, reason);
        await delivery.DeadLetterAsync(reason, CancellationToken.None).ConfigureAwait(false);
        _diagnostics.DeadLettered.Add(1, DestinationTag(delivery));
    }

    private async Task DelayAsync(TimeSpan delay)
    {
        try
        {
            await Task.Delay(delay, _time, _hardStop).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static KeyValuePair<string, object?> DestinationTag(IBrokerDelivery delivery) => new("messaging.destination.name", delivery.Queue);

    private static KeyValuePair<string, object?> TaskNameTag(Signature signature) => new("conveyor.task.name", signature.Name);

    /// <summary>
    /// The process span: a child of the publish span whose context the message carries (so a retry's run is a
    /// span of its own under the retry's publish), named and tagged after the OpenTelemetry messaging conventions,
    /// with a link to each chord member when this is a chord callback.
    /// </summary>
    private Activity? StartProcessActivity(IBrokerDelivery delivery, Signature signature, int attempt)
    {
        var source = ConveyorDiagnostics.ActivitySource;
        if (!source.HasListeners())
        {
            return null;
        }

        var activity = source.StartActivity(
            ActivityKind.Consumer,
            ConveyorDiagnostics.ExtractContext(signature),
            links: ConveyorDiagnostics.ReadLinks(signature),
            name: "process " + delivery.Queue);
        if (activity is not null)
        {
            activity.SetTag("messaging.system", ConveyorDiagnostics.MessagingSystem);
            activity.SetTag("messaging.operation.type", "process");
            activity.SetTag("messaging.operation.name", "process");
            activity.SetTag("messaging.destination.name", delivery.Queue);
            activity.SetTag("messaging.message.id", signature.Id);
            activity.SetTag("messaging.message.body.size", delivery.Body.Length);
            activity.SetTag("messaging.client.id", _workerName);
            activity.SetTag("conveyor.task.name", signature.Name);
            activity.SetTag("conveyor.task.attempt", attempt);
            if (signature.GroupId.Length > 0)
            {
                activity.SetTag("conveyor.group.id", signature.GroupId);
            }

            if (signature.ChordCallback is { } chordCallback)
            {
                activity.SetTag("conveyor.chord.callback", chordCallback.Name);
            }
        }

        return activity;
    }

    private async Task RunHookAsync(string hook, Signature signature, Func<ValueTask> run)
    {
        try
        {
            await run().ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            // A hook is the user's code: its failure is logged and does not change the task's outcome.
            Log.HookFailed(_logger, ex, hook, signature.Name, signature.Id);
        }
    }

    private static int ReadAttempt(Signature signature) => signature.HeadersOrNull?.GetValueOrDefault(ConveyorWorker.AttemptHeader) switch
    {
        long l when l is > 0 and < int.MaxValue => (int)l,
        int i when i > 0 => i,
        string s when int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var parsed) && parsed > 0 => parsed,
        _ => 1,
    };

    private sealed class NoScope : IAsyncDisposable
    {
        public static readonly NoScope Instance = new();

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
