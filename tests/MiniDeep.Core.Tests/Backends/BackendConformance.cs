using Xunit;
using static MiniDeep.Tests.TestData;

namespace MiniDeep.Tests.BackendTests;

/// <summary>
/// The checks every backend must pass against the reference backend (the executable spec). A new
/// backend subclasses this with its device and inherits every test, as candle's test_device! does.
/// Inputs include strided views (transposed, sliced, expanded) because kernels must honour layouts.
/// </summary>
public abstract partial class BackendConformance
{
    protected abstract Device Device { get; }

    private static void Same(Tensor expected, Tensor actual, double rtol = 0, double atol = 0)
    {
        Assert.Equal(expected.Shape, actual.Shape);
        Assert.Equal(expected.DType, actual.DType);
        if (expected.DType is DType.Int32) { Assert.Equal(expected.ToArray<int>(), actual.ToArray<int>()); return; }
        if (expected.DType is DType.Bool) { Assert.Equal(expected.ToArray<bool>(), actual.ToArray<bool>()); return; }
        var e = expected.ToDoubleArray();
        var a = actual.ToDoubleArray();
        for (int i = 0; i < e.Length; i++)
        {
            if (double.IsNaN(e[i])) { Assert.True(double.IsNaN(a[i]), $"element {i}: expected NaN, got {a[i]}"); continue; }
            double tol = atol + rtol * Math.Abs(e[i]);
            Assert.True(Math.Abs(e[i] - a[i]) <= tol || e[i] == a[i], $"element {i}: reference {e[i]:R}, {actual.Device} {a[i]:R} (tol {tol:G3})");
        }
    }

    // Runs f on the reference device and on the device under test with the same inputs.
    private void Agree(Func<Tensor[], Tensor> f, Tensor[] inputs, double rtol = 0, double atol = 0)
    {
        var reference = f(inputs.Select(x => x.To(Device.Reference)).ToArray());
        var actual = f(inputs.Select(x => x.To(Device)).ToArray());
        Assert.Equal(Device, actual.Device);
        Same(reference, actual.To(Device.Reference), rtol, atol);
    }

    public static TheoryData<DType> FloatTypes => new(DType.Float32, DType.Float64);

    private static Tensor V(int[] shape, int seed, DType t, Domain d = Domain.Any) => Values(shape, seed, d).To(t);

    // Views worth testing: contiguous, transposed, sliced with a step, expanded.
    private static IEnumerable<(string Name, Func<Tensor, Tensor> View)> Views =>
    [
        ("contiguous", x => x),
        ("transposed", x => x.mT),
        ("stepped", x => x.Slice(-1, 0, null, 2)),
        ("expanded", x => x.Narrow(0, 0, 1).Expand(x.Shape.ToArray())),
    ];

    [Theory]
    [MemberData(nameof(FloatTypes))]
    public void Unary_MatchesReference(DType t)
    {
        var x = V([5, 7], 1, t, Domain.Positive) - 1.1;
        foreach (var (name, view) in Views)
        {
            Agree(a => view(a[0]).Exp(), [x], 1e-6);
            Agree(a => view(a[0]).Abs().Log(), [x], 1e-6, 1e-7);
            Agree(a => view(a[0]).Abs().Sqrt(), [x], 1e-6);
            Agree(a => view(a[0]).Relu(), [x]);
            Agree(a => view(a[0]).Sigmoid(), [x], 1e-6);
            Agree(a => view(a[0]).Tanh(), [x], 1e-6, 1e-7);
            Agree(a => view(a[0]).Softplus(), [x], 1e-6);
            Agree(a => view(a[0]).NormCdf(), [x], 1e-6);
            Agree(a => -view(a[0]), [x]);
            Agree(a => view(a[0]).Sign(), [x]);
            _ = name;
        }
    }

    // A 6×6 operand laid out four ways: dense, transposed, every other column of a 6×12, a broadcast row.
    private static IEnumerable<Tensor> SixBySix(int seed, DType t) =>
    [
        V([6, 6], seed, t),
        V([6, 6], seed, t).mT,
        V([6, 12], seed, t).Slice(-1, 0, null, 2),
        V([1, 6], seed, t).Expand(6, 6),
    ];

