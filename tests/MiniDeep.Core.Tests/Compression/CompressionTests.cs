using FsCheck;
using FsCheck.Fluent;
using MiniDeep.Compression;
using MiniDeep.Nn;
using MiniDeep.Optim;
using Xunit;

namespace MiniDeep.Tests.CompressionTests;

public class PruningTests
{
    private static Tensor Param(float[] data, params int[] shape) => Tensor.FromArray(data, shape).RequiresGrad_();

    [Fact]
    public void PerLayer_KeepsTheLargestMagnitudes_TiesByPosition()
    {
        var w = Param([0.1f, -3f, 0.5f, 2f, -0.5f, 0f], 2, 3);
        var masks = PruningMasks.PerLayer([(w, 0.5)]);
        // |w| = 0.1 3 0.5 2 0.5 0: keep 3 → 3, 2 and the first 0.5 (position 2 before 4).
        Assert.Equal([0f, 1f, 1f, 1f, 0f, 0f], masks.MaskOf(w).ToFloatArray());
        Assert.Equal(3, masks.KeptOf(w));
        Assert.Equal(0.5, masks.Density, 12);
        masks.Apply();
        Assert.Equal([0f, -3f, 0.5f, 2f, 0f, 0f], w.ToFloatArray());
    }

    [Fact]
    public void Global_UsesOneThreshold_AcrossLayers()
    {
        var big = Param([5f, 4f, 3f, 2f]);
        var small = Param([0.1f, 0.2f, 0.3f, 0.4f]);
        var masks = PruningMasks.Global([big, small], 0.5);
        Assert.Equal(1.0, masks.DensityOf(big));
        Assert.Equal(0.0, masks.DensityOf(small));
        var perLayer = PruningMasks.PerLayer([(big, 0.5), (small, 0.5)]);
        Assert.Equal(0.5, perLayer.DensityOf(small));
    }

    [Fact]
    public void Masks_AreMonotone_APrunedWeightNeverComesBack()
    {
        var w = Param([1f, 2f, 3f, 4f]);
        var first = PruningMasks.PerLayer([(w, 0.5)]);     // keeps 3, 4
        using (Autograd.NoGrad()) w.CopyFrom(Tensor.FromArray([9f, 8f, 3f, 4f]));
        var second = PruningMasks.PerLayer([(w, 0.25)], first);
        Assert.Equal([0f, 0f, 0f, 1f], second.MaskOf(w).ToFloatArray());
        // Asking for more than the previous mask kept cannot revive a pruned weight.
        var third = PruningMasks.PerLayer([(w, 1.0)], second);
        Assert.Equal(1, third.KeptOf(w));
    }

    [Theory]
    [InlineData("sgd-momentum")]
    [InlineData("adam-weight-decay")]
    public void Attach_KeepsPrunedWeightsAtExactlyZero_ThroughTraining(string optimizer)
    {
        var g = new Generator(3);
        var model = new Sequential(new Linear(8, 16, generator: g), Activations.ReLU(), new Linear(16, 3, generator: g));
        var x = Tensor.Randn(new Shape(32, 8), g);
        var y = Tensor.FromArray(Enumerable.Range(0, 32).Select(i => i % 3).ToArray());
        var weights = model.Parameters().Where(p => p.Rank == 2).ToList();
        Optimizer opt = optimizer == "sgd-momentum" ? new Sgd(model.Parameters(), 0.1, momentum: 0.9) : new Adam(model.Parameters(), 0.01, weightDecay: 0.1);
        // Some optimizer state from before pruning, so momentum and Adam's averages are non-zero.
        for (int s = 0; s < 3; s++) { opt.ZeroGrad(); Losses.CrossEntropy(model.Forward(x), y).Backward(); opt.Step(); }
        var masks = PruningMasks.PerLayer(weights.Select(w => (w, 0.3)));
        using (masks.Attach(opt))
            for (int s = 0; s < 20; s++)
            {
                opt.ZeroGrad(); Losses.CrossEntropy(model.Forward(x), y).Backward();
                foreach (var w in weights)
                {
                    var grad = w.Grad!.ToFloatArray();
                    var m = masks.MaskOf(w).ToFloatArray();
                    Assert.All(Enumerable.Range(0, m.Length).Where(i => m[i] == 0), i => Assert.Equal(0f, grad[i]));
                }
                opt.Step();
            }
        foreach (var w in weights)
        {
            var values = w.ToFloatArray();
            var m = masks.MaskOf(w).ToFloatArray();
            Assert.All(Enumerable.Range(0, m.Length).Where(i => m[i] == 0), i => Assert.Equal(0f, values[i]));
            Assert.True(Enumerable.Range(0, m.Length).Count(i => values[i] != 0) > 0);
        }
        // Detached: training moves the pruned weights again.
        opt.ZeroGrad(); Losses.CrossEntropy(model.Forward(x), y).Backward(); opt.Step();
        Assert.Contains(weights, w => w.ToFloatArray().Zip(masks.MaskOf(w).ToFloatArray()).Any(p => p.Second == 0 && p.First != 0));
    }

