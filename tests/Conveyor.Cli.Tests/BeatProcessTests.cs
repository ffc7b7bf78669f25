using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Conveyor.Sqlite;

namespace Conveyor.Cli.Tests;

/// <summary><c>conveyor beat</c> as separate processes sharing one SQLite file.</summary>
public sealed partial class BeatProcessTests : IDisposable
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(60);
    private readonly string _directory = Directory.CreateTempSubdirectory("conveyor-beat-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [GeneratedRegex(@"Schedule (\S+) tick (\S+): published")]
    private static partial Regex Published();

    private static List<(string Schedule, DateTimeOffset Tick)> PublishedTicks(string output) =>
        [.. Published().Matches(output).Select(m => (m.Groups[1].Value, DateTimeOffset.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture)))];

    private async Task<List<DateTimeOffset>> QueuedTicksAsync(string schedule)
    {
        await using var broker = new SqliteBroker(new SqliteConveyorOptions { DatabasePath = Path.Combine(_directory, "conveyor.db") });
        var count = (int)(await broker.GetQueueStatisticsAsync("machinery_tasks")).Ready;
        var ticks = new List<DateTimeOffset>();
        if (count == 0)
        {
            return ticks;
        }

        await using var consumer = await broker.ConsumeAsync("machinery_tasks", new ConsumeOptions { Prefetch = count });
        for (var i = 0; i < count; i++)
        {
            var delivery = await consumer.Deliveries.ReadAsync().AsTask().WaitAsync(Generous);
            using var json = JsonDocument.Parse(delivery.Body);
            var headers = json.RootElement.GetProperty("Headers");
            if (headers.GetProperty(ConveyorScheduler.ScheduleHeader).GetString() == schedule)
            {
                ticks.Add(DateTimeOffset.Parse(headers.GetProperty(ConveyorScheduler.TickHeader).GetString()!, CultureInfo.InvariantCulture));
            }

            await delivery.AckAsync();
        }

        return ticks;
    }

    [Fact]
    public async Task Beat_ThreeProcessesOneKilled_EachTickPublishedOnce_AtMostOneTickMissed()
    {
        var beats = Enumerable.Range(0, 3)
            .Select(_ => CliProcess.Start(_directory, "beat", "--name", "tick", "--interval", "1s", "echo", "string:tick"))
            .ToList();
        try
        {
            foreach (var beat in beats)
            {
                await beat.WaitForOutputAsync("conveyor beat", Generous);
            }

            await beats[0].WaitForOutputAsync("published", Generous);
            await Task.Delay(TimeSpan.FromSeconds(3));

            // SIGKILL the process that published the latest tick: the one firing now.
            var firing = beats.OrderByDescending(b => PublishedTicks(b.Output).Select(p => p.Tick).DefaultIfEmpty().Max()).First();
            firing.Kill();
            await Task.Delay(TimeSpan.FromSeconds(4));

            foreach (var beat in beats.Where(b => b != firing))
            {
                beat.Signal("TERM");
                Assert.Equal(0, await beat.WaitForExitAsync(Generous));
            }

            var ticks = await QueuedTicksAsync("tick");
            Assert.Equal(ticks.Count, ticks.Distinct().Count());
            var ordered = ticks.Order().ToList();
            var span = (int)Math.Round((ordered[^1] - ordered[0]).TotalSeconds) + 1;
            Assert.True(ordered.Count >= 6, $"only {ordered.Count} ticks were published");
            Assert.True(span - ordered.Count <= 1, $"{span - ordered.Count} ticks missed between {ordered[0]:O} and {ordered[^1]:O}");
            Assert.All(ordered, t => Assert.Equal(0, t.Millisecond));
        }
        finally
        {
            foreach (var beat in beats)
            {
                beat.Dispose();
            }
        }
    }

    [Fact]
    public async Task Beat_ScheduleDeletedFromTheConfigurationFile_StopsTicking_WhileTheOthersGoOn()
    {
        var settings = Path.Combine(_directory, "appsettings.json");
        await File.WriteAllTextAsync(settings, """
            { "Conveyor": { "Schedules": {
                "keep": { "Interval": "00:00:01", "Task": "echo", "Args": [ "string:keep" ] },
                "drop": { "Cron": "*/1 * * * * *", "Task": "echo", "Args": [ "string:drop" ] } } } }
            """);
        using var beat = CliProcess.Start(_directory, "beat");
        await beat.WaitForOutputAsync("Schedule drop tick", Generous);

        await File.WriteAllTextAsync(settings, """
            { "Conveyor": { "Schedules": {
                "keep": { "Interval": "00:00:01", "Task": "echo", "Args": [ "string:keep" ] } } } }
            """);
        await beat.WaitForOutputAsync("Schedule drop removed", Generous);
        var removedAt = DateTimeOffset.UtcNow;
        await Task.Delay(TimeSpan.FromSeconds(2.5));
        beat.Signal("TERM");
        Assert.Equal(0, await beat.WaitForExitAsync(Generous));

        var published = PublishedTicks(beat.Output);
        Assert.DoesNotContain(published, p => p.Schedule == "drop" && p.Tick > removedAt);
        Assert.Contains(published, p => p.Schedule == "keep" && p.Tick > removedAt.AddSeconds(1));
    }

    [Fact]
    public async Task Beat_InvalidCronInConfiguration_ExitsTwoWithOneLineNamingTheSetting()
    {
        await File.WriteAllTextAsync(Path.Combine(_directory, "bad.json"), """{ "Conveyor": { "Schedules": { "cleanup": { "Cron": "61 * * * *", "Task": "cleanup" } } } }""");

        var (exitCode, _, error) = await CliProcess.RunAsync(_directory, Generous, "beat", "--config", "bad.json");
        var schedules = await CliProcess.RunAsync(_directory, Generous, "schedules", "--config", "bad.json");

        Assert.Equal(2, exitCode);
        Assert.StartsWith("conveyor: Conveyor:Schedules:cleanup:Cron: '61 * * * *' is not a valid cron spec (", error, StringComparison.Ordinal);
        Assert.Single(error.Trim().Split('\n'));
        Assert.Equal(2, schedules.ExitCode);
    }

    [Fact]
    public async Task Schedules_FromFileAndEnvironment_ListNextTicks()
    {
        await File.WriteAllTextAsync(Path.Combine(_directory, "appsettings.json"), """
            { "Conveyor": { "Schedules": { "report": { "Cron": "0 8 * * 1-5", "TimeZone": "Europe/Berlin", "Task": "report" } } } }
            """);

        var environment = new Dictionary<string, string> { ["Conveyor__Schedules__ping__Interval"] = "00:00:10", ["Conveyor__Schedules__ping__Task"] = "echo" };

        var (exitCode, output, error) = await CliProcess.RunAsync(_directory, environment, Generous, "schedules", "--json");

        Assert.True(exitCode == 0, $"exit {exitCode}\n{output}\n{error}");
        using var json = JsonDocument.Parse(output);
        var rows = json.RootElement.EnumerateArray().ToList();
        Assert.Equal(["ping", "report"], rows.Select(r => r.GetProperty("name").GetString()));
        Assert.Equal("every 00:00:10", rows[0].GetProperty("spec").GetString());
        var report = rows[1];
        Assert.Equal("report", report.GetProperty("name").GetString());
        Assert.Equal("Europe/Berlin", report.GetProperty("time_zone").GetString());
        Assert.Equal(3, report.GetProperty("next").GetArrayLength());
        Assert.Equal(JsonValueKind.Null, report.GetProperty("last_claimed").ValueKind);
    }
}
