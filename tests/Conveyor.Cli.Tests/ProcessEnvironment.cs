namespace Conveyor.Cli.Tests;

/// <summary>
/// Tests that change this process's environment variables: they run in a collection of their own, which xunit runs
/// after the others and never beside one, and each restores what it changed.
/// </summary>
[CollectionDefinition(Collection, DisableParallelization = true)]
public sealed class ProcessEnvironment
{
    public const string Collection = "process environment";

    /// <summary>Clears the variables until the returned scope is disposed, which puts back their former values.</summary>
    public static IDisposable Without(params string[] names) => new Scope(names);

    private sealed class Scope : IDisposable
    {
        private readonly Dictionary<string, string?> _saved;

        public Scope(string[] names)
        {
            _saved = names.ToDictionary(n => n, Environment.GetEnvironmentVariable);
            foreach (var name in names)
            {
                Environment.SetEnvironmentVariable(name, null);
            }
        }

        public void Dispose()
        {
            foreach (var (name, value) in _saved)
            {
                Environment.SetEnvironmentVariable(name, value);
            }
        }
    }
}
