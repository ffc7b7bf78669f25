namespace Conveyor.Sqlite.Internal;

/// <summary>
/// The schema and every statement, in one place. Times are Unix milliseconds from the injected clock; ids are
/// machinery's task and group ids; bodies are the bytes machinery would store (message JSON, state JSON, group
/// meta JSON).
/// </summary>
internal static class Sql
{
    /// <summary>The schema version this code writes; stored in <c>PRAGMA user_version</c>.</summary>
    public const int SchemaVersion = 1;

    // Message states. A message is ready (0), delayed until due_at (1: its ETA), or leased until due_at (2). A
    // delayed or leased message whose due_at has passed is ready again: the next fetch of its queue promotes it.
    public const int Ready = 0;
    public const int Delayed = 1;
    public const int Leased = 2;

    public const string CreateSchema = """
        CREATE TABLE IF NOT EXISTS messages (
            id             INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused, so a stale delivery can't settle a newer message
            queue          TEXT    NOT NULL,
            state          INTEGER NOT NULL,                  -- 0 ready, 1 delayed, 2 leased
            priority       INTEGER NOT NULL,                  -- 0..255, higher first
            due_at         INTEGER NOT NULL,                  -- delayed: the ETA; leased: the lease's end
            lease_owner    TEXT,                              -- the consumer holding the lease
            delivery_count INTEGER NOT NULL DEFAULT 0,
            enqueued_at    INTEGER NOT NULL,
            task_id        TEXT    NOT NULL,
            body           BLOB    NOT NULL
        );
        -- The dequeue order: highest priority first, FIFO (id) within a priority; ready messages only.
        CREATE INDEX IF NOT EXISTS messages_ready ON messages (queue, priority DESC, id) WHERE state = 0;
        -- Delayed and leased messages by when they become ready; covers the statistics too.
        CREATE INDEX IF NOT EXISTS messages_waiting ON messages (queue, due_at, state) WHERE state <> 0;

        -- Every queue ever published to or consumed; version grows with every write that makes a message ready,
        -- so consumers in other processes notice new work by reading one row.
        CREATE TABLE IF NOT EXISTS queues (
            name    TEXT PRIMARY KEY,
            version INTEGER NOT NULL
        ) WITHOUT ROWID;

        CREATE TABLE IF NOT EXISTS dead_letters (
            id               INTEGER PRIMARY KEY AUTOINCREMENT,
            queue            TEXT    NOT NULL,
            task_id          TEXT    NOT NULL,
            priority         INTEGER NOT NULL,
            reason           TEXT    NOT NULL,
            dead_lettered_at INTEGER NOT NULL,
            body             BLOB    NOT NULL
        );
        CREATE INDEX IF NOT EXISTS dead_letters_queue ON dead_letters (queue);

        -- Task states. A rowid table with a unique task_id rather than a table keyed by task_id: a task's row is
        -- written four or five times within moments, and rowid order keeps recent tasks' rows together in the
        -- last pages of the table, so a commit of many state writes touches a few pages, not one random page
        -- each (write volume in the WAL, and so checkpoints). created_at (UTC ticks and offset minutes) is kept
        -- across writes, as machinery keeps CreatedAt; change_seq is the state_seq counter of the transaction
        -- that wrote the row, so a process waiting for results finds what changed since its last look by reading
        -- the rows above the counter it saw then (states_change).
        CREATE TABLE IF NOT EXISTS states (
            id             INTEGER PRIMARY KEY,
            task_id        TEXT    NOT NULL UNIQUE,
            created_at     INTEGER NOT NULL,
            created_offset INTEGER NOT NULL,
            expires_at     INTEGER NOT NULL,
            change_seq     INTEGER NOT NULL,
            body           BLOB    NOT NULL
        );
        CREATE INDEX IF NOT EXISTS states_expires ON states (expires_at);
        -- What changed since a poll: the poller reads the rows above the counter it last saw.
        CREATE INDEX IF NOT EXISTS states_change ON states (change_seq);

        CREATE TABLE IF NOT EXISTS groups (
            group_id   TEXT    PRIMARY KEY,
            expires_at INTEGER NOT NULL,
            body       BLOB    NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS groups_expires ON groups (expires_at);

        -- The chord counter: one row per group, updated in the same transaction as the member's row below.
        -- claimant: the member that claimed the chord, until its callback is marked published. scanned: how many
        -- members, in member order, are known to be final (the cursor that counts members completed without a row
        -- in group_members); peer_failed: the failures among those.
        CREATE TABLE IF NOT EXISTS group_progress (
            group_id    TEXT    PRIMARY KEY,
            completed   INTEGER NOT NULL,
            failed      INTEGER NOT NULL,
            triggered   INTEGER NOT NULL,
            expires_at  INTEGER NOT NULL,
            claimant    TEXT,
            scanned     INTEGER,
            peer_failed INTEGER
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS group_progress_expires ON group_progress (expires_at);

        -- Members that completed; the primary key makes a second completion of a member a no-op. trace_parent is
        -- the member's process span (W3C traceparent), for the chord callback's links; NULL when there was none.
        CREATE TABLE IF NOT EXISTS group_members (
            group_id     TEXT NOT NULL,
            task_id      TEXT NOT NULL,
            trace_parent TEXT,
            PRIMARY KEY (group_id, task_id)
        ) WITHOUT ROWID;

        -- Leased locks. A released lock keeps its row so that its fencing token keeps growing.
        CREATE TABLE IF NOT EXISTS locks (
            name       TEXT    PRIMARY KEY,
            owner      TEXT,
            expires_at INTEGER NOT NULL,
            fencing    INTEGER NOT NULL
        ) WITHOUT ROWID;

        CREATE TABLE IF NOT EXISTS counters (
            name  TEXT    PRIMARY KEY,
            value INTEGER NOT NULL
        ) WITHOUT ROWID;
        INSERT OR IGNORE INTO counters (name, value) VALUES ('state_seq', 0);
        """;

