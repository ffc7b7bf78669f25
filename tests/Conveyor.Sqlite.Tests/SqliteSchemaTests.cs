using Microsoft.Data.Sqlite;

namespace Conveyor.Sqlite.Tests;

public sealed class SqliteSchemaTests : IDisposable
{
    private readonly string _directory = TempDatabase.NewDirectory();

    public void Dispose() => TempDatabase.Delete(_directory);

    [Fact]
    public async Task Schema_SeveralProcessesOpenANewFileAtOnce_AllWorkAndTheSchemaIsCreatedOnce()
    {
        var path = Path.Combine(_directory, "nested", "folder", "conveyor.db");
        var brokers = Enumerable.Range(0, 3).Select(_ => new SqliteBroker(TestOptions.Process(path))).ToList();
        var backends = Enumerable.Range(0, 3).Select(_ => new SqliteResultBackend(TestOptions.Process(path))).ToList();
        Assert.False(File.Exists(path), "a constructor did I/O");
        try
        {
            // Released together; an async gate, so that no thread-pool thread blocks while the others start.
            var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var work = brokers.Select((b, i) => Task.Run(async () =>
                {
                    await start.Task;
                    await b.PublishAsync(new OutgoingMessage($"task_{i}", "q", new byte[] { (byte)i }));
                }))
                .Concat(backends.Select((b, i) => Task.Run(async () =>
                {
                    await start.Task;
                    await b.SetStateAsync(new TaskStateRecord { TaskId = $"task_{i}", State = TaskState.Pending });
                })))
                .ToList();
            start.SetResult();
            await Task.WhenAll(work).WaitAsync(TimeSpan.FromSeconds(30));

            Assert.Equal(3, (await brokers[0].GetQueueStatisticsAsync("q")).Ready);
            Assert.Equal(3, (await backends[0].GetStatesAsync(["task_0", "task_1", "task_2"])).Count(s => s is not null));
        }
        finally
        {
            foreach (var b in brokers)
            {
                await b.DisposeAsync();
            }

            foreach (var b in backends)
            {
                await b.DisposeAsync();
            }
        }

        using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString());
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA user_version; PRAGMA journal_mode;";
        using var reader = command.ExecuteReader();
        Assert.True(reader.Read());
        Assert.Equal(1L, reader.GetInt64(0));
        Assert.True(reader.NextResult() && reader.Read());
        Assert.Equal("wal", reader.GetString(0));

