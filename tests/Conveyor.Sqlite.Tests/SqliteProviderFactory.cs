using Conveyor.Conformance;
using Microsoft.Extensions.Time.Testing;

namespace Conveyor.Sqlite.Tests;

/// <summary>
/// The SQLite provider on a temporary database file shared by every broker and backend of one test class. A short
/// visibility timeout keeps the redelivery test quick; "crashing" a consumer stops it without handing anything
/// back, so its lease really has to expire.
/// </summary>
public sealed class SqliteProviderFactory : IConveyorProviderFactory
{
    private readonly string _directory = TempDatabase.NewDirectory();

    public SqliteProviderFactory() => Options = new SqliteConveyorOptions
    {
        DatabasePath = Path.Combine(_directory, "conveyor.db"),
        VisibilityTimeout = TimeSpan.FromSeconds(1),
        HeartbeatInterval = TimeSpan.FromMilliseconds(250),
    };

    public SqliteConveyorOptions Options { get; }

    public string Name => "sqlite";

    public TimeSpan RedeliveryTimeout => Options.VisibilityTimeout;

    public ValueTask<IBroker> CreateBrokerAsync(CancellationToken cancellationToken = default) => ValueTask.FromResult<IBroker>(new SqliteBroker(Options));

    public ValueTask<IResultBackend> CreateBackendAsync(CancellationToken cancellationToken = default) => ValueTask.FromResult<IResultBackend>(new SqliteResultBackend(Options));

    // A store of its own on the clock (the process's store is per file and clock), so its poller and waits run on it.
    public ValueTask<IResultBackend?> CreateBackendAsync(TimeProvider clock, CancellationToken cancellationToken = default) =>
        ValueTask.FromResult<IResultBackend?>(new SqliteResultBackend(Options, clock));

    public ValueTask SimulateCrashAsync(IMessageConsumer consumer) => SqliteBroker.SimulateCrashAsync(consumer);

    public ValueTask<IManagementStore?> CreateManagementStoreAsync(IBroker broker, IResultBackend backend) =>
        ValueTask.FromResult<IManagementStore?>(new SqliteManagementStore(Options));

    public ValueTask DisposeAsync()
    {
        TempDatabase.Delete(_directory);
        return ValueTask.CompletedTask;
    }
}

public sealed class SqliteBrokerConformanceTests(SqliteProviderFactory factory) : BrokerConformanceTests<SqliteProviderFactory>(factory);

public sealed class SqliteResultBackendConformanceTests(SqliteProviderFactory factory) : ResultBackendConformanceTests<SqliteProviderFactory>(factory);

public sealed class SqliteChordProtocolConformanceTests(SqliteProviderFactory factory) : ChordProtocolConformanceTests<SqliteProviderFactory>(factory);

public sealed class SqliteManagementConformanceTests(SqliteProviderFactory factory) : ManagementConformanceTests<SqliteProviderFactory>(factory);

public sealed class SqliteWorkerConformanceTests(SqliteProviderFactory factory) : WorkerConformanceTests<SqliteProviderFactory>(factory);

public sealed class SqliteSchedulerConformanceTests(SqliteProviderFactory factory) : SchedulerConformanceTests<SqliteProviderFactory>(factory)
{
    protected override ValueTask<IDistributedLock> CreateLockAsync() => ValueTask.FromResult<IDistributedLock>(new SqliteDistributedLock(Factory.Options));
}

/// <summary>Each lock store opens the file as a process of its own (its own connections and writer), on the test's clock.</summary>
public sealed class SqliteDistributedLockConformanceTests(SqliteProviderFactory factory) : DistributedLockConformanceTests<SqliteProviderFactory>(factory)
{
    protected override ValueTask<IDistributedLock> CreateLockAsync(FakeTimeProvider clock) =>
        ValueTask.FromResult<IDistributedLock>(new SqliteDistributedLock(TestOptions.Process(Factory.Options.DatabasePath), clock));
}
