using Microsoft.Extensions.DependencyInjection;
using System.Diagnostics;
using System.Globalization;
using System.Threading.Channels;
using Conveyor.Diagnostics;
using Conveyor.Serialization;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Conveyor;

/// <summary>
/// Consumes a queue and runs the registered handlers with bounded concurrency (machinery's <c>Worker</c>).
/// Records RECEIVED, STARTED, then SUCCESS, FAILURE or RETRY; publishes callbacks, chains and chord callbacks;
/// acknowledges a message only after its final state is stored, so a worker that dies loses nothing.
/// </summary>
/// <remarks>
/// Run it as a hosted service, or call <see cref="BackgroundService.StartAsync"/> and
/// <see cref="BackgroundService.StopAsync"/> yourself. Stopping stops taking messages, lets running tasks finish
/// within <see cref="WorkerOptions.ShutdownGracePeriod"/>, then cancels them and hands their messages back.
/// </remarks>
public sealed class ConveyorWorker : BackgroundService
{
    /// <summary>The header that counts runs of a task across retries (1 for the first run).</summary>
    public const string AttemptHeader = "conveyor-attempt";

    private static readonly TimeSpan MaxReconnectDelay = TimeSpan.FromSeconds(30);

    private readonly ConveyorClient _client;
    private readonly TaskRegistry _registry;
    private readonly WorkerOptions _options;
    private readonly IServiceProvider? _services;
    private readonly IServiceScopeFactory? _scopeFactory;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly ConveyorDiagnostics _diagnostics;
    private CancellationTokenSource _hardStop;
    private WorkerControl? _control;
    private int _inFlight;

    /// <summary>Creates a worker. It does nothing until started.</summary>
    /// <param name="client">The client whose broker, backend and clock the worker uses, and through which it publishes callbacks.</param>
    /// <param name="registry">The handlers.</param>
    /// <param name="options">Settings; defaults when <see langword="null"/>.</param>
    /// <param name="loggerFactory">Logging; none when <see langword="null"/>.</param>
    /// <param name="services">Services handed to tasks through <see cref="TaskContext.Services"/>; when it can create scopes, each task gets its own scope.</param>
    public ConveyorWorker(
        ConveyorClient client,
        TaskRegistry registry,
        WorkerOptions? options = null,
        ILoggerFactory? loggerFactory = null,
        IServiceProvider? services = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(registry);
        _client = client;
        _registry = registry;
        _options = options ?? new WorkerOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(_options.Concurrency, 1, nameof(options));
        _services = services;
        _scopeFactory = services?.GetService(typeof(IServiceScopeFactory)) as IServiceScopeFactory;
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<ConveyorWorker>();
        _time = client.TimeProvider;
        _diagnostics = client.Diagnostics;
        _hardStop = new CancellationTokenSource(Timeout.InfiniteTimeSpan, _time);
        Queue = string.IsNullOrEmpty(_options.Queue) ? client.Options.DefaultQueue : _options.Queue;
    }

    /// <summary>The queue this worker consumes.</summary>
    public string Queue { get; }

    /// <summary>The worker's name.</summary>
    public string Name => _options.Name;

    /// <summary>How many messages the worker is processing now.</summary>
    public int InFlight => Volatile.Read(ref _inFlight);

    /// <inheritdoc/>
    public override Task StartAsync(CancellationToken cancellationToken)
    {
        if (_hardStop.IsCancellationRequested)
        {
            _hardStop.Dispose();
            _hardStop = new CancellationTokenSource(Timeout.InfiniteTimeSpan, _time);
        }

        return base.StartAsync(cancellationToken);
    }

    /// <inheritdoc/>
    public override void Dispose()
    {
        _hardStop.Dispose();
        base.Dispose();
    }

    /// <inheritdoc/>
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var hardStop = _hardStop;
        using var onStop = stoppingToken.Register(() =>
        {
            Log.WorkerStopping(_logger, Name, InFlight, _options.ShutdownGracePeriod);
            try
            {
                hardStop.CancelAfter(_options.ShutdownGracePeriod);
            }
            catch (ObjectDisposedException)
            {
                // The worker was disposed first; nothing is running.
            }
        });