    // ---- broker ----
    public const string InsertMessage = """
        INSERT INTO messages (queue, state, priority, due_at, lease_owner, delivery_count, enqueued_at, task_id, body)
        VALUES ($queue, $state, $priority, $due_at, NULL, 0, $now, $task_id, $body);
        """;

    public const string BumpQueue = """
        INSERT INTO queues (name, version) VALUES ($queue, 1)
        ON CONFLICT (name) DO UPDATE SET version = version + 1
        RETURNING version;
        """;

    public const string RegisterQueue = "INSERT OR IGNORE INTO queues (name, version) VALUES ($queue, 0);";

    public const string PromoteDue = """
        UPDATE messages SET state = 0, lease_owner = NULL
        WHERE queue = $queue AND state <> 0 AND due_at <= $now;
        """;

    // RETURNING gives rows in no defined order: the caller sorts them by (priority DESC, id).
    public const string LeaseReady = """
        UPDATE messages
        SET state = 2, lease_owner = $owner, due_at = $lease_until, delivery_count = delivery_count + 1
        WHERE id IN (SELECT id FROM messages WHERE queue = $queue AND state = 0 ORDER BY priority DESC, id LIMIT $limit)
        RETURNING id, priority, delivery_count, body;
        """;

    public const string NextDue = "SELECT MIN(due_at) FROM messages WHERE queue = $queue AND state <> 0;";

    public const string Ack = "DELETE FROM messages WHERE id = $id AND lease_owner = $owner;";

    public const string Release = "UPDATE messages SET state = 0, lease_owner = NULL WHERE id = $id AND lease_owner = $owner;";

    public const string ReleaseMany = """
        UPDATE messages SET state = 0, lease_owner = NULL
        WHERE id IN (SELECT value FROM json_each($ids)) AND lease_owner = $owner;
        """;

    public const string Heartbeat = """
        UPDATE messages SET due_at = $lease_until
        WHERE id IN (SELECT value FROM json_each($ids)) AND lease_owner = $owner
        RETURNING id;
        """;

    public const string DeadLetter = """
        INSERT INTO dead_letters (queue, task_id, priority, reason, dead_lettered_at, body)
        SELECT queue, task_id, priority, $reason, $now, body FROM messages WHERE id = $id AND lease_owner = $owner;
        """;

    public const string DeleteMessage = "DELETE FROM messages WHERE id = $id;";

    public const string CountReady = "SELECT COUNT(*) FROM messages WHERE queue = $queue AND state = 0;";

    public const string CountWaiting = """
        SELECT state, due_at <= $now, COUNT(*) FROM messages WHERE queue = $queue AND state <> 0 GROUP BY 1, 2;
        """;

    public const string CountDeadLetters = "SELECT COUNT(*) FROM dead_letters WHERE queue = $queue;";

    public const string ListQueues = "SELECT name FROM queues UNION SELECT queue FROM dead_letters ORDER BY 1;";