    [Theory]
    [MemberData(nameof(FloatTypes))]
    public void Binary_WithBroadcastingAndStrides_MatchesReference(DType t)
    {
        var b = V([6], 3, t, Domain.AwayFromZero);
        var c = V([6, 1], 4, t, Domain.Positive);
        foreach (var a in SixBySix(2, t))
        {
            Agree(x => x[0] + x[1], [a, b]);
            Agree(x => x[1] - x[0], [a, b]);
            Agree(x => x[0] * x[1], [a, c]);
            Agree(x => x[0] / x[1], [a, b]);
            Agree(x => Tensor.Pow(x[1], x[0]), [a, c], 1e-6);
            Agree(x => Tensor.Maximum(x[0], x[1]), [a, b]);
            Agree(x => Tensor.Minimum(x[1], x[0]), [a, c]);
            Agree(x => x[0] * 2.5 - 1, [a]);
            foreach (var other in SixBySix(5, t)) Agree(x => x[0] * x[1] + x[0], [a, other]);
        }
    }

    [Theory]
    [MemberData(nameof(FloatTypes))]
    public void CompareAndWhere_MatchReference(DType t)
    {
        var a = V([3, 5], 5, t);
        var b = V([5], 6, t);
        Agree(x => (x[0].mT > x[1].Narrow(0, 0, 3)).To(DType.Float32), [a, b]);
        Agree(x => (x[0] <= x[1]).To(DType.Int32), [a, b]);
        Agree(x => Tensor.Where(x[0] > 0, x[0], x[1]), [a, b]);
        Agree(x => x[0].MaskedFill(x[0] < 0, -7), [a]);
    }

    [Theory]
    [MemberData(nameof(FloatTypes))]
    public void Reductions_OverEveryAxisSet_MatchReference(DType t)
    {
        var x = V([3, 4, 5], 7, t);
        int[]?[] axesSets = [null, [0], [1], [2], [0, 1], [0, 2], [1, 2], [-1, 0]];
        foreach (var axes in axesSets)
            foreach (var (_, view) in Views.Take(3))
            {
                Agree(a => view(a[0]).Sum(axes), [x], 1e-5, 1e-6);
                Agree(a => view(a[0]).Max(axes, keepDim: true), [x]);
                Agree(a => view(a[0]).Min(axes), [x]);
            }
        Agree(a => a[0].ArgMax(1).To(DType.Float32), [x]);
        Agree(a => a[0].mT.ArgMin(0).To(DType.Float32), [x]);
        var big = V([70_000], 8, t);
        Agree(a => a[0].Sum(), [big], 1e-5);
    }

    [Theory]
    [MemberData(nameof(FloatTypes))]
    public void MatMul_AllTransposeForms_AndBatchBroadcast_MatchReference(DType t)
    {
        var a = V([2, 7, 9], 9, t);
        var b = V([9, 5], 10, t);
        Agree(x => Tensor.MatMul(x[0], x[1]), [a, b], 1e-5, 1e-5);
        Agree(x => Tensor.MatMul(x[0].mT.mT, x[1].T.Contiguous().T), [a, b], 1e-5, 1e-5);           // B read transposed
        Agree(x => Tensor.MatMul(x[0].mT, x[0]), [a], 1e-5, 1e-5);                                  // AᵀA
        Agree(x => Tensor.MatMul(x[0].T, x[0]), [b], 1e-5, 1e-5);
        Agree(x => Tensor.MatMul(x[0], x[0].mT), [a], 1e-5, 1e-5);                                  // AAᵀ
        Agree(x => Tensor.MatMul(x[0].Narrow(2, 1, 3, 2), x[1].Narrow(0, 0, 3, 3)), [a, b], 1e-5, 1e-5); // stepped views
        Agree(x => Tensor.MatMul(x[0].Narrow(0, 0, 1), x[0].T), [b], 1e-5, 1e-5);
    }

    [Theory]
    [MemberData(nameof(FloatTypes))]
    public void WindowsAndIndexing_MatchReference(DType t)
    {
        var x = V([2, 3, 6, 5], 11, t);
        var g = new WindowGeometry(3, 6, 5, 3, 2, 2, 1, 1, 0, 1, 2);
        Agree(a => Tensor.Unfold(a[0], g), [x]);
        Agree(a => Tensor.Fold(Tensor.Unfold(a[0], g), g), [x], 1e-6, 1e-6);
        var w = V([4, 3, 3, 3], 12, t);
        Agree(a => Tensor.Conv2d(a[0], a[1], padding: (1, 1)), [x, w], 1e-5, 1e-5);
        Agree(a => Tensor.MaxPool2d(a[0], (2, 2)), [x]);
        var idx = Tensor.Randint(0, 5, new Shape(2, 3, 6, 4), new Generator(3));
        Agree(a => a[0].Gather(3, a[1]), [x, idx]);
        Agree(a => Tensor.ScatterAdd([2, 3, 6, 5], 3, a[1], a[0].Narrow(3, 0, 4)), [x, idx], 1e-6, 1e-6);
        Agree(a => a[0].IndexSelect(1, Tensor.FromArray(new[] { 2, 0, 2 }).To(a[0].Device)), [x]);
    }

