using System.Net;
using System.Net.Http.Json;
using System.Text.Json;

namespace Conveyor.Dashboard.Tests;

/// <summary>Who may reach the dashboard and change things, over plain HTTP against the SQLite host.</summary>
[Collection(BrowserCollection.Name)]
public sealed class DashboardAccessTests(SqliteDashboardHost host) : IClassFixture<SqliteDashboardHost>, IDisposable
{
    private readonly HttpClient _http = new(new HttpClientHandler { AllowAutoRedirect = false, UseCookies = true, CookieContainer = new CookieContainer() }) { BaseAddress = new Uri(host.BaseUrl) };

    public void Dispose() => _http.Dispose();

    [Fact]
    public async Task RequireAuthorization_AnonymousRequest_IsRefused()
    {
        foreach (var path in new[] { "/secure/", "/secure/api/overview", "/secure/assets/app.js" })
        {
            using var response = await _http.GetAsync(path);
            Assert.Contains(response.StatusCode, new[] { HttpStatusCode.Unauthorized, HttpStatusCode.Forbidden });
        }
    }

    [Fact]
    public async Task RequireAuthorization_AuthenticatedUserWithThePolicy_IsAdmitted()
    {
        using var page = await SendAsync(HttpMethod.Get, "/secure/", "alice;ops");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Contains("assets/app.js", await page.Content.ReadAsStringAsync());
        using var overview = await SendAsync(HttpMethod.Get, "/secure/api/overview", "alice;ops");
        Assert.Equal(HttpStatusCode.OK, overview.StatusCode);
        using var json = JsonDocument.Parse(await overview.Content.ReadAsStringAsync());
        Assert.Contains(json.RootElement.GetProperty("queues").EnumerateArray(), q => q.GetProperty("name").GetString() == host.IdleQueue);

        // Authenticated without the role: the policy refuses.
        using var outsider = await SendAsync(HttpMethod.Get, "/secure/api/overview", "mallory;guests");
        Assert.Equal(HttpStatusCode.Forbidden, outsider.StatusCode);
    }

    [Fact]
    public async Task Post_WithoutAntiforgeryToken_IsRejectedAndChangesNothing()
    {
        using var response = await _http.PostAsJsonAsync($"/conveyor/api/queues/{host.IdleQueue}/pause", new { });
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("antiforgery", await response.Content.ReadAsStringAsync());
        Assert.DoesNotContain(host.IdleQueue, await host.Management.ListPausedQueuesAsync());

        // With the session's token (and its cookie) the same request goes through.
        var (header, token) = await TokenAsync("/conveyor");
        using var request = new HttpRequestMessage(HttpMethod.Post, $"/conveyor/api/queues/{host.IdleQueue}/resume") { Content = JsonContent.Create(new { }) };
        request.Headers.Add(header, token);
        using var accepted = await _http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, accepted.StatusCode);
    }

    [Fact]
    public async Task ActionPolicy_UserWithoutIt_IsRefusedWith403AndTheTaskRunsOn()
    {
        var (header, token) = await TokenAsync("/strict");
        using var request = new HttpRequestMessage(HttpMethod.Post, "/strict/api/tasks/revoke") { Content = JsonContent.Create(new { state = "active", ids = new[] { host.RunningId } }) };
        request.Headers.Add(header, token);
        using var response = await _http.SendAsync(request);
        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.Contains("revokers", await response.Content.ReadAsStringAsync());
        Assert.False((await host.Management.GetTaskAsync(host.RunningId))!.Revoked);

        using var session = await _http.GetAsync("/strict/api/session");
        using var json = JsonDocument.Parse(await session.Content.ReadAsStringAsync());
        Assert.False(json.RootElement.GetProperty("can").GetProperty("revoke").GetBoolean());
        Assert.True(json.RootElement.GetProperty("can").GetProperty("pause").GetBoolean());
    }

    [Fact]
    public async Task Session_NeverShowsAPassword()
    {
        using var response = await _http.GetAsync("/conveyor/api/session");
        var text = await response.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Contains("sqlite://", text);
        Assert.Equal("redis://u:***@host:6379/0 token=*** Password=***", Internal.Secrets.Mask("redis://u:pa55@host:6379/0 token=abc Password=s3cret"));
    }

    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, string user)
    {
        using var request = new HttpRequestMessage(method, path);
        request.Headers.Add(DashboardHost.UserHeader, user);
        return await _http.SendAsync(request);
    }

    private async Task<(string Header, string Token)> TokenAsync(string prefix)
    {
        using var response = await _http.GetAsync(prefix + "/api/session");
        response.EnsureSuccessStatusCode();
        using var json = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var antiforgery = json.RootElement.GetProperty("antiforgery");
        return (antiforgery.GetProperty("header").GetString()!, antiforgery.GetProperty("token").GetString()!);
    }
}
