using System.Buffers.Binary;
using System.Text;
using MiniDeep.IO;

namespace MiniDeep.Compression;

/// <summary>How a tensor is stored in a <see cref="CompressedArchive"/>.</summary>
public enum StorageKind : byte
{
    /// <summary>Every entry as a 32-bit float.</summary>
    Dense = 0,
    /// <summary>Non-zero entries only: relative positions, and each value as a 32-bit float.</summary>
    Sparse = 1,
    /// <summary>Non-zero entries only: relative positions, and each value as a code into a codebook of shared floats.</summary>
    SparseShared = 2,
}

/// <summary>
/// One tensor in compressed form (Han, Mao &amp; Dally 2016, Fig. 2 and §3): the positions of its
/// non-zero entries as gaps from the previous one, each in <see cref="IndexBits"/> bits, and their
/// values either as floats or as codes into a codebook.
/// </summary>
/// <remarks>
/// A gap that does not fit is split with escapes: the gap symbol 0 means "move 2^bits − 1 positions on,
/// with no entry here", so no filler value is stored (Han et al. store a filler zero instead). Gaps of
/// 1 to 2^bits − 1 each carry one entry.
/// </remarks>
public sealed class CompressedTensor
{
    /// <summary>Shape of the tensor.</summary>
    public int[] Shape { get; }
    /// <summary>The storage kind.</summary>
    public StorageKind Kind { get; }
    /// <summary>Bits per gap symbol (sparse kinds).</summary>
    public int IndexBits { get; }
    /// <summary>The gap symbols, escapes included (sparse kinds).</summary>
    public int[] Gaps { get; }
    /// <summary>Per entry: the float's bits (<see cref="StorageKind.Sparse"/>, <see cref="StorageKind.Dense"/>) or the code (<see cref="StorageKind.SparseShared"/>).</summary>
    public int[] Values { get; }
    /// <summary>The shared values (<see cref="StorageKind.SparseShared"/>), else empty.</summary>
    public float[] Codebook { get; }
    /// <summary>Bits per code (<see cref="StorageKind.SparseShared"/>).</summary>
    public int CodeBits { get; }

    private CompressedTensor(int[] shape, StorageKind kind, int indexBits, int[] gaps, int[] values, float[] codebook, int codeBits)
    {
        Shape = shape; Kind = kind; IndexBits = indexBits; Gaps = gaps; Values = values; Codebook = codebook; CodeBits = codeBits;
    }

    /// <summary>Every entry as a float (biases, layers left uncompressed).</summary>
    public static CompressedTensor Dense(Tensor t) =>
        new(t.Shape.ToArray(), StorageKind.Dense, 0, [], Float32Values("Dense", t).Select(BitConverter.SingleToInt32Bits).ToArray(), [], 32);

    /// <summary>The non-zero entries of <paramref name="t"/> with their float values (pruning without weight sharing).</summary>
    public static CompressedTensor Sparse(Tensor t, int indexBits = 5)
    {
        var data = Float32Values("Sparse", t);
        var (gaps, entries) = EncodePositions("Sparse", data.Length, i => data[i] != 0, indexBits);
        return new(t.Shape.ToArray(), StorageKind.Sparse, indexBits, gaps, entries.Select(i => BitConverter.SingleToInt32Bits(data[i])).ToArray(), [], 32);
    }

    /// <summary>The live entries of a shared-weight tensor, as codes into its codebook.</summary>
    public static CompressedTensor Shared(SharedWeights shared, int indexBits = 5)
    {
        var codes = shared.Codes;
        var (gaps, entries) = EncodePositions("Shared", codes.Length, i => codes[i] >= 0, indexBits);
        return new(shared.Weight.Shape.ToArray(), StorageKind.SparseShared, indexBits, gaps, entries.Select(i => codes[i]).ToArray(),
            (float[])shared.Centroids.Clone(), shared.CodeBits);
    }

    /// <summary>Entries stored (non-zeros for the sparse kinds).</summary>
    public int EntryCount => Values.Length;