    [Theory]
    [MemberData(nameof(FloatTypes))]
    public void CopiesAndCasts_MatchReference(DType t)
    {
        var x = V([4, 3, 2], 13, t) * 3;
        Agree(a => a[0].Permute(2, 0, 1).Contiguous(), [x]);
        Agree(a => a[0].To(DType.Int32), [x]);
        Agree(a => a[0].To(DType.Bool), [x]);
        Agree(a => a[0].To(t == DType.Float32 ? DType.Float64 : DType.Float32), [x], 1e-7);
        Agree(a => Tensor.Concat([a[0], a[0].Narrow(0, 1, 2)], 0), [x]);
        Agree(a => a[0].Pad([1, 2], -1), [x]);
    }

    [Theory]
    [MemberData(nameof(FloatTypes))]
    public void Random_GivesTheSameNumbersOnEveryBackend(DType t)
    {
        foreach (var dev in new[] { Device.Reference, Device })
            Assert.Equal(Tensor.Randn(new Shape(1000), new Generator(5), dtype: t, device: Device.Reference).ToDoubleArray(),
                         Tensor.Randn(new Shape(1000), new Generator(5), dtype: t, device: dev).ToDoubleArray());
        Assert.Equal(Tensor.Rand(new Shape(999), new Generator(6), dtype: t, device: Device.Reference).ToDoubleArray(),
                     Tensor.Rand(new Shape(999), new Generator(6), dtype: t, device: Device).ToDoubleArray());
        Assert.Equal(Tensor.Randint(0, 10, new Shape(999), new Generator(7), Device.Reference).ToArray<int>(),
                     Tensor.Randint(0, 10, new Shape(999), new Generator(7), Device).ToArray<int>());
    }

    [Theory]
    [MemberData(nameof(FloatTypes))]
    public void LargeRandomFills_SplitIntoChunks_GiveTheReferenceNumbers_OnOneOrTwoThreads(DType t)
    {
        // Past the CPU backend's 16K-element chunk, so the fill runs in parallel pieces.
        const int n = 100_003;
        int saved = Parallelism.MaxThreads;
        try
        {
            foreach (int threads in new[] { 1, 2 })
            {
                Parallelism.MaxThreads = threads;
                Assert.Equal(Tensor.Rand(new Shape(n), new Generator(8), -2, 3, dtype: t, device: Device.Reference).ToDoubleArray(),
                             Tensor.Rand(new Shape(n), new Generator(8), -2, 3, dtype: t, device: Device).ToDoubleArray());
                Assert.Equal(Tensor.Bernoulli(new Shape(n), 0.3, new Generator(9), t, Device.Reference).ToDoubleArray(),
                             Tensor.Bernoulli(new Shape(n), 0.3, new Generator(9), t, Device).ToDoubleArray());
                Assert.Equal(Tensor.Randn(new Shape(n), new Generator(10), dtype: t, device: Device.Reference).ToDoubleArray(),
                             Tensor.Randn(new Shape(n), new Generator(10), dtype: t, device: Device).ToDoubleArray());
            }
        }
        finally { Parallelism.MaxThreads = saved; }
    }

