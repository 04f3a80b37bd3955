using FsCheck;
using FsCheck.Fluent;
using Xunit;

namespace MiniDeep.Tests.Ops;

/// <summary>Values and gradients worked out by hand; the calculus is in each comment.</summary>
public class HandDerivedTests
{
    private const double Tol = 1e-5;
    private static Tensor P(params float[] v) => Tensor.FromArray(v).RequiresGrad_();
    private static void Close(double[] expected, Tensor actual, double tol = Tol) =>
        Assert.Equal(expected, actual.ToDoubleArray(), (a, b) => Math.Abs(a - b) <= tol * Math.Max(1, Math.Abs(a)));

    [Fact]
    public void Mul_Backward_IsTheOtherFactor()
    {
        // y = Σ a·b ⇒ ∂y/∂a = b, ∂y/∂b = a
        var a = P(2, -3); var b = P(5, 7);
        (a * b).Sum().Backward();
        Close([5, 7], a.Grad!);
        Close([2, -3], b.Grad!);
    }

    [Fact]
    public void Div_Backward_QuotientRule()
    {
        // y = a/b ⇒ ∂y/∂a = 1/b = 0.25, ∂y/∂b = -a/b² = -3/16
        var a = P(3); var b = P(4);
        (a / b).Sum().Backward();
        Close([0.25], a.Grad!);
        Close([-3.0 / 16], b.Grad!);
    }

    [Fact]
    public void Add_WithBroadcast_SumsTheGradientOverTheBroadcastAxis()
    {
        // y = Σᵢⱼ (Aᵢⱼ + bⱼ), A is 2×3 ⇒ ∂y/∂bⱼ = 2 (two rows)
        var a = Tensor.Ones(2, 3).RequiresGrad_(); var b = P(1, 2, 3);
        (a + b).Sum().Backward();
        Close([2, 2, 2], b.Grad!);
        Close([1, 1, 1, 1, 1, 1], a.Grad!);
    }

    [Fact]
    public void Exp_Log_Tanh_Sigmoid_Derivatives()
    {
        // d/dx eˣ = eˣ; d/dx ln x = 1/x; d/dx tanh x = 1 - tanh² x; d/dx σ(x) = σ(x)(1 - σ(x))
        var x = P(0.5f);
        x.Exp().Sum().Backward(); Close([Math.Exp(0.5)], x.Grad!); x.Grad = null;
        x.Log().Sum().Backward(); Close([2], x.Grad!); x.Grad = null;
        x.Tanh().Sum().Backward(); Close([1 - Math.Pow(Math.Tanh(0.5), 2)], x.Grad!); x.Grad = null;
        double s = 1 / (1 + Math.Exp(-0.5));
        x.Sigmoid().Sum().Backward(); Close([s * (1 - s)], x.Grad!);
    }

    [Fact]
    public void Relu_AtZero_HasZeroGradient()
    {
        // relu'(x) = [x > 0]; at exactly 0 the subgradient 0 is used (as PyTorch does)
        var x = P(-1, 0, 2);
        x.Relu().Sum().Backward();
        Close([0, 0, 1], x.Grad!);
    }

    [Fact]
    public void Gelu_ValueAndDerivativeAtOne()
    {
        // gelu(1) = Φ(1) = 0.841344746; gelu'(1) = Φ(1) + φ(1) = 0.841344746 + 0.241970725
        var x = P(1);
        var y = x.Gelu();
        Close([0.8413447460685429], y);
        y.Sum().Backward();
        Close([0.8413447460685429 + 0.24197072451914337], x.Grad!);
    }

    [Fact]
    public void Softplus_IsExactInBothTails()
    {
        // softplus(x) = log(1 + eˣ): ≈ x for large x, ≈ eˣ for very negative x
        var y = Tensor.FromArray(new double[] { 100, -100, 0 }).Softplus();
        Close([100, Math.Exp(-100), Math.Log(2)], y, 1e-12);
    }

    [Fact]
    public void MatMul_Backward_IsGTimesBTransposed()
    {
        // Y = A·B with A = [[1,2]], B = [[3],[4]] ⇒ Y = 11; ∂Y/∂A = Bᵀ = [3,4]; ∂Y/∂B = Aᵀ = [1;2]
        var a = Tensor.FromArray(new float[] { 1, 2 }, 1, 2).RequiresGrad_();
        var b = Tensor.FromArray(new float[] { 3, 4 }, 2, 1).RequiresGrad_();
        var y = Tensor.MatMul(a, b);
        Close([11], y);
        y.Sum().Backward();
        Close([3, 4], a.Grad!);
        Close([1, 2], b.Grad!);
    }

