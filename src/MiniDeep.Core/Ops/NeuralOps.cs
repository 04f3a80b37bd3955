namespace MiniDeep;

/// <summary>How <see cref="Tensor.Interpolate(Tensor, ValueTuple{int, int}, UpsampleMode, bool)"/> fills the new pixels.</summary>
public enum UpsampleMode
{
    /// <summary>Each output pixel copies the input pixel it falls in (PyTorch's mode='nearest').</summary>
    Nearest,
    /// <summary>Each output pixel mixes its four nearest input pixels (PyTorch's mode='bilinear').</summary>
    Bilinear,
}

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

    /// <summary>
    /// Transposed 2-D convolution (PyTorch's conv_transpose2d), the adjoint of <see cref="Conv2d"/> with the
    /// same weight: each input pixel adds a copy of the kernel, scaled by its value, into the output, so a
    /// stride s makes the image about s times larger (the decoder half of an autoencoder or a generator).
    /// x (N, C_in, H, W), weight (C_in, C_out/groups, kh, kw), bias (C_out); the output is
    /// H' = (H − 1)·s − 2p + d·(kh − 1) + output_padding + 1 high, and alike in width. output_padding,
    /// smaller than the stride or the dilation, picks among the sizes that a stride-s convolution maps
    /// to the same H.
    /// </summary>
    // y = conv_transpose(x, w) + b = conv_input_grad(x, w) + b   dx = conv(g, w)   dw = conv_weight_grad(x, g)   db = Σ_{n,i,j} g
    public static Tensor ConvTranspose2d(Tensor x, Tensor weight, Tensor? bias = null,
        (int H, int W)? stride = null, (int H, int W)? padding = null, (int H, int W)? outputPadding = null,
        (int H, int W)? dilation = null, int groups = 1)
    {
        const string Op = "conv_transpose2d";
        var (sh, sw) = stride ?? (1, 1);
        var (ph, pw) = padding ?? (0, 0);
        var (oph, opw) = outputPadding ?? (0, 0);
        var (dh, dw) = dilation ?? (1, 1);
        if (x.Rank != 4) throw new ShapeMismatchException(Op, $"{Op}: input must be (N, C_in, H, W), got {x.Shape}");
        if (weight.Rank != 4) throw new ShapeMismatchException(Op, $"{Op}: weight must be (C_in, C_out/groups, kh, kw), got {weight.Shape}");
        int n = x.Dims[0], cin = x.Dims[1], h = x.Dims[2], w = x.Dims[3];
        int kh = weight.Dims[2], kw = weight.Dims[3];
        if (weight.Dims[0] != cin)
            throw new ShapeMismatchException(Op, $"{Op}: weight {weight.Shape} expects {weight.Dims[0]} input channels, input {x.Shape} has {cin}");
        if (groups < 1 || cin % groups != 0)
            throw new ShapeMismatchException(Op, $"{Op}: groups={groups} must divide the input channels {cin} (input {x.Shape}, weight {weight.Shape})");
        int cout = weight.Dims[1] * groups;
        if (kh < 1 || kw < 1 || cout < 1)
            throw new ShapeMismatchException(Op, $"{Op}: weight {weight.Shape} has an empty kernel or no output channels");
        if (h == 0 || w == 0)
            throw new ShapeMismatchException(Op, $"{Op}: input {x.Shape} has no pixels");
        CheckConvArguments(Op, (sh, sw), (ph, pw), (dh, dw));
        CheckOutputPadding(Op, oph, sh, dh, " along the height");
        CheckOutputPadding(Op, opw, sw, dw, " along the width");
        int outH = (h - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1, outW = (w - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1;
        if (outH <= 0 || outW <= 0)
            throw new ShapeMismatchException(Op, $"{Op}: padding ({ph}, {pw}) leaves no output for input {x.Shape} and kernel ({kh}, {kw}) (output {outH}×{outW})");
        if (bias is not null && (bias.Rank != 1 || bias.Dims[0] != cout))
            throw new ShapeMismatchException(Op, $"{Op}: bias {bias.Shape} does not match {cout} output channels");

        // The convolution this is the adjoint of maps C_out × H' × W' to C_in × geo.OutH × geo.OutW. That is
        // H × W, except when an output padding at least the stride (allowed below the dilation) gives it
        // further window positions: x has no values there, so they are zeros.
        var geo = new WindowGeometry(cout, outH, outW, kh, kw, sh, sw, ph, pw, dh, dw);
        if (geo.OutH != h || geo.OutW != w) x = x.Pad([0, geo.OutW - w, 0, geo.OutH - h]);

        Tensor y;
        if (groups == 1 && x.DType.IsFloating() && weight.DType == x.DType && weight.Device == x.Device)
            y = ConvInputGrad(x, weight, geo);
        else
        {
            // Per group, the columns are Wᵀ·x, (C_out/G·kh·kw, C_in/G) @ (C_in/G, N·L), and fold sums the
            // overlapping windows into the image: the grouped convolution's path, run backwards.
            int k = cout / groups * kh * kw, l = geo.OutH * geo.OutW;
            var xg = x.Reshape(n, groups, cin / groups, l).Permute(1, 2, 0, 3).Reshape(groups, cin / groups, n * l);
            var wt = weight.Reshape(groups, cin / groups, k).mT;
            var cols = MatMul(wt, xg).Reshape(groups, k, n, l).Permute(2, 0, 1, 3).Reshape(n, groups * k, l);
            y = Fold(cols, geo);
        }
        return bias is null ? y : y + bias.Reshape(1, cout, 1, 1);
    }

    // An output padding chooses among the output sizes that a strided convolution maps to one input
    // size, so it must stay below the stride (or, for a dilated kernel, the dilation): PyTorch's rule,
    // checked by the transposed-convolution ops and by their layers when they are built.
    internal static void CheckOutputPadding(string op, int outputPadding, int stride, int dilation, string axis = "")
    {
        if (outputPadding < 0 || outputPadding >= Math.Max(stride, dilation))
            throw new ArgumentException($"{op}: output padding {outputPadding}{axis} must be non-negative and smaller than the stride {stride} or the dilation {dilation}");
    }

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
    /// one), and columns alike. The mean over a rectangle is the mean over its rows of the means over its
    /// columns, so it pools the rows, then the columns; (1, 1), global average pooling, is a mean over H and W.
    /// </summary>
    public static Tensor AdaptiveAvgPool2d(Tensor x, (int H, int W) output)
    {
        if (x.Rank != 4) throw new ShapeMismatchException("adaptive_avg_pool2d", $"adaptive_avg_pool2d: input must be (N, C, H, W), got {x.Shape}");
        if (output.H < 1 || output.W < 1)
            throw new ArgumentException($"adaptive_avg_pool2d: output size {output} must be positive");
        if (x.Dims[2] == 0 || x.Dims[3] == 0)
            throw new ShapeMismatchException("adaptive_avg_pool2d", $"adaptive_avg_pool2d: input {x.Shape} has no pixels to average");
        if (output == (1, 1)) return x.Mean([2, 3], keepDim: true);
        return AdaptiveMean(AdaptiveMean(x, 2, output.H), 3, output.W);
    }

    // Output i of the axis averages the window [⌊i·n/m⌋, ⌈(i + 1)·n/m⌉). When m divides n the windows
    // tile the axis and the mean is a reshape and a mean. Otherwise each window's entries are gathered,
    // padded to the longest window by repeating its first entry, and the padding is dropped by a where
    // before the sum. A product with a 0/1 matrix would be shorter, but 0·∞ is NaN: one infinite pixel
    // would turn every output NaN, where PyTorch makes only the windows that hold it infinite.
    // y = Σ_{j ∈ W_i} x_j / |W_i|   dx = Σ_{i: j ∈ W_i} g_i / |W_i|
    private static Tensor AdaptiveMean(Tensor x, int axis, int m)
    {
        int n = x.Dims[axis];
        if (n == m) return x;
        var before = x.Dims[..axis];
        var after = x.Dims[(axis + 1)..];
        if (n % m == 0) return x.Reshape([.. before, m, n / m, .. after]).Mean(axis + 1);

        int longest = 0;
        for (int i = 0; i < m; i++) longest = Math.Max(longest, WindowEnd(i, n, m) - WindowStart(i, n, m));
        var index = new int[m * longest];
        var keep = new bool[m * longest];
        var size = new double[m];
        for (int i = 0; i < m; i++)
        {
            int start = WindowStart(i, n, m), length = WindowEnd(i, n, m) - start;
            size[i] = length;
            for (int k = 0; k < longest; k++)
            {
                index[i * longest + k] = start + (k < length ? k : 0);
                keep[i * longest + k] = k < length;
            }
        }
        var ones = Enumerable.Repeat(1, after.Length).ToArray();
        var windows = x.IndexSelect(axis, FromArray(index).To(x.Device)).Reshape([.. before, m, longest, .. after]);
        var mask = FromArray(keep, [m, longest, .. ones]).To(x.Device);
        var sizes = FromArray(size, [m, .. ones]).To(x.DType).To(x.Device);
        return Where(mask, windows, ScalarLike(windows, 0)).Sum(axis + 1) / sizes;
    }

    private static int WindowStart(int i, int n, int m) => (int)((long)i * n / m);
    private static int WindowEnd(int i, int n, int m) => (int)(((long)(i + 1) * n + m - 1) / m);

    /// <summary>
    /// Resizes the images of (N, C, H, W) to (N, C, h, w), PyTorch's F.interpolate(x, size=(h, w), mode=...).
    /// Nearest: output row i copies input row ⌊i·H/h⌋. Bilinear: each output pixel mixes its four nearest
    /// input pixels, with pixel centres aligned (align_corners = false, PyTorch's default: row i samples
    /// (i + ½)·H/h − ½, clamped at 0) or the corner pixels aligned (true: row i samples i·(H − 1)/(h − 1)).
    /// Both modes are separable, so rows are resized first, then columns, each a gather and (bilinear)
    /// a weighted sum of two gathers, and the gradient of each is a scatter-add of g.
    /// </summary>
    public static Tensor Interpolate(Tensor x, (int H, int W) size, UpsampleMode mode = UpsampleMode.Nearest, bool alignCorners = false)
    {
        const string Op = "interpolate";
        if (x.Rank != 4) throw new ShapeMismatchException(Op, $"{Op}: input must be (N, C, H, W), got {x.Shape}");
        if (size.H < 1 || size.W < 1) throw new ArgumentException($"{Op}: output size {size} must be positive");
        if (x.Dims[2] == 0 || x.Dims[3] == 0) throw new ShapeMismatchException(Op, $"{Op}: input {x.Shape} has no pixels");
        if (!Enum.IsDefined(mode)) throw new ArgumentOutOfRangeException(nameof(mode), $"{Op}: unknown mode {mode}");
        if (mode == UpsampleMode.Nearest && alignCorners)
            throw new ArgumentException($"{Op}: align_corners only applies to bilinear resizing, as in PyTorch");
        if (!x.DType.IsFloating() && mode == UpsampleMode.Bilinear)
            throw new InvalidOperationException($"{Op}: bilinear resizing needs a floating-point input, got {x.DType.Name()}");
        var rows = mode == UpsampleMode.Nearest ? NearestAlong(x, 2, size.H) : LinearAlong(x, 2, size.H, alignCorners);
        return mode == UpsampleMode.Nearest ? NearestAlong(rows, 3, size.W) : LinearAlong(rows, 3, size.W, alignCorners);
    }

    /// <summary>Resizes (N, C, H, W) to (N, C, H·scale, W·scale); see <see cref="Interpolate(Tensor, ValueTuple{int, int}, UpsampleMode, bool)"/>.</summary>
    public static Tensor Interpolate(Tensor x, int scale, UpsampleMode mode = UpsampleMode.Nearest, bool alignCorners = false)
    {
        if (scale < 1) throw new ArgumentOutOfRangeException(nameof(scale), $"interpolate: scale {scale} must be positive");
        if (x.Rank != 4) throw new ShapeMismatchException("interpolate", $"interpolate: input must be (N, C, H, W), got {x.Shape}");
        return Interpolate(x, (checked(x.Dims[2] * scale), checked(x.Dims[3] * scale)), mode, alignCorners);
    }

    // PyTorch computes the source index in float32, ⌊i·(float)(n/m)⌋, and so does this: where i·n/m is
    // an integer, the rounded ratio could put the exact product a hair below it and pick the row above.
    // y = x[src]   dx = scatter_add(src, g)
    private static Tensor NearestAlong(Tensor x, int axis, int m)
    {
        int n = x.Dims[axis];
        if (n == m) return x;
        float ratio = (float)n / m;
        var index = new int[m];
        for (int i = 0; i < m; i++) index[i] = Math.Min((int)MathF.Floor(i * ratio), n - 1);
        return x.IndexSelect(axis, FromArray(index, [m], x.Device));
    }

    // Output i samples the input at s_i and mixes its two neighbours: (1 − λ)·x_⌊s⌋ + λ·x_{⌊s⌋+1}, the
    // second neighbour the first itself at the last row. The coordinates are PyTorch's, in float32 for
    // float32 inputs and float64 for float64 ones, as PyTorch computes them.
    // y = (1 − λ) x[j] + λ x[j + 1]   dx = scatter_add(j, (1 − λ) g) + scatter_add(j + 1, λ g)
    private static Tensor LinearAlong(Tensor x, int axis, int m, bool alignCorners)
    {
        int n = x.Dims[axis];
        if (n == m) return x;
        bool single = x.DType != DType.Float64;
        double scale = single
            ? (alignCorners ? (m > 1 ? (float)(n - 1) / (m - 1) : 0f) : (float)n / m)
            : (alignCorners ? (m > 1 ? (double)(n - 1) / (m - 1) : 0) : (double)n / m);
        var first = new int[m];
        var second = new int[m];
        var lambda = new double[m];
        for (int i = 0; i < m; i++)
        {
            double s = single
                ? (alignCorners ? (float)scale * i : MathF.Max((float)scale * (i + 0.5f) - 0.5f, 0))
                : (alignCorners ? scale * i : Math.Max(scale * (i + 0.5) - 0.5, 0));
            int j = Math.Min((int)Math.Floor(s), n - 1);
            first[i] = j;
            second[i] = j < n - 1 ? j + 1 : j;
            lambda[i] = Math.Clamp(s - j, 0, 1);
        }
        var trailing = Enumerable.Repeat(1, x.Rank - axis - 1).ToArray();
        var l1 = FromArray(lambda, [m, .. trailing]).To(x.DType).To(x.Device);
        var l0 = FromArray(lambda.Select(l => 1 - l).ToArray(), [m, .. trailing]).To(x.DType).To(x.Device);
        return x.IndexSelect(axis, FromArray(first, [m], x.Device)) * l0 + x.IndexSelect(axis, FromArray(second, [m], x.Device)) * l1;
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

    /// <summary>
    /// Group normalization (Wu &amp; He 2018; PyTorch's F.group_norm): the C channels of each sample fall
    /// into <paramref name="groups"/> groups of C/G, and each group is normalized by the mean and the
    /// biased variance over its channels and positions, then each channel scaled by γ and shifted by β.
    /// x (N, C, ...), weight and bias (C) or null. Nothing depends on the batch, so it behaves the same
    /// at batch 1, in training and in evaluation; G = 1 normalizes over (C, H, W) like a layer norm with
    /// per-channel affine, G = C is instance normalization.
    /// </summary>
    // y = (x − μ_g)/√(σ²_g + ε) · γ_c + β_c   (composite: its gradient, and the second, follow from Mean, Sub, Div and Sqrt)
    public static Tensor GroupNorm(Tensor x, int groups, Tensor? weight = null, Tensor? bias = null, double eps = 1e-5)
    {
        const string Op = "group_norm";
        if (x.Rank < 2) throw new ShapeMismatchException(Op, $"{Op}: input must be (N, C, ...), got {x.Shape}");
        int n = x.Dims[0], c = x.Dims[1];
        if (groups < 1 || c % groups != 0)
            throw new ShapeMismatchException(Op, $"{Op}: {groups} groups must divide the {c} channels of input {x.Shape}");
        if (!(eps >= 0)) throw new ArgumentOutOfRangeException(nameof(eps), $"{Op}: eps must be non-negative, got {eps}");
        foreach (var (t, what) in new[] { (weight, "weight"), (bias, "bias") })
            if (t is not null && (t.Rank != 1 || t.Dims[0] != c))
                throw new ShapeMismatchException(Op, $"{Op}: {what} {t.Shape} must be ({c}) for input {x.Shape}");
        // The size of a group, spelled out: a -1 in the reshape is ambiguous for an empty batch.
        int perGroup = c / groups * x.Dims.Skip(2).Aggregate(1, (a, d) => checked(a * d));
        var g = x.Reshape(n, groups, perGroup);
        var centred = g - g.Mean(2, keepDim: true);
        var y = (centred / (centred.Square().Mean(2, keepDim: true) + eps).Sqrt()).Reshape(x.Dims);
        var channel = Enumerable.Repeat(1, x.Rank).ToArray();
        channel[1] = c;
        if (weight is not null) y *= weight.Reshape(channel);
        if (bias is not null) y += bias.Reshape(channel);
        return y;
    }

    /// <summary>
    /// Layer normalization (Ba, Kiros &amp; Hinton 2016) over the trailing dimensions
    /// <paramref name="normalizedShape"/>, as PyTorch's <c>F.layer_norm</c>: each slice is shifted to
    /// mean 0 and scaled by 1/√(σ² + ε) (σ² the biased variance), then by <paramref name="weight"/> and
    /// <paramref name="bias"/> (of <paramref name="normalizedShape"/>, optional). One kernel forward and
    /// one backward, which keeps each row's mean and 1/√(σ² + ε) from the forward pass; when the
    /// backward is itself recorded (second derivatives), it is written with tensor ops instead.
    /// </summary>
    // y = (x − μ) r w + b, r = 1/√(σ² + ε)   dx = r (ĝ − mean(ĝ) − x̂ mean(ĝ x̂)), ĝ = g w, x̂ = (x − μ) r   dw = Σ_rows g x̂   db = Σ_rows g
    public static Tensor LayerNorm(Tensor x, int[] normalizedShape, Tensor? weight = null, Tensor? bias = null, double eps = 1e-5)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(normalizedShape);
        const string op = "layer_norm";
        int k = normalizedShape.Length;
        if (k == 0 || x.Rank < k || !x.Dims[^k..].SequenceEqual(normalizedShape))
            throw new ShapeMismatchException(op, $"{op}: input {x.Shape} must end in the normalized shape {Shapes.Format(normalizedShape)}");
        if (!x.DType.IsFloating()) throw new ArgumentException($"{op}: input must be floating point, got {x.DType.Name()}");
        Checks.NonNegative(eps, "eps", op);
        foreach (var (t, name) in new[] { (weight, "weight"), (bias, "bias") })
        {
            if (t is null) continue;
            if (!t.Dims.SequenceEqual(normalizedShape))
                throw new ShapeMismatchException(op, $"{op}: {name} {t.Shape} must have the normalized shape {Shapes.Format(normalizedShape)}");
            if (t.DType != x.DType) throw new ArgumentException($"{op}: {name} is {t.DType.Name()}, the input {x.DType.Name()}");
            if (t.Device != x.Device) throw DeviceMismatch(op, x, t);
        }
        int cols = 1;
        foreach (int d in normalizedShape) cols *= d;
        int rows = cols == 0 ? 0 : x.Numel / cols;
        var (ys, statsStorage) = x.Backend.LayerNormRows(x.AsView, weight?.AsView, bias?.AsView, cols, eps);
        var y = new Tensor(ys, (int[])x.Dims.Clone());
        var stats = new Tensor(statsStorage, [rows, 2]);
        var inputs = new List<Tensor> { x };
        if (weight is not null) inputs.Add(weight);
        if (bias is not null) inputs.Add(bias);
        return Autograd.Record(y, op, [.. inputs], g =>
        {
            Tensor dx, gxHat;
            if (Autograd.IsGradEnabled && (x.RequiresGrad || g.RequiresGrad || weight?.RequiresGrad == true))
            {
                // Recorded: the same rule from differentiable ops, x̂ recomputed from x.
                var axes = Enumerable.Range(x.Rank - k, k).ToArray();
                var xc = x - x.Mean(axes, keepDim: true);
                var std = ((xc * xc).Mean(axes, keepDim: true) + eps).Sqrt();
                var xHat = xc / std;
                var gh = weight is null ? g : g * weight;
                dx = (gh - gh.Mean(axes, keepDim: true) - xHat * (gh * xHat).Mean(axes, keepDim: true)) / std;
                gxHat = g * xHat;
            }
            else
            {
                var (dxs, gxs) = x.Backend.LayerNormRowsBackward(x.AsView, weight?.AsView, stats.AsView, g.AsView, cols);
                dx = new Tensor(dxs, (int[])x.Dims.Clone());
                gxHat = new Tensor(gxs, (int[])x.Dims.Clone());
            }
            var grads = new List<Tensor?> { Autograd.Needs(x) ? dx : null };
            if (weight is not null) grads.Add(Autograd.Needs(weight) ? gxHat.SumTo(weight.Dims) : null);
            if (bias is not null) grads.Add(Autograd.Needs(bias) ? g.SumTo(bias.Dims) : null);
            return [.. grads];
        });
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
