using Microsoft.Data.Sqlite;
using SQLitePCL;

namespace Conveyor.Sqlite.Internal;

/// <summary>
/// One prepared SQLite statement, kept for the connection's lifetime, bound and stepped through SQLitePCLRaw
/// directly. Microsoft.Data.Sqlite opens the connections and reports errors; the hot paths skip its command
/// objects, which cost about twice as much per execution (parameter lookup by name, reader objects, a copy of
/// every blob), and that cost is paid inside the write lock every process shares.
/// </summary>
internal sealed class Statement : IDisposable
{
    private readonly sqlite3 _db;
    private readonly sqlite3_stmt _statement;
    private readonly string[] _names;

    public Statement(sqlite3 db, string sql)
    {
        _db = db;
        var rc = raw.sqlite3_prepare_v3(db, sql, raw.SQLITE_PREPARE_PERSISTENT, out _statement);
        Check(rc);
        _names = new string[raw.sqlite3_bind_parameter_count(_statement)];
        for (var i = 0; i < _names.Length; i++)
        {
            _names[i] = raw.sqlite3_bind_parameter_name(_statement, i + 1).utf8_to_string();
        }
    }

    public Statement With(string name, long value)
    {
        Check(raw.sqlite3_bind_int64(_statement, Index(name), value));
        return this;
    }

    public Statement With(string name, string? value)
    {
        Check(value is null ? raw.sqlite3_bind_null(_statement, Index(name)) : raw.sqlite3_bind_text(_statement, Index(name), value));
        return this;
    }

    public Statement With(string name, byte[] value)
    {
        Check(raw.sqlite3_bind_blob(_statement, Index(name), value.AsSpan()));
        return this;
    }

    /// <summary>Runs the statement to its end.</summary>
    /// <returns>The number of rows it changed.</returns>
    public int ExecuteNonQuery()
    {
        try
        {
            int rc;
            while ((rc = raw.sqlite3_step(_statement)) == raw.SQLITE_ROW)
            {
            }

            if (rc != raw.SQLITE_DONE)
            {
                Check(rc);
            }

            return raw.sqlite3_changes(_db);
        }
        finally
        {
            raw.sqlite3_reset(_statement);
        }
    }

    /// <summary>Runs the statement and reads its rows; dispose the reader to end the statement.</summary>
    public Reader ExecuteReader() => new(this);

    /// <summary>Runs the statement and returns the first column of its first row as an integer.</summary>
    public long? ExecuteScalarInt64()
    {
        using var reader = ExecuteReader();
        return reader.Read() && !reader.IsDBNull(0) ? reader.GetInt64(0) : null;
    }

    public void Dispose() => _statement.Dispose();

    private int Index(string name)
    {
        for (var i = 0; i < _names.Length; i++)
        {
            if (string.Equals(_names[i], name, StringComparison.Ordinal))
            {
                return i + 1;
            }
        }

        throw new ArgumentException($"The statement has no parameter {name}.", nameof(name));
    }

    private void Check(int rc)
    {
        if (rc != raw.SQLITE_OK)
        {
            SqliteException.ThrowExceptionForRC(rc, _db);
        }
    }

    /// <summary>The rows of a running statement. Values read are valid until the next <see cref="Read"/>.</summary>
    public readonly struct Reader : IDisposable
    {
        private readonly Statement _owner;

        public Reader(Statement owner) => _owner = owner;

        public bool Read()
        {
            var rc = raw.sqlite3_step(_owner._statement);
            if (rc == raw.SQLITE_ROW)
            {
                return true;
            }

            if (rc != raw.SQLITE_DONE)
            {
                _owner.Check(rc);
            }

            return false;
        }

        public bool IsDBNull(int column) => raw.sqlite3_column_type(_owner._statement, column) == raw.SQLITE_NULL;

        public long GetInt64(int column) => raw.sqlite3_column_int64(_owner._statement, column);

        public int GetInt32(int column) => raw.sqlite3_column_int(_owner._statement, column);

        public string GetString(int column) => raw.sqlite3_column_text(_owner._statement, column).utf8_to_string();

        /// <summary>The blob, in SQLite's memory: valid until the next step.</summary>
        public ReadOnlySpan<byte> GetBlob(int column) => raw.sqlite3_column_blob(_owner._statement, column);

        public byte[] GetBytes(int column) => GetBlob(column).ToArray();

        public void Dispose() => raw.sqlite3_reset(_owner._statement);
    }
}
