using System.Collections.Concurrent;
using System.Threading.RateLimiting;
using Conveyor.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Conveyor;

/// <summary>
/// A worker's rate limits (<see cref="WorkerOptions.RateLimits"/>): before a limited task runs, its runner takes a
/// token — from the management store's bucket for a global limit, from an in-process token bucket for a per-worker
/// one — and waits for its turn. A turn further than <see cref="WorkerOptions.RateLimitMaxWait"/> sends the task back
/// with an ETA. Tasks without a limit pay one dictionary lookup.
/// </summary>
/// <remarks>
/// The per-worker buckets run on real time, not on the injected <see cref="TimeProvider"/>: .NET 10's
/// <see cref="TokenBucketRateLimiter"/> measures the time since its last replenishment with the system's stopwatch
/// even when replenished by hand (<c>AutoReplenishment = false</c>: a <c>TryReplenish</c> after 500 ms of fake time
/// and 200 ms of real time adds 0.4 of a token), so a fake clock cannot drive it. Global limits use the store's
/// clock (Redis <c>TIME</c>, SQLite's caller) and sleep on the injected one.
/// </remarks>
internal sealed class WorkerRateLimits : IDisposable
{
    private readonly Dictionary<string, TaskRateLimit> _limits;
    private readonly IManagementStore? _store;
    private readonly TimeProvider _time;
    private readonly TimeSpan _maxWait;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, TokenBucketRateLimiter> _local = new(StringComparer.Ordinal);

    private WorkerRateLimits(IEnumerable<TaskRateLimit> limits, IManagementStore? store, TimeProvider time, TimeSpan maxWait, ILogger logger)
    {
        _limits = limits.ToDictionary(l => l.Task, StringComparer.Ordinal);
        _store = store;
        _time = time;
        _maxWait = maxWait;
        _logger = logger;
    }

    /// <summary>The limits of a worker, or <see langword="null"/> when it has none (the hot path then checks nothing).</summary>
    /// <exception cref="InvalidOperationException">A global limit without a management store, or two limits on one task.</exception>
    public static WorkerRateLimits? Create(WorkerOptions options, IManagementStore? store, TimeProvider time, ILogger logger)
    {
        if (options.RateLimits.Count == 0)
        {
            return null;
        }

        if (options.RateLimits.GroupBy(l => l.Task, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1) is { } twice)
        {
            throw new InvalidOperationException($"Worker {options.Name}: task {twice.Key} has {twice.Count()} rate limits; give it one.");
        }

        if (store is null && options.RateLimits.FirstOrDefault(l => l.Scope == RateLimitScope.Global) is { } global)
        {
            throw new InvalidOperationException($"Worker {options.Name}: the global rate limit on {global.Task} needs a management store (SQLite or Redis); none is configured.");
        }

        return new WorkerRateLimits(options.RateLimits, store, time, options.RateLimitMaxWait, logger);
    }

    /// <summary>
    /// Waits for the task's turn. Returns <see cref="TimeSpan.Zero"/> when it may run now; else the delay after
    /// which it should be published again.
    /// </summary>
    public async ValueTask<TimeSpan> WaitForTurnAsync(Signature signature, CancellationToken cancellationToken)
    {
        if (!_limits.TryGetValue(signature.Name, out var limit))
        {
            return TimeSpan.Zero;
        }

        var bucket = limit.BucketKey(signature);
        if (limit.Scope == RateLimitScope.Worker)
        {
            var limiter = _local.GetOrAdd(bucket, static (_, l) => new TokenBucketRateLimiter(new TokenBucketRateLimiterOptions
            {
                TokenLimit = l.Burst,
                TokensPerPeriod = 1,
                ReplenishmentPeriod = l.Period / l.Limit,
                QueueLimit = 10_000,
                QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
                AutoReplenishment = true,
            }), limit);
            using var cancelAfter = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            cancelAfter.CancelAfter(_maxWait);
            try
            {
                using var lease = await limiter.AcquireAsync(1, cancelAfter.Token).ConfigureAwait(false);
                return lease.IsAcquired ? TimeSpan.Zero : _maxWait;
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                Log.RateLimited(_logger, signature.Name, signature.Id, _maxWait);
                return _maxWait;
            }
        }

        var reservation = await _store!.ReserveTokenAsync(bucket, limit.Limit / limit.Period.TotalSeconds, limit.Burst, _maxWait, cancellationToken).ConfigureAwait(false);
        if (!reservation.Granted)
        {
            Log.RateLimited(_logger, signature.Name, signature.Id, reservation.Wait);
            return reservation.Wait > TimeSpan.Zero ? reservation.Wait : TimeSpan.FromMilliseconds(1);
        }

        if (reservation.Wait > TimeSpan.Zero)
        {
            await Task.Delay(reservation.Wait, _time, cancellationToken).ConfigureAwait(false);
        }

        return TimeSpan.Zero;
    }

    public void Dispose()
    {
        foreach (var limiter in _local.Values)
        {
            limiter.Dispose();
        }
    }
}
