using Xunit;

namespace MiniDeep.Tests.Ops;

public class CreationAndShapeTests
{
    [Fact]
    public void Factories_ProduceTheDocumentedValues()
    {
        Assert.Equal(new float[] { 0, 0, 0, 0, 0, 0 }, Tensor.Zeros(2, 3).ToArray<float>());
        Assert.Equal(new float[] { 1, 1 }, Tensor.Ones(2).ToArray<float>());
        Assert.Equal(new double[] { 7, 7 }, Tensor.Full(new Shape(2), 7, DType.Float64).ToArray<double>());
        Assert.Equal(new float[] { 0, 2, 4 }, Tensor.Arange(0, 5, 2).ToArray<float>());
        Assert.Equal(new int[] { 3, 2, 1 }, Tensor.Arange(3, 0, -1, DType.Int32).ToArray<int>());
        Assert.Equal(new float[] { 0, 0.25f, 0.5f, 0.75f, 1 }, Tensor.Linspace(0, 1, 5).ToArray<float>());
        Assert.Equal(new float[] { 1, 0, 0, 0, 1, 0 }, Tensor.Eye(2, 3).ToArray<float>());
        Assert.Equal(new Shape(2, 3), Tensor.FromArray(new float[,] { { 1, 2, 3 }, { 4, 5, 6 } }).Shape);
        Assert.Equal(5.0, Tensor.Scalar(5).Item());
    }

    [Fact]
    public void RandomFactories_HaveTheRightStatistics()
    {
        var g = new Generator(42);
        var u = Tensor.Rand(new Shape(100_000), g).ToArray<float>();
        Assert.InRange(u.Average(), 0.495, 0.505);
        Assert.All(u, v => Assert.InRange(v, 0f, 0.99999994f));
        var n = Tensor.Randn(new Shape(100_000), g).ToDoubleArray();
        double mean = n.Average(), var = n.Select(v => (v - mean) * (v - mean)).Average();
        Assert.InRange(mean, -0.01, 0.01);
        Assert.InRange(var, 0.98, 1.02);
        var ints = Tensor.Randint(-2, 3, new Shape(10_000), g).ToArray<int>();
        Assert.Equal(new[] { -2, -1, 0, 1, 2 }, ints.Distinct().Order().ToArray());
        var b = Tensor.Bernoulli(new Shape(100_000), 0.3, g).ToArray<float>();
        Assert.InRange(b.Average(), 0.295, 0.305);
        var perm = Tensor.RandPerm(100, g).ToArray<int>();
        Assert.Equal(Enumerable.Range(0, 100), perm.Order());
    }

    [Fact]
    public void Philox_MatchesThePublishedKnownAnswers()
    {
        // Random123's kat_vectors for philox4x32_10: (counter, key) → output.
        Assert.Equal((0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u), Philox.Block(0, 0, 0));
        Assert.Equal((0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu),
            Philox.Block(0xffffffffffffffff, 0xffffffffffffffff, 0xffffffffffffffff));
        // counter (243f6a88 85a308d3 13198a2e 03707344), key (a4093822 299f31d0)
        Assert.Equal((0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u),
            Philox.Block(0x299f31d0a4093822, 0x0370734413198a2e, 0x85a308d3243f6a88));
    }

    [Fact]
    public void SameSeed_SameNumbers_AndStreamsDiffer()
    {
        var a = Tensor.Randn(new Shape(50), new Generator(9)).ToArray<float>();
        var b = Tensor.Randn(new Shape(50), new Generator(9)).ToArray<float>();
        Assert.Equal(a, b);
        var g = new Generator(9);
        var first = Tensor.Randn(new Shape(50), g).ToArray<float>();
        var second = Tensor.Randn(new Shape(50), g).ToArray<float>();
        Assert.Equal(a, first);
        Assert.NotEqual(first, second);
        // float64 and float32 draws of one stream agree to float rounding
        var d = Tensor.Randn(new Shape(50), new Generator(9), dtype: DType.Float64).ToArray<double>();
        Assert.Equal(a, d.Select(v => (float)v).ToArray());
    }

