using System.ComponentModel;
using Spectre.Console.Cli;

namespace Conveyor.Cli.Commands;

/// <summary>Where the broker and the result backend are; defaults from the environment, then SQLite.</summary>
internal class ConnectionSettings : CommandSettings
{
    [CommandOption("--broker <URL>")]
    [Description("Broker URL: sqlite://PATH, memory://. Default: $CONVEYOR_BROKER, else sqlite://conveyor.db")]
    public string? Broker { get; init; }

    [CommandOption("--backend <URL>")]
    [Description("Result backend URL. Default: $CONVEYOR_RESULT_BACKEND, else sqlite://conveyor.db")]
    public string? Backend { get; init; }

    [CommandOption("-q|--queue <QUEUE>")]
    [Description("Queue. Default: $CONVEYOR_DEFAULT_QUEUE, else machinery_tasks")]
    public string? Queue { get; init; }

    public string BrokerUrl => Connections.ResolveBroker(Broker);

    public string BackendUrl => Connections.ResolveBackend(Backend);

    public string QueueName => Connections.ResolveQueue(Queue);
}
