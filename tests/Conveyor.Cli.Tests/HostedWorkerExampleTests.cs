namespace Conveyor.Cli.Tests;

/// <summary>
/// examples/HostedWorker as a user runs it: a generic host configured from its appsettings.json and the
/// environment, fed by <c>conveyor send</c>.
/// </summary>
public sealed class HostedWorkerExampleTests
{
    [Fact]
    public async Task HostedWorker_BadBrokerInEnvironment_ExitsWithOneLineNamingTheSetting()
    {
        using var example = StartExample(new() { ["Conveyor__Broker"] = "kafka://localhost:9092" });
        var exitCode = await example.WaitForExitAsync(TimeSpan.FromSeconds(60));

        var lines = example.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Equal(2, exitCode);
        Assert.Equal(
            "HostedWorker: Conveyor:Broker: no provider for 'kafka://localhost:9092'; added: redis://, rediss://, redis+sentinel://, sqlite://, amqp://, amqps:// (add the provider's Use…() method for another scheme)",
            Assert.Single(lines));
    }

    [Fact]
    public async Task HostedWorker_OnRedis_RunsTasksSentWithConveyorSend()
    {
        var redis = Environment.GetEnvironmentVariable("CONVEYOR_TEST_REDIS") is { Length: > 0 } address
            ? "redis://" + address
            : throw new InvalidOperationException("CONVEYOR_TEST_REDIS is not set: this test needs a Redis server. Run it through `bash scripts/test.sh`.");
        var queue = $"hosted-example-{Guid.NewGuid():N}";
        using var example = StartExample(new() { ["Conveyor__Broker"] = redis, ["Conveyor__DefaultQueue"] = queue });
        await example.WaitForOutputAsync("Worker consuming", TimeSpan.FromSeconds(60));

        var folder = Directory.CreateTempSubdirectory("conveyor-hosted-").FullName;
        var add = await CliProcess.RunAsync(folder, TimeSpan.FromSeconds(60), "send", "add", "int64:2", "int64:3", "--broker", redis, "--backend", redis, "-q", queue, "--wait", "--timeout", "30");
        var email = await CliProcess.RunAsync(folder, TimeSpan.FromSeconds(60), "send", "send_welcome_email", "string:ada@example.com", "--broker", redis, "--backend", redis, "-q", queue, "--wait", "--timeout", "30");
        example.Signal("TERM");
        var exitCode = await example.WaitForExitAsync(TimeSpan.FromSeconds(30));

        Assert.True(add.ExitCode == 0, add.Output + add.Error);
        Assert.Contains("SUCCESS", add.Output, StringComparison.Ordinal);
        Assert.Contains("int64: 5", add.Output, StringComparison.Ordinal);
        Assert.Contains("sent 'Welcome to Conveyor' to ada@example.com", email.Output, StringComparison.Ordinal);
        Assert.Contains("conveyor-broker: Healthy", example.Output, StringComparison.Ordinal);
        Assert.Equal(0, exitCode);
    }

    private static CliProcess StartExample(Dictionary<string, string> environment)
    {
        var assembly = Path.Combine(RepositoryRoot(), "examples", "HostedWorker", "bin", Configuration, "net10.0", "HostedWorker.dll");
        Assert.True(File.Exists(assembly), $"examples/HostedWorker is not built: {assembly}");
        return CliProcess.StartAssembly(assembly, Directory.CreateTempSubdirectory("conveyor-hosted-").FullName, environment);
    }

    private static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Conveyor.slnx")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException($"no Conveyor.slnx above {AppContext.BaseDirectory}");
    }

#if DEBUG
    private const string Configuration = "Debug";
#else
    private const string Configuration = "Release";
#endif
}
