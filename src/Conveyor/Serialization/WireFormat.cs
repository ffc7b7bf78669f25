using System.Buffers;
using System.Text.Json;

namespace Conveyor.Serialization;

/// <summary>
/// Machinery's JSON for signatures, task states and group metas: what Conveyor publishes and stores, so that Go
/// machinery producers and workers can share a broker and a result backend with Conveyor.
/// </summary>
public static class WireFormat
{
    private static readonly JsonWriterOptions WriterOptions = new()
    {
        Encoder = GoJsonEncoder.Instance,
        SkipValidation = true,
    };

    private static readonly JsonReaderOptions ReaderOptions = new()
    {
        MaxDepth = 256,
    };

    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_buffer;

    [ThreadStatic]
    private static Utf8JsonWriter? t_writer;

    /// <summary>Serializes a signature to machinery's JSON.</summary>
    /// <param name="signature">The signature.</param>
    /// <returns>The UTF-8 JSON.</returns>
    public static byte[] SerializeSignature(Signature signature)
    {
        ArgumentNullException.ThrowIfNull(signature);
        var (buffer, writer) = RentWriter();
        SignatureJson.Write(writer, signature);
        writer.Flush();
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Serializes a signature to machinery's JSON into a buffer.</summary>
    /// <param name="signature">The signature.</param>
    /// <param name="destination">Where the UTF-8 JSON goes.</param>
    public static void SerializeSignature(Signature signature, IBufferWriter<byte> destination)
    {
        ArgumentNullException.ThrowIfNull(signature);
        ArgumentNullException.ThrowIfNull(destination);
        var writer = t_destinationWriter ??= new Utf8JsonWriter(destination, WriterOptions);
        writer.Reset(destination);
        try
        {
            SignatureJson.Write(writer, signature);
            writer.Flush();
        }
        finally
        {
            // Do not keep the caller's buffer alive through the cached writer.
            writer.Reset(NullBufferWriter.Instance);
        }
    }

    [ThreadStatic]
    private static Utf8JsonWriter? t_destinationWriter;

    private sealed class NullBufferWriter : IBufferWriter<byte>
    {
        public static readonly NullBufferWriter Instance = new();

        public void Advance(int count)
        {
        }

        public Memory<byte> GetMemory(int sizeHint = 0) => throw new InvalidOperationException();

        public Span<byte> GetSpan(int sizeHint = 0) => throw new InvalidOperationException();
    }

    /// <summary>Parses machinery's signature JSON.</summary>
    /// <param name="utf8Json">The UTF-8 JSON.</param>
    /// <returns>The signature.</returns>
    /// <exception cref="WireFormatException">The JSON is malformed or is not a signature.</exception>
    public static Signature DeserializeSignature(ReadOnlySpan<byte> utf8Json)
    {
        try
        {
            var reader = new Utf8JsonReader(utf8Json, ReaderOptions);
            if (!reader.Read())
            {
                throw new WireFormatException("The message is empty.");
            }

            var signature = SignatureJson.Read(ref reader);
            if (signature.Id.Length == 0)
            {
                throw new WireFormatException("The message has no UUID.");
            }

            if (signature.Name.Length == 0)
            {
                throw new WireFormatException($"The message {signature.Id} has no task Name.");
            }

            return signature;
        }
        catch (JsonException ex)
        {
            throw new WireFormatException($"Malformed task message: {ex.Message}", ex);
        }
        catch (InvalidOperationException ex) when (ex.InnerException is System.Text.DecoderFallbackException)
        {
            // Utf8JsonReader.GetString reports invalid UTF-8 this way (the generated readers of states and metas turn
            // it into a JsonException themselves).
            throw new WireFormatException($"Malformed task message: {ex.Message}", ex);
        }
    }

    /// <summary>Serializes a task state to machinery's JSON.</summary>
    /// <param name="state">The state.</param>
    /// <returns>The UTF-8 JSON.</returns>
    public static byte[] SerializeState(TaskStateRecord state)
    {
        ArgumentNullException.ThrowIfNull(state);
        var (buffer, writer) = RentWriter();
        JsonSerializer.Serialize(writer, state, WireJsonContext.Go.TaskStateRecord);
        writer.Flush();
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Parses machinery's task state JSON.</summary>
    /// <param name="utf8Json">The UTF-8 JSON.</param>
    /// <returns>The state.</returns>
    /// <exception cref="WireFormatException">The JSON is malformed or is not a task state.</exception>
    public static TaskStateRecord DeserializeState(ReadOnlySpan<byte> utf8Json)
    {
        try
        {
            return JsonSerializer.Deserialize(utf8Json, WireJsonContext.Go.TaskStateRecord)
                ?? throw new WireFormatException("The task state is null.");
        }
        catch (JsonException ex)
        {
            throw new WireFormatException($"Malformed task state: {ex.Message}", ex);
        }
    }

    /// <summary>Serializes a group meta to machinery's JSON.</summary>
    /// <param name="meta">The group meta.</param>
    /// <returns>The UTF-8 JSON.</returns>
    public static byte[] SerializeGroupMeta(GroupMeta meta)
    {
        ArgumentNullException.ThrowIfNull(meta);
        var (buffer, writer) = RentWriter();
        JsonSerializer.Serialize(writer, meta, WireJsonContext.Go.GroupMeta);
        writer.Flush();
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Parses machinery's group meta JSON.</summary>
    /// <param name="utf8Json">The UTF-8 JSON.</param>
    /// <returns>The group meta.</returns>
    /// <exception cref="WireFormatException">The JSON is malformed or is not a group meta.</exception>
    public static GroupMeta DeserializeGroupMeta(ReadOnlySpan<byte> utf8Json)
    {
        try
        {
            return JsonSerializer.Deserialize(utf8Json, WireJsonContext.Go.GroupMeta)
                ?? throw new WireFormatException("The group meta is null.");
        }
        catch (JsonException ex)
        {
            throw new WireFormatException($"Malformed group meta: {ex.Message}", ex);
        }
    }

    private static (ArrayBufferWriter<byte> Buffer, Utf8JsonWriter Writer) RentWriter()
    {
        var buffer = t_buffer ??= new ArrayBufferWriter<byte>(1024);
        buffer.ResetWrittenCount();
        var writer = t_writer ??= new Utf8JsonWriter(buffer, WriterOptions);
        writer.Reset(buffer);
        return (buffer, writer);
    }
}

/// <summary>A message, state or group meta that is not valid machinery JSON.</summary>
public sealed class WireFormatException : FormatException
{
    /// <summary>Creates the exception.</summary>
    public WireFormatException()
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">What is wrong.</param>
    public WireFormatException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception.</summary>
    /// <param name="message">What is wrong.</param>
    /// <param name="innerException">The parser's error.</param>
    public WireFormatException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
