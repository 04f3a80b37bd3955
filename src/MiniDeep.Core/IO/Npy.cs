using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace MiniDeep.IO;

/// <summary>A file that is not a .npy (or .npz) MiniDeep can read; <see cref="Field"/> names the part at fault.</summary>
public sealed class NpyFormatException(string field, string message) : FormatException($"npy: {field}: {message}")
{
    /// <summary>The part of the file at fault.</summary>
    public string Field { get; } = field;
}

/// <summary>
/// NumPy's .npy and .npz files (https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html):
/// the magic "\x93NUMPY", a version, a little-endian header length (2 bytes in version 1, 4 in versions
/// 2 and 3), a Python dict literal {'descr': ..., 'fortran_order': ..., 'shape': (...)} padded with spaces
/// and a newline to a multiple of 64 bytes, then the raw elements. An .npz is a zip of .npy files.
/// </summary>
/// <remarks>
/// Read: float32, float64, int32 and bool, either byte order, C or Fortran order. The object dtype
/// ('O', pickled Python objects, which can run code when unpickled) is always refused, as is every other
/// dtype; the header must be exactly the three keys; the data must be exactly shape × itemsize bytes.
/// Write: version 1.0, little-endian, C order, the header padded as NumPy pads it.
/// </remarks>
public static class Npy
{
    private static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    private static string Descr(DType t) => t switch
    {
        DType.Float32 => "<f4",
        DType.Float64 => "<f8",
        DType.Int32 => "<i4",
        DType.Bool => "|b1",
        _ => throw new ArgumentOutOfRangeException(nameof(t)),
    };

    // ----- writing -----

    /// <summary>The .npy bytes of a tensor (any device).</summary>
    public static byte[] Serialize(Tensor t)
    {
        var shape = t.Shape.ToArray();
        string dims = shape.Length == 1 ? $"{shape[0]}," : string.Join(", ", shape);
        string dict = $"{{'descr': '{Descr(t.DType)}', 'fortran_order': False, 'shape': ({dims}), }}";
        // Magic (6) + version (2) + length (2) + dict + padding + '\n', a multiple of 64.
        int total = (10 + dict.Length + 1 + 63) / 64 * 64;
        string header = dict + new string(' ', total - 10 - dict.Length - 1) + "\n";
        var data = ElementBytes.Encode(t.Backend.ToArray(t.AsView));
        var file = new byte[total + data.Length];
        Magic.CopyTo(file, 0);
        file[6] = 1; file[7] = 0;
        BinaryPrimitives.WriteUInt16LittleEndian(file.AsSpan(8), (ushort)header.Length);
        Encoding.ASCII.GetBytes(header, file.AsSpan(10));
        data.CopyTo(file, total);
        return file;
    }

    /// <summary>Writes a tensor to a .npy file atomically.</summary>
    public static void Save(string path, Tensor t) => AtomicFile.WriteAllBytes(path, Serialize(t));

    /// <summary>Writes tensors to an .npz file (a zip of NAME.npy entries) atomically; compressed like np.savez_compressed when asked.</summary>
    public static void SaveZ(string path, IReadOnlyDictionary<string, Tensor> tensors, bool compressed = false)
    {
        using var buffer = new MemoryStream();
        using (var zip = new ZipArchive(buffer, ZipArchiveMode.Create, leaveOpen: true))
            foreach (var (name, t) in tensors.OrderBy(p => p.Key, StringComparer.Ordinal))
            {
                var entry = zip.CreateEntry(name + ".npy", compressed ? CompressionLevel.Optimal : CompressionLevel.NoCompression);
                entry.LastWriteTime = new DateTimeOffset(1980, 1, 1, 0, 0, 0, TimeSpan.Zero);   // the same bytes on every run
                using var s = entry.Open();
                s.Write(Serialize(t));
            }
        AtomicFile.WriteAllBytes(path, buffer.ToArray());
    }

    // ----- reading -----

    /// <summary>Reads a .npy file.</summary>
    public static Tensor Load(string path) => Deserialize(File.ReadAllBytes(path));