    public const string QueueVersions = "SELECT name, version FROM queues;";

    public const string PurgeReady = "DELETE FROM messages WHERE queue = $queue AND state = 0;";

    // Delayed messages, and leased ones whose lease has run out (they count as ready).
    public const string PurgeWaiting = "DELETE FROM messages WHERE queue = $queue AND state <> 0 AND (state = 1 OR due_at <= $now);";

    public const string SelectDeadLetters = """
        SELECT id, queue, reason, body, dead_lettered_at FROM dead_letters ORDER BY id LIMIT $limit;
        """;

    public const string DeadLetterQueues = """
        SELECT DISTINCT queue FROM (SELECT queue FROM dead_letters ORDER BY id LIMIT $limit);
        """;

    public const string RequeueDeadLetters = """
        INSERT INTO messages (queue, state, priority, due_at, lease_owner, delivery_count, enqueued_at, task_id, body)
        SELECT queue, 0, priority, $now, NULL, 0, $now, task_id, body FROM dead_letters ORDER BY id LIMIT $limit;
        """;

    public const string DeleteDeadLetters = """
        DELETE FROM dead_letters WHERE id IN (SELECT id FROM dead_letters ORDER BY id LIMIT $limit);
        """;

    // ---- result backend ----
    public const string NextStateSeq = "UPDATE counters SET value = value + 1 WHERE name = 'state_seq' RETURNING value;";

    public const string CurrentStateSeq = "SELECT value FROM counters WHERE name = 'state_seq';";

    public const string SelectCreatedAt = """
        SELECT created_at, created_offset FROM states WHERE task_id = $task_id AND expires_at > $now;
        """;

    public const string UpsertState = """
        INSERT INTO states (task_id, created_at, created_offset, expires_at, change_seq, body)
        VALUES ($task_id, $created_at, $created_offset, $expires_at, $change_seq, $body)
        ON CONFLICT (task_id) DO UPDATE SET
            created_at = excluded.created_at, created_offset = excluded.created_offset,
            expires_at = excluded.expires_at, change_seq = excluded.change_seq, body = excluded.body;
        """;

    public const string SelectState = "SELECT body, expires_at FROM states WHERE task_id = $task_id;";

    public const string SelectStates = """
        SELECT task_id, body, expires_at FROM states WHERE task_id IN (SELECT value FROM json_each($ids));
        """;

    public const string SelectChangeSeqs = """
        SELECT task_id, change_seq FROM states WHERE task_id IN (SELECT value FROM json_each($ids));
        """;

    public const string SelectChangedSince = """
        SELECT task_id, change_seq FROM states WHERE change_seq > $since ORDER BY change_seq LIMIT $limit;
        """;

    public const string DeleteExpiredState = "DELETE FROM states WHERE task_id = $task_id AND expires_at <= $now;";

    public const string DeleteState = "DELETE FROM states WHERE task_id = $task_id;";

    public const string UpsertGroup = """
        INSERT INTO groups (group_id, expires_at, body) VALUES ($group_id, $expires_at, $body)
        ON CONFLICT (group_id) DO UPDATE SET expires_at = excluded.expires_at, body = excluded.body;
        """;

    public const string SelectGroup = """
        SELECT g.body, g.expires_at, p.triggered
        FROM groups g LEFT JOIN group_progress p ON p.group_id = g.group_id
        WHERE g.group_id = $group_id;
        """;

    public const string SelectGroupBody = "SELECT body FROM groups WHERE group_id = $group_id AND expires_at > $now;";

    public const string UpdateGroupBody = "UPDATE groups SET body = $body WHERE group_id = $group_id;";

    public const string InsertMember = """
        INSERT OR IGNORE INTO group_members (group_id, task_id, trace_parent) VALUES ($group_id, $task_id, $trace_parent);
        """;

    public const string SelectMemberTraceParents = """
        SELECT trace_parent FROM group_members WHERE group_id = $group_id AND trace_parent IS NOT NULL LIMIT $limit;
        """;

    // Files created before trace_parent existed get it added when opened (schema version 1 either way: the column
    // is nullable and older code never names it, so old and new processes can share a file).
    public const string HasMemberTraceParent = "SELECT COUNT(*) FROM pragma_table_info('group_members') WHERE name = 'trace_parent';";

    public const string AddMemberTraceParent = "ALTER TABLE group_members ADD COLUMN trace_parent TEXT;";

