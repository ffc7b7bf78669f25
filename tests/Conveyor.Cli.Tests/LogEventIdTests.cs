using System.Reflection;
using Microsoft.Extensions.Logging;

namespace Conveyor.Cli.Tests;

public sealed class LogEventIdTests
{
    /// <summary>
    /// Every Conveyor assembly next to the tests (the CLI references every provider, so all of them are here): an
    /// event id names one message across the packages used together.
    /// </summary>
    [Fact]
    public void LoggerMessages_AcrossEveryConveyorPackage_HaveUniqueEventIds()
    {
        var messages = Directory.GetFiles(AppContext.BaseDirectory, "Conveyor*.dll")
            .Where(path => !Path.GetFileName(path).Contains("Tests", StringComparison.Ordinal))
            .Select(Assembly.LoadFrom)
            .SelectMany(assembly => assembly.GetTypes())
            .SelectMany(type => type.GetMethods(BindingFlags.Static | BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            .Select(method => (Method: method, Attribute: method.GetCustomAttribute<LoggerMessageAttribute>()))
            .Where(m => m.Attribute is not null)
            .Select(m => (m.Attribute!.EventId, Name: $"{m.Method.DeclaringType!.Assembly.GetName().Name}: {m.Method.DeclaringType.FullName}.{m.Method.Name}"))
            .ToList();

        Assert.True(messages.Count > 50, $"only {messages.Count} log messages found");
        Assert.Contains(messages, m => m.Name.StartsWith("Conveyor.Sqlite:", StringComparison.Ordinal));
        Assert.Contains(messages, m => m.Name.StartsWith("Conveyor.Redis:", StringComparison.Ordinal));
        var duplicates = messages.GroupBy(m => m.EventId).Where(g => g.Count() > 1).Select(g => $"{g.Key}: {string.Join(", ", g.Select(m => m.Name))}").ToList();
        Assert.True(duplicates.Count == 0, "event ids used twice:\n" + string.Join("\n", duplicates));
    }
}
