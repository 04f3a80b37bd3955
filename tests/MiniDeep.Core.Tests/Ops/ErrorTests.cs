using Xunit;

namespace MiniDeep.Tests.Ops;

/// <summary>Every op with a shape precondition refuses bad input with a message naming the op and the shapes.</summary>
public class ErrorTests
{
    private static void Refuses(Action act, string op, params string[] shapes)
    {
        var e = Assert.Throws<ShapeMismatchException>(act);
        Assert.Contains(op, e.Message);
        foreach (var s in shapes) Assert.Contains(s, e.Message);
    }

    private static Tensor Z(params int[] s) => Tensor.Zeros(s);

    public static TheoryData<string, Action, string[]> Cases => new()
    {
        { "add", () => _ = Z(2, 3) + Z(4), ["(2, 3)", "(4,)"] },
        { "mul", () => _ = Z(2, 3) * Z(3, 2), ["(2, 3)", "(3, 2)"] },
        { "where", () => Tensor.Where(Z(3) > 0, Z(2), Z(2)), ["(3,)", "(2,)"] },
        { "matmul", () => Tensor.MatMul(Z(2, 3), Z(4, 5)), ["(2, 3)", "(4, 5)"] },
        { "matmul", () => Tensor.MatMul(Z(2, 2, 3), Z(3, 3, 1)), ["(2, 2, 3)", "(3, 3, 1)"] },
        { "linear", () => Tensor.Linear(Z(8, 5), Z(4, 6)), ["(8, 5)", "(4, 6)"] },
        { "conv2d", () => Tensor.Conv2d(Z(1, 3, 8, 8), Z(4, 2, 3, 3)), ["(1, 3, 8, 8)", "(4, 2, 3, 3)"] },
        { "conv2d", () => Tensor.Conv2d(Z(1, 1, 2, 2), Z(1, 1, 3, 3)), ["(1, 1, 2, 2)"] },
        { "max_pool2d", () => Tensor.MaxPool2d(Z(3, 4, 4), (2, 2)), ["(3, 4, 4)"] },
        { "Reshape", () => Z(2, 3).Reshape(4, 2), ["(2, 3)", "(4, 2)"] },
        { "Expand", () => Z(2, 3).Expand(4, 3), ["(2, 3)", "(4, 3)"] },
        { "Concat", () => Tensor.Concat([Z(2, 3), Z(2, 4)], 0), ["(2, 3)", "(2, 4)"] },
        { "Stack", () => Tensor.Stack([Z(2), Z(3)]), ["(2,)", "(3,)"] },
        { "Permute", () => Z(2, 3).Permute(0), ["(2, 3)"] },
        { "gather", () => Z(2, 3).Gather(1, Tensor.Zeros(new Shape(2), DType.Int32)), ["(2,)", "(2, 3)"] },
        { "scatter_add", () => Tensor.ScatterAdd([3], 0, Tensor.Zeros(new Shape(2), DType.Int32), Z(3)), ["(2,)", "(3,)"] },
        { "mse", () => Losses.Mse(Z(4, 1), Z(4)), ["(4, 1)", "(4,)"] },
        { "bce_with_logits", () => Losses.BceWithLogits(Z(4, 1), Z(4)), ["(4, 1)", "(4,)"] },
        { "bce_with_logits", () => Losses.BceWithLogits(Z(4, 3), Z(4, 3), posWeight: Z(4)), ["pos_weight (4,)", "(3,)", "(4, 3)"] },
        { "l1", () => Losses.L1(Z(4, 1), Z(4)), ["(4, 1)", "(4,)"] },
        { "smooth_l1", () => Losses.SmoothL1(Z(4), Z(4, 1)), ["(4,)", "(4, 1)"] },
        { "huber", () => Losses.Huber(Z(3, 2), Z(2, 3)), ["(3, 2)", "(2, 3)"] },
        { "kl_div", () => Losses.KlDiv(Z(4, 3), Z(4, 1)), ["(4, 3)", "(4, 1)"] },
        { "cross_entropy", () => Losses.CrossEntropy(Z(4, 3), Tensor.Zeros(new Shape(4, 1), DType.Int32)), ["(4, 1)", "(4, 3)"] },
        { "cross_entropy", () => Losses.CrossEntropy(Z(4), Tensor.Zeros(new Shape(4), DType.Int32)), ["(4,)"] },
        { "cross_entropy", () => Losses.CrossEntropy(Z(4, 3), Z(4)), ["(4,)", "int32", "(4, 3)"] },
        { "nll", () => Losses.Nll(Z(4, 3), Tensor.Zeros(new Shape(3), DType.Int32)), ["(3,)", "(4, 3)"] },
        { "cross_entropy", () => Losses.CrossEntropy(Z(4, 3), Tensor.Zeros(new Shape(4), DType.Int32), weight: Z(4)), ["class weight (4,)", "(3,)", "(4, 3)"] },
        { "soft_cross_entropy", () => Losses.SoftCrossEntropy(Z(4, 3), Z(4, 3), weight: Z(3, 1)), ["class weight (3, 1)", "(4, 3)"] },
        { "nll", () => Losses.Nll(Z(4, 3), Tensor.Zeros(new Shape(4), DType.Int32), weight: Z(2)), ["class weight (2,)", "(4, 3)"] },
        { "distillation_kl", () => Losses.DistillationKl(Z(2, 3), Z(2, 4), 2), ["(2, 3)", "(2, 4)"] },
        { "Split", () => Z(5).Split([2, 2]), ["(5,)"] },
        { "FromArray", () => Tensor.FromArray(new float[5], 2, 3), ["(2, 3)"] },
        { "sub", () => _ = Z(2, 3) - Z(2), ["(2, 3)", "(2,)"] },
        { "div", () => _ = Z(5) / Z(4), ["(5,)", "(4,)"] },
        { "pow", () => Tensor.Pow(Z(5), Z(4)), ["(5,)", "(4,)"] },
        { "maximum", () => Tensor.Maximum(Z(5), Z(4)), ["(5,)", "(4,)"] },
        { "eq", () => _ = Z(5) == Z(4), ["(5,)", "(4,)"] },
        { "linear", () => Tensor.Linear(Z(8, 5), Z(4, 5), Z(3)), ["(3,)", "4"] },
        { "conv2d", () => Tensor.Conv2d(Z(1, 4, 8, 8), Z(4, 2, 3, 3), groups: 3), ["(1, 4, 8, 8)", "(4, 2, 3, 3)"] },
        { "conv2d", () => Tensor.Conv2d(Z(1, 2, 8, 8), Z(4, 2, 3, 3), Z(5)), ["(5,)", "4"] },
        { "conv2d", () => Tensor.Conv2d(Z(1, 1, 5, 5), Z(1, 1, 0, 3)), ["(1, 1, 0, 3)", "empty"] },
        { "unfold", () => Tensor.Unfold(Z(1, 2, 5, 5), new WindowGeometry(3, 5, 5, 2, 2, 1, 1, 0, 0, 1, 1)), ["(1, 2, 5, 5)"] },
        { "fold", () => Tensor.Fold(Z(1, 7, 16), new WindowGeometry(3, 5, 5, 2, 2, 1, 1, 0, 0, 1, 1)), ["(1, 7, 16)"] },
        { "avg_pool2d", () => Tensor.AvgPool2d(Z(1, 1, 2, 2), (3, 3)), ["(1, 1, 2, 2)"] },
        { "adaptive_avg_pool2d", () => Tensor.AdaptiveAvgPool2d(Z(2, 5, 5), (2, 2)), ["(2, 5, 5)", "(N, C, H, W)"] },
        { "adaptive_avg_pool2d", () => Tensor.AdaptiveAvgPool2d(Z(1, 1, 0, 5), (2, 2)), ["(1, 1, 0, 5)", "no pixels"] },
        { "conv_transpose2d", () => Tensor.ConvTranspose2d(Z(1, 4, 5, 5), Z(3, 2, 3, 3)), ["(3, 2, 3, 3)", "(1, 4, 5, 5)"] },
        { "conv_transpose2d", () => Tensor.ConvTranspose2d(Z(1, 4, 5, 5), Z(4, 2, 3, 3), groups: 3), ["groups=3", "(1, 4, 5, 5)"] },
        { "conv_transpose2d", () => Tensor.ConvTranspose2d(Z(1, 4, 5, 5), Z(4, 2, 3, 3), Z(3)), ["(3,)", "2 output channels"] },
        { "conv_transpose2d", () => Tensor.ConvTranspose2d(Z(1, 1, 1, 1), Z(1, 1, 1, 1), padding: (1, 1)), ["(1, 1, 1, 1)", "no output"] },
        { "conv_transpose2d", () => Tensor.ConvTranspose2d(Z(4, 5, 5), Z(4, 2, 3, 3)), ["(4, 5, 5)"] },
        { "group_norm", () => Tensor.GroupNorm(Z(2, 6, 3), 4), ["4 groups", "6 channels", "(2, 6, 3)"] },
        { "group_norm", () => Tensor.GroupNorm(Z(2, 6, 3), 3, Z(3)), ["weight (3,)", "(6)", "(2, 6, 3)"] },
        { "group_norm", () => Tensor.GroupNorm(Z(6), 3), ["(6,)", "(N, C, ...)"] },
        { "GroupNorm(2, 4)", () => new Nn.GroupNorm(2, 4).Forward(Z(3, 6, 2)), ["(3, 6, 2)", "(N, 4, ...)"] },
        { "conv1d", () => Tensor.Conv1d(Z(2, 3, 9), Z(4, 2, 3)), ["(4, 2, 3)", "(2, 3, 9)"] },
        { "conv1d", () => Tensor.Conv1d(Z(2, 3, 2), Z(4, 3, 3)), ["kernel 3", "(2, 3, 2)"] },
        { "conv1d", () => Tensor.Conv1d(Z(2, 3, 9, 1), Z(4, 3, 3)), ["(2, 3, 9, 1)", "(N, C, L)"] },
        { "conv_transpose1d", () => Tensor.ConvTranspose1d(Z(2, 3, 9), Z(4, 3, 3)), ["(4, 3, 3)", "(2, 3, 9)"] },
        { "max_pool1d", () => Tensor.MaxPool1d(Z(2, 3), 2), ["(2, 3)", "(N, C, L)"] },
        { "avg_pool1d", () => Tensor.AvgPool1d(Z(1, 1, 2), 3), ["kernel 3", "(1, 1, 2)"] },
        { "Conv1d(3, 4", () => new Nn.Conv1d(3, 4, 3).Forward(Z(2, 5, 9)), ["(2, 5, 9)", "(N, 3, L)"] },
        { "BatchNorm1d(4)", () => new Nn.BatchNorm1d(4).Forward(Z(2, 4, 3, 3)), ["(2, 4, 3, 3)", "(N, C) or (N, C, L)", "C = 4"] },
        { "BatchNorm2d(4)", () => new Nn.BatchNorm2d(4).Forward(Z(2, 3, 3, 3)), ["(2, 3, 3, 3)", "(N, C, H, W)", "C = 4"] },
        { "interpolate", () => Tensor.Interpolate(Z(4, 5, 5), (8, 8)), ["(4, 5, 5)", "(N, C, H, W)"] },
        { "interpolate", () => Tensor.Interpolate(Z(1, 1, 0, 5), (8, 8)), ["(1, 1, 0, 5)", "no pixels"] },
        { "index_select", () => Z(3, 3).IndexSelect(0, Tensor.Zeros(new Shape(2, 1), DType.Int32)), ["(2, 1)"] },
        { "embedding", () => Tensor.Embedding(Tensor.Zeros(new Shape(2), DType.Int32), Z(5)), ["(5,)"] },
        { "soft_cross_entropy", () => Losses.SoftCrossEntropy(Z(4, 3), Z(4, 2)), ["(4, 3)", "(4, 2)"] },
        { "SumTo", () => Z(2, 3).SumTo([4, 3]), ["(2, 3)", "(4, 3)"] },
        { "CopyFrom", () => Z(2, 3).CopyFrom(Z(4)), ["(4,)", "(2, 3)"] },
        { "Backward", () => (Tensor.Ones(3).RequiresGrad_() * 2).Backward(Z(2)), ["(2,)", "(3,)"] },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void ShapeErrors_NameTheOpAndTheShapes(string op, Action act, string[] shapes) => Refuses(act, op, shapes);

    [Fact]
    public void Conv2dLayer_RefusesAnEmptyKernelOrStride_WhenBuilt()
    {
        // An empty kernel made the initialization bound 1/√0 and every weight NaN, with no error.
        Assert.Contains("kernel (0, 3)", Assert.Throws<ArgumentOutOfRangeException>(() => new Nn.Conv2d(1, 1, (0, 3))).Message);
        Assert.Contains("Conv2d: stride (0, 1)", Assert.Throws<ArgumentException>(() => new Nn.Conv2d(1, 1, (3, 3), stride: (0, 1))).Message);
        Assert.Throws<ArgumentException>(() => new Nn.Conv2d(1, 1, (3, 3), padding: (-1, 0)));
        Assert.Throws<ArgumentException>(() => new Nn.Conv2d(0, 1, (3, 3)));
    }

    [Fact]
    public void SortAndTopK_RefuseAKOutOfRangeAndABoolTensor()
    {
        Assert.Contains("topk: k = 4 for axis 1 of size 3 (shape (2, 3))", Assert.Throws<ArgumentOutOfRangeException>(() => Z(2, 3).TopK(4)).Message);
        Assert.Contains("topk: k = -1", Assert.Throws<ArgumentOutOfRangeException>(() => Z(2, 3).TopK(-1)).Message);
        Assert.Contains("sort: axis 2", Assert.Throws<ArgumentOutOfRangeException>(() => Z(2, 3).Sort(2)).Message);
        Assert.Contains("sort: needs a numeric tensor, got bool", Assert.Throws<InvalidOperationException>(() => (Z(2) > 0).Sort()).Message);
        // Inside a captured step the order would be frozen at the capture's data: refused.
        var w = Tensor.Ones(3).RequiresGrad_();
        var e = Assert.Throws<NotSupportedException>(() => StepCapture.Capture([w], () => { var l = (w * w).TopK(2).Values.Sum(); l.Backward(); return l; }));
        Assert.Contains("topk: the order is found on the host", e.Message);
    }

    [Fact]
    public void TransposedConvolutionAndUpsampling_RefuseBadArguments_NamingTheOpAndTheValues()
    {
        // PyTorch's rule: output padding below the stride or the dilation, or the output size is ambiguous.
        var x = Tensor.Zeros(1, 1, 3, 3);
        var w = Tensor.Zeros(1, 1, 3, 3);
        Assert.Contains("conv_transpose2d: output padding 2 along the height must be non-negative and smaller than the stride 2 or the dilation 1", Assert.Throws<ArgumentException>(() => Tensor.ConvTranspose2d(x, w, stride: (2, 2), outputPadding: (2, 0))).Message);
        Assert.Contains("conv_transpose2d: stride (0, 1)", Assert.Throws<ArgumentException>(() => Tensor.ConvTranspose2d(x, w, stride: (0, 1))).Message);
        Assert.Contains("ConvTranspose2d: output padding 1 along the height", Assert.Throws<ArgumentException>(() => new Nn.ConvTranspose2d(1, 1, 3, stride: 1, outputPadding: 1)).Message);
        Assert.Contains("ConvTranspose1d: output padding 3 must be", Assert.Throws<ArgumentException>(() => new Nn.ConvTranspose1d(1, 1, 3, stride: 2, outputPadding: 3)).Message);
        // The 1-D op checks in its own terms: these named conv_transpose2d and its (N, C, 1, L) shapes.
        var row = Tensor.Zeros(1, 4, 5);
        Assert.Contains("conv_transpose1d: output padding 2 must be non-negative and smaller than the stride 2 or the dilation 1",
            Assert.Throws<ArgumentException>(() => Tensor.ConvTranspose1d(row, Tensor.Zeros(4, 2, 3), stride: 2, outputPadding: 2)).Message);
        Assert.Contains("conv_transpose1d: groups=3 must divide the input channels 4 (input (1, 4, 5), weight (4, 2, 3))",
            Assert.Throws<ShapeMismatchException>(() => Tensor.ConvTranspose1d(row, Tensor.Zeros(4, 2, 3), groups: 3)).Message);
        Assert.Contains("conv_transpose1d: padding 1 leaves no output for input (1, 4, 1) and kernel 1 (length -1)",
            Assert.Throws<ShapeMismatchException>(() => Tensor.ConvTranspose1d(Tensor.Zeros(1, 4, 1), Tensor.Zeros(4, 2, 1), padding: 1)).Message);
        Assert.Contains("kernel (0, 3)", Assert.Throws<ArgumentOutOfRangeException>(() => new Nn.ConvTranspose2d(1, 1, (0, 3))).Message);
        Assert.Contains("ConvTranspose2d: groups=2", Assert.Throws<ArgumentException>(() => new Nn.ConvTranspose2d(3, 4, (3, 3), groups: 2)).Message);
        Assert.Contains("interpolate: output size (0, 2)", Assert.Throws<ArgumentException>(() => Tensor.Interpolate(x, (0, 2))).Message);
        Assert.Contains("interpolate: scale 0", Assert.Throws<ArgumentOutOfRangeException>(() => Tensor.Interpolate(x, 0)).Message);
        Assert.Contains("align_corners", Assert.Throws<ArgumentException>(() => Tensor.Interpolate(x, 2, alignCorners: true)).Message);
        Assert.Contains("bilinear resizing needs a floating-point input, got int32",
            Assert.Throws<InvalidOperationException>(() => Tensor.Interpolate(Tensor.Zeros(new Shape(1, 1, 2, 2), DType.Int32), 2, UpsampleMode.Bilinear)).Message);
        Assert.Contains("Upsample: scale 0", Assert.Throws<ArgumentOutOfRangeException>(() => new Nn.Upsample(0)).Message);
        Assert.Contains("Upsample(scale=2, mode=nearest): input must be (N, C, H, W), got (3, 3)", Assert.Throws<ShapeMismatchException>(() => new Nn.Upsample(2).Forward(Tensor.Zeros(3, 3))).Message);
    }

    [Fact]
    public void ViewsAndSplits_RefuseAZeroStepOrCountOrAnIndexOutOfRange_NamingTheOp()
    {
        // These divided by zero, or named Narrow, which the caller never called.
        Assert.Contains("Slice: step", Assert.Throws<ArgumentException>(() => Tensor.Arange(5).Slice(0, 0, 5, 0)).Message);
        Assert.Contains("Chunk", Assert.Throws<ArgumentOutOfRangeException>(() => Tensor.Arange(5).Chunk(0)).Message);
        Assert.Contains("Select: index 2", Assert.Throws<ArgumentOutOfRangeException>(() => Z(2, 3).Select(0, 2)).Message);
        Assert.Contains("Select: index -3", Assert.Throws<ArgumentOutOfRangeException>(() => Z(2, 3).Select(0, -3)).Message);
        Assert.Equal(new[] { 3 }, Z(2, 3).Select(0, -1).Shape.ToArray());
        Assert.Contains("softmax: axis 2", Assert.Throws<ArgumentOutOfRangeException>(() => Z(2, 3).Softmax(2)).Message);
        Assert.Contains("log_softmax: axis -3", Assert.Throws<ArgumentOutOfRangeException>(() => Z(2, 3).LogSoftmax(-3)).Message);
    }

    [Fact]
    public void NormalizationLayers_RefuseANegativeEpsOrAMomentumOutside01()
    {
        Assert.Contains("eps", Assert.Throws<ArgumentOutOfRangeException>(() => new Nn.BatchNorm1d(2, eps: -1e-5)).Message);
        Assert.Contains("momentum", Assert.Throws<ArgumentOutOfRangeException>(() => new Nn.BatchNorm2d(2, momentum: 1.5)).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new Nn.LayerNorm(3, eps: double.NaN));
        Assert.Equal(0.0, new Nn.BatchNorm1d(2, eps: 0, momentum: 1).Eps);   // the edges are allowed, as in PyTorch
    }

    [Fact]
    public void Losses_RefuseToBroadcastNx1AgainstN()
    {
        var e = Assert.Throws<ShapeMismatchException>(() => Losses.Mse(Z(8, 1), Z(8)));
        Assert.Contains("do not broadcast", e.Message);
    }

    [Fact]
    public void CrossEntropy_TargetOutOfRange_NamesTheValue()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Losses.CrossEntropy(Z(2, 3), Tensor.FromArray(new[] { 0, 3 })));
        Assert.Contains("target 3", e.Message);
    }

    [Fact]
    public void CrossEntropy_IgnoreIndex_RefusesProbabilityTargets_AndStillChecksTheOtherTargets()
    {
        var e = Assert.Throws<ArgumentException>(() => Losses.CrossEntropy(Z(2, 3), Z(2, 3), ignoreIndex: -100));
        Assert.Contains("cross_entropy: ignoreIndex", e.Message);
        Assert.Contains("(2, 3)", e.Message);
        // Only the ignored value is exempt: another target outside [0, C) is still an error.
        var o = Assert.Throws<ArgumentOutOfRangeException>(() => Losses.CrossEntropy(Z(3, 3), Tensor.FromArray(new[] { 0, -100, 5 }), ignoreIndex: -100));
        Assert.Contains("target 5 at row 2", o.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => Losses.CrossEntropy(Z(2, 3), Tensor.FromArray(new[] { 0, -100 })));
    }

    // index_select, embedding and nll are gathers underneath; an index out of range must name the op the
    // caller called, on every path the CPU backend takes (last-axis rows, row selection, the general
    // fallback) and on the reference backend.
    [Theory]
    [InlineData("cpu")]
    [InlineData("reference")]
    public void IndexOutOfRange_NamesTheOpTheCallerCalled(string device)
    {
        var dev = device == "cpu" ? Device.Cpu : Device.Reference;
        Tensor On(Tensor t) => t.To(dev);
        void Names(string expected, Func<Tensor> act)
        {
            var e = Assert.Throws<IndexOutOfRangeException>(() => act());
            Assert.StartsWith(expected, e.Message);
        }
        var x = On(Tensor.Arange(6).Reshape(2, 3));
        Names("index_select: index 5 is out of range for axis 0 of size 2", () => x.IndexSelect(0, On(Tensor.FromArray(new[] { 0, 5 }))));
        Names("index_select: index 3 is out of range for axis 1 of size 3", () => x.IndexSelect(1, On(Tensor.FromArray(new[] { 3 }))));
        Names("index_select: index -1 is out of range for axis 0 of size 2", () => On(x.Double()).IndexSelect(0, On(Tensor.FromArray(new[] { -1 }))));
        Names("gather: index 3 is out of range for axis 1 of size 3", () => x.Gather(1, On(Tensor.FromArray(new[] { 0, 3, 1, 1 }).Reshape(2, 2))));
        Names("gather: index 5 is out of range for axis 0 of size 2", () => x.Gather(0, On(Tensor.FromArray(new[] { 0, 5, 1 }).Reshape(1, 3))));
        Names("embedding: index 7 is out of range for axis 0 of size 2", () => Tensor.Embedding(On(Tensor.FromArray(new[] { 1, 7 })), x));
        Names("nll: index 3 is out of range for axis 1 of size 3", () => Losses.Nll(x, On(Tensor.FromArray(new[] { 0, 3 }))));
    }

    [Fact]
    public void MixingDevices_NamesBothDevices()
    {
        var e = Assert.Throws<InvalidOperationException>(() => Z(2) + Z(2).To(Device.Reference));
        Assert.Contains("cpu", e.Message);
        Assert.Contains("reference", e.Message);
    }

    [Fact]
    public void ArithmeticOnIntegers_SaysToConvert()
    {
        var e = Assert.Throws<InvalidOperationException>(() => Tensor.FromArray(new[] { 1 }) + Tensor.FromArray(new[] { 2 }));
        Assert.Contains(".Float()", e.Message);
    }

    [Fact]
    public void AxisOutOfRange_NamesTheAxisAndRank()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Z(2, 3).Sum(2));
        Assert.Contains("axis 2", e.Message);
        Assert.Contains("rank 2", e.Message);
    }

    [Fact]
    public void UnknownDevice_ListsTheKnownOnes()
    {
        var e = Assert.Throws<InvalidOperationException>(() => Backends.For(new Device("cuda")));
        Assert.Contains("cpu", e.Message);
        Assert.Contains("reference", e.Message);
    }
}
