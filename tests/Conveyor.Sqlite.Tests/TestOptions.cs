namespace Conveyor.Sqlite.Tests;

internal static class TestOptions
{
    /// <summary>
    /// Settings for one component that behaves like a process of its own: its own connections, writer, poller and
    /// in-process wake-ups (<see cref="SqliteConveyorOptions.Isolated"/>).
    /// </summary>
    public static SqliteConveyorOptions Process(string path, Action<SqliteConveyorOptions>? configure = null)
    {
        var options = new SqliteConveyorOptions { DatabasePath = path, Isolated = true };
        configure?.Invoke(options);
        return options;
    }
}
