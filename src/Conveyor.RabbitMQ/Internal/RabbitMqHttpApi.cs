using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Conveyor.RabbitMQ.Internal;

/// <summary>
/// The few calls of the RabbitMQ management plugin's HTTP API that Conveyor's listings need: the queues of the
/// virtual host (with their arguments, to find the delay queues of a work queue), the queues bound to the
/// exchange, and a peek at the head of a queue (<c>POST /api/queues/{vhost}/{queue}/get</c> with
/// <c>ackmode = ack_requeue_true</c>: RabbitMQ takes the messages with <c>basic.get</c> and requeues them).
/// </summary>
/// <remarks>
/// The credentials go in the <c>Authorization</c> header only: the base address carries no user info, so no
/// exception message or log line can show them.
/// </remarks>
internal sealed class RabbitMqHttpApi : IDisposable
{
    private readonly HttpClient _http;
    private readonly string _vhost;

    public RabbitMqHttpApi(Uri managementUrl, string user, string password, string virtualHost, HttpMessageHandler? handler = null)
    {
        var root = new UriBuilder(managementUrl) { UserName = string.Empty, Password = string.Empty, Query = string.Empty, Fragment = string.Empty };
        if (!root.Path.EndsWith('/'))
        {
            root.Path += "/";
        }

        BaseAddress = root.Uri;
        _http = handler is null ? new HttpClient() : new HttpClient(handler);
        _http.BaseAddress = BaseAddress;
        _http.Timeout = TimeSpan.FromSeconds(30);
        _http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes(user + ":" + password)));
        _vhost = Uri.EscapeDataString(virtualHost);
    }

    /// <summary>The API's root, without credentials (safe to show).</summary>
    public Uri BaseAddress { get; }

    /// <summary>Every queue of the virtual host, with its arguments and counts (counts lag by the node's statistics interval).</summary>
    public async Task<IReadOnlyList<HttpQueue>> ListQueuesAsync(CancellationToken cancellationToken)
    {
        var path = $"api/queues/{_vhost}?columns=name,type,arguments,messages,messages_ready,messages_unacknowledged,consumers";
        return await GetAsync(path, RabbitMqHttpJson.Default.ListHttpQueue, cancellationToken).ConfigureAwait(false) ?? [];
    }

    /// <summary>One queue's counts (lagging by the node's statistics interval); <see langword="null"/> when it does not exist.</summary>
    public async Task<HttpQueue?> GetQueueAsync(string queue, CancellationToken cancellationToken)
    {
        var path = $"api/queues/{_vhost}/{Uri.EscapeDataString(queue)}";
        return await GetAsync(path, RabbitMqHttpJson.Default.HttpQueue, cancellationToken, notFoundIsNull: true).ConfigureAwait(false);
    }

    /// <summary>The queues bound to an exchange (its bindings as source).</summary>
    public async Task<IReadOnlyList<string>> ListBoundQueuesAsync(string exchange, CancellationToken cancellationToken)
    {
        var path = $"api/exchanges/{_vhost}/{Uri.EscapeDataString(exchange)}/bindings/source";
        var bindings = await GetAsync(path, RabbitMqHttpJson.Default.ListHttpBinding, cancellationToken, notFoundIsNull: true).ConfigureAwait(false) ?? [];
        return [.. bindings.Where(b => b.DestinationType == "queue").Select(b => b.Destination).Distinct(StringComparer.Ordinal)];
    }

    /// <summary>
    /// Peeks at up to <paramref name="count"/> messages at the head of a queue: RabbitMQ takes them with
    /// <c>basic.get</c> and requeues them (<c>ack_requeue_true</c>), which marks them redelivered. An absent queue
    /// gives none.
    /// </summary>
    public async Task<IReadOnlyList<HttpMessage>> PeekAsync(string queue, int count, CancellationToken cancellationToken)
    {
        var path = $"api/queues/{_vhost}/{Uri.EscapeDataString(queue)}/get";
        var request = new HttpGetRequest { Count = count, AckMode = "ack_requeue_true", Encoding = "base64" };
        using var response = await _http.PostAsJsonAsync(path, request, RabbitMqHttpJson.Default.HttpGetRequest, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return [];
        }

        await EnsureSuccessAsync(response, path, cancellationToken).ConfigureAwait(false);
        return await response.Content.ReadFromJsonAsync(RabbitMqHttpJson.Default.ListHttpMessage, cancellationToken).ConfigureAwait(false) ?? [];
    }

    public void Dispose() => _http.Dispose();

    private async Task<T?> GetAsync<T>(string path, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type, CancellationToken cancellationToken, bool notFoundIsNull = false)
        where T : class
    {
        using var response = await _http.GetAsync(path, cancellationToken).ConfigureAwait(false);
        if (notFoundIsNull && response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }

        await EnsureSuccessAsync(response, path, cancellationToken).ConfigureAwait(false);
        return await response.Content.ReadFromJsonAsync(type, cancellationToken).ConfigureAwait(false);
    }

    private async Task EnsureSuccessAsync(HttpResponseMessage response, string path, CancellationToken cancellationToken)
    {
        if (response.IsSuccessStatusCode)
        {
            return;
        }

        var body = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        var reason = response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden
            ? "the user is refused (the HTTP API needs a user with the management tag, and the AMQP URL's user is used unless the management URL names one)"
            : body.Length > 200 ? body[..200] : body;
        var where = path.Split('?')[0];
        throw new HttpRequestException($"RabbitMQ's management API at {BaseAddress} answered {(int)response.StatusCode} {response.StatusCode} to {where}: {reason}", null, response.StatusCode);
    }
}

