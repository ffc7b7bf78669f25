namespace Conveyor;

/// <summary>
/// Where a host's broker and result backend are, bound from the <c>Conveyor</c> configuration section
/// (<c>Conveyor:Broker</c>, or the environment variable <c>Conveyor__Broker</c>). A provider's <c>Use…(url)</c> supplies
/// defaults for what configuration leaves empty, so an operator can point a deployed application elsewhere without a
/// rebuild.
/// </summary>
public sealed class ConveyorOptions
{
    /// <summary>The configuration section the host binds: <c>Conveyor</c>.</summary>
    public const string SectionName = "Conveyor";

    /// <summary>
    /// The broker's URL: <c>sqlite://conveyor.db</c>, <c>redis://host:6379/0</c>, <c>amqp://user:pass@host:5672/</c>,
    /// <c>memory://</c>. Its scheme picks the provider, which must have been added with its <c>Use…()</c> method.
    /// The default value is empty (then a provider's <c>Use…()</c> default applies).
    /// </summary>
    public string Broker { get; set; } = string.Empty;

    /// <summary>The result backend's URL. The default value is empty, which means the broker's URL.</summary>
    public string ResultBackend { get; set; } = string.Empty;

    /// <summary>
    /// The URL of the store that holds the scheduler's locks. The default value is empty, which means the result
    /// backend's URL.
    /// </summary>
    public string Lock { get; set; } = string.Empty;

    /// <summary>The queue tasks go to when their signature names none. The default value is <c>machinery_tasks</c>.</summary>
    public string DefaultQueue { get; set; } = "machinery_tasks";

    /// <summary>
    /// What a host does when the broker, the result backend or the lock store does not answer at start:
    /// <see langword="false"/> starts anyway, keeps connecting in the background and lets the health checks report
    /// unhealthy; <see langword="true"/> fails the start with one line that names the setting. Either way the
    /// connection is opened asynchronously. The default value is <see langword="false"/>.
    /// </summary>
    public bool FailFast { get; set; }

    /// <summary>
    /// How long the start waits for each engine to answer before it fails (<see cref="FailFast"/>) or goes on.
    /// The default value is 5 seconds.
    /// </summary>
    public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(5);
}
