using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using FsCheck;
using FsCheck.Fluent;
using MiniDeep.IO;
using MiniDeep.Nn;
using Xunit;

namespace MiniDeep.Tests.IO;

public class SafeTensorsTests
{
    // A file assembled by hand from the specification: 8 bytes of little-endian header length, the JSON
    // header, then the data buffer (here two float32 values, 1.0 and -2.5, little-endian).
    private static byte[] HandWritten(string header, params byte[][] data)
    {
        var h = Encoding.UTF8.GetBytes(header);
        var file = new List<byte>();
        var n = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(n, (ulong)h.Length);
        file.AddRange(n);
        file.AddRange(h);
        foreach (var d in data) file.AddRange(d);
        return [.. file];
    }

    private static readonly byte[] OneAndMinusTwoPointFive = [0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x20, 0xC0];

    [Fact]
    public void AHandWrittenFile_Loads()
    {
        var file = HandWritten("{\"__metadata__\":{\"format\":\"pt\"},\"w\":{\"dtype\":\"F32\",\"shape\":[2,1],\"data_offsets\":[0,8]}}", OneAndMinusTwoPointFive);
        var (tensors, metadata) = SafeTensors.Deserialize(file);
        Assert.Equal("pt", metadata["format"]);
        Assert.Equal(new Shape(2, 1), tensors["w"].Shape);
        Assert.Equal([1f, -2.5f], tensors["w"].ToArray<float>());
    }

    [Fact]
    public void MiniDeepsOutput_IsTheSpecificationsBytes()
    {
        // Keys in ordinal order, compact JSON, padded with spaces to a multiple of 8, data in key order.
        var bytes = SafeTensors.Serialize(new Dictionary<string, Tensor>
        {
            ["w"] = Tensor.FromArray([1f, -2.5f], 2, 1),
            ["n"] = Tensor.FromArray([7, -1]),
            ["b"] = Tensor.FromArray([true, false, true]),
        });
        string json = "{\"b\":{\"dtype\":\"BOOL\",\"shape\":[3],\"data_offsets\":[0,3]}," +
                      "\"n\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[3,11]}," +
                      "\"w\":{\"dtype\":\"F32\",\"shape\":[2,1],\"data_offsets\":[11,19]}}";
        json += new string(' ', (8 - json.Length % 8) % 8);
        var expected = HandWritten(json, [1, 0, 1], [7, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF], OneAndMinusTwoPointFive);
        Assert.Equal(expected, bytes);
        Assert.Equal(0, (bytes.Length - 19) % 8);
    }

    private static Gen<Tensor> TensorGen() =>
        from dtype in Gen.Elements(DType.Float32, DType.Float64, DType.Int32, DType.Bool)
        from rank in Gen.Choose(0, 3)
        from dims in Gen.ArrayOf(Gen.Choose(0, 4), rank)
        from seed in Gen.Choose(0, 1_000_000)
        select Make(dtype, dims, seed);

    private static Tensor Make(DType dtype, int[] dims, int seed)
    {
        var g = new Generator((ulong)seed);
        var shape = new Shape(dims);
        return dtype switch
        {
            DType.Int32 => Tensor.Randint(-1000, 1000, shape, g),
            DType.Bool => Tensor.Bernoulli(shape, 0.5, g, DType.Bool),
            _ => Tensor.Randn(shape, g, dtype: dtype) * 1e3,
        };
    }

