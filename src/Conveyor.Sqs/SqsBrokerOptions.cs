using System.ComponentModel.DataAnnotations;
using Amazon.Runtime;
using Amazon.SQS;

namespace Conveyor.Sqs;

/// <summary>
/// Settings of the SQS broker. Queues follow Go machinery's layout: a routing key names a queue of the account, whose
/// URL is the broker's queue URL prefix plus the name, and a message body is machinery's JSON signature.
/// </summary>
/// <remarks>
/// Credentials and the region come from the AWS SDK's usual chain (environment, shared profile, instance or
/// container role) unless <see cref="Credentials"/> or <see cref="Region"/> are set. <see cref="ServiceUrl"/>
/// points the client at a local emulator.
/// </remarks>
public sealed class SqsBrokerOptions
{
    /// <summary>The AWS region (<c>eu-west-1</c>); <see langword="null"/> takes the SDK's chain (<c>AWS_REGION</c>, the profile).</summary>
    /// <value>The default value is <see langword="null"/>.</value>
    public string? Region { get; set; }

    /// <summary>
    /// The account that owns the queues (12 digits); <see langword="null"/> means the caller's own. Only needed for
    /// queues of another account.
    /// </summary>
    /// <value>The default value is <see langword="null"/>.</value>
    public string? AccountId { get; set; }

    /// <summary>An endpoint override (<c>http://127.0.0.1:4566</c> for a local emulator); <see langword="null"/> for AWS's own endpoint.</summary>
    /// <value>The default value is <see langword="null"/>.</value>
    public Uri? ServiceUrl { get; set; }

    /// <summary>Credentials to sign with; <see langword="null"/> takes the SDK's default chain.</summary>
    /// <value>The default value is <see langword="null"/>.</value>
    public AWSCredentials? Credentials { get; set; }

    /// <summary>
    /// A client to use instead of one built from these settings; the broker does not dispose it.
    /// </summary>
    /// <value>The default value is <see langword="null"/>.</value>
    public IAmazonSQS? Client { get; set; }

    /// <summary>
    /// How long a received message stays invisible to other consumers. A live consumer keeps extending it
    /// (<c>ChangeMessageVisibility</c> every <see cref="HeartbeatInterval"/>) while the task is unsettled, so a long
    /// task is not delivered twice; a dead consumer's messages come back after this long.
    /// </summary>
    /// <value>The default value is 30 seconds (SQS's default).</value>
    [Range(typeof(TimeSpan), "00:00:01", "12:00:00")]
    public TimeSpan VisibilityTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How often a consumer extends the visibility of the messages it holds; <see langword="null"/> means a third of
    /// <see cref="VisibilityTimeout"/>. Must be shorter than it.
    /// </summary>
    /// <value>The default value is <see langword="null"/>.</value>
    [Range(typeof(TimeSpan), "00:00:00.100", "12:00:00")]
    public TimeSpan? HeartbeatInterval { get; set; }

    /// <summary>How long one receive call waits for messages (SQS long polling, at most 20 seconds).</summary>
    /// <value>The default value is 20 seconds.</value>
    [Range(typeof(TimeSpan), "00:00:00", "00:00:20")]
    public TimeSpan WaitTime { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>
    /// Whether the broker creates the queues it publishes to or consumes from (and its dead-letter queues) when they
    /// are missing. Off, every queue must exist (as machinery expects).
    /// </summary>
    /// <value>The default value is <see langword="true"/>.</value>
    public bool CreateQueues { get; set; } = true;

    /// <summary>
    /// When the broker creates a queue: after this many receives without a delete, SQS itself moves a message to
    /// the queue's dead-letter queue (a redrive policy). <see langword="null"/> sets no redrive policy.
    /// </summary>
    /// <value>The default value is <see langword="null"/>.</value>
    [Range(1, 1000)]
    public int? MaxReceiveCount { get; set; }

    /// <summary>The heartbeat interval in effect.</summary>
    internal TimeSpan EffectiveHeartbeatInterval => HeartbeatInterval ?? VisibilityTimeout / 3;

    /// <summary>Checks the settings.</summary>
    /// <exception cref="ArgumentException">A setting is out of range.</exception>
    internal void Validate()
    {
        if (VisibilityTimeout < TimeSpan.FromSeconds(1) || VisibilityTimeout > TimeSpan.FromHours(12))
        {
            throw new ArgumentException($"VisibilityTimeout must be between 1 second and 12 hours (SQS's range); it is {VisibilityTimeout}.");
        }

        if (EffectiveHeartbeatInterval >= VisibilityTimeout || EffectiveHeartbeatInterval <= TimeSpan.Zero)
        {
            throw new ArgumentException($"HeartbeatInterval ({EffectiveHeartbeatInterval}) must be positive and shorter than VisibilityTimeout ({VisibilityTimeout}).");
        }

        if (WaitTime < TimeSpan.Zero || WaitTime > TimeSpan.FromSeconds(20))
        {
            throw new ArgumentException($"WaitTime must be between 0 and 20 seconds (SQS's long-polling range); it is {WaitTime}.");
        }

        if (MaxReceiveCount is < 1 or > 1000)
        {
            throw new ArgumentException($"MaxReceiveCount must be between 1 and 1000; it is {MaxReceiveCount}.");
        }
    }
}
