using System.ComponentModel.DataAnnotations;

namespace Conveyor;

/// <summary>What a worker does with a message whose task name it has no handler for.</summary>
public enum UnregisteredTaskPolicy
{
    /// <summary>Record FAILURE with the reason and move the message to the dead-letter store. The default.</summary>
    DeadLetter,

    /// <summary>Hand the message back with <see cref="WorkerOptions.UnregisteredRequeueDelay"/>, for a worker that has the handler.</summary>
    Requeue,
}

/// <summary>Settings of a worker.</summary>
public sealed class WorkerOptions
{
    /// <summary>The queue to consume; empty means the client's default queue. The default value is empty.</summary>
    public string Queue { get; set; } = string.Empty;

    /// <summary>How many tasks run at once. The default value is the number of processors.</summary>
    [Range(1, 100_000)]
    public int Concurrency { get; set; } = Environment.ProcessorCount;

    /// <summary>
    /// How many messages the worker holds unsettled at once (running or waiting); 0 means twice
    /// <see cref="Concurrency"/>. The default value is 0.
    /// </summary>
    [Range(0, 1_000_000)]
    public int Prefetch { get; set; }

    /// <summary>The worker's name (consumer tag). The default value is <c>worker@host:pid</c>.</summary>
    public string Name { get; set; } = $"worker@{Environment.MachineName}:{Environment.ProcessId}";

    /// <summary>
    /// How long a handler may run before its token is canceled and the task fails as timed out; <see langword="null"/>
    /// for no limit. A timed-out task is retried like any failure while it has retries left. The default value is <see langword="null"/>.
    /// </summary>
    public TimeSpan? TaskTimeout { get; set; }

    /// <summary>
    /// How long running tasks may go on after a stop is requested; then their tokens are canceled and their messages
    /// handed back. The default value is 30 seconds.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "01:00:00")]
    public TimeSpan ShutdownGracePeriod { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>The backoff between retries. The default value is machinery's Fibonacci backoff.</summary>
    public IRetryPolicy RetryPolicy { get; set; } = FibonacciRetryPolicy.Instance;

    /// <summary>What to do with a task that has no handler here. The default value is <see cref="UnregisteredTaskPolicy.DeadLetter"/>.</summary>
    public UnregisteredTaskPolicy UnregisteredTasks { get; set; } = UnregisteredTaskPolicy.DeadLetter;

    /// <summary>The delay before an unregistered task is offered again, under <see cref="UnregisteredTaskPolicy.Requeue"/>. The default value is 30 seconds.</summary>
    public TimeSpan UnregisteredRequeueDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The most times a message is delivered to workers that died (or handed it back) before it finished: the next
    /// delivery dead-letters it with the reason "worker died N times while running this task", so that a task that
    /// kills its process (a stack overflow, <see cref="Environment.FailFast(string)"/>, out of memory) does not take
    /// the fleet down in turn forever. Counted by brokers that count deliveries (SQLite, SQS, RabbitMQ quorum
    /// queues, in-memory); on the others (Redis, RabbitMQ classic queues) a message is never dead-lettered this way.
    /// <see langword="null"/> turns it off.
    /// </summary>
    /// <value>The default value is 5.</value>
    [Range(1, int.MaxValue)]
    public int? MaxDeliveries { get; set; } = 5;

    /// <summary>How long to wait before consuming again after the broker failed. The default value is 1 second (doubling up to 30).</summary>
    public TimeSpan ReconnectDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Runs before a task's handler (machinery's pre-task handler).</summary>
    public Func<TaskContext, ValueTask>? BeforeTask { get; set; }

    /// <summary>Runs after a task reached a final state (machinery's post-task handler).</summary>
    public Func<TaskContext, TaskStateRecord, ValueTask>? AfterTask { get; set; }

    /// <summary>Runs when a handler throws (machinery's error handler), before the retry or failure is recorded.</summary>
    public Func<TaskContext, Exception, ValueTask>? OnError { get; set; }

    /// <summary>
    /// How many links to its members' process spans a chord callback's spans carry at most; 0 stores and links
    /// none. Each link costs about 56 bytes in the callback's message (a W3C <c>traceparent</c>), and the
    /// OpenTelemetry SDK keeps 128 links per span by default (<c>SpanLinkCountLimit</c>): raise both together.
    /// The default value is 128.
    /// </summary>
    [Range(0, 1_000)]
    public int MaxChordCallbackLinks { get; set; } = 128;

    /// <summary>
    /// How often the worker samples its queue's statistics for the <c>conveyor.queue.depth</c> gauge (one broker
    /// call, made only while a listener enables the gauge); <see cref="TimeSpan.Zero"/> turns sampling off.
    /// The default value is 5 seconds.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "01:00:00")]
    public TimeSpan QueueDepthSampleInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// The store of the fleet's control state (revocations, paused queues, worker heartbeats, progress); when
    /// <see langword="null"/>, the one registered in the worker's services, if any. Without one the worker
    /// ignores revocations and pauses.
    /// </summary>
    public IManagementStore? ManagementStore { get; set; }

    /// <summary>
    /// The longest the worker goes without reading the control state where the store cannot push it (SQLite):
    /// a revocation or a pause takes effect within this. Redis pushes changes and reads at most every 5 s
    /// besides. The default value is 250 milliseconds.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:01:00")]
    public TimeSpan ControlPollInterval { get; set; } = TimeSpan.FromMilliseconds(250);

    /// <summary>
    /// How often the worker renews its record in the management store (<c>conveyor workers</c>); the record
    /// lapses after three intervals without one. The default value is 2 seconds.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.050", "00:10:00")]
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Rate limits on task names (<see cref="TaskRateLimit"/>), bound from <c>Conveyor:Worker:RateLimits</c>. A
    /// global one needs a management store. Tasks without a limit pay one dictionary lookup.
    /// </summary>
    public IList<TaskRateLimit> RateLimits { get; } = [];

    /// <summary>
    /// The longest a rate-limited task waits in its worker for its turn; a later turn sends it back to the broker
    /// with an ETA (not a retry). The default value is 5 seconds.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:10:00")]
    public TimeSpan RateLimitMaxWait { get; set; } = TimeSpan.FromSeconds(5);

    internal int EffectivePrefetch => Prefetch > 0 ? Prefetch : Concurrency * 2;
}
