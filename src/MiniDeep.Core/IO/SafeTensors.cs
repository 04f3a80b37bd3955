using System.Buffers.Binary;
using System.Text;
using System.Text.Json;

namespace MiniDeep.IO;

/// <summary>
/// A file that is not valid safetensors: <see cref="Field"/> names the part at fault (e.g. "header
/// length", "data_offsets of 'fc1.weight'"), the message says what was found and what was expected.
/// </summary>
public sealed class SafeTensorsFormatException(string field, string message) : FormatException($"safetensors: {field}: {message}")
{
    /// <summary>The part of the file at fault.</summary>
    public string Field { get; } = field;
}

/// <summary>
/// The safetensors format (https://github.com/huggingface/safetensors): 8 bytes of little-endian
/// unsigned header length N, N bytes of UTF-8 JSON (a map from tensor name to {"dtype", "shape",
/// "data_offsets": [begin, end]} plus an optional "__metadata__" map of strings), then the data buffer:
/// each tensor's elements row-major, little-endian, at [begin, end) relative to the buffer's start.
/// </summary>
/// <remarks>
/// Reading trusts nothing in the file. The header length is checked against a cap and the file's size
/// before anything is allocated; the JSON must start with '{', be valid UTF-8, nest at most 4 levels and
/// name each key once; every dtype must be known, every shape non-negative with an element count and byte
/// size that do not overflow and equal the tensor's byte range; the ranges must lie in the buffer, not
/// overlap, and leave no hole (the buffer is exactly the tensors). Every failure is a
/// <see cref="SafeTensorsFormatException"/>; memory used is bounded by the file's size.
/// Writing follows the same rules: keys in ordinal order, data in that order with no gaps, the header
/// padded with spaces to a multiple of 8 bytes (as the reference implementation does) so that the
/// buffer starts aligned.
/// </remarks>
public static class SafeTensors
{
    /// <summary>The largest header read: 100,000,000 bytes, the reference implementation's limit.</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private const string MetadataKey = "__metadata__";

    private static string Code(DType t) => t switch
    {
        DType.Float32 => "F32",
        DType.Float64 => "F64",
        DType.Int32 => "I32",
        DType.Bool => "BOOL",
        _ => throw new ArgumentOutOfRangeException(nameof(t)),
    };

    private static DType? FromCode(string code) => code switch
    {
        "F32" => DType.Float32,
        "F64" => DType.Float64,
        "I32" => DType.Int32,
        "BOOL" => DType.Bool,
        _ => null,
    };

    // ----- writing -----

