using System.Security.Cryptography;
using Conveyor.Serialization;

namespace Conveyor;

/// <summary>How long a unique task's key keeps duplicates out (Asynq's <c>Unique(ttl)</c>, BullMQ's deduplication modes).</summary>
public enum UniqueMode
{
    /// <summary>Until the first task reaches a final state (SUCCESS or FAILURE; a retry keeps the key), or <see cref="UniqueOptions.Ttl"/> at most.</summary>
    UntilFinished,

    /// <summary>For <see cref="UniqueOptions.Ttl"/> from the first publish, whatever the task does (a throttle).</summary>
    Throttle,

    /// <summary>
    /// A duplicate replaces the pending task's arguments (and ETA): the pending message is deleted and the new one
    /// published under the same task id, so every caller's result is the one that runs. Once the task has left
    /// the queue (running), a duplicate is a new task that takes the key.
    /// </summary>
    Debounce,
}

/// <summary>What a duplicate publish gets.</summary>
public enum DuplicateBehavior
{
    /// <summary>The existing task's <see cref="AsyncResult"/>.</summary>
    ReturnExisting,

    /// <summary>A <see cref="DuplicateTaskException"/>.</summary>
    Throw,
}

/// <summary>How a task is made unique.</summary>
public sealed record UniqueOptions
{
    /// <summary>The unique key; <see langword="null"/> for the task's name and a hash of its arguments.</summary>
    public string? Key { get; init; }

    /// <summary>How long the key holds. The default value is <see cref="UniqueMode.UntilFinished"/>.</summary>
    public UniqueMode Mode { get; init; } = UniqueMode.UntilFinished;

    /// <summary>The key's lifetime: the throttle window, and the upper bound of the other modes (so a lost worker never holds a key for ever). The default value is 1 hour.</summary>
    public TimeSpan Ttl { get; init; } = TimeSpan.FromHours(1);

    /// <summary>What a duplicate gets. The default value is <see cref="DuplicateBehavior.ReturnExisting"/>.</summary>
    public DuplicateBehavior OnDuplicate { get; init; } = DuplicateBehavior.ReturnExisting;

    /// <summary>The default key of a signature: <c>unique:</c>, its name, and the SHA-256 of its arguments' machinery JSON.</summary>
    /// <param name="signature">The signature.</param>
    /// <returns>The key.</returns>
    public static string DefaultKey(Signature signature)
    {
        ArgumentNullException.ThrowIfNull(signature);
        var bare = new Signature { Name = signature.Name };
        foreach (var argument in signature.Args)
        {
            bare.Args.Add(argument);
        }

        return "unique:" + signature.Name + ":" + Convert.ToHexStringLower(SHA256.HashData(WireFormat.SerializeSignature(bare)));
    }
}

/// <summary>A unique task was published again while its key holds (<see cref="DuplicateBehavior.Throw"/>).</summary>
public sealed class DuplicateTaskException : InvalidOperationException
{
    /// <summary>Creates the exception.</summary>
    public DuplicateTaskException()
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">The message.</param>
    public DuplicateTaskException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public DuplicateTaskException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception for a key and the task that holds it.</summary>
    /// <param name="key">The unique key.</param>
    /// <param name="existingTaskId">The task that holds it.</param>
    public DuplicateTaskException(string key, string existingTaskId)
        : base($"A task with unique key {key} is already queued or running: {existingTaskId}.")
    {
        Key = key;
        ExistingTaskId = existingTaskId;
    }

    /// <summary>The unique key.</summary>
    public string Key { get; } = string.Empty;

    /// <summary>The task that holds the key.</summary>
    public string ExistingTaskId { get; } = string.Empty;
}

/// <summary>Publishing unique tasks.</summary>
public static class UniqueTaskExtensions
{
    /// <summary>The header that names a task's unique key when the worker releases it at the final state (<see cref="UniqueMode.UntilFinished"/>).</summary>
    public const string UniqueKeyHeader = "conveyor-unique-key";

    /// <summary>
    /// Publishes a task unless one with the same unique key holds it: the key is claimed atomically in the
    /// management store (SET NX on Redis, one write transaction on SQLite), so of many concurrent publishers
    /// exactly one publishes.
    /// </summary>
    /// <param name="client">The client.</param>
    /// <param name="store">The management store that holds the keys (the one the workers use).</param>
    /// <param name="signature">The task.</param>
    /// <param name="options">Key, mode, TTL and what a duplicate gets; the defaults when <see langword="null"/>.</param>
    /// <param name="cancellationToken">Cancels the call.</param>
    /// <returns>The task's result: this one's, or the existing one's for a duplicate.</returns>
    /// <exception cref="DuplicateTaskException">A duplicate, with <see cref="DuplicateBehavior.Throw"/>.</exception>
    public static async ValueTask<AsyncResult> SendUniqueAsync(this ConveyorClient client, IManagementStore store, Signature signature, UniqueOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(signature);
        options ??= new UniqueOptions();
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(options.Ttl, TimeSpan.Zero, nameof(options));
        if (signature.Id.Length == 0)
        {
            signature.Id = TaskIds.NewTaskId();
        }

        var key = options.Key ?? UniqueOptions.DefaultKey(signature);
        if (options.Mode == UniqueMode.UntilFinished)
        {
            signature.Headers[UniqueKeyHeader] = key;
        }

        var holder = await store.ClaimUniqueAsync(key, signature.Id, options.Ttl, cancellationToken).ConfigureAwait(false);
        if (holder is null)
        {
            try
            {
                return await client.SendAsync(signature, cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                // Not published: the key must not keep the next publisher out.
                await store.ReleaseUniqueAsync(key, signature.Id, CancellationToken.None).ConfigureAwait(false);
                throw;
            }
        }

        if (options.Mode == UniqueMode.Debounce)
        {
            // Replace the pending one: only a message that is still deleted here is replaced, so it never runs twice.
            if (await store.DeleteMessagesAsync(holder, cancellationToken).ConfigureAwait(false) > 0)
            {
                signature.Id = holder;
                return await client.SendAsync(signature, cancellationToken).ConfigureAwait(false);
            }

            // It runs already: this one is a new task, and takes the key.
            await store.ReleaseUniqueAsync(key, holder, cancellationToken).ConfigureAwait(false);
            return await client.SendUniqueAsync(store, signature, options, cancellationToken).ConfigureAwait(false);
        }

        if (options.OnDuplicate == DuplicateBehavior.Throw)
        {
            throw new DuplicateTaskException(key, holder);
        }

        return new AsyncResult(new Signature { Id = holder, Name = signature.Name, RoutingKey = signature.RoutingKey }, client);
    }
}
