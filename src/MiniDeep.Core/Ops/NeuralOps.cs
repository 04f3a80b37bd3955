namespace MiniDeep;

// Neural-network functions. Softmax and log-softmax are composites; convolution and pooling are
// built on the Unfold/Fold pair (im2col and its adjoint) plus matmul and reductions, so their
// first and second derivatives follow from those primitives.
public sealed partial class Tensor
{
    /// <summary>e^x / Σ e^x along an axis, shifted by the (constant) max so it cannot overflow.</summary>
    // y = softmax(x)   dx = y * (g - Σ g y)
    public Tensor Softmax(int axis = -1)
    {
        if (Rank > 0 && Dims[Shapes.NormalizeAxis(axis, Rank, "softmax")] == 0) return this * 1.0;
        var e = (this - Max(axis, keepDim: true).Detach()).Exp();
        return e / e.Sum(axis, keepDim: true);
    }

    /// <summary>log softmax, computed as (x - m) - log Σ e^(x - m): exact where log(softmax) would underflow.</summary>
    // y = x - logsumexp(x)   dx = g - softmax(x) Σ g
    public Tensor LogSoftmax(int axis = -1)
    {
        if (Rank > 0 && Dims[Shapes.NormalizeAxis(axis, Rank, "log_softmax")] == 0) return this * 1.0;
        var m = Max(axis, keepDim: true).Detach();
        m = Where(m.IsFinite(), m, ScalarLike(m, 0));
        var shifted = this - m;
        return shifted - shifted.Exp().Sum(axis, keepDim: true).Log();
    }

    /// <summary>im2col: (B, C, H, W) to (B, C·kh·kw, L) where L is the number of window positions.</summary>
    // y = unfold(x)   dx = fold(g)
    public static Tensor Unfold(Tensor x, WindowGeometry geometry)
    {
        if (x.Rank != 4 || x.Dims[1] != geometry.Channels || x.Dims[2] != geometry.Height || x.Dims[3] != geometry.Width)
            throw new ShapeMismatchException("unfold", $"unfold: input {x.Shape} does not match the window geometry (C={geometry.Channels}, H={geometry.Height}, W={geometry.Width})");
        var y = new Tensor(x.Backend.Unfold(x.AsView, geometry),
            [x.Dims[0], geometry.Channels * geometry.KernelH * geometry.KernelW, geometry.OutH * geometry.OutW]);
        return Autograd.Record(y, "unfold", [x], g => [Fold(g, geometry)]);
    }

    /// <summary>col2im, the adjoint of <see cref="Unfold"/>: overlapping windows are summed.</summary>
    // y = fold(c)   dc = unfold(g)
    public static Tensor Fold(Tensor cols, WindowGeometry geometry)
    {
        int k = geometry.Channels * geometry.KernelH * geometry.KernelW, l = geometry.OutH * geometry.OutW;
        if (cols.Rank != 3 || cols.Dims[1] != k || cols.Dims[2] != l)
            throw new ShapeMismatchException("fold", $"fold: columns {cols.Shape} do not match the window geometry (expected (B, {k}, {l}))");
        var y = new Tensor(cols.Backend.Fold(cols.AsView, geometry), [cols.Dims[0], geometry.Channels, geometry.Height, geometry.Width]);
        return Autograd.Record(y, "fold", [cols], g => [Unfold(g, geometry)]);
    }

    /// <summary>
    /// 2-D convolution (cross-correlation, as in every DL library). x (N, C, H, W), weight
    /// (O, C/groups, kh, kw), bias (O). Computed as im2col + a (grouped, batched) matmul.
    /// </summary>
    public static Tensor Conv2d(Tensor x, Tensor weight, Tensor? bias = null,
        (int H, int W)? stride = null, (int H, int W)? padding = null, (int H, int W)? dilation = null, int groups = 1) =>
        Conv2dCore(x, weight, bias, stride, padding, dilation, groups, relu: false);

    /// <summary>
    /// Conv2d(...).Relu() as one op, with the same values and gradients bit for bit: the activation is
    /// applied to each image's output while it is still in cache, and its backward reads the mask from
    /// the output (y &gt; 0 exactly where the pre-activation was). Sequential uses it for a Conv2d
    /// followed by a ReLU when neither has hooks.
    /// </summary>
    public static Tensor Conv2dRelu(Tensor x, Tensor weight, Tensor? bias = null,
        (int H, int W)? stride = null, (int H, int W)? padding = null, (int H, int W)? dilation = null, int groups = 1) =>
        Conv2dCore(x, weight, bias, stride, padding, dilation, groups, relu: true);

