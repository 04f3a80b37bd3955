namespace MiniDeep.Compression;

/// <summary>Writes values of 1 to 57 bits into a byte array, least significant bit first.</summary>
public sealed class BitWriter
{
    private readonly List<byte> _bytes = [];
    private ulong _buffer;
    private int _filled;

    /// <summary>Bits written so far.</summary>
    public long BitCount => 8L * _bytes.Count + _filled;

    /// <summary>Appends the low <paramref name="bits"/> bits of <paramref name="value"/>.</summary>
    public void Write(ulong value, int bits)
    {
        if (bits < 0 || bits > 57) throw new ArgumentOutOfRangeException(nameof(bits), $"BitWriter.Write: 0 to 57 bits at a time, got {bits}");
        if (bits < 64 && (value >> bits) != 0) throw new ArgumentOutOfRangeException(nameof(value), $"BitWriter.Write: {value} does not fit in {bits} bits");
        _buffer |= value << _filled;
        _filled += bits;
        while (_filled >= 8)
        {
            _bytes.Add((byte)_buffer);
            _buffer >>= 8;
            _filled -= 8;
        }
    }

    /// <summary>The bytes written, the last one padded with zero bits.</summary>
    public byte[] ToArray()
    {
        var result = new byte[_bytes.Count + (_filled > 0 ? 1 : 0)];
        _bytes.CopyTo(result);
        if (_filled > 0) result[^1] = (byte)_buffer;
        return result;
    }
}

/// <summary>Reads what a <see cref="BitWriter"/> wrote.</summary>
public sealed class BitReader(ReadOnlyMemory<byte> bytes)
{
    private long _position;

    /// <summary>Bits read so far.</summary>
    public long Position => _position;

    /// <summary>Reads <paramref name="bits"/> bits (at most 57).</summary>
    public ulong Read(int bits)
    {
        if (bits < 0 || bits > 57) throw new ArgumentOutOfRangeException(nameof(bits), $"BitReader.Read: 0 to 57 bits at a time, got {bits}");
        if (_position + bits > 8L * bytes.Length)
            throw new InvalidDataException($"BitReader: the data ends after {8L * bytes.Length} bits; {bits} more were asked for at bit {_position}");
        var span = bytes.Span;
        ulong value = 0;
        for (int got = 0; got < bits;)
        {
            int byteIndex = (int)(_position >> 3), offset = (int)(_position & 7);
            int take = Math.Min(8 - offset, bits - got);
            ulong chunk = (ulong)(span[byteIndex] >> offset) & ((1UL << take) - 1);
            value |= chunk << got;
            got += take;
            _position += take;
        }
        return value;
    }
}

/// <summary>
/// A canonical Huffman code over symbols 0..n−1 (Huffman 1952): frequent symbols get short codes, so
/// skewed distributions, such as weight-sharing codes and the gaps between non-zero weights, take fewer
/// bits than a fixed width. Canonical: the code is determined by the code lengths alone, so a file stores
/// one length per symbol, not the tree.
/// </summary>
public sealed class HuffmanCode
{
    /// <summary>The longest code this implementation writes (a <see cref="BitWriter"/> call takes at most 57 bits).</summary>
    public const int MaxLength = 57;

    /// <summary>Code length in bits per symbol; 0 for a symbol that never occurs.</summary>
    public int[] Lengths { get; }

    private readonly ulong[] _codes;       // bit-reversed, so the LSB-first writer emits the code's first bit first
    private readonly Dictionary<(int Length, ulong Code), int> _decode = [];