/// <summary>A queue as <c>GET /api/queues</c> gives it (the fields Conveyor reads).</summary>
internal sealed class HttpQueue
{
    public string Name { get; set; } = string.Empty;

    /// <summary>classic, quorum or stream.</summary>
    public string? Type { get; set; }

    public Dictionary<string, JsonElement>? Arguments { get; set; }

    /// <summary>A quorum queue counts every return of a message as a delivery (x-delivery-count).</summary>
    public bool IsQuorum => Type == "quorum" || StringArgument("x-queue-type") == "quorum";

    public long? Messages { get; set; }

    public long? MessagesReady { get; set; }

    public long? MessagesUnacknowledged { get; set; }

    public int? Consumers { get; set; }

    /// <summary>An argument as a string (x-dead-letter-routing-key, x-dead-letter-exchange), or null.</summary>
    public string? StringArgument(string key) =>
        Arguments is { } arguments && arguments.TryGetValue(key, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

    /// <summary>An argument as a number (x-message-ttl), or null.</summary>
    public long? NumberArgument(string key) =>
        Arguments is { } arguments && arguments.TryGetValue(key, out var value) && value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out var number) ? number : null;
}

/// <summary>A binding as <c>GET /api/exchanges/{vhost}/{name}/bindings/source</c> gives it.</summary>
internal sealed class HttpBinding
{
    public string Destination { get; set; } = string.Empty;

    public string DestinationType { get; set; } = string.Empty;
}

/// <summary>The body of <c>POST /api/queues/{vhost}/{name}/get</c>.</summary>
internal sealed class HttpGetRequest
{
    public int Count { get; set; }

    [JsonPropertyName("ackmode")]
    public string AckMode { get; set; } = "ack_requeue_true";

    public string Encoding { get; set; } = "base64";
}

/// <summary>A message as the peek returns it.</summary>
internal sealed class HttpMessage
{
    public string Payload { get; set; } = string.Empty;

    public string PayloadEncoding { get; set; } = string.Empty;

    public bool Redelivered { get; set; }

    public string RoutingKey { get; set; } = string.Empty;

    /// <summary>The raw body (base64 as asked; a string payload when RabbitMQ sent one anyway).</summary>
    public byte[] Body() => PayloadEncoding == "base64" ? Convert.FromBase64String(Payload) : System.Text.Encoding.UTF8.GetBytes(Payload);
}

/// <summary>System.Text.Json source generation for the HTTP API's JSON (snake_case, no reflection).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(List<HttpQueue>))]
[JsonSerializable(typeof(HttpQueue))]
[JsonSerializable(typeof(List<HttpBinding>))]
[JsonSerializable(typeof(HttpGetRequest))]
[JsonSerializable(typeof(List<HttpMessage>))]
internal sealed partial class RabbitMqHttpJson : JsonSerializerContext;
