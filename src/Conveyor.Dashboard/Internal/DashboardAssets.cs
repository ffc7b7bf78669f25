using System.Collections.Frozen;
using System.Net;
using System.Security.Cryptography;

namespace Conveyor.Dashboard.Internal;

/// <summary>The page, its style and its script, read once from the assembly's resources (nothing is fetched from elsewhere).</summary>
internal static class DashboardAssets
{
    private const string ResourcePrefix = "Conveyor.Dashboard.Assets.";

    private static readonly FrozenDictionary<string, Asset> Assets = Load();

    private static readonly string PageTemplate = System.Text.Encoding.UTF8.GetString(Assets["index.html"].Content);

    public static Asset? Find(string name) => name != "index.html" && Assets.TryGetValue(name, out var asset) ? asset : null;

    /// <summary>The page with the title in it (HTML-encoded).</summary>
    public static string Page(string title) => PageTemplate.Replace("{{title}}", WebUtility.HtmlEncode(title), StringComparison.Ordinal);

    private static FrozenDictionary<string, Asset> Load()
    {
        var assembly = typeof(DashboardAssets).Assembly;
        var assets = new Dictionary<string, Asset>(StringComparer.Ordinal);
        foreach (var resource in assembly.GetManifestResourceNames().Where(n => n.StartsWith(ResourcePrefix, StringComparison.Ordinal)))
        {
            using var stream = assembly.GetManifestResourceStream(resource)!;
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            var content = copy.ToArray();
            var name = resource[ResourcePrefix.Length..];
            var type = Path.GetExtension(name) switch
            {
                ".html" => "text/html; charset=utf-8",
                ".css" => "text/css; charset=utf-8",
                ".js" => "text/javascript; charset=utf-8",
                ".svg" => "image/svg+xml",
                ".woff2" => "font/woff2",
                _ => "application/octet-stream",
            };
            assets[name] = new Asset(content, type, "\"" + Convert.ToHexStringLower(SHA256.HashData(content))[..16] + "\"");
        }

        return assets.ToFrozenDictionary(StringComparer.Ordinal);
    }

    internal sealed record Asset(byte[] Content, string ContentType, string ETag);
}