    [Theory]
    [MemberData(nameof(FloatTypes))]
    public void CrossEntropy_MatchesReference(DType t)
    {
        var logits = V([9, 10], 14, t) * 30;
        var targets = Tensor.Randint(0, 10, new Shape(9), new Generator(8));
        Agree(a => Losses.CrossEntropy(a[0], a[1], Reduction.None), [logits, targets], 1e-5, 1e-6);
        Agree(a => Losses.CrossEntropy(a[0].mT.Contiguous().mT, a[1], Reduction.None), [logits, targets], 1e-5, 1e-6);
        // The gradient: one fused kernel on the device; through an expanded upstream gradient (the mean's).
        Agree(a => Autograd.Grad(Losses.CrossEntropy(a[0], a[1]), a[0]), [logits.RequiresGrad_(), targets], 1e-5, 1e-7);
        var weights = V([9], 15, t);
        Agree(a => Autograd.Grad((Losses.CrossEntropy(a[0], a[1], Reduction.None) * a[2]).Sum(), a[0]), [logits, targets, weights], 1e-5, 1e-6);
        // Recorded (createGraph), the gradient is built from tensor ops and must equal the kernel's.
        // One moved copy of each input (on another device, To makes a new tensor every call).
        var (onLogits, onTargets) = (logits.To(Device).Detach().RequiresGrad_(), targets.To(Device));
        var fused = Autograd.Grad(Losses.CrossEntropy(onLogits, onTargets), onLogits);
        var composite = Autograd.Grad(Losses.CrossEntropy(onLogits, onTargets), onLogits, createGraph: true);
        Same(fused.To(Device.Reference), composite.Detach().To(Device.Reference), 1e-5, 1e-7);
        // Class weights and ignored rows are tensor ops around the fused kernel (a where on int targets,
        // a gather of the weights): the loss and its gradient on every device.
        var withIgnored = Tensor.FromArray(targets.ToArray<int>().Select((v, i) => i % 3 == 1 ? -100 : v).ToArray());
        var classWeights = V([10], 16, t).Abs() + 0.1;
        Agree(a => Losses.CrossEntropy(a[0], a[1], labelSmoothing: 0.1, weight: a[2], ignoreIndex: -100), [logits, withIgnored, classWeights], 1e-5, 1e-6);
        Agree(a => Autograd.Grad(Losses.CrossEntropy(a[0], a[1], labelSmoothing: 0.1, weight: a[2], ignoreIndex: -100), a[0]),
            [logits.Detach().RequiresGrad_(), withIgnored, classWeights], 1e-5, 1e-7);
    }
}

public abstract partial class BackendConformance
{
    // Values and first derivatives of f on the reference device and on the device under test: the
    // loss Σ f(inputs)·r reaches every output element with a different weight.
    private void AgreeWithGradients(Func<Tensor[], Tensor> f, Tensor[] inputs, double rtol, double atol)
    {
        (Tensor Y, Tensor?[] G) On(Device d)
        {
            var xs = inputs.Select(x => x.To(d).Detach().RequiresGrad_()).ToArray();
            var y = f(xs);
            var r = Values(y.Shape.ToArray(), 99, Domain.Any).To(y.DType).To(d);
            return (y.Detach(), Autograd.Grad([(y * r).Sum()], xs));
        }
        var (yr, gr) = On(Device.Reference);
        var (ya, ga) = On(Device);
        Same(yr, ya.To(Device.Reference), rtol, atol);
        for (int i = 0; i < gr.Length; i++) Same(gr[i]!, ga[i]!.To(Device.Reference), rtol, atol);
    }

    [Theory]
    [MemberData(nameof(FloatTypes))]
    public void FusedLinear_ValuesAndGradients_MatchReference(DType t)
    {
        var x = V([5, 7], 31, t); var w = V([9, 7], 32, t); var b = V([9], 33, t);
        AgreeWithGradients(a => Tensor.Linear(a[0], a[1], a[2]), [x, w, b], 1e-5, 1e-5);
        AgreeWithGradients(a => Tensor.Linear(a[0], a[1]), [x, w], 1e-5, 1e-5);
        AgreeWithGradients(a => Tensor.Linear(a[0].mT.Contiguous().mT, a[1].mT.Contiguous().mT, a[2]), [x, w, b], 1e-5, 1e-5);
        var big = V([70, 300], 35, t); var wb = V([40, 300], 36, t);           // above the GEMM's threading threshold
        AgreeWithGradients(a => Tensor.Linear(a[0], a[1], a[2]), [big, wb, V([40], 37, t)], 1e-4, 1e-4);
    }

    [Theory]
    [MemberData(nameof(FloatTypes))]
    public void AdaptiveAvgPool2d_ValuesAndGradients_MatchReference(DType t)
    {
        // Window indices and masks made on the host and moved to the device (7 → 3 rows: unequal windows),
        // evenly dividing columns (a reshape and a mean), and global pooling.
        var x = V([2, 3, 7, 4], 41, t);
        AgreeWithGradients(a => Tensor.AdaptiveAvgPool2d(a[0], (3, 2)), [x], 1e-5, 1e-6);
        AgreeWithGradients(a => Tensor.AdaptiveAvgPool2d(a[0], (5, 3)), [x], 1e-5, 1e-6);
        AgreeWithGradients(a => Tensor.AdaptiveAvgPool2d(a[0], (1, 1)), [x], 1e-5, 1e-6);
    }

