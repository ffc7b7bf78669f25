using System.Text;
using System.Text.Json;

namespace Conveyor.Cli;

/// <summary>
/// Reads the tasks of <c>conveyor send</c>: a spec is <c>NAME [TYPE:VALUE …]</c> in one shell word
/// (<c>'add int64:1 int64:2'</c>; quote a value with spaces inside it: <c>'echo "string:hello world"'</c>), and a
/// workflow file (<c>-f flow.json</c>) holds one of <c>{"task": SPEC}</c>, <c>{"group": [SPEC, …]}</c>,
/// <c>{"chord": {"group": [SPEC, …], "callback": SPEC}}</c>, <c>{"chain": [SPEC, …]}</c>: one syntax for both.
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
        char? quote = null;
        var inWord = false;
        foreach (var c in spec + " ")
        {
            if (quote is not null && c == quote)
            {
                quote = null;
            }
            else if (quote is not null || !(char.IsWhiteSpace(c) || c is '\'' or '"'))
            {
                word.Append(c);
                inWord = true;
            }
            else if (c is '\'' or '"')
            {
                quote = c;
                inWord = true;
            }
            else if (inWord)
            {
                words.Add(word.ToString());
                word.Clear();
                inWord = false;
            }
        }

        return quote is null ? words : throw new CliException($"'{spec}': a quote is not closed");
    }

    /// <summary>Reads a workflow file: one of its members is set, and every task is a spec string.</summary>
    public static Workflow ReadFile(string path)
    {
        var full = Path.GetFullPath(path);
        FlowFile? file;
        try
        {
            file = JsonSerializer.Deserialize<FlowFile>(File.Exists(full) ? File.ReadAllBytes(full) : throw new CliException($"-f: the file {full} does not exist"), FileOptions);
        }
        catch (JsonException ex)
        {
            throw new CliException($"{full}: not a workflow ({ex.Message}); write {{\"group\": [\"add int64:1 int64:2\", ...]}}, {{\"chord\": {{\"group\": [...], \"callback\": \"sum\"}}}}, {{\"chain\": [...]}} or {{\"task\": \"add int64:1 int64:2\"}}");
        }

        return file switch
        {
            { Group: { Length: > 0 } group } => new Workflow(WorkflowKind.Group, [.. group.Select(Parse)], null),
            { Chain: { Length: > 0 } chain } => new Workflow(WorkflowKind.Chain, [.. chain.Select(Parse)], null),
            { Chord: { Group: { Length: > 0 } members, Callback: { } callback } } => new Workflow(WorkflowKind.Chord, [.. members.Select(Parse)], Parse(callback)),
            { Task: { } task } => new Workflow(WorkflowKind.Task, [Parse(task)], null),
            _ => throw new CliException($"{full}: give a non-empty \"group\" or \"chain\", a \"chord\" with \"group\" and \"callback\", or a \"task\""),
        };
    }

    private static readonly JsonSerializerOptions FileOptions = new(CliJson.Options)
    {
        PropertyNameCaseInsensitive = true,
        AllowTrailingCommas = true,
        ReadCommentHandling = JsonCommentHandling.Skip,
        UnmappedMemberHandling = System.Text.Json.Serialization.JsonUnmappedMemberHandling.Disallow,
    };

    private sealed record FlowFile(string? Task, string[]? Group, string[]? Chain, ChordFile? Chord);

    private sealed record ChordFile(string[]? Group, string? Callback);
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
