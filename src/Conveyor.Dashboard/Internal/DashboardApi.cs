using System.Globalization;
using System.Text.Json.Serialization;
using Conveyor.Serialization;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Conveyor.Dashboard.Internal;

/// <summary>
/// The dashboard's endpoints: the page and its assets, JSON reads for each page, and the actions. Every read is one
/// call or a few into <see cref="ConveyorManagement"/> (counts from the providers' counters, keyset pages); every
/// action checks, in order, read-only mode, the action's policy and the antiforgery token before it changes anything.
/// </summary>
internal sealed class DashboardApi(ConveyorDashboardOptions options, string prefix)
{
    private const int PageSize = 50;

    private static readonly string[] MessageStates = ["pending", "scheduled", "active"];

    public void Map(RouteGroupBuilder group)
    {
        group.WithMetadata(new DashboardEndpointMetadata(prefix));
        group.AddEndpointFilter(DashboardAccess.LocalOnlyFilter);
        group.ExcludeFromDescription();

        // One endpoint for "/conveyor" and "/conveyor/" (routing does not tell them apart): the page's relative
        // asset and API paths need the trailing slash, so the first is redirected to the second.
        group.MapGet(string.Empty, ServePage);
        group.MapGet("/assets/{name}", ServeAsset);

        group.MapGet("/api/session", (Func<HttpContext, Task<IResult>>)Session);
        group.MapGet("/api/overview", Overview);
        group.MapGet("/api/tasks", Tasks);
        group.MapGet("/api/task/{id}", TaskDetailAsync);
        group.MapGet("/api/dead-letters", DeadLetters);
        group.MapGet("/api/schedules", Schedules);
        group.MapGet("/api/workers", Workers);

        group.MapPost("/api/queues/{queue}/{action}", QueueAction);
        group.MapPost("/api/tasks/{action}", TasksAction);
        group.MapPost("/api/dead-letters/{action}", DeadLettersAction);
        group.MapPost("/api/schedules/{name}/{action}", ScheduleAction);
    }

    private static ConveyorManagement Management(HttpContext context) => context.RequestServices.GetRequiredService<ConveyorManagement>();

    private IResult ServePage(HttpContext context)
    {
        if (context.Request.Path.Value is not { } path || !path.EndsWith('/'))
        {
            return Results.Redirect(context.Request.PathBase + context.Request.Path + "/" + context.Request.QueryString);
        }

        var html = DashboardAssets.Page(options.Title);
        context.Response.Headers.CacheControl = "no-store";
        AddSecurityHeaders(context);
        return Results.Content(html, "text/html; charset=utf-8");
    }

    private static IResult ServeAsset(HttpContext context, string name)
    {
        if (DashboardAssets.Find(name) is not { } asset)
        {
            return Results.NotFound();
        }

        AddSecurityHeaders(context);
        context.Response.Headers.CacheControl = "no-cache";
        context.Response.Headers.ETag = asset.ETag;
        if (context.Request.Headers.IfNoneMatch == asset.ETag)
        {
            return Results.StatusCode(StatusCodes.Status304NotModified);
        }

        return Results.Bytes(asset.Content, asset.ContentType);
    }

    private static void AddSecurityHeaders(HttpContext context)
    {
        // Everything is served from here: no inline script, no third party, no framing by another site.
        context.Response.Headers.ContentSecurityPolicy = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'self'; form-action 'self'";
        context.Response.Headers.XContentTypeOptions = "nosniff";
        context.Response.Headers["Referrer-Policy"] = "same-origin";
    }

    private async Task<IResult> Session(HttpContext context)
    {
        var antiforgery = context.RequestServices.GetRequiredService<IAntiforgery>();
        var tokens = antiforgery.GetAndStoreTokens(context);
        var readOnly = IsReadOnly(context);
        var can = new Dictionary<string, bool>(StringComparer.Ordinal);
        foreach (var action in Enum.GetValues<DashboardAction>())
        {
            can[action.ToString().ToLowerInvariant()] = !readOnly && await IsAllowedAsync(context, action).ConfigureAwait(false);
        }

        var conveyor = context.RequestServices.GetService<IOptions<ConveyorOptions>>()?.Value;
        var management = Management(context);
        context.Response.Headers.CacheControl = "no-store";
        return DashboardJson.Json(new
        {
            title = options.Title,
            refreshSeconds = options.StatsRefreshInterval.TotalSeconds,
            readOnly,
            can,
            antiforgery = new { header = tokens.HeaderName, token = tokens.RequestToken },
            broker = conveyor is null ? null : Secrets.Mask(conveyor.Broker),
            backend = conveyor is null ? null : Secrets.Mask(string.IsNullOrWhiteSpace(conveyor.ResultBackend) ? conveyor.Broker : conveyor.ResultBackend),
            defaultQueue = management.DefaultQueue,
            messages = management.Store.Capabilities.HasFlag(ManagementCapabilities.Messages),
            states = management.Store.Capabilities.HasFlag(ManagementCapabilities.States),
            user = context.User.Identity?.IsAuthenticated == true ? context.User.Identity.Name : null,
        });
    }