        var control = await StartControlAsync(stoppingToken).ConfigureAwait(false);
        var sampler = _options.QueueDepthSampleInterval > TimeSpan.Zero ? SampleQueueDepthAsync(stoppingToken) : Task.CompletedTask;
        var reconnectDelay = _options.ReconnectDelay;
        while (!stoppingToken.IsCancellationRequested)
        {
            IMessageConsumer? consumer = null;
            try
            {
                // A paused queue: no consumer at all (on RabbitMQ its basic.consume is canceled), until resumed.
                var loopToken = control is null ? stoppingToken : await control.WaitForResumeAsync(Queue, stoppingToken).ConfigureAwait(false);
                consumer = await _client.Broker.ConsumeAsync(
                    Queue,
                    new ConsumeOptions { Prefetch = _options.EffectivePrefetch, ConsumerName = Name },
                    stoppingToken).ConfigureAwait(false);
                Log.WorkerStarted(_logger, Name, Queue, _options.Concurrency, _options.EffectivePrefetch);
                reconnectDelay = _options.ReconnectDelay;

                var loops = new Task[_options.Concurrency];
                for (var i = 0; i < loops.Length; i++)
                {
                    loops[i] = RunLoopAsync(consumer.Deliveries, loopToken);
                }

                await Task.WhenAll(loops).ConfigureAwait(false);
                if (!stoppingToken.IsCancellationRequested && !loopToken.IsCancellationRequested)
                {
                    throw new InvalidOperationException($"The consumer of queue {Queue} ended.");
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex)
            {
                Log.ConsumerFailed(_logger, ex, Name, reconnectDelay);
                await DelayAsync(reconnectDelay, stoppingToken).ConfigureAwait(false);
                reconnectDelay = TimeSpan.FromTicks(Math.Min(reconnectDelay.Ticks * 2, MaxReconnectDelay.Ticks));
            }
            finally
            {
                if (consumer is not null)
                {
                    // Hands back every delivery that is buffered and not started.
                    await consumer.DisposeAsync().ConfigureAwait(false);
                }
            }
        }

        await sampler.ConfigureAwait(false);
        if (control is not null)
        {
            await control.DisposeAsync().ConfigureAwait(false);
        }

        if (InFlight > 0 && hardStop.IsCancellationRequested)
        {
            Log.GracePeriodExceeded(_logger, Name, InFlight);
        }

        Log.WorkerStopped(_logger, Name);
    }

