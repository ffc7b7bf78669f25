namespace Conveyor;

/// <summary>
/// A task to run: a registered task name, typed arguments and delivery settings. This is machinery's
/// <c>tasks.Signature</c>, and serializes to the same JSON.
/// </summary>
public sealed class Signature
{
    private List<TaskArgument>? _args;
    private Dictionary<string, object?>? _headers;
    private List<Signature>? _onSuccess;
    private List<Signature>? _onError;

    /// <summary>Creates an empty signature (used by deserialization). Prefer the other constructor.</summary>
    public Signature()
    {
        Id = string.Empty;
        Name = string.Empty;
    }

    /// <summary>Creates a signature with a new task id.</summary>
    /// <param name="name">The registered task name.</param>
    /// <param name="args">The arguments, in order.</param>
    public Signature(string name, params IEnumerable<TaskArgument> args)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        Id = TaskIds.NewTaskId();
        Name = name;
        _args = [.. args];
    }

    /// <summary>The task id (<c>task_&lt;uuid&gt;</c>); machinery's <c>UUID</c>.</summary>
    public string Id { get; set; }

    /// <summary>The registered task name.</summary>
    public string Name { get; set; }

    /// <summary>The queue (routing key) to publish to; empty means the client's default queue.</summary>
    public string RoutingKey { get; set; } = string.Empty;

    /// <summary>When the task may run at the earliest; <see langword="null"/> means now.</summary>
    public DateTimeOffset? Eta { get; set; }

    /// <summary>The group id (<c>group_&lt;uuid&gt;</c>) when the task belongs to a group or chord; otherwise empty.</summary>
    public string GroupId { get; set; } = string.Empty;

    /// <summary>How many tasks the group has.</summary>
    public int GroupTaskCount { get; set; }

    /// <summary>The arguments, in order.</summary>
    public IList<TaskArgument> Args => _args ??= [];

    /// <summary>
    /// Headers, carried as AMQP headers on RabbitMQ and inside the message elsewhere. Values are strings, numbers,
    /// booleans or <see langword="null"/>. The W3C trace context travels here (<c>traceparent</c>, <c>tracestate</c>).
    /// </summary>
    public IDictionary<string, object?> Headers =>
        _headers is null || ReferenceEquals(_headers, Serialization.SignatureJson.EmptyHeaders)
            ? _headers = new Dictionary<string, object?>(StringComparer.Ordinal)
            : _headers;

    /// <summary>The priority; higher runs first where the broker supports priorities. Machinery's <c>uint8</c>.</summary>
    public byte Priority { get; set; }

    /// <summary>When <see langword="true"/>, callbacks do not receive the parent task's results as extra arguments.</summary>
    public bool Immutable { get; set; }

    /// <summary>How many more times the task may be retried after a failure.</summary>
    public int RetryCount { get; set; }

    /// <summary>The last retry delay in seconds; the Fibonacci backoff grows it on each retry (machinery's semantics).</summary>
    public int RetryTimeout { get; set; }

    /// <summary>Tasks published when this one succeeds; they receive its results unless they are <see cref="Immutable"/>.</summary>
    public IList<Signature> OnSuccess => _onSuccess ??= [];

    /// <summary>Tasks published when this one fails for good; they receive the error message as a first <c>string</c> argument.</summary>
    public IList<Signature> OnError => _onError ??= [];

    /// <summary>For a chord member: the callback that runs once every member has succeeded.</summary>
    public Signature? ChordCallback { get; set; }

    /// <summary>
    /// Machinery's flag for a task that a worker without its handler should leave for another worker.
    /// Conveyor honours it by handing the message back with a delay instead of dead-lettering it.
    /// </summary>
    public bool IgnoreWhenTaskNotRegistered { get; set; }

    /// <summary>Fields machinery carries for other brokers (SQS); kept so that a message round-trips unchanged.</summary>
    internal MachineryWireExtras? WireExtras { get; set; }

    internal List<TaskArgument>? ArgsOrNull => _args;

    internal Dictionary<string, object?>? HeadersOrNull => _headers;

    internal List<Signature>? OnSuccessOrNull => _onSuccess;

    internal List<Signature>? OnErrorOrNull => _onError;

    internal void SetArgs(List<TaskArgument>? args) => _args = args;

    internal void SetHeaders(Dictionary<string, object?>? headers) => _headers = headers;

    internal void SetOnSuccess(List<Signature>? callbacks) => _onSuccess = callbacks;

    internal void SetOnError(List<Signature>? callbacks) => _onError = callbacks;

    /// <summary>Gets a header as a string, or <see langword="null"/>.</summary>
    /// <param name="name">The header name.</param>
    /// <returns>The header value's text, or <see langword="null"/> when absent.</returns>
    public string? GetHeader(string name) =>
        _headers is not null && _headers.TryGetValue(name, out var value) ? value?.ToString() : null;

    /// <summary>Makes a deep copy, with the same id.</summary>
    /// <returns>The copy.</returns>
    public Signature Clone()
    {
        var copy = (Signature)MemberwiseClone();
        copy._args = _args is null ? null : [.. _args];
        copy._headers = _headers is null || ReferenceEquals(_headers, Serialization.SignatureJson.EmptyHeaders)
            ? _headers
            : new Dictionary<string, object?>(_headers, StringComparer.Ordinal);
        copy._onSuccess = _onSuccess?.ConvertAll(s => s.Clone());
        copy._onError = _onError?.ConvertAll(s => s.Clone());
        copy.ChordCallback = ChordCallback?.Clone();
        return copy;
    }

    /// <inheritdoc/>
    public override string ToString() => $"{Name}[{Id}]({string.Join(", ", Args)})";
}

/// <summary>Machinery's SQS-only fields, kept out of the public API but carried so that messages round-trip.</summary>
internal sealed record MachineryWireExtras(string BrokerMessageGroupId, string SqsReceiptHandle, bool StopTaskDeletionOnError)
{
    public bool IsEmpty => BrokerMessageGroupId.Length == 0 && SqsReceiptHandle.Length == 0 && !StopTaskDeletionOnError;
}
