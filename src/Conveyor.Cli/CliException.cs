namespace Conveyor.Cli;

/// <summary>A usage or connection error: printed as one line, exit code 2.</summary>
internal sealed class CliException : Exception
{
    public CliException()
    {
    }

    public CliException(string message)
        : base(message)
    {
    }

    public CliException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>The command's exit codes.</summary>
internal static class ExitCodes
{
    public const int Success = 0;
    public const int TaskFailed = 1;
    public const int UsageOrConnection = 2;
}
