using Xunit;

namespace MiniDeep.Tests.Ops;

public class ExtremeValueTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void CrossEntropy_OfHugeEqualLogits_IsLn2(int target)
    {
        var logits = Tensor.FromArray(new[] { 1e8f, 1e8f }, 1, 2).RequiresGrad_();
        var loss = Losses.CrossEntropy(logits, Tensor.FromArray(new[] { target }));
        Assert.Equal(Math.Log(2), loss.Item(), 1e-6);
        loss.Backward();
        Assert.Equal(new[] { 0.5 - (target == 0 ? 1 : 0), 0.5 - (target == 1 ? 1 : 0) }, logits.Grad!.ToDoubleArray());
    }

    [Fact]
    public void CrossEntropy_AnIgnoredRowOfMinusInfinities_AddsNothing()
    {
        // A padding position whose classes are all masked to −∞ has a NaN loss of its own (−∞ − −∞);
        // ignored, it must leave the mean of the other rows exactly as it is, weighted or not.
        float ninf = float.NegativeInfinity;
        var logits = Tensor.FromArray(new[] { 1f, 2f, 0f, ninf, ninf, ninf, -1f, 0.5f, 3f }, 3, 3);
        var t = Tensor.FromArray(new[] { 1, -100, 2 });
        var rows = Losses.CrossEntropy(logits.IndexSelect(0, Tensor.FromArray(new[] { 0, 2 })), Tensor.FromArray(new[] { 1, 2 }), Reduction.None);
        var kept = rows.Mean();
        Assert.Equal(kept.Item(), Losses.CrossEntropy(logits, t, ignoreIndex: -100).Item());
        var w = Tensor.FromArray(new[] { 1f, 2f, 3f });
        var l = rows.ToDoubleArray();
        Assert.Equal((2 * l[0] + 3 * l[1]) / 5, Losses.CrossEntropy(logits, t, weight: w, ignoreIndex: -100).Item(), 1e-6);
        Assert.Equal(kept.Item(), Losses.Nll(logits.LogSoftmax(1), t, ignoreIndex: -100).Item(), 1e-6);
        // The kept rows' gradients are those of the rows alone: nothing of the ignored row leaks into them.
        // (The ignored row's own is NaN, as in PyTorch: a row of all −∞ has no softmax.)
        var x = logits.Clone().RequiresGrad_();
        Losses.CrossEntropy(x, t, ignoreIndex: -100).Backward();
        var alone = logits.IndexSelect(0, Tensor.FromArray(new[] { 0, 2 })).RequiresGrad_();
        Losses.CrossEntropy(alone, Tensor.FromArray(new[] { 1, 2 })).Backward();
        var g = x.Grad!.ToDoubleArray();
        Assert.Equal(alone.Grad!.ToDoubleArray(), g[..3].Concat(g[6..]).ToArray());
    }

    [Fact]
    public void LogSoftmax_OfTheLargestExpArgument_IsFinite()
    {
        var y = Tensor.FromArray(new[] { 88.72284f }).LogSoftmax();
        Assert.True(double.IsFinite(y.Item()));
        Assert.Equal(0, y.Item());
    }

    [Fact]
    public void Softmax_SumsToOne_ForLogitsUpTo1e4()
    {
        var g = new Generator(3);
        var logits = Tensor.Rand(new Shape(64, 10), g, -1e4, 1e4);
        var sums = logits.Softmax(1).Sum(1).ToDoubleArray();
        Assert.All(sums, s => Assert.Equal(1, s, 1e-6));
    }

    [Fact]
    public void Gradients_AreFinite_ForFiniteExtremeInputs()
    {
        var x = Tensor.FromArray(new[] { -1e4f, -100f, -1e-30f, 0f, 1e-30f, 100f, 1e4f }, 1, 7).RequiresGrad_();
        var loss = Losses.CrossEntropy(x, Tensor.FromArray(new[] { 3 }))
                   + x.Sigmoid().Sum() + x.Tanh().Sum() + x.Softplus().Sum()
                   + x.LogSoftmax(1).Sum() + x.LogSumExp(1).Sum() + x.Gelu().Sum()
                   + Losses.BceWithLogits(x, Tensor.Ones(1, 7)) + x.Softmax(1).Max();
        Assert.True(double.IsFinite(loss.Item()));
        loss.Backward();
        Assert.All(x.Grad!.ToDoubleArray(), v => Assert.True(double.IsFinite(v), $"gradient {v}"));
    }

    [Fact]
    public void NaN_Propagates_AndIsNeverTurnedIntoANumber()
    {
        var x = Tensor.FromArray(new[] { 1f, float.NaN, 3f });
        Assert.True(double.IsNaN(x.Sum().Item()));
        Assert.True(double.IsNaN(x.Max().Item()));
        Assert.True(double.IsNaN(x.Min().Item()));
        Assert.True(double.IsNaN(x.Relu()[1]));
        Assert.True(double.IsNaN(x.Sigmoid()[1]));
        Assert.True(double.IsNaN(x.Softplus()[1]));
        Assert.True(double.IsNaN(Tensor.Maximum(x, Tensor.Zeros(3))[1]));
        Assert.True(double.IsNaN(x.Clamp(0, 2)[1]));
        Assert.True(double.IsNaN(Losses.CrossEntropy(x.Reshape(1, 3), Tensor.FromArray(new[] { 0 })).Item()));
        Assert.True(double.IsNaN(x.Softmax()[0]));
        Assert.Equal(1, x.ArgMax().Item<int>());
    }

    [Fact]
    public void Pow_AtZero_HasPyTorchsGradients_NotNaN()
    {
        // d/dx x⁰ = 0 everywhere (not 0 · 0⁻¹); d/db 0ᵇ = 0 for b ≥ 0 (not 0 · log 0). Where the limit
        // is a true infinity it stays one: d/dx x^0.5 at 0 is +inf, d/db 0ᵇ for b < 0 is −inf.
        var x = Tensor.FromArray(new double[] { 0, 0, 2 }).RequiresGrad_();
        x.Pow(0).Sum().Backward();
        Assert.Equal(new double[] { 0, 0, 0 }, x.Grad!.ToDoubleArray());

        var a = Tensor.FromArray(new double[] { 0, 0, 0, 2 }).RequiresGrad_();
        var b = Tensor.FromArray(new double[] { 0, 2, -1, 3 }).RequiresGrad_();
        Tensor.Pow(a, b).Sum().Backward();
        Assert.Equal(new[] { 0, 0, double.NegativeInfinity, 12 }, a.Grad!.ToDoubleArray());
        Assert.Equal(0, b.Grad!.ToDoubleArray()[0]);
        Assert.Equal(0, b.Grad!.ToDoubleArray()[1]);
        Assert.Equal(double.NegativeInfinity, b.Grad!.ToDoubleArray()[2]);   // 0⁻¹ · log 0 = inf · −inf
        Assert.Equal(8 * Math.Log(2), b.Grad!.ToDoubleArray()[3], 12);

        var r = Tensor.FromArray(new double[] { 0 }).RequiresGrad_();
        r.Pow(0.5).Sum().Backward();
        Assert.Equal(double.PositiveInfinity, r.Grad!.Item());
    }

    [Fact]
    public void LogSumExp_OfAllMinusInfinity_IsMinusInfinity_NotNaN()
    {
        var y = Tensor.FromArray(new[] { float.NegativeInfinity, float.NegativeInfinity }).LogSumExp();
        Assert.Equal(double.NegativeInfinity, y.Item());
    }
}
