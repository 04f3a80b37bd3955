using System.Buffers.Binary;
using System.IO.Compression;

namespace MiniDeep.Data;

/// <summary>A malformed IDX file. The message names the file and what is wrong with it.</summary>
public sealed class IdxFormatException(string path, string problem) : Exception($"{path}: {problem}")
{
    /// <summary>The file.</summary>
    public string Path { get; } = path;
}

/// <summary>The contents of an IDX file: its dimensions and its values (as float32, whatever the stored type).</summary>
public sealed record IdxArray(int[] Shape, float[] Values, byte TypeCode);

/// <summary>
/// Reader for the IDX format of MNIST and Fashion-MNIST (LeCun et al.): two zero bytes, a type code
/// (0x08 ubyte, 0x09 sbyte, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64), the number of
/// dimensions, that many big-endian int32 sizes, then the values, big-endian, row-major. Files may be
/// gzip-compressed (detected by the gzip magic bytes, not the file name).
/// </summary>
public static class Idx
{
    /// <summary>Reads and validates an IDX file.</summary>
    public static IdxArray Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no such IDX file", path);
        byte[] raw = File.ReadAllBytes(path);
        if (raw.Length >= 2 && raw[0] == 0x1f && raw[1] == 0x8b)
        {
            try
            {
                using var gz = new GZipStream(new MemoryStream(raw), CompressionMode.Decompress);
                using var ms = new MemoryStream();
                gz.CopyTo(ms);
                raw = ms.ToArray();
            }
            catch (Exception e) when (e is InvalidDataException or EndOfStreamException or IOException)
            {
                throw new IdxFormatException(path, $"corrupt gzip data ({e.Message})");
            }
            if (raw.Length == 0) throw new IdxFormatException(path, "corrupt gzip data: it decompresses to nothing");
        }
        return Parse(path, raw);
    }

    /// <summary>Parses IDX bytes; <paramref name="name"/> is used in error messages.</summary>
    public static IdxArray Parse(string name, ReadOnlySpan<byte> b)
    {
        if (b.Length < 4) throw new IdxFormatException(name, $"truncated header: {b.Length} bytes, an IDX header has at least 4");
        if (b[0] != 0 || b[1] != 0)
            throw new IdxFormatException(name, $"bad magic number 0x{b[0]:x2}{b[1]:x2}{b[2]:x2}{b[3]:x2}: IDX files start with two zero bytes");
        byte type = b[2];
        int size = type switch { 0x08 or 0x09 => 1, 0x0B => 2, 0x0C or 0x0D => 4, 0x0E => 8, _ => 0 };
        if (size == 0) throw new IdxFormatException(name, $"bad magic number: unknown element type code 0x{type:x2}");
        int rank = b[3];
        if (rank == 0) throw new IdxFormatException(name, "bad magic number: zero dimensions");
        int header = 4 + 4 * rank;
        if (b.Length < header) throw new IdxFormatException(name, $"truncated header: {rank} dimensions need {header} bytes, the file has {b.Length}");
        var shape = new int[rank];
        long count = 1;
        for (int d = 0; d < rank; d++)
        {
            int n = BinaryPrimitives.ReadInt32BigEndian(b.Slice(4 + 4 * d));
            if (n < 0) throw new IdxFormatException(name, $"dimension {d} has negative size {n}");
            shape[d] = n;
            count *= n;
            if (count > Array.MaxLength) throw new IdxFormatException(name, $"dimensions ({string.Join(", ", shape[..(d + 1)])}) describe more values than fit in memory");
        }
        long expected = header + count * size;
        if (b.Length < expected)
            throw new IdxFormatException(name, $"truncated data: dimensions ({string.Join(", ", shape)}) need {count} values ({expected} bytes), the file has {b.Length} bytes");
        if (b.Length > expected)
            throw new IdxFormatException(name, $"dimensions ({string.Join(", ", shape)}) disagree with the size: {b.Length - expected} bytes after the last value");
        var data = b.Slice(header);
        var values = new float[count];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = type switch
            {
                0x08 => data[i],
                0x09 => (sbyte)data[i],
                0x0B => BinaryPrimitives.ReadInt16BigEndian(data.Slice(2 * i)),
                0x0C => BinaryPrimitives.ReadInt32BigEndian(data.Slice(4 * i)),
                0x0D => BinaryPrimitives.ReadSingleBigEndian(data.Slice(4 * i)),
                _ => (float)BinaryPrimitives.ReadDoubleBigEndian(data.Slice(8 * i)),
            };
        }
        return new IdxArray(shape, values, type);
    }

    /// <summary>Writes an IDX file of unsigned bytes (for tests and tools); gzip when the name ends in .gz.</summary>
    public static void WriteUBytes(string path, int[] shape, byte[] values)
    {
        if (shape.Length is 0 or > 255) throw new ArgumentException($"Idx.WriteUBytes: 1 to 255 dimensions, got {shape.Length}");
        long count = 1;
        foreach (var d in shape)
        {
            if (d < 0) throw new ArgumentException($"Idx.WriteUBytes: dimension {d} in ({string.Join(", ", shape)}) is negative");
            count *= d;
        }
        if (count != values.Length)
            throw new ArgumentException($"Idx.WriteUBytes: dimensions ({string.Join(", ", shape)}) hold {count} values, {values.Length} were given");
        using var ms = new MemoryStream();
        ms.Write([0, 0, 0x08, (byte)shape.Length]);
        Span<byte> four = stackalloc byte[4];
        foreach (var d in shape) { BinaryPrimitives.WriteInt32BigEndian(four, d); ms.Write(four); }
        ms.Write(values);
        var bytes = ms.ToArray();
        if (path.EndsWith(".gz", StringComparison.OrdinalIgnoreCase))
        {
            using var outMs = new MemoryStream();
            using (var gz = new GZipStream(outMs, CompressionLevel.Fastest, leaveOpen: true)) gz.Write(bytes);
            bytes = outMs.ToArray();
        }
        MiniDeep.IO.AtomicFile.WriteAllBytes(path, bytes);
    }
}
