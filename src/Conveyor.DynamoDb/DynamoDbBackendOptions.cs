using System.ComponentModel.DataAnnotations;
using Amazon.DynamoDBv2;
using Amazon.Runtime;

namespace Conveyor.DynamoDb;

/// <summary>
/// Settings of the DynamoDB result backend. Its two tables are Go machinery's: task states keyed by <c>TaskUUID</c>
/// and group metas keyed by <c>GroupUUID</c> (machinery's <c>DynamoDBConfig.TaskStatesTable</c> and
/// <c>GroupMetasTable</c>).
/// </summary>
/// <remarks>
/// Credentials and the region come from the AWS SDK's usual chain unless <see cref="Credentials"/> or
/// <see cref="Region"/> are set; <see cref="ServiceUrl"/> points the client at a local emulator.
/// </remarks>
public sealed class DynamoDbBackendOptions
{
    /// <summary>The AWS region; <see langword="null"/> takes the SDK's chain (<c>AWS_REGION</c>, the profile).</summary>
    /// <value>The default value is <see langword="null"/>.</value>
    public string? Region { get; set; }

    /// <summary>An endpoint override (<c>http://127.0.0.1:8000</c> for a local emulator); <see langword="null"/> for AWS's own endpoint.</summary>
    /// <value>The default value is <see langword="null"/>.</value>
    public Uri? ServiceUrl { get; set; }

    /// <summary>Credentials to sign with; <see langword="null"/> takes the SDK's default chain.</summary>
    /// <value>The default value is <see langword="null"/>.</value>
    public AWSCredentials? Credentials { get; set; }

    /// <summary>A client to use instead of one built from these settings; the backend does not dispose it.</summary>
    /// <value>The default value is <see langword="null"/>.</value>
    public IAmazonDynamoDB? Client { get; set; }

    /// <summary>The task states table (hash key <c>TaskUUID</c>, a string).</summary>
    /// <value>The default value is <c>task_states</c>, machinery's.</value>
    [Required]
    public string StatesTable { get; set; } = "task_states";

    /// <summary>The group metas table (hash key <c>GroupUUID</c>, a string).</summary>
    /// <value>The default value is <c>group_metas</c>, machinery's.</value>
    [Required]
    public string GroupsTable { get; set; } = "group_metas";

    /// <summary>
    /// How long states and group metas live: every write sets machinery's <c>TTL</c> attribute (Unix seconds) to now
    /// plus this, and DynamoDB's time to live on that attribute deletes them (typically within a day or two of it).
    /// </summary>
    /// <value>The default value is 1 hour, machinery's <c>ResultsExpireIn</c> default.</value>
    [Range(typeof(TimeSpan), "00:00:01", "3650.00:00:00")]
    public TimeSpan ResultTtl { get; set; } = TimeSpan.FromHours(1);

    /// <summary>
    /// Whether missing tables are created (on demand capacity) with time to live on <c>TTL</c>. Off, both tables must
    /// exist, as machinery expects.
    /// </summary>
    /// <value>The default value is <see langword="true"/>.</value>
    public bool CreateTables { get; set; } = true;

    /// <summary>Checks the settings.</summary>
    /// <exception cref="ArgumentException">A setting is out of range.</exception>
    internal void Validate()
    {
        if (!IsTableName(StatesTable) || !IsTableName(GroupsTable))
        {
            throw new ArgumentException("StatesTable and GroupsTable must be DynamoDB table names: 3 to 255 letters, digits, '_', '-' or '.'.");
        }

        if (StatesTable == GroupsTable)
        {
            throw new ArgumentException("StatesTable and GroupsTable must be two different tables (their keys differ: TaskUUID, GroupUUID).");
        }

        if (ResultTtl < TimeSpan.FromSeconds(1))
        {
            throw new ArgumentException($"ResultTtl must be at least 1 second; it is {ResultTtl}.");
        }
    }

    internal static bool IsTableName(string? name) =>
        name is { Length: >= 3 and <= 255 } && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.');
}
