// A worker in the .NET generic host, configured from appsettings.json (section "Conveyor") and the environment
// (Conveyor__Broker=sqlite://conveyor.db, Conveyor__Worker__Concurrency=8, ...). With Redis on 127.0.0.1:6379:
//   dotnet run --project examples/HostedWorker
//   conveyor send add int64:2 int64:3 --broker redis://127.0.0.1:6379 --backend redis://127.0.0.1:6379 --wait
// Telemetry__Exporter=console prints spans and metrics; =otlp sends them to OTEL_EXPORTER_OTLP_ENDPOINT.
using Microsoft.Extensions.DependencyInjection;
using Conveyor.Examples.HostedWorker;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

// appsettings.json sits next to the binary, so the example reads it from wherever it is started.
var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { Args = args, ContentRootPath = AppContext.BaseDirectory });

builder.Services.AddConveyor(conveyor => conveyor
    .UseRedis()
    .UseSqlite(url: null)
    .UseRabbitMq()
    .AddTask("add", (long a, long b) => a + b)
    .AddTask("concat", (params string[] parts) => string.Concat(parts))
    .AddTaskHandler<SendWelcomeEmail>("send_welcome_email"));
builder.Services.AddConveyorWorker();

// The host stops waiting for hosted services after ShutdownTimeout (30 s by default): leave the worker its grace
// period (Conveyor:Worker:ShutdownGracePeriod, 20 s here) plus time to hand unfinished messages back.
builder.Services.Configure<HostOptions>(host => host.ShutdownTimeout = TimeSpan.FromSeconds(25));
builder.Services.AddScoped<Mailbox>();
builder.Services.AddHealthChecks().AddConveyor();
builder.Services.AddHostedService<HealthReporter>();

var exporter = builder.Configuration["Telemetry:Exporter"] ?? "none";
if (!exporter.Equals("none", StringComparison.OrdinalIgnoreCase))
{
    var otlp = exporter.Equals("otlp", StringComparison.OrdinalIgnoreCase);
    builder.Services.AddOpenTelemetry()
        .ConfigureResource(resource => resource.AddService(builder.Configuration["Telemetry:ServiceName"] ?? "conveyor-hosted-worker"))
        .WithTracing(tracing =>
        {
            tracing.AddConveyorInstrumentation();
            _ = otlp ? tracing.AddOtlpExporter() : tracing.AddConsoleExporter();
        })
        .WithMetrics(metrics =>
        {
            metrics.AddConveyorInstrumentation();
            _ = otlp ? metrics.AddOtlpExporter() : metrics.AddConsoleExporter();
        });
}

using var host = builder.Build();
try
{
    // The host validates these when it starts too, but logs a stack trace first; checking here keeps a bad setting
    // to the one line below.
    host.Services.GetRequiredService<IStartupValidator>().Validate();
    await host.RunAsync();
    return 0;
}
catch (OptionsValidationException ex)
{
    // One line naming the setting to fix (Conveyor:Broker: …), not a stack trace.
    Console.Error.WriteLine($"HostedWorker: {ex.Message}");
    return 2;
}

namespace Conveyor.Examples.HostedWorker
{
    /// <summary>A scoped service: one per task, disposed when the task ends.</summary>
    internal sealed class Mailbox(ILogger<Mailbox> logger)
    {
        public string Send(string to, string subject)
        {
            Log.Sending(logger, subject, to);
            return $"sent '{subject}' to {to}";
        }
    }

    /// <summary>A handler class resolved from DI in the task's scope.</summary>
    internal sealed class SendWelcomeEmail(Mailbox mailbox)
    {
        public string Run(string address) => mailbox.Send(address, "Welcome to Conveyor");
    }

    /// <summary>Logs the broker's and backend's health once the host has started.</summary>
    internal sealed class HealthReporter(HealthCheckService health, IOptions<ConveyorOptions> options, ILogger<HealthReporter> logger) : BackgroundService
    {
        protected override async Task ExecuteAsync(CancellationToken stoppingToken)
        {
            var report = await health.CheckHealthAsync(stoppingToken);
            foreach (var (name, entry) in report.Entries)
            {
                Log.Health(logger, name, entry.Status, entry.Description);
            }

            Log.Ready(logger, options.Value.DefaultQueue);
        }
    }

    internal static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "Sending {Subject} to {To}")]
        public static partial void Sending(ILogger logger, string subject, string to);

        [LoggerMessage(2, LogLevel.Information, "{Check}: {Status} ({Description})")]
        public static partial void Health(ILogger logger, string check, HealthStatus status, string? description);

        [LoggerMessage(3, LogLevel.Information, "Worker consuming {Queue}; Ctrl+C to stop")]
        public static partial void Ready(ILogger logger, string queue);
    }
}
