namespace MiniDeep;

// The 1-D convolution and pooling ops over (N, C, L): sequences, signals, audio frames. Each is its
// 2-D counterpart on (N, C, 1, L) with a 1 × k window, so it runs the same kernels on every backend,
// takes the same fused path, and inherits the same first and second derivatives; the shapes are
// checked first, in 1-D terms, so an error names the op and the shapes the caller passed.
public sealed partial class Tensor
{
    /// <summary>
    /// 1-D convolution (cross-correlation, PyTorch's F.conv1d). x (N, C, L), weight (O, C/groups, k),
    /// bias (O); the output is (N, O, ⌊(L + 2p − d·(k − 1) − 1)/s⌋ + 1).
    /// </summary>
    public static Tensor Conv1d(Tensor x, Tensor weight, Tensor? bias = null, int stride = 1, int padding = 0, int dilation = 1, int groups = 1)
    {
        CheckConv1d("conv1d", x, weight, bias, stride, padding, dilation, groups);
        return Conv2d(x.Unsqueeze(2), weight.Unsqueeze(2), bias, (1, stride), (0, padding), (1, dilation), groups).Squeeze(2);
    }

    /// <summary>Conv1d(...).Relu() as one op, as <see cref="Conv2dRelu"/>.</summary>
    public static Tensor Conv1dRelu(Tensor x, Tensor weight, Tensor? bias = null, int stride = 1, int padding = 0, int dilation = 1, int groups = 1)
    {
        CheckConv1d("conv1d", x, weight, bias, stride, padding, dilation, groups);
        return Conv2dRelu(x.Unsqueeze(2), weight.Unsqueeze(2), bias, (1, stride), (0, padding), (1, dilation), groups).Squeeze(2);
    }

    /// <summary>
    /// Transposed 1-D convolution (PyTorch's F.conv_transpose1d), the adjoint of <see cref="Conv1d"/>. x (N,
    /// C_in, L), weight (C_in, C_out/groups, k), bias (C_out); the output is (L − 1)·s − 2p + d·(k − 1) +
    /// output_padding + 1 long.
    /// </summary>
    public static Tensor ConvTranspose1d(Tensor x, Tensor weight, Tensor? bias = null, int stride = 1, int padding = 0, int outputPadding = 0, int dilation = 1, int groups = 1)
    {
        const string Op = "conv_transpose1d";
        if (x.Rank != 3) throw new ShapeMismatchException(Op, $"{Op}: input must be (N, C_in, L), got {x.Shape}");
        if (weight.Rank != 3) throw new ShapeMismatchException(Op, $"{Op}: weight must be (C_in, C_out/groups, k), got {weight.Shape}");
        int cin = x.Dims[1], k = weight.Dims[2], cout = weight.Dims[1] * groups;
        if (weight.Dims[0] != cin)
            throw new ShapeMismatchException(Op, $"{Op}: weight {weight.Shape} expects {weight.Dims[0]} input channels, input {x.Shape} has {cin}");
        if (groups < 1 || cin % groups != 0)
            throw new ShapeMismatchException(Op, $"{Op}: groups={groups} must divide the input channels {cin} (input {x.Shape}, weight {weight.Shape})");
        if (k < 1 || cout < 1) throw new ShapeMismatchException(Op, $"{Op}: weight {weight.Shape} has an empty kernel or no output channels");
        if (x.Dims[2] == 0) throw new ShapeMismatchException(Op, $"{Op}: input {x.Shape} has no samples");
        if (stride < 1 || dilation < 1 || padding < 0)
            throw new ArgumentException($"{Op}: stride {stride} and dilation {dilation} must be positive and padding {padding} non-negative");
        CheckOutputPadding(Op, outputPadding, stride, dilation);
        int length = (x.Dims[2] - 1) * stride - 2 * padding + dilation * (k - 1) + outputPadding + 1;
        if (length <= 0)
            throw new ShapeMismatchException(Op, $"{Op}: padding {padding} leaves no output for input {x.Shape} and kernel {k} (length {length})");
        if (bias is not null && (bias.Rank != 1 || bias.Dims[0] != cout))
            throw new ShapeMismatchException(Op, $"{Op}: bias {bias.Shape} does not match {cout} output channels");
        // Every check the 2-D op makes has been made here, in 1-D terms.
        return ConvTranspose2d(x.Unsqueeze(2), weight.Unsqueeze(2), bias, (1, stride), (0, padding), (0, outputPadding), (1, dilation), groups).Squeeze(2);
    }

