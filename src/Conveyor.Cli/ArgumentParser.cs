using System.Globalization;

namespace Conveyor.Cli;

/// <summary>
/// Parses command-line task arguments written <c>TYPE:VALUE</c> (the parser is the core's
/// <see cref="TaskArgument.Parse"/>, shared with configuration) and formats results for people.
/// </summary>
internal static class ArgumentParser
{
    public static TaskArgument Parse(string text)
    {
        try
        {
            return TaskArgument.Parse(text);
        }
        catch (FormatException ex)
        {
            throw new CliException(ex.Message, ex);
        }
    }

    /// <summary>Formats a value for people: arrays as <c>[a b c]</c>, like Go's fmt.</summary>
    public static string Format(object? value) => value switch
    {
        null => "null",
        string s => s,
        byte[] bytes => Convert.ToBase64String(bytes),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        System.Collections.IEnumerable items => "[" + string.Join(" ", items.Cast<object?>().Select(Format)) + "]",
        _ => value.ToString() ?? string.Empty,
    };
}
