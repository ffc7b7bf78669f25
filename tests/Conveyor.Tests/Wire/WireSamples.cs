using System.Text;
using System.Text.RegularExpressions;
using Conveyor.Serialization;

namespace Conveyor.Tests.Wire;

/// <summary>
/// Finds the machinery samples in <c>shared/wire</c> (captured from real Go machinery) and gives them to the tests.
/// </summary>
/// <remarks>
/// The samples are not copied into the repository: they live in <c>shared/wire</c> beside the clone (at
/// <c>/work/shared</c> next to <c>/work/main</c>, and as a copy beside CI's fresh clone), so the locator walks up from
/// the test binary and looks for <c>shared/wire/README.md</c> at every level. <c>CONVEYOR_WIRE_SAMPLES</c> overrides
/// the search. A missing folder fails every sample test with <see cref="NotFoundMessage"/>: a silent skip would let a
/// broken checkout pass.
/// </remarks>
internal static partial class WireSamples
{
    public const string EnvironmentVariable = "CONVEYOR_WIRE_SAMPLES";

    /// <summary>The placeholder theory row used when the folder is missing, so the theory fails instead of vanishing.</summary>
    public const string Missing = "<samples not found>";

    private static readonly Lazy<string?> Root = new(Locate);

    public static string NotFoundMessage =>
        $"The machinery wire samples were not found: no directory above {AppContext.BaseDirectory} contains shared/wire/README.md, " +
        $"and {EnvironmentVariable} is {(Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } value ? $"'{value}', which has no README.md" : "not set")}. " +
        $"Put the shared/ folder beside the repository or set {EnvironmentVariable} to the wire folder (the one with redis/ and amqp/).";

    /// <summary>The wire folder (with <c>README.md</c>, <c>redis/</c> and <c>amqp/</c>), or <see langword="null"/>.</summary>
    public static string? Folder => Root.Value;

    public static string RequireDirectory() => Root.Value ?? throw new InvalidOperationException(NotFoundMessage);

    private static string? Locate()
    {
        if (Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } configured)
        {
            // An explicit setting that is wrong must not fall back to a search that could find other samples.
            return File.Exists(Path.Combine(configured, "README.md")) ? Path.GetFullPath(configured) : null;
        }

        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            var candidate = Path.Combine(directory.FullName, "shared", "wire");
            if (File.Exists(Path.Combine(candidate, "README.md")))
            {
                return candidate;
            }
        }

        return null;
    }

    /// <summary>Every <c>*.raw.json</c>, as a path relative to the wire folder with forward slashes (<c>redis/state_RETRY_fail.raw.json</c>).</summary>
    public static IReadOnlyList<string> RawJsonFiles() => Enumerate("*.raw.json");

    /// <summary>Every AMQP <c>*.delivery.json</c>.</summary>
    public static IReadOnlyList<string> DeliveryFiles() => Enumerate("*.delivery.json");

    private static List<string> Enumerate(string pattern)
    {
        if (Folder is not { } root)
        {
            return [];
        }

        return Directory.EnumerateFiles(root, pattern, SearchOption.AllDirectories)
            .Select(path => Path.GetRelativePath(root, path).Replace('\\', '/'))
            .Order(StringComparer.Ordinal)
            .ToList();
    }

    /// <summary>Theory rows for <paramref name="files"/>, or a single <see cref="Missing"/> row that fails the theory.</summary>
    public static TheoryData<string> AsTheoryData(IReadOnlyList<string> files)
    {
        var data = new TheoryData<string>();
        if (files.Count == 0)
        {
            data.Add(Missing);
            return data;
        }

        foreach (var file in files)
        {
            data.Add(file);
        }

        return data;
    }

    /// <summary>The exact bytes of a sample, without a trailing newline if an editor or a capture tool added one.</summary>
    public static byte[] ReadBytes(string relativePath)
    {
        if (relativePath == Missing)
        {
            Assert.Fail(NotFoundMessage);
        }

        var bytes = File.ReadAllBytes(Path.Combine(RequireDirectory(), relativePath));
        var length = bytes.Length;
        while (length > 0 && bytes[length - 1] is (byte)'\n' or (byte)'\r')
        {
            length--;
        }

        return length == bytes.Length ? bytes : bytes[..length];
    }

    public static string ReadText(string relativePath) => Encoding.UTF8.GetString(ReadBytes(relativePath));

    public enum Kind
    {
        Signature,
        State,
        GroupMeta,
    }

    /// <summary>What a sample holds, from its file name (the naming of <c>shared/wire/README.md</c>).</summary>
    public static Kind KindOf(string relativePath)
    {
        var name = Path.GetFileName(relativePath);
        if (name.StartsWith("broker_", StringComparison.Ordinal) || name.StartsWith("delayed_tasks_member_", StringComparison.Ordinal) ||
            (name.StartsWith("amqp_", StringComparison.Ordinal) && name.EndsWith(".body.raw.json", StringComparison.Ordinal)))
        {
            return Kind.Signature;
        }

        if (name.StartsWith("state_", StringComparison.Ordinal))
        {
            return Kind.State;
        }

        if (name.StartsWith("groupmeta_", StringComparison.Ordinal))
        {
            return Kind.GroupMeta;
        }

        throw new InvalidOperationException($"Unknown kind of sample '{relativePath}': name it broker_*, delayed_tasks_member_*, amqp_*.body, state_* or groupmeta_*, or teach WireSamples.KindOf about it.");
    }

    /// <summary>
    /// Rewrites every Go timestamp (<c>"…T…:…:….123456789Z"</c>) to what .NET's 100 ns ticks keep: the fraction truncated
    /// to seven digits, then trailing zeros (and a bare dot) trimmed, as Go's <c>time.RFC3339Nano</c> formats.
    /// </summary>
    public static string NormalizeTimestamps(string json) => Timestamp().Replace(json, match =>
    {
        var fraction = match.Groups["fraction"].Value;
        if (fraction.Length > 7)
        {
            fraction = fraction[..7];
        }

        fraction = fraction.TrimEnd('0');
        return $"\"{match.Groups["seconds"].Value}{(fraction.Length == 0 ? string.Empty : "." + fraction)}Z\"";
    });

    /// <summary>Tells whether the JSON holds a timestamp with more fractional digits than .NET keeps.</summary>
    public static bool HasSubTickTimestamps(string json) => Timestamp().Matches(json).Any(m => m.Groups["fraction"].Value.Length > 7);

    [GeneratedRegex("\"(?<seconds>\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2})(?:\\.(?<fraction>\\d+))?Z\"", RegexOptions.CultureInvariant)]
    private static partial Regex Timestamp();

    /// <summary>Serializes a sample by its kind.</summary>
    public static byte[] Reserialize(Kind kind, ReadOnlySpan<byte> json) => kind switch
    {
        Kind.Signature => WireFormat.SerializeSignature(WireFormat.DeserializeSignature(json)),
        Kind.State => WireFormat.SerializeState(WireFormat.DeserializeState(json)),
        Kind.GroupMeta => WireFormat.SerializeGroupMeta(WireFormat.DeserializeGroupMeta(json)),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };
}
