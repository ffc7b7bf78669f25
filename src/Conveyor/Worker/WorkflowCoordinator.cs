using System.Diagnostics;
using System.Globalization;
using Conveyor.Diagnostics;
using Microsoft.Extensions.Logging;

namespace Conveyor;

/// <summary>
/// What follows a task's outcome: success and error callbacks, chains, chord completion and its callback, retries
/// and requeues of unregistered tasks. Everything it publishes goes through the client's one publish path (PENDING
/// state, then the message), as machinery's worker does.
/// </summary>
internal sealed class WorkflowCoordinator(ConveyorClient client, WorkerOptions options, ILogger logger)
{
    private readonly TimeProvider _time = client.TimeProvider;

    /// <summary>Whether a successful task has anything to do after its SUCCESS state (else it settles in the batch).</summary>
    public static bool HasSuccessWork(Signature signature) =>
        signature.OnSuccessOrNull is { Count: > 0 } || (signature.ChordCallback is not null && signature.GroupId.Length > 0);

    /// <summary>Whether a failed task has anything to do after its FAILURE state.</summary>
    public static bool HasFailureWork(Signature signature) =>
        signature.OnErrorOrNull is { Count: > 0 } || (signature.ChordCallback is not null && signature.GroupId.Length > 0);

    /// <summary>Publishes the success callbacks (with the results unless immutable) and completes the chord member.</summary>
    public async Task OnSucceededAsync(Signature signature, IReadOnlyList<TaskResult> results, Activity? activity)
    {
        if (signature.OnSuccessOrNull is { Count: > 0 } callbacks)
        {
            foreach (var callback in callbacks)
            {
                // machinery looks at the parent's Immutable; Celery at the callback's. Either one keeps results out.
                if (!signature.Immutable && !callback.Immutable)
                {
                    foreach (var result in results)
                    {
                        callback.Args.Add(result.ToArgument());
                    }
                }

                await client.PublishAsync(callback, CancellationToken.None).ConfigureAwait(false);
            }
        }

        if (signature.ChordCallback is not null && signature.GroupId.Length > 0)
        {
            await CompleteChordMemberAsync(signature, succeeded: true, error: null, activity).ConfigureAwait(false);
        }
    }

