namespace Conveyor.Conformance;

/// <summary>
/// Go machinery's captured samples in <c>shared/wire</c> beside the repository, for the providers' interop tests:
/// found by walking up from the test binary; <c>CONVEYOR_WIRE_SAMPLES</c> overrides. A missing folder fails the test.
/// </summary>
public static class WireSamples
{
    private static readonly Lazy<string?> Root = new(Locate);

    /// <summary>A sample from the Redis capture, without its trailing newline.</summary>
    /// <param name="file">The file name in <c>shared/wire/redis</c>.</param>
    /// <returns>The text.</returns>
    public static string Redis(string file) => Read("redis", file);

    /// <summary>A sample from the AMQP capture, without its trailing newline.</summary>
    /// <param name="file">The file name in <c>shared/wire/amqp</c>.</param>
    /// <returns>The text.</returns>
    public static string Amqp(string file) => Read("amqp", file);

    private static string Read(string folder, string file)
    {
        var root = Root.Value ?? throw new InvalidOperationException(
            "The machinery wire samples were not found: no directory above the test binary contains shared/wire/README.md, and CONVEYOR_WIRE_SAMPLES does not point to one.");
        return File.ReadAllText(Path.Combine(root, folder, file)).TrimEnd('\n');
    }

    private static string? Locate()
    {
        if (Environment.GetEnvironmentVariable("CONVEYOR_WIRE_SAMPLES") is { Length: > 0 } configured)
        {
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
}
