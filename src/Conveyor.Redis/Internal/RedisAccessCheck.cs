using StackExchange.Redis;

namespace Conveyor.Redis.Internal;

/// <summary>
/// Proves at connect time that the account can do what Conveyor does, so that a wrong password or a missing ACL
/// permission ends the start with one line that says which, instead of failing tasks later.
/// </summary>
/// <remarks>
/// StackExchange.Redis does not fail a connection whose <c>AUTH</c> was refused: it goes on as the <c>default</c>
/// user (open on many servers), so a wrong password for an ACL user would silently run as someone else. With a user
/// in the URL, <c>ACL WHOAMI</c> must name that user. Then one script touches a key and publishes on a channel under
/// the key prefix: scripts, keys and channels are the three permissions every component needs.
/// </remarks>
internal static class RedisAccessCheck
{
    private const string ProbeScript = "redis.call('EXISTS', KEYS[1]) return redis.call('PUBLISH', ARGV[1], '')";

    /// <summary>Throws <see cref="UnauthorizedAccessException"/> (a one-line message, no secret) when the account falls short.</summary>
    public static async Task VerifyAsync(IConnectionMultiplexer connection, ConfigurationOptions configuration, string keyPrefix, CancellationToken cancellationToken)
    {
        var db = connection.GetDatabase();
        var user = configuration.User;
        var where = string.Join(", ", configuration.EndPoints.Select(e => e is System.Net.DnsEndPoint dns ? $"{dns.Host}:{dns.Port}" : e.ToString()));
        try
        {
            if (!string.IsNullOrEmpty(user))
            {
                var whoami = (string?)await db.ExecuteAsync("ACL", "WHOAMI").WaitAsync(cancellationToken).ConfigureAwait(false);
                if (!string.Equals(whoami, user, StringComparison.Ordinal))
                {
                    throw new UnauthorizedAccessException($"Redis at {where} refused the password of user '{user}' (the connection is user '{whoami}'): check the user name and password");
                }
            }

            var probe = keyPrefix + "conveyor:access-probe";
            await db.ScriptEvaluateAsync(ProbeScript, [probe], [probe]).WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (RedisServerException ex) when (ex.Message.StartsWith("NOAUTH", StringComparison.Ordinal) || ex.Message.StartsWith("WRONGPASS", StringComparison.Ordinal))
        {
            throw new UnauthorizedAccessException($"Redis at {where} refused the password{(string.IsNullOrEmpty(user) ? string.Empty : $" of user '{user}'")} ({FirstWord(ex.Message)}): check the user name and password", ex);
        }
        catch (RedisServerException ex) when (ex.Message.StartsWith("NOPERM", StringComparison.Ordinal) || ex.Message.Contains("can't publish", StringComparison.Ordinal) || ex.Message.Contains("no permissions", StringComparison.Ordinal))
        {
            var scope = keyPrefix.Length == 0 ? "every key and channel (machinery's layout has no key prefix; set key_prefix= to narrow it)" : $"keys and channels under '{keyPrefix}' (~{keyPrefix}* &{keyPrefix}*)";
            throw new UnauthorizedAccessException(
                $"Redis user '{user ?? "default"}' at {where} lacks a permission Conveyor needs ({ex.Message.ReplaceLineEndings(" ")}): allow scripts (the scripting category) and {scope}",
                ex);
        }
    }

    private static string FirstWord(string message)
    {
        var space = message.IndexOf(' ', StringComparison.Ordinal);
        return space < 0 ? message : message[..space];
    }
}

/// <summary>One line for a connect that failed for want of an answer (TLS and accounts are checked apart), never a secret.</summary>
internal static class RedisConnectFailure
{
    public static string Explain(RedisConnectionException failure, string endPoints)
    {
        var inner = failure.InnerException;
        var detail = (inner is { Message.Length: > 0 } ? $"{failure.FailureType}: {inner.Message}" : failure.FailureType.ToString()).ReplaceLineEndings(" ");
        return $"no Redis answers at {endPoints} ({detail})";
    }
}
