using System.Buffers.Binary;
using MiniDeep.Data;
using Xunit;

namespace MiniDeep.Tests.DataTests;

public class IdxTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("minideep-idx").FullName;
    public void Dispose() => Directory.Delete(_dir, recursive: true);
    private string P(string name) => Path.Combine(_dir, name);

    private static byte[] Header(byte type, params int[] dims)
    {
        var b = new byte[4 + 4 * dims.Length];
        b[2] = type; b[3] = (byte)dims.Length;
        for (int i = 0; i < dims.Length; i++) BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(4 + 4 * i), dims[i]);
        return b;
    }

    [Theory]
    [InlineData("images.idx")]
    [InlineData("images.idx.gz")]
    public void Read_RoundTripsUnsignedBytes_PlainOrGzip(string name)
    {
        var values = Enumerable.Range(0, 2 * 3 * 4).Select(i => (byte)(i * 7)).ToArray();
        Idx.WriteUBytes(P(name), [2, 3, 4], values);
        var a = Idx.Read(P(name));
        Assert.Equal(new[] { 2, 3, 4 }, a.Shape);
        Assert.Equal(values.Select(v => (float)v), a.Values);
    }

    [Fact]
    public void Read_DecodesEveryElementType()
    {
        byte[] Body(int size, Action<byte[]> fill) { var b = new byte[size]; fill(b); return b; }
        var cases = new (byte Type, byte[] Data, float[] Expected)[]
        {
            (0x09, [0xFF, 0x02], [-1, 2]),
            (0x0B, Body(4, b => { BinaryPrimitives.WriteInt16BigEndian(b, -300); BinaryPrimitives.WriteInt16BigEndian(b.AsSpan(2), 7); }), [-300, 7]),
            (0x0C, Body(8, b => { BinaryPrimitives.WriteInt32BigEndian(b, 100000); BinaryPrimitives.WriteInt32BigEndian(b.AsSpan(4), -5); }), [100000, -5]),
            (0x0D, Body(8, b => { BinaryPrimitives.WriteSingleBigEndian(b, 1.5f); BinaryPrimitives.WriteSingleBigEndian(b.AsSpan(4), -2.25f); }), [1.5f, -2.25f]),
            (0x0E, Body(16, b => { BinaryPrimitives.WriteDoubleBigEndian(b, 0.5); BinaryPrimitives.WriteDoubleBigEndian(b.AsSpan(8), 3); }), [0.5f, 3f]),
        };
        foreach (var (type, data, expected) in cases)
            Assert.Equal(expected, Idx.Parse("t", [.. Header(type, 2), .. data]).Values);
    }

    public static TheoryData<string, byte[], string> Malformed => new()
    {
        { "bad magic (non-zero first bytes)", [0x12, 0x34, 0x08, 0x01, 0, 0, 0, 1, 5], "bad magic number 0x12340801" },
        { "unknown type code", [0, 0, 0x42, 0x01, 0, 0, 0, 1, 5], "unknown element type code 0x42" },
        { "zero dimensions", [0, 0, 0x08, 0x00], "zero dimensions" },
        { "truncated header", [0, 0, 0x08, 0x03, 0, 0, 0, 2], "truncated header" },
        { "truncated data", [.. Header(0x08, 2, 3), 1, 2, 3], "truncated data: dimensions (2, 3) need 6 values" },
        { "dimensions disagree with size", [.. Header(0x08, 2), 1, 2, 3], "disagree with the size: 1 bytes after the last value" },
    };

    [Theory]
    [MemberData(nameof(Malformed))]
    public void Read_RefusesMalformedFiles_NamingTheFileAndTheProblem(string what, byte[] bytes, string expected)
    {
        File.WriteAllBytes(P("bad.idx"), bytes);
        var e = Assert.Throws<IdxFormatException>(() => Idx.Read(P("bad.idx")));
        Assert.Contains(P("bad.idx"), e.Message);
        Assert.Contains(expected, e.Message);
        _ = what;
    }

    [Fact]
    public void Read_RefusesCorruptGzip()
    {
        File.WriteAllBytes(P("bad.gz"), [0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6]);
        var e = Assert.Throws<IdxFormatException>(() => Idx.Read(P("bad.gz")));
        Assert.Contains("gzip", e.Message);
    }

    [Fact]
    public void WriteUBytes_RefusesValuesThatDisagreeWithTheShape_AndWritesNothing()
    {
        var e = Assert.Throws<ArgumentException>(() => Idx.WriteUBytes(P("bad.idx"), [3, 2], new byte[5]));
        Assert.Contains("hold 6 values, 5 were given", e.Message);
        Assert.Contains("negative", Assert.Throws<ArgumentException>(() => Idx.WriteUBytes(P("bad.idx"), [-1], new byte[0])).Message);
        Assert.False(File.Exists(P("bad.idx")));
    }

    [Fact]
    public void LoadPair_RefusesImagesAndLabelsOfDifferentCounts()
    {
        Idx.WriteUBytes(P("img"), [3, 2, 2], new byte[12]);
        Idx.WriteUBytes(P("lab"), [2], [1, 2]);
        var e = Assert.Throws<IdxFormatException>(() => MnistFormat.LoadPair(P("img"), P("lab")));
        Assert.Contains("3 images but 2 labels", e.Message);
    }

    [Fact]
    public void MnistFormat_LoadsADirectory_AndLocateSaysWhereItLooked()
    {
        foreach (var (name, n) in new[] { ("train", 4), ("t10k", 2) })
        {
            Idx.WriteUBytes(P($"{name}-images-idx3-ubyte.gz"), [n, 28, 28], Enumerable.Range(0, n * 784).Select(i => (byte)(i % 256)).ToArray());
            Idx.WriteUBytes(P($"{name}-labels-idx1-ubyte"), [n], Enumerable.Range(0, n).Select(i => (byte)i).ToArray());
        }
        Assert.Equal(_dir, MnistFormat.Locate(_dir, out _));
        var d = MnistFormat.Load(_dir);
        Assert.Equal(new Shape(4, 1, 28, 28), d.Train.X.Shape);
        Assert.Equal(new[] { 0, 1 }, d.Test.Y.ToArray<int>());
        Assert.Equal(255 / 255f, d.Train.X.Max().Item<float>());
        var missing = Path.Combine(_dir, "nowhere");
        Assert.Null(MnistFormat.Locate(missing, out var searched));
        Assert.Equal(new[] { missing }, searched);
        var e = Assert.Throws<DataNotFoundException>(() => MnistFormat.LoadFashionMnist(missing));
        Assert.Contains(missing, e.Message);
        Assert.Contains("apt-get install dataset-fashion-mnist", e.Message);
    }
}