    /// <summary>Max pooling over windows of <paramref name="kernel"/> along L (PyTorch's F.max_pool1d); the
    /// stride defaults to the kernel, padding never wins, ties go to the first.</summary>
    public static Tensor MaxPool1d(Tensor x, int kernel, int? stride = null, int padding = 0, int dilation = 1)
    {
        CheckPool1d("max_pool1d", x, kernel, stride ?? kernel, padding, dilation);
        return MaxPool2d(x.Unsqueeze(2), (1, kernel), (1, stride ?? kernel), (0, padding), (1, dilation)).Squeeze(2);
    }

    /// <summary>Average pooling along L (PyTorch's F.avg_pool1d); zero padding counts in the average.</summary>
    public static Tensor AvgPool1d(Tensor x, int kernel, int? stride = null, int padding = 0)
    {
        CheckPool1d("avg_pool1d", x, kernel, stride ?? kernel, padding, 1);
        return AvgPool("avg_pool1d", x.Unsqueeze(2), (1, kernel), (1, stride ?? kernel), (0, padding)).Squeeze(2);
    }

    private static void CheckConv1d(string op, Tensor x, Tensor weight, Tensor? bias, int stride, int padding, int dilation, int groups)
    {
        if (x.Rank != 3) throw new ShapeMismatchException(op, $"{op}: input must be (N, C, L), got {x.Shape}");
        if (weight.Rank != 3) throw new ShapeMismatchException(op, $"{op}: weight must be (O, C/groups, k), got {weight.Shape}");
        int c = x.Dims[1], o = weight.Dims[0], k = weight.Dims[2];
        if (groups < 1 || c % groups != 0 || o % groups != 0)
            throw new ShapeMismatchException(op, $"{op}: groups={groups} must divide input channels {c} and output channels {o} (input {x.Shape}, weight {weight.Shape})");
        if (weight.Dims[1] * groups != c)
            throw new ShapeMismatchException(op, $"{op}: weight {weight.Shape} expects {weight.Dims[1] * groups} input channels, input {x.Shape} has {c} (groups={groups})");
        if (k < 1) throw new ShapeMismatchException(op, $"{op}: the kernel of weight {weight.Shape} is empty");
        if (stride < 1 || dilation < 1 || padding < 0)
            throw new ArgumentException($"{op}: stride {stride} and dilation {dilation} must be positive and padding {padding} non-negative");
        if (x.Dims[2] + 2 * padding < dilation * (k - 1) + 1)
            throw new ShapeMismatchException(op, $"{op}: kernel {k} with dilation {dilation} does not fit input {x.Shape} padded by {padding}");
        if (bias is not null && (bias.Rank != 1 || bias.Dims[0] != o))
            throw new ShapeMismatchException(op, $"{op}: bias {bias.Shape} does not match {o} output channels");
    }

    private static void CheckPool1d(string op, Tensor x, int kernel, int stride, int padding, int dilation)
    {
        if (x.Rank != 3) throw new ShapeMismatchException(op, $"{op}: input must be (N, C, L), got {x.Shape}");
        if (kernel < 1 || stride < 1 || padding < 0 || dilation < 1)
            throw new ArgumentException($"{op}: kernel {kernel}, stride {stride} and dilation {dilation} must be positive, padding {padding} non-negative");
        if (padding * 2 > kernel) throw new ArgumentException($"{op}: padding {padding} must be at most half the kernel {kernel}");
        if (x.Dims[2] + 2 * padding < dilation * (kernel - 1) + 1)
            throw new ShapeMismatchException(op, $"{op}: kernel {kernel} does not fit input {x.Shape} padded by {padding}");
    }
}