    /// <summary>The safetensors bytes of these tensors (and optional string metadata).</summary>
    public static byte[] Serialize(IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var names = tensors.Keys.OrderBy(k => k, StringComparer.Ordinal).ToList();
        foreach (var name in names)
        {
            if (name == MetadataKey) throw new ArgumentException($"safetensors: '{MetadataKey}' is reserved and cannot name a tensor");
            if (name.Length == 0) throw new ArgumentException("safetensors: a tensor name cannot be empty");
        }
        var data = new List<byte[]>(names.Count);
        using var header = new MemoryStream();
        using (var json = new Utf8JsonWriter(header))
        {
            json.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                json.WriteStartObject(MetadataKey);
                foreach (var (k, v) in metadata.OrderBy(p => p.Key, StringComparer.Ordinal)) json.WriteString(k, v);
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (var name in names)
            {
                var bytes = ElementBytes(tensors[name]);
                data.Add(bytes);
                json.WriteStartObject(name);
                json.WriteString("dtype", Code(tensors[name].DType));
                json.WriteStartArray("shape");
                foreach (int d in tensors[name].Shape.ToArray()) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + bytes.Length);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += bytes.Length;
            }
            json.WriteEndObject();
        }
        int headerLength = (int)header.Length;
        int padded = (headerLength + 7) / 8 * 8;
        long total = 8L + padded + data.Sum(d => (long)d.Length);
        if (total > Array.MaxLength) throw new ArgumentException($"safetensors: {total:N0} bytes do not fit one array; save fewer tensors per file");
        var file = new byte[total];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)padded);
        header.GetBuffer().AsSpan(0, headerLength).CopyTo(file.AsSpan(8));
        file.AsSpan(8 + headerLength, padded - headerLength).Fill((byte)' ');
        long at = 8 + padded;
        foreach (var d in data) { d.CopyTo(file, at); at += d.Length; }
        return file;
    }

    // Row-major little-endian bytes of a tensor on any device (the backend copies them to the host).
    private static byte[] ElementBytes(Tensor t) => IO.ElementBytes.Encode(t.Backend.ToArray(t.AsView));

    /// <summary>Writes the tensors to <paramref name="path"/> atomically (a complete file or the old one, never half of one).</summary>
    public static void Save(string path, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, string>? metadata = null) =>
        AtomicFile.WriteAllBytes(path, Serialize(tensors, metadata));

    /// <summary>Saves a module's state dict (parameters and buffers by dotted name).</summary>
    public static void Save(string path, Nn.Module module, IReadOnlyDictionary<string, string>? metadata = null) => Save(path, module.StateDict(), metadata);

    // ----- reading -----

    /// <summary>The tensors and metadata of a safetensors file; throws <see cref="SafeTensorsFormatException"/> when it is not one.</summary>
    public static (Dictionary<string, Tensor> Tensors, Dictionary<string, string> Metadata) Load(string path)
    {
        using var stream = File.OpenRead(path);
        return Read(stream);
    }

    /// <summary>Loads a file's tensors into a module's parameters and buffers (strict: names and shapes must match).</summary>
    public static void Load(string path, Nn.Module module) => module.LoadStateDict(Load(path).Tensors);

    /// <summary>Parses safetensors bytes.</summary>
    public static (Dictionary<string, Tensor> Tensors, Dictionary<string, string> Metadata) Deserialize(ReadOnlySpan<byte> bytes)
    {
        using var stream = new MemoryStream(bytes.ToArray(), writable: false);
        return Read(stream);
    }

    /// <summary>Parses a safetensors stream (seekable, its length the file's size).</summary>
    public static (Dictionary<string, Tensor> Tensors, Dictionary<string, string> Metadata) Read(Stream stream)
    {
        long fileLength = stream.Length - stream.Position;
        if (fileLength < 8) throw new SafeTensorsFormatException("header length", $"the file has {fileLength} bytes; the 8-byte header length is missing");
        Span<byte> lengthBytes = stackalloc byte[8];
        stream.ReadExactly(lengthBytes);
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes);
        if (n < 2) throw new SafeTensorsFormatException("header length", $"{n} bytes cannot hold a JSON object");
        if (n > MaxHeaderBytes) throw new SafeTensorsFormatException("header length", $"{n:N0} bytes is above the {MaxHeaderBytes:N0}-byte limit");
        if ((long)n > fileLength - 8) throw new SafeTensorsFormatException("header length", $"{n:N0} bytes, but only {fileLength - 8:N0} follow the length field");
        var header = new byte[n];
        stream.ReadExactly(header);
        long bufferLength = fileLength - 8 - (long)n;

        var entries = ParseHeader(header, out var metadata);
        // The ranges, in file order, must tile the buffer exactly: no overlap, no hole, nothing after.
        long expected = 0;
        foreach (var e in entries.OrderBy(e => e.Begin).ThenBy(e => e.End))
        {
            if (e.Begin != expected)
                throw new SafeTensorsFormatException($"data_offsets of '{e.Name}'", e.Begin < expected
                    ? $"[{e.Begin}, {e.End}) overlaps the tensor before it, which ends at {expected}"
                    : $"[{e.Begin}, {e.End}) leaves a hole of {e.Begin - expected} bytes after {expected}");
            expected = e.End;
        }
        if (expected != bufferLength)
            throw new SafeTensorsFormatException("data buffer", expected > bufferLength
                ? $"the tensors need {expected:N0} bytes but the file holds {bufferLength:N0} after the header"
                : $"{bufferLength - expected:N0} bytes after the last tensor belong to none");

        long dataStart = stream.Position;
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var e in entries)
        {
            stream.Position = dataStart + e.Begin;
            var bytes = new byte[e.End - e.Begin];
            stream.ReadExactly(bytes);
            tensors[e.Name] = Decode(e, bytes);
        }
        return (tensors, metadata);
    }

    private sealed record Entry(string Name, DType DType, int[] Shape, long Begin, long End);

    private static Tensor Decode(Entry e, byte[] b) =>
        Tensor.FromArray(IO.ElementBytes.Decode(e.DType, b, littleEndian: true,
            (i, v) => new SafeTensorsFormatException($"data of '{e.Name}'", $"byte {v} at element {i} is not a bool (0 or 1)")), e.Shape, Device.Cpu);

    // The header's JSON, read token by token: duplicate keys, depth and every field checked as they come.
    private static List<Entry> ParseHeader(byte[] header, out Dictionary<string, string> metadata)
    {
        if (header[0] != (byte)'{') throw new SafeTensorsFormatException("header", $"starts with byte 0x{header[0]:X2}, not '{{'");
        try { _ = new UTF8Encoding(false, throwOnInvalidBytes: true).GetCharCount(header); }
        catch (DecoderFallbackException) { throw new SafeTensorsFormatException("header", "is not valid UTF-8"); }
        // The reference writer pads the JSON with spaces; whitespace after it is allowed, nothing else.
        var reader = new Utf8JsonReader(header, new JsonReaderOptions { MaxDepth = 4, CommentHandling = JsonCommentHandling.Disallow, AllowTrailingCommas = false });
        var entries = new List<Entry>();
        metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        try
        {
            Expect(ref reader, JsonTokenType.StartObject, "header");
            while (Next(ref reader, "header") != JsonTokenType.EndObject)
            {
                string name = reader.GetString()!;
                if (!seen.Add(name)) throw new SafeTensorsFormatException($"key '{name}'", "appears twice in the header");
                if (name == MetadataKey) { ReadMetadata(ref reader, metadata); continue; }
                if (name.Length == 0) throw new SafeTensorsFormatException("key ''", "a tensor needs a name");
                entries.Add(ReadEntry(ref reader, name));
            }
            if (reader.Read()) throw new SafeTensorsFormatException("header", $"has {reader.TokenType} after the closing '}}'");
        }
        catch (JsonException e)
        {
            throw new SafeTensorsFormatException("header", $"is not valid JSON: {e.Message}");
        }
        return entries;
    }

    private static JsonTokenType Next(ref Utf8JsonReader reader, string field)
    {
        if (!reader.Read()) throw new SafeTensorsFormatException(field, "ends early");
        return reader.TokenType;
    }

    private static void Expect(ref Utf8JsonReader reader, JsonTokenType type, string field)
    {
        var t = Next(ref reader, field);
        if (t != type) throw new SafeTensorsFormatException(field, $"expected {type}, found {t}");
    }

    private static void ReadMetadata(ref Utf8JsonReader reader, Dictionary<string, string> metadata)
    {
        Expect(ref reader, JsonTokenType.StartObject, MetadataKey);
        while (Next(ref reader, MetadataKey) != JsonTokenType.EndObject)
        {
            string key = reader.GetString()!;
            if (Next(ref reader, MetadataKey) != JsonTokenType.String)
                throw new SafeTensorsFormatException($"{MetadataKey}.{key}", $"must be a string, found {reader.TokenType}");
            if (!metadata.TryAdd(key, reader.GetString()!)) throw new SafeTensorsFormatException($"{MetadataKey}.{key}", "appears twice");
        }
    }

    private static Entry ReadEntry(ref Utf8JsonReader reader, string name)
    {
        string where = $"'{name}'";
        Expect(ref reader, JsonTokenType.StartObject, where);
        DType? dtype = null; int[]? shape = null; long[]? offsets = null;
        string? dtypeCode = null;
        var fields = new HashSet<string>(StringComparer.Ordinal);
        while (Next(ref reader, where) != JsonTokenType.EndObject)
        {
            string field = reader.GetString()!;
            if (!fields.Add(field)) throw new SafeTensorsFormatException($"{field} of {where}", "appears twice");
            switch (field)
            {
                case "dtype":
                    if (Next(ref reader, $"dtype of {where}") != JsonTokenType.String) throw new SafeTensorsFormatException($"dtype of {where}", $"must be a string, found {reader.TokenType}");
                    dtypeCode = reader.GetString()!;
                    dtype = FromCode(dtypeCode) ?? throw new SafeTensorsFormatException($"dtype of {where}", $"'{dtypeCode}' is not one MiniDeep reads (F32, F64, I32, BOOL)");
                    break;
                case "shape":
                    shape = [.. ReadIntegers(ref reader, $"shape of {where}", int.MaxValue).Select(v => (int)v)];
                    break;
                case "data_offsets":
                    offsets = [.. ReadIntegers(ref reader, $"data_offsets of {where}", long.MaxValue)];
                    break;
                default:
                    throw new SafeTensorsFormatException($"{field} of {where}", "is not a field of a tensor entry (dtype, shape, data_offsets)");
            }
        }
        if (dtype is null) throw new SafeTensorsFormatException($"dtype of {where}", "is missing");
        if (shape is null) throw new SafeTensorsFormatException($"shape of {where}", "is missing");
        if (offsets is null) throw new SafeTensorsFormatException($"data_offsets of {where}", "is missing");
        if (offsets.Length != 2) throw new SafeTensorsFormatException($"data_offsets of {where}", $"has {offsets.Length} numbers, not [begin, end]");
        if (offsets[1] < offsets[0]) throw new SafeTensorsFormatException($"data_offsets of {where}", $"end {offsets[1]} is before begin {offsets[0]}");
        // Elements × element size, overflow-checked, must be the byte range.
        long numel = 1;
        foreach (int d in shape)
            if (d != 0 && numel > Array.MaxLength / d)
                throw new SafeTensorsFormatException($"shape of {where}", $"[{string.Join(", ", shape)}] has more elements than an array can hold");
            else numel *= d;
        long bytes = numel * dtype.Value.SizeOf();
        if (bytes != offsets[1] - offsets[0])
            throw new SafeTensorsFormatException($"data_offsets of {where}", $"[{offsets[0]}, {offsets[1]}) holds {offsets[1] - offsets[0]} bytes, but shape [{string.Join(", ", shape)}] of {dtypeCode} needs {bytes}");
        return new Entry(name, dtype.Value, shape, offsets[0], offsets[1]);
    }

    private static List<long> ReadIntegers(ref Utf8JsonReader reader, string field, long max)
    {
        Expect(ref reader, JsonTokenType.StartArray, field);
        var values = new List<long>();
        while (Next(ref reader, field) != JsonTokenType.EndArray)
        {
            if (reader.TokenType != JsonTokenType.Number || !reader.TryGetInt64(out long v) || v < 0 || v > max)
                throw new SafeTensorsFormatException(field, $"element {values.Count} must be an integer in [0, {max}]");
            values.Add(v);
            if (values.Count > 64) throw new SafeTensorsFormatException(field, "has more than 64 entries");
        }
        return values;
    }
}