    [Fact]
    public void Softmax_GradientOfOneComponent()
    {
        // s = softmax(x); ∂s₀/∂xⱼ = s₀(δ₀ⱼ - sⱼ). For x = (0, ln 3): s = (1/4, 3/4).
        var x = Tensor.FromArray(new[] { 0f, (float)Math.Log(3) }).RequiresGrad_();
        var s = x.Softmax();
        Close([0.25, 0.75], s);
        s.Narrow(0, 0, 1).Sum().Backward();
        Close([0.25 * 0.75, -0.25 * 0.75], x.Grad!);
    }

    [Fact]
    public void CrossEntropy_ValueAndGradient()
    {
        // ℓ = -log softmax(x)_t. x = (0, ln 3), t = 1: ℓ = -ln(3/4); ∂ℓ/∂x = softmax - onehot = (1/4, -1/4)
        var x = Tensor.FromArray(new[] { 0f, (float)Math.Log(3) }, 1, 2).RequiresGrad_();
        var loss = Losses.CrossEntropy(x, Tensor.FromArray(new[] { 1 }));
        Close([-Math.Log(0.75)], loss);
        loss.Backward();
        Close([0.25, -0.25], x.Grad!);
    }

    [Fact]
    public void Mean_And_Var_OfAKnownVector()
    {
        // x = (1, 2, 3, 4): mean 2.5, unbiased var = (2.25 + .25 + .25 + 2.25)/3 = 5/3; ∂var/∂xᵢ = 2(xᵢ - mean)/3
        var x = P(1, 2, 3, 4);
        Close([2.5], x.Mean());
        var v = x.Var();
        Close([5.0 / 3], v);
        v.Backward();
        Close([-1, -1 / 3.0, 1 / 3.0, 1], x.Grad!);
    }

    [Fact]
    public void Max_SharesTheGradientAmongTies()
    {
        // max(1, 3, 3) = 3; the gradient is split between the two maxima
        var x = P(1, 3, 3);
        x.Max().Backward();
        Close([0, 0.5, 0.5], x.Grad!);
    }

    [Fact]
    public void Conv2d_OneByOneImage_IsAWeightedSum()
    {
        // a 2×2 input, 2×2 kernel, no padding: y = Σ x·w = 1·1 + 2·0 + 3·0 + 4·(-1) = -3; ∂y/∂w = x
        var x = Tensor.FromArray(new float[] { 1, 2, 3, 4 }, 1, 1, 2, 2).RequiresGrad_();
        var w = Tensor.FromArray(new float[] { 1, 0, 0, -1 }, 1, 1, 2, 2).RequiresGrad_();
        var y = Tensor.Conv2d(x, w);
        Close([-3], y);
        y.Sum().Backward();
        Close([1, 2, 3, 4], w.Grad!);
        Close([1, 0, 0, -1], x.Grad!);
    }

    [Fact]
    public void MaxPool_RoutesTheGradientToTheMaximum()
    {
        // 2×2 pooling of [[1, 5], [3, 2]] picks 5; only that element gets the gradient
        var x = Tensor.FromArray(new float[] { 1, 5, 3, 2 }, 1, 1, 2, 2).RequiresGrad_();
        var y = Tensor.MaxPool2d(x, (2, 2));
        Close([5], y);
        y.Sum().Backward();
        Close([0, 1, 0, 0], x.Grad!);
    }

    [Fact]
    public void AvgPool_SpreadsTheGradientEvenly()
    {
        var x = Tensor.FromArray(new float[] { 1, 5, 3, 2 }, 1, 1, 2, 2).RequiresGrad_();
        var y = Tensor.AvgPool2d(x, (2, 2));
        Close([2.75], y);
        y.Sum().Backward();
        Close([0.25, 0.25, 0.25, 0.25], x.Grad!);
    }

    [Fact]
    public void Mse_And_BceWithLogits_KnownValues()
    {
        // mse((1,3),(0,0)) = (1 + 9)/2 = 5; bce(0, y=1) = log 2
        Close([5], Losses.Mse(Tensor.FromArray(new float[] { 1, 3 }), Tensor.Zeros(2)));
        Close([Math.Log(2)], Losses.BceWithLogits(Tensor.Zeros(1), Tensor.Ones(1)));
    }

    [Fact]
    public void DistillationKl_IsZeroForIdenticalLogits()
    {
        var s = Tensor.FromArray(new float[] { 1, 2, 3, 1, 0, -1 }, 2, 3);
        Close([0], Losses.DistillationKl(s, s, 4), 1e-6);
    }