    [Fact]
    public void RoundTrips_AreByteExact_1000Cases() =>
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(1000).WithQuietOnSuccess(true),
            Prop.ForAll(Arb.From(
                from count in Gen.Choose(0, 5)
                from names in Gen.ArrayOf(Gen.Elements("a", "b.weight", "b.bias", "layer.0", "z", "ü", "x y"), count)
                from tensors in Gen.ArrayOf(TensorGen(), count)
                select (names, tensors)), c =>
            {
                var dict = new Dictionary<string, Tensor>();
                for (int i = 0; i < c.names.Length; i++) dict[c.names[i]] = c.tensors[i];
                var bytes = SafeTensors.Serialize(dict, new Dictionary<string, string> { ["by"] = "MiniDeep" });
                var (back, meta) = SafeTensors.Deserialize(bytes);
                Assert.Equal("MiniDeep", meta["by"]);
                Assert.Equal(dict.Keys.Order(), back.Keys.Order());
                foreach (var (k, t) in dict)
                {
                    Assert.Equal(t.Shape, back[k].Shape);
                    Assert.Equal(t.DType, back[k].DType);
                }
                Assert.Equal(bytes, SafeTensors.Serialize(back, meta));
            }));

    [Fact]
    public void AModule_SavesAndLoads_ThroughAFile()
    {
        var path = Path.Combine(Path.GetTempPath(), $"minideep-st-{Guid.NewGuid():N}.safetensors");
        try
        {
            var a = new Sequential(new Linear(5, 3, generator: new Generator(1)), Activations.ReLU(), new Linear(3, 2, generator: new Generator(2)));
            var b = new Sequential(new Linear(5, 3, generator: new Generator(3)), Activations.ReLU(), new Linear(3, 2, generator: new Generator(4)));
            SafeTensors.Save(path, a);
            SafeTensors.Load(path, b);
            var x = Tensor.Randn(new Shape(4, 5), new Generator(5));
            Assert.Equal(a.Forward(x).ToArray<float>(), b.Forward(x).ToArray<float>());
        }
        finally { File.Delete(path); }
    }

    // ----- the hostile-file corpus -----

    private static byte[] Valid() => SafeTensors.Serialize(new Dictionary<string, Tensor>
    {
        ["bias"] = Tensor.FromArray([0.5f, -1f, 2f]),
        ["weight"] = Tensor.FromArray([1.0, 2.0, 3.0, 4.0], 2, 2),
    }, new Dictionary<string, string> { ["k"] = "v" });

    private static byte[] WithHeader(string json, int dataBytes) => HandWritten(json, new byte[dataBytes]);

    private static byte[] WithLength(ulong length, byte[] rest)
    {
        var n = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(n, length);
        return [.. n, .. rest];
    }

    // Files the reader must refuse, each named for what is wrong with it.
    private static IEnumerable<(string Case, byte[] File)> Crafted()
    {
        var valid = Valid();
        var headerOnly = valid[8..(8 + (int)BinaryPrimitives.ReadUInt64LittleEndian(valid))];
        yield return ("header length 0", WithLength(0, []));
        yield return ("7 bytes", valid[..7]);
        yield return ("header length past the end", WithLength((ulong)valid.Length, valid[8..]));
        yield return ("header length 2^64-1", WithLength(ulong.MaxValue, valid[8..]));
        yield return ("header length above the cap", WithLength((ulong)SafeTensors.MaxHeaderBytes + 1, valid[8..]));
        yield return ("header not starting with '{'", WithLength((ulong)headerOnly.Length, [(byte)' ', .. headerOnly[1..], .. valid[(8 + headerOnly.Length)..]]));
        yield return ("invalid UTF-8", Mutate(WithHeader("{\"aa\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4), 10, 0xFF));
        yield return ("deep nesting", WithHeader("{\"a\":" + new string('[', 64) + new string(']', 64) + "}", 0));
        yield return ("duplicate keys", WithHeader("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8));
        yield return ("overlapping offsets", WithHeader("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8));
        yield return ("a hole between tensors", WithHeader("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12));
        yield return ("bytes after the last tensor", WithHeader("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 9));
        yield return ("offsets past the buffer", WithHeader("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 2));
        yield return ("end before begin", WithHeader("{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,0]}}", 4));
        yield return ("overflowing offsets", WithHeader("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,18446744073709551615]}}", 4));
        yield return ("overflowing shape", WithHeader("{\"a\":{\"dtype\":\"F64\",\"shape\":[2147483647,2147483647,2147483647],\"data_offsets\":[0,8]}}", 8));
        yield return ("shape and size disagree", WithHeader("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8));
        yield return ("negative dim", WithHeader("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4));
        yield return ("fractional offset", WithHeader("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4.0]}}", 4));
        yield return ("unknown dtype", WithHeader("{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1));
        yield return ("missing shape", WithHeader("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4));
        yield return ("unknown field", WithHeader("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4));
        yield return ("metadata not strings", WithHeader("{\"__metadata__\":{\"k\":1}}", 0));
        yield return ("not a bool", WithHeader("{\"a\":{\"dtype\":\"BOOL\",\"shape\":[1],\"data_offsets\":[0,1]}}", 0) is var nb ? [.. nb, 7] : []);
        yield return ("trailing garbage in the header", WithHeader("{}x", 0));
        yield return ("comment", WithHeader("{/*c*/}", 0));
    }

    private static byte[] Mutate(byte[] file, int at, byte value)
    {
        var copy = (byte[])file.Clone();
        copy[at] = value;
        return copy;
    }

    private static Exception? Outcome(byte[] file, out TimeSpan took)
    {
        var clock = Stopwatch.StartNew();
        try { SafeTensors.Deserialize(file); return null; }
        catch (Exception e) { return e; }
        finally { took = clock.Elapsed; }
    }

    [Fact]
    public void EveryCraftedFile_IsRefusedWithATypedErrorNamingTheField()
    {
        foreach (var (name, file) in Crafted())
        {
            var e = Outcome(file, out var took);
            var typed = Assert.IsType<SafeTensorsFormatException>(e);
            Assert.False(string.IsNullOrEmpty(typed.Field), name);
            Assert.True(took < TimeSpan.FromSeconds(1), $"{name}: {took.TotalMilliseconds} ms");
        }
    }

    [Fact]
    public void TenThousandTruncatedAndMutatedFiles_AreRefusedOrRead_NeverAnotherException()
    {
        var valid = Valid();
        int headerEnd = 8 + (int)BinaryPrimitives.ReadUInt64LittleEndian(valid);
        var rng = new Random(11);
        int cases = 0, refused = 0;
        var slowest = TimeSpan.Zero;
        void Try(byte[] file, bool mustRefuse, string what)
        {
            var e = Outcome(file, out var took);
            cases++;
            if (took > slowest) slowest = took;
            if (e is null) { Assert.False(mustRefuse, $"{what} was read"); return; }
            Assert.True(e is SafeTensorsFormatException, $"{what}: {e.GetType().Name}: {e.Message}");
            refused++;
        }
        // Truncation at every byte: never a valid file.
        for (int n = 0; n < valid.Length; n++) Try(valid[..n], mustRefuse: true, $"truncated to {n} bytes");
        // Random byte values at random places of the length field and the header (1 to 3 bytes each).
        while (cases < 10_000)
        {
            var file = (byte[])valid.Clone();
            int flips = rng.Next(1, 4);
            for (int f = 0; f < flips; f++) file[rng.Next(0, headerEnd)] = (byte)rng.Next(256);
            Try(file, mustRefuse: false, "a mutated header");
        }
        Assert.True(cases >= 10_000);
        Assert.True(refused > cases * 9 / 10, $"{refused} of {cases} refused");
        Assert.True(slowest < TimeSpan.FromSeconds(1), $"slowest {slowest.TotalMilliseconds} ms");
    }
}
