using System.Text;
using FsCheck;
using FsCheck.Fluent;
using MiniDeep.IO;
using Xunit;

namespace MiniDeep.Tests.IO;

public class NpyTests
{
    // A .npy assembled by hand from NumPy's format description: magic, version 1.0, a 2-byte little-endian
    // header length, the dict padded with spaces and a newline so that the data starts at a multiple of 64.
    private static byte[] HandWritten(string dict, byte[] data)
    {
        int total = (10 + dict.Length + 1 + 63) / 64 * 64;
        string header = dict + new string(' ', total - 10 - dict.Length - 1) + "\n";
        return [0x93, .. "NUMPY"u8, 1, 0, (byte)(header.Length & 0xFF), (byte)(header.Length >> 8), .. Encoding.ASCII.GetBytes(header), .. data];
    }

    [Fact]
    public void HandWrittenFiles_Load_InEitherByteOrderAndMemoryOrder()
    {
        var ints = HandWritten("{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", [1, 0, 0, 0, 0xFE, 0xFF, 0xFF, 0xFF]);
        Assert.Equal(128, ints.Length - 8);
        Assert.Equal([1, -2], Npy.Deserialize(ints).ToArray<int>());
        // Big-endian doubles 1.0 and -2.0.
        var be = HandWritten("{'descr': '>f8', 'fortran_order': False, 'shape': (2,), }", [0x3F, 0xF0, 0, 0, 0, 0, 0, 0, 0xC0, 0, 0, 0, 0, 0, 0, 0]);
        Assert.Equal([1.0, -2.0], Npy.Deserialize(be).ToArray<double>());
        // Fortran order: a 2×3 matrix [[1, 2, 3], [4, 5, 6]] stored column by column.
        var data = new[] { 1f, 4f, 2f, 5f, 3f, 6f }.SelectMany(BitConverter.GetBytes).ToArray();
        var f = Npy.Deserialize(HandWritten("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", data));
        Assert.Equal(new Shape(2, 3), f.Shape);
        Assert.Equal([1f, 2f, 3f, 4f, 5f, 6f], f.ToArray<float>());
    }

    [Fact]
    public void MiniDeepsOutput_IsWhatNumPyWrites()
    {
        var expected = HandWritten("{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", [1, 0, 0, 0, 0xFE, 0xFF, 0xFF, 0xFF]);
        Assert.Equal(expected, Npy.Serialize(Tensor.FromArray([1, -2])));
        var scalar = HandWritten("{'descr': '|b1', 'fortran_order': False, 'shape': (), }", [1]);
        Assert.Equal(scalar, Npy.Serialize(Tensor.FromArray([true]).Reshape()));
    }

    [Fact]
    public void TheObjectDtype_AndOtherDtypes_AreRefused()
    {
        var obj = HandWritten("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", new byte[8]);
        var e = Assert.Throws<NpyFormatException>(() => Npy.Deserialize(obj));
        Assert.Equal("descr", e.Field);
        Assert.Contains("object", e.Message);
        Assert.Throws<NpyFormatException>(() => Npy.Deserialize(HandWritten("{'descr': '<c16', 'fortran_order': False, 'shape': (1,), }", new byte[16])));
        Assert.Throws<NpyFormatException>(() => Npy.Deserialize(HandWritten("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", new byte[8])));
        Assert.Throws<NpyFormatException>(() => Npy.Deserialize(HandWritten("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}", new byte[4])));
        Assert.Throws<NpyFormatException>(() => Npy.Deserialize(HandWritten("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", new byte[4])));
    }

    [Fact]
    public void EveryTruncation_IsRefusedWithTheTypedError()
    {
        var file = Npy.Serialize(Tensor.FromArray([1.5, -2.0, 3.25], 3, 1));
        for (int n = 0; n < file.Length; n++)
        {
            var e = Record.Exception(() => Npy.Deserialize(file.AsSpan(0, n)));
            Assert.True(e is NpyFormatException, $"truncated to {n}: {e?.GetType().Name}");
        }
    }

    [Fact]
    public void RoundTrips_AreByteExact() =>
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(300).WithQuietOnSuccess(true),
            Prop.ForAll(Arb.From(
                from dtype in Gen.Elements(DType.Float32, DType.Float64, DType.Int32, DType.Bool)
                from dims in Gen.Choose(0, 4).SelectMany(r => Gen.ArrayOf(Gen.Choose(0, 5), r))
                from seed in Gen.Choose(0, 100_000)
                select (dtype, dims, seed)), c =>
            {
                var g = new Generator((ulong)c.seed);
                var shape = new Shape(c.dims);
                var t = c.dtype switch
                {
                    DType.Int32 => Tensor.Randint(-9, 9, shape, g),
                    DType.Bool => Tensor.Bernoulli(shape, 0.5, g, DType.Bool),
                    _ => Tensor.Randn(shape, g, dtype: c.dtype),
                };
                var bytes = Npy.Serialize(t);
                Assert.Equal(0, (bytes.Length - t.Numel * t.DType.SizeOf()) % 64);
                var back = Npy.Deserialize(bytes);
                Assert.Equal(t.Shape, back.Shape);
                Assert.Equal(bytes, Npy.Serialize(back));
            }));

    [Fact]
    public void Npz_RoundTrips_AndRefusesEntriesThatAreNotNpy()
    {
        var dir = Path.Combine(Path.GetTempPath(), $"minideep-npz-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        try
        {
            var tensors = new Dictionary<string, Tensor> { ["w"] = Tensor.FromArray([1f, 2f, 3f, 4f], 2, 2), ["labels"] = Tensor.FromArray([3, 1]) };
            foreach (bool compressed in new[] { false, true })
            {
                var path = Path.Combine(dir, $"a{compressed}.npz");
                Npy.SaveZ(path, tensors, compressed);
                var back = Npy.LoadZ(path);
                Assert.Equal([1f, 2f, 3f, 4f], back["w"].ToArray<float>());
                Assert.Equal([3, 1], back["labels"].ToArray<int>());
            }
            var bad = Path.Combine(dir, "bad.npz");
            using (var zip = System.IO.Compression.ZipFile.Open(bad, System.IO.Compression.ZipArchiveMode.Create))
                using (var s = zip.CreateEntry("evil.pkl").Open()) s.Write([1, 2, 3]);
            Assert.Equal("npz entry 'evil.pkl'", Assert.Throws<NpyFormatException>(() => Npy.LoadZ(bad)).Field);
            File.WriteAllBytes(bad, [1, 2, 3, 4]);
            Assert.Throws<NpyFormatException>(() => Npy.LoadZ(bad));
        }
        finally { Directory.Delete(dir, true); }
    }
}