    [Theory]
    [MemberData(nameof(FloatTypes))]
    public void ConvTranspose2d_ValuesAndGradients_MatchReference(DType t)
    {
        // The dense path (the convolution's input-gradient kernel), the grouped path (matmul and fold),
        // and an output padding at or above the stride (allowed below the dilation), which pads x.
        var x = V([2, 4, 5, 4], 43, t); var w = V([4, 3, 3, 2], 44, t); var b = V([3], 45, t);
        AgreeWithGradients(a => Tensor.ConvTranspose2d(a[0], a[1], a[2], (2, 1), (1, 0), (1, 0)), [x, w, b], 1e-5, 1e-5);
        AgreeWithGradients(a => Tensor.ConvTranspose2d(a[0], a[1], null, (1, 1), (0, 0), (1, 1), (2, 2)), [x, w], 1e-5, 1e-5);
        var wg = V([4, 1, 2, 3], 46, t);
        AgreeWithGradients(a => Tensor.ConvTranspose2d(a[0], a[1], null, (2, 2), groups: 2), [x, wg], 1e-5, 1e-5);
    }

    [Theory]
    [MemberData(nameof(FloatTypes))]
    public void SortAndTopK_ValuesIndicesAndGradients_MatchReference(DType t)
    {
        // The order is found on the host; the values are a gather on the device, their gradient a scatter-add.
        var x = V([4, 5, 3], 48, t);
        AgreeWithGradients(a => a[0].Sort(1, descending: true).Values, [x], 0, 0);
        AgreeWithGradients(a => a[0].TopK(2, -1).Values, [x], 0, 0);
        Agree(a => a[0].ArgSort(0), [x]);
        Agree(a => a[0].mT.TopK(3, 1, largest: false).Indices, [x]);
    }

    [Theory]
    [MemberData(nameof(FloatTypes))]
    public void Interpolate_ValuesAndGradients_MatchReference(DType t)
    {
        var x = V([2, 3, 4, 5], 47, t);
        AgreeWithGradients(a => Tensor.Interpolate(a[0], 2), [x], 1e-6, 1e-6);
        AgreeWithGradients(a => Tensor.Interpolate(a[0], (7, 3), UpsampleMode.Bilinear), [x], 1e-5, 1e-6);
        AgreeWithGradients(a => Tensor.Interpolate(a[0], (6, 9), UpsampleMode.Bilinear, alignCorners: true), [x], 1e-5, 1e-6);
    }

    // (batch, channels, h, w, out, kh, kw, stride, padding, dilation, bias): one image (parallel GEMMs),
    // strided and dilated, pointwise (the image is its own columns), and more images than the weight
    // gradient's eight fixed groups.
    public static TheoryData<DType, int> ConvCases()
    {
        var data = new TheoryData<DType, int>();
        foreach (var t in new[] { DType.Float32, DType.Float64 })
            for (int c = 0; c < ConvGeometries.Length; c++) data.Add(t, c);
        return data;
    }

    private static readonly (int N, int C, int H, int W, int O, int Kh, int Kw, (int, int) S, (int, int) P, (int, int) D, bool Bias)[] ConvGeometries =
    [
        (1, 3, 7, 6, 4, 3, 3, (1, 1), (1, 1), (1, 1), true),
        (3, 2, 9, 8, 5, 3, 2, (2, 1), (0, 1), (1, 2), false),
        (4, 6, 5, 5, 3, 1, 1, (1, 1), (0, 0), (1, 1), true),
        (11, 2, 6, 7, 3, 2, 2, (2, 2), (1, 1), (1, 1), true),
        (7, 2, 13, 13, 4, 3, 3, (1, 1), (1, 1), (1, 1), true),   // images grouped 3 + 3 + 1 per GEMM
        (3, 1, 28, 28, 5, 3, 3, (1, 1), (1, 1), (1, 1), true),   // one input channel: the CPU's direct kernel
        (2, 1, 9, 21, 3, 2, 5, (1, 1), (1, 2), (1, 1), false),
    ];

