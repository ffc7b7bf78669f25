using System.Collections;
using System.Globalization;

namespace Conveyor;

/// <summary>What an operator's overview needs: queue summaries, throughput, search, single dead letters, schedule switches.</summary>
public sealed partial class ConveyorManagement
{
    /// <summary>The most messages or states one search reads before it answers with a cursor.</summary>
    public const int SearchScanLimit = 5000;

    /// <summary>
    /// Summarizes every queue the broker knows: its counts (the broker's counters), whether it is paused, the age of
    /// its oldest pending task (one message and one state read), and its finished tasks in the last hour (the
    /// throughput counters). Nothing here loads a list.
    /// </summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The queues, by name.</returns>
    public async ValueTask<IReadOnlyList<QueueSummary>> ListQueuesAsync(CancellationToken cancellationToken = default)
    {
        var names = new SortedSet<string>(await _broker.ListQueuesAsync(cancellationToken).ConfigureAwait(false), StringComparer.Ordinal) { DefaultQueue };
        var paused = await ListPausedQueuesAsync(cancellationToken).ConfigureAwait(false);
        foreach (var queue in paused)
        {
            names.Add(queue);
        }

        var now = _time.GetUtcNow();
        var hour = await _store.ReadThroughputAsync(ThroughputSample.MinuteOf(now).AddMinutes(-59), now, cancellationToken).ConfigureAwait(false);
        var summaries = new List<QueueSummary>(names.Count);
        foreach (var queue in names)
        {
            var statistics = await _broker.GetQueueStatisticsAsync(queue, cancellationToken).ConfigureAwait(false);
            var oldest = statistics.Ready > 0 ? await GetOldestPendingAsync(queue, cancellationToken).ConfigureAwait(false) : null;
            long succeeded = 0, failed = 0;
            foreach (var sample in hour)
            {
                if (sample.Queue == queue)
                {
                    succeeded += sample.Succeeded;
                    failed += sample.Failed;
                }
            }

            summaries.Add(new QueueSummary
            {
                Queue = queue,
                Statistics = statistics,
                Paused = paused.Contains(queue, StringComparer.Ordinal),
                OldestPendingAge = oldest is { } at ? (now - at < TimeSpan.Zero ? TimeSpan.Zero : now - at) : null,
                SucceededLastHour = succeeded,
                FailedLastHour = failed,
            });
        }

        return summaries;
    }

    /// <summary>
    /// When the oldest pending task of a queue was published: the first message in delivery order and the
    /// creation time of its PENDING state (what machinery's producer stores at publish).
    /// </summary>
    /// <param name="queue">The queue.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The time, or <see langword="null"/> when nothing is pending or the store cannot say.</returns>
    public async ValueTask<DateTimeOffset?> GetOldestPendingAsync(string queue, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(queue);
        if (!_store.Capabilities.HasFlag(ManagementCapabilities.Messages))
        {
            return null;
        }

        var page = await _store.ListMessagesAsync(queue, new TaskQuery { State = ManagedTaskState.Pending, Queue = queue, Limit = 1 }, cancellationToken).ConfigureAwait(false);
        if (page.Tasks is not [var first, ..])
        {
            return null;
        }

        if (first.Since is { } since)
        {
            return since;
        }

        return first.Id.Length > 0 && await _backend.GetStateAsync(first.Id, cancellationToken).ConfigureAwait(false) is { } state ? state.CreatedAt : null;
    }