    [Fact]
    public void CrossEntropy_WithLabelSmoothing_IsTheCrossEntropyAgainstTheSmoothedTarget()
    {
        // Target (1 − ε)·onehot(t) + ε/C: loss and gradient softmax(x) − target, by both routes.
        const double eps = 0.1;
        var logits = Tensor.FromArray(new double[] { 2, -1, 0.5, 0, 3, -2 }, 2, 3);
        var labels = Tensor.FromArray(new[] { 0, 2 });
        var smoothed = Tensor.OneHot(labels, 3, DType.Float64) * (1 - eps) + eps / 3;
        var x1 = logits.Clone().RequiresGrad_();
        var l1 = Losses.CrossEntropy(x1, labels, labelSmoothing: eps);
        l1.Backward();
        var x2 = logits.Clone().RequiresGrad_();
        var l2 = Losses.SoftCrossEntropy(x2, smoothed);
        l2.Backward();
        Close([l2.Item()], l1, 1e-12);
        Close(x2.Grad!.ToDoubleArray(), x1.Grad!, 1e-12);
        Close(((logits.Softmax(1) - smoothed) / 2).ToDoubleArray(), x1.Grad!, 1e-12);
        // Soft targets are smoothed alike, and ε = 0 is the plain loss.
        Close([l2.Item()], Losses.CrossEntropy(logits, Tensor.OneHot(labels, 3, DType.Float64), labelSmoothing: eps), 1e-12);
        Assert.Equal(Losses.CrossEntropy(logits, labels).Item(), Losses.CrossEntropy(logits, labels, labelSmoothing: 0).Item());
        Assert.Throws<ArgumentOutOfRangeException>(() => Losses.CrossEntropy(logits, labels, labelSmoothing: 1.5));
        var check = GradCheck.CheckSecondOrder(a => Losses.CrossEntropy(a[0], labels, labelSmoothing: eps), [logits]);
        Assert.True(check.Passed, check.Failure);
    }

    [Fact]
    public void CrossEntropy_WithClassWeightsAndAnIgnoredRow_IsTheWeightedMeanOfTheRowsKept()
    {
        // ℓ = (w_0 ℓ_0 + w_2 ℓ_2) / (w_0 + w_2) with row 1 ignored ⇒ ∂ℓ/∂x_i = w_ti (softmax(x_i) − onehot(t_i)) / 4, row 1: 0
        var logits = Tensor.FromArray(new double[] { 2, -1, 0.5, 0, 3, -2, 1, 1, -1 }, 3, 3);
        var w = Tensor.FromArray(new double[] { 1, 2, 3 });
        var t = Tensor.FromArray(new[] { 0, -1, 2 });
        var x = logits.Clone().RequiresGrad_();
        var loss = Losses.CrossEntropy(x, t, weight: w, ignoreIndex: -1);
        loss.Backward();
        var rows = Losses.CrossEntropy(logits, Tensor.FromArray(new[] { 0, 0, 2 }), Reduction.None).ToDoubleArray();
        Close([(1 * rows[0] + 3 * rows[2]) / 4], loss, 1e-12);
        var p = logits.Softmax(1).ToDoubleArray();
        Close([(p[0] - 1) / 4, p[1] / 4, p[2] / 4, 0, 0, 0, 3 * p[6] / 4, 3 * p[7] / 4, 3 * (p[8] - 1) / 4], x.Grad!, 1e-12);
        // Sum and None keep the weights and drop the row, without the divisor.
        Close([1 * rows[0] + 3 * rows[2]], Losses.CrossEntropy(logits, t, Reduction.Sum, weight: w, ignoreIndex: -1), 1e-12);
        Close([rows[0], 0, 3 * rows[2]], Losses.CrossEntropy(logits, t, Reduction.None, weight: w, ignoreIndex: -1), 1e-12);
        // Second derivatives through the weights, the mask and the smoothing term.
        var check = GradCheck.CheckSecondOrder(a => Losses.CrossEntropy(a[0], t, labelSmoothing: 0.2, weight: a[1], ignoreIndex: -1), [logits, w]);
        Assert.True(check.Passed, check.Failure);
    }

    [Fact]
    public void CrossEntropy_WhenEveryRowIsIgnored_MeanIsNaN_SumAndGradientAreZero()
    {
        // 0/0, as in PyTorch: there is no row to average; the sum over no rows is 0 and so is its gradient.
        var x = Tensor.FromArray(new double[] { 2, -1, 0.5, 0, 3, -2 }, 2, 3).RequiresGrad_();
        var t = Tensor.FromArray(new[] { 7, 7 });
        Assert.True(double.IsNaN(Losses.CrossEntropy(x, t, ignoreIndex: 7).Item()));
        var sum = Losses.CrossEntropy(x, t, Reduction.Sum, labelSmoothing: 0.1, ignoreIndex: 7);
        sum.Backward();
        Assert.Equal(0, sum.Item());
        Assert.All(x.Grad!.ToDoubleArray(), v => Assert.Equal(0, v));
    }

