using System.Collections.Concurrent;
using Amazon;
using Amazon.DynamoDBv2;
using Amazon.DynamoDBv2.Model;
using Conveyor.DynamoDb.Internal;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using static Conveyor.DynamoDb.Internal.DynamoItems;

namespace Conveyor.DynamoDb;

/// <summary>
/// A result backend on Amazon DynamoDB with Go machinery's tables and attributes (<c>v2/backends/dynamodb</c>), so
/// machinery and Conveyor read each other's states and group metas.
/// </summary>
/// <remarks>
/// <para>
/// A state is written in one <c>UpdateItem</c> that keeps the first <c>CreatedAt</c> and <c>TaskName</c>
/// (<c>if_not_exists</c>) and sets <c>TTL</c> to now plus <see cref="DynamoDbBackendOptions.ResultTtl"/>; DynamoDB's
/// time to live on <c>TTL</c> removes expired items. Reads are strongly consistent; several states are read with
/// <c>BatchGetItem</c>.
/// </para>
/// <para>
/// The chord counter is one conditional <c>UpdateItem</c> per member on the group's item: it adds the member to a map
/// only if it is not there yet and increments the counts in the same write, so a redelivered member is counted once,
/// without a lock or a read-modify-write (machinery locks the group meta and reads every member's state). Members a
/// Go worker ran are counted by a forward-only cursor over their states (see <see cref="CompleteGroupMemberAsync"/>),
/// and the callback is claimed with one conditional update of machinery's <c>ChordTriggered</c>
/// (<see cref="ClaimChordAsync"/>). The member map holds a 12-character key per member, so a group holds about 25,000
/// members at most (DynamoDB's 400 KB item limit), and each member's write is billed by the group item's size.
/// </para>
/// <para>
/// DynamoDB pushes no changes, so result waits poll with backoff: the client reads the state after 1 ms, then at
/// doubling intervals up to <see cref="ConveyorClientOptions.MaxResultPollInterval"/> (100 ms by default), so a result
/// is seen at most that long (plus a round trip) after it is written. A read is one strongly consistent
/// <c>GetItem</c>.
/// </para>
/// </remarks>
public sealed class DynamoDbResultBackend : IResultBackend
{
    private const int ScanChunk = 25;
    private const int MaxCachedGroups = 10_000;
    private readonly ConcurrentDictionary<string, IReadOnlyList<string>> _memberIds = new(StringComparer.Ordinal);
    private readonly DynamoDbBackendOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly bool _ownsClient;
    private Lazy<Task> _tables;
    private int _disposed;

    /// <summary>Creates a backend. Nothing is sent to DynamoDB until the first call.</summary>
    /// <param name="options">The settings.</param>
    /// <param name="timeProvider">The clock for expiry times and polling; the system clock when <see langword="null"/>.</param>
    /// <param name="loggerFactory">Logging; none when <see langword="null"/>.</param>
    public DynamoDbResultBackend(DynamoDbBackendOptions options, TimeProvider? timeProvider = null, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        _time = timeProvider ?? TimeProvider.System;
        _logger = (ILogger?)loggerFactory?.CreateLogger<DynamoDbResultBackend>() ?? NullLogger.Instance;
        if (options.Client is { } client)
        {
            Client = client;
        }
        else
        {
            Client = CreateClient(options);
            _ownsClient = true;
        }

        _tables = new Lazy<Task>(EnsureTablesAsync);
    }

    /// <inheritdoc/>
    public ResultBackendCapabilities Capabilities => ResultBackendCapabilities.ResultExpiry | ResultBackendCapabilities.Distributed;

    internal IAmazonDynamoDB Client { get; }

