namespace Conveyor.Sqlite.Internal;

/// <summary>One write request in the writer's queue. It runs inside a transaction shared with other requests and
/// completes its caller only after that transaction committed.</summary>
internal abstract class WriteOperation
{
    protected WriteOperation(CancellationToken cancellationToken) => CancellationToken = cancellationToken;

    public CancellationToken CancellationToken { get; }

    /// <summary>Runs the statements. Called on the writer thread inside a transaction; may run again (alone, in a
    /// new transaction) when another request of the same batch failed, so it keeps no effects outside the
    /// database until <see cref="Complete"/>.</summary>
    public abstract void Execute(WriteContext context);

    /// <summary>Completes the caller after the commit.</summary>
    public abstract void Complete();

    public abstract void Fail(Exception error);

    public abstract void Cancel();
}

internal sealed class WriteOperation<TState, TResult> : WriteOperation
{
    private readonly Func<WriteContext, TState, TResult> _execute;
    private readonly TState _state;
    private readonly TaskCompletionSource<TResult> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TResult _result = default!;

    public WriteOperation(TState state, Func<WriteContext, TState, TResult> execute, CancellationToken cancellationToken)
        : base(cancellationToken)
    {
        _state = state;
        _execute = execute;
    }

    public Task<TResult> Task => _completion.Task;

    public override void Execute(WriteContext context) => _result = _execute(context, _state);

    public override void Complete() => _completion.TrySetResult(_result);

    public override void Fail(Exception error) => _completion.TrySetException(error);

    public override void Cancel() => _completion.TrySetCanceled(CancellationToken);
}
