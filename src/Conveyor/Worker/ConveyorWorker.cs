using Microsoft.Extensions.DependencyInjection;
using System.Threading.Channels;
using Conveyor.Diagnostics;
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
    private readonly WorkflowCoordinator _workflow;
    private CancellationTokenSource _hardStop;
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
        _workflow = new WorkflowCoordinator(client, _options, _logger);
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

        var control = await WorkerControl.StartAsync(_options, _services, WorkerControl.Describe(Name, Queue, _options.Concurrency, _time), _time, _logger, stoppingToken).ConfigureAwait(false);
        using var rateLimits = WorkerRateLimits.Create(_options, control?.Store, _time, _logger);
        var sampler = _options.QueueDepthSampleInterval > TimeSpan.Zero ? SampleQueueDepthAsync(stoppingToken) : Task.CompletedTask;
        var reconnectDelay = _options.ReconnectDelay;
        while (!stoppingToken.IsCancellationRequested)
        {
            IMessageConsumer? consumer = null;
            try
            {
                // A paused queue: no consumer at all (on RabbitMQ its basic.consume is canceled), until resumed;
                // the loops' token then ends them when the queue is paused again.
                var loopToken = control is null ? stoppingToken : await control.WaitForResumeAsync(Queue, stoppingToken).ConfigureAwait(false);
                consumer = await _client.Broker.ConsumeAsync(
                    Queue,
                    new ConsumeOptions { Prefetch = _options.EffectivePrefetch, ConsumerName = Name },
                    stoppingToken).ConfigureAwait(false);
                Log.WorkerStarted(_logger, Name, Queue, _options.Concurrency, _options.EffectivePrefetch);
                reconnectDelay = _options.ReconnectDelay;

                // The pipeline: the consumer's bounded deliveries, Concurrency runners, one settler.
                var settler = new StateSettler(_client.Backend, _logger, _time, Name, hardStop.Token);
                await using var settlerDisposal = settler.ConfigureAwait(false);
                var runner = new TaskRunner(_client, _registry, _options, _services, _scopeFactory, _logger, _workflow, settler, hardStop.Token) { Control = control, RateLimits = rateLimits };
                var loops = new Task[_options.Concurrency];
                for (var i = 0; i < loops.Length; i++)
                {
                    loops[i] = RunLoopAsync(consumer.Deliveries, runner, loopToken);
                }

                var allLoops = Task.WhenAll(loops);
                var handBack = control is null ? Task.CompletedTask : PausedIntake.HandBackWhenPausedAsync(consumer, allLoops, _logger, Name, loopToken, stoppingToken);
                try
                {
                    await allLoops.ConfigureAwait(false);
                }
                finally
                {
                    // The finished tasks' states and acknowledgements, before the consumer hands back the rest.
                    await CompleteSettlerAsync(settler).ConfigureAwait(false);
                    await handBack.ConfigureAwait(false);
                }

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

    private async Task RunLoopAsync(ChannelReader<IBrokerDelivery> deliveries, TaskRunner runner, CancellationToken stoppingToken)
    {
        var queueTag = new KeyValuePair<string, object?>("messaging.destination.name", Queue);
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
                Interlocked.Increment(ref _inFlight);
                _diagnostics.InFlight.Add(1, queueTag);
                try
                {
                    await runner.RunAsync(delivery).ConfigureAwait(false);
                }
                finally
                {
                    Interlocked.Decrement(ref _inFlight);
                    _diagnostics.InFlight.Add(-1, queueTag);
                }
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

    private async Task CompleteSettlerAsync(StateSettler settler)
    {
        try
        {
            await settler.CompleteAsync().ConfigureAwait(false);
        }
        catch (Exception) when (_hardStop.IsCancellationRequested)
        {
            // Logged by the settler: the unsettled messages go back with the consumer.
        }
    }
}
