using Microsoft.Playwright;

namespace Conveyor.Dashboard.Tests;

/// <summary>
/// The dashboard in a real browser against a real provider: each page shows what the store holds, and each action
/// clicked changes the store (checked through the management API, not the page). One browser serves every test.
/// </summary>
public abstract class DashboardBrowserTests<THost>(BrowserFixture browser, THost host) : IAsyncLifetime
    where THost : DashboardHost
{
    private IPage? _page;

    protected THost Host { get; } = host;

    protected IPage Page => _page ?? throw new InvalidOperationException("no page");

    /// <summary>Where the screenshots go (docs/ in the repository), or null for none.</summary>
    protected virtual string? ScreenshotDir => null;

    public async Task InitializeAsync() => _page = await browser.Context.NewPageAsync();

    public async Task DisposeAsync()
    {
        if (_page is not null)
        {
            await _page.CloseAsync();
        }
    }

    protected async Task OpenAsync(string route, string prefix = "/conveyor")
    {
        // A new hash on the same page keeps the document: clear the mark of the last page shown first.
        await Page.EvaluateAsync("() => document.body && document.body.removeAttribute('data-loaded')");
        await Page.GotoAsync(Host.BaseUrl + prefix + "/#" + route);
        await Page.WaitForSelectorAsync($"body[data-loaded]");
    }

    private async Task ScreenshotAsync(string name)
    {
        if (ScreenshotDir is { } dir)
        {
            await Page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(dir, "dashboard-" + name + ".png"), FullPage = false });
        }
    }

    /// <summary>The message the action shows when its request has answered (the page clears the last one first).</summary>
    private async Task<string> FlashAsync(string expected)
    {
        await Page.WaitForFunctionAsync("t => { const f = document.getElementById('flash'); return !f.hidden && f.textContent.includes(t); }", expected);
        return await Page.Locator("#flash").InnerTextAsync();
    }

    [Fact]
    public async Task Pages_OpenedOneByOne_ShowTheStoresTasksInEveryState()
    {
        // Overview: counts from the providers' counters, the oldest pending task's age, the chart.
        await OpenAsync("/");
        var overviewRow = Page.Locator($"#overview-queues tr[data-queue='{Host.IdleQueue}']");
        await overviewRow.WaitForAsync();
        var idle = (await Host.Management.ListQueuesAsync()).Single(q => q.Queue == Host.IdleQueue);
        var cells = await overviewRow.Locator("td").AllInnerTextsAsync();
        Assert.Equal(idle.Statistics.Ready.ToString("N0", System.Globalization.CultureInfo.InvariantCulture), cells[1]);
        Assert.Equal(idle.Statistics.Delayed.ToString("N0", System.Globalization.CultureInfo.InvariantCulture), cells[2]);
        Assert.NotEqual("–", cells[7]); // oldest pending age
        var work = Page.Locator($"#overview-queues tr[data-queue='{Host.WorkQueue}'] td");
        var running = (await Host.Management.ListQueuesAsync()).Single(q => q.Queue == Host.WorkQueue).Statistics.InFlight;
        Assert.True(running >= 1);
        Assert.Equal(running.ToString(System.Globalization.CultureInfo.InvariantCulture), (await work.AllInnerTextsAsync())[3]); // the sleeping tasks
        Assert.True(await Page.Locator("svg.chart rect.succeeded").CountAsync() >= 60);
        Assert.Equal("Conveyor · Acme production", await Page.TitleAsync());
        await ScreenshotAsync("overview");

        // Queues: size, paused, latency, error rate.
        await OpenAsync("/queues");
        var workRow = Page.Locator($"#queues tr[data-queue='{Host.WorkQueue}'] td");
        await workRow.First.WaitForAsync();
        var workCells = await workRow.AllInnerTextsAsync();
        Assert.Matches(@"^\d+\.\d %$", workCells[7]); // 1 failure among the finished tasks
        Assert.Contains("paused", await Page.Locator($"#queues tr[data-queue='{Host.PoisonQueue}']").InnerTextAsync());
        await ScreenshotAsync("queues");

        // Tasks by state: pending, then a search by argument text, then each finished state.
        await OpenAsync("/tasks?state=pending&queue=" + Host.IdleQueue);
        await Page.Locator($"#tasks tr[data-id='{Host.PendingId}']").WaitForAsync();
        Assert.Contains("invoice-4711", await Page.Locator($"#tasks tr[data-id='{Host.PendingId}']").InnerTextAsync());
        await ScreenshotAsync("tasks");
        await Page.FillAsync("#search", "INVOICE-4711");
        await Page.EvaluateAsync("() => document.body.removeAttribute('data-loaded')");
        await Page.ClickAsync("form button[type=submit]");
        await Page.WaitForURLAsync("**q=INVOICE-4711**");
        await Page.WaitForSelectorAsync("body[data-loaded]");
        await Page.Locator($"#tasks tr[data-id='{Host.PendingId}']").WaitForAsync();
        Assert.Equal(1, await Page.Locator("#tasks tbody tr").CountAsync());

        await OpenAsync("/tasks?state=scheduled&queue=" + Host.IdleQueue);
        await Page.Locator($"#tasks tr[data-id='{Host.ScheduledId}']").WaitForAsync();
        await OpenAsync("/tasks?state=active&queue=" + Host.WorkQueue);
        Assert.NotEmpty((await Page.Locator($"#tasks tr[data-id='{Host.RunningId}'] td").AllInnerTextsAsync())[8].Trim()); // its worker
        await OpenAsync("/tasks?state=succeeded");
        await Page.Locator($"#tasks tr[data-id='{Host.SucceededId}']").WaitForAsync();
        await OpenAsync("/tasks?state=failed");
        var failedRow = await Page.Locator($"#tasks tr[data-id='{Host.FailedId}']").InnerTextAsync();
        Assert.Contains("failed on purpose", failedRow);
        Assert.DoesNotContain("hunter2", failedRow); // secrets masked
        await OpenAsync("/tasks?state=revoked");
        Assert.Contains("not needed", await Page.Locator($"#tasks tr[data-id='{Host.RevokedId}']").InnerTextAsync());

        // One task: arguments, progress, and its chord as a tree with each member's state.
        await OpenAsync("/task/" + Host.RunningId);
        Assert.Contains("40 % halfway", await Page.Locator("#task-fields").InnerTextAsync());
        await OpenAsync("/task/" + Host.ChordMemberId);
        var tree = await Page.Locator("#tree").InnerTextAsync();
        Assert.Contains("group", tree);
        Assert.Contains("chord callback", tree);
        Assert.Contains(Host.ChordCallbackId, tree);
        Assert.Contains("PENDING", tree);
        Assert.Contains("a.png", await Page.Locator("#task-args").InnerTextAsync());
        await ScreenshotAsync("task");

        // Dead letters with their reasons.
        await OpenAsync("/dead");
        var letter = Page.Locator($"#tasks tr[data-dead-letter='{Host.DeadLetter.DeadLetterId}']");
        Assert.Contains("thumbnail.v1", await letter.InnerTextAsync());
        Assert.Contains(Host.DeadLetter.Task.Error!, await letter.InnerTextAsync());
        await ScreenshotAsync("dead-letters");

        // Schedules: spec, time zone, next ticks.
        await OpenAsync("/schedules");
        var schedule = await Page.Locator($"#schedules tr[data-schedule='{Host.ScheduleName}']").InnerTextAsync();
        Assert.Contains("0 2 * * *", schedule);
        Assert.Contains("Europe/Berlin", schedule);
        Assert.Contains("never", schedule);
        await ScreenshotAsync("schedules");

        // Workers: host, pid, queues, concurrency, running tasks, heartbeat.
        await OpenAsync("/workers");
        var workers = await Host.Management.ListWorkersAsync();
        var worker = workers.Single(w => w.Queues.Contains(Host.WorkQueue));
        var workerRow = await Page.Locator($"#workers tr[data-worker='{worker.Name}']").InnerTextAsync();
        Assert.Contains(Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture), workerRow);
        Assert.Contains(Host.RunningId, workerRow);
        await ScreenshotAsync("workers");
    }

    [Fact]
    public async Task PauseButton_Clicked_PausesTheQueueInTheStoreAndResumeUndoesIt()
    {
        await OpenAsync("/queues");
        var row = Page.Locator($"#queues tr[data-queue='{Host.IdleQueue}']");
        await row.Locator("button[data-action='pause']").ClickAsync();
        Assert.Contains("paused", await FlashAsync("paused"));
        Assert.Contains(Host.IdleQueue, await Host.Management.ListPausedQueuesAsync());

        await row.Locator("button[data-action='resume']").ClickAsync();
        await Page.Locator($"#queues tr[data-queue='{Host.IdleQueue}'] button[data-action='pause']").WaitForAsync();
        Assert.DoesNotContain(Host.IdleQueue, await Host.Management.ListPausedQueuesAsync());
    }

    [Fact]
    public async Task RevokeButton_OnARunningTask_RevokesItInTheStore()
    {
        await OpenAsync("/tasks?state=active&queue=" + Host.WorkQueue);
        await Page.Locator($"#tasks input.pick[value='{Host.RunningToRevokeId}']").CheckAsync();
        await Page.ClickAsync("button[data-action='revoke']");
        Assert.Contains("revoke: 1 changed", await FlashAsync("revoke:"));

        var detail = await Host.Management.GetTaskAsync(Host.RunningToRevokeId);
        Assert.True(detail!.Revoked);
        Assert.Equal(TaskState.Failure, detail.State!.State);
        Assert.StartsWith("revoked", detail.State.Error, StringComparison.Ordinal);

        // Its worker cancels it: it leaves the active list.
        await DashboardHost.WaitUntilAsync("the revoked task stops running", async () =>
            !(await Host.Management.ListTasksAsync(new TaskQuery { State = ManagedTaskState.Active, Queue = Host.WorkQueue })).Tasks.Any(t => t.Id == Host.RunningToRevokeId));
    }

    [Fact]
    public async Task RequeueButton_OnADeadLetter_MovesItBackToItsQueue()
    {
        await OpenAsync("/dead");
        var row = Page.Locator($"#tasks tr[data-dead-letter='{Host.DeadLetterToRequeue.DeadLetterId}']");
        await row.Locator("button[data-action='requeue']").ClickAsync();
        Assert.Contains("retry: 1 changed", await FlashAsync("retry:"));

        var letters = await Host.Management.ListDeadLettersAsync(Host.PoisonQueue, 1000);
        Assert.DoesNotContain(letters.Letters, l => l.DeadLetterId == Host.DeadLetterToRequeue.DeadLetterId);
        // The poison queue is paused, so the requeued task waits there.
        var messages = (await Host.Management.GetTaskAsync(Host.DeadLetterToRequeue.Task.Id))!.Messages;
        Assert.Contains(messages, m => m.Queue == Host.PoisonQueue && m.State == ManagedTaskState.Pending);
    }

    [Fact]
    public async Task ScheduleButtons_DisableEnableTrigger_ChangeTheStore()
    {
        await OpenAsync("/schedules");
        var row = Page.Locator($"#schedules tr[data-schedule='{Host.ScheduleName}']");
        await row.Locator("button[data-action='disable']").ClickAsync();
        Assert.Contains("disabled", await FlashAsync("disabled"));
        Assert.Contains(Host.ScheduleName, await Host.Management.ListDisabledSchedulesAsync());

        await row.Locator("button[data-action='enable']").ClickAsync();
        await Page.Locator($"#schedules tr[data-schedule='{Host.ScheduleName}'] button[data-action='disable']").WaitForAsync();
        Assert.DoesNotContain(Host.ScheduleName, await Host.Management.ListDisabledSchedulesAsync());

        await row.Locator("button[data-action='trigger-now']").ClickAsync();
        var published = (await FlashAsync("published")).Split(' ')[^1];
        var detail = await Host.Management.GetTaskAsync(published);
        Assert.Equal("report", detail!.Signature!.Name);
        Assert.Equal(Host.ScheduleName, detail.Signature.GetHeader(ConveyorScheduler.ScheduleHeader));
        Assert.Contains(detail.Messages, m => m.Queue == Host.IdleQueue && m.State == ManagedTaskState.Pending);
    }

    [Fact]
    public async Task ReadOnlyDashboard_ShowsNoActions_AndRefusesEveryChangeWith403()
    {
        await OpenAsync("/queues", "/ro");
        await Page.Locator($"#queues tr[data-queue='{Host.IdleQueue}']").WaitForAsync();
        Assert.Equal(0, await Page.Locator("button[data-action]").CountAsync());

        // The page's own token, the changes a full dashboard would make: each refused, nothing changed.
        var statuses = await Page.EvaluateAsync<int[]>(
            """
            async ([idle, running, letter]) => {
              const session = await (await fetch("api/session")).json();
              const post = async (path, body) => (await fetch(path, { method: "POST", headers: { "Content-Type": "application/json", [session.antiforgery.header]: session.antiforgery.token }, body: JSON.stringify(body) })).status;
              return [
                await post("api/queues/" + encodeURIComponent(idle) + "/pause", {}),
                await post("api/tasks/revoke", { state: "active", ids: [running] }),
                await post("api/dead-letters/requeue", { ids: [letter] }),
              ];
            }
            """,
            new[] { Host.IdleQueue, Host.RunningId, Host.DeadLetter.DeadLetterId });
        Assert.Equal([403, 403, 403], statuses);
        Assert.DoesNotContain(Host.IdleQueue, await Host.Management.ListPausedQueuesAsync());
        Assert.False((await Host.Management.GetTaskAsync(Host.RunningId))!.Revoked);
        Assert.Contains((await Host.Management.ListDeadLettersAsync(Host.PoisonQueue, 1000)).Letters, l => l.DeadLetterId == Host.DeadLetter.DeadLetterId);
    }
}

[Collection(BrowserCollection.Name)]
public sealed class SqliteDashboardBrowserTests(BrowserFixture browser, SqliteDashboardHost host)
    : DashboardBrowserTests<SqliteDashboardHost>(browser, host), IClassFixture<SqliteDashboardHost>
{
    // The README's screenshots come from this run.
    protected override string? ScreenshotDir => RepositoryRoot.Docs;
}

[Collection(BrowserCollection.Name)]
public sealed class RedisDashboardBrowserTests(BrowserFixture browser, RedisDashboardHost host)
    : DashboardBrowserTests<RedisDashboardHost>(browser, host), IClassFixture<RedisDashboardHost>;

internal static class RepositoryRoot
{
    /// <summary>docs/ beside Conveyor.slnx, found from the test assembly's folder upwards.</summary>
    public static string Docs
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "Conveyor.slnx")))
                {
                    return Directory.CreateDirectory(Path.Combine(dir.FullName, "docs")).FullName;
                }
            }

            throw new InvalidOperationException("Conveyor.slnx not found above " + AppContext.BaseDirectory);
        }
    }
}