    [Fact]
    public void CrossEntropyAndNll_IgnoringRows_IsDroppingThem() =>
        // For any logits, targets, weights and smoothing: the loss over all rows with some ignored equals
        // the loss over the kept rows alone, and so do the kept rows' gradients; the ignored rows' are 0.
        Check.One(Config.QuickThrowOnFailure.WithMaxTest(100).WithQuietOnSuccess(true),
            Prop.ForAll(Arb.From(
                from n in Gen.Choose(2, 9)
                from c in Gen.Choose(2, 6)
                from seed in Gen.Choose(0, 100_000)
                from weighted in Gen.Elements(false, true)
                from smoothing in Gen.Elements(0.0, 0.15)
                from reduction in Gen.Elements(Reduction.Mean, Reduction.Sum)
                select (n, c, seed, weighted, smoothing, reduction)), k =>
            {
                var g = new Generator((ulong)k.seed);
                var logits = Tensor.Randn(new Shape(k.n, k.c), g, dtype: DType.Float64) * 3;
                var targets = Tensor.Randint(0, k.c, new Shape(k.n), g).ToArray<int>();
                var ignored = Tensor.Rand(new Shape(k.n), g).ToDoubleArray().Select(u => u < 0.4).ToArray();
                ignored[k.seed % k.n] = false;   // at least one row kept, so the mean is a number
                var w = k.weighted ? Tensor.Rand(new Shape(k.c), g, 0.2, 3, DType.Float64) : null;
                var withIgnored = Tensor.FromArray(targets.Select((v, i) => ignored[i] ? -100 : v).ToArray());
                var keptRows = Enumerable.Range(0, k.n).Where(i => !ignored[i]).ToArray();
                var kept = Tensor.FromArray(keptRows);

                foreach (bool nll in new[] { false, true })
                {
                    Tensor Loss(Tensor x, Tensor t, int? ignore) => nll
                        ? Losses.Nll(x.LogSoftmax(1), t, k.reduction, w, ignore)
                        : Losses.CrossEntropy(x, t, k.reduction, k.smoothing, w, ignore);
                    var all = logits.Clone().RequiresGrad_();
                    var a = Loss(all, withIgnored, -100);
                    a.Backward();
                    var some = logits.IndexSelect(0, kept).RequiresGrad_();
                    var b = Loss(some, Tensor.FromArray(keptRows.Select(i => targets[i]).ToArray()), null);
                    b.Backward();
                    Close([b.Item()], a, 1e-12);
                    Close(some.Grad!.ToDoubleArray(), all.Grad!.IndexSelect(0, kept), 1e-12);
                    for (int i = 0; i < k.n; i++)
                        if (ignored[i]) Assert.All(all.Grad!.ToDoubleArray().Skip(i * k.c).Take(k.c), v => Assert.Equal(0, v));
                }
            }));

