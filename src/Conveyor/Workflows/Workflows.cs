namespace Conveyor;

/// <summary>Tasks that run in parallel (machinery's <c>tasks.Group</c>).</summary>
public sealed class TaskGroup
{
    /// <summary>Creates a group: gives the tasks a new group id and the group's size.</summary>
    /// <param name="tasks">The member tasks, in member order.</param>
    public TaskGroup(params IEnumerable<Signature> tasks)
    {
        ArgumentNullException.ThrowIfNull(tasks);
        Tasks = [.. tasks];
        if (Tasks.Count == 0)
        {
            throw new ArgumentException("A group needs at least one task.", nameof(tasks));
        }

        GroupId = TaskIds.NewGroupId();
        foreach (var task in Tasks)
        {
            ArgumentNullException.ThrowIfNull(task);
            if (task.Id.Length == 0)
            {
                task.Id = TaskIds.NewTaskId();
            }

            task.GroupId = GroupId;
            task.GroupTaskCount = Tasks.Count;
        }
    }

    /// <summary>The group id (<c>group_&lt;uuid&gt;</c>).</summary>
    public string GroupId { get; }

    /// <summary>The member tasks, in member order.</summary>
    public IReadOnlyList<Signature> Tasks { get; }
}

/// <summary>
/// A group, then a callback that receives every member's results in member order (machinery's <c>tasks.Chord</c>).
/// If a member fails for good, the callback's <see cref="Signature.OnError"/> tasks run once with the error.
/// </summary>
public sealed class Chord
{
    /// <summary>Creates a chord: every member carries the callback.</summary>
    /// <param name="group">The group.</param>
    /// <param name="callback">The callback.</param>
    public Chord(TaskGroup group, Signature callback)
    {
        ArgumentNullException.ThrowIfNull(group);
        ArgumentNullException.ThrowIfNull(callback);
        if (callback.Id.Length == 0)
        {
            callback.Id = TaskIds.NewChordId();
        }

        Group = group;
        Callback = callback;
        foreach (var task in group.Tasks)
        {
            task.ChordCallback = callback;
        }
    }

    /// <summary>The group.</summary>
    public TaskGroup Group { get; }

    /// <summary>The callback.</summary>
    public Signature Callback { get; }
}

/// <summary>
/// Tasks that run one after another, each receiving the previous one's results (machinery's <c>tasks.Chain</c>):
/// each task is nested in the previous one's <see cref="Signature.OnSuccess"/>, and only the first is published.
/// </summary>
public sealed class Chain
{
    /// <summary>Creates a chain.</summary>
    /// <param name="tasks">The tasks, in order.</param>
    public Chain(params IEnumerable<Signature> tasks)
    {
        ArgumentNullException.ThrowIfNull(tasks);
        Tasks = [.. tasks];
        if (Tasks.Count == 0)
        {
            throw new ArgumentException("A chain needs at least one task.", nameof(tasks));
        }

        foreach (var task in Tasks)
        {
            ArgumentNullException.ThrowIfNull(task);
            if (task.Id.Length == 0)
            {
                task.Id = TaskIds.NewTaskId();
            }
        }

        for (var i = Tasks.Count - 1; i > 0; i--)
        {
            Tasks[i - 1].SetOnSuccess([Tasks[i]]);
        }
    }

    /// <summary>The tasks, in order.</summary>
    public IReadOnlyList<Signature> Tasks { get; }
}