    private static async Task<IResult> Overview(HttpContext context, CancellationToken cancellationToken)
    {
        var management = Management(context);
        var queues = await management.ListQueuesAsync(cancellationToken).ConfigureAwait(false);
        var throughput = await management.GetThroughputAsync(60, cancellationToken: cancellationToken).ConfigureAwait(false);
        var workers = await management.ListWorkersAsync(cancellationToken).ConfigureAwait(false);
        return DashboardJson.Json(new
        {
            queues = queues.Select(q => new
            {
                name = q.Queue,
                pending = q.Statistics.Ready,
                scheduled = q.Statistics.Delayed,
                active = q.Statistics.InFlight,
                dead = q.Statistics.DeadLettered,
                paused = q.Paused,
                oldestPendingSeconds = q.OldestPendingAge?.TotalSeconds,
                succeededLastHour = q.SucceededLastHour,
                failedLastHour = q.FailedLastHour,
                errorRate = q.ErrorRate,
            }),
            throughput = throughput.Select(t => new { minute = t.Minute, succeeded = t.Succeeded, failed = t.Failed }),
            workers = workers.Count,
            running = workers.Sum(w => w.RunningTasks.Count),
        });
    }

    private static async Task<IResult> Tasks(HttpContext context, string? state, string? queue, string? q, string? after, int? limit, CancellationToken cancellationToken)
    {
        if (ManagedTaskStateNames.Parse(state ?? "pending") is not { } parsed)
        {
            return Error(StatusCodes.Status400BadRequest, $"state: '{state}' is none of pending, scheduled, active, dead, succeeded, failed, revoked");
        }

        var management = Management(context);
        var size = Math.Clamp(limit ?? PageSize, 1, 200);
        try
        {
            if (parsed == ManagedTaskState.DeadLettered)
            {
                return await DeadLetterPageAsync(management, queue, q, after, size, cancellationToken).ConfigureAwait(false);
            }

            var isMessage = parsed is ManagedTaskState.Pending or ManagedTaskState.Scheduled or ManagedTaskState.Active;
            var query = new TaskQuery { State = parsed, Queue = string.IsNullOrWhiteSpace(queue) ? (isMessage ? management.DefaultQueue : null) : queue, Limit = size, After = after };
            var page = await management.SearchTasksAsync(query, q, cancellationToken).ConfigureAwait(false);
            return DashboardJson.Json(new { tasks = page.Tasks.Select(t => Summary(t, null)), next = page.Next });
        }
        catch (NotSupportedException ex)
        {
            return Error(StatusCodes.Status409Conflict, ex.Message);
        }
    }

    private static async Task<IResult> DeadLetterPageAsync(ConveyorManagement management, string? queue, string? text, string? after, int size, CancellationToken cancellationToken)
    {
        var found = new List<DeadLetterSummary>();
        var cursor = after;
        var scanned = 0;
        while (found.Count < size && scanned < ConveyorManagement.SearchScanLimit)
        {
            var page = await management.ListDeadLettersAsync(string.IsNullOrWhiteSpace(queue) ? null : queue, size - found.Count, cursor, cancellationToken).ConfigureAwait(false);
            scanned += page.Letters.Count;
            found.AddRange(string.IsNullOrWhiteSpace(text) ? page.Letters : page.Letters.Where(l => ConveyorManagement.Matches(l.Task, text.Trim()) || l.DeadLetterId.Contains(text.Trim(), StringComparison.OrdinalIgnoreCase)));
            cursor = page.Next;
            if (cursor is null || string.IsNullOrWhiteSpace(text))
            {
                break;
            }
        }

        return DashboardJson.Json(new { tasks = found.Select(l => Summary(l.Task, l.DeadLetterId)), next = cursor });
    }

