namespace Conveyor.Dashboard.Internal;

/// <summary>One node of a task's workflow tree, with the state stored for its id.</summary>
internal sealed class TaskNode
{
    public required string Id { get; init; }

    public string Name { get; init; } = string.Empty;

    /// <summary>task, group, member, chord callback, on success, on error.</summary>
    public required string Kind { get; init; }

    public string State { get; set; } = "unknown";

    public bool Current { get; init; }

    public List<TaskNode> Children { get; } = [];
}

/// <summary>
/// Builds a task's workflow as a tree: its group (with each member) and the chord's callback when it is in one, and
/// the callbacks it carries (a chain is a task whose success callback is the next link). Every id's state comes from
/// one batched read of the result backend.
/// </summary>
internal static class TaskTree
{
    private const int MaxNodes = 500;

    public static async ValueTask<TaskNode> BuildAsync(IResultBackend backend, Signature? signature, GroupMeta? group, string id, CancellationToken cancellationToken)
    {
        var nodes = new List<TaskNode>();
        var self = signature is null
            ? Add(nodes, new TaskNode { Id = id, Kind = "task", Current = true })
            : FromSignature(nodes, signature, "task", current: true);
        TaskNode root = self;
        if (group is not null)
        {
            root = new TaskNode { Id = group.GroupId, Kind = "group", State = group.ChordTriggered ? "chord triggered" : string.Empty };
            foreach (var member in group.TaskIds.Take(MaxNodes))
            {
                root.Children.Add(member == self.Id ? self : Add(nodes, new TaskNode { Id = member, Kind = "member" }));
            }

            if (signature?.ChordCallback is { } callback)
            {
                root.Children.Add(FromSignature(nodes, callback, "chord callback", current: false));
            }
        }

        var ids = nodes.Select(n => n.Id).Distinct(StringComparer.Ordinal).ToList();
        if (ids.Count > 0)
        {
            var states = await backend.GetStatesAsync(ids, cancellationToken).ConfigureAwait(false);
            var byId = new Dictionary<string, TaskStateRecord>(StringComparer.Ordinal);
            for (var i = 0; i < ids.Count; i++)
            {
                if (states[i] is { } state)
                {
                    byId[ids[i]] = state;
                }
            }

            foreach (var node in nodes)
            {
                node.State = byId.TryGetValue(node.Id, out var state) ? (state.IsRevoked() ? "REVOKED" : state.State.ToWireName()) : "no state";
            }
        }

        return root;
    }

    private static TaskNode Add(List<TaskNode> nodes, TaskNode node)
    {
        nodes.Add(node);
        return node;
    }

    private static TaskNode FromSignature(List<TaskNode> nodes, Signature signature, string kind, bool current)
    {
        var node = Add(nodes, new TaskNode { Id = signature.Id, Name = signature.Name, Kind = kind, Current = current });
        foreach (var next in signature.OnSuccess)
        {
            if (nodes.Count >= MaxNodes)
            {
                break;
            }

            node.Children.Add(FromSignature(nodes, next, "on success", current: false));
        }

        foreach (var next in signature.OnError)
        {
            if (nodes.Count >= MaxNodes)
            {
                break;
            }

            node.Children.Add(FromSignature(nodes, next, "on error", current: false));
        }

        return node;
    }
}
