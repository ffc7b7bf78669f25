namespace Conveyor.Tests.Core;

public sealed class ManagedTaskStateNamesTests
{
    [Fact]
    public void Name_EveryState_ParsesBackToItself()
    {
        foreach (var state in Enum.GetValues<ManagedTaskState>())
        {
            Assert.Equal(state, ManagedTaskStateNames.Parse(ManagedTaskStateNames.Name(state)));
        }
    }

    [Theory]
    [InlineData("dead", ManagedTaskState.DeadLettered)]
    [InlineData("Dead-Lettered", ManagedTaskState.DeadLettered)]
    [InlineData("SUCCESS", ManagedTaskState.Succeeded)]
    [InlineData("failure", ManagedTaskState.Failed)]
    public void Parse_MachineryWordsAndAnyCase_AreAccepted(string text, ManagedTaskState expected) =>
        Assert.Equal(expected, ManagedTaskStateNames.Parse(text));

    [Fact]
    public void Parse_UnknownName_IsNull() => Assert.Null(ManagedTaskStateNames.Parse("running"));
}
