using System.ComponentModel;
using System.Reflection;
using System.Text.RegularExpressions;
using Spectre.Console.Cli;

namespace Conveyor.Cli.Tests;

/// <summary>Every command's help, as a new user asks for it.</summary>
public sealed partial class HelpTests : IDisposable
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(60);
    private readonly string _directory = Directory.CreateTempSubdirectory("conveyor-help-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();

    private static string Flat(string text) => Whitespace().Replace(text, " ");

    [Fact]
    public async Task Help_EveryCommand_ExitsZeroAndShowsEveryProvidersUrlForms()
    {
        var root = await CliProcess.RunAsync(_directory, Generous, "--help");
        Assert.True(root.ExitCode == 0, root.Output + root.Error);
        var commands = root.Output[(root.Output.IndexOf("COMMANDS:", StringComparison.Ordinal) + "COMMANDS:".Length)..]
            .Split('\n')
            .Skip(1)
            .TakeWhile(line => line.StartsWith("    ", StringComparison.Ordinal))
            .Select(line => line.Trim().Split(' ')[0])
            .ToList();
        Assert.Equal(["worker", "beat", "schedules", "send", "status", "queues", "purge", "dead-letters", "tasks", "task", "revoke", "pause", "resume", "workers", "dashboard", "demo", "bench"], commands);

        var forms = CliHelp.Providers().SelectMany(p => p.UrlForms).ToList();
        Assert.Contains("redis://[[user]:password@]host[:port][/db]", forms);
        Assert.Contains(forms, f => f.StartsWith("amqp://", StringComparison.Ordinal));
        Assert.Contains(forms, f => f.StartsWith("sqlite://", StringComparison.Ordinal));
        foreach (var command in commands)
        {
            var (exitCode, output, error) = await CliProcess.RunAsync(_directory, Generous, command, "--help");

            Assert.True(exitCode == 0, $"{command} --help: exit {exitCode}\n{output}\n{error}");
            Assert.Equal(string.Empty, error.Trim());
            Assert.DoesNotContain("Exception", output, StringComparison.Ordinal);
            Assert.Contains("--broker <URL>", output, StringComparison.Ordinal);
            var flat = Flat(output);
            Assert.All(forms, form => Assert.Contains(Flat(form), flat, StringComparison.Ordinal));
        }
    }

    [Fact]
    public void Options_EveryOneOfEveryCommand_StatesItsDefault()
    {
        var options = typeof(CliHost).Assembly.GetTypes()
            .Where(t => typeof(CommandSettings).IsAssignableFrom(t))
            .SelectMany(t => t.GetProperties(BindingFlags.Public | BindingFlags.Instance))
            .Where(p => p.GetCustomAttribute<CommandOptionAttribute>() is not null)
            .DistinctBy(p => (p.DeclaringType, p.Name))
            .ToList();

        Assert.True(options.Count > 30, $"only {options.Count} options found");
        Assert.All(options, option => Assert.True(
            option.GetCustomAttribute<DefaultValueAttribute>() is not null
                || (option.GetCustomAttribute<DescriptionAttribute>()?.Description.Contains("Default: ", StringComparison.Ordinal) ?? false),
            $"{option.DeclaringType!.Name}.{option.Name} does not say its default"));
    }
}