public class LoaderTests
{
    private static TensorDataset Numbers(int n) => new(Tensor.Arange(n).Reshape(n, 1), Tensor.Arange(n, DType.Int32));

    private static int[] Visit(DataLoader loader) => loader.NextEpoch().SelectMany(b => b.Y.ToArray<int>()).ToArray();

    [Fact]
    public void SameSeed_SameOrder_EachEpochDifferent_AndEveryExampleOnce()
    {
        var a = new DataLoader(Numbers(100), 16, shuffle: true, seed: 5);
        var b = new DataLoader(Numbers(100), 16, shuffle: true, seed: 5);
        var e0 = Visit(a);
        Assert.Equal(e0, Visit(b));
        Assert.Equal(Enumerable.Range(0, 100), e0.Order());
        Assert.NotEqual(Enumerable.Range(0, 100), e0);
        Assert.NotEqual(e0, Visit(a));   // epoch 1 reshuffles
        Assert.NotEqual(e0, Visit(new DataLoader(Numbers(100), 16, shuffle: true, seed: 6)));
    }

    [Fact]
    public void GivenPermutation_IsRespected_AndDropLastDropsTheShortBatch()
    {
        var order = new[] { 9, 0, 8, 1, 7, 2, 6, 3, 5, 4 };
        var loader = new DataLoader(Numbers(10), 3, sampler: new FixedOrderSampler(order), dropLast: true);
        var batches = loader.NextEpoch().Select(b => b.Y.ToArray<int>()).ToArray();
        Assert.Equal(3, batches.Length);
        Assert.Equal(order[..9], batches.SelectMany(b => b));
        Assert.Equal(4, new DataLoader(Numbers(10), 3).BatchesPerEpoch);
    }

