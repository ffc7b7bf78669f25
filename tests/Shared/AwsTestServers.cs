using Amazon.Runtime;

namespace Conveyor.Testing;

/// <summary>
/// The local AWS emulators the tests run against: <c>CONVEYOR_TEST_SQS</c> (fauxqs) and <c>CONVEYOR_TEST_DYNAMODB</c>
/// (dynalite), endpoints that <c>scripts/test.sh</c> sets after starting both from <c>tests/emulators</c> on loopback.
/// A missing variable fails the test with a message that says what is missing (Node.js, the npm packages, or just
/// the script): a skip would let a broken setup pass.
/// </summary>
internal static class AwsTestServers
{
    public const string SqsVariable = "CONVEYOR_TEST_SQS";
    public const string DynamoDbVariable = "CONVEYOR_TEST_DYNAMODB";

    /// <summary>Credentials for the emulators, which accept any (never real ones).</summary>
    public static AWSCredentials Credentials { get; } = new BasicAWSCredentials("conveyor-test", "conveyor-test-secret");

    /// <summary>The environment a child process (the CLI) needs to sign requests to the emulators.</summary>
    public static IReadOnlyDictionary<string, string> ChildEnvironment { get; } = new Dictionary<string, string>
    {
        ["AWS_ACCESS_KEY_ID"] = "conveyor-test",
        ["AWS_SECRET_ACCESS_KEY"] = "conveyor-test-secret",
        ["AWS_REGION"] = "us-east-1",
    };

    public static Uri SqsEndpoint => Endpoint(SqsVariable, "fauxqs", "SQS");

    public static Uri DynamoDbEndpoint => Endpoint(DynamoDbVariable, "dynalite", "DynamoDB");

    private static Uri Endpoint(string variable, string package, string service)
    {
        if (Environment.GetEnvironmentVariable(variable) is { Length: > 0 } value)
        {
            return Uri.TryCreate(value, UriKind.Absolute, out var uri)
                ? uri
                : throw new InvalidOperationException($"{variable}='{value}' is not an http:// endpoint of a local {service} emulator.");
        }

        throw new InvalidOperationException($"{variable} is not set: these tests need a local {service} emulator ({package}). {Diagnose(package)}");
    }

    private static string Diagnose(string package)
    {
        var onPath = (Environment.GetEnvironmentVariable("PATH") ?? string.Empty)
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Any(dir => File.Exists(Path.Combine(dir, "node")));
        if (!onPath)
        {
            return "Node.js is not on PATH: install Node.js 20+ (apt-get install nodejs npm), then run `bash scripts/test.sh`, which installs the emulators and starts them.";
        }

        var root = AppContext.BaseDirectory;
        while (root is not null && !File.Exists(Path.Combine(root, "Conveyor.slnx")))
        {
            root = Path.GetDirectoryName(root);
        }

        var packageDir = root is null ? null : Path.Combine(root, "tests", "emulators", "node_modules", package);
        return packageDir is not null && !Directory.Exists(packageDir)
            ? $"The npm package {package} is not installed in tests/emulators: run `bash scripts/test.sh` (it runs `npm ci` there and starts the emulator), or `npm ci` in tests/emulators and start it yourself."
            : $"Run the tests through `bash scripts/test.sh` (it starts the emulator on loopback), or start {package} yourself and set the variable to its http://127.0.0.1:PORT endpoint.";
    }
}
