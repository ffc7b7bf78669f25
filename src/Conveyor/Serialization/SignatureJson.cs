using System.Text.Json;

namespace Conveyor.Serialization;

/// <summary>
/// Machinery's signature JSON, read and written by hand on <see cref="Utf8JsonReader"/> and
/// <see cref="Utf8JsonWriter"/>: an argument's value is typed by its sibling <c>Type</c> field, which a
/// generated serializer cannot express, and this is the hot path of every publish and every delivery.
/// </summary>
internal static class SignatureJson
{
    private const int MaxDepth = 64;

    // Property names encoded once: the writer then copies them without checking for characters to escape.
    private static readonly JsonEncodedText ArgsName = JsonEncodedText.Encode("Args");
    private static readonly JsonEncodedText BrokerMessageGroupIdName = JsonEncodedText.Encode("BrokerMessageGroupId");
    private static readonly JsonEncodedText ChordCallbackName = JsonEncodedText.Encode("ChordCallback");
    private static readonly JsonEncodedText ETAName = JsonEncodedText.Encode("ETA");
    private static readonly JsonEncodedText GroupTaskCountName = JsonEncodedText.Encode("GroupTaskCount");
    private static readonly JsonEncodedText GroupUUIDName = JsonEncodedText.Encode("GroupUUID");
    private static readonly JsonEncodedText HeadersName = JsonEncodedText.Encode("Headers");
    private static readonly JsonEncodedText IgnoreWhenTaskNotRegisteredName = JsonEncodedText.Encode("IgnoreWhenTaskNotRegistered");
    private static readonly JsonEncodedText ImmutableName = JsonEncodedText.Encode("Immutable");
    private static readonly JsonEncodedText NameName = JsonEncodedText.Encode("Name");
    private static readonly JsonEncodedText OnErrorName = JsonEncodedText.Encode("OnError");
    private static readonly JsonEncodedText OnSuccessName = JsonEncodedText.Encode("OnSuccess");
    private static readonly JsonEncodedText PriorityName = JsonEncodedText.Encode("Priority");
    private static readonly JsonEncodedText RetryCountName = JsonEncodedText.Encode("RetryCount");
    private static readonly JsonEncodedText RetryTimeoutName = JsonEncodedText.Encode("RetryTimeout");
    private static readonly JsonEncodedText RoutingKeyName = JsonEncodedText.Encode("RoutingKey");
    private static readonly JsonEncodedText SQSReceiptHandleName = JsonEncodedText.Encode("SQSReceiptHandle");
    private static readonly JsonEncodedText StopTaskDeletionOnErrorName = JsonEncodedText.Encode("StopTaskDeletionOnError");
    private static readonly JsonEncodedText TypeName = JsonEncodedText.Encode("Type");
    private static readonly JsonEncodedText UUIDName = JsonEncodedText.Encode("UUID");
    private static readonly JsonEncodedText ValueName = JsonEncodedText.Encode("Value");

    public static void Write(Utf8JsonWriter writer, Signature signature, int depth = 0)
    {
        if (depth > MaxDepth)
        {
            throw new InvalidOperationException($"Callbacks are nested deeper than {MaxDepth} levels.");
        }

        writer.WriteStartObject();
        writer.WriteString(UUIDName, signature.Id);
        writer.WriteString(NameName, signature.Name);
        writer.WriteString(RoutingKeyName, signature.RoutingKey);
        writer.WritePropertyName(ETAName);
        if (signature.Eta is { } eta)
        {
            GoTime.Write(writer, eta);
        }
        else
        {
            writer.WriteNullValue();
        }

        writer.WriteString(GroupUUIDName, signature.GroupId);
        writer.WriteNumber(GroupTaskCountName, signature.GroupTaskCount);
        writer.WritePropertyName(ArgsName);
        if (signature.ArgsOrNull is { } args)
        {
            writer.WriteStartArray();
            foreach (var arg in args)
            {
                writer.WriteStartObject();
                writer.WriteString(NameName, arg.Name ?? string.Empty);
                writer.WriteString(TypeName, arg.Type);
                writer.WritePropertyName(ValueName);
                WireValues.Write(writer, arg.Value);
                writer.WriteEndObject();
            }

            writer.WriteEndArray();
        }
        else
        {
            writer.WriteNullValue();
        }

        writer.WritePropertyName(HeadersName);
        if (signature.HeadersOrNull is { } headers)
        {
            writer.WriteStartObject();
            // Headers is a Go map: encoding/json writes its keys sorted by their UTF-8 bytes, which ordinal order matches
            // for every key short of a mix of U+E000..U+FFFF and supplementary characters.
            foreach (var (key, value) in headers.Count > 1 ? headers.OrderBy(h => h.Key, StringComparer.Ordinal) : (IEnumerable<KeyValuePair<string, object?>>)headers)
            {
                writer.WritePropertyName(key);
                WireValues.Write(writer, value);
            }

            writer.WriteEndObject();
        }
        else
        {
            writer.WriteNullValue();
        }

        writer.WriteNumber(PriorityName, signature.Priority);
        writer.WriteBoolean(ImmutableName, signature.Immutable);
        writer.WriteNumber(RetryCountName, signature.RetryCount);
        writer.WriteNumber(RetryTimeoutName, signature.RetryTimeout);
        WriteCallbacks(writer, OnSuccessName, signature.OnSuccessOrNull, depth);
        WriteCallbacks(writer, OnErrorName, signature.OnErrorOrNull, depth);
        writer.WritePropertyName(ChordCallbackName);
        if (signature.ChordCallback is { } callback)
        {
            Write(writer, callback, depth + 1);
        }
        else
        {
            writer.WriteNullValue();
        }

        var extras = signature.WireExtras;
        writer.WriteString(BrokerMessageGroupIdName, extras?.BrokerMessageGroupId ?? string.Empty);
        writer.WriteString(SQSReceiptHandleName, extras?.SqsReceiptHandle ?? string.Empty);
        writer.WriteBoolean(StopTaskDeletionOnErrorName, extras?.StopTaskDeletionOnError ?? false);
        writer.WriteBoolean(IgnoreWhenTaskNotRegisteredName, signature.IgnoreWhenTaskNotRegistered);
        writer.WriteEndObject();
    }

