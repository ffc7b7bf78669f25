using System.ComponentModel.DataAnnotations;
using StackExchange.Redis;

namespace Conveyor.Redis;

/// <summary>
/// Settings of the Redis provider. The broker, the result backend and the lock of every process that uses the same
/// Redis database and <see cref="KeyPrefix"/> share queues, states and locks, with each other and with Go machinery.
/// </summary>
/// <remarks>
/// The components take an <see cref="IConnectionMultiplexer"/> that the application opens once per process (from
/// <see cref="ConfigurationOptions"/>, <see cref="Configuration"/> or <see cref="RedisUrl.Parse(string)"/>) and
/// disposes after them; they never dispose it themselves.
/// </remarks>
public sealed class RedisConveyorOptions
{
    /// <summary>
    /// A StackExchange.Redis configuration string (<c>host:port,password=…,ssl=true</c>) for the application's
    /// multiplexer; <see cref="ConfigurationOptions"/> wins when both are set. The components do not read it: it is
    /// here so that one options object can carry the whole setup.
    /// </summary>
    /// <value>The default value is <see langword="null"/>.</value>
    public string? Configuration { get; set; }

    /// <summary>StackExchange.Redis configuration for the application's multiplexer (see <see cref="Configuration"/>).</summary>
    /// <value>The default value is <see langword="null"/>.</value>
    public ConfigurationOptions? ConfigurationOptions { get; set; }

    /// <summary>
    /// A prefix put before every key and channel name. Go machinery uses none, so a non-empty prefix separates
    /// Conveyor from machinery processes on the same database.
    /// </summary>
    /// <value>The default value is the empty string (machinery's layout).</value>
    public string KeyPrefix { get; set; } = string.Empty;

    /// <summary>How long task states and group metadata live after their last write (machinery's <c>ResultsExpireIn</c>, as <c>SET … EX</c>).</summary>
    /// <value>The default value is 1 hour, machinery's 3600 seconds.</value>
    [Range(typeof(TimeSpan), "00:00:01", "3650.00:00:00")]
    public TimeSpan ResultTtl { get; set; } = TimeSpan.FromHours(1);

    /// <summary>
    /// How long a consumer's heartbeat lives. A consumer that stops heartbeating (a crashed or frozen worker) for
    /// this long is declared dead, and any live consumer of the queue moves its in-flight messages back to the queue
    /// (at its next heartbeat). A live consumer renews its heartbeat whatever its tasks do, so a task may run for hours.
    /// </summary>
    /// <value>The default value is 6 seconds: with the 2-second heartbeat, a dead worker's tasks are back in the queue within 8 s.</value>
    [Range(typeof(TimeSpan), "00:00:00.200", "1.00:00:00")]
    public TimeSpan VisibilityTimeout { get; set; } = TimeSpan.FromSeconds(6);

    /// <summary>
    /// How often a consumer renews its heartbeat and looks for dead consumers of its queue. Must be shorter than
    /// <see cref="VisibilityTimeout"/>; <see langword="null"/> means a third of it.
    /// </summary>
    /// <value>The default value is <see langword="null"/> (2 seconds with the default visibility timeout).</value>
    [Range(typeof(TimeSpan), "00:00:00.050", "1.00:00:00")]
    public TimeSpan? HeartbeatInterval { get; set; }

