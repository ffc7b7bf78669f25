using Conveyor.DynamoDb;
using Conveyor.Sqs;
using Microsoft.Extensions.Logging;

namespace Conveyor.Cli;

/// <summary>
/// Opens the AWS providers: <c>sqs://[region]/[account]/[?endpoint=…]</c> (broker only) and
/// <c>dynamodb://[region][?endpoint=…&amp;states_table=…&amp;groups_table=…]</c> (result backend only). Credentials and
/// the region come from the AWS SDK's chain (AWS_ACCESS_KEY_ID, AWS_REGION, a profile, a role), never from the URL.
/// </summary>
internal static class AwsConnections
{
    public static IBroker OpenBroker(string url, ILoggerFactory loggerFactory)
    {
        try
        {
            return new SqsBroker(SqsUrl.Parse(url), loggerFactory: loggerFactory);
        }
        catch (FormatException ex)
        {
            throw new CliException(ex.Message);
        }
    }

    public static IResultBackend OpenBackend(string url, ILoggerFactory loggerFactory)
    {
        try
        {
            return new DynamoDbResultBackend(DynamoDbUrl.Parse(url), loggerFactory: loggerFactory);
        }
        catch (FormatException ex)
        {
            throw new CliException(ex.Message);
        }
    }
}
