namespace Conveyor;

/// <summary>
/// One argument of a task: machinery's <c>{"Name","Type","Value"}</c>.
/// </summary>
/// <param name="Type">The machinery type string (see <see cref="MachineryTypes"/>).</param>
/// <param name="Value">The value, as the CLR type that <see cref="MachineryTypes"/> maps <paramref name="Type"/> to.</param>
/// <param name="Name">An optional name; machinery writes an empty string when there is none.</param>
public readonly record struct TaskArgument(string Type, object? Value, string Name = "")
{
    /// <summary>An <c>int64</c> argument.</summary>
    /// <param name="value">The value.</param>
    /// <returns>The argument.</returns>
    public static TaskArgument Int64(long value) => new(MachineryTypes.Int64, value);

    /// <summary>A <c>float64</c> argument.</summary>
    /// <param name="value">The value.</param>
    /// <returns>The argument.</returns>
    public static TaskArgument Float64(double value) => new(MachineryTypes.Float64, value);

    /// <summary>A <c>string</c> argument.</summary>
    /// <param name="value">The value.</param>
    /// <returns>The argument.</returns>
    public static TaskArgument String(string value) => new(MachineryTypes.String, value);

    /// <summary>A <c>bool</c> argument.</summary>
    /// <param name="value">The value.</param>
    /// <returns>The argument.</returns>
    public static TaskArgument Bool(bool value) => new(MachineryTypes.Bool, value);

    /// <summary>An argument whose machinery type is inferred from the CLR type of <typeparamref name="T"/>.</summary>
    /// <typeparam name="T">A CLR type from the <see cref="MachineryTypes"/> table.</typeparam>
    /// <param name="value">The value.</param>
    /// <param name="name">An optional argument name.</param>
    /// <returns>The argument.</returns>
    /// <exception cref="ArgumentException"><typeparamref name="T"/> has no machinery type.</exception>
    public static TaskArgument From<T>(T value, string name = "")
    {
        if (!MachineryTypes.TryGetTypeName(typeof(T), out var typeName))
        {
            throw new ArgumentException($"{typeof(T)} has no machinery type; use one of bool, (u)int8..64, float32/64, string, their arrays, or byte[].", nameof(value));
        }

        return new TaskArgument(typeName, value, name);
    }

    /// <summary>Tells whether the value was read from a message but does not fit its declared type.</summary>
    /// <remarks>Such an argument is kept as received so the message round-trips; running it fails the task.</remarks>
    public bool IsInvalid => Value is InvalidWireValue;

    /// <inheritdoc/>
    public override string ToString() => $"{Type}:{Value}";
}

/// <summary>A typed result of a task: machinery's <c>{"Type","Value"}</c>.</summary>
/// <param name="Type">The machinery type string (see <see cref="MachineryTypes"/>).</param>
/// <param name="Value">The value, as the CLR type that <see cref="MachineryTypes"/> maps <paramref name="Type"/> to.</param>
public readonly record struct TaskResult(string Type, object? Value)
{
    /// <summary>Turns this result into an argument of the same type, as machinery does when it feeds a callback.</summary>
    /// <returns>The argument.</returns>
    public TaskArgument ToArgument() => new(Type, Value);

    /// <inheritdoc/>
    public override string ToString() => $"{Type}:{Value}";
}

/// <summary>
/// A value that arrived in a message but does not fit its declared machinery type (for example <c>2.0</c> or
/// <c>"2"</c> for an <c>int64</c>, or an unknown type string). It keeps the raw JSON so the message round-trips.
/// </summary>
internal sealed class InvalidWireValue(byte[] rawJson, string reason)
{
    public byte[] RawJson { get; } = rawJson;

    public string Reason { get; } = reason;

    public override string ToString() => System.Text.Encoding.UTF8.GetString(RawJson);
}