    // Go writes a nil slice as null; an empty list here is the same as none.
    private static void WriteCallbacks(Utf8JsonWriter writer, JsonEncodedText name, List<Signature>? callbacks, int depth)
    {
        writer.WritePropertyName(name);
        if (callbacks is not { Count: > 0 })
        {
            writer.WriteNullValue();
            return;
        }

        writer.WriteStartArray();
        foreach (var callback in callbacks)
        {
            Write(writer, callback, depth + 1);
        }

        writer.WriteEndArray();
    }

    // machinery writes the keys in this order: checking the next expected key first skips the case-insensitive
    // lookup for every key of a Go- or Conveyor-written message. Other orders and cases still work.
    private static readonly (byte[] Utf8, string Lower)[] MachineryKeyOrder =
    [
        ("UUID"u8.ToArray(), "uuid"),
        ("Name"u8.ToArray(), "name"),
        ("RoutingKey"u8.ToArray(), "routingkey"),
        ("ETA"u8.ToArray(), "eta"),
        ("GroupUUID"u8.ToArray(), "groupuuid"),
        ("GroupTaskCount"u8.ToArray(), "grouptaskcount"),
        ("Args"u8.ToArray(), "args"),
        ("Headers"u8.ToArray(), "headers"),
        ("Priority"u8.ToArray(), "priority"),
        ("Immutable"u8.ToArray(), "immutable"),
        ("RetryCount"u8.ToArray(), "retrycount"),
        ("RetryTimeout"u8.ToArray(), "retrytimeout"),
        ("OnSuccess"u8.ToArray(), "onsuccess"),
        ("OnError"u8.ToArray(), "onerror"),
        ("ChordCallback"u8.ToArray(), "chordcallback"),
        ("BrokerMessageGroupId"u8.ToArray(), "brokermessagegroupid"),
        ("SQSReceiptHandle"u8.ToArray(), "sqsreceipthandle"),
        ("StopTaskDeletionOnError"u8.ToArray(), "stoptaskdeletiononerror"),
        ("IgnoreWhenTaskNotRegistered"u8.ToArray(), "ignorewhentasknotregistered"),
    ];

    private static readonly (byte[] Utf8, string Lower)[] TypedValueKeyOrder =
    [
        ("Name"u8.ToArray(), "name"),
        ("Type"u8.ToArray(), "type"),
        ("Value"u8.ToArray(), "value"),
    ];