    [Fact]
    public void Fork_GivesAnIndependentButReproducibleGenerator()
    {
        var a = new Generator(5).Fork();
        var b = new Generator(5).Fork();
        Assert.Equal(a.Seed, b.Seed);
        Assert.NotEqual(5UL, a.Seed);
        Assert.Equal(Tensor.Rand(new Shape(8), a).ToArray<float>(), Tensor.Rand(new Shape(8), b).ToArray<float>());
        var parent = new Generator(5);
        var child = parent.Fork();
        Assert.NotEqual(Tensor.Rand(new Shape(8), parent).ToArray<float>(), Tensor.Rand(new Shape(8), child).ToArray<float>());
    }

    [Fact]
    public void ToString_ShowsValuesShapeAndDtype()
    {
        var s = Tensor.FromArray(new float[] { 1, 2.5f, -3, 4 }, 2, 2).ToString();
        Assert.Equal("tensor([[ 1.0000,  2.5000],\n        [-3.0000,  4.0000]], shape=(2, 2), dtype=float32)", s);
        var big = Tensor.Arange(5000).ToString();
        Assert.Contains("...", big);
        Assert.Contains("4999.0000", big);
        Assert.Contains("requires_grad=True", Tensor.Ones(1).RequiresGrad_().ToString());
        Assert.Contains("grad_fn=mul", (Tensor.Ones(1).RequiresGrad_() * 2).ToString());
        Assert.Equal("tensor([ True, False], shape=(2,), dtype=bool)", Tensor.FromArray(new[] { true, false }).ToString());
    }

    [Fact]
    public void Item_And_Indexer_ReadSingleElements()
    {
        var t = Tensor.Arange(6).Reshape(2, 3);
        Assert.Equal(5.0, t[1, 2]);
        Assert.Equal(3.0, t[-1, 0]);
        Assert.Throws<IndexOutOfRangeException>(() => t[2, 0]);
        Assert.Throws<InvalidOperationException>(() => t.Item());
    }

    [Fact]
    public void Views_ShareStorage_AndReshapeOfAViewCopies()
    {
        var t = Tensor.Arange(6).Reshape(2, 3);
        var tt = t.T;
        Assert.False(tt.IsContiguous);
        Assert.Equal(new float[] { 0, 3, 1, 4, 2, 5 }, tt.ToArray<float>());
        Assert.Equal(new float[] { 0, 3, 1, 4, 2, 5 }, tt.Reshape(6).ToArray<float>());
        Assert.Throws<InvalidOperationException>(() => tt.View(6));
        using (Autograd.NoGrad()) t.Narrow(1, 0, 1).Fill(9);
        Assert.Equal(9.0, tt[0, 0]);   // the transpose sees the write: same storage
    }

    [Fact]
    public void ShapeOps_ProduceTheExpectedLayouts()
    {
        var t = Tensor.Arange(24).Reshape(2, 3, 4);
        Assert.Equal(new Shape(4, 2, 3), t.Permute(2, 0, 1).Shape);
        Assert.Equal(new Shape(2, 12), t.Flatten(1).Shape);
        Assert.Equal(new Shape(2, 1, 3, 4), t.Unsqueeze(1).Shape);
        Assert.Equal(new Shape(2, 3, 4), t.Unsqueeze(1).Squeeze(1).Shape);
        Assert.Equal(new Shape(6, 4), t.Reshape(-1, 4).Shape);
        Assert.Equal(new float[] { 1, 5, 9 }, t.Select(0, 0).Select(1, 1).ToArray<float>());
        Assert.Equal(new float[] { 0, 2 }, t.Select(0, 0).Select(0, 0).Slice(0, 0, 4, 2).ToArray<float>());
        Assert.Equal(new float[] { 3 }, t.Select(0, 0).Select(0, 0).Slice(0, -1).ToArray<float>());
        Assert.Equal(new Shape(2, 3, 4), Tensor.Ones(3, 1).Expand(2, 3, 4).Shape);
        var parts = Tensor.Arange(7).Split(3);
        Assert.Equal(new[] { 3, 3, 1 }, parts.Select(p => p.Numel));
        Assert.Equal(new float[] { 0, 1, 2, 3, 4, 5, 6 }, Tensor.Concat(parts).ToArray<float>());
        Assert.Equal(new Shape(2, 7), Tensor.Stack([Tensor.Arange(7), Tensor.Arange(7)]).Shape);
        Assert.Equal(new float[] { 9, 0, 1, 9, 9 }, Tensor.Arange(2).Pad([1, 2], 9).ToArray<float>());
        Assert.Equal(3, Tensor.Arange(9).Chunk(3).Length);
    }

