namespace Conveyor;

/// <summary>Decides how long a failed task waits before its next run.</summary>
public interface IRetryPolicy
{
    /// <summary>
    /// Gives the delay before the next run. May update <see cref="Signature.RetryTimeout"/>, which travels with the
    /// task (machinery keeps its Fibonacci state there).
    /// </summary>
    /// <param name="signature">The failed task, about to be published again.</param>
    /// <param name="attempt">The run that failed: 1 for the first.</param>
    /// <returns>The delay.</returns>
    TimeSpan NextDelay(Signature signature, int attempt);
}

/// <summary>
/// Machinery's default backoff: <see cref="Signature.RetryTimeout"/> steps through the Fibonacci sequence
/// (1, 2, 3, 5, 8, ... seconds), so Go and .NET workers retry a task on the same schedule.
/// </summary>
public sealed class FibonacciRetryPolicy : IRetryPolicy
{
    /// <summary>The shared instance.</summary>
    public static FibonacciRetryPolicy Instance { get; } = new();

    /// <inheritdoc/>
    public TimeSpan NextDelay(Signature signature, int attempt)
    {
        ArgumentNullException.ThrowIfNull(signature);
        signature.RetryTimeout = Next(signature.RetryTimeout);
        return TimeSpan.FromSeconds(signature.RetryTimeout);
    }

    /// <summary>The Fibonacci number after <paramref name="value"/> (machinery's <c>retry.FibonacciNext</c>).</summary>
    /// <param name="value">The current value.</param>
    /// <returns>The next Fibonacci number.</returns>
    public static int Next(int value)
    {
        int a = 0, b = 1;
        while (b <= value)
        {
            (a, b) = (b, checked(a + b));
        }

        return b;
    }
}

/// <summary>Exponential backoff with full jitter: a random delay in [0, min(max, base × 2^(attempt-1))].</summary>
public sealed class ExponentialRetryPolicy : IRetryPolicy
{
    private readonly Random _random;

    /// <summary>Creates the policy.</summary>
    /// <param name="baseDelay">The first delay's ceiling.</param>
    /// <param name="maxDelay">The largest delay.</param>
    /// <param name="random">The random source; a shared one when <see langword="null"/>.</param>
    public ExponentialRetryPolicy(TimeSpan baseDelay, TimeSpan maxDelay, Random? random = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(baseDelay, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxDelay, baseDelay);
        BaseDelay = baseDelay;
        MaxDelay = maxDelay;
        _random = random ?? Random.Shared;
    }

    /// <summary>The first delay's ceiling.</summary>
    public TimeSpan BaseDelay { get; }

    /// <summary>The largest delay.</summary>
    public TimeSpan MaxDelay { get; }

    /// <inheritdoc/>
    public TimeSpan NextDelay(Signature signature, int attempt)
    {
        ArgumentNullException.ThrowIfNull(signature);
        var exponent = Math.Clamp(attempt - 1, 0, 30);
        var ceiling = Math.Min(MaxDelay.Ticks, BaseDelay.Ticks * (1L << exponent));
        var delay = TimeSpan.FromTicks((long)(_random.NextDouble() * ceiling));
        signature.RetryTimeout = (int)Math.Ceiling(delay.TotalSeconds);
        return delay;
    }
}
