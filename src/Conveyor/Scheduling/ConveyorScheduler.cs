using Conveyor.Diagnostics;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Conveyor;

/// <summary>
/// Publishes periodic tasks, groups, chords and chains (machinery's periodic tasks, without their duplicate ticks).
/// Run any number of schedulers, in any number of processes, on one store: each tick of each schedule is published
/// once.
/// </summary>
/// <remarks>
/// <para>
/// Exactly once per tick, by a claim per tick rather than a leader. Tick times depend on the schedule alone (cron
/// occurrences, or intervals anchored at the Unix epoch), so every scheduler computes the same ticks. At tick T of
/// schedule S each scheduler calls <see cref="IDistributedLock.TryAdvanceFenceAsync"/> on the fence
/// <c>conveyor:beat:S</c> with T in Unix milliseconds; the fence only moves forward, so exactly one call wins, and only
/// the winner publishes. Nothing needs electing or failing over: when the scheduler that won a tick dies, the others
/// are still claiming every tick, so at most the one tick it had claimed and not yet published is lost (at most once,
/// never twice). A scheduler that paused (a GC, a VM freeze) cannot publish an old tick after it resumes, because the
/// fence has moved past it. The store keeps one record per schedule name, whatever the number of ticks.
/// </para>
/// <para>
/// The loop waits on the client's <see cref="TimeProvider"/> for the earliest next tick or for a change, so
/// <see cref="Add"/> and <see cref="Remove"/> take effect at once and a removed schedule never ticks again. A failed
/// tick (the store or the broker is down) is logged and counted, and the schedule goes on with its next tick.
/// </para>
/// </remarks>
public sealed partial class ConveyorScheduler : BackgroundService
{
    /// <summary>The header that carries the name of the schedule that published a task.</summary>
    public const string ScheduleHeader = "conveyor-schedule";

    /// <summary>The header that carries the tick a task was published for: RFC 3339, UTC, milliseconds (<c>2026-11-27T04:00:00.000Z</c>).</summary>
    public const string TickHeader = "conveyor-tick";

    /// <summary>What goes before a schedule's name to make the name of its fence (see <see cref="IDistributedLock.TryAdvanceFenceAsync"/>).</summary>
    public const string FencePrefix = "conveyor:beat:";

    private static readonly TimeSpan LoopFailureDelay = TimeSpan.FromSeconds(1);

    private readonly ConveyorClient _client;
    private readonly IDistributedLock _locks;
    private readonly SchedulerOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _passes;

    /// <summary>Creates a scheduler with the schedules in <paramref name="options"/>. It does nothing until started.</summary>
    /// <param name="client">The client it publishes through; its clock is the scheduler's clock.</param>
    /// <param name="locks">The store whose fences claim the ticks: the same store for every scheduler of these schedules.</param>
    /// <param name="options">Settings and schedules; defaults and none when <see langword="null"/>.</param>
    /// <param name="loggerFactory">Logging; none when <see langword="null"/>.</param>
    public ConveyorScheduler(ConveyorClient client, IDistributedLock locks, SchedulerOptions? options = null, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(locks);
        _client = client;
        _locks = locks;
        _options = options ?? new SchedulerOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(_options.MisfireThreshold, TimeSpan.Zero, nameof(options));
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<ConveyorScheduler>();
        _time = client.TimeProvider;
        foreach (var schedule in _options.Schedules)
        {
            ArgumentNullException.ThrowIfNull(schedule, nameof(options));
            if (!_entries.TryAdd(schedule.Name, new Entry(schedule)))
            {
                throw new ArgumentException($"Two schedules are named '{schedule.Name}'.", nameof(options));
            }
        }
    }

    /// <summary>The schedules, ordered by name (a snapshot).</summary>
    public IReadOnlyList<PeriodicSchedule> Schedules
    {
        get
        {
            lock (_gate)
            {
                return [.. _entries.Values.Select(e => e.Schedule).OrderBy(s => s.Name, StringComparer.Ordinal)];
            }
        }
    }

