namespace Conveyor.Sqlite.Tests;

internal static class ConveyorAssert
{
    public static Task EventuallyAsync(Func<Task<bool>> condition, string what) =>
        Conformance.ConveyorTestContext.EventuallyAsync(condition, what, TimeSpan.FromSeconds(30));
}