    public static Signature Read(ref Utf8JsonReader reader, int depth = 0)
    {
        if (depth > MaxDepth)
        {
            throw new JsonException($"Callbacks are nested deeper than {MaxDepth} levels.");
        }

        if (reader.TokenType != JsonTokenType.StartObject)
        {
            throw new JsonException($"A signature must be a JSON object, not {reader.TokenType}.");
        }

        var signature = new Signature();
        string? brokerMessageGroupId = null;
        string? sqsReceiptHandle = null;
        var stopTaskDeletionOnError = false;
        Span<char> name = stackalloc char[32];
        var expected = 0;
        while (reader.Read())
        {
            if (reader.TokenType == JsonTokenType.EndObject)
            {
                if (brokerMessageGroupId is { Length: > 0 } || sqsReceiptHandle is { Length: > 0 } || stopTaskDeletionOnError)
                {
                    signature.WireExtras = new MachineryWireExtras(brokerMessageGroupId ?? string.Empty, sqsReceiptHandle ?? string.Empty, stopTaskDeletionOnError);
                }

                return signature;
            }

            var known = NextKey(ref reader, MachineryKeyOrder, ref expected, name, out var length);
            reader.Read();
            switch (known)
            {
                case "uuid": signature.Id = ReadString(ref reader, "UUID"); break;
                case "name": signature.Name = WireStrings.Read(ref reader, "Name"); break;
                case "routingkey": signature.RoutingKey = WireStrings.Read(ref reader, "RoutingKey"); break;
                case "eta": signature.Eta = reader.TokenType == JsonTokenType.Null ? null : GoTime.Read(ref reader); break;
                case "groupuuid": signature.GroupId = ReadString(ref reader, "GroupUUID"); break;
                case "grouptaskcount": signature.GroupTaskCount = ReadInt32(ref reader, "GroupTaskCount"); break;
                case "args": signature.SetArgs(ReadArgs(ref reader)); break;
                case "headers": signature.SetHeaders(ReadHeaders(ref reader)); break;
                case "priority":
                    var priority = ReadInt32(ref reader, "Priority");
                    signature.Priority = priority is >= 0 and <= 255 ? (byte)priority : throw new JsonException($"Priority {priority} is outside machinery's uint8 range.");
                    break;
                case "immutable": signature.Immutable = ReadBool(ref reader, "Immutable"); break;
                case "retrycount": signature.RetryCount = ReadInt32(ref reader, "RetryCount"); break;
                case "retrytimeout": signature.RetryTimeout = ReadInt32(ref reader, "RetryTimeout"); break;
                case "onsuccess": signature.SetOnSuccess(ReadCallbacks(ref reader, depth)); break;
                case "onerror": signature.SetOnError(ReadCallbacks(ref reader, depth)); break;
                case "chordcallback": signature.ChordCallback = reader.TokenType == JsonTokenType.Null ? null : Read(ref reader, depth + 1); break;
                case "brokermessagegroupid": brokerMessageGroupId = ReadString(ref reader, "BrokerMessageGroupId"); break;
                case "sqsreceipthandle": sqsReceiptHandle = ReadString(ref reader, "SQSReceiptHandle"); break;
                case "stoptaskdeletiononerror": stopTaskDeletionOnError = ReadBool(ref reader, "StopTaskDeletionOnError"); break;
                case "ignorewhentasknotregistered": signature.IgnoreWhenTaskNotRegistered = ReadBool(ref reader, "IgnoreWhenTaskNotRegistered"); break;
                default: reader.Skip(); break; // Go ignores unknown fields too.
            }
        }

        throw new JsonException("The signature ends before its closing brace.");
    }

    /// <summary>
    /// The current key: the expected one's lower-case name when it matches exactly; otherwise <see langword="null"/>,
    /// with the key lowered into <paramref name="scratch"/> (<paramref name="length"/> characters).
    /// </summary>
    private static string? NextKey(ref Utf8JsonReader reader, (byte[] Utf8, string Lower)[] order, ref int expected, scoped Span<char> scratch, out int length)
    {
        if (expected < order.Length && reader.ValueTextEquals(order[expected].Utf8))
        {
            length = 0;
            return order[expected++].Lower;
        }

        length = ReadLowerCaseName(ref reader, scratch);
        ReadOnlySpan<char> key = scratch[..length];
        for (var i = 0; i < order.Length; i++)
        {
            if (key.SequenceEqual(order[i].Lower))
            {
                expected = i + 1;
                return order[i].Lower;
            }
        }

        return null;
    }

    private static int ReadLowerCaseName(ref Utf8JsonReader reader, scoped Span<char> destination)
    {
        Span<byte> raw = stackalloc byte[64];
        var byteLength = reader.HasValueSequence || reader.ValueIsEscaped || reader.ValueSpan.Length > raw.Length
            ? CopyName(ref reader, raw)
            : Copy(reader.ValueSpan, raw);
        if (byteLength < 0 || byteLength > destination.Length)
        {
            return 0; // longer than any known field: skipped by the caller's default branch
        }

        for (var i = 0; i < byteLength; i++)
        {
            var b = raw[i];
            destination[i] = (char)(b is >= (byte)'A' and <= (byte)'Z' ? b + 32 : b);
        }

        return byteLength;

        static int Copy(ReadOnlySpan<byte> source, Span<byte> target)
        {
            source.CopyTo(target);
            return source.Length;
        }

        static int CopyName(ref Utf8JsonReader reader, scoped Span<byte> target)
        {
            var text = reader.GetString()!;
            return System.Text.Encoding.UTF8.GetByteCount(text) > target.Length ? -1 : System.Text.Encoding.UTF8.GetBytes(text, target);
        }
    }