    /// <summary>The tensor back, as float32.</summary>
    public Tensor ToTensor()
    {
        int n = Shape.Aggregate(1, (a, b) => a * b);
        var data = new float[n];
        float Value(int e) => Kind == StorageKind.SparseShared ? Codebook[Values[e]] : BitConverter.Int32BitsToSingle(Values[e]);
        if (Kind == StorageKind.Dense)
            for (int i = 0; i < n; i++) data[i] = Value(i);
        else
        {
            int escape = (1 << IndexBits) - 1, position = -1, entry = 0;
            foreach (int gap in Gaps)
            {
                if (gap == 0) { position += escape; continue; }
                position += gap;
                if (position >= n) throw new InvalidDataException($"CompressedTensor: an entry at position {position} lies outside the tensor's {n} entries");
                data[position] = Value(entry++);
            }
        }
        return Tensor.FromArray(data, Shape);
    }

    // The archive stores float32, and ToTensor gives float32 back: anything else would come back
    // rounded (float64) or as another type (int32, bool) without a word.
    private static float[] Float32Values(string op, Tensor t) => t.DType == DType.Float32 ? t.ToFloatArray()
        : throw new ArgumentException($"CompressedTensor.{op}: the archive stores float32 tensors, got {t.DType.Name()} (convert with To(DType.Float32) if rounding is intended)");

    internal static CompressedTensor Create(int[] shape, StorageKind kind, int indexBits, int[] gaps, int[] values, float[] codebook, int codeBits) =>
        new(shape, kind, indexBits, gaps, values, codebook, codeBits);

    // Gaps from the previous entry (the first from position −1), escapes inserted where a gap exceeds
    // 2^bits − 1.
    private static (int[] Gaps, List<int> Entries) EncodePositions(string op, int n, Func<int, bool> present, int bits)
    {
        if (bits < 1 || bits > 16) throw new ArgumentOutOfRangeException(nameof(bits), $"CompressedTensor.{op}: index bits must lie in [1, 16], got {bits}");
        int escape = (1 << bits) - 1;
        var gaps = new List<int>();
        var entries = new List<int>();
        int previous = -1;
        for (int i = 0; i < n; i++)
        {
            if (!present(i)) continue;
            int gap = i - previous;
            while (gap > escape) { gaps.Add(0); gap -= escape; }
            gaps.Add(gap);
            entries.Add(i);
            previous = i;
        }
        return (gaps.ToArray(), entries);
    }
}

/// <summary>
/// A file of named compressed tensors whose size is the thing being measured: headers, shapes,
/// codebooks, gap and value streams, Huffman tables, everything, so that "bytes" in a report means
/// the length of this file. Optionally the gap symbols and the codes are Huffman-coded (Han et al.'s
/// third stage); floats are stored as they are.
/// </summary>
/// <remarks>
/// Layout (little-endian): "MDCZ", version 2, a flags byte (bit 0: Huffman), the tensor count; then per
/// tensor: its name (length-prefixed UTF-8), kind, rank and dimensions, index bits, code bits, the
/// codebook, the gap count and entry count, and the two bit streams (gaps, then values), preceded by
/// their Huffman code lengths when the flag is set; last, the <see cref="Crc32"/> of every byte before
/// it. Counts and dimensions are LEB128 varints. Version 1 is the same without the checksum, and is
/// still read.
/// </remarks>
public static class CompressedArchive
{
    private static readonly byte[] Magic = "MDCZ"u8.ToArray();
    private const byte Version = 2;
    private const byte UncheckedVersion = 1;

