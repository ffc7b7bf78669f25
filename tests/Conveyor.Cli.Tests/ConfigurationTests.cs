namespace Conveyor.Cli.Tests;

/// <summary>
/// One configuration for the command and for hosts: a flag, <c>CONVEYOR_BROKER</c>, <c>Conveyor__Broker</c> and
/// <c>Conveyor:Broker</c> in appsettings.json mean the same; failures are one line without secrets.
/// </summary>
public sealed class ConfigurationTests : IDisposable
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(60);
    private readonly string _directory = Directory.CreateTempSubdirectory("conveyor-config-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task Queues_BrokerFromEachSource_GiveTheSameOutput()
    {
        // A key prefix of its own: the queue list holds only this test's queue, whatever else runs on the server.
        var url = $"{TestServers.RedisUrl}?key_prefix=cli-sources-{Guid.NewGuid():N}:";
        var sent = await CliProcess.RunAsync(_directory, Generous, "send", "add", "int64:1", "int64:2", "--broker", url, "-q", "sources");
        Assert.True(sent.ExitCode == 0, sent.Output + sent.Error);
        var withFile = Directory.CreateDirectory(Path.Combine(_directory, "with-appsettings")).FullName;
        await File.WriteAllTextAsync(Path.Combine(withFile, "appsettings.json"), $$"""{ "Conveyor": { "Broker": "{{url}}" } }""");

        var hostVariable = await CliProcess.RunAsync(_directory, new Dictionary<string, string> { ["Conveyor__Broker"] = url }, Generous, "queues");
        var cliVariable = await CliProcess.RunAsync(_directory, new Dictionary<string, string> { ["CONVEYOR_BROKER"] = url }, Generous, "queues");
        var appSettings = await CliProcess.RunAsync(withFile, Generous, "queues");
        var flag = await CliProcess.RunAsync(_directory, Generous, "queues", "--broker", url);
        var json = await CliProcess.RunAsync(withFile, Generous, "queues", "--json");

        Assert.True(hostVariable.ExitCode == 0, hostVariable.Output + hostVariable.Error);
        Assert.Contains("sources", hostVariable.Output, StringComparison.Ordinal);
        Assert.Equal(hostVariable, cliVariable);
        Assert.Equal(hostVariable, appSettings);
        Assert.Equal(hostVariable, flag);
        Assert.Equal("""[{"queue":"sources","pending":1,"delayed":0,"in_flight":0,"dead_lettered":0}]""", json.Output.Trim());
    }

    [Fact]
    public async Task Queues_FlagOverVariableOverAppSettings_TheHighestSourceWins()
    {
        await File.WriteAllTextAsync(Path.Combine(_directory, "appsettings.json"), """{ "Conveyor": { "Broker": "kafka://from-appsettings" } }""");

        var file = await CliProcess.RunAsync(_directory, Generous, "queues");
        var variable = await CliProcess.RunAsync(_directory, new Dictionary<string, string> { ["CONVEYOR_BROKER"] = "kafka://from-cli-variable" }, Generous, "queues");
        var both = await CliProcess.RunAsync(_directory, new Dictionary<string, string> { ["CONVEYOR_BROKER"] = "kafka://from-cli-variable", ["Conveyor__Broker"] = "kafka://from-host-variable" }, Generous, "queues");
        var flag = await CliProcess.RunAsync(_directory, new Dictionary<string, string> { ["Conveyor__Broker"] = "kafka://from-host-variable" }, Generous, "queues", "--broker", "kafka://from-flag");

        Assert.Contains("'kafka://from-appsettings'", file.Error, StringComparison.Ordinal);
        Assert.Contains("'kafka://from-cli-variable'", variable.Error, StringComparison.Ordinal);
        Assert.Contains("'kafka://from-host-variable'", both.Error, StringComparison.Ordinal);
        Assert.Contains("'kafka://from-flag'", flag.Error, StringComparison.Ordinal);
        Assert.All(new[] { file, variable, both, flag }, run => Assert.Equal(2, run.ExitCode));
    }

    [Fact]
    public async Task Worker_RabbitMqNotListening_ExitsTwoWithOneLineWithoutThePassword()
    {
        var (exitCode, output, error) = await CliProcess.RunAsync(_directory, Generous, "worker", "--broker", "amqp://guest:hunter2@127.0.0.1:1/", "--backend", "sqlite://conveyor.db");

        Assert.Equal(2, exitCode);
        var line = Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        Assert.StartsWith("conveyor: Conveyor:Broker: amqp://guest:***@127.0.0.1:1/: cannot connect to RabbitMQ", line, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2", output + error, StringComparison.Ordinal);
    }
}

/// <summary>
/// The fail-fast bound of the acceptance (5 s, process start included) is the command's, not a loaded machine's: this
/// runs alone, after the tests that run in parallel.
/// </summary>
[Collection(FailFastCollection.Name)]
public sealed class FailFastTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("conveyor-failfast-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task Send_RedisNotListening_ExitsTwoAtOnceWithOneLineWithoutThePassword()
    {
        // Port 1 on loopback: nothing listens. The acceptance bound is 5 s, process start included.
        var (exitCode, output, error) = await CliProcess.RunAsync(_directory, TimeSpan.FromSeconds(5), "send", "add", "int64:1", "int64:2", "--broker", "redis://user:secret@127.0.0.1:1");

        Assert.Equal(2, exitCode);
        var line = Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        Assert.StartsWith("conveyor: Conveyor:Broker: redis://user:***@127.0.0.1:1: no Redis answers at 127.0.0.1:1", line, StringComparison.Ordinal);
        Assert.DoesNotContain("secret", output + error, StringComparison.Ordinal);
        Assert.Equal(string.Empty, output.Trim());
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class FailFastCollection
{
    public const string Name = "fail fast, alone";
}