    /// <summary>How many passes the loop has made and then armed its wake-up (for tests that wait for the loop).</summary>
    internal long Passes => Interlocked.Read(ref _passes);

    /// <summary>The fence name of a schedule.</summary>
    /// <param name="scheduleName">The schedule's name.</param>
    /// <returns><see cref="FencePrefix"/> followed by the name.</returns>
    public static string FenceName(string scheduleName)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(scheduleName);
        return FencePrefix + scheduleName;
    }

    /// <summary>Adds a schedule, or replaces the one with the same name; it takes effect at once, also while running.</summary>
    /// <param name="schedule">The schedule. Its first tick is the first one after now (with <see cref="MisfirePolicy.CatchUp"/>, missed ticks come first).</param>
    public void Add(PeriodicSchedule schedule)
    {
        ArgumentNullException.ThrowIfNull(schedule);
        TaskCompletionSource changed;
        lock (_gate)
        {
            if (_entries.TryGetValue(schedule.Name, out var existing))
            {
                existing.Removed = true;
            }

            _entries[schedule.Name] = new Entry(schedule);
            changed = SwapChanged();
        }

        Log.ScheduleAdded(_logger, schedule.Name, schedule.Description, schedule.Trigger.ToString());
        changed.TrySetResult();
    }

    /// <summary>Removes a schedule; it never ticks again from the moment this returns (a tick already being published completes).</summary>
    /// <param name="name">The schedule's name.</param>
    /// <returns><see langword="true"/> when there was such a schedule.</returns>
    public bool Remove(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        TaskCompletionSource changed;
        lock (_gate)
        {
            if (!_entries.Remove(name, out var entry))
            {
                return false;
            }

            entry.Removed = true;
            changed = SwapChanged();
        }

        Log.ScheduleRemoved(_logger, name);
        changed.TrySetResult();
        return true;
    }

    /// <summary>The next tick of a schedule after now, as this scheduler computes it.</summary>
    /// <param name="name">The schedule's name.</param>
    /// <returns>The tick in UTC, or <see langword="null"/> when there is no such schedule or it never ticks again.</returns>
    public DateTimeOffset? GetNextTick(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        PeriodicSchedule? schedule;
        lock (_gate)
        {
            schedule = _entries.TryGetValue(name, out var entry) ? entry.Schedule : null;
        }

        return schedule?.Trigger.GetNextOccurrence(_time.GetUtcNow());
    }

    /// <summary>The last tick of a schedule claimed by any scheduler on the store, read from its fence.</summary>
    /// <param name="name">The schedule's name.</param>
    /// <param name="cancellationToken">Cancels the read.</param>
    /// <returns>The tick in UTC, or <see langword="null"/> when it never ticked.</returns>
    public async ValueTask<DateTimeOffset?> GetLastTickAsync(string name, CancellationToken cancellationToken = default)
    {
        var fence = await _locks.ReadFenceAsync(FenceName(name), cancellationToken).ConfigureAwait(false);
        return fence is { } ms ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : null;
    }

    /// <inheritdoc/>
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        lock (_gate)
        {
            foreach (var entry in _entries.Values)
            {
                // Restarted: begin again from now.
                entry.Next = null;
                entry.Seen = false;
            }

            Log.SchedulerStarted(_logger, _entries.Count);
        }

        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await RunPassAsync(stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex)
            {
                // Never let an error stop the host: log it and go on after a pause.
                Log.SchedulerLoopFailed(_logger, ex, LoopFailureDelay);
                try
                {
                    await Task.Delay(LoopFailureDelay, _time, stoppingToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
        }

        Log.SchedulerStopped(_logger);
    }

    private TaskCompletionSource SwapChanged()
    {
        var changed = _changed;
        _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        return changed;
    }

    private async Task RunPassAsync(CancellationToken stoppingToken)
    {
        Task changed;
        Entry[] entries;
        lock (_gate)
        {
            // Taken before the snapshot, so a change made after the snapshot always wakes the wait below.
            changed = _changed.Task;
            entries = [.. _entries.Values];
        }

        var now = _time.GetUtcNow();
        DateTimeOffset? earliest = null;
        foreach (var entry in entries)
        {
            if (entry.Removed)
            {
                continue;
            }

            // A new schedule starts with the first tick after now; CatchUp first looks back at once (Next = now).
            entry.Next ??= entry.Schedule.Misfire == MisfirePolicy.CatchUp ? now : entry.Schedule.Trigger.GetNextOccurrence(now) ?? DateTimeOffset.MaxValue;
            if (entry.Next <= now)
            {
                await RunDueTicksAsync(entry, now, stoppingToken).ConfigureAwait(false);
                entry.Seen = true;
                entry.Next = entry.Schedule.Trigger.GetNextOccurrence(now) ?? DateTimeOffset.MaxValue;
            }

            if (entry.Next != DateTimeOffset.MaxValue && (earliest is null || entry.Next < earliest))
            {
                earliest = entry.Next;
            }
        }

        using var wake = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        Task delay;
        if (earliest is { } next)
        {
            var wait = next - _time.GetUtcNow();
            if (wait <= TimeSpan.Zero)
            {
                return;
            }

            // Task.Delay truncates to whole milliseconds: round up so that the wake-up is never before the tick.
            delay = Task.Delay(TimeSpan.FromMilliseconds(Math.Ceiling(wait.TotalMilliseconds)), _time, wake.Token);
        }
        else
        {
            delay = Task.Delay(Timeout.InfiniteTimeSpan, _time, wake.Token);
        }

        // Counted once the wake-up is armed: a test that moves a fake clock after seeing the count cannot slip in
        // between reading the time and arming the timer (which would make the timer one period late).
        Interlocked.Increment(ref _passes);

        await Task.WhenAny(delay, changed).ConfigureAwait(false);
        await wake.CancelAsync().ConfigureAwait(false);
        stoppingToken.ThrowIfCancellationRequested();
    }

    /// <summary>Claims and publishes the ticks of one schedule that are due at <paramref name="now"/>.</summary>
    private async Task RunDueTicksAsync(Entry entry, DateTimeOffset now, CancellationToken stoppingToken)
    {
        var schedule = entry.Schedule;
        var fenceName = FenceName(schedule.Name);
        if (await IsDisabledAsync(schedule.Name, stoppingToken).ConfigureAwait(false))
        {
            return;
        }

        List<DateTimeOffset> ticks;
        try
        {
            ticks = schedule.Misfire == MisfirePolicy.CatchUp
                ? await CatchUpTicksAsync(entry, fenceName, now, stoppingToken).ConfigureAwait(false)
                : await OnTimeTicksAsync(entry, fenceName, now, stoppingToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
        {
            Count(schedule.Name, "failed");
            Log.TickFailed(_logger, ex, schedule.Name, PeriodicSchedule.FormatTick(entry.Next!.Value));
            return;
        }

        foreach (var tick in ticks)
        {
            if (entry.Removed)
            {
                return;
            }

            var tickText = PeriodicSchedule.FormatTick(tick);
            try
            {
                if (!await _locks.TryAdvanceFenceAsync(fenceName, tick.ToUnixTimeMilliseconds(), stoppingToken).ConfigureAwait(false))
                {
                    Count(schedule.Name, "claimed_elsewhere");
                    Log.TickClaimedElsewhere(_logger, schedule.Name, tickText);
                    continue;
                }

                // Claimed: publish even if stopping now, or the tick would be lost to every scheduler.
                var id = await schedule.PublishAsync(_client, tick, CancellationToken.None).ConfigureAwait(false);
                Count(schedule.Name, "published");
                Log.TickPublished(_logger, schedule.Name, tickText, schedule.Description, id);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                throw;
            }
            catch (Exception ex)
            {
                Count(schedule.Name, "failed");
                Log.TickFailed(_logger, ex, schedule.Name, tickText);
            }
        }
    }

    /// <summary>
    /// Skip: the due ticks (from the entry's next tick to now) late by at most the misfire threshold, oldest first.
    /// Later ones are dropped, and logged when no other scheduler claimed them.
    /// </summary>
    private async Task<List<DateTimeOffset>> OnTimeTicksAsync(Entry entry, string fenceName, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var schedule = entry.Schedule;
        var onTime = new List<DateTimeOffset>();
        var late = 0;
        DateTimeOffset? lastLate = null;
        foreach (var tick in schedule.Trigger.GetOccurrencesDescending(now, entry.Next!.Value.AddTicks(-1)))
        {
            if (now - tick <= _options.MisfireThreshold)
            {
                onTime.Add(tick);
            }
            else
            {
                lastLate ??= tick;
                if (++late >= 10_000)
                {
                    break; // enough to say so in the log
                }
            }
        }

        onTime.Reverse();
        if (lastLate is { } last)
        {
            var fence = await _locks.ReadFenceAsync(fenceName, cancellationToken).ConfigureAwait(false);
            if (fence is null || fence < last.ToUnixTimeMilliseconds())
            {
                Count(schedule.Name, "skipped", late);
                Log.TicksSkipped(_logger, schedule.Name, late, PeriodicSchedule.FormatTick(last), _options.MisfireThreshold);
            }
        }

        return onTime;
    }

    /// <summary>
    /// CatchUp: the ticks after the last claimed one (the fence; or after the entry's next tick when nothing was ever
    /// claimed) up to now, at most MaxCatchUp of them, the most recent ones, oldest first.
    /// </summary>
    private async Task<List<DateTimeOffset>> CatchUpTicksAsync(Entry entry, string fenceName, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var schedule = entry.Schedule;
        var fence = await _locks.ReadFenceAsync(fenceName, cancellationToken).ConfigureAwait(false);
        // Nothing ever claimed: from the schedule's start (now, on the first pass) or from its next tick on.
        var after = fence is { } ms ? DateTimeOffset.FromUnixTimeMilliseconds(ms)
            : entry.Seen ? entry.Next!.Value.AddTicks(-1)
            : now;
        var ticks = schedule.Trigger.GetOccurrencesDescending(now, after).Take(schedule.MaxCatchUp + 1).ToList();
        var more = ticks.Count > schedule.MaxCatchUp;
        if (more)
        {
            ticks.RemoveAt(ticks.Count - 1);
        }

        ticks.Reverse();
        if (ticks.Count > 0 && (more || now - ticks[0] > _options.MisfireThreshold))
        {
            Log.CatchingUp(_logger, schedule.Name, ticks.Count, PeriodicSchedule.FormatTick(ticks[0]), more ? $" (the {schedule.MaxCatchUp} most recent; older ones are skipped)" : string.Empty);
        }

        return ticks;
    }

    private void Count(string schedule, string outcome, long count = 1) =>
        _client.Diagnostics.ScheduleTicks.Add(
            count,
            new KeyValuePair<string, object?>("conveyor.schedule.name", schedule),
            new KeyValuePair<string, object?>("conveyor.schedule.outcome", outcome));

    private sealed class Entry(PeriodicSchedule schedule)
    {
        public PeriodicSchedule Schedule { get; } = schedule;

        /// <summary>The next tick to look at; <see langword="null"/> until the loop first sees the entry.</summary>
        public DateTimeOffset? Next { get; set; }

        /// <summary>Whether the loop has run the entry's due ticks once.</summary>
        public bool Seen { get; set; }

        public volatile bool Removed;
    }
}
