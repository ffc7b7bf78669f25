using Conveyor.Cli.Commands;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Conveyor.Cli;

/// <summary>
/// Every command runs on the generic host with Conveyor.Hosting: the providers below claim their URL schemes,
/// Hosting resolves the configured URLs to them, and the command line is one more configuration source. Settings,
/// lowest to highest: the CLI's defaults (<c>Conveyor:FailFast=true</c>), <c>appsettings.json</c> in the current
/// folder (or <c>--config FILE</c>), the CLI's own variables <c>CONVEYOR_BROKER</c>, <c>CONVEYOR_RESULT_BACKEND</c>,
/// <c>CONVEYOR_DEFAULT_QUEUE</c>, the host's <c>Conveyor__*</c> variables, then the flags.
/// </summary>
internal static class CliHost
{
    /// <summary>The CLI's variables from before it ran on the host, and the settings they stand for.</summary>
    public static readonly IReadOnlyList<(string Variable, string Setting)> CliVariables =
    [
        ("CONVEYOR_BROKER", "Conveyor:Broker"),
        ("CONVEYOR_RESULT_BACKEND", "Conveyor:ResultBackend"),
        ("CONVEYOR_DEFAULT_QUEUE", "Conveyor:DefaultQueue"),
    ];

    /// <summary>
    /// The providers the command knows. Adding one is one line here (<c>.UseSqs()</c>); its URL forms then show in
    /// every command's help. SQLite comes first: with nothing configured, <c>sqlite://conveyor.db</c> is used.
    /// </summary>
    public static IConveyorBuilder UseEveryProvider(this IConveyorBuilder conveyor) => conveyor
        .UseSqlite()
        .UseRedis()
        .UseRabbitMq()
        .UseInMemory();

    /// <summary>A host builder with the command's configuration and Conveyor's services; the command adds the rest.</summary>
    public static HostApplicationBuilder CreateBuilder(ConnectionSettings settings, LogLevel logLevel, IReadOnlyDictionary<string, string?>? flags = null)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings { ContentRootPath = Directory.GetCurrentDirectory() });
        var configuration = builder.Configuration;
        configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["Conveyor:FailFast"] = "true", ["Conveyor:Worker:Concurrency"] = "8" });
        if (settings.Config is { Length: > 0 } file)
        {
            var path = Path.GetFullPath(file);
            if (!File.Exists(path))
            {
                throw new CliException($"--config: the file {path} does not exist");
            }

            configuration.AddJsonFile(path, optional: false, reloadOnChange: true);
        }
        else
        {
            configuration.AddJsonFile(Path.Combine(Directory.GetCurrentDirectory(), "appsettings.json"), optional: true, reloadOnChange: true);
        }

        configuration.AddInMemoryCollection(CliVariables
            .Select(v => (v.Setting, Value: Environment.GetEnvironmentVariable(v.Variable)))
            .Where(v => !string.IsNullOrEmpty(v.Value))
            .ToDictionary(v => v.Setting, v => v.Value));
        configuration.AddEnvironmentVariables();
        var commandLine = new Dictionary<string, string?>(flags ?? new Dictionary<string, string?>());
        Flag(commandLine, "Conveyor:Broker", settings.Broker);
        Flag(commandLine, "Conveyor:ResultBackend", settings.Backend);
        Flag(commandLine, "Conveyor:DefaultQueue", settings.Queue);
        configuration.AddInMemoryCollection(commandLine);

        builder.Logging
            .SetMinimumLevel(logLevel)
            .AddFilter("Microsoft", LogLevel.None) // the host's own lines; a failed start is reported as one line below
            .AddSimpleConsole(options =>
            {
                options.SingleLine = true;
                options.TimestampFormat = "HH:mm:ss.fff ";
            });
        builder.Services.AddConveyor(conveyor => conveyor.UseEveryProvider());
        return builder;
    }

    private static void Flag(Dictionary<string, string?> flags, string setting, string? value)
    {
        if (!string.IsNullOrWhiteSpace(value))
        {
            flags[setting] = value;
        }
    }

    /// <summary>
    /// Builds and starts the host: a bad setting, or an engine that does not answer (the CLI fails fast), is a
    /// <see cref="CliException"/> of one line that names the setting, with passwords masked.
    /// </summary>
    public static async Task<CliSession> StartAsync(HostApplicationBuilder builder, CancellationToken cancellationToken)
    {
        IHost host;
        try
        {
            host = builder.Build();
        }
        catch (Exception ex) when (ex is InvalidDataException or FormatException or System.Text.Json.JsonException)
        {
            throw new CliException($"cannot read the configuration: {(ex.InnerException ?? ex).Message}");
        }

        try
        {
            host.Services.GetRequiredService<IStartupValidator>().Validate();
            await host.StartAsync(cancellationToken).ConfigureAwait(false);
            return new CliSession(host);
        }
        catch (Exception ex)
        {
            await ((IAsyncDisposable)host).DisposeAsync().ConfigureAwait(false);
            throw ex switch
            {
                OptionsValidationException validation => new CliException(validation.Message),
                AggregateException aggregate when aggregate.InnerExceptions.All(e => e is OptionsValidationException or ConveyorConnectionException) =>
                    new CliException(string.Join("; ", aggregate.InnerExceptions.Select(e => e.Message))),
                ConveyorConnectionException connection => new CliException(connection.Message),
                InvalidOperationException { InnerException: ArgumentException or FormatException } binding => new CliException(OneLine(binding)),
                _ => ex,
            };
        }
    }

    private static string OneLine(Exception ex) => $"{ex.Message.TrimEnd('.')}: {ex.InnerException!.Message}".ReplaceLineEndings(" ");

    /// <summary>The built-in tasks' registry, for commands that run workers.</summary>
    public static IConveyorBuilder AddBuiltInTasks(this HostApplicationBuilder builder) =>
        builder.Services.AddConveyor(conveyor => BuiltInTasks.Register(conveyor.Tasks));
}

/// <summary>A started host and what the commands use from it; disposing stops the host gracefully.</summary>
internal sealed class CliSession(IHost host) : IAsyncDisposable
{
    public IHost Host { get; } = host;

    public IServiceProvider Services => Host.Services;

    public ConveyorClient Client => Services.GetRequiredService<ConveyorClient>();

    public IBroker Broker => Services.GetRequiredService<IBroker>();

    public IResultBackend Backend => Services.GetRequiredService<IResultBackend>();

    public ConveyorOptions Options => Services.GetRequiredService<IOptions<ConveyorOptions>>().Value;

    public string Queue => Options.DefaultQueue;

    /// <summary>The broker's URL, password masked.</summary>
    public string BrokerUrl => ConveyorUrls.Redact(Options.Broker);

    /// <summary>The result backend's URL (the broker's when not set), password masked.</summary>
    public string BackendUrl => ConveyorUrls.Redact(string.IsNullOrWhiteSpace(Options.ResultBackend) ? Options.Broker : Options.ResultBackend);

    public async ValueTask DisposeAsync()
    {
        try
        {
            await Host.StopAsync(CancellationToken.None).ConfigureAwait(false);
        }
        finally
        {
            await ((IAsyncDisposable)Host).DisposeAsync().ConfigureAwait(false);
        }
    }
}