    [Fact]
    public void Indexing_GatherIndexSelectOneHotEmbedding()
    {
        var x = Tensor.FromArray(new float[] { 10, 11, 12, 20, 21, 22 }, 2, 3);
        var idx = Tensor.FromArray(new[] { 2, 0 }, 2, 1);
        Assert.Equal(new float[] { 12, 20 }, x.Gather(1, idx).ToArray<float>());
        Assert.Equal(new float[] { 12, 10, 22, 20 }, x.IndexSelect(1, Tensor.FromArray(new[] { 2, 0 })).ToArray<float>());
        Assert.Equal(new float[] { 0, 1, 0, 1, 0, 0 }, Tensor.OneHot(Tensor.FromArray(new[] { 1, 0 }), 3).ToArray<float>());
        var emb = Tensor.Embedding(Tensor.FromArray(new[] { 1, 1, 0 }, 3), x);
        Assert.Equal(new Shape(3, 3), emb.Shape);
        Assert.Equal(new float[] { 20, 21, 22, 20, 21, 22, 10, 11, 12 }, emb.ToArray<float>());
        Assert.Equal(new float[] { 0, 5, 0 }, Tensor.ScatterAdd([3], 0, Tensor.FromArray(new[] { 1, 1 }), Tensor.FromArray(new float[] { 2, 3 })).ToArray<float>());
        Assert.Throws<IndexOutOfRangeException>(() => x.Gather(1, Tensor.FromArray(new[] { 3 }, 1, 1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => Tensor.OneHot(Tensor.FromArray(new[] { 3 }), 3));
    }

    [Fact]
    public void Selection_WhereMaskedFillClampComparisons()
    {
        var x = Tensor.FromArray(new float[] { -2, 0, 3 });
        Assert.Equal(new[] { false, true, true }, (x >= 0).ToArray<bool>());
        Assert.Equal(new[] { true, false, false }, (x < 0).ToArray<bool>());
        Assert.Equal(new[] { false, true, false }, (x == 0).ToArray<bool>());
        Assert.Equal(new float[] { 0, 0, 3 }, Tensor.Where(x > 0, x, Tensor.Scalar(0)).ToArray<float>());
        Assert.Equal(new float[] { -1, 0, 3 }, x.MaskedFill(x < 0, -1).ToArray<float>());
        Assert.Equal(new float[] { -1, 0, 1 }, x.Clamp(-1, 1).ToArray<float>());
        Assert.Equal(new float[] { -1, -1, 3 }, x.LeakyRelu(0.5).Clamp(min: -1).MaskedFill(x == 0, -1).ToArray<float>());
        Assert.Equal(new[] { false, true, false }, Tensor.LogicalAnd(x >= 0, x <= 0).ToArray<bool>());
        Assert.Equal(new[] { true, false, true }, (x != 0).ToArray<bool>());
        Assert.Equal(2, x.ArgMax().Item<int>());
        Assert.Equal(0, x.ArgMin().Item<int>());
        var m = Tensor.FromArray(new float[] { 1, 9, 3, 7, 2, 8 }, 2, 3);
        Assert.Equal(new[] { 1, 2 }, m.ArgMax(1).ToArray<int>());
        Assert.Equal(new Shape(2, 1), m.ArgMax(1, keepDim: true).Shape);
        Assert.Equal(new[] { 1, 0, 1 }, m.ArgMax(0).ToArray<int>());
    }

    [Fact]
    public void Reductions_OverSeveralAxes_WithAndWithoutKeepDim()
    {
        var t = Tensor.Arange(24).Reshape(2, 3, 4);
        Assert.Equal(new Shape(3), t.Sum([0, 2]).Shape);
        Assert.Equal(new Shape(1, 3, 1), t.Sum([0, -1], keepDim: true).Shape);
        Assert.Equal(new float[] { 60, 92, 124 }, t.Sum([0, 2]).ToArray<float>());
        Assert.Equal(276.0, t.Sum().Item());
        Assert.Equal(23.0, t.Max().Item());
        Assert.Equal(new float[] { 20, 21, 22, 23 }, t.Max([0, 1]).ToArray<float>());
        Assert.Equal(11.5, t.Mean().Item(), 5);
        Assert.Equal(Math.Sqrt(50), t.Std().Item(), 4);
        Assert.Equal(Math.Log(Enumerable.Range(0, 24).Sum(i => Math.Exp(i))), t.LogSumExp().Item(), 4);
        Assert.Equal(0.0, Tensor.Zeros(0, 3).Sum().Item());
        Assert.Throws<ArgumentException>(() => Tensor.Zeros(0, 3).Max(0));
    }

    [Fact]
    public void Casts_And_DeviceMoves_RoundTrip()
    {
        var x = Tensor.FromArray(new float[] { 1.7f, -1.7f, 0 });
        Assert.Equal(new[] { 1, -1, 0 }, x.To(DType.Int32).ToArray<int>());
        Assert.Equal(new[] { true, true, false }, x.To(DType.Bool).ToArray<bool>());
        Assert.Equal(DType.Float64, x.Double().DType);
        var r = x.To(Device.Reference);
        Assert.Equal(Device.Reference, r.Device);
        Assert.Equal(x.ToArray<float>(), r.To(Device.Cpu).ToArray<float>());
        // a gradient flows back through a device move and a cast
        var p = Tensor.FromArray(new float[] { 2 }).RequiresGrad_();
        (p.To(Device.Reference).Double() * 3).Sum().Backward();
        Assert.Equal(3f, p.Grad!.Item<float>());
    }

    [Fact]
    public void Dropout_ZeroesAboutPAndRescalesTheRest()
    {
        var x = Tensor.Ones(new Shape(100_000));
        var y = x.Dropout(0.3, training: true, generator: new Generator(1)).ToArray<float>();
        double zeros = y.Count(v => v == 0) / (double)y.Length;
        Assert.InRange(zeros, 0.295, 0.305);
        Assert.All(y.Where(v => v != 0), v => Assert.Equal(1 / 0.7f, v, 1e-6f));
        Assert.Same(x, x.Dropout(0.3, training: false));
    }
}

public class ReshapeViewTests
{
    [Fact]
    public void ReshapingAStridedView_GivesTheValuesOfACopy_AndAViewWhereTheStridesAllowIt()
    {
        // 2,000 random strided views (permuted, narrowed, stepped, expanded) each reshaped to a random
        // shape with the same number of elements: the values must be those of reshaping a contiguous
        // copy, whether the result is a view or a copy.
        var rng = new Random(4);
        int views = 0;
        for (int trial = 0; trial < 2000; trial++)
        {
            int rank = rng.Next(1, 5);
            var shape = Enumerable.Range(0, rank).Select(_ => rng.Next(1, 5)).ToArray();
            var x = Tensor.Arange(shape.Aggregate(1, (a, b) => a * b)).Reshape(shape);
            if (rank > 1 && rng.Next(2) == 0) { int a = rng.Next(rank), b = rng.Next(rank); x = x.Transpose(a, b); }
            if (rng.Next(2) == 0) { int ax = rng.Next(rank); int len = x.Size(ax); if (len > 1) { int start = rng.Next(len); x = x.Narrow(ax, start, 1 + rng.Next(len - start)); } }
            if (rng.Next(3) == 0) { int ax = rng.Next(x.Rank); x = x.Unsqueeze(ax); var dims = x.Dims.ToArray(); dims[ax] = 2; x = x.Expand(dims); }
            int numel = x.Numel;
            var target = RandomFactorization(numel, rng);
            var expected = x.Contiguous().Reshape(target).ToArray<float>();
            var y = x.Reshape(target);
            Assert.Equal(expected, y.ToArray<float>());
            if (ReferenceEquals(y.Storage, x.Storage)) views++;
        }
        Assert.True(views > 500, $"only {views} of 2,000 reshapes were views");

        // The cases attention needs: a selected, transposed slice of a packed projection, and squeezing
        // or unsqueezing a transposed matrix, are views.
        var qkv = Tensor.Arange(2 * 5 * 3 * 4 * 6).Reshape(2, 5, 3, 4, 6);
        var q = qkv.Select(2, 1).Transpose(1, 2);
        Assert.Same(qkv.Storage, q.Storage);
        var t = Tensor.Arange(12).Reshape(3, 4).T;
        Assert.Same(t.Storage, t.Unsqueeze(0).Storage);
        Assert.Same(t.Storage, t.Unsqueeze(2).Squeeze(2).Storage);
        // Merging a transposed matrix's axes cannot be a view; it is a copy with the right values.
        var merged = t.Reshape(12);
        Assert.NotSame(t.Storage, merged.Storage);
        Assert.Equal(new float[] { 0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11 }, merged.ToArray<float>());
    }

    private static int[] RandomFactorization(int n, Random rng)
    {
        var dims = new List<int>();
        while (n > 1)
        {
            var divisors = Enumerable.Range(2, n - 1).Where(d => n % d == 0).ToArray();
            int d = divisors[rng.Next(divisors.Length)];
            dims.Add(d);
            n /= d;
        }
        for (int i = rng.Next(3); i > 0; i--) dims.Insert(rng.Next(dims.Count + 1), 1);
        return dims.OrderBy(_ => rng.Next()).ToArray();
    }
}

public class PhiloxTests
{
    [Theory]
    [InlineData(0UL)]
    [InlineData(4_294_967_290UL)]   // counters that cross 2^32, where the second counter word turns non-zero
    [InlineData(123_456_789_012UL)]
    public void FirstWords_AreTheBlocksFirstWords_InEveryLengthAndTail(ulong start)
    {
        for (int n = 0; n <= 37; n++)
        {
            var words = new uint[n];
            Philox.FirstWords(0xDEADBEEF12345678UL, 77, start, words);
            for (int i = 0; i < n; i++) Assert.Equal(Philox.Block(0xDEADBEEF12345678UL, 77, start + (ulong)i).Item1, words[i]);
        }
        var many = new uint[1000];
        Philox.FirstWords(42, ulong.MaxValue - 3, start, many);
        for (int i = 0; i < many.Length; i++) Assert.Equal(Philox.Block(42, ulong.MaxValue - 3, start + (ulong)i).Item1, many[i]);
    }

    [Theory]
    [InlineData(0UL)]
    [InlineData(4_294_967_290UL)]
    public void FloatFills_AreTheScalarDefinitions_InEveryLengthAndTail(ulong start)
    {
        // Probabilities on the 2^-24 grid (0.5, 0.75: the compare's edge case), off it (0.3), the ends,
        // and one a hair below 1 whose threshold is the grid's last point.
        double[] ps = [0, 1e-9, 0.3, 0.5, 0.75, 1 - Math.Pow(2, -25), 1];
        foreach (int n in new[] { 0, 1, 7, 15, 16, 17, 31, 33, 511, 512, 513, 1500 })
        {
            var f = new float[n];
            Philox.UniformFloats(5, 6, start, -2, 3, f);
            for (int i = 0; i < n; i++) Assert.Equal((float)(-2 + 5.0 * Philox.UniformFloat(5, 6, start + (ulong)i)), f[i]);
            foreach (double p in ps)
            {
                Philox.BernoulliFloats(5, 6, start, p, f);
                for (int i = 0; i < n; i++) Assert.Equal(Philox.UniformFloat(5, 6, start + (ulong)i) < p ? 1f : 0f, f[i]);
            }
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => Philox.BernoulliFloats(5, 6, 0, 1.5, new float[4]));
    }

    [Fact]
    public void BernoulliFloats_OnTheEdge_WhereADrawEqualsP()
    {
        // p set to element i's own uniform draw: u < p fails there by a hair (u == p) and holds one
        // double above; the integer threshold must flip at exactly that point.
        var f = new float[40];
        for (int i = 0; i < 40; i += 3)
        {
            double u = Philox.UniformFloat(11, 12, (ulong)i);
            Philox.BernoulliFloats(11, 12, 0, u, f);
            Assert.Equal(0f, f[i]);
            Philox.BernoulliFloats(11, 12, 0, Math.BitIncrement(u), f);
            Assert.Equal(1f, f[i]);
        }
    }
}

public class CreationInputCheckTests
{
    [Fact]
    public void Arange_RefusesAStepThatPointsAwayFromEnd_AndNonFiniteBounds()
    {
        Assert.Contains("points away from end", Assert.Throws<ArgumentException>(() => Tensor.Arange(0, 5, -1)).Message);
        Assert.Contains("finite", Assert.Throws<ArgumentException>(() => Tensor.Arange(0, double.NaN, 1)).Message);
        Assert.Equal(new float[] { 5, 4, 3 }, Tensor.Arange(5, 2, -1).ToFloatArray());
        Assert.Equal(0, Tensor.Arange(3, 3, 1).Numel);   // an empty range in the step's direction is fine
    }

    [Fact]
    public void NegativeSizes_AreRefused_EvenWhenTheyMultiplyToTheDataLength()
    {
        Assert.Contains("Eye", Assert.Throws<ArgumentException>(() => Tensor.Eye(-1)).Message);
        Assert.Contains("negative dimension -1", Assert.Throws<ShapeMismatchException>(() => Tensor.FromArray(new float[1], [-1, -1])).Message);
    }

    [Fact]
    public void IntegerAndBoolTensors_AreNotFilledWithValuesTheyCannotHold()
    {
        Assert.Contains("2.5 is not a int32 value", Assert.Throws<ArgumentException>(() => Tensor.Full(new Shape(2), 2.5, DType.Int32)).Message);
        Assert.Throws<ArgumentException>(() => Tensor.Full(new Shape(2), double.NaN, DType.Int32));
        Assert.Throws<ArgumentException>(() => Tensor.Full(new Shape(2), 1e20, DType.Int32));
        Assert.Throws<ArgumentException>(() => Tensor.Full(new Shape(2), 0.5, DType.Bool));
        var ints = Tensor.FromArray(new[] { 1, 2, 5 });
        Assert.Throws<ArgumentException>(() => ints.Clone().Fill(2.5));
        // In-place arithmetic on int32 is refused, as out-of-place arithmetic is: += 0.6 left the tensor unchanged.
        Assert.Contains("AddInPlace: in-place arithmetic needs a floating tensor", Assert.Throws<InvalidOperationException>(() => ints.Clone().AddInPlace(Tensor.FromArray(new[] { 0.6f, 0.6f, 0.6f }))).Message);
        Assert.Throws<InvalidOperationException>(() => ints.Clone().AddInPlace(ints, 0.5));
        Assert.Contains("MulInPlace", Assert.Throws<InvalidOperationException>(() => ints.Clone().MulInPlace(0.5)).Message);
        Assert.Equal(new[] { 3, 3, 3 }, ints.Clone().Fill(3).ToArray<int>());
    }

    [Fact]
    public void AnIntegerTensorMetByAFractionalScalar_IsPromoted_NotTruncated()
    {
        var ints = Tensor.FromArray(new[] { 1, 2, 5 });
        // Before, 2.5 became the int32 scalar 2: 2 == 2.5 and 2 >= 2.5 held, and the division was refused as integer arithmetic.
        Assert.Equal(new[] { 0.4f, 0.8f, 2f }, (ints / 2.5).ToFloatArray());
        Assert.Equal(new[] { false, false, false }, (ints == 2.5).ToArray<bool>());
        Assert.Equal(new[] { false, false, true }, (ints >= 2.5).ToArray<bool>());
        Assert.Equal(new[] { false, true, false }, (ints == 2).ToArray<bool>());   // a scalar the tensor's type holds is compared as it is
    }

    [Fact]
    public void InPlaceWritesIntoAnExpandedView_AreRefused()
    {
        var row = Tensor.Zeros(1, 3);
        var e = Assert.Throws<InvalidOperationException>(() => row.Expand(2, 3).AddInPlace(Tensor.Ones(2, 3)));
        Assert.Contains("expanded view", e.Message);
        Assert.Equal(new float[] { 0, 0, 0 }, row.ToFloatArray());   // before, each element was added twice
        Assert.Throws<InvalidOperationException>(() => row.Expand(2, 3).CopyFrom(Tensor.Ones(2, 3)));
        Assert.Throws<InvalidOperationException>(() => row.Expand(2, 3).Fill(1));
        row.Expand(1, 3).Fill(1);   // a size-1 axis shares nothing
        Assert.Equal(new float[] { 1, 1, 1 }, row.ToFloatArray());
    }
}