    /// <summary>Reads the arrays of an .npz file by name (without ".npy").</summary>
    public static Dictionary<string, Tensor> LoadZ(string path)
    {
        using var stream = File.OpenRead(path);
        ZipArchive zip;
        try { zip = new ZipArchive(stream, ZipArchiveMode.Read); }
        catch (InvalidDataException e) { throw new NpyFormatException("npz", $"is not a zip archive: {e.Message}"); }
        using (zip)
        {
            var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
            foreach (var entry in zip.Entries)
            {
                if (!entry.FullName.EndsWith(".npy", StringComparison.Ordinal))
                    throw new NpyFormatException($"npz entry '{entry.FullName}'", "is not a .npy file");
                // The declared size bounds the read; a zip bomb stops at the cap.
                if (entry.Length > int.MaxValue) throw new NpyFormatException($"npz entry '{entry.FullName}'", $"{entry.Length:N0} bytes do not fit one array");
                using var s = entry.Open();
                var bytes = new byte[entry.Length];
                try { s.ReadExactly(bytes); }
                catch (Exception e) when (e is EndOfStreamException or InvalidDataException) { throw new NpyFormatException($"npz entry '{entry.FullName}'", $"cannot be read: {e.Message}"); }
                string name = entry.FullName[..^4];
                if (!result.TryAdd(name, Deserialize(bytes))) throw new NpyFormatException($"npz entry '{entry.FullName}'", "appears twice");
            }
            return result;
        }
    }

    /// <summary>Parses .npy bytes; throws <see cref="NpyFormatException"/> when they are not a file MiniDeep reads.</summary>
    public static Tensor Deserialize(ReadOnlySpan<byte> file)
    {
        if (file.Length < 10 || !file[..6].SequenceEqual(Magic)) throw new NpyFormatException("magic", "the file does not start with \\x93NUMPY");
        int major = file[6];
        int lengthBytes = major switch { 1 => 2, 2 or 3 => 4, _ => throw new NpyFormatException("version", $"{major}.{file[7]} is not 1.0, 2.0 or 3.0") };
        if (file.Length < 8 + lengthBytes) throw new NpyFormatException("header length", "the file ends inside it");
        long headerLength = lengthBytes == 2 ? BinaryPrimitives.ReadUInt16LittleEndian(file[8..]) : BinaryPrimitives.ReadUInt32LittleEndian(file[8..]);
        int start = 8 + lengthBytes;
        if (headerLength > file.Length - start) throw new NpyFormatException("header length", $"{headerLength:N0} bytes, but only {file.Length - start:N0} follow");
        string header;
        try { header = (major == 3 ? new UTF8Encoding(false, true) : Encoding.Latin1).GetString(file.Slice(start, (int)headerLength)); }
        catch (DecoderFallbackException) { throw new NpyFormatException("header", "is not valid UTF-8"); }
        var (descr, fortran, shape) = ParseHeader(header);

        bool little = descr[0] is '<' or '|' or '=';
        var dtype = descr[1..] switch
        {
            "f4" => DType.Float32,
            "f8" => DType.Float64,
            "i4" => DType.Int32,
            "b1" => DType.Bool,
            _ when descr.Contains('O') => throw new NpyFormatException("descr", $"'{descr}' is the object dtype (pickled Python objects); it is never read"),
            _ => throw new NpyFormatException("descr", $"'{descr}' is not a dtype MiniDeep reads (float32, float64, int32, bool)"),
        };
        if (descr[0] is not ('<' or '>' or '|' or '=')) throw new NpyFormatException("descr", $"'{descr}' has no byte-order mark");
        long numel = 1;
        foreach (int d in shape)
            if (d != 0 && numel > Array.MaxLength / d) throw new NpyFormatException("shape", $"({string.Join(", ", shape)}) has more elements than an array can hold");
            else numel *= d;
        long bytes = numel * dtype.SizeOf();
        var data = file[(start + (int)headerLength)..];
        if (data.Length != bytes) throw new NpyFormatException("data", $"shape ({string.Join(", ", shape)}) of {descr} needs {bytes:N0} bytes, the file holds {data.Length:N0}");

        var values = ElementBytes.Decode(dtype, data, little, (i, v) => new NpyFormatException("data", $"byte {v} at element {i} is not a bool"));
        if (!fortran) return Tensor.FromArray(values, shape, Device.Cpu);
        // Fortran order: the elements are column-major, i.e. the row-major layout of the reversed shape.
        var reversed = shape.Reverse().ToArray();
        var t = Tensor.FromArray(values, reversed, Device.Cpu);
        return t.Permute([.. Enumerable.Range(0, shape.Length).Reverse()]).Contiguous();
    }