    /// <inheritdoc/>
    public async ValueTask SetStateAsync(TaskStateRecord state, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(state);
        await ReadyAsync(cancellationToken).ConfigureAwait(false);
        var (wireState, createdAt, results) = StateAttributes(state);
        await Client.UpdateItemAsync(
            new UpdateItemRequest
            {
                TableName = _options.StatesTable,
                Key = new() { [TaskKey] = S(state.TaskId) },
                UpdateExpression = "SET #State = :state, #TaskName = if_not_exists(#TaskName, :name), #CreatedAt = if_not_exists(#CreatedAt, :created), #Results = :results, #Error = :error, #TTL = :ttl",
                ExpressionAttributeNames = new()
                {
                    ["#State"] = "State",
                    ["#TaskName"] = "TaskName",
                    ["#CreatedAt"] = "CreatedAt",
                    ["#Results"] = "Results",
                    ["#Error"] = "Error",
                    ["#TTL"] = "TTL",
                },
                ExpressionAttributeValues = new()
                {
                    [":state"] = S(wireState),
                    [":name"] = StringOrNull(state.TaskName),
                    [":created"] = S(createdAt),
                    [":results"] = results,
                    [":error"] = StringOrNull(state.Error),
                    [":ttl"] = N(ExpiresAt()),
                },
            },
            cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async ValueTask<TaskStateRecord?> GetStateAsync(string taskId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(taskId);
        await ReadyAsync(cancellationToken).ConfigureAwait(false);
        var response = await Client.GetItemAsync(
            new GetItemRequest { TableName = _options.StatesTable, Key = new() { [TaskKey] = S(taskId) }, ConsistentRead = true },
            cancellationToken).ConfigureAwait(false);
        return response.Item is { Count: > 0 } item ? ToState(item) : null;
    }

    /// <inheritdoc/>
    public async ValueTask<IReadOnlyList<TaskStateRecord?>> GetStatesAsync(IReadOnlyList<string> taskIds, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(taskIds);
        await ReadyAsync(cancellationToken).ConfigureAwait(false);
        var found = new Dictionary<string, TaskStateRecord>(StringComparer.Ordinal);
        var wanted = taskIds.Distinct(StringComparer.Ordinal).ToList();

        // BatchGetItem takes 100 keys a call and may leave some unprocessed under load: those are asked again.
        for (var start = 0; start < wanted.Count; start += 100)
        {
            var keys = wanted.Skip(start).Take(100).Select(id => new Dictionary<string, AttributeValue> { [TaskKey] = S(id) }).ToList();
            var delay = TimeSpan.FromMilliseconds(20);
            while (keys.Count > 0)
            {
                var response = await Client.BatchGetItemAsync(
                    new BatchGetItemRequest { RequestItems = new() { [_options.StatesTable] = new KeysAndAttributes { Keys = keys, ConsistentRead = true } } },
                    cancellationToken).ConfigureAwait(false);
                if (response.Responses is { } responses && responses.TryGetValue(_options.StatesTable, out var items))
                {
                    foreach (var item in items)
                    {
                        var state = ToState(item);
                        found[state.TaskId] = state;
                    }
                }

                keys = response.UnprocessedKeys is { } unprocessed && unprocessed.TryGetValue(_options.StatesTable, out var left) ? left.Keys ?? [] : [];
                if (keys.Count > 0)
                {
                    Log.UnprocessedKeys(_logger, keys.Count, delay);
                    await Task.Delay(delay, _time, cancellationToken).ConfigureAwait(false);
                    delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(2).Ticks));
                }
            }
        }

        return [.. taskIds.Select(id => found.GetValueOrDefault(id))];
    }