    /// <summary>The archive's bytes.</summary>
    public static byte[] Encode(IReadOnlyList<(string Name, CompressedTensor Tensor)> tensors, bool huffman)
    {
        var names = new HashSet<string>();
        foreach (var (name, _) in tensors)
        {
            if (string.IsNullOrEmpty(name)) throw new ArgumentException("CompressedArchive.Encode: a tensor name cannot be empty");
            if (!names.Add(name)) throw new ArgumentException($"CompressedArchive.Encode: the name '{name}' appears twice (a reader keyed by name would keep one and lose the other)");
        }
        var ms = new MemoryStream();
        var w = new BinaryWriter(ms);
        w.Write(Magic); w.Write(Version); w.Write((byte)(huffman ? 1 : 0));
        WriteVarint(w, tensors.Count);
        foreach (var (name, t) in tensors)
        {
            var nameBytes = Encoding.UTF8.GetBytes(name);
            WriteVarint(w, nameBytes.Length); w.Write(nameBytes);
            w.Write((byte)t.Kind);
            w.Write((byte)t.Shape.Length);
            foreach (int d in t.Shape) WriteVarint(w, d);
            w.Write((byte)t.IndexBits); w.Write((byte)t.CodeBits);
            WriteVarint(w, t.Codebook.Length);
            foreach (float c in t.Codebook) w.Write(c);
            WriteVarint(w, t.Gaps.Length);
            WriteVarint(w, t.Values.Length);
            var bits = new BitWriter();
            bool codedValues = t.Kind == StorageKind.SparseShared;
            if (huffman)
            {
                // Code lengths first (one byte per symbol of each alphabet), then the coded streams.
                HuffmanCode? gapCode = t.Gaps.Length > 0 ? HuffmanCode.FromCounts(Counts(t.Gaps, 1 << t.IndexBits)) : null;
                HuffmanCode? valueCode = codedValues && t.Values.Length > 0 ? HuffmanCode.FromCounts(Counts(t.Values, t.Codebook.Length)) : null;
                if (gapCode is not null) foreach (int len in gapCode.Lengths) w.Write((byte)len);
                if (valueCode is not null) foreach (int len in valueCode.Lengths) w.Write((byte)len);
                foreach (int g in t.Gaps) gapCode!.Write(bits, g);
                foreach (int v in t.Values)
                    if (valueCode is not null) valueCode.Write(bits, v); else bits.Write((uint)v, 32);
            }
            else
            {
                foreach (int g in t.Gaps) bits.Write((ulong)g, t.IndexBits);
                foreach (int v in t.Values) bits.Write(codedValues ? (ulong)v : (uint)v, t.CodeBits);
            }
            var payload = bits.ToArray();
            WriteVarint(w, payload.Length);
            w.Write(payload);
        }
        w.Flush();
        // The checksum closes the file: a flipped bit in a bias or a codebook would otherwise decode,
        // without a word, into another network.
        w.Write(Crc32.Compute(ms.GetBuffer().AsSpan(0, (int)ms.Length)));
        w.Flush();
        return ms.ToArray();
    }

