using System.ComponentModel.DataAnnotations;

namespace Conveyor;

/// <summary>Settings of the publishing client.</summary>
public sealed class ConveyorClientOptions
{
    /// <summary>The queue for signatures without a routing key. The default value is <c>machinery_tasks</c>, machinery's default.</summary>
    [Required]
    public string DefaultQueue { get; set; } = "machinery_tasks";

    /// <summary>
    /// The longest a result waiter sleeps between two reads when the backend does not push changes.
    /// The default value is 100 milliseconds; waits start at 1 ms and double up to this.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.001", "00:01:00")]
    public TimeSpan MaxResultPollInterval { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// How many group members are published at once; 0 publishes them all concurrently. The default value is 0.
    /// </summary>
    [Range(0, int.MaxValue)]
    public int GroupSendConcurrency { get; set; }

    /// <summary>Runs before every publish (machinery's pre-publish handler); it may change the signature.</summary>
    public Func<Signature, CancellationToken, ValueTask>? BeforePublish { get; set; }
}
