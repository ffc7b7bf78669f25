using System.Text;
using System.Text.Json;

namespace Conveyor.Cli;

/// <summary>
/// Reads the tasks of <c>conveyor send</c>: a spec is <c>NAME [TYPE:VALUE …]</c> in one shell word
/// (<c>'add int64:1 int64:2'</c>; quote a value with spaces inside it: <c>'echo "string:hello world"'</c>), and a
/// workflow file (<c>-f flow.json</c>) holds one of <c>{"task": …}</c>, <c>{"group": [ … ]}</c>,
/// <c>{"chord": {"group": [ … ], "callback": …}}</c>, <c>{"chain": [ … ]}</c>, where each task is a spec string or
/// <c>{"task": "add", "args": ["int64:1", "int64:2"]}</c>.
/// </summary>
internal static class TaskSpec
{
    public static Signature Parse(string spec)
    {
        var words = Split(spec);
        if (words.Count == 0)
        {
            throw new CliException($"'{spec}' names no task; write NAME [TYPE:VALUE ...], e.g. 'add int64:1 int64:2'");
        }

        return new Signature(words[0], words.Skip(1).Select(ArgumentParser.Parse));
    }

    /// <summary>Splits on spaces, keeping quoted parts ('…' or "…") together.</summary>
    public static List<string> Split(string spec)
    {
        var words = new List<string>();
        var word = new StringBuilder();
        var inWord = false;
        char? quote = null;
        foreach (var c in spec)
        {
            if (quote is { } open)
            {
                if (c == open)
                {
                    quote = null;
                }
                else
                {
                    word.Append(c);
                }
            }
            else if (c is '\'' or '"')
            {
                quote = c;
                inWord = true;
            }
            else if (char.IsWhiteSpace(c))
            {
                if (inWord)
                {
                    words.Add(word.ToString());
                    word.Clear();
                    inWord = false;
                }
            }
            else
            {
                word.Append(c);
                inWord = true;
            }
        }

        if (quote is not null)
        {
            throw new CliException($"'{spec}': a quote is not closed");
        }

        if (inWord)
        {
            words.Add(word.ToString());
        }

        return words;
    }

    /// <summary>Reads a workflow file.</summary>
    public static Workflow ReadFile(string path)
    {
        var full = Path.GetFullPath(path);
        if (!File.Exists(full))
        {
            throw new CliException($"-f: the file {full} does not exist");
        }

        try
        {
            using var json = JsonDocument.Parse(File.ReadAllBytes(full), new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
            var root = json.RootElement;
            if (root.ValueKind == JsonValueKind.Object && root.TryGetProperty("group", out var group))
            {
                return new Workflow(WorkflowKind.Group, Tasks(group, "group"), null);
            }

            if (root.ValueKind == JsonValueKind.Object && root.TryGetProperty("chain", out var chain))
            {
                return new Workflow(WorkflowKind.Chain, Tasks(chain, "chain"), null);
            }

            if (root.ValueKind == JsonValueKind.Object && root.TryGetProperty("chord", out var chord))
            {
                if (!chord.TryGetProperty("group", out var members) || !chord.TryGetProperty("callback", out var callback))
                {
                    throw new CliException($"{full}: a chord needs \"group\" and \"callback\"");
                }

                return new Workflow(WorkflowKind.Chord, Tasks(members, "chord.group"), Task(callback, "chord.callback"));
            }

            return new Workflow(WorkflowKind.Task, [Task(root, "the file")], null);
        }
        catch (JsonException ex)
        {
            throw new CliException($"{full}: not valid JSON ({ex.Message})");
        }
    }

    private static List<Signature> Tasks(JsonElement element, string where) =>
        element.ValueKind == JsonValueKind.Array && element.GetArrayLength() > 0
            ? [.. element.EnumerateArray().Select((e, i) => Task(e, $"{where}[{i}]"))]
            : throw new CliException($"{where}: must be a non-empty array of tasks");

    private static Signature Task(JsonElement element, string where)
    {
        if (element.ValueKind == JsonValueKind.String)
        {
            return Parse(element.GetString()!);
        }

        if (element.ValueKind != JsonValueKind.Object || !element.TryGetProperty("task", out var name) || name.ValueKind != JsonValueKind.String)
        {
            throw new CliException($"{where}: a task is \"NAME TYPE:VALUE ...\" or {{\"task\": NAME, \"args\": [\"TYPE:VALUE\", ...]}}");
        }

        var args = element.TryGetProperty("args", out var list) && list.ValueKind == JsonValueKind.Array
            ? list.EnumerateArray().Select(a => ArgumentParser.Parse(a.GetString() ?? throw new CliException($"{where}: args are strings TYPE:VALUE")))
            : [];
        return new Signature(name.GetString()!, args);
    }
}

internal enum WorkflowKind
{
    Task,
    Group,
    Chord,
    Chain,
}

/// <summary>What <c>conveyor send</c> publishes: the tasks in order, and a chord's callback.</summary>
internal sealed record Workflow(WorkflowKind Kind, IReadOnlyList<Signature> Tasks, Signature? Callback);