    /// <inheritdoc/>
    public async ValueTask InitGroupAsync(GroupMeta meta, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(meta);
        await ReadyAsync(cancellationToken).ConfigureAwait(false);
        await Client.PutItemAsync(new PutItemRequest { TableName = _options.GroupsTable, Item = GroupItem(meta, ExpiresAt()) }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async ValueTask<GroupMeta?> GetGroupMetaAsync(string groupId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(groupId);
        await ReadyAsync(cancellationToken).ConfigureAwait(false);
        var response = await Client.GetItemAsync(
            new GetItemRequest
            {
                TableName = _options.GroupsTable,
                Key = new() { [GroupKey] = S(groupId) },
                ConsistentRead = true,
                ProjectionExpression = "GroupUUID, TaskUUIDs, ChordTriggered, #Lock, CreatedAt, #TTL",
                ExpressionAttributeNames = new() { ["#Lock"] = "Lock", ["#TTL"] = "TTL" },
            },
            cancellationToken).ConfigureAwait(false);
        return response.Item is { Count: > 0 } item ? ToGroupMeta(item) : null;
    }

    /// <inheritdoc/>
    /// <remarks>
    /// One conditional <c>UpdateItem</c> records the member (only if absent from the group's member map) and its
    /// counts. Members a Go worker ran are never recorded: a cursor over the meta's member order (stored on the group
    /// item) moves forward over members that are recorded or whose state is final, reading ahead in chunks
    /// (<c>BatchGetItem</c>), so the whole group costs O(N) reads once. The cursor completes a group only when it
    /// passed a member that was not recorded (a peer's, or one not recorded yet); a group of Conveyor members alone is
    /// completed by its last recorded member, exactly once.
    /// </remarks>
    public async ValueTask<GroupCompletion> CompleteGroupMemberAsync(string groupId, string taskId, bool succeeded, string? traceParent = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(groupId);
        ArgumentException.ThrowIfNullOrEmpty(taskId);
        await ReadyAsync(cancellationToken).ConfigureAwait(false);
        var names = new Dictionary<string, string>
        {
            ["#Members"] = Members,
            ["#member"] = MemberKey(taskId),
            ["#Completed"] = Completed,
            ["#Failed"] = Failed,
            ["#Triggered"] = "ChordTriggered",
            ["#TTL"] = "TTL",
            ["#Scanned"] = Scanned,
            ["#PeerFailed"] = PeerFailed,
            ["#PeerSeen"] = PeerSeen,
        };
        var values = new Dictionary<string, AttributeValue>
        {
            [":true"] = Bool(true),
            [":false"] = Bool(false),
            [":zero"] = N(0),
            [":one"] = N(1),
            [":failed"] = N(succeeded ? 0 : 1),
            [":ttl"] = N(ExpiresAt()),
        };
        var traces = string.Empty;
        if (!string.IsNullOrEmpty(traceParent))
        {
            names["#Traces"] = Traces;
            values[":trace"] = S(traceParent);
            traces = "#Traces.#member = :trace, ";
        }

        var request = new UpdateItemRequest
        {
            TableName = _options.GroupsTable,
            Key = new() { [GroupKey] = S(groupId) },
            UpdateExpression = "SET #Members.#member = :true, " + traces
                + "#Triggered = if_not_exists(#Triggered, :false), #TTL = if_not_exists(#TTL, :ttl), "
                + "#Scanned = if_not_exists(#Scanned, :zero), #PeerFailed = if_not_exists(#PeerFailed, :zero), #PeerSeen = if_not_exists(#PeerSeen, :zero) "
                + "ADD #Completed :one, #Failed :failed",
            ConditionExpression = "attribute_not_exists(#Members.#member)",
            ExpressionAttributeNames = names,
            ExpressionAttributeValues = values,

            // Only what this write touched comes back: the counts, the cursor, the flag and this member's entry.
            ReturnValues = ReturnValue.UPDATED_NEW,
        };
        Dictionary<string, AttributeValue> item;
        bool first;
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                item = (await Client.UpdateItemAsync(request, cancellationToken).ConfigureAwait(false)).Attributes ?? [];
                first = true;
                break;
            }
            catch (ConditionalCheckFailedException)
            {
                // Already recorded (a redelivered member): report the group as it is.
                item = await ReadProgressAsync(groupId, cancellationToken).ConfigureAwait(false);
                first = false;
                break;
            }
            catch (AmazonDynamoDBException ex) when (attempt == 0 && ex.ErrorCode == "ValidationException")
            {
                // The group item lacks Conveyor's maps (a group meta a Go producer stored, or none at all): add them
                // empty, keeping any already there, and record again.
                await Client.UpdateItemAsync(
                    new UpdateItemRequest
                    {
                        TableName = _options.GroupsTable,
                        Key = new() { [GroupKey] = S(groupId) },
                        UpdateExpression = "SET #Members = if_not_exists(#Members, :empty), #Traces = if_not_exists(#Traces, :empty)",
                        ExpressionAttributeNames = new() { ["#Members"] = Members, ["#Traces"] = Traces },
                        ExpressionAttributeValues = new() { [":empty"] = new AttributeValue { M = [] } },
                    },
                    cancellationToken).ConfigureAwait(false);
            }
        }

        var progress = new Progress(
            (int)Number(item, Completed),
            (int)Number(item, Failed),
            (int)Number(item, Scanned),
            (int)Number(item, PeerFailed),
            (int)Number(item, PeerSeen),
            item.TryGetValue("ChordTriggered", out var t) && t.BOOL == true);
        var ids = await MemberIdsAsync(groupId, cancellationToken).ConfigureAwait(false);
        if (ids is not null && progress.Recorded < ids.Count && progress.Scanned < ids.Count)
        {
            progress = await ScanAsync(groupId, ids, progress, cancellationToken).ConfigureAwait(false);
        }

        var completed = progress.PeerSeen > 0 ? Math.Max(progress.Recorded, progress.Scanned) : progress.Recorded;
        if (ids is not null && completed >= ids.Count)
        {
            _memberIds.TryRemove(groupId, out _);
        }

        return new GroupCompletion(completed, progress.Failed + progress.PeerFailed, first, progress.Triggered);
    }