    /// <summary>
    /// The finished tasks per minute over the last <paramref name="minutes"/> minutes, summed over the queues (or
    /// of one queue), oldest first, with a zero for each minute without any: from the store's counters.
    /// </summary>
    /// <param name="minutes">How many minutes, 1 to 1,440.</param>
    /// <param name="queue">One queue; <see langword="null"/> for all.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>One sample per minute (its queue is <paramref name="queue"/>, or empty for all).</returns>
    public async ValueTask<IReadOnlyList<ThroughputSample>> GetThroughputAsync(int minutes = 60, string? queue = null, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(minutes, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(minutes, 1440);
        var last = ThroughputSample.MinuteOf(_time.GetUtcNow());
        var first = last.AddMinutes(-(minutes - 1));
        var samples = await _store.ReadThroughputAsync(first, last, cancellationToken).ConfigureAwait(false);
        var series = new ThroughputSample[minutes];
        for (var i = 0; i < minutes; i++)
        {
            series[i] = new ThroughputSample(queue ?? string.Empty, first.AddMinutes(i), 0, 0);
        }

        foreach (var sample in samples)
        {
            var index = (int)((sample.Minute - first).Ticks / TimeSpan.TicksPerMinute);
            if (index >= 0 && index < minutes && (queue is null || sample.Queue == queue))
            {
                series[index] = series[index] with { Succeeded = series[index].Succeeded + sample.Succeeded, Failed = series[index].Failed + sample.Failed };
            }
        }

        return series;
    }

    /// <summary>
    /// Lists the tasks of one state whose id, name or argument text contains <paramref name="text"/> (ignoring
    /// case), a page at a time. It reads the listing's keyset pages in order and keeps what matches, at most
    /// <see cref="SearchScanLimit"/> tasks per call: a page may then be short, with a cursor to go on from.
    /// </summary>
    /// <param name="query">The state, queue, limit and cursor (as for <see cref="ListTasksAsync"/>).</param>
    /// <param name="text">The text to look for; empty lists everything.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The page; its cursor continues the scan.</returns>
    public async ValueTask<TaskPage> SearchTasksAsync(TaskQuery query, string? text, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(query);
        if (string.IsNullOrWhiteSpace(text))
        {
            return await ListTasksAsync(query, cancellationToken).ConfigureAwait(false);
        }

        text = text.Trim();
        var found = new List<TaskSummary>();
        var after = query.After;
        var scanned = 0;
        while (found.Count < query.Limit && scanned < SearchScanLimit)
        {
            // Never more than the rest of the page: the cursor of a page read whole is where the next one starts.
            var page = await ListTasksAsync(query with { After = after, Limit = Math.Max(query.Limit - found.Count, 20) }, cancellationToken).ConfigureAwait(false);
            scanned += page.Tasks.Count;
            foreach (var task in page.Tasks)
            {
                if (Matches(task, text))
                {
                    found.Add(task);
                }
            }

            after = page.Next;
            if (after is null)
            {
                break;
            }
        }

        return new TaskPage(found, after);
    }

    /// <summary>Whether a task's id, name or arguments contain the text, ignoring case.</summary>
    /// <param name="task">The task.</param>
    /// <param name="text">The text.</param>
    /// <returns>Whether it matches.</returns>
    public static bool Matches(TaskSummary task, string text)
    {
        ArgumentNullException.ThrowIfNull(task);
        ArgumentNullException.ThrowIfNull(text);
        if (task.Id.Contains(text, StringComparison.OrdinalIgnoreCase) || task.Name.Contains(text, StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }

        foreach (var argument in task.Args)
        {
            if (FormatValue(argument.Value).Contains(text, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>An argument's or result's value as text: numbers invariant, lists in brackets.</summary>
    /// <param name="value">The value.</param>
    /// <returns>The text.</returns>
    public static string FormatValue(object? value) => value switch
    {
        null => "null",
        string s => s,
        bool b => b ? "true" : "false",
        byte[] bytes => Convert.ToBase64String(bytes),
        IFormattable formattable => formattable.ToString(null, CultureInfo.InvariantCulture),
        IDictionary dictionary => "{" + string.Join(", ", dictionary.Keys.Cast<object?>().Select(k => FormatValue(k) + ": " + FormatValue(dictionary[k!]))) + "}",
        IEnumerable items => "[" + string.Join(", ", items.Cast<object?>().Select(FormatValue)) + "]",
        _ => value.ToString() ?? string.Empty,
    };

    /// <summary>
    /// Lists dead letters with their own ids (for <see cref="RequeueDeadLetterAsync"/> and
    /// <see cref="DeleteDeadLetterAsync"/>), reasons and tasks, oldest first. The cursor is a position: the broker
    /// reads dead letters from the oldest, and dead-letter stores stay small.
    /// </summary>
    /// <param name="queue">Only this queue's; <see langword="null"/> for all.</param>
    /// <param name="limit">The most on one page, 1 to 1,000.</param>
    /// <param name="after">The previous page's cursor; <see langword="null"/> for the first page.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The page.</returns>
    public async ValueTask<DeadLetterPage> ListDeadLettersAsync(string? queue = null, int limit = 50, string? after = null, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limit, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(limit, 1000);
        var skip = after is { Length: > 0 } && int.TryParse(after, NumberStyles.None, CultureInfo.InvariantCulture, out var position) ? position : 0;
        const int Window = 1000;
        var letters = await _broker.GetDeadLettersAsync(skip + Window, cancellationToken).ConfigureAwait(false);
        var found = new List<DeadLetterSummary>();
        var index = skip;
        for (; index < letters.Count && found.Count < limit; index++)
        {
            var letter = letters[index];
            if (queue is not null && letter.Queue != queue)
            {
                continue;
            }

            var task = TaskSummary.FromMessage(letter.Body.Span, letter.Queue, ManagedTaskState.DeadLettered, letter.Id) with { Error = letter.Reason, Since = letter.DeadLetteredAt };
            found.Add(new DeadLetterSummary(letter.Id, task));
        }

        return new DeadLetterPage(found, index < letters.Count ? index.ToString(CultureInfo.InvariantCulture) : null);
    }

    /// <summary>Moves one dead letter back to its queue.</summary>
    /// <param name="deadLetterId">The dead letter's id.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>Whether it was found and moved.</returns>
    /// <exception cref="NotSupportedException">The provider cannot.</exception>
    public ValueTask<bool> RequeueDeadLetterAsync(string deadLetterId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(deadLetterId);
        return _store.RequeueDeadLetterAsync(deadLetterId, cancellationToken);
    }

    /// <summary>Deletes one dead letter.</summary>
    /// <param name="deadLetterId">The dead letter's id.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>Whether it was found and deleted.</returns>
    /// <exception cref="NotSupportedException">The provider cannot.</exception>
    public ValueTask<bool> DeleteDeadLetterAsync(string deadLetterId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(deadLetterId);
        return _store.DeleteDeadLetterAsync(deadLetterId, cancellationToken);
    }

    /// <summary>Deletes a queue's pending and scheduled tasks (running ones are left to their workers).</summary>
    /// <param name="queue">The queue.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>How many messages were removed.</returns>
    public ValueTask<long> PurgeQueueAsync(string queue, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(queue);
        return _broker.PurgeAsync(queue, cancellationToken);
    }

    /// <summary>Enables or disables a periodic schedule for every scheduler that shares this store.</summary>
    /// <param name="name">The schedule's name.</param>
    /// <param name="enabled">Whether its ticks are published.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>A task that completes when it is stored.</returns>
    public ValueTask SetScheduleEnabledAsync(string name, bool enabled, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        return _store.SetScheduleEnabledAsync(name, enabled, cancellationToken);
    }

    /// <summary>Lists the schedules disabled through the management API.</summary>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>Their names.</returns>
    public ValueTask<IReadOnlyList<string>> ListDisabledSchedulesAsync(CancellationToken cancellationToken = default) => _store.ListDisabledSchedulesAsync(cancellationToken);
}

/// <summary>A queue as an overview shows it.</summary>
public sealed record QueueSummary
{
    /// <summary>The queue.</summary>
    public required string Queue { get; init; }

    /// <summary>The broker's counts.</summary>
    public required QueueStatistics Statistics { get; init; }

    /// <summary>Whether the fleet is told not to take its messages.</summary>
    public bool Paused { get; init; }

    /// <summary>How long its oldest pending task has waited; <see langword="null"/> when none is pending or unknown.</summary>
    public TimeSpan? OldestPendingAge { get; init; }

    /// <summary>Tasks of this queue that ended in SUCCESS in the last hour.</summary>
    public long SucceededLastHour { get; init; }

    /// <summary>Tasks of this queue that ended in FAILURE in the last hour.</summary>
    public long FailedLastHour { get; init; }

    /// <summary>The share of failures among the last hour's finished tasks, 0 to 1; <see langword="null"/> when none finished.</summary>
    public double? ErrorRate => SucceededLastHour + FailedLastHour == 0 ? null : (double)FailedLastHour / (SucceededLastHour + FailedLastHour);
}

/// <summary>A dead letter as a listing shows it.</summary>
/// <param name="DeadLetterId">Its id in the dead-letter store (not the task's id).</param>
/// <param name="Task">The task it holds, with the reason as <see cref="TaskSummary.Error"/> and the time as <see cref="TaskSummary.Since"/>.</param>
public sealed record DeadLetterSummary(string DeadLetterId, TaskSummary Task);

/// <summary>One page of dead letters.</summary>
/// <param name="Letters">The dead letters, oldest first.</param>
/// <param name="Next">The cursor of the next page; <see langword="null"/> when this is the last.</param>
public sealed record DeadLetterPage(IReadOnlyList<DeadLetterSummary> Letters, string? Next);