    private static Dictionary<string, object?> Summary(TaskSummary task, string? deadLetterId) => new(StringComparer.Ordinal)
    {
        ["id"] = task.Id,
        ["deadLetterId"] = deadLetterId,
        ["name"] = task.Name,
        ["queue"] = task.Queue,
        ["state"] = ManagedTaskStateNames.Name(task.State),
        ["args"] = Arguments(task.Args),
        ["attempts"] = task.Attempts,
        ["eta"] = task.Eta,
        ["since"] = task.Since,
        ["worker"] = task.Worker,
        ["error"] = task.Error is null ? null : Secrets.Mask(task.Error),
        ["groupId"] = task.GroupId.Length > 0 ? task.GroupId : null,
    };

    private static List<object> Arguments(IEnumerable<TaskArgument> args) =>
        [.. args.Select(a => (object)new { type = a.Type, value = Secrets.Mask(ConveyorManagement.FormatValue(a.Value)) })];

    private static async Task<IResult> TaskDetailAsync(HttpContext context, string id, CancellationToken cancellationToken)
    {
        var management = Management(context);
        var backend = context.RequestServices.GetRequiredService<IResultBackend>();
        var detail = await management.GetTaskAsync(id, cancellationToken).ConfigureAwait(false);
        if (detail is null)
        {
            // A group id names no task: show the group.
            if (await GroupOfAsync(backend, id, cancellationToken).ConfigureAwait(false) is { } onlyGroup)
            {
                var groupTree = await TaskTree.BuildAsync(backend, null, onlyGroup, id, cancellationToken).ConfigureAwait(false);
                return DashboardJson.Json(new { id, kind = "group", tree = groupTree });
            }

            return Error(StatusCodes.Status404NotFound, $"nothing is known of {id} (an unknown id, or its result expired)");
        }

        var state = detail.State;
        var tree = await TaskTree.BuildAsync(backend, detail.Signature, detail.Group, id, cancellationToken).ConfigureAwait(false);
        return DashboardJson.Json(new
        {
            id,
            kind = "task",
            name = detail.Signature?.Name ?? state?.TaskName ?? (detail.Messages.Count > 0 ? detail.Messages[0].Name : string.Empty),
            status = detail.Status is { } status ? ManagedTaskStateNames.Name(status) : null,
            revoked = detail.Revoked,
            state = state is null ? null : new
            {
                state = state.IsRevoked() ? "REVOKED" : state.State.ToWireName(),
                createdAt = state.CreatedAt,
                error = state.Error.Length > 0 ? Secrets.Mask(state.Error) : null,
                results = state.Results?.Select(r => new { type = r.Type, value = Secrets.Mask(ConveyorManagement.FormatValue(r.Value)) }),
            },
            messages = detail.Messages.Select(m => Summary(m, null)),
            args = detail.Signature is { } signature ? Arguments(signature.Args) : detail.Messages.Count > 0 ? Arguments(detail.Messages[0].Args) : [],
            signature = detail.Signature is { } s ? new
            {
                routingKey = s.RoutingKey,
                eta = s.Eta,
                priority = s.Priority,
                retryCount = s.RetryCount,
                retryTimeout = s.RetryTimeout,
                groupId = s.GroupId.Length > 0 ? s.GroupId : null,
                groupTaskCount = s.GroupTaskCount,
            } : null,
            progress = detail.Progress is { } p ? new { percent = p.Percent, message = Secrets.Mask(p.Message), at = p.At } : null,
            tree,
        });
    }

    private static async ValueTask<GroupMeta?> GroupOfAsync(IResultBackend backend, string id, CancellationToken cancellationToken)
    {
        try
        {
            return await backend.GetGroupMetaAsync(id, cancellationToken).ConfigureAwait(false);
        }
        catch (WireFormatException)
        {
            return null;
        }
    }

    private static async Task<IResult> DeadLetters(HttpContext context, string? queue, string? q, string? after, CancellationToken cancellationToken) =>
        await DeadLetterPageAsync(Management(context), queue, q, after, PageSize, cancellationToken).ConfigureAwait(false);

