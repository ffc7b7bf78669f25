using System.Text.Json;

namespace Conveyor.Cli.Tests;

/// <summary>
/// A task that kills its worker's process (<c>Environment.FailFast</c>) on SQLite, with two workers that a
/// supervisor restarts whenever one dies: after 5 deliveries that each killed a worker, the next one dead-letters it
/// with the reason "worker died 5 times while running this task", and the other tasks run on the restarted workers.
/// </summary>
public sealed class PoisonMessageProcessTests : IDisposable
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(120);
    private readonly string _directory = Directory.CreateTempSubdirectory("conveyor-poison-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public async Task Worker_TaskCallsFailFast_IsDeadLetteredAfterFiveDeliveriesWhileOtherTasksRun()
    {
        // A 2 s lease so that each dead worker's message passes on quickly.
        const string url = "sqlite://conveyor.db?visibility_timeout=2";
        var workers = new List<CliProcess>();
        var deaths = 0;
        try
        {
            CliProcess StartWorker() => CliProcess.Start(_directory, "worker", "--broker", url, "--backend", url, "--concurrency", "4");
            workers.Add(StartWorker());
            workers.Add(StartWorker());
            await workers[0].WaitForOutputAsync("conveyor worker", Generous);

            var sent = await CliProcess.RunAsync(_directory, Generous, "send", "crash", "string:poison", "--broker", url, "--backend", url, "--json");
            Assert.True(sent.ExitCode == 0, sent.Error);
            using var bench = CliProcess.Start(_directory, "bench", "--warmup", "0", "-n", "2000", "--rate", "200", "--no-worker", "--json", "--timeout", "100", "--broker", url, "--backend", url);

            // The supervisor: a dead worker is replaced, as systemd or Kubernetes would.
            var deadline = DateTime.UtcNow + Generous;
            string? reason = null;
            while (reason is null && DateTime.UtcNow < deadline)
            {
                for (var i = 0; i < workers.Count; i++)
                {
                    if (workers[i].HasExited)
                    {
                        deaths++;
                        workers[i].Dispose();
                        workers[i] = StartWorker();
                    }
                }

                var letters = await CliProcess.RunAsync(_directory, Generous, "dead-letters", "--json", "--broker", url, "--backend", url);
                using var json = JsonDocument.Parse(letters.Output);
                reason = json.RootElement.EnumerateArray()
                    .Where(letter => letter.GetProperty("task").GetString()!.StartsWith("crash ", StringComparison.Ordinal))
                    .Select(letter => letter.GetProperty("reason").GetString())
                    .FirstOrDefault();
                await Task.Delay(200);
            }

            Assert.Equal("worker died 5 times while running this task", reason);
            await Task.Delay(TimeSpan.FromSeconds(1));
            deaths += workers.Count(worker => worker.HasExited); // died while the dead letters were read
            Assert.True(deaths >= 5, $"only {deaths} worker(s) died");
            var exitCode = await bench.WaitForExitAsync(Generous);
            Assert.True(exitCode == 0, $"bench exit {exitCode}\n{bench.Output}\n{bench.Error}");
            var report = bench.Output.Split('\n').Last(line => line.TrimStart().StartsWith('{'));
            using var result = JsonDocument.Parse(report);
            Assert.Equal(0, result.RootElement.GetProperty("lost").GetInt32());
        }
        finally
        {
            foreach (var worker in workers)
            {
                if (!worker.HasExited)
                {
                    worker.Kill();
                }

                worker.Dispose();
            }
        }
    }
}