    [Fact]
    public void GeometricSchedule_FallsToTheFinalFraction_RemovingTheSameShareEachRound()
    {
        var s = IterativePruning.GeometricSchedule(0.1, 4);
        Assert.Equal(4, s.Length);
        Assert.Equal(0.1, s[^1]);
        for (int r = 1; r < s.Length; r++) Assert.Equal(s[0], s[r] / s[r - 1], 10);
        Assert.Throws<ArgumentOutOfRangeException>(() => IterativePruning.GeometricSchedule(0, 3));
    }

    [Fact]
    public void IterativePerLayer_RetrainsAfterEveryRound_AndEndsAtTheFinalDensity()
    {
        var g = new Generator(5);
        var w = Tensor.Randn(new Shape(20, 10), g).RequiresGrad_();
        var rounds = new List<(int Round, double Density)>();
        var final = IterativePruning.PerLayer([(w, 0.2)], 3, (m, r) => rounds.Add((r, m.DensityOf(w))));
        Assert.Equal([1, 2, 3], rounds.Select(r => r.Round));
        Assert.True(rounds[0].Density > rounds[1].Density && rounds[1].Density > rounds[2].Density);
        Assert.Equal(0.2, final.DensityOf(w), 12);
        Assert.Equal(40, w.ToFloatArray().Count(v => v != 0));
    }

    [Fact]
    public void BadInput_NamesTheOpAndTheValue()
    {
        var w = Param([1f, 2f]);
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => PruningMasks.PerLayer([(w, 1.5)]));
        Assert.Contains("PerLayer", ex.Message);
        Assert.Contains("1.5", ex.Message);
        Assert.Throws<ArgumentException>(() => PruningMasks.PerLayer([(w, 0.5), (w, 0.5)]));
    }
}

public class WeightSharingTests
{
    [Fact]
    public void Cluster_UsesAtMostKValues_AndLeavesPrunedEntriesAtZero()
    {
        var g = new Generator(1);
        var w = Tensor.Randn(new Shape(30, 40), g);
        var mask = (Tensor.Rand(new Shape(30, 40), g) < 0.3).To(DType.Float32);
        using (Autograd.NoGrad()) w.MulInPlace(mask);
        var shared = SharedWeights.Cluster(w, 16, mask);
        var values = w.ToFloatArray();
        var m = mask.ToFloatArray();
        Assert.True(values.Where((_, i) => m[i] != 0).Distinct().Count() <= 16);
        Assert.All(Enumerable.Range(0, values.Length).Where(i => m[i] == 0), i => Assert.Equal(0f, values[i]));
        Assert.All(Enumerable.Range(0, values.Length).Where(i => m[i] == 0), i => Assert.Equal(-1, shared.Codes[i]));
        Assert.Equal(4, shared.CodeBits);
        Assert.Equal(m.Sum(), shared.CodeCounts().Sum());
    }

    [Fact]
    public void Lloyd_LowersTheDistortion_OfTheLinearStart()
    {
        var g = new Generator(2);
        var original = Tensor.Randn(new Shape(2000), g);
        double Distortion(int iterations)
        {
            var w = original.Clone();
            SharedWeights.Cluster(w, 8, iterations: iterations);
            return (w - original).Pow(2).Mean().Item();
        }
        double linearOnly = Distortion(0), refined = Distortion(30);
        Assert.True(refined < 0.8 * linearOnly, $"k-means distortion {refined} is not well below the linear start's {linearOnly}");
    }

