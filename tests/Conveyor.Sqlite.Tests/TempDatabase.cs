namespace Conveyor.Sqlite.Tests;

/// <summary>Temporary folders for test databases (the file plus its -wal and -shm companions).</summary>
internal static class TempDatabase
{
    public static string NewDirectory()
    {
        var directory = Path.Combine(Path.GetTempPath(), "conveyor-sqlite-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(directory);
        return directory;
    }

    public static string NewPath() => Path.Combine(NewDirectory(), "conveyor.db");

    public static void Delete(string directory)
    {
        try
        {
            Directory.Delete(directory, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