        // Reopening an existing database leaves its data alone.
        await using var again = new SqliteBroker(TestOptions.Process(path));
        Assert.Equal(3, (await again.GetQueueStatisticsAsync("q")).Ready);
    }

    [Fact]
    public async Task Schema_FileFromBeforeMemberTraceContexts_GainsTheColumnAndKeepsItsMembers()
    {
        var path = Path.Combine(_directory, "conveyor.db");
        await using (var creator = new SqliteResultBackend(TestOptions.Process(path)))
        {
            await creator.CompleteGroupMemberAsync("group_old", "task_old", succeeded: true);
        }

        using (var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString()))
        {
            // group_members as schema version 1 first created it, with the member completed above.
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = """
                DROP TABLE group_members;
                CREATE TABLE group_members (group_id TEXT NOT NULL, task_id TEXT NOT NULL, PRIMARY KEY (group_id, task_id)) WITHOUT ROWID;
                INSERT INTO group_members (group_id, task_id) VALUES ('group_old', 'task_old');
                """;
            command.ExecuteNonQuery();
        }

        var traceParent = "00-" + new string('a', 32) + "-" + new string('b', 16) + "-01";
        await using (var backend = new SqliteResultBackend(TestOptions.Process(path)))
        {
            Assert.Empty(await backend.GetGroupMemberTraceParentsAsync("group_old", 10));
            Assert.False((await backend.CompleteGroupMemberAsync("group_old", "task_old", succeeded: true, traceParent)).IsFirstCompletion);
            Assert.True((await backend.CompleteGroupMemberAsync("group_old", "task_new", succeeded: true, traceParent)).IsFirstCompletion);
            Assert.Equal([traceParent], await backend.GetGroupMemberTraceParentsAsync("group_old", 10));
        }

        // Opening it again finds the column there and adds nothing.
        await using var again = new SqliteResultBackend(TestOptions.Process(path));
        Assert.Equal([traceParent], await again.GetGroupMemberTraceParentsAsync("group_old", 10));
    }

    [Fact]
    public async Task Schema_FileFromBeforeTheChordClaim_GainsItsColumns_AndAnOlderGroupCompletesFromItsStates()
    {
        var path = Path.Combine(_directory, "conveyor.db");
        var members = new[] { "task_m0", "task_m1", "task_m2" };
        await using (var creator = new SqliteResultBackend(TestOptions.Process(path)))
        {
            await creator.InitGroupAsync(new GroupMeta { GroupId = "group_old", TaskIds = members, CreatedAt = DateTimeOffset.UnixEpoch });

            // Two members finished by a process of an older version: their states are final, no member rows.
            await creator.SetStateAsync(new TaskStateRecord { TaskId = members[0], TaskName = "add", State = TaskState.Success });
            await creator.SetStateAsync(new TaskStateRecord { TaskId = members[1], TaskName = "add", State = TaskState.Success });
        }

        using (var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString()))
        {
            // group_progress as schema version 1 first created it.
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = """
                DROP TABLE group_progress;
                CREATE TABLE group_progress (group_id TEXT PRIMARY KEY, completed INTEGER NOT NULL, failed INTEGER NOT NULL, triggered INTEGER NOT NULL, expires_at INTEGER NOT NULL) WITHOUT ROWID;
                """;
            command.ExecuteNonQuery();
        }

        await using var backend = new SqliteResultBackend(TestOptions.Process(path));
        await backend.SetStateAsync(new TaskStateRecord { TaskId = members[2], TaskName = "add", State = TaskState.Success });
        var completion = await backend.CompleteGroupMemberAsync("group_old", members[2], succeeded: true);

        Assert.Equal(new GroupCompletion(3, 0, true, false), completion);
        Assert.Equal(ChordClaim.Won, await backend.ClaimChordAsync("group_old", members[2]));
        Assert.Equal(ChordClaim.Resumed, await backend.ClaimChordAsync("group_old", members[2]));
        Assert.Equal(ChordClaim.Lost, await backend.ClaimChordAsync("group_old", members[1]));
    }

    [Fact]
    public async Task Schema_NewerVersionOnDisk_IsRefusedWithAClearError()
    {
        var path = Path.Combine(_directory, "conveyor.db");
        using (var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Pooling = false }.ToString()))
        {
            connection.Open();
            using var command = connection.CreateCommand();
            command.CommandText = "PRAGMA user_version = 99;";
            command.ExecuteNonQuery();
        }

        await using var backend = new SqliteResultBackend(TestOptions.Process(path));
        var error = await Assert.ThrowsAsync<NotSupportedException>(async () => await backend.GetStateAsync("task_x"));
        Assert.Contains("schema version 99", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Options_AreValidatedInTheConstructor()
    {
        Assert.Throws<ArgumentException>(() => new SqliteBroker(new SqliteConveyorOptions()));
        Assert.Throws<ArgumentException>(() => new SqliteBroker(new SqliteConveyorOptions
        {
            DatabasePath = "x.db",
            VisibilityTimeout = TimeSpan.FromSeconds(1),
            HeartbeatInterval = TimeSpan.FromSeconds(2),
        }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new SqliteResultBackend(new SqliteConveyorOptions { DatabasePath = "x.db", ResultTtl = TimeSpan.Zero }));
        Assert.Equal(TimeSpan.FromSeconds(2), new SqliteConveyorOptions().EffectiveHeartbeatInterval);
        Assert.Equal(TimeSpan.FromSeconds(6), new SqliteConveyorOptions().VisibilityTimeout);
    }
}
