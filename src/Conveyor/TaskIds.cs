namespace Conveyor;

/// <summary>Creates ids in machinery's format: a prefix and a random UUID.</summary>
public static class TaskIds
{
    /// <summary>A new task id, <c>task_&lt;uuid4&gt;</c>.</summary>
    /// <returns>The id.</returns>
    public static string NewTaskId() => "task_" + Guid.NewGuid().ToString("D");

    /// <summary>A new group id, <c>group_&lt;uuid4&gt;</c>.</summary>
    /// <returns>The id.</returns>
    public static string NewGroupId() => "group_" + Guid.NewGuid().ToString("D");

    /// <summary>A new chord id, <c>chord_&lt;uuid4&gt;</c>.</summary>
    /// <returns>The id.</returns>
    public static string NewChordId() => "chord_" + Guid.NewGuid().ToString("D");
}
