using System.Text.RegularExpressions;

namespace Conveyor.Dashboard.Internal;

/// <summary>
/// Masks what looks like a secret in text the dashboard shows (errors, reasons, arguments, URLs): the password of
/// every URL (<see cref="ConveyorUrls.Redact"/>) and the value of <c>password=</c>, <c>pwd=</c>, <c>token=</c>,
/// <c>secret=</c>, <c>apikey=</c> pairs as in connection strings and query strings.
/// </summary>
internal static partial class Secrets
{
    public static string Mask(string? text)
    {
        if (string.IsNullOrEmpty(text))
        {
            return string.Empty;
        }

        var masked = text.Contains("://", StringComparison.Ordinal) ? MaskUrls(text) : text;
        return SecretPair().Replace(masked, m => m.Groups["key"].Value + m.Groups["sep"].Value + "***");
    }

    // Each URL in the text on its own (Redact handles one URL or a comma-separated list, not free text).
    private static string MaskUrls(string text) => Url().Replace(text, m => ConveyorUrls.Redact(m.Value));

    [GeneratedRegex(@"[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s""'<>]+")]
    private static partial Regex Url();

    [GeneratedRegex(@"(?<key>\b(?:password|passwd|pwd|token|secret|api[_-]?key|access[_-]?key)\b)(?<sep>\s*[=:]\s*)(?<value>""[^""]*""|'[^']*'|[^;&\s,]+)", RegexOptions.IgnoreCase)]
    private static partial Regex SecretPair();
}
