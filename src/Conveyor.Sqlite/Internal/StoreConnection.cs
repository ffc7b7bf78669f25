using System.Diagnostics;
using System.Globalization;
using Microsoft.Data.Sqlite;
using SQLitePCL;

namespace Conveyor.Sqlite.Internal;

/// <summary>
/// One open connection with its prepared statements: each SQL text is prepared once per connection, so the hot
/// paths never parse SQL again. Not thread-safe: one user at a time (the writer thread, the poller, the
/// checkpointer, or a reader that rented it).
/// </summary>
internal sealed class StoreConnection : IDisposable
{
    private readonly Dictionary<string, Statement> _statements = new(StringComparer.Ordinal);
    private readonly TimeSpan _busyTimeout;
    private sqlite3_stmt? _beginImmediate;

    private StoreConnection(SqliteConnection connection, TimeSpan busyTimeout)
    {
        Connection = connection;
        _busyTimeout = busyTimeout;
    }

    public SqliteConnection Connection { get; }

    /// <summary>Opens a connection with the per-connection settings every Conveyor connection uses.</summary>
    /// <param name="path">The database file.</param>
    /// <param name="busyTimeout">How long SQLite waits for a lock held by another connection.</param>
    /// <returns>The open connection.</returns>
    public static StoreConnection Open(string path, TimeSpan busyTimeout)
    {
        var builder = new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            // Conveyor keeps its own connections open for its lifetime; Microsoft.Data.Sqlite's pool would only
            // hide when they are really closed.
            Pooling = false,
            // Microsoft.Data.Sqlite retries SQLITE_BUSY itself, sleeping 150 ms between tries, until the command
            // timeout: keep that fallback no longer than the busy timeout SQLite already waited.
            DefaultTimeout = Math.Max(1, (int)Math.Ceiling(busyTimeout.TotalSeconds)),
        };
        var connection = new SqliteConnection(builder.ToString());
        try
        {
            connection.Open();
            var store = new StoreConnection(connection, busyTimeout);
            store.Execute(string.Create(CultureInfo.InvariantCulture, $"PRAGMA busy_timeout = {(long)busyTimeout.TotalMilliseconds};"));
            // WAL: readers never block the writer nor the writer readers. NORMAL: a commit does not fsync (the WAL
            // is synced at checkpoints), so a commit survives a crash of the process but not of the machine.
            store.Execute("PRAGMA synchronous = NORMAL;");
            store.Execute("PRAGMA journal_size_limit = 67108864;");
            // Checkpoints run on the store's checkpointer thread; a commit only checkpoints if that falls far
            // behind (16384 pages of 4 KiB).
            store.Execute("PRAGMA wal_autocheckpoint = 16384;");
            return store;
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    /// <summary>Returns the prepared statement for a SQL text (one statement, with <c>$name</c> parameters).</summary>
    /// <param name="sql">The SQL text (a constant).</param>
    /// <returns>The statement; bind its parameters and run it.</returns>
    public Statement Command(string sql)
    {
        if (!_statements.TryGetValue(sql, out var statement))
        {
            statement = new Statement(Connection.Handle!, sql);
            _statements[sql] = statement;
        }

        return statement;
    }

    /// <summary>Runs a statement without parameters.</summary>
    /// <param name="sql">The SQL.</param>
    /// <returns>The number of rows changed.</returns>
    public int Execute(string sql) => Command(sql).ExecuteNonQuery();

    /// <summary>Runs a script of several statements (the schema) through Microsoft.Data.Sqlite.</summary>
    /// <param name="sql">The SQL.</param>
    public void ExecuteScript(string sql)
    {
        using var command = Connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    /// <summary>Runs a query and returns its first column of the first row as text.</summary>
    /// <param name="sql">The SQL.</param>
    /// <returns>The value, or <see langword="null"/>.</returns>
    public string? ScalarText(string sql)
    {
        using var reader = Command(sql).ExecuteReader();
        return reader.Read() && !reader.IsDBNull(0) ? reader.GetString(0) : null;
    }

    /// <summary>Runs a query and returns its first column of the first row as an integer.</summary>
    /// <param name="sql">The SQL.</param>
    /// <returns>The value, or <see langword="null"/>.</returns>
    public long? ScalarInt64(string sql) => Command(sql).ExecuteScalarInt64();

    /// <summary>
    /// Starts a write transaction. BEGIN IMMEDIATE takes the write lock at once, so a transaction never has to
    /// upgrade a read snapshot to a write, which in WAL mode fails with SQLITE_BUSY without waiting when another
    /// connection committed in between. Waits for another process's write transaction by retrying every
    /// millisecond up to the busy timeout: SQLite's own busy handler backs off to 100 ms between tries (measured:
    /// a lock released after 300 ms was taken 30 ms later), which would make every contended write slow.
    /// </summary>
    public void BeginImmediate()
    {
        if (_beginImmediate is null)
        {
            Check(raw.sqlite3_prepare_v2(Connection.Handle, "BEGIN IMMEDIATE", out var statement));
            _beginImmediate = statement;
        }

        long started = 0;
        for (var attempt = 0; ; attempt++)
        {
            var rc = raw.sqlite3_step(_beginImmediate);
            raw.sqlite3_reset(_beginImmediate);
            if (rc == raw.SQLITE_DONE)
            {
                return;
            }

            if (rc != raw.SQLITE_BUSY && rc != raw.SQLITE_LOCKED)
            {
                Check(rc);
            }

            if (attempt == 0)
            {
                started = Stopwatch.GetTimestamp();
            }
            else if (Stopwatch.GetElapsedTime(started) >= _busyTimeout)
            {
                Check(rc);
            }

            // A few yields catch a transaction that is about to end; then sleep a millisecond at a time.
            Thread.Sleep(attempt < 4 ? 0 : 1);
        }
    }

    /// <summary>Commits the write transaction. In WAL mode a commit holding the write lock does not meet
    /// SQLITE_BUSY in practice; should it, it is retried briefly rather than losing the batch.</summary>
    public void Commit()
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                Execute("COMMIT;");
                return;
            }
            catch (SqliteException ex) when (ex.SqliteErrorCode == raw.SQLITE_BUSY && attempt < 100)
            {
                Thread.Sleep(1);
            }
        }
    }

    /// <summary>Rolls back the transaction, if one is open.</summary>
    public void RollbackIfOpen()
    {
        if (raw.sqlite3_get_autocommit(Connection.Handle) == 0)
        {
            Execute("ROLLBACK;");
        }
    }

    public void Dispose()
    {
        foreach (var statement in _statements.Values)
        {
            statement.Dispose();
        }

        _statements.Clear();
        _beginImmediate?.Dispose();
        _beginImmediate = null;
        Connection.Dispose();
    }

    private void Check(int rc)
    {
        if (rc != raw.SQLITE_OK && rc != raw.SQLITE_DONE && rc != raw.SQLITE_ROW)
        {
            SqliteException.ThrowExceptionForRC(rc, Connection.Handle);
        }
    }
}