    /// <summary>A code from per-symbol lengths (as stored in a file).</summary>
    public HuffmanCode(int[] lengths)
    {
        if (lengths.Any(l => l < 0 || l > MaxLength)) throw new ArgumentException($"HuffmanCode: code lengths must lie in [0, {MaxLength}]");
        // Kraft's inequality: the lengths must describe a prefix code.
        double kraft = lengths.Where(l => l > 0).Sum(l => Math.Pow(2, -l));
        if (kraft > 1 + 1e-12) throw new InvalidDataException($"HuffmanCode: the code lengths are not a prefix code (Kraft sum {kraft})");
        Lengths = lengths;
        _codes = new ulong[lengths.Length];
        // Canonical assignment: by length, then by symbol; each code is the previous one plus one,
        // shifted left whenever the length grows.
        var order = Enumerable.Range(0, lengths.Length).Where(s => lengths[s] > 0).OrderBy(s => lengths[s]).ThenBy(s => s).ToArray();
        ulong code = 0;
        int previous = order.Length > 0 ? lengths[order[0]] : 0;
        for (int i = 0; i < order.Length; i++)
        {
            int s = order[i], len = lengths[s];
            if (i > 0) code = (code + 1) << (len - previous);
            previous = len;
            _codes[s] = Reverse(code, len);
            _decode[(len, code)] = s;
        }
    }

    /// <summary>The optimal code for the given symbol counts.</summary>
    public static HuffmanCode FromCounts(long[] counts)
    {
        if (counts.Any(c => c < 0)) throw new ArgumentException("HuffmanCode.FromCounts: counts must be non-negative");
        var lengths = new int[counts.Length];
        var used = Enumerable.Range(0, counts.Length).Where(s => counts[s] > 0).ToArray();
        if (used.Length == 1) lengths[used[0]] = 1;   // one symbol still needs one bit per occurrence
        if (used.Length > 1)
        {
            // Merge the two lightest subtrees until one is left; a symbol's length is its depth.
            // Ties go to the lower node id, so the code never depends on the queue's internal order.
            var parent = new int[2 * used.Length - 1];
            var queue = new PriorityQueue<int, (long Weight, int Id)>();
            for (int i = 0; i < used.Length; i++) queue.Enqueue(i, (counts[used[i]], i));
            int next = used.Length;
            while (queue.Count > 1)
            {
                queue.TryDequeue(out int a, out var pa);
                queue.TryDequeue(out int b, out var pb);
                parent[a] = parent[b] = next;
                queue.Enqueue(next, (pa.Weight + pb.Weight, next));
                next++;
            }
            int root = next - 1;
            var depth = new int[next];
            for (int node = root - 1; node >= 0; node--) depth[node] = depth[parent[node]] + 1;
            for (int i = 0; i < used.Length; i++) lengths[used[i]] = depth[i];
            if (lengths.Max() > MaxLength)
                throw new NotSupportedException($"HuffmanCode: the optimal code would need {lengths.Max()} bits for a symbol; at most {MaxLength} are supported");
        }
        return new HuffmanCode(lengths);
    }

    /// <summary>Writes <paramref name="symbol"/>'s code.</summary>
    public void Write(BitWriter writer, int symbol)
    {
        if ((uint)symbol >= (uint)Lengths.Length || Lengths[symbol] == 0)
            throw new ArgumentException($"HuffmanCode.Write: symbol {symbol} has no code (it did not occur in the counts the code was built from)");
        writer.Write(_codes[symbol], Lengths[symbol]);
    }

    /// <summary>Reads one symbol.</summary>
    public int Read(BitReader reader)
    {
        ulong code = 0;
        for (int len = 1; len <= MaxLength; len++)
        {
            code = (code << 1) | reader.Read(1);
            if (_decode.TryGetValue((len, code), out int s)) return s;
        }
        throw new InvalidDataException($"HuffmanCode.Read: no symbol matches the bits at position {reader.Position}");
    }

    /// <summary>Bits needed for the given counts under this code.</summary>
    public long CostInBits(long[] counts) => counts.Select((c, s) => c * (long)Lengths[s]).Sum();

    private static ulong Reverse(ulong code, int length)
    {
        ulong r = 0;
        for (int i = 0; i < length; i++) r |= ((code >> i) & 1) << (length - 1 - i);
        return r;
    }
}