    [Fact]
    public void Cluster_KeepsTheExtremes_WithLinearInitialization()
    {
        // One large weight among many small ones: a linear start keeps a centroid near it.
        var data = Enumerable.Range(0, 999).Select(i => (float)(0.01 * Math.Sin(i))).Append(5f).ToArray();
        var w = Tensor.FromArray(data);
        SharedWeights.Cluster(w, 4);
        Assert.Equal(5f, w.ToFloatArray()[^1], 4);
    }

    [Fact]
    public void CentroidGradient_IsTheSumOfItsWeightsGradients_AndStepMovesEverySharer()
    {
        var w = Tensor.FromArray([1f, 1.1f, 3f, 3.1f, 0f], 5).RequiresGrad_();
        var shared = SharedWeights.Cluster(w, 2, Tensor.FromArray([1f, 1f, 1f, 1f, 0f]));
        var coef = Tensor.FromArray([1f, 2f, 3f, 4f, 5f]);
        (w * coef).Sum().Backward();
        var grads = shared.CentroidGradients();
        int low = shared.Codes[0], high = shared.Codes[2];
        Assert.Equal(1 + 2, grads[low], 6);
        Assert.Equal(3 + 4, grads[high], 6);
        float before = shared.Centroids[high];
        shared.StepCentroids(0.01);
        Assert.Equal(before - 0.07f, shared.Centroids[high], 5);
        var v = w.ToFloatArray();
        Assert.Equal(v[2], v[3]);
        Assert.Equal(shared.Centroids[high], v[2]);
        Assert.Equal(0f, v[4]);
    }
}

public class HuffmanTests
{
    [Fact]
    public void BitStreams_RoundTripAnySequence() =>
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(200).WithQuietOnSuccess(true),
            Prop.ForAll(Arb.From(Gen.ArrayOf(Gen.Choose(1, 57).SelectMany(bits => Gen.Choose(0, int.MaxValue).Select(v => (Bits: bits, Value: (ulong)v & ((1UL << bits) - 1)))))), items =>
            {
                var w = new BitWriter();
                foreach (var (bits, value) in items) w.Write(value, bits);
                var r = new BitReader(w.ToArray());
                foreach (var (bits, value) in items) Assert.Equal(value, r.Read(bits));
            }));

    [Fact]
    public void Code_RoundTrips_AndIsWithinOneBitOfTheEntropy()
    {
        var rng = new Random(4);
        // A skewed distribution over 32 symbols, like the gaps between surviving weights.
        var symbols = Enumerable.Range(0, 20_000).Select(_ => Math.Min(31, (int)(-Math.Log(1 - rng.NextDouble()) * 4))).ToArray();
        var counts = new long[32];
        foreach (int s in symbols) counts[s]++;
        var code = HuffmanCode.FromCounts(counts);
        var w = new BitWriter();
        foreach (int s in symbols) code.Write(w, s);
        Assert.Equal(code.CostInBits(counts), w.BitCount);
        var r = new BitReader(w.ToArray());
        Assert.All(symbols, s => Assert.Equal(s, code.Read(r)));
        double n = symbols.Length;
        double entropy = counts.Where(c => c > 0).Sum(c => -c / n * Math.Log2(c / n));
        double average = w.BitCount / n;
        Assert.InRange(average, entropy, entropy + 1);
        // The lengths alone rebuild the same code (what the archive stores).
        var rebuilt = new HuffmanCode(code.Lengths);
        var r2 = new BitReader(w.ToArray());
        Assert.All(symbols.Take(100), s => Assert.Equal(s, rebuilt.Read(r2)));
    }

    [Fact]
    public void OneSymbol_StillTakesOneBit_AndUnseenSymbolsAreRefused()
    {
        var code = HuffmanCode.FromCounts([0, 7, 0]);
        Assert.Equal([0, 1, 0], code.Lengths);
        var ex = Assert.Throws<ArgumentException>(() => code.Write(new BitWriter(), 2));
        Assert.Contains("symbol 2", ex.Message);
        Assert.Throws<InvalidDataException>(() => new HuffmanCode([1, 1, 1]));
    }
}