    private static string ReadString(ref Utf8JsonReader reader, string field) => reader.TokenType switch
    {
        JsonTokenType.String => reader.GetString()!,
        JsonTokenType.Null => string.Empty,
        _ => throw new JsonException($"{field} must be a string, not {reader.TokenType}."),
    };

    private static int ReadInt32(ref Utf8JsonReader reader, string field) =>
        reader.TokenType == JsonTokenType.Number && reader.TryGetInt32(out var value)
            ? value
            : throw new JsonException($"{field} must be a 32-bit integer.");

    private static bool ReadBool(ref Utf8JsonReader reader, string field) => reader.TokenType switch
    {
        JsonTokenType.True => true,
        JsonTokenType.False => false,
        JsonTokenType.Null => false,
        _ => throw new JsonException($"{field} must be true or false."),
    };

    private static List<TaskArgument>? ReadArgs(ref Utf8JsonReader reader)
    {
        if (reader.TokenType == JsonTokenType.Null)
        {
            return null;
        }

        if (reader.TokenType != JsonTokenType.StartArray)
        {
            throw new JsonException("Args must be an array.");
        }

        var args = new List<TaskArgument>(2);
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            var (argName, type, value) = ReadTypedValue(ref reader, "Args", wantName: true);
            args.Add(new TaskArgument(type, value, argName));
        }

        return args;
    }

    /// <summary>Reads <c>{"Name"?,"Type","Value"}</c> in any key order (the value is read once its type is known).</summary>
    public static (string Name, string Type, object? Value) ReadTypedValue(ref Utf8JsonReader reader, string field, bool wantName)
    {
        if (reader.TokenType != JsonTokenType.StartObject)
        {
            throw new JsonException($"Each entry of {field} must be an object with Type and Value.");
        }

        string argName = string.Empty;
        string? type = null;
        object? value = null;
        var hasValue = false;
        Utf8JsonReader pendingValue = default;
        var valuePending = false;
        Span<char> name = stackalloc char[32];
        var expected = wantName ? 0 : 1;
        while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
        {
            var known = NextKey(ref reader, TypedValueKeyOrder, ref expected, name, out var length);
            reader.Read();
            switch (known)
            {
                case "name" when wantName:
                    argName = ReadString(ref reader, "Name");
                    break;
                case "type":
                    type = WireStrings.Read(ref reader, "Type");
                    if (valuePending)
                    {
                        value = WireValues.Read(ref pendingValue, type);
                        valuePending = false;
                        hasValue = true;
                    }

                    break;
                case "value":
                    if (type is not null)
                    {
                        value = WireValues.Read(ref reader, type);
                        hasValue = true;
                    }
                    else
                    {
                        // The type comes later: remember where the value is and read it then.
                        pendingValue = reader;
                        valuePending = true;
                        reader.Skip();
                    }

                    break;
                default:
                    reader.Skip();
                    break;
            }
        }

        if (type is null)
        {
            throw new JsonException($"An entry of {field} has no Type.");
        }

        if (!hasValue && !valuePending)
        {
            value = null;
        }

        return (argName, type, value);
    }

    private static Dictionary<string, object?>? ReadHeaders(ref Utf8JsonReader reader)
    {
        if (reader.TokenType == JsonTokenType.Null)
        {
            return null;
        }

        if (reader.TokenType != JsonTokenType.StartObject)
        {
            throw new JsonException("Headers must be an object.");
        }

        if (reader.Read() && reader.TokenType == JsonTokenType.EndObject)
        {
            return EmptyHeaders; // "{}": the signature makes its own dictionary if someone adds a header
        }

        var headers = new Dictionary<string, object?>(StringComparer.Ordinal);
        do
        {
            var key = reader.GetString()!;
            reader.Read();
            headers[key] = WireValues.ReadHeaderValue(ref reader);
        }
        while (reader.Read() && reader.TokenType != JsonTokenType.EndObject);

        return headers;
    }

    /// <summary>Marks a parsed <c>"Headers":{}</c>; never mutated (see <see cref="Signature.Headers"/>).</summary>
    internal static readonly Dictionary<string, object?> EmptyHeaders = new(0, StringComparer.Ordinal);

    private static List<Signature>? ReadCallbacks(ref Utf8JsonReader reader, int depth)
    {
        if (reader.TokenType == JsonTokenType.Null)
        {
            return null;
        }

        if (reader.TokenType != JsonTokenType.StartArray)
        {
            throw new JsonException("OnSuccess and OnError must be arrays.");
        }

        var callbacks = new List<Signature>();
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            callbacks.Add(Read(ref reader, depth + 1));
        }

        return callbacks;
    }
}
