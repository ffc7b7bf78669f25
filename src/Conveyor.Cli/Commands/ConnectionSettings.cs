using System.ComponentModel;
using Spectre.Console.Cli;

namespace Conveyor.Cli.Commands;

/// <summary>
/// Where the broker and the result backend are. Each flag is one more source for a <c>Conveyor:*</c> setting, so a
/// flag, <c>CONVEYOR_BROKER</c>, <c>Conveyor__Broker</c> and <c>Conveyor:Broker</c> in appsettings.json mean the same.
/// (Descriptions are Spectre markup: a literal bracket is written twice.)
/// </summary>
internal class ConnectionSettings : CommandSettings
{
    [CommandOption("--broker <URL>")]
    [Description("Broker URL (forms below); sets Conveyor:Broker. Default: Conveyor:Broker from --config/appsettings.json, $CONVEYOR_BROKER or $Conveyor__Broker, else sqlite://conveyor.db")]
    public string? Broker { get; init; }

    [CommandOption("--backend <URL>")]
    [Description("Result backend URL; sets Conveyor:ResultBackend. Default: Conveyor:ResultBackend ($CONVEYOR_RESULT_BACKEND), else the broker's URL when it can hold results, else sqlite://conveyor.db")]
    public string? Backend { get; init; }

    [CommandOption("-q|--queue <QUEUE>")]
    [Description("Queue; sets Conveyor:DefaultQueue. Default: Conveyor:DefaultQueue ($CONVEYOR_DEFAULT_QUEUE), else machinery_tasks")]
    public string? Queue { get; init; }

    [CommandOption("--config <FILE>")]
    [Description("JSON configuration (a Conveyor section: Broker, ResultBackend, DefaultQueue, Worker, Schedules …). Default: appsettings.json in the current folder, if any")]
    public string? Config { get; init; }
}

/// <summary>Connection settings plus <c>--json</c>.</summary>
internal class JsonConnectionSettings : ConnectionSettings
{
    [CommandOption("--json")]
    [Description("Print JSON for scripts. Default: off (a table)")]
    public bool Json { get; init; }
}