    private static async Task<IResult> Schedules(HttpContext context, CancellationToken cancellationToken)
    {
        var management = Management(context);
        var locks = context.RequestServices.GetService<IDistributedLock>();
        var disabled = await management.ListDisabledSchedulesAsync(cancellationToken).ConfigureAwait(false);
        var now = (context.RequestServices.GetService<ConveyorClient>()?.TimeProvider ?? TimeProvider.System).GetUtcNow();
        var rows = new List<object>();
        var found = DashboardSchedules.Find(context.RequestServices, out var problem);
        foreach (var schedule in found)
        {
            var last = locks is null ? null : await locks.ReadFenceAsync(ConveyorScheduler.FenceName(schedule.Name), cancellationToken).ConfigureAwait(false);
            rows.Add(new
            {
                name = schedule.Name,
                spec = schedule.Trigger.CronSpec ?? "every " + schedule.Trigger.Interval!.Value.ToString("c", CultureInfo.InvariantCulture),
                timeZone = schedule.Trigger.TimeZone.Id,
                task = Secrets.Mask(schedule.Description),
                kind = schedule.Kind.ToString().ToLowerInvariant(),
                misfire = schedule.Misfire.ToString(),
                enabled = !disabled.Contains(schedule.Name, StringComparer.Ordinal),
                next = schedule.Trigger.GetNextOccurrences(now, 3),
                last = last is { } ms ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : (DateTimeOffset?)null,
            });
        }

        return DashboardJson.Json(new { schedules = rows, problem });
    }

    private static async Task<IResult> Workers(HttpContext context, CancellationToken cancellationToken)
    {
        var workers = await Management(context).ListWorkersAsync(cancellationToken).ConfigureAwait(false);
        return DashboardJson.Json(new
        {
            workers = workers.Select(w => new
            {
                name = w.Name,
                host = w.Host,
                pid = w.ProcessId,
                queues = w.Queues,
                concurrency = w.Concurrency,
                running = w.RunningTasks,
                paused = w.Paused,
                startedAt = w.StartedAt,
                lastHeartbeat = w.LastHeartbeat,
            }),
        });
    }

    // ---- actions ----

    private async Task<IResult> QueueAction(HttpContext context, string queue, string action, CancellationToken cancellationToken)
    {
        var kind = action switch
        {
            "pause" or "resume" => DashboardAction.Pause,
            "purge" => DashboardAction.Delete,
            _ => (DashboardAction?)null,
        };
        if (kind is null)
        {
            return Error(StatusCodes.Status404NotFound, $"no queue action '{action}' (pause, resume, purge)");
        }

        if (await GuardAsync(context, kind.Value, action).ConfigureAwait(false) is { } refused)
        {
            return refused;
        }

        var management = Management(context);
        string result;
        switch (action)
        {
            case "pause":
                await management.PauseQueueAsync(queue, cancellationToken).ConfigureAwait(false);
                result = "paused";
                break;
            case "resume":
                await management.ResumeQueueAsync(queue, cancellationToken).ConfigureAwait(false);
                result = "resumed";
                break;
            default:
                var removed = await management.PurgeQueueAsync(queue, cancellationToken).ConfigureAwait(false);
                result = string.Create(CultureInfo.InvariantCulture, $"purged {removed} task(s)");
                break;
        }

        Ran(context, action, queue, result);
        return DashboardJson.Json(new { message = $"{queue}: {result}" });
    }

