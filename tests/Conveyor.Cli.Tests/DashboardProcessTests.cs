using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace Conveyor.Cli.Tests;

/// <summary><c>conveyor dashboard</c> as a real process on SQLite: it binds to loopback and serves the page and the API.</summary>
public sealed partial class DashboardProcessTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("conveyor-dashboard-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task Dashboard_OnSqlite_ServesThePageAndThePendingTasksOnLoopback()
    {
        var url = "sqlite://" + Path.Combine(_directory, "conveyor.db");
        var sent = await CliProcess.RunAsync(_directory, TimeSpan.FromSeconds(60), "send", "--broker", url, "add", "int64:2", "int64:3");
        Assert.Equal(0, sent.ExitCode);

        using var dashboard = CliProcess.Start(_directory, "dashboard", "--broker", url, "--port", "0", "--title", "Ops");
        await dashboard.WaitForOutputAsync("Ctrl+C stops", TimeSpan.FromSeconds(60));
        var address = Address().Match(dashboard.Output);
        Assert.True(address.Success, dashboard.Output);
        Assert.Equal("127.0.0.1", address.Groups["host"].Value);
        Assert.Contains("answers local (loopback) requests only", dashboard.Output + dashboard.Error, StringComparison.Ordinal);

        using var http = new HttpClient { BaseAddress = new Uri(address.Value) };
        var page = await http.GetStringAsync("/");
        Assert.Contains("<title>Ops</title>", page, StringComparison.Ordinal);
        using var tasks = JsonDocument.Parse(await http.GetStringAsync("/api/tasks?state=pending"));
        var task = Assert.Single(tasks.RootElement.GetProperty("tasks").EnumerateArray());
        Assert.Equal("add", task.GetProperty("name").GetString());
        using var pause = await http.PostAsync("/api/queues/machinery_tasks/pause", null);
        Assert.Equal(HttpStatusCode.BadRequest, pause.StatusCode); // no antiforgery token

        dashboard.Signal("TERM");
        Assert.Equal(0, await dashboard.WaitForExitAsync(TimeSpan.FromSeconds(30)));
    }

    [GeneratedRegex(@"http://(?<host>[0-9.]+):(?<port>[0-9]+)/")]
    private static partial Regex Address();
}
