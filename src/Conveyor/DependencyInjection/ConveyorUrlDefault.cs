namespace Conveyor;

/// <summary>URLs a <c>Use…(url)</c> call supplies for settings configuration leaves empty.</summary>
internal sealed record ConveyorUrlDefault(string? Broker, string? ResultBackend);