    [Fact]
    public void EpochOrder_DependsOnlyOnSeedAndEpoch_SoAResumedLoaderContinuesExactly()
    {
        var full = new DataLoader(Numbers(50), 10, shuffle: true, seed: 3);
        Visit(full);
        var straight = full.NextEpoch().Take(5).Select(b => b.Y.ToArray<int>()).ToArray();
        var resumed = new DataLoader(Numbers(50), 10, shuffle: true, seed: 3) { Epoch = 1, Position = 2 };
        Assert.Equal(straight[2..], resumed.NextEpoch().Select(b => b.Y.ToArray<int>()).ToArray());
    }

    [Fact]
    public void Subset_Concat_Transform_ComposeInOrder()
    {
        var a = Numbers(5);
        var b = new TensorDataset(Tensor.Arange(100, 103).Reshape(3, 1), Tensor.Arange(100, 103, 1, DType.Int32));
        var cat = Dataset.Concat(a, b);
        Assert.Equal(8, cat.Count);
        Assert.Equal(new[] { 101, 0, 4, 100 }, cat.Get([6, 0, 4, 5]).Y.ToArray<int>());
        var sub = Dataset.Subset(cat, [7, 1]);
        Assert.Equal(new[] { 102, 1 }, sub.Get([0, 1]).Y.ToArray<int>());
        var doubled = Dataset.Transform(sub, batch => batch with { X = batch.X * 2 });
        Assert.Equal(new float[] { 204, 2 }, doubled.Get([0, 1]).X.ToArray<float>());
        Assert.Throws<ArgumentOutOfRangeException>(() => Dataset.Subset(a, [5]));
        Assert.Throws<ShapeMismatchException>(() => new TensorDataset(Tensor.Zeros(3, 2), Tensor.Zeros(4)));
    }
}

public class SynthDigitsTests
{
    [Fact]
    public void SameSeed_SameBits_AnyCount_DifferentSeed_DifferentImages()
    {
        var a = SynthDigits.Generate(7, 0, 300);
        var b = SynthDigits.Generate(7, 0, 300);
        Assert.Equal(a.X.ToArray<float>(), b.X.ToArray<float>());
        // image i does not depend on how many were generated with it
        Assert.Equal(a.X.Narrow(0, 0, 50).ToArray<float>(), SynthDigits.Generate(7, 0, 50).X.ToArray<float>());
        Assert.NotEqual(a.X.ToArray<float>(), SynthDigits.Generate(8, 0, 300).X.ToArray<float>());
        Assert.NotEqual(a.X.Narrow(0, 0, 10).ToArray<float>(), SynthDigits.Generate(7, 1, 10).X.ToArray<float>());  // test split differs
    }

    [Fact]
    public void SameBits_OnOneAndTwoThreads()
    {
        int saved = Parallelism.MaxThreads;
        try
        {
            Parallelism.MaxThreads = 1;
            var one = SynthDigits.Generate(3, 0, 2000).X.ToArray<float>();
            Parallelism.MaxThreads = 2;
            Assert.Equal(one, SynthDigits.Generate(3, 0, 2000).X.ToArray<float>());
        }
        finally { Parallelism.MaxThreads = saved; }
    }

