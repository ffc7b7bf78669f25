namespace Conveyor.Cli.Tests;

[Collection(ProcessEnvironment.Collection)]
public sealed class ConnectionsTests
{
    [Fact]
    public void Resolve_NothingSet_DefaultsToTheEmbeddedSqliteFile()
    {
        using var environment = ProcessEnvironment.Without(Connections.BrokerVariable, Connections.BackendVariable, Connections.QueueVariable);

        Assert.Equal("sqlite://conveyor.db", Connections.ResolveBroker(null));
        Assert.Equal("sqlite://conveyor.db", Connections.ResolveBackend(null));
        Assert.Equal("machinery_tasks", Connections.ResolveQueue(null));
        Assert.Equal("memory://", Connections.ResolveBroker("memory://"));
        Assert.Equal("q1", Connections.ResolveQueue("q1"));
    }

    [Fact]
    public void Resolve_VariablesSet_FillInWhatTheCommandLineLeavesOut()
    {
        using var environment = ProcessEnvironment.Without(Connections.BrokerVariable, Connections.BackendVariable, Connections.QueueVariable);
        Environment.SetEnvironmentVariable(Connections.BrokerVariable, "redis://broker.example:6379");
        Environment.SetEnvironmentVariable(Connections.BackendVariable, "sqlite://results.db");
        Environment.SetEnvironmentVariable(Connections.QueueVariable, "from_env");

        Assert.Equal("redis://broker.example:6379", Connections.ResolveBroker(null));
        Assert.Equal("sqlite://results.db", Connections.ResolveBackend(" "));
        Assert.Equal("from_env", Connections.ResolveQueue(null));
        Assert.Equal("memory://", Connections.ResolveBroker("memory://"));
        Assert.Equal("q1", Connections.ResolveQueue("q1"));
    }

    [Theory]
    [InlineData("nonsense", "is not a connection URL")]
    [InlineData("ftp://x", "is not a supported broker URL")]
    [InlineData("sqlite://", "names no database file")]
    [InlineData("sqlite:///no/such/folder/x.db", "the folder /no/such/folder does not exist")]
    public async Task Open_BadUrl_FailsWithAOneLineMessageSayingWhatToFix(string url, string expected)
    {
        var error = await Assert.ThrowsAsync<CliException>(async () =>
            await Connections.OpenAsync(url, "memory://", Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance, CancellationToken.None));
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.Message);
    }
}