public class CompressedArchiveTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "minideep-archive-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private static (Tensor Weight, Tensor Bias, SharedWeights Shared) Layer(int seed)
    {
        var g = new Generator((ulong)seed);
        var w = Tensor.Randn(new Shape(60, 100), g).RequiresGrad_();
        var masks = PruningMasks.PerLayer([(w, 0.1)]);
        masks.Apply();
        var shared = SharedWeights.Cluster(w, 64, masks.MaskOf(w));
        return (w, Tensor.Randn(new Shape(60), g), shared);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Archive_RoundTripsEveryKind_BitForBit(bool huffman)
    {
        var (w, b, shared) = Layer(1);
        var sparseSource = Tensor.Randn(new Shape(7, 300), new Generator(9)) * (Tensor.Rand(new Shape(7, 300), new Generator(10)) < 0.02).To(DType.Float32);
        var items = new List<(string, CompressedTensor)>
        {
            ("fc.weight", CompressedTensor.Shared(shared)),
            ("fc.bias", CompressedTensor.Dense(b)),
            ("other.weight", CompressedTensor.Sparse(sparseSource, indexBits: 3)),
        };
        var bytes = CompressedArchive.Encode(items, huffman);
        var back = CompressedArchive.Decode(bytes);
        Assert.Equal(["fc.weight", "fc.bias", "other.weight"], back.Select(t => t.Name));
        Assert.Equal(w.ToFloatArray(), back[0].Tensor.ToTensor().ToFloatArray());
        Assert.Equal(b.ToFloatArray(), back[1].Tensor.ToTensor().ToFloatArray());
        Assert.Equal(sparseSource.ToFloatArray(), back[2].Tensor.ToTensor().ToFloatArray());
        Assert.Equal([7, 300], back[2].Tensor.Shape);
        // With 3-bit gaps and about 2% density most gaps need escapes.
        Assert.Contains(0, items[2].Item2.Gaps);
    }

    [Fact]
    public void Sizes_AreWhatTheStreamsNeed_AndHuffmanIsSmaller()
    {
        var (w, b, shared) = Layer(2);
        var t = CompressedTensor.Shared(shared);
        int fixedBits = t.Gaps.Length * t.IndexBits + t.Values.Length * t.CodeBits;
        var plain = CompressedArchive.Encode([("w", t)], huffman: false);
        // Headers, codebook (64 floats) and counts take less than 400 bytes on top of the packed streams.
        Assert.InRange(plain.Length - (fixedBits + 7) / 8, 64 * 4, 400);
        var coded = CompressedArchive.Encode([("w", t)], huffman: true);
        Assert.True(coded.Length < plain.Length, $"Huffman {coded.Length} B is not below fixed-width {plain.Length} B");
        var dense = CompressedArchive.Encode([("w", CompressedTensor.Dense(w))], huffman: false);
        Assert.InRange(dense.Length, 4 * 6000, 4 * 6000 + 64);
    }

    [Fact]
    public void Save_WritesTheFileAtomically_AndReportsItsLength()
    {
        var (_, b, shared) = Layer(3);
        var path = Path.Combine(_dir, "model.mdcz");
        long size = CompressedArchive.Save(path, [("w", CompressedTensor.Shared(shared)), ("b", CompressedTensor.Dense(b))], huffman: true);
        Assert.Equal(new FileInfo(path).Length, size);
        Assert.Equal(CompressedArchive.Encode([("w", CompressedTensor.Shared(shared)), ("b", CompressedTensor.Dense(b))], true).Length, size);
        Assert.Single(Directory.GetFiles(_dir));
        Assert.Equal(2, CompressedArchive.Load(path).Count);
    }

    [Fact]
    public void MalformedData_IsRefusedWithAClearMessage()
    {
        var (_, b, shared) = Layer(4);
        var bytes = CompressedArchive.Encode([("w", CompressedTensor.Shared(shared)), ("b", CompressedTensor.Dense(b))], true);
        var truncated = bytes.AsSpan(0, bytes.Length / 2).ToArray();
        Assert.Contains("truncated", Assert.Throws<InvalidDataException>(() => CompressedArchive.Decode(truncated)).Message);
        var wrong = (byte[])bytes.Clone();
        wrong[0] = (byte)'X';
        Assert.Contains("magic", Assert.Throws<InvalidDataException>(() => CompressedArchive.Decode(wrong)).Message);
        var extra = bytes.Append((byte)0).ToArray();
        Assert.Contains("damaged", Assert.Throws<InvalidDataException>(() => CompressedArchive.Decode(extra)).Message);
        // A byte after the last tensor under a checksum that covers it: intact, yet not an archive.
        var padded = WithChecksum(bytes.AsSpan(0, bytes.Length - 4).ToArray().Append((byte)0).ToArray());
        Assert.Contains("1 bytes follow", Assert.Throws<InvalidDataException>(() => CompressedArchive.Decode(padded)).Message);
    }

    private static byte[] WithChecksum(byte[] body) =>
        body.Concat(BitConverter.GetBytes(MiniDeep.IO.Crc32.Compute(body))).ToArray();

    [Fact]
    public void Crc32_GivesTheStandardCheckValues()
    {
        Assert.Equal(0xCBF43926u, MiniDeep.IO.Crc32.Compute("123456789"u8));
        Assert.Equal(0x414FA339u, MiniDeep.IO.Crc32.Compute("The quick brown fox jumps over the lazy dog"u8));
        Assert.Equal(0u, MiniDeep.IO.Crc32.Compute([]));
    }

    [Fact]
    public void EveryFlippedBit_IsRefusedAsDamage_NeverDecodedIntoAnotherNetwork()
    {
        // A bias stored as floats and a codebook: one flipped bit in either used to decode without a word.
        var g = new Generator(12);
        var w = Tensor.Randn(new Shape(4, 6), g) * (Tensor.Rand(new Shape(4, 6), g) < 0.5).To(DType.Float32);
        var items = new List<(string, CompressedTensor)> { ("w", CompressedTensor.Sparse(w, indexBits: 3)), ("b", CompressedTensor.Dense(Tensor.Randn(new Shape(4), g))) };
        foreach (bool huffman in new[] { false, true })
        {
            var bytes = CompressedArchive.Encode(items, huffman);
            for (int i = 5; i < bytes.Length; i++)   // past the magic and the version, which have their own messages
            {
                var damaged = (byte[])bytes.Clone();
                damaged[i] ^= (byte)(1 << (i % 8));
                var e = Assert.Throws<InvalidDataException>(() => CompressedArchive.Decode(damaged));
                Assert.Contains("checksum does not match", e.Message);
            }
        }
    }

    [Fact]
    public void Version1Archives_WithoutAChecksum_AreStillRead()
    {
        var (w, b, shared) = Layer(5);
        var items = new List<(string, CompressedTensor)> { ("w", CompressedTensor.Shared(shared)), ("b", CompressedTensor.Dense(b)) };
        var v2 = CompressedArchive.Encode(items, huffman: true);
        Assert.Equal(2, v2[4]);
        var v1 = v2.AsSpan(0, v2.Length - 4).ToArray();
        v1[4] = 1;
        var back = CompressedArchive.Decode(v1);
        Assert.Equal(w.ToFloatArray(), back[0].Tensor.ToTensor().ToFloatArray());
        Assert.Equal(b.ToFloatArray(), back[1].Tensor.ToTensor().ToFloatArray());
        v1[4] = 3;
        Assert.Contains("version 3 is not supported", Assert.Throws<InvalidDataException>(() => CompressedArchive.Decode(v1)).Message);
    }
}