    // {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } — exactly these keys, in any order.
    private static (string Descr, bool Fortran, int[] Shape) ParseHeader(string header)
    {
        var p = new Parser(header);
        string? descr = null; bool? fortran = null; int[]? shape = null;
        p.Skip();
        p.Expect('{');
        while (true)
        {
            p.Skip();
            if (p.Peek() == '}') { p.Next(); break; }
            string key = p.String("header key");
            p.Skip(); p.Expect(':'); p.Skip();
            switch (key)
            {
                case "descr" when descr is null: descr = p.String("descr"); if (descr.Length < 2) throw new NpyFormatException("descr", $"'{descr}' is too short"); break;
                case "fortran_order" when fortran is null: fortran = p.Bool("fortran_order"); break;
                case "shape" when shape is null: shape = p.Tuple("shape"); break;
                case "descr" or "fortran_order" or "shape": throw new NpyFormatException($"key '{key}'", "appears twice");
                default: throw new NpyFormatException($"key '{key}'", "is not one of descr, fortran_order, shape");
            }
            p.Skip();
            if (p.Peek() == ',') p.Next();
            else if (p.Peek() != '}') throw new NpyFormatException("header", $"expected ',' or '}}' at character {p.At}");
        }
        p.Skip();
        if (!p.Done) throw new NpyFormatException("header", $"has text after the dict at character {p.At}");
        return (descr ?? throw new NpyFormatException("descr", "is missing"),
            fortran ?? throw new NpyFormatException("fortran_order", "is missing"),
            shape ?? throw new NpyFormatException("shape", "is missing"));
    }

    private ref struct Parser(string s)
    {
        private int _i;
        public readonly int At => _i;
        public readonly bool Done => _i >= s.Length;
        public readonly char Peek() => _i < s.Length ? s[_i] : '\0';
        public void Next() => _i++;
        public void Skip() { while (_i < s.Length && s[_i] is ' ' or '\n' or '\t' or '\r') _i++; }
        public void Expect(char c)
        {
            if (Peek() != c) throw new NpyFormatException("header", $"expected '{c}' at character {_i}");
            _i++;
        }
        public string String(string field)
        {
            char q = Peek();
            if (q is not ('\'' or '"')) throw new NpyFormatException(field, $"expected a quoted string at character {_i}");
            int end = s.IndexOf(q, _i + 1);
            if (end < 0) throw new NpyFormatException(field, "the string is not closed");
            var v = s[(_i + 1)..end];
            if (v.Contains('\\')) throw new NpyFormatException(field, "escapes are not supported");
            _i = end + 1;
            return v;
        }
        public bool Bool(string field)
        {
            if (string.CompareOrdinal(s, _i, "True", 0, 4) == 0) { _i += 4; return true; }
            if (string.CompareOrdinal(s, _i, "False", 0, 5) == 0) { _i += 5; return false; }
            throw new NpyFormatException(field, $"expected True or False at character {_i}");
        }
        public int[] Tuple(string field)
        {
            Expect('(');
            var dims = new List<int>();
            while (true)
            {
                Skip();
                if (Peek() == ')') { _i++; break; }
                int begin = _i;
                while (_i < s.Length && char.IsAsciiDigit(s[_i])) _i++;
                if (_i == begin || !int.TryParse(s.AsSpan(begin, _i - begin), out int d))
                    throw new NpyFormatException(field, $"expected a non-negative integer at character {begin}");
                dims.Add(d);
                if (dims.Count > 32) throw new NpyFormatException(field, "has more than 32 dimensions");
                Skip();
                if (Peek() == ',') _i++;
                else if (Peek() != ')') throw new NpyFormatException(field, $"expected ',' or ')' at character {_i}");
            }
            return [.. dims];
        }
    }
}