    // Stride and dilation of at least 1 and padding of at least 0: checked on every call, and by the
    // Conv2d layer when it is built.
    internal static void CheckConvArguments(string op, (int H, int W) stride, (int H, int W) padding, (int H, int W) dilation)
    {
        if (stride.H < 1 || stride.W < 1 || dilation.H < 1 || dilation.W < 1 || padding.H < 0 || padding.W < 0)
            throw new ArgumentException($"{op}: stride {stride} and dilation {dilation} must be positive and padding {padding} non-negative");
    }

    private static Tensor Conv2dCore(Tensor x, Tensor weight, Tensor? bias,
        (int H, int W)? stride, (int H, int W)? padding, (int H, int W)? dilation, int groups, bool relu)
    {
        var (sh, sw) = stride ?? (1, 1);
        var (ph, pw) = padding ?? (0, 0);
        var (dh, dw) = dilation ?? (1, 1);
        if (x.Rank != 4) throw new ShapeMismatchException("conv2d", $"conv2d: input must be (N, C, H, W), got {x.Shape}");
        if (weight.Rank != 4) throw new ShapeMismatchException("conv2d", $"conv2d: weight must be (O, C/groups, kh, kw), got {weight.Shape}");
        int n = x.Dims[0], c = x.Dims[1], h = x.Dims[2], w = x.Dims[3];
        int o = weight.Dims[0], cg = weight.Dims[1], kh = weight.Dims[2], kw = weight.Dims[3];
        if (groups < 1 || c % groups != 0 || o % groups != 0)
            throw new ShapeMismatchException("conv2d", $"conv2d: groups={groups} must divide input channels {c} and output channels {o} (input {x.Shape}, weight {weight.Shape})");
        if (cg != c / groups)
            throw new ShapeMismatchException("conv2d", $"conv2d: weight {weight.Shape} expects {cg * groups} input channels, input {x.Shape} has {c} (groups={groups})");
        if (kh < 1 || kw < 1)
            throw new ShapeMismatchException("conv2d", $"conv2d: the kernel of weight {weight.Shape} is empty ({kh}, {kw})");
        CheckConvArguments("conv2d", (sh, sw), (ph, pw), (dh, dw));
        var geo = new WindowGeometry(c, h, w, kh, kw, sh, sw, ph, pw, dh, dw);
        if (geo.OutH <= 0 || geo.OutW <= 0)
            throw new ShapeMismatchException("conv2d", $"conv2d: kernel ({kh}, {kw}) with dilation ({dh}, {dw}) does not fit the padded input {x.Shape} (padding ({ph}, {pw}))");
        if (bias is not null && (bias.Rank != 1 || bias.Dims[0] != o))
            throw new ShapeMismatchException("conv2d", $"conv2d: bias {bias.Shape} does not match {o} output channels");

        if (groups == 1 && x.DType.IsFloating() && weight.DType == x.DType && weight.Device == x.Device
            && (bias is null || (bias.DType == x.DType && bias.Device == x.Device)))
            return ConvFused(x, weight, bias, geo, relu);

        // Grouped convolution: one GEMM per group over the whole batch: (O/G, K) @ (K, N·L). The alternative, a batched
        // matmul per image, made N small products and a weight gradient summed over N copies; with the
        // batch folded into the columns the weight gradient is a single product too.
        int k = cg * kh * kw, l = geo.OutH * geo.OutW;
        var cols = Unfold(x, geo).Reshape(n, groups, k, l).Permute(1, 2, 0, 3).Reshape(groups, k, n * l); // (G, K, N·L)
        var wm = weight.Reshape(groups, o / groups, k);                                                       // (G, O/G, K)
        var y = MatMul(wm, cols).Reshape(groups, o / groups, n, l).Permute(2, 0, 1, 3)                         // (N, G, O/G, L)
            .Reshape(n, o, geo.OutH, geo.OutW);
        if (bias is not null) y += bias.Reshape(1, o, 1, 1);
        return relu ? y.Relu() : y;
    }

    // The convolution and its two adjoints form a family closed under differentiation, so every
    // derivative of every order is one of three backend kernels (each bilinear in its two operands).
    // With the ReLU fused, the gradient is first masked where the output is zero (relu's backward).
    // y = conv(x, w) + b   dx = conv_input_grad(g, w)   dw = conv_weight_grad(g, x)   db = Σ_{n,i,j} g
    private static Tensor ConvFused(Tensor x, Tensor weight, Tensor? bias, WindowGeometry geo, bool relu = false)
    {
        var y = new Tensor(x.Backend.Conv2d(x.AsView, weight.AsView, bias?.AsView, geo, relu), [x.Dims[0], weight.Dims[0], geo.OutH, geo.OutW]);
        Tensor[] inputs = bias is null ? [x, weight] : [x, weight, bias];
        var output = y;
        Tensor?[] Rule(Tensor g)
        {
            var dx = Autograd.Needs(x) ? ConvInputGrad(g, weight, geo) : null;
            var dw = Autograd.Needs(weight) ? ConvWeightGrad(g, x, geo) : null;
            return bias is null ? [dx, dw] : [dx, dw, Autograd.Needs(bias) ? g.Sum([0, 2, 3]) : null];
        }
        return Autograd.Record(y, relu ? "conv2d_relu" : "conv2d", inputs, g => relu ? WithReluMask(g, output, Rule) : Rule(g));
    }