public class DistillationTests
{
    [Fact]
    public void Distillation_MixesSoftAndHardTargets()
    {
        var g = new Generator(8);
        var student = Tensor.Randn(new Shape(6, 4), g);
        var teacher = Tensor.Randn(new Shape(6, 4), g) * 3;
        var labels = Tensor.FromArray([0, 1, 2, 3, 0, 1]);
        double soft = Losses.DistillationKl(student, teacher, 4).Item(), hard = Losses.CrossEntropy(student, labels).Item();
        Assert.Equal(soft, Losses.Distillation(student, teacher, labels, 4, 1).Item(), 6);
        Assert.Equal(hard, Losses.Distillation(student, teacher, labels, 4, 0).Item(), 6);
        Assert.Equal(0.3 * soft + 0.7 * hard, Losses.Distillation(student, teacher, labels, 4, 0.3).Item(), 5);
        Assert.Contains("alpha", Assert.Throws<ArgumentOutOfRangeException>(() => Losses.Distillation(student, teacher, labels, 4, 1.5)).Message);
    }

    [Fact]
    public void Ensemble_AveragesLogits_WhichIsTheGeometricMeanOfTheDistributions()
    {
        var g = new Generator(9);
        var a = new Linear(5, 3, generator: g);
        var b = new Linear(5, 3, generator: g);
        var ensemble = new Ensemble(a, b);
        Assert.Equal(4, ensemble.Parameters().Count);
        var x = Tensor.Randn(new Shape(7, 5), g);
        using var _ = Autograd.NoGrad();
        var la = a.Forward(x); var lb = b.Forward(x);
        var mean = ensemble.Forward(x);
        Assert.Equal(((la + lb) / 2).ToFloatArray(), mean.ToFloatArray());
        // softmax(mean logit / T) ∝ (p_a,T · p_b,T)^(1/2): the geometric mean, renormalized.
        const double t = 3;
        var geo = ((la / t).LogSoftmax(-1) + (lb / t).LogSoftmax(-1)) / 2;
        var expected = geo.Softmax(-1).ToFloatArray();
        var actual = (mean / t).Softmax(-1).ToFloatArray();
        for (int i = 0; i < expected.Length; i++) Assert.Equal(expected[i], actual[i], 5);
    }
}

