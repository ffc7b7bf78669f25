using Conveyor.Cli.Bench;
using Conveyor.Cli.Commands;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
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
        .UseSqs()
        .UseDynamoDb()
        .UseInMemory();

    /// <summary>A host builder with the command's configuration and Conveyor's services; the command adds the rest.</summary>
    /// <param name="settings">The connection flags.</param>
    /// <param name="logLevel">The lowest level logged.</param>
    /// <param name="flags">More settings from the command line.</param>
    /// <param name="followChanges">
    /// Whether the configuration file is watched and reloaded (the periodic schedules follow it). Only commands that run
    /// a scheduler do: the watcher sees every change in the file's folder, which for a SQLite database next to it is
    /// every commit, and that cost the benchmark half its throughput.
    /// </param>
    public static HostApplicationBuilder CreateBuilder(ConnectionSettings settings, LogLevel logLevel, IReadOnlyDictionary<string, string?>? flags = null, bool followChanges = false)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings { ContentRootPath = Directory.GetCurrentDirectory() });
        Configure(builder, settings, logLevel, flags, followChanges);
        return builder;
    }

    /// <summary>The command's configuration and Conveyor's services on any host builder (the dashboard's is a web one).</summary>
    public static void Configure(IHostApplicationBuilder builder, ConnectionSettings settings, LogLevel logLevel, IReadOnlyDictionary<string, string?>? flags = null, bool followChanges = false)
    {
        var configuration = builder.Configuration;
        configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["Conveyor:FailFast"] = "true", ["Conveyor:Worker:Concurrency"] = "8" });
        if (settings.Config is { Length: > 0 } file && !File.Exists(Path.GetFullPath(file)))
        {
            throw new CliException($"--config: the file {Path.GetFullPath(file)} does not exist");
        }

        // The configuration manager reads a source as it is added: a broken file fails here.
        var json = settings.Config is { Length: > 0 } ? Path.GetFullPath(settings.Config) : Path.Combine(Directory.GetCurrentDirectory(), "appsettings.json");
        try
        {
            configuration.AddJsonFile(json, optional: settings.Config is null, reloadOnChange: followChanges);
        }
        catch (InvalidDataException ex)
        {
            throw new CliException($"cannot read {json}: {(ex.InnerException ?? ex).Message.ReplaceLineEndings(" ")}", ex);
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
            .AddFilter("Microsoft", LogLevel.None) // the host's own lines; a failed start is reported as one line by StartAsync
            .AddSimpleConsole(options =>
            {
                options.SingleLine = true;
                options.TimestampFormat = "HH:mm:ss.fff ";
            });
        builder.Services.AddConveyor(conveyor => conveyor.UseEveryProvider());
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
        IHost? host = null;
        try
        {
            host = builder.Build();
            host.Services.GetRequiredService<IStartupValidator>().Validate();
            await host.StartAsync(cancellationToken).ConfigureAwait(false);
            return new CliSession(host);
        }
        catch (Exception ex)
        {
            if (host is not null)
            {
                await ((IAsyncDisposable)host).DisposeAsync().ConfigureAwait(false);
            }

            throw Explain(ex) is { } message ? new CliException(message, ex) : ex;
        }
    }

    /// <summary>What to tell the user about a failed start, in one line; null for an unexpected failure.</summary>
    internal static string? Explain(Exception ex) => ex switch
    {
        OptionsValidationException or ConveyorConnectionException => ex.Message,
        AggregateException aggregate when aggregate.InnerExceptions.All(e => Explain(e) is not null) => string.Join("; ", aggregate.InnerExceptions.Select(Explain)),
        InvalidDataException => $"cannot read the configuration: {(ex.InnerException ?? ex).Message}",

        // Binding: "Failed to convert configuration value 'abc' at 'Conveyor:Worker:Concurrency' to type 'System.Int32'."
        InvalidOperationException { InnerException: FormatException or ArgumentException or InvalidCastException } => ex.Message.ReplaceLineEndings(" "),
        _ => null,
    };

    /// <summary>The built-in tasks' registry, for commands that run workers.</summary>
    public static IConveyorBuilder AddBuiltInTasks(this HostApplicationBuilder builder)
    {
        // The add task counts benchmark runs here (see BenchTally).
        builder.Services.TryAddSingleton<BenchTally>();
        return builder.Services.AddConveyor(conveyor => BuiltInTasks.Register(conveyor.Tasks));
    }
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