    // y = conv_input_grad(e, w)   de = conv(g, w)   dw = conv_weight_grad(e, g)
    private static Tensor ConvInputGrad(Tensor e, Tensor weight, WindowGeometry geo)
    {
        var z = new Tensor(e.Backend.Conv2dInputGrad(e.AsView, weight.AsView, geo), [e.Dims[0], geo.Channels, geo.Height, geo.Width]);
        return Autograd.Record(z, "conv2d_input_grad", [e, weight], g => [
            Autograd.Needs(e) ? ConvFused(g, weight, null, geo) : null,
            Autograd.Needs(weight) ? ConvWeightGrad(e, g, geo) : null]);
    }

    // y = conv_weight_grad(e, x)   de = conv(x, g)   dx = conv_input_grad(e, g)
    private static Tensor ConvWeightGrad(Tensor e, Tensor x, WindowGeometry geo)
    {
        var z = new Tensor(e.Backend.Conv2dWeightGrad(e.AsView, x.AsView, geo), [e.Dims[1], geo.Channels, geo.KernelH, geo.KernelW]);
        return Autograd.Record(z, "conv2d_weight_grad", [e, x], g => [
            Autograd.Needs(e) ? ConvFused(x, g, null, geo) : null,
            Autograd.Needs(x) ? ConvInputGrad(e, g, geo) : null]);
    }

    /// <summary>Max pooling over kh×kw windows; padding never wins. One kernel finds each window's
    /// maximum (the first in scan order on ties, as PyTorch; a NaN wins) and its index; the gradient
    /// of each output goes to its window's maximum.</summary>
    // y = x[argmax over each window]   dx = scatter_add(0, argmax, g)
    public static Tensor MaxPool2d(Tensor x, (int H, int W) kernel, (int H, int W)? stride = null, (int H, int W)? padding = null, (int H, int W)? dilation = null)
    {
        var geo = PoolGeometry("max_pool2d", x, kernel, stride, padding, dilation);
        int n = x.Dims[0], c = x.Dims[1];
        var (values, indices) = x.Backend.MaxPool2d(x.AsView, geo);
        var y = new Tensor(values, [n, c, geo.OutH, geo.OutW]);
        var idx = new Tensor(indices, [n, c, geo.OutH * geo.OutW]);
        var inShape = x.Dims;
        return Autograd.Record(y, "max_pool2d", [x], g => [MaxPoolRoute(g, idx, inShape, geo)]);
    }

    // The backward of max pooling as its own op: each window's gradient goes to its maximum. It is
    // linear in g (the indices fixed), so its own backward reads the upstream gradient back at the
    // same indices: a gather.
    // y = route(g, idx)   dg = gather(g', idx)
    private static Tensor MaxPoolRoute(Tensor g, Tensor idx, int[] inShape, WindowGeometry geo)
    {
        var dx = new Tensor(g.Backend.MaxPool2dBackward(g.AsView, idx.AsView, geo), inShape);
        int n = inShape[0], c = inShape[1];
        return Autograd.Record(dx, "max_pool2d_backward", [g], gg =>
            [gg.Reshape(n, c, geo.Height * geo.Width).Gather(2, idx).Reshape(n, c, geo.OutH, geo.OutW)]);
    }

    /// <summary>Average pooling over kh×kw windows; zero padding is counted in the average (PyTorch's default count_include_pad).</summary>
    public static Tensor AvgPool2d(Tensor x, (int H, int W) kernel, (int H, int W)? stride = null, (int H, int W)? padding = null) =>
        AvgPool("avg_pool2d", x, kernel, stride, padding);