    private async Task<IResult> TasksAction(HttpContext context, string action, CancellationToken cancellationToken)
    {
        var kind = action switch
        {
            "retry" => DashboardAction.Retry,
            "delete" => DashboardAction.Delete,
            "revoke" => DashboardAction.Revoke,
            _ => (DashboardAction?)null,
        };
        if (kind is null)
        {
            return Error(StatusCodes.Status404NotFound, $"no task action '{action}' (retry, delete, revoke)");
        }

        if (await GuardAsync(context, kind.Value, action).ConfigureAwait(false) is { } refused)
        {
            return refused;
        }

        var request = await ReadBodyAsync(context, cancellationToken).ConfigureAwait(false);
        if (request is null || request.Ids.Count == 0 || request.Ids.Count > 1000 || request.Ids.Any(string.IsNullOrWhiteSpace))
        {
            return Error(StatusCodes.Status400BadRequest, "the body must be {\"state\": \"…\", \"ids\": [1 to 1000 ids]}");
        }

        var state = ManagedTaskStateNames.Parse(request.State ?? string.Empty);
        var management = Management(context);
        var done = 0;
        var skipped = new List<string>();
        try
        {
            if (kind == DashboardAction.Revoke)
            {
                var revoked = await management.RevokeAsync(request.Ids, "from the dashboard", cancellationToken).ConfigureAwait(false);
                done = revoked.Count;
            }
            else
            {
                foreach (var id in request.Ids)
                {
                    var changed = (kind, state) switch
                    {
                        (DashboardAction.Retry, ManagedTaskState.Scheduled) => await management.RunNowAsync(id, cancellationToken).ConfigureAwait(false),
                        (DashboardAction.Retry, ManagedTaskState.DeadLettered) => await management.RequeueDeadLetterAsync(id, cancellationToken).ConfigureAwait(false),
                        (DashboardAction.Delete, ManagedTaskState.Pending or ManagedTaskState.Scheduled) => await management.DeleteTaskAsync(id, cancellationToken).ConfigureAwait(false),
                        (DashboardAction.Delete, ManagedTaskState.DeadLettered) => await management.DeleteDeadLetterAsync(id, cancellationToken).ConfigureAwait(false),
                        (DashboardAction.Delete, ManagedTaskState.Succeeded or ManagedTaskState.Failed or ManagedTaskState.Revoked) => await DeleteStateAsync(context, id, cancellationToken).ConfigureAwait(false),
                        _ => (bool?)null,
                    };
                    if (changed is null)
                    {
                        return Error(StatusCodes.Status400BadRequest, action == "retry"
                            ? "retry applies to scheduled tasks (run now) and dead letters (requeue); a finished task's message is gone"
                            : "delete applies to pending, scheduled, dead-lettered and finished tasks; revoke a running one");
                    }

                    if (changed.Value)
                    {
                        done++;
                    }
                    else
                    {
                        skipped.Add(id);
                    }
                }
            }
        }
        catch (NotSupportedException ex)
        {
            return Error(StatusCodes.Status409Conflict, ex.Message);
        }

        Ran(context, action, string.Join(' ', request.Ids.Take(10)), string.Create(CultureInfo.InvariantCulture, $"{done} changed, {skipped.Count} not found"));
        return DashboardJson.Json(new { message = string.Create(CultureInfo.InvariantCulture, $"{action}: {done} changed{(skipped.Count > 0 ? $", {skipped.Count} not found (already gone)" : string.Empty)}"), done, skipped });
    }

    private Task<IResult> DeadLettersAction(HttpContext context, string action, CancellationToken cancellationToken)
    {
        var mapped = action switch
        {
            "requeue" => "retry",
            "delete" => "delete",
            _ => null,
        };
        if (mapped is null)
        {
            return Task.FromResult(Error(StatusCodes.Status404NotFound, $"no dead-letter action '{action}' (requeue, delete)"));
        }

        context.Items[DeadLetterStateKey] = true;
        return TasksAction(context, mapped, cancellationToken);
    }

    private static readonly object DeadLetterStateKey = new();

    private async Task<IResult> ScheduleAction(HttpContext context, string name, string action, CancellationToken cancellationToken)
    {
        var kind = action switch
        {
            "trigger" => DashboardAction.Retry,
            "enable" or "disable" => DashboardAction.Pause,
            _ => (DashboardAction?)null,
        };
        if (kind is null)
        {
            return Error(StatusCodes.Status404NotFound, $"no schedule action '{action}' (trigger, enable, disable)");
        }

        if (await GuardAsync(context, kind.Value, action).ConfigureAwait(false) is { } refused)
        {
            return refused;
        }

        var schedule = DashboardSchedules.Find(context.RequestServices, out _).FirstOrDefault(s => s.Name == name);
        if (schedule is null)
        {
            return Error(StatusCodes.Status404NotFound, $"no schedule named '{name}'");
        }

        var management = Management(context);
        string result;
        try
        {
            if (action == "trigger")
            {
                var client = context.RequestServices.GetRequiredService<ConveyorClient>();
                var id = await schedule.TriggerNowAsync(client, cancellationToken).ConfigureAwait(false);
                result = "published " + id;
            }
            else
            {
                await management.SetScheduleEnabledAsync(name, action == "enable", cancellationToken).ConfigureAwait(false);
                result = action + "d";
            }
        }
        catch (NotSupportedException ex)
        {
            return Error(StatusCodes.Status409Conflict, ex.Message);
        }

        Ran(context, action, name, result);
        return DashboardJson.Json(new { message = $"{name}: {result}" });
    }

    private static async Task<bool> DeleteStateAsync(HttpContext context, string id, CancellationToken cancellationToken)
    {
        var backend = context.RequestServices.GetRequiredService<IResultBackend>();
        if (await backend.GetStateAsync(id, cancellationToken).ConfigureAwait(false) is not { IsCompleted: true })
        {
            return false;
        }

        await backend.DeleteStateAsync(id, cancellationToken).ConfigureAwait(false);
        return true;
    }

