namespace Conveyor.Sqlite.Internal;

/// <summary>
/// What a write request sees inside the writer's transaction: the connection's cached commands, and the
/// bookkeeping that is done once per transaction (queue versions, the state change counter) and announced after
/// the commit (in-process wake-ups).
/// </summary>
internal sealed class WriteContext
{
    private readonly StoreConnection _connection;
    private readonly HashSet<string> _touchedQueues = new(StringComparer.Ordinal);
    private readonly List<string> _changedStates = [];
    private readonly Dictionary<string, long> _queueVersions = new(StringComparer.Ordinal);
    private long _stateSeq;

    public WriteContext(StoreConnection connection) => _connection = connection;

    public Statement Command(string sql) => _connection.Command(sql);

    /// <summary>Notes that a message of a queue became ready: its version is bumped before the commit, and the
    /// queue's in-process consumers are woken after it.</summary>
    public void QueueChanged(string queue) => _touchedQueues.Add(queue);

    /// <summary>Notes that a task's state was written: its in-process waiters are woken after the commit.</summary>
    public void StateChanged(string taskId) => _changedStates.Add(taskId);

    /// <summary>The change number of this transaction's state writes (one counter update per transaction).</summary>
    public long StateSeq
    {
        get
        {
            if (_stateSeq == 0)
            {
                _stateSeq = Command(Sql.NextStateSeq).ExecuteScalarInt64()!.Value;
            }

            return _stateSeq;
        }
    }

    public IReadOnlyDictionary<string, long> QueueVersions => _queueVersions;

    public IReadOnlyList<string> ChangedStates => _changedStates;

    public void Reset()
    {
        _touchedQueues.Clear();
        _changedStates.Clear();
        _queueVersions.Clear();
        _stateSeq = 0;
    }

    /// <summary>Runs the per-transaction bookkeeping; called just before the commit.</summary>
    public void BeforeCommit()
    {
        foreach (var queue in _touchedQueues)
        {
            var version = Command(Sql.BumpQueue).With("$queue", queue).ExecuteScalarInt64()!.Value;
            _queueVersions[queue] = version;
        }
    }
}