public class CompressionInputCheckTests
{
    [Fact]
    public void Cluster_RefusesNonFiniteLiveWeights_LeavingTheWeightAsItWas()
    {
        var w = Tensor.FromArray(new float[] { 1, float.NaN, 2, 3 });
        var e = Assert.Throws<ArgumentException>(() => SharedWeights.Cluster(w, 2));
        Assert.Contains("NaN at flat index 1", e.Message);
        Assert.Equal(new float[] { 2, 3 }, w.ToFloatArray()[2..]);
        Assert.Throws<ArgumentException>(() => SharedWeights.Cluster(Tensor.FromArray(new float[] { 1, float.PositiveInfinity }), 2));
        // A pruned entry is not clustered, so a NaN under the mask is no obstacle.
        var masked = SharedWeights.Cluster(Tensor.FromArray(new float[] { 1, float.NaN, 2, 3 }), 2, Tensor.FromArray(new float[] { 1, 0, 1, 1 }));
        Assert.Equal(-1, masked.Codes[1]);
    }

    [Fact]
    public void Cluster_RefusesIntegerWeights_AndNegativeIterations()
    {
        Assert.Contains("floating point", Assert.Throws<ArgumentException>(() => SharedWeights.Cluster(Tensor.FromArray(new[] { 1, 2, 3 }), 2)).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => SharedWeights.Cluster(Tensor.FromArray(new float[] { 1, 2, 3 }), 2, iterations: -1));
    }

    [Fact]
    public void CompressedTensor_StoresFloat32Only()
    {
        var doubles = Tensor.FromArray(new double[] { 0.1, 0, 0.3 });
        Assert.Contains("got float64", Assert.Throws<ArgumentException>(() => CompressedTensor.Dense(doubles)).Message);
        Assert.Contains("got int32", Assert.Throws<ArgumentException>(() => CompressedTensor.Sparse(Tensor.FromArray(new[] { 1, 0, 2 }))).Message);
        Assert.Equal(new float[] { 0.1f, 0, 0.3f }, CompressedTensor.Sparse(doubles.To(DType.Float32)).ToTensor().ToFloatArray());
    }

    [Fact]
    public void Archive_RefusesARepeatedOrEmptyName()
    {
        var t = CompressedTensor.Dense(Tensor.Ones(2));
        Assert.Contains("'a' appears twice", Assert.Throws<ArgumentException>(() => CompressedArchive.Encode([("a", t), ("a", t)], huffman: true)).Message);
        Assert.Throws<ArgumentException>(() => CompressedArchive.Encode([("", t)], huffman: false));
    }
}
