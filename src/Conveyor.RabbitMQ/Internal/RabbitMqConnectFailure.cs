using System.Security.Authentication;
using RabbitMQ.Client.Exceptions;

namespace Conveyor.RabbitMQ.Internal;

/// <summary>
/// One line for a failed connect that says what to fix: a refused login, an untrusted certificate, a vhost the user
/// may not use, or no answer. Never a password: only the user and vhost names, which are not secrets.
/// </summary>
internal static class RabbitMqConnectFailure
{
    public static string Explain(Exception failure, RabbitMqBrokerOptions options)
    {
        var url = options.EffectiveUrls[0];
        var user = Uri.UnescapeDataString(url.UserInfo.Split(':')[0]);
        var vhost = url.AbsolutePath.Length <= 1 ? "/" : Uri.UnescapeDataString(url.AbsolutePath[1..]);
        foreach (var cause in Causes(failure))
        {
            switch (cause)
            {
                case AuthenticationFailureException:
                    return $"RabbitMQ refused the login of user '{user}' (ACCESS_REFUSED): check the user name and password";
                case AuthenticationException:
                    return options.CaCertificatesPath is not null
                        ? "the RabbitMQ server's TLS certificate does not chain to the CA file given with ca= (or does not name the host)"
                        : "the RabbitMQ server's TLS certificate is not trusted by this machine; for a private CA, add ?ca=/path/ca.pem";
                case OperationInterruptedException { ShutdownReason.ReplyCode: 530 }:
                    return $"RabbitMQ user '{user}' may not use vhost '{vhost}' (NOT_ALLOWED): grant it (rabbitmqctl set_permissions -p {vhost} {user} …) or use a vhost it may";
                case OperationInterruptedException { ShutdownReason.ReplyCode: 403 } refused:
                    return $"RabbitMQ user '{user}' lacks a permission on vhost '{vhost}' (ACCESS_REFUSED: {refused.ShutdownReason.ReplyText})";
            }
        }

        return $"cannot connect to RabbitMQ ({(failure.InnerException ?? failure).Message.ReplaceLineEndings(" ")})";
    }

    private static IEnumerable<Exception> Causes(Exception failure)
    {
        var pending = new Queue<Exception>([failure]);
        while (pending.TryDequeue(out var cause))
        {
            yield return cause;
            if (cause is AggregateException aggregate)
            {
                foreach (var inner in aggregate.InnerExceptions)
                {
                    pending.Enqueue(inner);
                }
            }
            else if (cause.InnerException is { } inner)
            {
                pending.Enqueue(inner);
            }
        }
    }
}