    /// <inheritdoc/>
    /// <remarks>
    /// One conditional <c>UpdateItem</c> sets <c>ChordTriggered</c> (and Conveyor's claimant) only when it is not set
    /// and machinery's <c>Lock</c> is not held (machinery's <c>TriggerChord</c> sets <c>Lock</c> while it reads and
    /// sets <c>ChordTriggered</c>; a held lock is waited for, 5 ms at a time, as machinery does).
    /// </remarks>
    public async ValueTask<ChordClaim> ClaimChordAsync(string groupId, string claimantId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(groupId);
        ArgumentException.ThrowIfNullOrEmpty(claimantId);
        await ReadyAsync(cancellationToken).ConfigureAwait(false);
        var deadline = _time.GetUtcNow() + TimeSpan.FromSeconds(30);
        while (true)
        {
            try
            {
                await Client.UpdateItemAsync(
                    new UpdateItemRequest
                    {
                        TableName = _options.GroupsTable,
                        Key = new() { [GroupKey] = S(groupId) },
                        UpdateExpression = "SET #Triggered = :true, #Claimant = :claimant",
                        ConditionExpression = "attribute_exists(TaskUUIDs) AND (attribute_not_exists(#Triggered) OR #Triggered = :false) AND (attribute_not_exists(#Lock) OR #Lock = :false)",
                        ExpressionAttributeNames = new() { ["#Triggered"] = "ChordTriggered", ["#Claimant"] = Claimant, ["#Lock"] = "Lock" },
                        ExpressionAttributeValues = new() { [":true"] = Bool(true), [":false"] = Bool(false), [":claimant"] = S(claimantId) },
                    },
                    cancellationToken).ConfigureAwait(false);
                return ChordClaim.Won;
            }
            catch (ConditionalCheckFailedException)
            {
            }

            var response = await Client.GetItemAsync(
                new GetItemRequest
                {
                    TableName = _options.GroupsTable,
                    Key = new() { [GroupKey] = S(groupId) },
                    ConsistentRead = true,
                    ProjectionExpression = "GroupUUID, TaskUUIDs, #Triggered, #Lock, #Claimant, #Published",
                    ExpressionAttributeNames = new() { ["#Triggered"] = "ChordTriggered", ["#Lock"] = "Lock", ["#Claimant"] = Claimant, ["#Published"] = Published },
                },
                cancellationToken).ConfigureAwait(false);
            var item = response.Item ?? [];
            if (!item.ContainsKey("TaskUUIDs"))
            {
                throw new InvalidOperationException($"Cannot claim chord {groupId}: its group meta is missing (never stored, or expired).");
            }

            if (item.TryGetValue("ChordTriggered", out var triggered) && triggered.BOOL == true)
            {
                var published = item.TryGetValue(Published, out var mark) && mark.BOOL == true;
                return !published && Text(item, Claimant) == claimantId ? ChordClaim.Resumed : ChordClaim.Lost;
            }

            // machinery's Lock is held (a Go worker is in TriggerChord), or the flag changed in between: again.
            if (_time.GetUtcNow() > deadline)
            {
                throw new TimeoutException($"Chord {groupId}: machinery's group Lock stayed held for 30 s; cannot claim the callback.");
            }

            await Task.Delay(TimeSpan.FromMilliseconds(5), _time, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc/>
    public async ValueTask<IReadOnlyList<string>> GetGroupMemberTraceParentsAsync(string groupId, int maxCount, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(groupId);
        ArgumentOutOfRangeException.ThrowIfNegative(maxCount);
        if (maxCount == 0)
        {
            return [];
        }

        await ReadyAsync(cancellationToken).ConfigureAwait(false);
        var response = await Client.GetItemAsync(
            new GetItemRequest
            {
                TableName = _options.GroupsTable,
                Key = new() { [GroupKey] = S(groupId) },
                ConsistentRead = true,
                ProjectionExpression = "#Traces",
                ExpressionAttributeNames = new() { ["#Traces"] = Traces },
            },
            cancellationToken).ConfigureAwait(false);
        return response.Item is { } item && item.TryGetValue(Traces, out var traces) && traces.M is { } map
            ? [.. map.Values.Select(v => v.S).OfType<string>().Take(maxCount)]
            : [];
    }

    /// <inheritdoc/>
    /// <remarks>Sets <c>ChordTriggered</c> (for Go readers) and Conveyor's published mark, which ends the claim.</remarks>
    public async ValueTask MarkChordTriggeredAsync(string groupId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(groupId);
        await ReadyAsync(cancellationToken).ConfigureAwait(false);
        await Client.UpdateItemAsync(
            new UpdateItemRequest
            {
                TableName = _options.GroupsTable,
                Key = new() { [GroupKey] = S(groupId) },
                UpdateExpression = "SET ChordTriggered = :true, #Published = :true",
                ExpressionAttributeNames = new() { ["#Published"] = Published },
                ExpressionAttributeValues = new() { [":true"] = Bool(true) },
            },
            cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    /// <remarks>
    /// DynamoDB pushes nothing: this only waits, and the caller polls (<see cref="ConveyorClient"/> reads after 1 ms,
    /// then at doubling intervals up to its <see cref="ConveyorClientOptions.MaxResultPollInterval"/>).
    /// </remarks>
    public async ValueTask WaitForChangeAsync(string taskId, TimeSpan maxWait, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(taskId);
        if (maxWait > TimeSpan.Zero)
        {
            await Task.Delay(maxWait, _time, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc/>
    public async ValueTask DeleteStateAsync(string taskId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(taskId);
        await ReadyAsync(cancellationToken).ConfigureAwait(false);
        await Client.DeleteItemAsync(new DeleteItemRequest { TableName = _options.StatesTable, Key = new() { [TaskKey] = S(taskId) } }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async ValueTask DeleteGroupAsync(string groupId, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(groupId);
        await ReadyAsync(cancellationToken).ConfigureAwait(false);
        await Client.DeleteItemAsync(new DeleteItemRequest { TableName = _options.GroupsTable, Key = new() { [GroupKey] = S(groupId) } }, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0 && _ownsClient)
        {
            Client.Dispose();
        }

        return ValueTask.CompletedTask;
    }

    internal static AmazonDynamoDBClient CreateClient(DynamoDbBackendOptions options)
    {
        var config = new AmazonDynamoDBConfig();
        if (options.ServiceUrl is { } serviceUrl)
        {
            config.ServiceURL = serviceUrl.ToString();

            // An endpoint override still signs for a region; an emulator accepts any.
            config.AuthenticationRegion = options.Region ?? Environment.GetEnvironmentVariable("AWS_REGION") ?? "us-east-1";
        }
        else if (options.Region is { } region)
        {
            config.RegionEndpoint = RegionEndpoint.GetBySystemName(region);
        }

        return options.Credentials is { } credentials ? new AmazonDynamoDBClient(credentials, config) : new AmazonDynamoDBClient(config);
    }

    private async Task<Dictionary<string, AttributeValue>> ReadProgressAsync(string groupId, CancellationToken cancellationToken)
    {
        var response = await Client.GetItemAsync(
            new GetItemRequest
            {
                TableName = _options.GroupsTable,
                Key = new() { [GroupKey] = S(groupId) },
                ConsistentRead = true,
                ProjectionExpression = "#Completed, #Failed, #Triggered, #Scanned, #PeerFailed, #PeerSeen",
                ExpressionAttributeNames = new()
                {
                    ["#Completed"] = Completed,
                    ["#Failed"] = Failed,
                    ["#Triggered"] = "ChordTriggered",
                    ["#Scanned"] = Scanned,
                    ["#PeerFailed"] = PeerFailed,
                    ["#PeerSeen"] = PeerSeen,
                },
            },
            cancellationToken).ConfigureAwait(false);
        return response.Item ?? [];
    }

    private async Task<IReadOnlyList<string>?> MemberIdsAsync(string groupId, CancellationToken cancellationToken)
    {
        if (_memberIds.TryGetValue(groupId, out var cached))
        {
            return cached.Count == 0 ? null : cached;
        }

        // A group without a meta (a counter of completions only, such as the benchmark's) is remembered as such: a
        // group's meta is stored before any member is published, so it does not appear later.
        var ids = (await GetGroupMetaAsync(groupId, cancellationToken).ConfigureAwait(false))?.TaskIds ?? [];
        if (_memberIds.Count >= MaxCachedGroups)
        {
            _memberIds.Clear(); // a cache: a group that loses its entry reads its meta again
        }

        _memberIds[groupId] = ids;
        return ids.Count == 0 ? null : ids;
    }

    // Moves the group's cursor forward over members that are recorded or final, a chunk at a time, and stores it
    // with a condition on its old value (a concurrent scanner that moved it first wins; this one reads it again).
    private async Task<Progress> ScanAsync(string groupId, IReadOnlyList<string> ids, Progress progress, CancellationToken cancellationToken)
    {
        for (var attempt = 0; attempt < 8 && progress.Scanned < ids.Count; attempt++)
        {
            var scanned = progress.Scanned;
            var peerFailed = progress.PeerFailed;
            var peerSeen = progress.PeerSeen;
            var blocked = false;

            // The member at the cursor is usually the one still running: look at it alone first, then read ahead
            // in growing chunks while the cursor moves.
            var size = 1;
            while (!blocked && scanned < ids.Count)
            {
                var chunk = ids.Skip(scanned).Take(size).ToList();
                size = Math.Min(size * 4, ScanChunk);
                var recorded = await RecordedAsync(groupId, chunk, cancellationToken).ConfigureAwait(false);
                var unrecorded = chunk.Where(id => !recorded.Contains(id)).ToList();
                var states = unrecorded.Count == 0 ? [] : await GetStatesAsync(unrecorded, cancellationToken).ConfigureAwait(false);
                var stateById = new Dictionary<string, TaskState?>(StringComparer.Ordinal);
                for (var i = 0; i < unrecorded.Count; i++)
                {
                    stateById[unrecorded[i]] = states[i]?.State;
                }

                foreach (var id in chunk)
                {
                    if (!recorded.Contains(id))
                    {
                        var state = stateById[id];
                        if (state is not (TaskState.Success or TaskState.Failure))
                        {
                            blocked = true;
                            break;
                        }

                        peerSeen++;
                        if (state == TaskState.Failure)
                        {
                            peerFailed++;
                        }
                    }

                    scanned++;
                }
            }

            if (scanned == progress.Scanned)
            {
                return progress;
            }

            try
            {
                await Client.UpdateItemAsync(
                    new UpdateItemRequest
                    {
                        TableName = _options.GroupsTable,
                        Key = new() { [GroupKey] = S(groupId) },
                        UpdateExpression = "SET #Scanned = :scanned, #PeerFailed = :peerFailed, #PeerSeen = :peerSeen",
                        ConditionExpression = "#Scanned = :old",
                        ExpressionAttributeNames = new() { ["#Scanned"] = Scanned, ["#PeerFailed"] = PeerFailed, ["#PeerSeen"] = PeerSeen },
                        ExpressionAttributeValues = new()
                        {
                            [":scanned"] = N(scanned),
                            [":peerFailed"] = N(peerFailed),
                            [":peerSeen"] = N(peerSeen),
                            [":old"] = N(progress.Scanned),
                        },
                    },
                    cancellationToken).ConfigureAwait(false);
                return progress with { Scanned = scanned, PeerFailed = peerFailed, PeerSeen = peerSeen };
            }
            catch (ConditionalCheckFailedException)
            {
                var item = await ReadProgressAsync(groupId, cancellationToken).ConfigureAwait(false);
                progress = progress with
                {
                    Scanned = (int)Number(item, Scanned),
                    PeerFailed = (int)Number(item, PeerFailed),
                    PeerSeen = (int)Number(item, PeerSeen),
                    Triggered = progress.Triggered || (item.TryGetValue("ChordTriggered", out var t) && t.BOOL == true),
                };
            }
        }

        return progress;
    }

    private async Task<HashSet<string>> RecordedAsync(string groupId, List<string> chunk, CancellationToken cancellationToken)
    {
        var names = new Dictionary<string, string> { ["#Members"] = Members };
        for (var i = 0; i < chunk.Count; i++)
        {
            names["#m" + i.ToString(System.Globalization.CultureInfo.InvariantCulture)] = MemberKey(chunk[i]);
        }

        var response = await Client.GetItemAsync(
            new GetItemRequest
            {
                TableName = _options.GroupsTable,
                Key = new() { [GroupKey] = S(groupId) },
                ConsistentRead = true,
                ProjectionExpression = string.Join(", ", Enumerable.Range(0, chunk.Count).Select(i => "#Members.#m" + i.ToString(System.Globalization.CultureInfo.InvariantCulture))),
                ExpressionAttributeNames = names,
            },
            cancellationToken).ConfigureAwait(false);
        return response.Item is { } item && item.TryGetValue(Members, out var members) && members.M is { } map
            ? new HashSet<string>(chunk.Where(id => map.ContainsKey(MemberKey(id))), StringComparer.Ordinal)
            : [];
    }

    private readonly record struct Progress(int Recorded, int Failed, int Scanned, int PeerFailed, int PeerSeen, bool Triggered);

    private long ExpiresAt() => (_time.GetUtcNow() + _options.ResultTtl).ToUnixTimeSeconds();

    private Task ReadyAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        var lazy = _tables;
        var tables = lazy.Value;
        if (tables.IsFaulted)
        {
            // A failed check (DynamoDB unreachable) is tried again by the next call, not remembered.
            Interlocked.CompareExchange(ref _tables, new Lazy<Task>(EnsureTablesAsync), lazy);
        }

        return tables.IsCompletedSuccessfully ? Task.CompletedTask : tables.WaitAsync(cancellationToken);
    }

    private async Task EnsureTablesAsync()
    {
        if (!_options.CreateTables)
        {
            return;
        }

        await EnsureTableAsync(_options.StatesTable, TaskKey).ConfigureAwait(false);
        await EnsureTableAsync(_options.GroupsTable, GroupKey).ConfigureAwait(false);
    }

    private async Task EnsureTableAsync(string table, string key)
    {
        try
        {
            var described = await Client.DescribeTableAsync(new DescribeTableRequest { TableName = table }).ConfigureAwait(false);
            if (described.Table.TableStatus == TableStatus.ACTIVE)
            {
                return;
            }
        }
        catch (ResourceNotFoundException)
        {
            try
            {
                await Client.CreateTableAsync(new CreateTableRequest
                {
                    TableName = table,
                    AttributeDefinitions = [new AttributeDefinition { AttributeName = key, AttributeType = ScalarAttributeType.S }],
                    KeySchema = [new KeySchemaElement { AttributeName = key, KeyType = KeyType.HASH }],
                    BillingMode = BillingMode.PAY_PER_REQUEST,
                }).ConfigureAwait(false);
                Log.TableCreated(_logger, table, key);
            }
            catch (ResourceInUseException)
            {
                // Another process created it meanwhile.
            }
        }

        for (var delay = TimeSpan.FromMilliseconds(20); ; delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(1).Ticks)))
        {
            var described = await Client.DescribeTableAsync(new DescribeTableRequest { TableName = table }).ConfigureAwait(false);
            if (described.Table.TableStatus == TableStatus.ACTIVE)
            {
                break;
            }

            // Real time, not the injected clock: this waits for DynamoDB itself.
            await Task.Delay(delay, TimeProvider.System).ConfigureAwait(false);
        }

        try
        {
            await Client.UpdateTimeToLiveAsync(new UpdateTimeToLiveRequest
            {
                TableName = table,
                TimeToLiveSpecification = new TimeToLiveSpecification { AttributeName = "TTL", Enabled = true },
            }).ConfigureAwait(false);
        }
        catch (AmazonDynamoDBException ex)
        {
            Log.TimeToLiveFailed(_logger, table, ex.ErrorCode, ex.Message);
        }
    }
}
