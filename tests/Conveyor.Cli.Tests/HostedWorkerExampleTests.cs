using System.Diagnostics;
using System.Text;

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
        using var example = ExampleProcess.Start(new() { ["Conveyor__Broker"] = "kafka://localhost:9092" });
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
        using var example = ExampleProcess.Start(new() { ["Conveyor__Broker"] = redis, ["Conveyor__DefaultQueue"] = queue });
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

    /// <summary>The example's built assembly, run with <c>dotnet exec</c> and extra environment variables.</summary>
    private sealed class ExampleProcess : IDisposable
    {
        private readonly Process _process;
        private readonly StringBuilder _output = new();
        private readonly StringBuilder _error = new();

        private ExampleProcess(Process process) => _process = process;

        public string Output
        {
            get
            {
                lock (_output)
                {
                    return _output.ToString();
                }
            }
        }

        public string Error
        {
            get
            {
                lock (_error)
                {
                    return _error.ToString();
                }
            }
        }

        public static ExampleProcess Start(Dictionary<string, string> environment)
        {
            var assembly = Path.Combine(RepositoryRoot(), "examples", "HostedWorker", "bin", Configuration, "net10.0", "HostedWorker.dll");
            Assert.True(File.Exists(assembly), $"examples/HostedWorker is not built: {assembly}");
            var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            start.ArgumentList.Add("exec");
            start.ArgumentList.Add(assembly);
            foreach (var (name, value) in environment)
            {
                start.Environment[name] = value;
            }

            var process = new Process { StartInfo = start };
            var example = new ExampleProcess(process);
            process.OutputDataReceived += (_, e) => Append(example._output, e.Data);
            process.ErrorDataReceived += (_, e) => Append(example._error, e.Data);
            process.Start();
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            return example;
        }

        public async Task<int> WaitForExitAsync(TimeSpan timeout)
        {
            using var cts = new CancellationTokenSource(timeout);
            try
            {
                await _process.WaitForExitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                _process.Kill(entireProcessTree: true);
                Assert.Fail($"HostedWorker did not exit within {timeout}.\nstdout:\n{Output}\nstderr:\n{Error}");
            }

            _process.WaitForExit();
            return _process.ExitCode;
        }

        public async Task WaitForOutputAsync(string text, TimeSpan timeout)
        {
            var stopwatch = Stopwatch.StartNew();
            while (!Output.Contains(text, StringComparison.Ordinal))
            {
                Assert.False(_process.HasExited, $"HostedWorker exited before printing '{text}'.\nstdout:\n{Output}\nstderr:\n{Error}");
                Assert.True(stopwatch.Elapsed < timeout, $"'{text}' was not printed within {timeout}.\nstdout:\n{Output}\nstderr:\n{Error}");
                await Task.Delay(50);
            }
        }

        public void Signal(string signal)
        {
            using var kill = Process.Start("kill", [$"-{signal}", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
            kill?.WaitForExit();
        }

        public void Dispose()
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit();
            }

            _process.Dispose();
        }

#if DEBUG
        private const string Configuration = "Debug";
#else
        private const string Configuration = "Release";
#endif

        private static void Append(StringBuilder buffer, string? line)
        {
            if (line is null)
            {
                return;
            }

            lock (buffer)
            {
                buffer.AppendLine(line);
            }
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
    }
}
