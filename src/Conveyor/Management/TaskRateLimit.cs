using System.ComponentModel.DataAnnotations;

namespace Conveyor;

/// <summary>Where a rate limit is counted.</summary>
public enum RateLimitScope
{
    /// <summary>
    /// Across the fleet: one token bucket in the management store (a Lua script on Redis, one write transaction on
    /// SQLite), whatever the number of workers.
    /// </summary>
    Global,

    /// <summary>In this worker only (System.Threading.RateLimiting's token bucket), as Celery's and Asynq's limits are.</summary>
    Worker,
}

/// <summary>
/// A rate limit on a task name, bound from <c>Conveyor:Worker:RateLimits</c>: at most <see cref="Limit"/> runs per
/// <see cref="Period"/>, per key when a key is taken from a header or an argument (per customer, say). A limited
/// task waits for its turn, up to <see cref="WorkerOptions.RateLimitMaxWait"/>, then goes back to the broker with
/// an ETA; it is never failed and never counted as a retry.
/// </summary>
public sealed class TaskRateLimit
{
    /// <summary>The task name the limit applies to.</summary>
    [Required]
    public string Task { get; set; } = string.Empty;

    /// <summary>How many runs per <see cref="Period"/>. The default value is 10.</summary>
    [Range(1, 1_000_000)]
    public int Limit { get; set; } = 10;

    /// <summary>The period. The default value is 1 second.</summary>
    [Range(typeof(TimeSpan), "00:00:00.001", "1.00:00:00")]
    public TimeSpan Period { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>How many runs may go at once after a quiet spell (the bucket's size). The default value is 1: an even pace.</summary>
    [Range(1, 1_000_000)]
    public int Burst { get; set; } = 1;

    /// <summary>Where it is counted. The default value is <see cref="RateLimitScope.Global"/>.</summary>
    public RateLimitScope Scope { get; set; } = RateLimitScope.Global;

    /// <summary>A header whose value keys the limit (one bucket per value); <see langword="null"/> for none.</summary>
    public string? KeyHeader { get; set; }

    /// <summary>The position of an argument whose value keys the limit; <see langword="null"/> for none.</summary>
    [Range(0, 1000)]
    public int? KeyArgument { get; set; }

    /// <summary>The bucket's key for a signature: the task name, and the header's or argument's value when set.</summary>
    /// <param name="signature">The task.</param>
    /// <returns>The key.</returns>
    public string BucketKey(Signature signature)
    {
        ArgumentNullException.ThrowIfNull(signature);
        var key = "rate:" + Task;
        if (KeyHeader is { Length: > 0 } header)
        {
            key += ":h:" + (signature.GetHeader(header) ?? string.Empty);
        }

        if (KeyArgument is { } index)
        {
            key += ":a:" + (index < signature.Args.Count ? Convert.ToString(signature.Args[index].Value, System.Globalization.CultureInfo.InvariantCulture) : string.Empty);
        }

        return key;
    }
}

/// <summary>The answer of a global token bucket (<see cref="IManagementStore.ReserveTokenAsync"/>).</summary>
/// <param name="Granted">Whether a token was reserved.</param>
/// <param name="Wait">Granted: how long to wait for its turn. Not granted: when to ask again.</param>
public readonly record struct TokenReservation(bool Granted, TimeSpan Wait);

/// <summary>The token bucket's arithmetic, shared by the stores that keep its state themselves (in-memory, SQLite).</summary>
public static class TokenBucket
{
    /// <summary>
    /// Refills a bucket for the time passed and reserves one token: the bucket may go into debt (a turn in the
    /// future) up to <paramref name="maxWait"/> worth of tokens, so each caller learns its turn at once.
    /// </summary>
    /// <param name="tokens">The tokens in the bucket; updated when granted.</param>
    /// <param name="elapsedMs">Milliseconds since the bucket was last updated.</param>
    /// <param name="ratePerSecond">The refill rate.</param>
    /// <param name="burst">The bucket's size.</param>
    /// <param name="maxWait">The longest turn to accept.</param>
    /// <returns>The reservation.</returns>
    public static TokenReservation Reserve(ref double tokens, double elapsedMs, double ratePerSecond, int burst, TimeSpan maxWait)
    {
        var ratePerMs = ratePerSecond / 1000;
        var refilled = Math.Min(burst, tokens + (Math.Max(0, elapsedMs) * ratePerMs));
        var after = refilled - 1;
        var waitMs = after >= 0 ? 0 : -after / ratePerMs;
        if (waitMs > maxWait.TotalMilliseconds)
        {
            return new TokenReservation(false, TimeSpan.FromMilliseconds(Math.Ceiling(waitMs - maxWait.TotalMilliseconds)));
        }

        tokens = after;
        return new TokenReservation(true, TimeSpan.FromMilliseconds(Math.Ceiling(waitMs)));
    }
}
