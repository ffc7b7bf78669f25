using Conveyor.Cli.Commands;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Conveyor.Cli.Tests;

/// <summary>
/// Where the command's connection settings come from, in this process: the CLI's host configuration (flags,
/// <c>CONVEYOR_*</c>, <c>Conveyor__*</c>, a configuration file), resolved by Conveyor.Hosting.
/// </summary>
[Collection(ProcessEnvironment.Collection)]
public sealed class ConnectionsTests : IDisposable
{
    private static readonly string[] Variables =
    [
        "CONVEYOR_BROKER", "CONVEYOR_RESULT_BACKEND", "CONVEYOR_DEFAULT_QUEUE",
        "Conveyor__Broker", "Conveyor__ResultBackend", "Conveyor__DefaultQueue", "Conveyor__FailFast",
    ];

    private readonly string _directory = Directory.CreateTempSubdirectory("conveyor-connections-").FullName;
    private readonly string _emptyConfiguration;

    public ConnectionsTests()
    {
        // An explicit, empty configuration file: whatever appsettings.json sits in the test's folder stays out.
        _emptyConfiguration = Path.Combine(_directory, "empty.json");
        File.WriteAllText(_emptyConfiguration, "{}");
    }

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void CreateBuilder_NothingSet_DefaultsToTheEmbeddedSqliteFileAndFailsFast()
    {
        using var environment = ProcessEnvironment.Without(Variables);

        var options = Options(new ConnectionSettings { Config = _emptyConfiguration });

        Assert.Equal("sqlite://conveyor.db", options.Broker);
        Assert.Equal("sqlite://conveyor.db", options.ResultBackend);
        Assert.Equal("machinery_tasks", options.DefaultQueue);
        Assert.True(options.FailFast);
    }

    [Fact]
    public void CreateBuilder_CliVariablesSet_FillInWhatTheFlagsLeaveOut()
    {
        using var environment = ProcessEnvironment.Without(Variables);
        Environment.SetEnvironmentVariable("CONVEYOR_BROKER", "redis://broker.example:6379");
        Environment.SetEnvironmentVariable("CONVEYOR_RESULT_BACKEND", "sqlite://results.db");
        Environment.SetEnvironmentVariable("CONVEYOR_DEFAULT_QUEUE", "from_env");

        var fromVariables = Options(new ConnectionSettings { Config = _emptyConfiguration });
        var withFlags = Options(new ConnectionSettings { Config = _emptyConfiguration, Broker = "memory://", Queue = "q1" });

        Assert.Equal(("redis://broker.example:6379", "sqlite://results.db", "from_env"), (fromVariables.Broker, fromVariables.ResultBackend, fromVariables.DefaultQueue));
        Assert.Equal(("memory://", "sqlite://results.db", "q1"), (withFlags.Broker, withFlags.ResultBackend, withFlags.DefaultQueue));
    }

    [Fact]
    public void CreateBuilder_HostVariableAndCliVariable_TheHostVariableWinsOverTheFile()
    {
        using var environment = ProcessEnvironment.Without(Variables);
        var file = Path.Combine(_directory, "settings.json");
        File.WriteAllText(file, """{ "Conveyor": { "Broker": "sqlite://from-file.db", "DefaultQueue": "from_file", "FailFast": false } }""");
        Environment.SetEnvironmentVariable("CONVEYOR_BROKER", "sqlite://from-cli-variable.db");
        Environment.SetEnvironmentVariable("Conveyor__Broker", "sqlite://from-host-variable.db");

        var options = Options(new ConnectionSettings { Config = file });

        Assert.Equal("sqlite://from-host-variable.db", options.Broker);
        Assert.Equal(string.Empty, options.ResultBackend); // the broker's URL: SQLite holds results
        Assert.Equal("from_file", options.DefaultQueue);
        Assert.False(options.FailFast);
    }

    [Theory]
    [InlineData("nonsense", "Conveyor:Broker: 'nonsense' is not a URL; expected one of sqlite://")]
    [InlineData("ftp://x", "Conveyor:Broker: no provider for 'ftp://x'; added: sqlite://")]
    [InlineData("sqlite://", "names no database file")]
    [InlineData("sqlite:///no/such/folder/x.db", "the folder /no/such/folder does not exist")]
    [InlineData("amqp://guest:hunter2@[::1", "Conveyor:Broker: ")]
    public async Task StartAsync_BadUrl_FailsWithAOneLineMessageSayingWhatToFix(string url, string expected)
    {
        using var environment = ProcessEnvironment.Without(Variables);

        var error = await Assert.ThrowsAsync<CliException>(() =>
            CliHost.StartAsync(CliHost.CreateBuilder(new ConnectionSettings { Config = _emptyConfiguration, Broker = url, Backend = "memory://" }, Microsoft.Extensions.Logging.LogLevel.None), CancellationToken.None));

        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.Message);
        Assert.DoesNotContain("hunter2", error.Message, StringComparison.Ordinal);
    }

    private static ConveyorOptions Options(ConnectionSettings settings)
    {
        using var host = CliHost.CreateBuilder(settings, Microsoft.Extensions.Logging.LogLevel.None).Build();
        return host.Services.GetRequiredService<IOptions<ConveyorOptions>>().Value;
    }
}