    // The chord claim and the completion cursor, added to files made before them like trace_parent above.
    public const string HasProgressClaimant = "SELECT COUNT(*) FROM pragma_table_info('group_progress') WHERE name = 'claimant';";

    public const string AddProgressClaim = """
        ALTER TABLE group_progress ADD COLUMN claimant TEXT;
        ALTER TABLE group_progress ADD COLUMN scanned INTEGER;
        ALTER TABLE group_progress ADD COLUMN peer_failed INTEGER;
        """;

    public const string IsMember = "SELECT 1 FROM group_members WHERE group_id = $group_id AND task_id = $task_id;";

    public const string SelectStateBody = "SELECT body FROM states WHERE task_id = $task_id AND expires_at > $now;";

    public const string UpdateScan = "UPDATE group_progress SET scanned = $scanned, peer_failed = $peer_failed WHERE group_id = $group_id;";

    public const string SelectClaim = "SELECT triggered, claimant FROM group_progress WHERE group_id = $group_id;";

    public const string Claim = """
        INSERT INTO group_progress (group_id, completed, failed, triggered, expires_at, claimant)
        VALUES ($group_id, 0, 0, 1, $expires_at, $claimant)
        ON CONFLICT (group_id) DO UPDATE SET triggered = 1, claimant = excluded.claimant, expires_at = excluded.expires_at;
        """;

    public const string CountMember = """
        INSERT INTO group_progress (group_id, completed, failed, triggered, expires_at)
        VALUES ($group_id, $completed, $failed, 0, $expires_at)
        ON CONFLICT (group_id) DO UPDATE SET
            completed = completed + excluded.completed, failed = failed + excluded.failed, expires_at = excluded.expires_at
        RETURNING completed, failed, triggered, coalesce(scanned, 0), coalesce(peer_failed, 0);
        """;

    public const string MarkTriggered = """
        INSERT INTO group_progress (group_id, completed, failed, triggered, expires_at)
        VALUES ($group_id, 0, 0, 1, $expires_at)
        ON CONFLICT (group_id) DO UPDATE SET triggered = 1, claimant = NULL, expires_at = excluded.expires_at;
        """;

    public const string DeleteGroup = "DELETE FROM groups WHERE group_id = $group_id;";

    public const string DeleteGroupProgress = "DELETE FROM group_progress WHERE group_id = $group_id;";

    public const string DeleteGroupMembers = "DELETE FROM group_members WHERE group_id = $group_id;";

    // The sweep deletes in bounded slices so that it never makes a long transaction.
    public const string SweepStates = """
        DELETE FROM states WHERE id IN (SELECT id FROM states WHERE expires_at <= $now LIMIT $limit);
        """;

    public const string SweepGroups = """
        DELETE FROM groups WHERE group_id IN (SELECT group_id FROM groups WHERE expires_at <= $now LIMIT $limit);
        """;

    public const string SweepGroupMembers = """
        DELETE FROM group_members WHERE group_id IN (SELECT group_id FROM group_progress WHERE expires_at <= $now LIMIT $limit);
        """;

    public const string SweepGroupProgress = """
        DELETE FROM group_progress WHERE group_id IN (SELECT group_id FROM group_progress WHERE expires_at <= $now LIMIT $limit);
        """;

    // ---- lock ----
    public const string SelectLock = "SELECT owner, expires_at, fencing FROM locks WHERE name = $name;";

    public const string UpsertLock = """
        INSERT INTO locks (name, owner, expires_at, fencing) VALUES ($name, $owner, $expires_at, $fencing)
        ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at, fencing = excluded.fencing;
        """;

    public const string RenewLock = """
        UPDATE locks SET expires_at = $expires_at WHERE name = $name AND owner = $owner AND expires_at > $now;
        """;

    // Fences live in the counters table under "fence:" + name: one row per name, and no schema change, so
    // processes of this version and older ones can share a file. The conditional upsert changes a row (or inserts
    // one) only when the token is greater: changes() is 1 for the call that advanced the fence, 0 otherwise.
    public const string AdvanceFence = """
        INSERT INTO counters (name, value) VALUES ($name, $token)
        ON CONFLICT (name) DO UPDATE SET value = excluded.value WHERE excluded.value > counters.value;
        """;

    public const string SelectFence = "SELECT value FROM counters WHERE name = $name;";

    public const string FencePrefix = "fence:";

    public const string ReleaseLock = "UPDATE locks SET owner = NULL, expires_at = 0 WHERE name = $name AND owner = $owner;";
}
