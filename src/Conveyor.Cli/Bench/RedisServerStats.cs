using System.Globalization;
using Conveyor.Redis;
using StackExchange.Redis;

namespace Conveyor.Cli.Bench;

/// <summary>
/// What the Redis servers of a benchmark run did: <c>INFO commandstats</c> (calls per command, commands run inside
/// scripts included, as Redis counts them) and <c>INFO cpu</c> (<c>used_cpu_sys</c> + <c>used_cpu_user</c>), read
/// before and after the run on a connection of the benchmark's own. A few calls per run, none per task.
/// </summary>
internal sealed class RedisServerStats : IAsyncDisposable
{
    private readonly List<(string Server, ConnectionMultiplexer Connection)> _servers;

    private RedisServerStats(List<(string Server, ConnectionMultiplexer Connection)> servers)
    {
        _servers = servers;
    }

    /// <summary>Connects to every distinct Redis among <paramref name="urls"/>; <see langword="null"/> when none is Redis.</summary>
    public static async Task<RedisServerStats?> OpenAsync(IEnumerable<string> urls, CancellationToken cancellationToken)
    {
        var connectionParts = urls
            .Where(url => url.StartsWith("redis://", StringComparison.OrdinalIgnoreCase)
                || url.StartsWith("rediss://", StringComparison.OrdinalIgnoreCase)
                || url.StartsWith("redis+sentinel://", StringComparison.OrdinalIgnoreCase))
            .Select(RedisUrl.ConnectionPart)
            .Distinct(StringComparer.Ordinal)
            .ToList();
        if (connectionParts.Count == 0)
        {
            return null;
        }

        var servers = new List<(string, ConnectionMultiplexer)>();
        try
        {
            foreach (var part in connectionParts)
            {
                // StackExchange.Redis counts INFO among the admin commands; this connection runs nothing else.
                var configuration = RedisUrl.Parse(part);
                configuration.AllowAdmin = true;
                var connection = await ConnectionMultiplexer.ConnectAsync(configuration).WaitAsync(cancellationToken).ConfigureAwait(false);
                servers.Add((EndPointName(Primary(connection).EndPoint), connection));
            }
        }
        catch
        {
            foreach (var (_, connection) in servers)
            {
                await connection.DisposeAsync().ConfigureAwait(false);
            }

            throw;
        }

        return new RedisServerStats(servers);
    }

    /// <summary>Every server's counters now.</summary>
    public async Task<IReadOnlyList<RedisSnapshot>> SnapshotAsync(CancellationToken cancellationToken)
    {
        var snapshots = new List<RedisSnapshot>(_servers.Count);
        foreach (var (name, connection) in _servers)
        {
            var server = Primary(connection);
            var calls = new Dictionary<string, long>(StringComparer.Ordinal);
            foreach (var group in await server.InfoAsync("commandstats").WaitAsync(cancellationToken).ConfigureAwait(false))
            {
                foreach (var (key, value) in group)
                {
                    // cmdstat_get:calls=12,usec=34,usec_per_call=2.83,rejected_calls=0,failed_calls=0
                    if (key.StartsWith("cmdstat_", StringComparison.Ordinal) && CallsOf(value) is { } count)
                    {
                        calls[key["cmdstat_".Length..]] = count;
                    }
                }
            }

            var cpu = 0.0;
            foreach (var group in await server.InfoAsync("cpu").WaitAsync(cancellationToken).ConfigureAwait(false))
            {
                foreach (var (key, value) in group)
                {
                    if (key is "used_cpu_sys" or "used_cpu_user")
                    {
                        cpu += double.Parse(value, CultureInfo.InvariantCulture);
                    }
                }
            }

            snapshots.Add(new RedisSnapshot(name, calls, cpu));
        }

        return snapshots;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var (_, connection) in _servers)
        {
            await connection.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>What each server did between two snapshots, per task.</summary>
    public static IReadOnlyList<RedisRunStats> PerTask(IReadOnlyList<RedisSnapshot> before, IReadOnlyList<RedisSnapshot> after, int tasks)
    {
        var stats = new List<RedisRunStats>(after.Count);
        for (var i = 0; i < after.Count; i++)
        {
            var calls = after[i].Calls
                .Select(c => (Command: c.Key, Calls: c.Value - before[i].Calls.GetValueOrDefault(c.Key)))
                .Where(c => c.Calls * 1000 >= tasks)
                .OrderByDescending(c => c.Calls)
                .ThenBy(c => c.Command, StringComparer.Ordinal)
                .ToList();
            stats.Add(new RedisRunStats(
                after[i].Server,
                Math.Round((double)calls.Sum(c => c.Calls) / tasks, 2),
                Math.Round((after[i].CpuSeconds - before[i].CpuSeconds) * 1e6 / tasks, 2),
                calls.ToDictionary(c => c.Command, c => Math.Round((double)c.Calls / tasks, 3), StringComparer.Ordinal)));
        }

        return stats;
    }

    private static IServer Primary(ConnectionMultiplexer connection) =>
        connection.GetServers().FirstOrDefault(s => s.IsConnected && !s.IsReplica && s.ServerType != ServerType.Sentinel)
        ?? throw new CliException("the benchmark found no connected Redis primary to read INFO from");

    private static long? CallsOf(string value)
    {
        foreach (var field in value.Split(','))
        {
            if (field.StartsWith("calls=", StringComparison.Ordinal) && long.TryParse(field.AsSpan("calls=".Length), NumberStyles.None, CultureInfo.InvariantCulture, out var calls))
            {
                return calls;
            }
        }

        return null;
    }

    private static string EndPointName(System.Net.EndPoint endPoint) => endPoint switch
    {
        System.Net.DnsEndPoint dns => $"{dns.Host}:{dns.Port}",
        _ => endPoint.ToString() ?? "redis",
    };
}

/// <summary>One server's counters at one moment.</summary>
internal sealed record RedisSnapshot(string Server, IReadOnlyDictionary<string, long> Calls, double CpuSeconds);

/// <summary>What one Redis server did for a run, per task published.</summary>
/// <param name="Server">host:port (no password).</param>
/// <param name="CallsPerTask">Commands, those run inside scripts included.</param>
/// <param name="CpuUsPerTask">Redis CPU time (system + user), µs.</param>
/// <param name="Calls">Commands per task by name, most first (those under one per thousand tasks left out).</param>
internal sealed record RedisRunStats(string Server, double CallsPerTask, double CpuUsPerTask, IReadOnlyDictionary<string, double> Calls);