    private async Task RunLoopAsync(ChannelReader<IBrokerDelivery> deliveries, CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (!await deliveries.WaitToReadAsync(stoppingToken).ConfigureAwait(false))
                {
                    return;
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }

            while (!stoppingToken.IsCancellationRequested && deliveries.TryRead(out var delivery))
            {
                await ProcessAsync(delivery).ConfigureAwait(false);
            }
        }
    }

    private async Task DelayAsync(TimeSpan delay, CancellationToken cancellationToken)
    {
        try
        {
            await Task.Delay(delay, _time, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task ProcessAsync(IBrokerDelivery delivery)
    {
        Interlocked.Increment(ref _inFlight);
        var queueTag = new KeyValuePair<string, object?>("messaging.destination.name", delivery.Queue);
        _diagnostics.InFlight.Add(1, queueTag);
        try
        {
            await ProcessCoreAsync(delivery).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            // The backend or broker failed mid-task: hand the message back so it runs again, after a pause so
            // that an outage does not become a hot loop.
            Log.ProcessingFailed(_logger, ex, delivery.Queue);
            await DelayAsync(TimeSpan.FromSeconds(1), _hardStop.Token).ConfigureAwait(false);
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
        finally
        {
            Interlocked.Decrement(ref _inFlight);
            _diagnostics.InFlight.Add(-1, queueTag);
        }
    }

    private async Task ProcessCoreAsync(IBrokerDelivery delivery)
    {
        _diagnostics.Consumed.Add(
            1,
            new KeyValuePair<string, object?>("messaging.system", ConveyorDiagnostics.MessagingSystem),
            new KeyValuePair<string, object?>("messaging.operation.name", "process"),
            new KeyValuePair<string, object?>("messaging.destination.name", delivery.Queue));
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
        var backend = _client.Backend;
        var baseState = new TaskStateRecord
        {
            TaskId = signature.Id,
            TaskName = signature.Name,
            State = TaskState.Received,
            CreatedAt = _time.GetUtcNow(),
        };
        if (_options.BeforeTask is not null)
        {
            await backend.SetStateAsync(baseState).ConfigureAwait(false);
        }

        using var timeoutSource = _options.TaskTimeout is { } timeout ? new CancellationTokenSource(timeout, _time) : null;
        using var linkedSource = timeoutSource is null ? null : CancellationTokenSource.CreateLinkedTokenSource(timeoutSource.Token, _hardStop.Token);
        var token = linkedSource?.Token ?? _hardStop.Token;
        // A scope per task, as ASP.NET Core has one per request: scoped services (a DbContext) live for one task.
        var scope = _scopeFactory?.CreateAsyncScope();
        await using var scopeDisposal = (scope is { } taskScope ? (IAsyncDisposable)taskScope : NoScope.Instance).ConfigureAwait(false);
        using var running = _control?.Track(signature.Id, token);
        token = running?.Token ?? token;
        var context = new TaskContext(signature, attempt, scope?.ServiceProvider ?? _services, token) { Progress = _control?.Store, Clock = _time };
        if (_control?.IsRevoked(signature.Id) == true)
        {
            // Revoked before it ran: it never runs; its final state says revoked (machinery reads FAILURE as final).
            await FailRevokedAsync(delivery, signature, context, baseState, attempt, activity).ConfigureAwait(false);
            return;
        }

        if (_options.BeforeTask is { } beforeTask)
        {
            await RunHookAsync("before-task", signature, () => beforeTask(context)).ConfigureAwait(false);
        }

        if (_options.BeforeTask is null)
        {
            // RECEIVED then STARTED in one backend call (one script, one commit): machinery's sequence, one round trip.
            await backend.SetStatesAsync([baseState, baseState.With(TaskState.Started)]).ConfigureAwait(false);
        }
        else
        {
            await backend.SetStateAsync(baseState.With(TaskState.Started)).ConfigureAwait(false);
        }
        var started = _time.GetTimestamp();
        IReadOnlyList<TaskResult>? results = null;
        Exception? error = null;
        try
        {
            var invocation = handler.InvokeAsync(signature, context, token);
            results = invocation.IsCompletedSuccessfully ? invocation.Result : await invocation.AsTask().WaitAsync(token).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            error = ex;
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

        if (error is not null && running is { WasRevoked: true })
        {
            // Revoked while it ran: its token was canceled; a handler that ignored it was abandoned (WaitAsync).
            await FailRevokedAsync(delivery, signature, context, baseState, attempt, activity).ConfigureAwait(false);
            return;
        }

        if (error is null)
        {
            activity?.SetTag("conveyor.task.state", "SUCCESS");
            await SucceedAsync(delivery, signature, context, baseState, results!, elapsed, activity).ConfigureAwait(false);
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
        Activity? activity)
    {
        var final = baseState.With(TaskState.Success, results);
        await _client.Backend.SetStateAsync(final).ConfigureAwait(false);
        await ReleaseUniqueAsync(signature).ConfigureAwait(false);
        _diagnostics.Succeeded.Add(1, DestinationTag(delivery), TaskNameTag(signature));
        Log.TaskSucceeded(_logger, signature.Name, signature.Id, elapsed.TotalMilliseconds);

        if (signature.OnSuccessOrNull is { Count: > 0 } callbacks)
        {
            foreach (var callback in callbacks)
            {
                // machinery looks at the parent's Immutable; Celery at the callback's. Either one keeps results out.
                if (!signature.Immutable && !callback.Immutable)
                {
                    foreach (var result in results)
                    {
                        callback.Args.Add(result.ToArgument());
                    }
                }

                await _client.PublishAsync(callback, CancellationToken.None).ConfigureAwait(false);
            }
        }

        if (signature.ChordCallback is not null && signature.GroupId.Length > 0)
        {
            await CompleteChordMemberAsync(signature, succeeded: true, error: null, activity).ConfigureAwait(false);
        }

        if (_options.AfterTask is { } afterTask)
        {
            await RunHookAsync("after-task", signature, () => afterTask(context, final)).ConfigureAwait(false);
        }

        await delivery.AckAsync(CancellationToken.None).ConfigureAwait(false);
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
            var delay = error is RetryTaskLaterException later ? later.Delay : _options.RetryPolicy.NextDelay(signature, attempt);
            signature.RetryCount--;
            signature.Eta = _time.GetUtcNow() + delay;
            // A string: Go workers decode headers as json.Number, which their AMQP tables cannot carry.
            signature.Headers[AttemptHeader] = (attempt + 1).ToString(CultureInfo.InvariantCulture);
            await _client.Backend.SetStateAsync(baseState.With(TaskState.Retry)).ConfigureAwait(false);
            activity?.SetTag("conveyor.task.state", "RETRY");

            // As machinery does: the retry is a new publish (state PENDING again) with an ETA.
            await _client.PublishAsync(signature, CancellationToken.None).ConfigureAwait(false);
            _diagnostics.Retried.Add(1, DestinationTag(delivery), TaskNameTag(signature));
            Log.TaskRetrying(_logger, signature.Name, signature.Id, message, attempt + 1, delay, signature.RetryCount);
            await delivery.AckAsync(CancellationToken.None).ConfigureAwait(false);
            return;
        }

        var final = baseState.With(TaskState.Failure, error: message);
        await _client.Backend.SetStateAsync(final).ConfigureAwait(false);
        await ReleaseUniqueAsync(signature).ConfigureAwait(false);
        activity?.SetTag("conveyor.task.state", "FAILURE");
        _diagnostics.Failed.Add(1, DestinationTag(delivery), TaskNameTag(signature));
        Log.TaskFailed(_logger, error is TaskArgumentException or TimeoutException or TaskRevokedException ? null : error, signature.Name, signature.Id, message);

        if (signature.OnErrorOrNull is { Count: > 0 } errorCallbacks)
        {
            await PublishErrorCallbacksAsync(errorCallbacks, message).ConfigureAwait(false);
        }

        if (signature.ChordCallback is not null && signature.GroupId.Length > 0)
        {
            await CompleteChordMemberAsync(signature, succeeded: false, error: message, activity).ConfigureAwait(false);
        }

        if (_options.AfterTask is { } afterTask)
        {
            await RunHookAsync("after-task", signature, () => afterTask(context, final)).ConfigureAwait(false);
        }

        await delivery.AckAsync(CancellationToken.None).ConfigureAwait(false);
    }

    /// <summary>Starts following the fleet's control state when a management store is configured.</summary>
    private async Task<WorkerControl?> StartControlAsync(CancellationToken stoppingToken)
    {
        var store = _options.ManagementStore ?? _services?.GetService(typeof(IManagementStore)) as IManagementStore;
        if (store is null)
        {
            return null;
        }

        var control = new WorkerControl(store, WorkerControl.Describe(Name, Queue, _options.Concurrency, _time), _options, _time, _logger);
        await control.StartAsync(stoppingToken).ConfigureAwait(false);
        _control = control;
        return control;
    }

    /// <summary>A unique task (<see cref="UniqueMode.UntilFinished"/>) frees its key once its final state is stored; others pay one header lookup.</summary>
    private ValueTask ReleaseUniqueAsync(Signature signature) =>
        signature.HeadersOrNull?.GetValueOrDefault(UniqueTaskExtensions.UniqueKeyHeader) is string { Length: > 0 } key && _control is { } control
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

    // machinery prepends the error message as a string argument.
    private async Task PublishErrorCallbacksAsync(IEnumerable<Signature> callbacks, string error)
    {
        foreach (var callback in callbacks)
        {
            callback.Args.Insert(0, TaskArgument.String(error));
            await _client.PublishAsync(callback, CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// One atomic backend call per member (idempotent per member id) says whether every member is final, counting
    /// the members that Go machinery workers ran (they write states only). The member that finds the group
    /// complete claims the callback the way machinery's worker does (<see cref="IResultBackend.ClaimChordAsync"/>:
    /// <c>ChordTriggered</c> set under machinery's <c>TriggerChordMutex</c>, before publishing), so the callback
    /// is published once whichever side runs each member; a claimant that dies before publishing publishes on its
    /// redelivery. The winner reads the members' results once, in member order. A member that fails claims the
    /// chord at once, and the winner runs the callback's OnError tasks, once; a failure found among the members that
    /// Go workers ran does the same at completion. Each member stores its process span's context with its
    /// completion, and the callback carries links to them (at most <see cref="WorkerOptions.MaxChordCallbackLinks"/>).
    /// </summary>
    private async Task CompleteChordMemberAsync(Signature signature, bool succeeded, string? error, Activity? activity)
    {
        var backend = _client.Backend;
        var traceParent = _options.MaxChordCallbackLinks > 0 ? ConveyorDiagnostics.TraceParentOf(activity) : null;
        var completion = await backend.CompleteGroupMemberAsync(signature.GroupId, signature.Id, succeeded, traceParent).ConfigureAwait(false);
        var callback = signature.ChordCallback!;
        if (!succeeded)
        {
            // machinery never triggers a chord from a failed member; Conveyor claims it, so that no callback runs
            // with a member missing, and runs the callback's error callbacks once.
            if (!(completion.ChordTriggered && completion.IsFirstCompletion)
                && await backend.ClaimChordAsync(signature.GroupId, signature.Id).ConfigureAwait(false) != ChordClaim.Lost)
            {
                await PublishChordErrorAsync(signature.GroupId, callback, $"chord member {signature.Name} {signature.Id} failed: {error}").ConfigureAwait(false);
            }

            return;
        }

        // A chord already claimed by another member needs no claim; a redelivered claimant asks again (Resumed).
        if (completion.Completed < signature.GroupTaskCount || (completion.ChordTriggered && completion.IsFirstCompletion))
        {
            return;
        }

        if (await backend.ClaimChordAsync(signature.GroupId, signature.Id).ConfigureAwait(false) == ChordClaim.Lost)
        {
            return;
        }

        var meta = await backend.GetGroupMetaAsync(signature.GroupId).ConfigureAwait(false)
            ?? throw new InvalidOperationException($"Chord {signature.GroupId} is complete but its group meta is missing (expired?).");
        var states = await backend.GetStatesAsync(meta.TaskIds).ConfigureAwait(false);
        for (var i = 0; i < states.Count; i++)
        {
            var state = states[i];
            if (state is { State: TaskState.Failure })
            {
                // A member that a Go worker ran failed: machinery would drop the chord here; run OnError instead.
                await PublishChordErrorAsync(signature.GroupId, callback, $"chord member {state.TaskName} {state.TaskId} failed: {state.Error}").ConfigureAwait(false);
                return;
            }

            if (state is not { State: TaskState.Success })
            {
                throw new InvalidOperationException($"Chord {signature.GroupId}: member {meta.TaskIds[i]} is complete but its SUCCESS state is missing (expired?).");
            }
        }

        if (!callback.Immutable)
        {
            foreach (var state in states)
            {
                if (state!.Results is { } memberResults)
                {
                    foreach (var result in memberResults)
                    {
                        callback.Args.Add(result.ToArgument());
                    }
                }
            }
        }

        List<ActivityLink>? links = null;
        if (_options.MaxChordCallbackLinks > 0)
        {
            var traceParents = await backend.GetGroupMemberTraceParentsAsync(signature.GroupId, _options.MaxChordCallbackLinks).ConfigureAwait(false);
            if (traceParents.Count > 0)
            {
                callback.Headers[ConveyorDiagnostics.LinksHeader] = string.Join(' ', traceParents);
                links = ConveyorDiagnostics.ReadLinks(callback);
            }
        }

        await _client.PublishAsync(callback, CancellationToken.None, links).ConfigureAwait(false);
        await backend.MarkChordTriggeredAsync(signature.GroupId).ConfigureAwait(false);
        Log.ChordTriggered(_logger, signature.GroupId, callback.Name, callback.Id);
    }

    /// <summary>Runs a claimed chord's error callbacks (the callback itself never runs), then ends the claim.</summary>
    private async Task PublishChordErrorAsync(string groupId, Signature callback, string error)
    {
        if (callback.OnErrorOrNull is { Count: > 0 } errorCallbacks)
        {
            await PublishErrorCallbacksAsync(errorCallbacks, error).ConfigureAwait(false);
        }

        await _client.Backend.MarkChordTriggeredAsync(groupId).ConfigureAwait(false);
    }

    private async Task HandleUnregisteredAsync(IBrokerDelivery delivery, Signature signature)
    {
        if (_options.UnregisteredTasks == UnregisteredTaskPolicy.Requeue || signature.IgnoreWhenTaskNotRegistered)
        {
            var delay = _options.UnregisteredRequeueDelay;
            signature.Eta = _time.GetUtcNow() + delay;
            await _client.PublishAsync(signature, CancellationToken.None).ConfigureAwait(false);
            await delivery.AckAsync(CancellationToken.None).ConfigureAwait(false);
            Log.UnregisteredRequeued(_logger, signature.Name, signature.Id, delay);
            return;
        }

        var reason = $"task \"{signature.Name}\" is not registered";
        await _client.Backend.SetStateAsync(new TaskStateRecord
        {
            TaskId = signature.Id,
            TaskName = signature.Name,
            State = TaskState.Failure,
            Error = $"dead-lettered: {reason}",
            CreatedAt = _time.GetUtcNow(),
        }).ConfigureAwait(false);
        _diagnostics.Failed.Add(1, DestinationTag(delivery), TaskNameTag(signature));
        await DeadLetterAsync(delivery, reason).ConfigureAwait(false);
    }

    private async Task DeadLetterAsync(IBrokerDelivery delivery, string reason)
    {
        Log.MessageDeadLettered(_logger, delivery.Queue, reason);
        await delivery.DeadLetterAsync(reason, CancellationToken.None).ConfigureAwait(false);
        _diagnostics.DeadLettered.Add(1, DestinationTag(delivery));
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
            activity.SetTag("messaging.client.id", Name);
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

    /// <summary>
    /// Samples the queue's statistics for the <c>conveyor.queue.depth</c> gauge (whose callback can do no I/O),
    /// at once and then every <see cref="WorkerOptions.QueueDepthSampleInterval"/>, and only while someone
    /// listens to the gauge.
    /// </summary>
    private async Task SampleQueueDepthAsync(CancellationToken stoppingToken)
    {
        var interval = _options.QueueDepthSampleInterval;
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                if (_diagnostics.QueueDepth.Enabled)
                {
                    try
                    {
                        _diagnostics.RecordQueueSample(await _client.Broker.GetQueueStatisticsAsync(Queue, stoppingToken).ConfigureAwait(false));
                    }
                    catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
                    {
                        Log.QueueSampleFailed(_logger, ex, Queue);
                    }
                }

                await Task.Delay(interval, _time, stoppingToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            _diagnostics.RemoveQueueSample(Queue);
        }
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

    private static int ReadAttempt(Signature signature) => signature.HeadersOrNull?.GetValueOrDefault(AttemptHeader) switch
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