    /// <summary>Reads an archive back; throws <see cref="InvalidDataException"/> on anything malformed, truncated or damaged.</summary>
    public static List<(string Name, CompressedTensor Tensor)> Decode(byte[] bytes)
    {
        try
        {
            var r = new BinaryReader(new MemoryStream(bytes));
            if (!r.ReadBytes(4).AsSpan().SequenceEqual(Magic)) throw new InvalidDataException("CompressedArchive: not a MiniDeep compressed archive (bad magic)");
            byte version = r.ReadByte();
            if (version != Version && version != UncheckedVersion)
                throw new InvalidDataException($"CompressedArchive: version {version} is not supported (this build reads {UncheckedVersion} and {Version})");
            // Checked before anything else is read: a damaged count could otherwise ask for gigabytes.
            int end = bytes.Length;
            if (version == Version)
            {
                if (bytes.Length < 4 + 1 + 4) throw new EndOfStreamException();
                end = bytes.Length - 4;
                uint stored = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(end)), actual = Crc32.Compute(bytes.AsSpan(0, end));
                if (stored != actual)
                    throw new InvalidDataException($"CompressedArchive: the checksum does not match the contents ({bytes.Length} bytes; stored 0x{stored:X8}, computed 0x{actual:X8}): the file is damaged or truncated");
                r = new BinaryReader(new MemoryStream(bytes, 0, end));
                r.BaseStream.Position = 5;
            }
            bool huffman = (r.ReadByte() & 1) != 0;
            int count = ReadVarint(r);
            var result = new List<(string, CompressedTensor)>(count);
            for (int k = 0; k < count; k++)
            {
                string name = Encoding.UTF8.GetString(r.ReadBytes(ReadVarint(r)));
                var kind = (StorageKind)r.ReadByte();
                if (kind is not (StorageKind.Dense or StorageKind.Sparse or StorageKind.SparseShared)) throw new InvalidDataException($"CompressedArchive: tensor '{name}' has unknown storage kind {(byte)kind}");
                var shape = new int[r.ReadByte()];
                for (int i = 0; i < shape.Length; i++) shape[i] = ReadVarint(r);
                int indexBits = r.ReadByte(), codeBits = r.ReadByte();
                var codebook = new float[ReadVarint(r)];
                for (int i = 0; i < codebook.Length; i++) codebook[i] = r.ReadSingle();
                var gaps = new int[ReadVarint(r)];
                var values = new int[ReadVarint(r)];
                bool codedValues = kind == StorageKind.SparseShared;
                HuffmanCode? gapCode = null, valueCode = null;
                if (huffman)
                {
                    if (gaps.Length > 0) gapCode = new HuffmanCode(r.ReadBytes(1 << indexBits).Select(b => (int)b).ToArray());
                    if (codedValues && values.Length > 0) valueCode = new HuffmanCode(r.ReadBytes(codebook.Length).Select(b => (int)b).ToArray());
                }
                int payloadLength = ReadVarint(r);
                var payload = r.ReadBytes(payloadLength);
                if (payload.Length != payloadLength) throw new EndOfStreamException();
                var bits = new BitReader(payload);
                for (int i = 0; i < gaps.Length; i++) gaps[i] = gapCode is not null ? gapCode.Read(bits) : (int)bits.Read(indexBits);
                for (int i = 0; i < values.Length; i++)
                    values[i] = valueCode is not null ? valueCode.Read(bits) : (int)(uint)bits.Read(codedValues ? codeBits : 32);
                if (codedValues && values.Any(v => v >= codebook.Length)) throw new InvalidDataException($"CompressedArchive: tensor '{name}' has a code beyond its {codebook.Length}-entry codebook");
                result.Add((name, CompressedTensor.Create(shape, kind, indexBits, gaps, values, codebook, codeBits)));
            }
            if (r.BaseStream.Position != end) throw new InvalidDataException($"CompressedArchive: {end - r.BaseStream.Position} bytes follow the last tensor");
            return result;
        }
        catch (EndOfStreamException)
        {
            throw new InvalidDataException($"CompressedArchive: the data ends early ({bytes.Length} bytes): truncated file?");
        }
    }

    /// <summary>Writes the archive to <paramref name="path"/> atomically and returns its size in bytes.</summary>
    public static long Save(string path, IReadOnlyList<(string Name, CompressedTensor Tensor)> tensors, bool huffman)
    {
        var bytes = Encode(tensors, huffman);
        AtomicFile.WriteAllBytes(path, bytes);
        return new FileInfo(path).Length;
    }

    /// <summary>Reads an archive file.</summary>
    public static List<(string Name, CompressedTensor Tensor)> Load(string path) => Decode(File.ReadAllBytes(path));

    private static long[] Counts(int[] symbols, int alphabet)
    {
        var counts = new long[alphabet];
        foreach (int s in symbols) counts[s]++;
        return counts;
    }

    private static void WriteVarint(BinaryWriter w, int value)
    {
        uint v = (uint)value;
        while (v >= 0x80) { w.Write((byte)(v | 0x80)); v >>= 7; }
        w.Write((byte)v);
    }

    private static int ReadVarint(BinaryReader r)
    {
        int value = 0, shift = 0;
        while (true)
        {
            byte b = r.ReadByte();
            value |= (b & 0x7F) << shift;
            if ((b & 0x80) == 0) return value;
            shift += 7;
            if (shift > 28) throw new InvalidDataException("CompressedArchive: a count is too long");
        }
    }
}
