using Conveyor.Conformance;
using Conveyor.Sqlite;

namespace Conveyor.Redis.Tests;

/// <summary>
/// The SQLite broker (a temporary database file) with the Redis result backend: a mix the CLI allows
/// (<c>--broker sqlite://… --backend redis://…</c>). Only the worker and backend suites run on it (the broker suite
/// is the SQLite provider's own); "crashing" a SQLite consumer here is disposing it.
/// </summary>
public sealed class SqliteBrokerRedisBackendFactory : RedisProviderFactory
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "conveyor-redis-mix-tests", Guid.NewGuid().ToString("N"));

    public SqliteBrokerRedisBackendFactory()
    {
        Directory.CreateDirectory(_directory);
        // A short lease, as in the SQLite provider's own suite: a message whose hand-back lost a race with its
        // consumer's disposal (seen once in a few hundred runs) comes back in a second instead of 30.
        SqliteOptions = new SqliteConveyorOptions
        {
            DatabasePath = Path.Combine(_directory, "conveyor.db"),
            VisibilityTimeout = TimeSpan.FromSeconds(1),
            HeartbeatInterval = TimeSpan.FromMilliseconds(250),
        };
    }

    public SqliteConveyorOptions SqliteOptions { get; }

    public override string Name => "sqlite broker + redis backend";

    public override ValueTask<IBroker> CreateBrokerAsync(CancellationToken cancellationToken = default) => ValueTask.FromResult<IBroker>(new SqliteBroker(SqliteOptions));

    public override ValueTask SimulateCrashAsync(IMessageConsumer consumer) => consumer.DisposeAsync();

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

public sealed class SqliteBrokerRedisBackendWorkerConformanceTests(SqliteBrokerRedisBackendFactory factory) : WorkerConformanceTests<SqliteBrokerRedisBackendFactory>(factory);

public sealed class SqliteBrokerRedisBackendResultBackendConformanceTests(SqliteBrokerRedisBackendFactory factory) : ResultBackendConformanceTests<SqliteBrokerRedisBackendFactory>(factory);