    [Fact]
    public void SmoothL1AndHuber_AreQuadraticInside_LinearOutside_AndMeetAtTheEdge()
    {
        // d = p − t = (−3, −0.5, 0, 0.25, 2) with β = δ = 1:
        // SmoothL1 = (2.5, 0.125, 0, 0.03125, 1.5), ∂/∂p = (−1, −0.5, 0, 0.25, 1); Huber is the same for δ = 1.
        // δ = 2: Huber = (4, 0.125, 0, 0.03125, 2), ∂/∂p = (−2, −0.5, 0, 0.25, 2).
        var t = Tensor.FromArray(new float[] { 1, 1, 1, 1, 1 });
        foreach (var (loss, value, grad) in new (Func<Tensor, Tensor>, double[], double[])[]
        {
            (p => Losses.SmoothL1(p, t, Reduction.Sum), [2.5, 0.125, 0, 0.03125, 1.5], [-1, -0.5, 0, 0.25, 1]),
            (p => Losses.Huber(p, t, Reduction.Sum), [2.5, 0.125, 0, 0.03125, 1.5], [-1, -0.5, 0, 0.25, 1]),
            (p => Losses.Huber(p, t, Reduction.Sum, delta: 2), [4, 0.125, 0, 0.03125, 2], [-2, -0.5, 0, 0.25, 2]),
            (p => Losses.SmoothL1(p, t, Reduction.Sum, beta: 0), [3, 0.5, 0, 0.25, 2], [-1, -1, 0, 1, 1]),
            (p => Losses.L1(p, t, Reduction.Sum), [3, 0.5, 0, 0.25, 2], [-1, -1, 0, 1, 1]),
        })
        {
            var p = P(-2, 0.5f, 1, 1.25f, 3);
            var l = loss(p);
            l.Backward();
            Close([value.Sum()], l);
            Close(grad, p.Grad!);
        }
        // At |d| = β the two pieces meet in value and in slope: β/2 and 1 from either side.
        foreach (float edge in new[] { 1f - 1e-4f, 1f, 1f + 1e-4f })
        {
            var p = P(1 + edge);
            var l = Losses.SmoothL1(p, t.Narrow(0, 0, 1));
            l.Backward();
            Close([edge < 1 ? edge * edge / 2 : edge - 0.5], l, 1e-6);
            Close([Math.Min(edge, 1)], p.Grad!, 1e-4);
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => Losses.SmoothL1(t, t, beta: -1));
        Assert.Throws<ArgumentOutOfRangeException>(() => Losses.Huber(t, t, delta: 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => Losses.Huber(t, t, delta: double.NaN));
    }

    [Fact]
    public void BceWithLogits_PosWeight_WeighsThePositiveTerm()
    {
        // x = 0, y = 1, p = 3: ℓ = 3·log 2, dx = (1 + 2)·½ − 3 = −1.5; y = 0 is untouched by p: ℓ = log 2, dx = ½.
        // Logits of ±100 stay finite: ℓ(100, y = 0) = 100, ℓ(−100, y = 1) = 3·100.
        var x = P(0, 0, 100, -100);
        var y = Tensor.FromArray(new float[] { 1, 0, 0, 1 });
        var p = Tensor.FromArray(new float[] { 3, 3, 3, 3 });
        var l = Losses.BceWithLogits(x, y, Reduction.None, posWeight: p);
        l.Sum().Backward();
        Close([3 * Math.Log(2), Math.Log(2), 100, 300], l);
        Close([-1.5, 0.5, 1, -3], x.Grad!);
        // p = 1 is the plain loss.
        var z = Tensor.FromArray(new float[] { 0.3f, -2, 5, 0.7f }, 2, 2);
        var t = Tensor.FromArray(new float[] { 1, 0, 0.25f, 1 }, 2, 2);
        Close(Losses.BceWithLogits(z, t, Reduction.None).ToDoubleArray(), Losses.BceWithLogits(z, t, Reduction.None, posWeight: Tensor.Ones(2)), 1e-6);
    }

    [Fact]
    public void AdaptiveAvgPool2d_AveragesPyTorchsWindows_AndHasSecondDerivatives()
    {
        // One row of 5 pooled to 3: windows [0, 2), [1, 4), [3, 5) (⌊i·5/3⌋ to ⌈(i + 1)·5/3⌉), so x₁ and x₃
        // each serve two outputs: ∂Σy/∂x = (½, ½ + ⅓, ⅓, ⅓ + ½, ½).
        var x = Tensor.FromArray(new double[] { 1, 2, 4, 8, 16 }, 1, 1, 1, 5).RequiresGrad_();
        var y = Tensor.AdaptiveAvgPool2d(x, (1, 3));
        y.Sum().Backward();
        Close([1.5, 14.0 / 3, 12], y);
        Close([0.5, 5.0 / 6, 1.0 / 3, 5.0 / 6, 0.5], x.Grad!);
        var check = GradCheck.CheckSecondOrder(a => (Tensor.AdaptiveAvgPool2d(a[0], (2, 3)) * Tensor.AdaptiveAvgPool2d(a[0], (2, 3))).Sum(),
            [Tensor.Randn(new Shape(1, 2, 5, 4), new Generator(3), dtype: DType.Float64)]);
        Assert.True(check.Passed, check.Failure);
        Assert.Throws<ArgumentException>(() => Tensor.AdaptiveAvgPool2d(x, (0, 2)));
    }

    [Fact]
    public void AdaptiveAvgPool2d_AnInfinitePixel_MakesOnlyItsOwnWindowsInfinite()
    {
        // 5 → 3 windows [0, 2), [1, 4), [3, 5): x₀ = ∞ lies only in the first. PyTorch gives (∞, 14/3, 12); a
        // product with a 0/1 averaging matrix gave 0·∞ = NaN in the other two. Across rows: 3 → 2
        // windows [0, 2), [1, 3), so row 0's ∞ reaches only output row 0, and a NaN in row 2 only row 1.
        var x = Tensor.FromArray(new double[] { double.PositiveInfinity, 2, 4, 8, 16 }, 1, 1, 1, 5);
        var cols = Tensor.AdaptiveAvgPool2d(x, (1, 3));
        Assert.Equal(double.PositiveInfinity, cols.ToDoubleArray()[0]);
        Close([14.0 / 3, 12], cols.Narrow(3, 1, 2));
        var rows = Tensor.FromArray(new double[] { double.PositiveInfinity, 1, 2, double.NaN }, 1, 1, 4, 1);
        var y = Tensor.AdaptiveAvgPool2d(rows, (3, 1)).ToDoubleArray();   // windows [0, 2), [1, 3), [2, 4)
        Assert.Equal(double.PositiveInfinity, y[0]);
        Assert.Equal(1.5, y[1]);
        Assert.True(double.IsNaN(y[2]));
        // The gradient of a finite output does not see the infinite pixel.
        var xg = x.Clone().RequiresGrad_();
        Tensor.AdaptiveAvgPool2d(xg, (1, 3)).Narrow(3, 1, 2).Sum().Backward();
        Close([0, 1.0 / 3, 1.0 / 3, 1.0 / 3 + 0.5, 0.5], xg.Grad!);
    }

    [Fact]
    public void ConvTranspose2d_ScattersTheKernel_AndIsTheAdjointOfConv2d()
    {
        // One pixel of value 1 at (0, 0) and one of value 2 at (0, 1), stride 2, kernel [[1, 2], [3, 4]]:
        // each pixel writes its value times the kernel into its own 2×2 block, and the blocks do not
        // overlap, so y = [[1, 2, 2, 4], [3, 4, 6, 8]], (H − 1)·s + kh = 2 high and (W − 1)·s + kw = 4 wide.
        var x = Tensor.FromArray(new double[] { 1, 2 }, 1, 1, 1, 2).RequiresGrad_();
        var w = Tensor.FromArray(new double[] { 1, 2, 3, 4 }, 1, 1, 2, 2).RequiresGrad_();
        var y = Tensor.ConvTranspose2d(x, w, stride: (2, 2));
        Assert.Equal([1, 1, 2, 4], y.Dims);
        Close([1, 2, 2, 4, 3, 4, 6, 8], y);
        // ∂Σy/∂x_p = Σ w = 10 for each pixel; ∂Σy/∂w = Σ x = 3 for each tap.
        y.Sum().Backward();
        Close([10, 10], x.Grad!);
        Close([3, 3, 3, 3], w.Grad!);
        // Stride 1 makes the blocks overlap: y = [1, 2 + 2, 4] along the row for kernel [1, 2].
        Close([1, 4, 4], Tensor.ConvTranspose2d(x.Detach(), Tensor.FromArray(new double[] { 1, 2 }, 1, 1, 1, 2)));

        // Adjoint: ⟨conv(u, w), v⟩ = ⟨u, conv_transpose(v, w)⟩, with the output padding that gives the
        // transposed output u's size (non-zero in the first two geometries), and groups.
        var g = new Generator(5);
        foreach (var (s, p, d, groups) in new[] { ((2, 2), (1, 0), (1, 1), 1), ((3, 2), (0, 1), (1, 2), 2), ((1, 1), (0, 0), (2, 1), 1) })
        {
            var u = Tensor.Randn(new Shape(2, 4, 10, 9), g, dtype: DType.Float64);
            var wt = Tensor.Randn(new Shape(6, 4 / groups, 3, 2), g, dtype: DType.Float64);
            var cu = Tensor.Conv2d(u, wt, stride: s, padding: p, dilation: d, groups: groups);
            var v = Tensor.Randn(cu.Shape, g, dtype: DType.Float64);
            (int, int) op = (10 - ((cu.Size(2) - 1) * s.Item1 - 2 * p.Item1 + d.Item1 * 2 + 1), 9 - ((cu.Size(3) - 1) * s.Item2 - 2 * p.Item2 + d.Item2 + 1));
            var tv = Tensor.ConvTranspose2d(v, wt, stride: s, padding: p, outputPadding: op, dilation: d, groups: groups);
            Assert.Equal(u.Dims, tv.Dims);
            double left = (cu * v).Sum().Item(), right = (u * tv).Sum().Item();
            Assert.True(Math.Abs(left - right) <= 1e-10 * Math.Max(1, Math.Abs(left)), $"stride {s}, groups {groups}: {left} vs {right}");
        }

        var check = GradCheck.CheckSecondOrder(a => (Tensor.ConvTranspose2d(a[0], a[1], a[2], (2, 1), (1, 0), (1, 0)).Square()).Sum(),
            [Tensor.Randn(new Shape(2, 3, 3, 4), g, dtype: DType.Float64), Tensor.Randn(new Shape(3, 2, 3, 2), g, dtype: DType.Float64), Tensor.Randn(new Shape(2), g, dtype: DType.Float64)]);
        Assert.True(check.Passed, check.Failure);
        var grouped = GradCheck.CheckSecondOrder(a => (Tensor.ConvTranspose2d(a[0], a[1], null, (2, 2), groups: 2).Square()).Sum(),
            [Tensor.Randn(new Shape(1, 4, 3, 2), g, dtype: DType.Float64), Tensor.Randn(new Shape(4, 1, 2, 3), g, dtype: DType.Float64)]);
        Assert.True(grouped.Passed, grouped.Failure);
    }

    [Fact]
    public void OneDimensionalOps_AreTheirTwoDimensionalOnesOnARow_WithSecondDerivatives()
    {
        // [1, 2, 3, 4] ⋆ [1, −1] = [−1, −1, −1]; max pooling by 2: [2, 4]; average pooling by 2: [1.5, 3.5].
        var x = Tensor.FromArray(new double[] { 1, 2, 3, 4 }, 1, 1, 4);
        Close([-1, -1, -1], Tensor.Conv1d(x, Tensor.FromArray(new double[] { 1, -1 }, 1, 1, 2)));
        Close([2, 4], Tensor.MaxPool1d(x, 2));
        Close([1.5, 3.5], Tensor.AvgPool1d(x, 2));
        // Transposed, stride 2: each sample writes its value times [1, 10] into its own pair.
        Close([1, 10, 2, 20, 3, 30, 4, 40], Tensor.ConvTranspose1d(x, Tensor.FromArray(new double[] { 1, 10 }, 1, 1, 2), stride: 2));

        var g = new Generator(9);
        var check = GradCheck.CheckSecondOrder(a => (Tensor.Conv1d(a[0], a[1], a[2], stride: 2, padding: 1, groups: 2).Square()).Sum()
                + Tensor.ConvTranspose1d(a[0], a[3], null, stride: 2, outputPadding: 1).Square().Sum(),
            [Tensor.Randn(new Shape(2, 4, 7), g, dtype: DType.Float64), Tensor.Randn(new Shape(6, 2, 3), g, dtype: DType.Float64),
             Tensor.Randn(new Shape(6), g, dtype: DType.Float64), Tensor.Randn(new Shape(4, 3, 2), g, dtype: DType.Float64)]);
        Assert.True(check.Passed, check.Failure);
    }

    [Fact]
    public void Interpolate_NearestAndBilinear_WorkedByHand()
    {
        // Nearest ×2 copies each pixel into a 2×2 block; its gradient sums the block back: 4 per pixel.
        var x = Tensor.FromArray(new double[] { 1, 2, 3, 4 }, 1, 1, 2, 2).RequiresGrad_();
        var near = Tensor.Interpolate(x, 2);
        Close([1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4], near);
        near.Sum().Backward();
        Close([4, 4, 4, 4], x.Grad!);

        // A row [0, 4] to 4 columns, centres aligned: column i samples (i + ½)/2 − ½ = −¼ (clamped to 0),
        // ¼, ¾, 1¼ (past the last pixel: itself), so y = (0, 1, 3, 4); ∂Σy/∂x = (1 + ¾ + ¼, ¼ + ¾ + 1) = (2, 2).
        var r = Tensor.FromArray(new double[] { 0, 4 }, 1, 1, 1, 2).RequiresGrad_();
        var lin = Tensor.Interpolate(r, (1, 4), UpsampleMode.Bilinear);
        Close([0, 1, 3, 4], lin);
        lin.Sum().Backward();
        Close([2, 2], r.Grad!);
        // Corners aligned: column i samples i·(2 − 1)/(4 − 1) = i/3: y = (0, 4/3, 8/3, 4).
        Close([0, 4.0 / 3, 8.0 / 3, 4], Tensor.Interpolate(r.Detach(), (1, 4), UpsampleMode.Bilinear, alignCorners: true));
        // An infinite pixel, [∞, 1, 2, 3] to 2×8 (values from PyTorch 1.13): the outputs that weigh it by a
        // positive weight are ∞, those that weigh it by 0 NaN (0·∞, row 0 samples the one input row at weight
        // 0 for its missing second neighbour), the rest finite. Both are PyTorch's values. Where an axis keeps
        // its size MiniDeep leaves it alone, so 1×4 to 1×8 gives ∞ for the first three; PyTorch still
        // multiplies that axis by its weights 1 and 0 and gives NaN.
        var inf = Tensor.FromArray(new double[] { double.PositiveInfinity, 1, 2, 3 }, 1, 1, 1, 4);
        var wide = Tensor.Interpolate(inf, (2, 8), UpsampleMode.Bilinear).ToDoubleArray();
        Assert.All(wide[..3], v => Assert.True(double.IsNaN(v)));
        Assert.All(wide[8..11], v => Assert.Equal(double.PositiveInfinity, v));
        Assert.Equal([1.25, 1.75, 2.25, 2.75, 3], wide[3..8]);
        Assert.Equal([1.25, 1.75, 2.25, 2.75, 3], wide[11..]);
        Assert.All(Tensor.Interpolate(inf, (1, 8), UpsampleMode.Bilinear).ToDoubleArray()[..3], v => Assert.Equal(double.PositiveInfinity, v));
        // Nearest down from 5 to 2 takes rows ⌊0·2.5⌋ = 0 and ⌊1·2.5⌋ = 2.
        Close([10, 30], Tensor.Interpolate(Tensor.FromArray(new double[] { 10, 20, 30, 40, 50 }, 1, 1, 5, 1), (2, 1)));

        var g = new Generator(8);
        foreach (var corners in new[] { false, true })
        {
            var check = GradCheck.CheckSecondOrder(a => Tensor.Interpolate(a[0], (5, 3), UpsampleMode.Bilinear, corners).Square().Sum(),
                [Tensor.Randn(new Shape(1, 2, 3, 4), g, dtype: DType.Float64)]);
            Assert.True(check.Passed, check.Failure);
        }
        Assert.Throws<ArgumentException>(() => Tensor.Interpolate(x, 2, UpsampleMode.Nearest, alignCorners: true));
    }

    [Fact]
    public void SortAndTopK_AreStable_PutNaNAboveEverything_AndRouteTheGradient()
    {
        var x = Tensor.FromArray(new double[] { 3, 1, double.NaN, 1, 2 });
        var (up, upAt) = x.Sort();
        Assert.Equal([1, 1, 2, 3, double.NaN], up.ToDoubleArray());
        Assert.Equal([1, 3, 4, 0, 2], upAt.ToArray<int>());             // the two 1s keep their order
        var (down, downAt) = x.Sort(descending: true);
        Assert.Equal([double.NaN, 3, 2, 1, 1], down.ToDoubleArray());
        Assert.Equal([2, 0, 4, 1, 3], downAt.ToArray<int>());           // and keep it descending too
        Assert.Equal([2, 0], x.TopK(2).Indices.ToArray<int>());
        Assert.Equal([1, 3], x.TopK(2, largest: false).Indices.ToArray<int>());
        Assert.Equal([1, 3, 4, 0, 2], x.ArgSort().ToArray<int>());
        // Stability past 16 elements, where Array.Sort stops sorting by insertion: 64 values of three kinds.
        var many = Enumerable.Range(0, 64).Select(i => (double)(i * 7 % 3)).ToArray();
        var order = Tensor.FromArray(many).ArgSort(descending: true).ToArray<int>();
        for (int i = 1; i < 64; i++)
            Assert.True(many[order[i - 1]] > many[order[i]] || (many[order[i - 1]] == many[order[i]] && order[i - 1] < order[i]), $"position {i}: {order[i - 1]} then {order[i]}");

        // Along axis 0 of a matrix, and the gradient of the top 2 of each column: 1 where they came from.
        var m = Tensor.FromArray(new double[] { 5, 0, 1, 7, 3, 2 }, 3, 2).RequiresGrad_();
        var (top, at) = m.TopK(2, 0);
        Assert.Equal([5, 7, 3, 2], top.ToDoubleArray());
        Assert.Equal([0, 1, 2, 2], at.ToArray<int>());
        (top * Tensor.FromArray(new double[] { 1, 10, 100, 1000 }, 2, 2)).Sum().Backward();
        Assert.Equal([1, 0, 0, 10, 100, 1000], m.Grad!.ToDoubleArray());
        Assert.Equal([0, 2], m.Detach().TopK(0, 0).Values.Dims);
        Assert.Equal(7.0, Tensor.Scalar(7.0).Sort().Values.Item());
        var ints = Tensor.FromArray(new[] { 30, -1, 20 }).Sort(descending: true);
        Assert.Equal([30, 20, -1], ints.Values.ToArray<int>());
        Assert.Equal([0, 2, 1], ints.Indices.ToArray<int>());
    }

    [Fact]
    public void Pow_TensorExponent_DerivativeInTheExponent()
    {
        // y = aᵇ ⇒ ∂y/∂b = aᵇ ln a = 8 ln 2 for a = 2, b = 3; ∂y/∂a = b aᵇ⁻¹ = 12
        var a = P(2); var b = P(3);
        Tensor.Pow(a, b).Sum().Backward();
        Close([12], a.Grad!);
        Close([8 * Math.Log(2)], b.Grad!);
    }
}
