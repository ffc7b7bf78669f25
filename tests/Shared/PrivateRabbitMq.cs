using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Conveyor.Testing;

/// <summary>
/// A RabbitMQ node of the test's own (Debian's rabbitmq-server, as <c>scripts/test.sh</c> starts the shared one: on
/// loopback, its own epmd, cookie and data in a temp dir), so that it can be stopped whole (<c>rabbitmqctl stop</c>,
/// the Erlang VM exits) and started again on the same data without disturbing the other tests.
/// </summary>
internal sealed class PrivateRabbitMq : IAsyncDisposable
{
    private const string RabbitBin = "/usr/lib/rabbitmq/bin";
    private readonly string _directory;
    private readonly Dictionary<string, string> _environment;
    private readonly Process _epmd;
    private Process? _server;

    private PrivateRabbitMq(string directory, int port, Dictionary<string, string> environment, Process epmd)
    {
        _directory = directory;
        Port = port;
        _environment = environment;
        _epmd = epmd;
    }

    public int Port { get; }

    public string NodeName => _environment["RABBITMQ_NODENAME"];

    public string AmqpUrl => $"amqp://guest:guest@127.0.0.1:{Port}/";

    public static async Task<PrivateRabbitMq> StartAsync()
    {
        if (!File.Exists(Path.Combine(RabbitBin, "rabbitmq-server")))
        {
            throw new InvalidOperationException($"{RabbitBin}/rabbitmq-server is missing: install rabbitmq-server (bash scripts/test.sh installs it with apt-get).");
        }

        var directory = Directory.CreateTempSubdirectory("conveyor-rabbitmq-node-").FullName;
        foreach (var sub in new[] { "home", "mnesia", "log", "conf.d" })
        {
            Directory.CreateDirectory(Path.Combine(directory, sub));
        }

        var cookie = Path.Combine(directory, "home", ".erlang.cookie");
        await File.WriteAllTextAsync(cookie, Guid.NewGuid().ToString("N"));
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(cookie, UnixFileMode.UserRead);
        }
        await File.WriteAllTextAsync(Path.Combine(directory, "rabbitmq-env.conf"), string.Empty);
        await File.WriteAllTextAsync(Path.Combine(directory, "enabled_plugins"), "[].");
        await File.WriteAllTextAsync(Path.Combine(directory, "rabbitmq.conf"), "loopback_users.guest = true\ndisk_free_limit.absolute = 10MB\n");
        int[] ports = [FreePort(), FreePort(), FreePort()];
        var node = $"conveyor-private-{Environment.ProcessId}-{ports[0]}@localhost";
        var environment = new Dictionary<string, string>
        {
            ["HOME"] = Path.Combine(directory, "home"),
            ["LC_ALL"] = "C.UTF-8",
            ["ERL_EPMD_ADDRESS"] = "127.0.0.1",
            ["ERL_EPMD_PORT"] = ports[2].ToString(CultureInfo.InvariantCulture),
            ["RABBITMQ_NODENAME"] = node,
            ["RABBITMQ_NODE_IP_ADDRESS"] = "127.0.0.1",
            ["RABBITMQ_NODE_PORT"] = ports[0].ToString(CultureInfo.InvariantCulture),
            ["RABBITMQ_DIST_PORT"] = ports[1].ToString(CultureInfo.InvariantCulture),
            ["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"] = "-kernel inet_dist_use_interface {127,0,0,1}",
            ["RABBITMQ_CONF_ENV_FILE"] = Path.Combine(directory, "rabbitmq-env.conf"),
            ["RABBITMQ_CONFIG_FILE"] = Path.Combine(directory, "rabbitmq.conf"),
            ["RABBITMQ_CONFIG_FILES"] = Path.Combine(directory, "conf.d"),
            ["RABBITMQ_ADVANCED_CONFIG_FILE"] = Path.Combine(directory, "advanced.config"),
            ["RABBITMQ_ENABLED_PLUGINS_FILE"] = Path.Combine(directory, "enabled_plugins"),
            ["RABBITMQ_MNESIA_BASE"] = Path.Combine(directory, "mnesia"),
            ["RABBITMQ_LOG_BASE"] = Path.Combine(directory, "log"),
            ["RABBITMQ_LOGS"] = Path.Combine(directory, "log", "rabbit.log"),
            ["RABBITMQ_PID_FILE"] = Path.Combine(directory, "rabbit.pid"),
        };
        var epmd = Launch("epmd", ["-port", ports[2].ToString(CultureInfo.InvariantCulture), "-address", "127.0.0.1"], environment);
        var rabbit = new PrivateRabbitMq(directory, ports[0], environment, epmd);
        await rabbit.StartServerAsync();
        return rabbit;
    }

    /// <summary>A full stop: <c>rabbitmqctl stop</c> ends the Erlang VM (not only the app, as <c>stop_app</c>).</summary>
    public async Task StopAsync()
    {
        await CtlAsync("stop");
        if (_server is { } server)
        {
            await server.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
            server.Dispose();
            _server = null;
        }
    }

    /// <summary>Closes every client connection from the server's side (as a network cut or a node failover would).</summary>
    public Task CloseAllConnectionsAsync() => CtlAsync("close_all_connections", "test: connection loss");

    /// <summary>Starts the stopped node again on the same data (durable queues and persistent messages survive).</summary>
    public Task StartAgainAsync() => StartServerAsync();

    public async ValueTask DisposeAsync()
    {
        if (_server is { HasExited: false })
        {
            try
            {
                await CtlAsync("stop");
            }
            catch (InvalidOperationException)
            {
            }
        }

        foreach (var process in new[] { _server, _epmd })
        {
            if (process is { HasExited: false })
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync();
            }

            process?.Dispose();
        }

        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private async Task StartServerAsync()
    {
        _server = Launch(Path.Combine(RabbitBin, "rabbitmq-server"), [], _environment);
        var deadline = DateTime.UtcNow.AddSeconds(120);
        while (true)
        {
            if (_server.HasExited)
            {
                throw new InvalidOperationException($"rabbitmq-server exited during startup; see {_directory}/log");
            }

            try
            {
                await CtlAsync("await_startup", "--timeout", "30");
                return;
            }
            catch (InvalidOperationException) when (DateTime.UtcNow < deadline)
            {
                await Task.Delay(500);
            }
        }
    }

    private async Task CtlAsync(params string[] args)
    {
        using var ctl = Launch(Path.Combine(RabbitBin, "rabbitmqctl"), ["-n", NodeName, "-q", .. args], _environment);
        var output = ctl.StandardOutput.ReadToEndAsync();
        var error = ctl.StandardError.ReadToEndAsync();
        await ctl.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(90));
        if (ctl.ExitCode != 0)
        {
            throw new InvalidOperationException($"rabbitmqctl {string.Join(' ', args)} exited {ctl.ExitCode}: {await output} {await error}");
        }
    }

    private static Process Launch(string file, string[] args, Dictionary<string, string> environment)
    {
        var start = new ProcessStartInfo(file)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        foreach (var (name, value) in environment)
        {
            start.Environment[name] = value;
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException($"cannot start {file}");
        process.StandardInput.Close();
        if (!file.EndsWith("rabbitmqctl", StringComparison.Ordinal))
        {
            // Long-lived: drain their output so that they never block on a full pipe.
            process.OutputDataReceived += (_, _) => { };
            process.ErrorDataReceived += (_, _) => { };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
        }

        return process;
    }

    private static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }
}