    [Fact]
    public void Images_AreInRange_AndClassesBalanced()
    {
        var d = SynthDigits.Generate(1, 0, 1000);
        Assert.Equal(new Shape(1000, 1, 28, 28), d.X.Shape);
        Assert.InRange(d.X.Min().Item(), 0, 0);
        Assert.InRange(d.X.Max().Item(), 0.5, 1);
        var counts = d.Y.ToArray<int>().GroupBy(v => v).ToDictionary(g => g.Key, g => g.Count());
        Assert.All(Enumerable.Range(0, 10), c => Assert.Equal(100, counts[c]));
        // the digit has ink: mean brightness is well above the noise floor
        Assert.InRange(d.X.Mean().Item(), 0.05, 0.4);
    }
}

public class DataInputCheckTests
{
    private static TensorDataset Images(int n = 6) =>
        new(Tensor.Rand(new Shape(n, 1, 2, 2), new Generator(1)), Tensor.FromArray(Enumerable.Range(0, n).Select(i => i % 3).ToArray()));

    [Fact]
    public void Loader_RefusesANegativeEpochOrPosition_AndAPositionPastTheEpoch()
    {
        var loader = new DataLoader(Images(), 4);
        Assert.Contains("Position", Assert.Throws<ArgumentOutOfRangeException>(() => loader.Position = -1).Message);
        Assert.Contains("Epoch", Assert.Throws<ArgumentOutOfRangeException>(() => loader.Epoch = -1).Message);
        // 6 examples in batches of 4 make 2 batches: position 2 is the end of the epoch, 3 is past it.
        loader.Position = 2;
        Assert.Empty(loader.NextEpoch());
        Assert.Equal(1, loader.Epoch);
        loader.Position = 3;
        var e = Assert.Throws<InvalidOperationException>(() => loader.NextEpoch().ToList());
        Assert.Contains("position 3 is past the 2 batches", e.Message);
        Assert.Equal(1, loader.Epoch);   // the epoch is not counted as done
    }

    [Fact]
    public void Take_RefusesANegativeCount() =>
        Assert.Contains("Take", Assert.Throws<ArgumentOutOfRangeException>(() => Dataset.Take(Images(), -1)).Message);

    [Fact]
    public void CorruptLabels_RefusesLabelsOutsideTheClasses_AndNoClasses()
    {
        var d = Images();   // labels 0, 1, 2
        var g = new Generator(3);
        var before = g.Offset;
        Assert.Contains("label 2 lies outside the 2 classes", Assert.Throws<ArgumentOutOfRangeException>(() => Randomizers.CorruptLabels(d, 0.5, 2, g)).Message);
        Assert.Contains("at least one class", Assert.Throws<ArgumentOutOfRangeException>(() => Randomizers.CorruptLabels(d, 0.5, 0, g)).Message);
        Assert.Equal(before, g.Offset);   // refused before drawing anything
    }

    [Fact]
    public void ShufflePixels_RefusesAnOrderThatIsNotAPermutation()
    {
        var d = Images();
        Assert.Contains("appears twice", Assert.Throws<ArgumentException>(() => Randomizers.ShufflePixels(d, [0, 0, 1, 2])).Message);
        Assert.Contains("pixel 7", Assert.Throws<ArgumentException>(() => Randomizers.ShufflePixels(d, [0, 1, 2, 7])).Message);
        var flipped = Randomizers.ShufflePixels(d, [3, 2, 1, 0]).X.Reshape(6, 4).ToFloatArray();
        var plain = d.X.Reshape(6, 4).ToFloatArray();
        Assert.Equal(plain[3], flipped[0]);
    }

    [Fact]
    public void Pca_RefusesNonFiniteData_NamingTheEntry()
    {
        var x = Tensor.FromArray(new float[] { 1, 2, 3, 4, float.NaN, 6, 7, 8, 9 }, [3, 3]);
        Assert.Contains("NaN at row 1, column 1", Assert.Throws<ArgumentException>(() => Pca.Fit(x, 2, new Generator(0))).Message);
    }

    [Fact]
    public void SynthDigits_RefusesANegativeCount() =>
        Assert.Contains("SynthDigits.Generate", Assert.Throws<ArgumentOutOfRangeException>(() => SynthDigits.Generate(0, 0, -1)).Message);
}
