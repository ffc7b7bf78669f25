using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Conveyor.Redis.Tests;

/// <summary>A redis-server of the test's own (append-only, on a free loopback port), so that it can be restarted safely.</summary>
internal sealed class PrivateRedis : IAsyncDisposable
{
    private readonly string _directory;
    private readonly int _port;
    private Process _process;

    private PrivateRedis(string directory, int port, Process process)
    {
        _directory = directory;
        _port = port;
        _process = process;
    }

    public string Address => $"127.0.0.1:{_port}";

    public static async Task<PrivateRedis> StartAsync()
    {
        var directory = Path.Combine(Path.GetTempPath(), "conveyor-redis-restart", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(directory);
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        var redis = new PrivateRedis(directory, port, Launch(directory, port));
        await redis.WaitUntilUpAsync();
        return redis;
    }

    public async Task RestartAsync(TimeSpan downtime)
    {
        // SHUTDOWN flushes the append-only file, as a service manager's stop does.
        using (var shutdown = Process.Start("redis-cli", ["-h", "127.0.0.1", "-p", _port.ToString(System.Globalization.CultureInfo.InvariantCulture), "shutdown"]))
        {
            await shutdown.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        }

        await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        _process.Dispose();
        await Task.Delay(downtime);
        _process = Launch(_directory, _port);
        await WaitUntilUpAsync();
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private static Process Launch(string directory, int port)
    {
        var start = new ProcessStartInfo("redis-server")
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var arg in new[] { "--bind", "127.0.0.1", "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--dir", directory, "--save", string.Empty, "--appendonly", "yes", "--protected-mode", "yes" })
        {
            start.ArgumentList.Add(arg);
        }

        try
        {
            var process = Process.Start(start) ?? throw new InvalidOperationException("redis-server did not start");
            process.OutputDataReceived += (_, _) => { };
            process.ErrorDataReceived += (_, _) => { };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            return process;
        }
        catch (System.ComponentModel.Win32Exception ex)
        {
            throw new InvalidOperationException("This test starts a redis-server of its own and found none on PATH: run the tests through `bash scripts/test.sh`, which installs Debian's redis-server.", ex);
        }
    }

    private async Task WaitUntilUpAsync()
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            try
            {
                using var probe = new TcpClient();
                await probe.ConnectAsync(IPAddress.Loopback, _port);
                return;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline && !_process.HasExited)
            {
                await Task.Delay(50);
            }
        }
    }
}
