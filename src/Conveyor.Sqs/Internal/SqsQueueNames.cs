using System.Security.Cryptography;
using System.Text;

namespace Conveyor.Sqs.Internal;

/// <summary>
/// Maps Conveyor queue names (machinery routing keys) to SQS queue names. A name SQS accepts (1–80 letters, digits,
/// <c>-</c> and <c>_</c>, plus <c>.fifo</c> for a FIFO queue) is used as it is, as machinery does; any other name has
/// its other characters replaced by <c>_</c> and, when too long, is cut and given a hash of the whole name, so two
/// different names never share a queue.
/// </summary>
internal static class SqsQueueNames
{
    public const int MaxLength = 80;
    public const string FifoSuffix = ".fifo";
    public const string DeadLetterSuffix = "-dead-letters";

    public static bool IsFifo(string queue) => queue.EndsWith(FifoSuffix, StringComparison.Ordinal);

    public static string ToSqsName(string queue)
    {
        ArgumentException.ThrowIfNullOrEmpty(queue);
        var fifo = IsFifo(queue);
        var stem = fifo ? queue[..^FifoSuffix.Length] : queue;
        var suffix = fifo ? FifoSuffix : string.Empty;
        if (stem.Length > 0 && stem.Length + suffix.Length <= MaxLength && stem.All(IsAllowed))
        {
            return queue;
        }

        return Shorten(new string([.. stem.Select(c => IsAllowed(c) ? c : '_')]), suffix, queue);
    }

    /// <summary>The dead-letter queue of an SQS queue (a FIFO queue's must be FIFO too).</summary>
    public static string DeadLetterQueueOf(string sqsName)
    {
        var fifo = IsFifo(sqsName);
        var stem = fifo ? sqsName[..^FifoSuffix.Length] : sqsName;
        var suffix = DeadLetterSuffix + (fifo ? FifoSuffix : string.Empty);
        return stem.Length + suffix.Length <= MaxLength ? stem + suffix : Shorten(stem, suffix, sqsName);
    }

    public static bool IsDeadLetterQueue(string sqsName) =>
        sqsName.EndsWith(DeadLetterSuffix, StringComparison.Ordinal) || sqsName.EndsWith(DeadLetterSuffix + FifoSuffix, StringComparison.Ordinal);

    private static string Shorten(string stem, string suffix, string whole)
    {
        var hash = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(whole)))[..16];
        var room = MaxLength - suffix.Length - hash.Length - 1;
        return (stem.Length > room ? stem[..room] : stem) + "-" + hash + suffix;
    }

    private static bool IsAllowed(char c) => char.IsAsciiLetterOrDigit(c) || c is '-' or '_';
}