    /// <summary>
    /// Adaptive average pooling of (N, C, H, W) to (N, C, h, w), PyTorch's adaptive_avg_pool2d: output row
    /// i averages input rows ⌊i·H/h⌋ to ⌈(i + 1)·H/h⌉ − 1 (windows that may overlap, or differ in size by
    /// one), and columns alike. Written as P_h · x · P_wᵀ with averaging matrices, so its gradient (and its
    /// gradient's gradient) is two products; (1, 1), global average pooling, is a mean over H and W.
    /// </summary>
    // y = P_h x P_wᵀ   dx = P_hᵀ g P_w
    public static Tensor AdaptiveAvgPool2d(Tensor x, (int H, int W) output)
    {
        if (x.Rank != 4) throw new ShapeMismatchException("adaptive_avg_pool2d", $"adaptive_avg_pool2d: input must be (N, C, H, W), got {x.Shape}");
        if (output.H < 1 || output.W < 1)
            throw new ArgumentException($"adaptive_avg_pool2d: output size {output} must be positive");
        if (x.Dims[2] == 0 || x.Dims[3] == 0)
            throw new ShapeMismatchException("adaptive_avg_pool2d", $"adaptive_avg_pool2d: input {x.Shape} has no pixels to average");
        if (output == (1, 1)) return x.Mean([2, 3], keepDim: true);
        var rows = AveragingMatrix(x.Dims[2], output.H, x);
        var columns = AveragingMatrix(x.Dims[3], output.W, x);
        return MatMul(rows, MatMul(x, columns.mT));
    }

    // P[i, j] = 1 / (window size) for input index j in output i's window [⌊i·n/m⌋, ⌈(i + 1)·n/m⌉).
    private static Tensor AveragingMatrix(int n, int m, Tensor like)
    {
        var p = new double[m * n];
        for (int i = 0; i < m; i++)
        {
            int start = (int)((long)i * n / m), end = (int)(((long)(i + 1) * n + m - 1) / m);
            for (int j = start; j < end; j++) p[i * n + j] = 1.0 / (end - start);
        }
        return FromArray(p, m, n).To(like.DType).To(like.Device);
    }

    private static WindowGeometry PoolGeometry(string op, Tensor x, (int H, int W) kernel, (int H, int W)? stride, (int H, int W)? padding, (int H, int W)? dilation)
    {
        if (x.Rank != 4) throw new ShapeMismatchException(op, $"{op}: input must be (N, C, H, W), got {x.Shape}");
        var (sh, sw) = stride ?? kernel;
        var (ph, pw) = padding ?? (0, 0);
        var (dh, dw) = dilation ?? (1, 1);
        if (kernel.H < 1 || kernel.W < 1 || sh < 1 || sw < 1 || ph < 0 || pw < 0 || dh < 1 || dw < 1)
            throw new ArgumentException($"{op}: kernel {kernel}, stride ({sh}, {sw}) and dilation ({dh}, {dw}) must be positive, padding ({ph}, {pw}) non-negative");
        if (ph * 2 > kernel.H || pw * 2 > kernel.W)
            throw new ArgumentException($"{op}: padding ({ph}, {pw}) must be at most half the kernel {kernel}");
        var geo = new WindowGeometry(x.Dims[1], x.Dims[2], x.Dims[3], kernel.H, kernel.W, sh, sw, ph, pw, dh, dw);
        if (geo.OutH <= 0 || geo.OutW <= 0)
            throw new ShapeMismatchException(op, $"{op}: kernel {kernel} does not fit input {x.Shape}");
        return geo;
    }

    // The mean over each window of the unfolded image; zero padding counts, as PyTorch's default.
    private static Tensor AvgPool(string op, Tensor x, (int H, int W) kernel, (int H, int W)? stride, (int H, int W)? padding)
    {
        var g = PoolGeometry(op, x, kernel, stride, padding, null);
        int n = x.Dims[0], c = x.Dims[1];
        var geo = g with { Channels = 1 };
        var cols = Unfold(x.Reshape(n * c, 1, g.Height, g.Width), geo);   // (N·C, kh·kw, L)
        return cols.Mean(1).Reshape(n, c, g.OutH, g.OutW);
    }

    /// <summary>Inverted dropout: zeroes each element with probability p and scales the rest by 1/(1-p), so eval needs no rescaling.</summary>
    // y = x * mask / (1 - p)   dx = g * mask / (1 - p)
    public Tensor Dropout(double p, bool training = true, Generator? generator = null)
    {
        if (!(p >= 0 && p <= 1)) throw new ArgumentOutOfRangeException(nameof(p), $"dropout: p must lie in [0, 1], got {p}");
        if (!training || p == 0) return this;
        if (p == 1) return this * 0.0;
        // The mask carries the 1/(1 − p) scale (values 0 or 1/(1 − p)), so forward and backward are one
        // multiply each; x·(m·s) equals (x·m)·s bit for bit, since m is 0 or 1.
        var mask = Bernoulli(Shape, 1 - p, generator, DType, Device);
        using (Autograd.NoGrad()) mask.MulInPlace(1 / (1 - p));
        return this * mask;
    }
}