    /// <summary>Read-only mode, then the action's policy, then the antiforgery token: the first that fails answers.</summary>
    private async Task<IResult?> GuardAsync(HttpContext context, DashboardAction action, string name)
    {
        var logger = Logger(context);
        var user = UserName(context);
        if (IsReadOnly(context))
        {
            DashboardLog.ActionRefused(logger, name, user, "read-only");
            return Error(StatusCodes.Status403Forbidden, "this dashboard is read-only for you");
        }

        if (!await IsAllowedAsync(context, action).ConfigureAwait(false))
        {
            DashboardLog.ActionRefused(logger, name, user, "policy " + options.PolicyFor(action));
            return Error(StatusCodes.Status403Forbidden, $"{action.ToString().ToLowerInvariant()} needs the policy '{options.PolicyFor(action)}'");
        }

        try
        {
            await context.RequestServices.GetRequiredService<IAntiforgery>().ValidateRequestAsync(context).ConfigureAwait(false);
        }
        catch (AntiforgeryValidationException)
        {
            DashboardLog.ActionRefused(logger, name, user, "antiforgery token missing or invalid");
            return Error(StatusCodes.Status400BadRequest, "the antiforgery token is missing or invalid: reload the page");
        }

        return null;
    }

    private bool IsReadOnly(HttpContext context) => options.IsReadOnly?.Invoke(context) == true;

    private async Task<bool> IsAllowedAsync(HttpContext context, DashboardAction action)
    {
        if (options.PolicyFor(action) is not { } policy)
        {
            return true;
        }

        var authorization = context.RequestServices.GetRequiredService<IAuthorizationService>();
        return (await authorization.AuthorizeAsync(context.User, policy).ConfigureAwait(false)).Succeeded;
    }

    private static async Task<ActionRequest?> ReadBodyAsync(HttpContext context, CancellationToken cancellationToken)
    {
        try
        {
            var request = await context.Request.ReadFromJsonAsync<ActionRequest>(DashboardJson.Options, cancellationToken).ConfigureAwait(false);
            if (request is not null && context.Items.ContainsKey(DeadLetterStateKey))
            {
                request = request with { State = "dead" };
            }

            return request;
        }
        catch (Exception ex) when (ex is System.Text.Json.JsonException or InvalidOperationException or BadHttpRequestException)
        {
            return null;
        }
    }

    private static void Ran(HttpContext context, string action, string target, string result) =>
        DashboardLog.ActionRan(Logger(context), UserName(context), action, target, result);

    private static ILogger Logger(HttpContext context) => context.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger("Conveyor.Dashboard");

    private static string UserName(HttpContext context) => context.User.Identity?.Name ?? context.Connection.RemoteIpAddress?.ToString() ?? "anonymous";

    private static IResult Error(int status, string message) => DashboardJson.Json(new { error = message }, status);

    internal static bool IsMessageState(string state) => MessageStates.Contains(state, StringComparer.Ordinal);

    private sealed record ActionRequest
    {
        [JsonPropertyName("state")]
        public string? State { get; init; }

        [JsonPropertyName("ids")]
        public IReadOnlyList<string> Ids { get; init; } = [];
    }
}

/// <summary>The schedules the dashboard shows: the running scheduler's, else the configuration's (<c>Conveyor:Schedules</c>), as the CLI reads them.</summary>
internal static class DashboardSchedules
{
    public static IReadOnlyList<PeriodicSchedule> Find(IServiceProvider services, out string? problem)
    {
        problem = null;
        if (services.GetService<ConveyorScheduler>() is { } scheduler)
        {
            return scheduler.Schedules;
        }

        if (services.GetService<IConfiguration>() is not { } configuration)
        {
            return [];
        }

        var schedules = new List<PeriodicSchedule>();
        foreach (var child in configuration.GetSection(ConveyorOptions.SectionName + ":Schedules").GetChildren())
        {
            try
            {
                if (PeriodicSchedule.FromOptions(child.Key, child.Get<ScheduleOptions>() ?? new ScheduleOptions(), child.Path) is { } schedule)
                {
                    schedules.Add(schedule);
                }
            }
            catch (Exception ex) when (ex is ArgumentException or InvalidOperationException)
            {
                problem = Secrets.Mask(ex.Message);
            }
        }

        return [.. schedules.OrderBy(s => s.Name, StringComparer.Ordinal)];
    }
}
