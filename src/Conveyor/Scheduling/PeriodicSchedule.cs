using System.Globalization;

namespace Conveyor;

/// <summary>
/// A named periodic job: a trigger (cron or interval), a misfire policy, and what to publish at each tick (a task, a
/// group, a chord or a chain). The work given is copied, and each tick publishes a fresh copy with new task and
/// group ids; every published signature (members, callbacks, chain links) carries the headers
/// <see cref="ConveyorScheduler.ScheduleHeader"/> and <see cref="ConveyorScheduler.TickHeader"/>.
/// </summary>
public sealed partial class PeriodicSchedule
{
    /// <summary>The default of <see cref="MaxCatchUp"/>: 5 ticks.</summary>
    public const int DefaultMaxCatchUp = 5;

    private readonly Signature? _task;
    private readonly Signature[]? _tasks;
    private readonly Signature? _callback;
    private readonly int _maxCatchUp = DefaultMaxCatchUp;

    /// <summary>Creates a schedule that publishes one task.</summary>
    /// <param name="name">The schedule's name: unique among the schedules of all scheduler processes that share a store.</param>
    /// <param name="trigger">When it ticks.</param>
    /// <param name="task">The task; copied now.</param>
    public PeriodicSchedule(string name, ScheduleTrigger trigger, Signature task)
        : this(name, trigger, ScheduleKind.Task)
    {
        ArgumentNullException.ThrowIfNull(task);
        _task = task.Clone();
        Description = task.Name;
    }

    /// <summary>Creates a schedule that publishes a group.</summary>
    /// <param name="name">The schedule's name.</param>
    /// <param name="trigger">When it ticks.</param>
    /// <param name="group">The group; its members are copied now.</param>
    public PeriodicSchedule(string name, ScheduleTrigger trigger, TaskGroup group)
        : this(name, trigger, ScheduleKind.Group)
    {
        ArgumentNullException.ThrowIfNull(group);
        _tasks = [.. group.Tasks.Select(CopyMember)];
        Description = $"group({string.Join(", ", _tasks.Select(t => t.Name))})";
    }

    /// <summary>Creates a schedule that publishes a chord.</summary>
    /// <param name="name">The schedule's name.</param>
    /// <param name="trigger">When it ticks.</param>
    /// <param name="chord">The chord; its members and callback are copied now.</param>
    public PeriodicSchedule(string name, ScheduleTrigger trigger, Chord chord)
        : this(name, trigger, ScheduleKind.Chord)
    {
        ArgumentNullException.ThrowIfNull(chord);
        _tasks = [.. chord.Group.Tasks.Select(CopyMember)];
        _callback = chord.Callback.Clone();
        Description = $"chord({string.Join(", ", _tasks.Select(t => t.Name))} -> {_callback.Name})";
    }

    /// <summary>Creates a schedule that publishes a chain.</summary>
    /// <param name="name">The schedule's name.</param>
    /// <param name="trigger">When it ticks.</param>
    /// <param name="chain">The chain; its tasks are copied now.</param>
    public PeriodicSchedule(string name, ScheduleTrigger trigger, Chain chain)
        : this(name, trigger, ScheduleKind.Chain)
    {
        ArgumentNullException.ThrowIfNull(chain);
        _tasks = new Signature[chain.Tasks.Count];
        for (var i = 0; i < _tasks.Length; i++)
        {
            var step = chain.Tasks[i].Clone();
            if (i < _tasks.Length - 1)
            {
                // The chain nested the next step here; each tick nests fresh copies again.
                step.SetOnSuccess(null);
            }

            _tasks[i] = step;
        }

        Description = $"chain({string.Join(" -> ", _tasks.Select(t => t.Name))})";
    }