    [Theory]
    [MemberData(nameof(ConvCases))]
    public void FusedConv2d_ValuesAndGradients_MatchReference(DType t, int c)
    {
        var g = ConvGeometries[c];
        var x = V([g.N, g.C, g.H, g.W], 41 + c, t);
        var w = V([g.O, g.C, g.Kh, g.Kw], 51 + c, t);
        var b = V([g.O], 61 + c, t);
        double tol = t == DType.Float32 ? 1e-4 : 1e-10;
        AgreeWithGradients(a => Tensor.Conv2d(a[0], a[1], g.Bias ? a[2] : null, g.S, g.P, g.D), g.Bias ? [x, w, b] : [x, w], tol, tol);
        // A strided view of the input (the kernels copy it to contiguous first).
        var xt = V([g.N, g.C, g.W, g.H], 71 + c, t);
        AgreeWithGradients(a => Tensor.Conv2d(a[0].mT, a[1], a[2], g.S, g.P, g.D), [xt, w, b], tol, tol);
        // With the ReLU fused into the convolution.
        AgreeWithGradients(a => Tensor.Conv2dRelu(a[0], a[1], g.Bias ? a[2] : null, g.S, g.P, g.D), g.Bias ? [x, w, b] : [x, w], tol, tol);
    }

    // The fused Linear/Conv2d + ReLU must give exactly the unfused values and gradients (same kernels,
    // the activation applied to the same floats; the mask read from the output is the mask of the input).
    [Theory]
    [MemberData(nameof(FloatTypes))]
    public void FusedRelu_EqualsTheUnfusedOps_BitForBit(DType t)
    {
        var x = V([5, 3, 9, 9], 91, t);
        var w = V([4, 3, 3, 3], 92, t);
        var b = V([4], 93, t);
        var xl = V([6, 20], 94, t);
        var wl = V([7, 20], 95, t);
        var bl = V([7], 96, t);
        void Same2(Func<Tensor[], Tensor> fused, Func<Tensor[], Tensor> plain, Tensor[] inputs)
        {
            (double[] Y, double[][] G) Run(Func<Tensor[], Tensor> f)
            {
                var leaves = inputs.Select(v => v.To(Device).Detach().RequiresGrad_()).ToArray();
                var y = f(leaves);
                (y * y).Sum().Backward();
                return (y.ToDoubleArray(), leaves.Select(l => l.Grad!.ToDoubleArray()).ToArray());
            }
            var (fy, fg) = Run(fused);
            var (py, pg) = Run(plain);
            Assert.Equal(py, fy);
            for (int i = 0; i < pg.Length; i++) Assert.Equal(pg[i], fg[i]);
        }
        Same2(a => Tensor.Conv2dRelu(a[0], a[1], a[2], padding: (1, 1)), a => Tensor.Conv2d(a[0], a[1], a[2], padding: (1, 1)).Relu(), [x, w, b]);
        Same2(a => Tensor.LinearRelu(a[0], a[1], a[2]), a => Tensor.Linear(a[0], a[1], a[2]).Relu(), [xl, wl, bl]);
    }

    [Theory]
    [MemberData(nameof(FloatTypes))]
    public void InPlaceUpdates_AndFusedOptimizerSteps_MatchReference(DType t)
    {
        var p = V([300, 70], 81, t);
        var q = V([300, 70], 82, t);
        var row = V([70], 83, t);
        Agree(a => { var y = a[0].Clone(); using (Autograd.NoGrad()) y.AddInPlace(a[1], -0.3).MulInPlace(1.7).AddInPlace(a[2]); return y; }, [p, q, row], 1e-6, 1e-6);
        Agree(a => { var y = a[0].Clone(); using (Autograd.NoGrad()) y.AddInPlace(y.Detach(), 0.5); return y; }, [p], 1e-6, 1e-6);

        foreach (var (decoupled, wd) in new[] { (false, 0.0), (false, 0.01), (true, 0.01) })
            Agree(a =>
            {
                var w = a[0].Clone().RequiresGrad_();
                Optim.Optimizer opt = decoupled ? new Optim.AdamW([w], 1e-2, weightDecay: wd) : new Optim.Adam([w], 1e-2, weightDecay: wd);
                for (int step = 0; step < 3; step++)
                {
                    opt.ZeroGrad();
                    (w * a[1] * (step + 1)).Sum().Backward();
                    opt.Step();
                }
                return w.Detach();
            }, [p, q], 1e-5, 1e-6);

        foreach (var (momentum, nesterov, wd) in new[] { (0.9, false, 0.0), (0.9, true, 0.01), (0.5, false, 0.01) })
            Agree(a =>
            {
                var w = a[0].Clone().RequiresGrad_();
                var opt = new Optim.Sgd([w], 0.05, momentum, nesterov, wd);
                for (int step = 0; step < 4; step++)
                {
                    opt.ZeroGrad();
                    (w * a[1] * (step + 1)).Sum().Backward();
                    opt.Step();
                }
                return w.Detach();
            }, [p, q], 1e-5, 1e-6);
    }
}
