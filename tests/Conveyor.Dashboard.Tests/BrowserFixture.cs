using Microsoft.Playwright;

namespace Conveyor.Dashboard.Tests;

/// <summary>
/// One headless Chromium for every browser test: Debian's <c>/usr/bin/chromium</c> (scripts/test.sh installs it
/// when missing; Playwright's own browser download is not used), with a fresh user-data dir per run. A missing
/// browser fails the tests with a message that says what to install; it never skips them.
/// </summary>
public sealed class BrowserFixture : IAsyncLifetime
{
    public const string ChromiumPath = "/usr/bin/chromium";

    private static readonly string[] ChromiumArgs =
    [
        "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
    ];

    private readonly string _userDataDir = Path.Combine(Path.GetTempPath(), "conveyor-dashboard-chromium-" + Guid.NewGuid().ToString("N"));
    private IPlaywright? _playwright;
    private IBrowserContext? _context;

    public IBrowserContext Context => _context ?? throw new InvalidOperationException("The browser did not start.");

    public async Task InitializeAsync()
    {
        if (!File.Exists(ChromiumPath))
        {
            throw new InvalidOperationException(
                $"Chromium is not installed at {ChromiumPath}: the dashboard's browser tests need it. Run the tests through `bash scripts/test.sh` " +
                "(it installs it when missing), or `apt-get install -y chromium`.");
        }

        _playwright = await Playwright.CreateAsync();
        _context = await _playwright.Chromium.LaunchPersistentContextAsync(_userDataDir, new BrowserTypeLaunchPersistentContextOptions
        {
            ExecutablePath = ChromiumPath,
            Headless = true,
            Args = ChromiumArgs,
            ViewportSize = new ViewportSize { Width = 1400, Height = 900 },
            Timeout = 60_000,
        });
        _context.SetDefaultTimeout(15_000);
    }

    public async Task DisposeAsync()
    {
        if (_context is not null)
        {
            await _context.CloseAsync();
        }

        _playwright?.Dispose();
        try
        {
            Directory.Delete(_userDataDir, recursive: true);
        }
        catch (IOException)
        {
            // Chromium may still hold a file for a moment; the temp dir is cleaned by the system.
        }
    }
}

[CollectionDefinition(Name)]
public sealed class BrowserCollection : ICollectionFixture<BrowserFixture>
{
    public const string Name = "browser";
}