    private PeriodicSchedule(string name, ScheduleTrigger trigger, ScheduleKind kind)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(trigger);
        Name = name;
        Trigger = trigger;
        Kind = kind;
        Description = string.Empty;
    }

    /// <summary>The schedule's name; its ticks are claimed under it, so it must be the same in every scheduler process.</summary>
    public string Name { get; }

    /// <summary>When it ticks.</summary>
    public ScheduleTrigger Trigger { get; }

    /// <summary>What it publishes.</summary>
    public ScheduleKind Kind { get; }

    /// <summary>A short description of the work, such as <c>cleanup</c> or <c>chain(a -> b)</c>.</summary>
    public string Description { get; }

    /// <summary>What to do with late ticks.</summary>
    /// <value>The default value is <see cref="MisfirePolicy.Skip"/>.</value>
    public MisfirePolicy Misfire { get; init; } = MisfirePolicy.Skip;

    /// <summary>With <see cref="MisfirePolicy.CatchUp"/>, the most missed ticks published at once (the most recent ones).</summary>
    /// <value>The default value is 5.</value>
    /// <exception cref="ArgumentOutOfRangeException">The value is below 1.</exception>
    public int MaxCatchUp
    {
        get => _maxCatchUp;
        init
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1);
            _maxCatchUp = value;
        }
    }

    /// <summary>
    /// Makes a schedule from configuration, checking every setting. The error names the setting, for example
    /// <c>Conveyor:Schedules:cleanup:Cron: '61 * * * *' is not a valid cron spec (…)</c>.
    /// </summary>
    /// <param name="name">The schedule's name.</param>
    /// <param name="options">The settings.</param>
    /// <param name="settingPath">Where the settings come from, such as <c>Conveyor:Schedules:cleanup</c>; put before each setting's name in errors.</param>
    /// <returns>The schedule, or <see langword="null"/> when <see cref="ScheduleOptions.Enabled"/> is <see langword="false"/>.</returns>
    /// <exception cref="ArgumentException">A setting is missing or invalid; the message is one line that names it.</exception>
    public static PeriodicSchedule? FromOptions(string name, ScheduleOptions options, string settingPath)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(options);
        string Setting(string key) => string.IsNullOrEmpty(settingPath) ? key : settingPath + ":" + key;

        var hasCron = !string.IsNullOrWhiteSpace(options.Cron);
        if (hasCron && options.Interval is not null)
        {
            throw new ArgumentException($"{Setting("Interval")}: set either Cron or Interval, not both");
        }

        ScheduleTrigger trigger;
        if (hasCron)
        {
            var zone = TimeZoneInfo.Utc;
            if (!string.IsNullOrWhiteSpace(options.TimeZone))
            {
                try
                {
                    zone = TimeZoneInfo.FindSystemTimeZoneById(options.TimeZone.Trim());
                }
                catch (Exception ex) when (ex is TimeZoneNotFoundException or InvalidTimeZoneException)
                {
                    throw new ArgumentException($"{Setting("TimeZone")}: '{options.TimeZone}' is not a known time zone id; use an IANA id such as Europe/Berlin, or UTC", ex);
                }
            }

            try
            {
                trigger = ScheduleTrigger.Cron(options.Cron!, zone);
            }
            catch (FormatException ex)
            {
                throw new ArgumentException($"{Setting("Cron")}: {ex.Message}", ex);
            }
        }
        else if (options.Interval is { } interval)
        {
            if (!string.IsNullOrWhiteSpace(options.TimeZone))
            {
                throw new ArgumentException($"{Setting("TimeZone")}: a time zone applies to a Cron spec only, not to an Interval");
            }

            try
            {
                trigger = ScheduleTrigger.Every(interval);
            }
            catch (ArgumentOutOfRangeException ex)
            {
                throw new ArgumentException($"{Setting("Interval")}: '{interval.ToString("c", CultureInfo.InvariantCulture)}' is not a valid interval (at least 1 ms, in whole milliseconds)", ex);
            }
        }
        else
        {
            throw new ArgumentException($"{Setting("Cron")}: a schedule needs a Cron spec (such as '*/5 * * * *') or an Interval (such as '00:00:10')");
        }

        if (string.IsNullOrWhiteSpace(options.Task))
        {
            throw new ArgumentException($"{Setting("Task")}: a schedule needs the name of the task to publish");
        }

        var args = new List<TaskArgument>(options.Args?.Count ?? 0);
        for (var i = 0; i < (options.Args?.Count ?? 0); i++)
        {
            try
            {
                args.Add(TaskArgument.Parse(options.Args![i]));
            }
            catch (FormatException ex)
            {
                throw new ArgumentException($"{Setting("Args:" + i.ToString(CultureInfo.InvariantCulture))}: {ex.Message}", ex);
            }
        }

        if (!Enum.IsDefined(options.Misfire))
        {
            throw new ArgumentException($"{Setting("Misfire")}: '{options.Misfire}' is not a misfire policy; use Skip or CatchUp");
        }

        if (options.MaxCatchUp < 1)
        {
            throw new ArgumentException($"{Setting("MaxCatchUp")}: {options.MaxCatchUp.ToString(CultureInfo.InvariantCulture)} is not valid; it must be at least 1");
        }

        if (options.RetryCount < 0)
        {
            throw new ArgumentException($"{Setting("RetryCount")}: {options.RetryCount.ToString(CultureInfo.InvariantCulture)} is not valid; it must not be negative");
        }

        if (!options.Enabled)
        {
            return null;
        }

        var task = new Signature(options.Task.Trim(), args)
        {
            RoutingKey = options.Queue?.Trim() ?? string.Empty,
            Priority = options.Priority,
            RetryCount = options.RetryCount,
        };
        return new PeriodicSchedule(name, trigger, task) { Misfire = options.Misfire, MaxCatchUp = options.MaxCatchUp };
    }

    /// <inheritdoc/>
    public override string ToString() => $"{Name}: {Description} {Trigger}";

    /// <summary>Publishes a fresh copy of the work for one tick.</summary>
    /// <returns>The id to log: the task's, the group's (group, chord) or the first link's (chain).</returns>
    internal async ValueTask<string> PublishAsync(ConveyorClient client, DateTimeOffset tick, CancellationToken cancellationToken)
    {
        var tickText = FormatTick(tick);
        switch (Kind)
        {
            case ScheduleKind.Task:
            {
                var task = Stamp(_task!.Clone(), tickText);
                await client.SendAsync(task, cancellationToken).ConfigureAwait(false);
                return task.Id;
            }

            case ScheduleKind.Group:
            {
                var group = new TaskGroup(_tasks!.Select(t => Stamp(t.Clone(), tickText)));
                await client.SendGroupAsync(group, cancellationToken: cancellationToken).ConfigureAwait(false);
                return group.GroupId;
            }

            case ScheduleKind.Chord:
            {
                var callback = Stamp(_callback!.Clone(), tickText);
                callback.Id = TaskIds.NewChordId();
                var chord = new Chord(new TaskGroup(_tasks!.Select(t => Stamp(t.Clone(), tickText))), callback);
                await client.SendChordAsync(chord, cancellationToken: cancellationToken).ConfigureAwait(false);
                return chord.Group.GroupId;
            }

            default:
            {
                var chain = new Chain(_tasks!.Select(t => Stamp(t.Clone(), tickText)));
                await client.SendChainAsync(chain, cancellationToken).ConfigureAwait(false);
                return chain.Tasks[0].Id;
            }
        }
    }

    /// <summary>The tick as it goes in <see cref="ConveyorScheduler.TickHeader"/>: RFC 3339, UTC, milliseconds.</summary>
    internal static string FormatTick(DateTimeOffset tick) =>
        tick.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    private static Signature CopyMember(Signature member)
    {
        var copy = member.Clone();
        copy.GroupId = string.Empty;
        copy.GroupTaskCount = 0;
        copy.ChordCallback = null;
        return copy;
    }

    /// <summary>New ids and the schedule's headers on a signature and every callback nested in it.</summary>
    private Signature Stamp(Signature signature, string tickText)
    {
        signature.Id = TaskIds.NewTaskId();
        signature.Headers[ConveyorScheduler.ScheduleHeader] = Name;
        signature.Headers[ConveyorScheduler.TickHeader] = tickText;
        foreach (var callback in signature.OnSuccessOrNull ?? [])
        {
            Stamp(callback, tickText);
        }

        foreach (var callback in signature.OnErrorOrNull ?? [])
        {
            Stamp(callback, tickText);
        }

        if (signature.ChordCallback is { } chordCallback)
        {
            Stamp(chordCallback, tickText);
            chordCallback.Id = TaskIds.NewChordId();
        }

        return signature;
    }
}