    /// <summary>
    /// How often each consumer moves due tasks from machinery's <c>delayed_tasks</c> sorted set to their queues
    /// (sooner when it knows of a task that falls due earlier). Go machinery polls it every 500 ms.
    /// </summary>
    /// <value>The default value is 100 milliseconds.</value>
    [Range(typeof(TimeSpan), "00:00:00.001", "00:01:00")]
    public TimeSpan DelayedPollInterval { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// The longest an idle consumer waits before it looks at its queue again. Conveyor producers wake idle
    /// consumers at once through pub/sub; this bounds the delay for messages pushed by others (Go machinery's
    /// <c>RPUSH</c>) or whose wake-up was lost in a reconnection.
    /// </summary>
    /// <value>The default value is 100 milliseconds.</value>
    [Range(typeof(TimeSpan), "00:00:00.001", "00:01:00")]
    public TimeSpan IdlePollInterval { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>The most messages a consumer moves to its in-flight list in one script call (never more than its free prefetch).</summary>
    /// <value>The default value is 64.</value>
    [Range(1, 10_000)]
    public int FetchBatchSize { get; set; } = 64;

    /// <summary>The most due delayed tasks moved in one script call.</summary>
    /// <value>The default value is 256.</value>
    [Range(1, 100_000)]
    public int DelayedBatchSize { get; set; } = 256;

    /// <summary>
    /// Whether messages with a priority above 0 go to per-priority lists that consumers drain first (highest
    /// first). Go machinery's Redis broker has no priorities and reads only the plain queue list, so a Go worker
    /// does not see messages published with a priority; with <see langword="false"/>, every message goes to the
    /// plain list and priorities are ignored.
    /// </summary>
    /// <value>The default value is <see langword="true"/>.</value>
    public bool Priorities { get; set; } = true;

    /// <summary>The sorted set of delayed tasks (machinery's <c>DelayedTasksKey</c>), before the key prefix.</summary>
    /// <value>The default value is <c>delayed_tasks</c>, machinery's.</value>
    [Required]
    public string DelayedTasksKey { get; set; } = "delayed_tasks";

    /// <summary>
    /// Whether waiting for a result listens to Redis keyspace notifications of the state key instead of
    /// Conveyor's own channel, so that states written by Go machinery (a plain <c>SET</c>) are pushed too. Needs
    /// <c>notify-keyspace-events</c> with <c>K$</c> (or <c>KA</c>) on the server. Not for Redis Cluster, whose
    /// keyspace events stay on the node that holds the key (and no Go worker shares a cluster anyway): a wait there
    /// would only end at its time limit.
    /// </summary>
    /// <value>The default value is <see langword="false"/> (Conveyor's writers publish on <c>conveyor:state:{task id}</c>).</value>
    public bool UseKeyspaceNotifications { get; set; }

    /// <summary>
    /// How many replicas must acknowledge an enqueue and a final state (Redis <c>WAIT</c>) before it counts as stored.
    /// Redis replicates asynchronously, so at a Sentinel failover the promoted replica may lack the primary's last
    /// writes: with 0, tasks enqueued in that window are lost and tasks finished in it run again; with 1, a confirmed
    /// enqueue or final state is on a replica too. Each such write then waits about one round trip to the replicas.
    /// URL form: <c>?wait_replicas=1</c>.
    /// </summary>
    /// <value>The default value is 0 (no waiting, machinery's behaviour).</value>
    [Range(0, 16)]
    public int WaitForReplicas { get; set; }

    /// <summary>
    /// Whether Redis is a Redis Cluster, whose scripts may only touch keys of one hash slot: then every key a script
    /// touches is in its queue's slot (or its group's), and delayed messages wait in a set per queue instead of
    /// machinery's one global <c>delayed_tasks</c> (the one layout difference from machinery, which has no cluster
    /// support). <see langword="null"/> asks the connection: a server that runs in cluster mode
    /// (StackExchange.Redis's <c>ServerType.Cluster</c>, from <c>CLUSTER NODES</c> at connect time) is one.
    /// URL form: <c>?cluster=true</c>.
    /// </summary>
    /// <value>The default value is <see langword="null"/> (detected from the server).</value>
    public bool? Cluster { get; set; }

    /// <summary>How long a write waits for <see cref="WaitForReplicas"/> replicas before it fails (and is retried or redelivered). URL form: <c>?wait_timeout=1</c> (seconds).</summary>
    /// <value>The default value is 1 second.</value>
    [Range(typeof(TimeSpan), "00:00:00.001", "00:01:00")]
    public TimeSpan ReplicaWaitTimeout { get; set; } = TimeSpan.FromSeconds(1);

    internal TimeSpan EffectiveHeartbeatInterval => HeartbeatInterval ?? VisibilityTimeout / 3;

    /// <summary>
    /// The configuration for the process's multiplexer: <see cref="ConfigurationOptions"/> when set (a copy), else
    /// <see cref="Configuration"/> read as a Redis URL (<c>redis://</c>, <c>rediss://</c>, <c>redis+sentinel://</c>,
    /// through <see cref="RedisUrl.Parse(string)"/>) or as a StackExchange.Redis configuration string.
    /// </summary>
    /// <returns>The configuration, to pass to <see cref="ConnectionMultiplexer.ConnectAsync(StackExchange.Redis.ConfigurationOptions, TextWriter?)"/>.</returns>
    /// <exception cref="InvalidOperationException">Neither is set.</exception>
    public ConfigurationOptions ToConfigurationOptions()
    {
        if (ConfigurationOptions is { } options)
        {
            return options.Clone();
        }

        if (string.IsNullOrWhiteSpace(Configuration))
        {
            throw new InvalidOperationException("RedisConveyorOptions: set Configuration (a redis:// URL or a StackExchange.Redis configuration string) or ConfigurationOptions.");
        }

        return Configuration.Contains("://", StringComparison.Ordinal) ? RedisUrl.Parse(Configuration) : StackExchange.Redis.ConfigurationOptions.Parse(Configuration);
    }

    /// <summary>Checks the settings; the components call it in their constructors.</summary>
    internal void Validate()
    {
        ArgumentNullException.ThrowIfNull(KeyPrefix, nameof(KeyPrefix));
        if (string.IsNullOrEmpty(DelayedTasksKey))
        {
            throw new ArgumentException("RedisConveyorOptions.DelayedTasksKey is required.", nameof(DelayedTasksKey));
        }

        Check(ResultTtl, TimeSpan.FromSeconds(1), TimeSpan.FromDays(3650), nameof(ResultTtl));
        Check(VisibilityTimeout, TimeSpan.FromMilliseconds(200), TimeSpan.FromDays(1), nameof(VisibilityTimeout));
        Check(EffectiveHeartbeatInterval, TimeSpan.FromMilliseconds(50), TimeSpan.FromDays(1), nameof(HeartbeatInterval));
        Check(DelayedPollInterval, TimeSpan.FromMilliseconds(1), TimeSpan.FromMinutes(1), nameof(DelayedPollInterval));
        Check(IdlePollInterval, TimeSpan.FromMilliseconds(1), TimeSpan.FromMinutes(1), nameof(IdlePollInterval));
        if (FetchBatchSize is < 1 or > 10_000)
        {
            throw new ArgumentOutOfRangeException(nameof(FetchBatchSize), FetchBatchSize, "RedisConveyorOptions.FetchBatchSize must be between 1 and 10000.");
        }

        if (DelayedBatchSize is < 1 or > 100_000)
        {
            throw new ArgumentOutOfRangeException(nameof(DelayedBatchSize), DelayedBatchSize, "RedisConveyorOptions.DelayedBatchSize must be between 1 and 100000.");
        }

        if (WaitForReplicas is < 0 or > 16)
        {
            throw new ArgumentOutOfRangeException(nameof(WaitForReplicas), WaitForReplicas, "RedisConveyorOptions.WaitForReplicas must be between 0 and 16.");
        }

        Check(ReplicaWaitTimeout, TimeSpan.FromMilliseconds(1), TimeSpan.FromMinutes(1), nameof(ReplicaWaitTimeout));
        if (EffectiveHeartbeatInterval >= VisibilityTimeout)
        {
            throw new ArgumentException(
                $"RedisConveyorOptions.HeartbeatInterval ({EffectiveHeartbeatInterval}) must be shorter than VisibilityTimeout ({VisibilityTimeout}), or live consumers are declared dead between heartbeats.",
                nameof(HeartbeatInterval));
        }
    }

    private static void Check(TimeSpan value, TimeSpan min, TimeSpan max, string name)
    {
        if (value < min || value > max)
        {
            throw new ArgumentOutOfRangeException(name, value, $"RedisConveyorOptions.{name} must be between {min} and {max}.");
        }
    }
}
