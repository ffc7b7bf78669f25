namespace Conveyor.Sqs.Tests;

public sealed class SqsUrlTests
{
    [Fact]
    public void Parse_RegionAccountAndSettings_AreApplied()
    {
        var options = SqsUrl.Parse("sqs://eu-west-1/123456789012/?endpoint=http://127.0.0.1:4566&visibility_timeout=10&heartbeat_interval=2&wait_time=5&create_queues=false&max_receive_count=4");
        Assert.Equal("eu-west-1", options.Region);
        Assert.Equal("123456789012", options.AccountId);
        Assert.Equal(new Uri("http://127.0.0.1:4566"), options.ServiceUrl);
        Assert.Equal(TimeSpan.FromSeconds(10), options.VisibilityTimeout);
        Assert.Equal(TimeSpan.FromSeconds(2), options.HeartbeatInterval);
        Assert.Equal(TimeSpan.FromSeconds(5), options.WaitTime);
        Assert.False(options.CreateQueues);
        Assert.Equal(4, options.MaxReceiveCount);
        Assert.Null(SqsUrl.Parse("sqs://").Region);
    }

    [Theory]
    [InlineData("sqs://nowhere/", "not an AWS region")]
    [InlineData("sqs://us-east-1/42/", "12-digit")]
    [InlineData("sqs://us-east-1/?colour=blue", "unknown setting 'colour'")]
    [InlineData("sqs://us-east-1/?wait_time=30", "wait_time")]
    [InlineData("sqs://us-east-1/?visibility_timeout=3&heartbeat_interval=5", "shorter than VisibilityTimeout")]
    [InlineData("sqs://us-east-1/?endpoint=ftp://x", "endpoint")]
    public void Parse_BadUrl_FailsWithOneLineSayingWhat(string url, string expected)
    {
        var error = Assert.Throws<FormatException>(() => SqsUrl.Parse(url));
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Fact]
    public void Parse_CredentialsInTheUrl_AreRefusedWithoutEchoingThem()
    {
        var error = Assert.Throws<FormatException>(() => SqsUrl.Parse("sqs://AKIAEXAMPLE:s3cr3tValue@us-east-1/"));
        Assert.DoesNotContain("s3cr3tValue", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("AKIAEXAMPLE", error.Message, StringComparison.Ordinal);
        var endpoint = Assert.Throws<FormatException>(() => SqsUrl.Parse("sqs://us-east-1/?endpoint=http://user:hunter2@127.0.0.1:1"));
        Assert.DoesNotContain("hunter2", endpoint.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("machinery_tasks", "machinery_tasks")]
    [InlineData("orders.fifo", "orders.fifo")]
    [InlineData("a.b", "a_b-")]
    public void QueueNames_ValidNamesAreMachinerys_OthersAreMadeValidAndDistinct(string queue, string expectedStart)
    {
        var name = Internal.SqsQueueNames.ToSqsName(queue);
        Assert.StartsWith(expectedStart, name, StringComparison.Ordinal);
        Assert.InRange(name.Length, 1, 80);
        Assert.NotEqual(Internal.SqsQueueNames.ToSqsName("a_b"), Internal.SqsQueueNames.ToSqsName("a.b"));
        Assert.EndsWith("-dead-letters.fifo", Internal.SqsQueueNames.DeadLetterQueueOf("orders.fifo"), StringComparison.Ordinal);
    }
}