    /// <summary>Publishes the error callbacks and completes the chord member as failed.</summary>
    public async Task OnFailedAsync(Signature signature, string error, Activity? activity)
    {
        if (signature.OnErrorOrNull is { Count: > 0 } errorCallbacks)
        {
            await PublishErrorCallbacksAsync(errorCallbacks, error).ConfigureAwait(false);
        }

        if (signature.ChordCallback is not null && signature.GroupId.Length > 0)
        {
            await CompleteChordMemberAsync(signature, succeeded: false, error: error, activity).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Prepares and publishes a retry as machinery does (a new publish, state PENDING again, with an ETA), the
    /// attempt header counting up.
    /// </summary>
    public async Task<TimeSpan> RetryAsync(Signature signature, int attempt, Exception error)
    {
        var delay = error is RetryTaskLaterException later ? later.Delay : options.RetryPolicy.NextDelay(signature, attempt);
        signature.RetryCount--;
        signature.Eta = _time.GetUtcNow() + delay;
        // A string: Go workers decode headers as json.Number, which their AMQP tables cannot carry.
        signature.Headers[ConveyorWorker.AttemptHeader] = (attempt + 1).ToString(CultureInfo.InvariantCulture);
        await client.PublishAsync(signature, CancellationToken.None).ConfigureAwait(false);
        return delay;
    }

    /// <summary>Publishes an unregistered task again after <see cref="WorkerOptions.UnregisteredRequeueDelay"/>.</summary>
    public async Task RequeueUnregisteredAsync(Signature signature)
    {
        var delay = options.UnregisteredRequeueDelay;
        signature.Eta = _time.GetUtcNow() + delay;
        await client.PublishAsync(signature, CancellationToken.None).ConfigureAwait(false);
        Log.UnregisteredRequeued(logger, signature.Name, signature.Id, delay);
    }

    // machinery prepends the error message as a string argument.
    private async Task PublishErrorCallbacksAsync(IEnumerable<Signature> callbacks, string error)
    {
        foreach (var callback in callbacks)
        {
            callback.Args.Insert(0, TaskArgument.String(error));
            await client.PublishAsync(callback, CancellationToken.None).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// One atomic backend call per member (idempotent per member id) says whether every member is final, counting
    /// the members that Go machinery workers ran (they write states only). The member that finds the group
    /// complete claims the callback the way machinery's worker does (<see cref="IResultBackend.ClaimChordAsync"/>:
    /// <c>ChordTriggered</c> set under machinery's <c>TriggerChordMutex</c>, before publishing), so the callback
    /// is published once whichever side runs each member; a claimant that dies before publishing publishes on its
    /// redelivery. The winner reads the members' results once, in member order. A member that fails claims the
    /// chord at once, and the winner runs the callback's OnError tasks, once; a failure found among the members that
    /// Go workers ran does the same at completion. Each member stores its process span's context with its
    /// completion, and the callback carries links to them (at most <see cref="WorkerOptions.MaxChordCallbackLinks"/>).
    /// </summary>
    private async Task CompleteChordMemberAsync(Signature signature, bool succeeded, string? error, Activity? activity)
    {
        var backend = client.Backend;
        var traceParent = options.MaxChordCallbackLinks > 0 ? ConveyorDiagnostics.TraceParentOf(activity) : null;
        var completion = await backend.CompleteGroupMemberAsync(signature.GroupId, signature.Id, succeeded, traceParent).ConfigureAwait(false);
        var callback = signature.ChordCallback!;
        if (!succeeded)
        {
            // machinery never triggers a chord from a failed member; Conveyor claims it, so that no callback runs
            // with a member missing, and runs the callback's error callbacks once.
            if (!(completion.ChordTriggered && completion.IsFirstCompletion)
                && await backend.ClaimChordAsync(signature.GroupId, signature.Id).ConfigureAwait(false) != ChordClaim.Lost)
            {
                await PublishChordErrorAsync(signature.GroupId, callback, $"chord member {signature.Name} {signature.Id} failed: {error}").ConfigureAwait(false);
            }

            return;
        }

        // A chord already claimed by another member needs no claim; a redelivered claimant asks again (Resumed).
        if (completion.Completed < signature.GroupTaskCount || (completion.ChordTriggered && completion.IsFirstCompletion))
        {
            return;
        }

        if (await backend.ClaimChordAsync(signature.GroupId, signature.Id).ConfigureAwait(false) == ChordClaim.Lost)
        {
            return;
        }

        var meta = await backend.GetGroupMetaAsync(signature.GroupId).ConfigureAwait(false)
            ?? throw new InvalidOperationException($"Chord {signature.GroupId} is complete but its group meta is missing (expired?).");
        var states = await backend.GetStatesAsync(meta.TaskIds).ConfigureAwait(false);
        for (var i = 0; i < states.Count; i++)
        {
            var state = states[i];
            if (state is { State: TaskState.Failure })
            {
                // A member that a Go worker ran failed: machinery would drop the chord here; run OnError instead.
                await PublishChordErrorAsync(signature.GroupId, callback, $"chord member {state.TaskName} {state.TaskId} failed: {state.Error}").ConfigureAwait(false);
                return;
            }

            if (state is not { State: TaskState.Success })
            {
                throw new InvalidOperationException($"Chord {signature.GroupId}: member {meta.TaskIds[i]} is complete but its SUCCESS state is missing (expired?).");
            }
        }

        if (!callback.Immutable)
        {
            foreach (var state in states)
            {
                if (state!.Results is { } memberResults)
                {
                    foreach (var result in memberResults)
                    {
                        callback.Args.Add(result.ToArgument());
                    }
                }
            }
        }

        List<ActivityLink>? links = null;
        if (options.MaxChordCallbackLinks > 0)
        {
            var traceParents = await backend.GetGroupMemberTraceParentsAsync(signature.GroupId, options.MaxChordCallbackLinks).ConfigureAwait(false);
            if (traceParents.Count > 0)
            {
                callback.Headers[ConveyorDiagnostics.LinksHeader] = string.Join(' ', traceParents);
                links = ConveyorDiagnostics.ReadLinks(callback);
            }
        }

        await client.PublishAsync(callback, CancellationToken.None, links).ConfigureAwait(false);
        await backend.MarkChordTriggeredAsync(signature.GroupId).ConfigureAwait(false);
        Log.ChordTriggered(logger, signature.GroupId, callback.Name, callback.Id);
    }

    /// <summary>Runs a claimed chord's error callbacks (the callback itself never runs), then ends the claim.</summary>
    private async Task PublishChordErrorAsync(string groupId, Signature callback, string error)
    {
        if (callback.OnErrorOrNull is { Count: > 0 } errorCallbacks)
        {
            await PublishErrorCallbacksAsync(errorCallbacks, error).ConfigureAwait(false);
        }

        await client.Backend.MarkChordTriggeredAsync(groupId).ConfigureAwait(false);
    }
}
