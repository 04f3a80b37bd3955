namespace MiniDeep.Nn;

/// <summary>y = x Wᵀ + b. Default initialization is PyTorch's: W and b uniform on ±1/√in.</summary>
public sealed class Linear : Module
{
    /// <inheritdoc/>
    protected internal override bool MayKeepInput => false;
    /// <summary>(out, in).</summary>
    public Tensor Weight { get; }
    /// <summary>(out), or null.</summary>
    public Tensor? Bias { get; }
    /// <summary>Input features.</summary>
    public int InFeatures { get; }
    /// <summary>Output features.</summary>
    public int OutFeatures { get; }

    /// <summary>A layer from <paramref name="inFeatures"/> to <paramref name="outFeatures"/>, with parameters of
    /// <paramref name="dtype"/> (float64 for second-order experiments on small models).</summary>
    public Linear(int inFeatures, int outFeatures, bool bias = true, Generator? generator = null, DType dtype = DType.Float32)
    {
        // A negative size failed inside Shape, naming neither the layer nor the argument. Zero inputs is
        // allowed, as in PyTorch (the output is the bias).
        if (inFeatures < 0 || outFeatures < 0)
            throw new ArgumentOutOfRangeException(inFeatures < 0 ? nameof(inFeatures) : nameof(outFeatures), $"Linear: features must be non-negative, got {inFeatures} in and {outFeatures} out");
        InFeatures = inFeatures;
        OutFeatures = outFeatures;
        double bound = 1 / Math.Sqrt(Math.Max(inFeatures, 1));
        Weight = RegisterParameter("weight", Tensor.Rand(new Shape(outFeatures, inFeatures), generator, -bound, bound, dtype));
        if (bias) Bias = RegisterParameter("bias", Tensor.Rand(new Shape(outFeatures), generator, -bound, bound, dtype));
    }

    /// <inheritdoc/>
    public override string Describe() => $"Linear({InFeatures}, {OutFeatures}{(Bias is null ? ", bias=False" : "")})";

    /// <inheritdoc/>
    protected override Tensor ForwardImpl(Tensor x)
    {
        if (x.Rank == 0 || x.Size(-1) != InFeatures)
            throw new ShapeMismatchException(Describe(), $"{Describe()}: input {x.Shape} must end in {InFeatures} features (weight {Weight.Shape})");
        return Tensor.Linear(x, Weight, Bias);
    }

    internal override Tensor? ForwardWithRelu(Tensor x)
    {
        if (x.Rank == 0 || x.Size(-1) != InFeatures)
            throw new ShapeMismatchException(Describe(), $"{Describe()}: input {x.Shape} must end in {InFeatures} features (weight {Weight.Shape})");
        return Tensor.LinearRelu(x, Weight, Bias);
    }
}

/// <summary>2-D convolution over (N, C, H, W). Default initialization is PyTorch's: uniform on ±1/√(C/groups·kh·kw).</summary>
public sealed class Conv2d : Module
{
    /// <inheritdoc/>
    protected internal override bool MayKeepInput => false;
    /// <summary>(out, in/groups, kh, kw).</summary>
    public Tensor Weight { get; }
    /// <summary>(out), or null.</summary>
    public Tensor? Bias { get; }
    private readonly (int, int) _stride, _padding, _dilation;
    private readonly int _groups;

    /// <summary>A convolution with a square or rectangular kernel.</summary>
    public Conv2d(int inChannels, int outChannels, (int H, int W) kernel, (int H, int W)? stride = null, (int H, int W)? padding = null,
        (int H, int W)? dilation = null, int groups = 1, bool bias = true, Generator? generator = null)
    {
        if (inChannels < 1 || outChannels < 1 || groups < 1 || inChannels % groups != 0 || outChannels % groups != 0)
            throw new ArgumentException($"Conv2d: groups={groups} must divide in_channels {inChannels} and out_channels {outChannels}, all positive");
        _stride = stride ?? (1, 1);
        _padding = padding ?? (0, 0);
        _dilation = dilation ?? (1, 1);
        // Checked here, not at the first Forward: an empty kernel makes the initialization bound 1/√0 and every weight NaN.
        if (kernel.H < 1 || kernel.W < 1) throw new ArgumentOutOfRangeException(nameof(kernel), $"Conv2d: kernel {kernel} is empty");
        Tensor.CheckConvArguments("Conv2d", _stride, _padding, _dilation);
        _groups = groups;
        double bound = 1 / Math.Sqrt(inChannels / groups * kernel.H * kernel.W);
        Weight = RegisterParameter("weight", Tensor.Rand(new Shape(outChannels, inChannels / groups, kernel.H, kernel.W), generator, -bound, bound));
        if (bias) Bias = RegisterParameter("bias", Tensor.Rand(new Shape(outChannels), generator, -bound, bound));
    }

    /// <summary>A convolution with a square kernel.</summary>
    public Conv2d(int inChannels, int outChannels, int kernel, int stride = 1, int padding = 0, bool bias = true, Generator? generator = null)
        : this(inChannels, outChannels, (kernel, kernel), (stride, stride), (padding, padding), bias: bias, generator: generator) { }

    /// <summary>Input channels.</summary>
    public int InChannels => Weight.Size(1) * _groups;
    /// <summary>Output channels.</summary>
    public int OutChannels => Weight.Size(0);
    /// <summary>Kernel height and width.</summary>
    public (int H, int W) KernelSize => (Weight.Size(2), Weight.Size(3));
    /// <summary>Stride along height and width.</summary>
    public (int H, int W) Stride => _stride;
    /// <summary>Zero padding on each side, along height and width.</summary>
    public (int H, int W) Padding => _padding;
    /// <summary>Dilation along height and width.</summary>
    public (int H, int W) Dilation => _dilation;
    /// <summary>Channel groups (1: a dense convolution).</summary>
    public int Groups => _groups;

    /// <inheritdoc/>
    public override string Describe() =>
        $"Conv2d({InChannels}, {OutChannels}, kernel=({Weight.Size(2)}, {Weight.Size(3)}), stride={_stride}, padding={_padding})";

    /// <inheritdoc/>
    protected override Tensor ForwardImpl(Tensor x)
    {
        if (x.Rank != 4 || x.Size(1) != InChannels)
            throw new ShapeMismatchException(Describe(), $"{Describe()}: input {x.Shape} must be (N, {InChannels}, H, W) (weight {Weight.Shape})");
        return Tensor.Conv2d(x, Weight, Bias, _stride, _padding, _dilation, _groups);
    }

    internal override Tensor? ForwardWithRelu(Tensor x)
    {
        if (x.Rank != 4 || x.Size(1) != InChannels)
            throw new ShapeMismatchException(Describe(), $"{Describe()}: input {x.Shape} must be (N, {InChannels}, H, W) (weight {Weight.Shape})");
        return Tensor.Conv2dRelu(x, Weight, Bias, _stride, _padding, _dilation, _groups);
    }
}

/// <summary>
/// Transposed 2-D convolution over (N, C, H, W), the adjoint of a <see cref="Conv2d"/>: with stride s it
/// upsamples about s times (a decoder's or a generator's layer). Default initialization is PyTorch's:
/// uniform on ±1/√(out/groups·kh·kw), the fan-in PyTorch reads off the transposed weight.
/// </summary>
public sealed class ConvTranspose2d : Module
{
    /// <inheritdoc/>
    protected internal override bool MayKeepInput => false;
    /// <summary>(in, out/groups, kh, kw), PyTorch's layout.</summary>
    public Tensor Weight { get; }
    /// <summary>(out), or null.</summary>
    public Tensor? Bias { get; }
    private readonly (int, int) _stride, _padding, _outputPadding, _dilation;
    private readonly int _groups;

    /// <summary>A transposed convolution with a square or rectangular kernel.</summary>
    public ConvTranspose2d(int inChannels, int outChannels, (int H, int W) kernel, (int H, int W)? stride = null, (int H, int W)? padding = null,
        (int H, int W)? outputPadding = null, (int H, int W)? dilation = null, int groups = 1, bool bias = true, Generator? generator = null)
    {
        if (inChannels < 1 || outChannels < 1 || groups < 1 || inChannels % groups != 0 || outChannels % groups != 0)
            throw new ArgumentException($"ConvTranspose2d: groups={groups} must divide in_channels {inChannels} and out_channels {outChannels}, all positive");
        if (kernel.H < 1 || kernel.W < 1) throw new ArgumentOutOfRangeException(nameof(kernel), $"ConvTranspose2d: kernel {kernel} is empty");
        _stride = stride ?? (1, 1);
        _padding = padding ?? (0, 0);
        _outputPadding = outputPadding ?? (0, 0);
        _dilation = dilation ?? (1, 1);
        Tensor.CheckConvArguments("ConvTranspose2d", _stride, _padding, _dilation);
        // Checked here, not at the first Forward, as PyTorch's layer does.
        Tensor.CheckOutputPadding("ConvTranspose2d", _outputPadding.Item1, _stride.Item1, _dilation.Item1, " along the height");
        Tensor.CheckOutputPadding("ConvTranspose2d", _outputPadding.Item2, _stride.Item2, _dilation.Item2, " along the width");
        _groups = groups;
        double bound = 1 / Math.Sqrt(outChannels / groups * kernel.H * kernel.W);
        Weight = RegisterParameter("weight", Tensor.Rand(new Shape(inChannels, outChannels / groups, kernel.H, kernel.W), generator, -bound, bound));
        if (bias) Bias = RegisterParameter("bias", Tensor.Rand(new Shape(outChannels), generator, -bound, bound));
    }

    /// <summary>A transposed convolution with a square kernel.</summary>
    public ConvTranspose2d(int inChannels, int outChannels, int kernel, int stride = 1, int padding = 0, int outputPadding = 0, bool bias = true, Generator? generator = null)
        : this(inChannels, outChannels, (kernel, kernel), (stride, stride), (padding, padding), (outputPadding, outputPadding), bias: bias, generator: generator) { }

    /// <summary>Input channels.</summary>
    public int InChannels => Weight.Size(0);
    /// <summary>Output channels.</summary>
    public int OutChannels => Weight.Size(1) * _groups;
    /// <summary>Kernel height and width.</summary>
    public (int H, int W) KernelSize => (Weight.Size(2), Weight.Size(3));
    /// <summary>Stride along height and width.</summary>
    public (int H, int W) Stride => _stride;
    /// <summary>Padding taken off each side of the output, along height and width.</summary>
    public (int H, int W) Padding => _padding;
    /// <summary>Rows and columns added at the bottom and right of the output.</summary>
    public (int H, int W) OutputPadding => _outputPadding;
    /// <summary>Dilation along height and width.</summary>
    public (int H, int W) Dilation => _dilation;
    /// <summary>Channel groups (1: dense).</summary>
    public int Groups => _groups;

    /// <inheritdoc/>
    public override string Describe() =>
        $"ConvTranspose2d({InChannels}, {OutChannels}, kernel=({Weight.Size(2)}, {Weight.Size(3)}), stride={_stride}, padding={_padding}"
        + (_outputPadding == (0, 0) ? ")" : $", output_padding={_outputPadding})");

    /// <inheritdoc/>
    protected override Tensor ForwardImpl(Tensor x)
    {
        if (x.Rank != 4 || x.Size(1) != InChannels)
            throw new ShapeMismatchException(Describe(), $"{Describe()}: input {x.Shape} must be (N, {InChannels}, H, W) (weight {Weight.Shape})");
        return Tensor.ConvTranspose2d(x, Weight, Bias, _stride, _padding, _outputPadding, _dilation, _groups);
    }
}

/// <summary>1-D convolution over (N, C, L). Default initialization is PyTorch's: uniform on ±1/√(C/groups·k).</summary>
public sealed class Conv1d : Module
{
    /// <inheritdoc/>
    protected internal override bool MayKeepInput => false;
    /// <summary>(out, in/groups, k).</summary>
    public Tensor Weight { get; }
    /// <summary>(out), or null.</summary>
    public Tensor? Bias { get; }
    /// <summary>Stride.</summary>
    public int Stride { get; }
    /// <summary>Zero padding on each side.</summary>
    public int Padding { get; }
    /// <summary>Dilation.</summary>
    public int Dilation { get; }
    /// <summary>Channel groups (1: dense).</summary>
    public int Groups { get; }

    /// <summary>A convolution along the last axis with a kernel of <paramref name="kernel"/> taps.</summary>
    public Conv1d(int inChannels, int outChannels, int kernel, int stride = 1, int padding = 0, int dilation = 1, int groups = 1, bool bias = true, Generator? generator = null)
    {
        if (inChannels < 1 || outChannels < 1 || groups < 1 || inChannels % groups != 0 || outChannels % groups != 0)
            throw new ArgumentException($"Conv1d: groups={groups} must divide in_channels {inChannels} and out_channels {outChannels}, all positive");
        if (kernel < 1) throw new ArgumentOutOfRangeException(nameof(kernel), $"Conv1d: kernel {kernel} is empty");
        Tensor.CheckConvArguments("Conv1d", (1, stride), (0, padding), (1, dilation));
        (Stride, Padding, Dilation, Groups) = (stride, padding, dilation, groups);
        double bound = 1 / Math.Sqrt(inChannels / groups * kernel);
        Weight = RegisterParameter("weight", Tensor.Rand(new Shape(outChannels, inChannels / groups, kernel), generator, -bound, bound));
        if (bias) Bias = RegisterParameter("bias", Tensor.Rand(new Shape(outChannels), generator, -bound, bound));
    }

    /// <summary>Input channels.</summary>
    public int InChannels => Weight.Size(1) * Groups;
    /// <summary>Output channels.</summary>
    public int OutChannels => Weight.Size(0);
    /// <summary>Kernel taps.</summary>
    public int KernelSize => Weight.Size(2);

    /// <inheritdoc/>
    public override string Describe() => $"Conv1d({InChannels}, {OutChannels}, kernel={KernelSize}, stride={Stride}, padding={Padding})";

    /// <inheritdoc/>
    protected override Tensor ForwardImpl(Tensor x)
    {
        if (x.Rank != 3 || x.Size(1) != InChannels)
            throw new ShapeMismatchException(Describe(), $"{Describe()}: input {x.Shape} must be (N, {InChannels}, L) (weight {Weight.Shape})");
        return Tensor.Conv1d(x, Weight, Bias, Stride, Padding, Dilation, Groups);
    }

    internal override Tensor? ForwardWithRelu(Tensor x)
    {
        if (x.Rank != 3 || x.Size(1) != InChannels)
            throw new ShapeMismatchException(Describe(), $"{Describe()}: input {x.Shape} must be (N, {InChannels}, L) (weight {Weight.Shape})");
        return Tensor.Conv1dRelu(x, Weight, Bias, Stride, Padding, Dilation, Groups);
    }
}

/// <summary>
/// Transposed 1-D convolution over (N, C, L), the adjoint of a <see cref="Conv1d"/> (see
/// <see cref="Tensor.ConvTranspose1d"/>). Default initialization is PyTorch's: uniform on ±1/√(out/groups·k).
/// </summary>
public sealed class ConvTranspose1d : Module
{
    /// <inheritdoc/>
    protected internal override bool MayKeepInput => false;
    /// <summary>(in, out/groups, k), PyTorch's layout.</summary>
    public Tensor Weight { get; }
    /// <summary>(out), or null.</summary>
    public Tensor? Bias { get; }
    /// <summary>Stride.</summary>
    public int Stride { get; }
    /// <summary>Padding taken off each end of the output.</summary>
    public int Padding { get; }
    /// <summary>Samples added at the end of the output.</summary>
    public int OutputPadding { get; }
    /// <summary>Dilation.</summary>
    public int Dilation { get; }
    /// <summary>Channel groups (1: dense).</summary>
    public int Groups { get; }

    /// <summary>A transposed convolution along the last axis with a kernel of <paramref name="kernel"/> taps.</summary>
    public ConvTranspose1d(int inChannels, int outChannels, int kernel, int stride = 1, int padding = 0, int outputPadding = 0, int dilation = 1,
        int groups = 1, bool bias = true, Generator? generator = null)
    {
        if (inChannels < 1 || outChannels < 1 || groups < 1 || inChannels % groups != 0 || outChannels % groups != 0)
            throw new ArgumentException($"ConvTranspose1d: groups={groups} must divide in_channels {inChannels} and out_channels {outChannels}, all positive");
        if (kernel < 1) throw new ArgumentOutOfRangeException(nameof(kernel), $"ConvTranspose1d: kernel {kernel} is empty");
        Tensor.CheckConvArguments("ConvTranspose1d", (1, stride), (0, padding), (1, dilation));
        Tensor.CheckOutputPadding("ConvTranspose1d", outputPadding, stride, dilation);
        (Stride, Padding, OutputPadding, Dilation, Groups) = (stride, padding, outputPadding, dilation, groups);
        double bound = 1 / Math.Sqrt(outChannels / groups * kernel);
        Weight = RegisterParameter("weight", Tensor.Rand(new Shape(inChannels, outChannels / groups, kernel), generator, -bound, bound));
        if (bias) Bias = RegisterParameter("bias", Tensor.Rand(new Shape(outChannels), generator, -bound, bound));
    }

    /// <summary>Input channels.</summary>
    public int InChannels => Weight.Size(0);
    /// <summary>Output channels.</summary>
    public int OutChannels => Weight.Size(1) * Groups;
    /// <summary>Kernel taps.</summary>
    public int KernelSize => Weight.Size(2);

    /// <inheritdoc/>
    public override string Describe() =>
        $"ConvTranspose1d({InChannels}, {OutChannels}, kernel={KernelSize}, stride={Stride}, padding={Padding}{(OutputPadding == 0 ? "" : $", output_padding={OutputPadding}")})";

    /// <inheritdoc/>
    protected override Tensor ForwardImpl(Tensor x)
    {
        if (x.Rank != 3 || x.Size(1) != InChannels)
            throw new ShapeMismatchException(Describe(), $"{Describe()}: input {x.Shape} must be (N, {InChannels}, L) (weight {Weight.Shape})");
        return Tensor.ConvTranspose1d(x, Weight, Bias, Stride, Padding, OutputPadding, Dilation, Groups);
    }
}

/// <summary>Max pooling along the last axis of (N, C, L); the stride defaults to the kernel.</summary>
public sealed class MaxPool1d(int kernel, int? stride = null, int padding = 0) : Module
{
    /// <inheritdoc/>
    protected internal override bool MayKeepInput => false;
    /// <summary>Window length.</summary>
    public int Kernel => kernel;
    /// <summary>Stride (the window length unless given).</summary>
    public int Stride => stride ?? kernel;
    /// <summary>Padding on each side.</summary>
    public int Padding => padding;
    /// <inheritdoc/>
    public override string Describe() => $"MaxPool1d(kernel={kernel})";
    /// <inheritdoc/>
    protected override Tensor ForwardImpl(Tensor x) => Tensor.MaxPool1d(x, kernel, stride, padding);
}

/// <summary>Average pooling along the last axis of (N, C, L); the stride defaults to the kernel.</summary>
public sealed class AvgPool1d(int kernel, int? stride = null, int padding = 0) : Module
{
    /// <inheritdoc/>
    protected internal override bool MayKeepInput => false;
    /// <summary>Window length.</summary>
    public int Kernel => kernel;
    /// <summary>Stride (the window length unless given).</summary>
    public int Stride => stride ?? kernel;
    /// <summary>Padding on each side.</summary>
    public int Padding => padding;
    /// <inheritdoc/>
    public override string Describe() => $"AvgPool1d(kernel={kernel})";
    /// <inheritdoc/>
    protected override Tensor ForwardImpl(Tensor x) => Tensor.AvgPool1d(x, kernel, stride, padding);
}

/// <summary>Max pooling; the stride defaults to the kernel size.</summary>
public sealed class MaxPool2d((int H, int W) kernel, (int H, int W)? stride = null, (int H, int W)? padding = null) : Module
{
    /// <inheritdoc/>
    protected internal override bool MayKeepInput => false;
    /// <summary>Square window.</summary>
    public MaxPool2d(int kernel) : this((kernel, kernel)) { }
    /// <summary>Window height and width.</summary>
    public (int H, int W) Kernel => kernel;
    /// <summary>Stride along height and width (the window size unless given).</summary>
    public (int H, int W) Stride => stride ?? kernel;
    /// <summary>Padding on each side, along height and width.</summary>
    public (int H, int W) Padding => padding ?? (0, 0);
    /// <inheritdoc/>
    public override string Describe() => $"MaxPool2d(kernel={kernel})";
    /// <inheritdoc/>
    protected override Tensor ForwardImpl(Tensor x) => Tensor.MaxPool2d(x, kernel, stride, padding);
}

/// <summary>Average pooling; the stride defaults to the kernel size.</summary>
public sealed class AvgPool2d((int H, int W) kernel, (int H, int W)? stride = null, (int H, int W)? padding = null) : Module
{
    /// <inheritdoc/>
    protected internal override bool MayKeepInput => false;
    /// <summary>Square window.</summary>
    public AvgPool2d(int kernel) : this((kernel, kernel)) { }
    /// <summary>Window height and width.</summary>
    public (int H, int W) Kernel => kernel;
    /// <summary>Stride along height and width (the window size unless given).</summary>
    public (int H, int W) Stride => stride ?? kernel;
    /// <summary>Padding on each side, along height and width.</summary>
    public (int H, int W) Padding => padding ?? (0, 0);
    /// <inheritdoc/>
    public override string Describe() => $"AvgPool2d(kernel={kernel})";
    /// <inheritdoc/>
    protected override Tensor ForwardImpl(Tensor x) => Tensor.AvgPool2d(x, kernel, stride, padding);
}

/// <summary>
/// Average pooling to a fixed output size whatever the input's (PyTorch's AdaptiveAvgPool2d); (1, 1) is
/// global average pooling, the usual head of a convolutional network before its classifier.
/// </summary>
public sealed class AdaptiveAvgPool2d((int H, int W) output) : Module
{
    /// <inheritdoc/>
    protected internal override bool MayKeepInput => false;
    /// <summary>A square output.</summary>
    public AdaptiveAvgPool2d(int output) : this((output, output)) { }
    /// <summary>Output height and width.</summary>
    public (int H, int W) Output => output;
    /// <inheritdoc/>
    public override string Describe() => $"AdaptiveAvgPool2d(output={output})";
    /// <inheritdoc/>
    protected override Tensor ForwardImpl(Tensor x) => Tensor.AdaptiveAvgPool2d(x, output);
}

/// <summary>
/// Resizes images (PyTorch's nn.Upsample): by an integer scale, or to a fixed size whatever the input's;
/// nearest or bilinear (see <see cref="Tensor.Interpolate(Tensor, ValueTuple{int, int}, UpsampleMode, bool)"/>).
/// </summary>
public sealed class Upsample : Module
{
    /// <inheritdoc/>
    protected internal override bool MayKeepInput => false;
    /// <summary>Upsampling by an integer factor along height and width.</summary>
    public Upsample(int scale, UpsampleMode mode = UpsampleMode.Nearest, bool alignCorners = false)
    {
        if (scale < 1) throw new ArgumentOutOfRangeException(nameof(scale), $"Upsample: scale {scale} must be positive");
        Scale = scale;
        (Mode, AlignCorners) = Checked(mode, alignCorners);
    }

    /// <summary>Resizing to a fixed height and width.</summary>
    public Upsample((int H, int W) size, UpsampleMode mode = UpsampleMode.Nearest, bool alignCorners = false)
    {
        if (size.H < 1 || size.W < 1) throw new ArgumentOutOfRangeException(nameof(size), $"Upsample: size {size} must be positive");
        Size = size;
        (Mode, AlignCorners) = Checked(mode, alignCorners);
    }

    private static (UpsampleMode, bool) Checked(UpsampleMode mode, bool alignCorners)
    {
        if (!Enum.IsDefined(mode)) throw new ArgumentOutOfRangeException(nameof(mode), $"Upsample: unknown mode {mode}");
        if (mode == UpsampleMode.Nearest && alignCorners) throw new ArgumentException("Upsample: align_corners only applies to bilinear resizing, as in PyTorch");
        return (mode, alignCorners);
    }

    /// <summary>The integer factor, or null when the layer resizes to <see cref="Size"/>.</summary>
    public int? Scale { get; }
    /// <summary>The output height and width, or null when the layer scales by <see cref="Scale"/>.</summary>
    public (int H, int W)? Size { get; }
    /// <summary>Nearest or bilinear.</summary>
    public UpsampleMode Mode { get; }
    /// <summary>Bilinear only: whether the corner pixels of input and output are aligned.</summary>
    public bool AlignCorners { get; }

    /// <summary>The output height and width for an input of <paramref name="height"/> × <paramref name="width"/>.</summary>
    public (int H, int W) OutputSize(int height, int width) => Size ?? (checked(height * Scale!.Value), checked(width * Scale!.Value));

    /// <inheritdoc/>
    public override string Describe() =>
        $"Upsample({(Size is { } s ? $"size={s}" : $"scale={Scale}")}, mode={Mode.ToString().ToLowerInvariant()}{(AlignCorners ? ", align_corners=True" : "")})";

    /// <inheritdoc/>
    protected override Tensor ForwardImpl(Tensor x)
    {
        if (x.Rank != 4) throw new ShapeMismatchException(Describe(), $"{Describe()}: input must be (N, C, H, W), got {x.Shape}");
        return Tensor.Interpolate(x, OutputSize(x.Size(2), x.Size(3)), Mode, AlignCorners);
    }
}

/// <summary>Flattens dimensions startAxis..endAxis (by default everything but the batch).</summary>
public sealed class Flatten(int startAxis = 1, int endAxis = -1) : Module
{
    /// <inheritdoc/>
    protected internal override bool MayKeepInput => false;
    /// <summary>First axis merged.</summary>
    public int StartAxis => startAxis;
    /// <summary>Last axis merged (negative counts from the end).</summary>
    public int EndAxis => endAxis;
    /// <inheritdoc/>
    protected override Tensor ForwardImpl(Tensor x) => x.Flatten(startAxis, endAxis);
}

/// <summary>
/// (x − mean) / std with two fixed numbers, as the first layer of a model: the model then takes raw
/// pixels in [0, 1], so attacks and their ε live in pixel space while training still sees standardized
/// inputs. Mean and std are buffers, saved with the state dict.
/// </summary>
public sealed class Standardize : Module
{
    /// <inheritdoc/>
    protected internal override bool MayKeepInput => false;
    /// <summary>The shift (a scalar buffer).</summary>
    public Tensor Mean { get; }
    /// <summary>The scale (a scalar buffer).</summary>
    public Tensor Std { get; }

    /// <summary>Standardizes with the given mean and standard deviation (std must be positive).</summary>
    public Standardize(double mean, double std)
    {
        if (!(std > 0)) throw new ArgumentOutOfRangeException(nameof(std), $"Standardize: std must be positive, got {std}");
        Mean = RegisterBuffer("mean", Tensor.Scalar(mean));
        Std = RegisterBuffer("std", Tensor.Scalar(std));
    }

    /// <summary>Standardizes with the pixel mean and standard deviation of a training set.</summary>
    public static Standardize Fit(Tensor trainInputs) => new(trainInputs.Mean().Item(), trainInputs.Std().Item());

    /// <inheritdoc/>
    public override string Describe() => $"Standardize(mean={Mean.Item():G4}, std={Std.Item():G4})";
    /// <inheritdoc/>
    protected override Tensor ForwardImpl(Tensor x) => (x - Mean) / Std;
}

/// <summary>Which function an <see cref="Activation"/> computes, for exporters that must name it.</summary>
public enum ActivationKind
{
    /// <summary>A function given as a delegate: nothing outside MiniDeep can know what it computes.</summary>
    Custom,
    /// <summary>max(x, 0).</summary>
    ReLU,
    /// <summary>x for x &gt; 0, else slope·x (<see cref="Activation.Argument"/> is the slope).</summary>
    LeakyReLU,
    /// <summary>1 / (1 + e⁻ˣ).</summary>
    Sigmoid,
    /// <summary>tanh x.</summary>
    Tanh,
    /// <summary>x Φ(x), exact (with erf).</summary>
    GELU,
    /// <summary>log(1 + eˣ).</summary>
    Softplus,
    /// <summary>x.</summary>
    Identity,
    /// <summary>Softmax over the axis <see cref="Activation.Argument"/>.</summary>
    Softmax,
}

/// <summary>An elementwise activation as a module.</summary>
public sealed class Activation(string name, Func<Tensor, Tensor> f) : Module
{
    /// <summary>The function, when it is one of the built-in ones (set by <see cref="Activations"/>; a
    /// module built from a delegate is <see cref="ActivationKind.Custom"/>).</summary>
    public ActivationKind Kind { get; internal init; }
    /// <summary>The slope of a LeakyReLU, the axis of a Softmax; 0 otherwise.</summary>
    public double Argument { get; internal init; }
    /// <summary>The ReLU: Sequential may fuse it into the layer before it.</summary>
    internal bool IsRelu => Kind == ActivationKind.ReLU;
    /// <inheritdoc/>
    protected internal override bool MayKeepInput => false;
    /// <inheritdoc/>
    public override string Describe() => name;
    /// <inheritdoc/>
    protected override Tensor ForwardImpl(Tensor x) => f(x);
}

/// <summary>Activation modules.</summary>
public static class Activations
{
    /// <summary>max(x, 0).</summary>
    public static Module ReLU() => new Activation("ReLU", x => x.Relu()) { Kind = ActivationKind.ReLU };
    /// <summary>Leaky ReLU.</summary>
    public static Module LeakyReLU(double slope = 0.01) =>
        new Activation($"LeakyReLU({slope})", x => x.LeakyRelu(slope)) { Kind = ActivationKind.LeakyReLU, Argument = slope };
    /// <summary>Logistic sigmoid.</summary>
    public static Module Sigmoid() => new Activation("Sigmoid", x => x.Sigmoid()) { Kind = ActivationKind.Sigmoid };
    /// <summary>Hyperbolic tangent.</summary>
    public static Module Tanh() => new Activation("Tanh", x => x.Tanh()) { Kind = ActivationKind.Tanh };
    /// <summary>Exact GELU.</summary>
    public static Module GELU() => new Activation("GELU", x => x.Gelu()) { Kind = ActivationKind.GELU };
    /// <summary>Softplus.</summary>
    public static Module Softplus() => new Activation("Softplus", x => x.Softplus()) { Kind = ActivationKind.Softplus };
    /// <summary>Identity.</summary>
    public static Module Identity() => new Activation("Identity", x => x) { Kind = ActivationKind.Identity };
    /// <summary>Softmax over an axis.</summary>
    public static Module Softmax(int axis = -1) =>
        new Activation($"Softmax(axis={axis})", x => x.Softmax(axis)) { Kind = ActivationKind.Softmax, Argument = axis };
}

/// <summary>Inverted dropout in training mode; the identity in eval mode.</summary>
public sealed class Dropout : Module
{
    /// <inheritdoc/>
    protected internal override bool MayKeepInput => false;
    private readonly double _p;
    private readonly Generator? _generator;
    /// <summary>The generator of the masks (null: <see cref="Generator.Default"/>); checkpoints save its state.</summary>
    internal Generator? Generator => _generator;
    /// <summary>Drop probability p.</summary>
    public Dropout(double p = 0.5, Generator? generator = null)
    {
        if (!(p >= 0 && p <= 1)) throw new ArgumentOutOfRangeException(nameof(p), $"Dropout: p must lie in [0, 1], got {p}");
        _p = p;
        _generator = generator;
    }
    /// <summary>The drop probability.</summary>
    public double P => _p;
    /// <inheritdoc/>
    public override string Describe() => $"Dropout(p={_p})";
    /// <inheritdoc/>
    protected override Tensor ForwardImpl(Tensor x) => x.Dropout(_p, IsTraining, _generator);
}

/// <summary>
/// Batch normalization (Ioffe &amp; Szegedy 2015) over the batch (and spatial) axes: in training mode,
/// normalize by the batch statistics and update running estimates (momentum 0.1, unbiased variance,
/// as PyTorch); in eval mode, normalize by the running estimates. A composite, so its gradient
/// (including through the batch statistics) comes from the ops it is made of.
/// </summary>
public class BatchNorm : Module
{
    /// <inheritdoc/>
    protected internal override bool MayKeepInput => false;
    private readonly int _rank;
    private readonly double _eps, _momentum;
    /// <summary>Scale γ.</summary>
    public Tensor Weight { get; }
    /// <summary>Shift β.</summary>
    public Tensor Bias { get; }
    /// <summary>Running mean (buffer).</summary>
    public Tensor RunningMean { get; }
    /// <summary>Running variance (buffer).</summary>
    public Tensor RunningVar { get; }
    /// <summary>Channels normalized.</summary>
    public int Features { get; }
    /// <summary>The ε added to the variance.</summary>
    public double Eps => _eps;
    /// <summary>The weight of a new batch statistic in the running estimates.</summary>
    public double Momentum => _momentum;

    /// <summary>Normalizes inputs of rank <paramref name="rank"/> with channels on axis 1.</summary>
    protected BatchNorm(int features, int rank, double eps, double momentum)
    {
        // A negative ε can take var + ε below 0 (NaN outputs); a momentum outside [0, 1] makes the running estimates diverge.
        Checks.NonNegative(eps, "eps", "BatchNorm");
        if (!(momentum >= 0 && momentum <= 1))
            throw new ArgumentOutOfRangeException(nameof(momentum), $"BatchNorm: the momentum must lie in [0, 1], got {momentum}");
        Features = features;
        _rank = rank;
        _eps = eps;
        _momentum = momentum;
        Weight = RegisterParameter("weight", Tensor.Ones(features));
        Bias = RegisterParameter("bias", Tensor.Zeros(features));
        RunningMean = RegisterBuffer("running_mean", Tensor.Zeros(features));
        RunningVar = RegisterBuffer("running_var", Tensor.Ones(features));
    }

    /// <inheritdoc/>
    public override string Describe() => $"{GetType().Name}({Features})";

    /// <inheritdoc/>
    protected override Tensor ForwardImpl(Tensor x)
    {
        // BatchNorm1d takes (N, C) and, as PyTorch's does, (N, C, L) (after a Conv1d); BatchNorm2d (N, C, H, W).
        // The statistics are over every axis but the channels'.
        bool fits = _rank == 2 ? x.Rank is 2 or 3 : x.Rank == _rank;
        if (!fits || x.Size(1) != Features)
            throw new ShapeMismatchException(Describe(), $"{Describe()}: input {x.Shape} must be {(_rank == 2 ? "(N, C) or (N, C, L)" : "(N, C, H, W)")} with C = {Features}");
        int[] axes = [0, .. Enumerable.Range(2, x.Rank - 2)];
        int[] shape = [1, Features, .. Enumerable.Repeat(1, x.Rank - 2)];
        if (!IsTraining)
            return (x - RunningMean.Reshape(shape)) / (RunningVar.Reshape(shape) + _eps).Sqrt() * Weight.Reshape(shape) + Bias.Reshape(shape);
        int n = x.Numel / Math.Max(Features, 1);
        if (n < 2) throw new ArgumentException($"{Describe()}: training needs more than one value per channel, got input {x.Shape}");
        var y = Training(x, Weight, Bias, axes, shape, _eps, out var mean, out var var);
        using (Autograd.NoGrad())
        {
            RunningMean.MulInPlace(1 - _momentum).AddInPlace(mean.Reshape(Features), _momentum);
            RunningVar.MulInPlace(1 - _momentum).AddInPlace(var.Reshape(Features) * (n / (n - 1.0)), _momentum);
        }
        return y;
    }

    // The definition, as differentiable ops: batch statistics (biased variance), normalize, scale, shift.
    private static Tensor Composite(Tensor x, Tensor weight, Tensor bias, int[] axes, int[] shape, double eps)
    {
        var mean = x.Mean(axes, keepDim: true);
        var var = (x - mean).Square().Mean(axes, keepDim: true);
        return (x - mean) / (var + eps).Sqrt() * weight.Reshape(shape) + bias.Reshape(shape);
    }

    // y = (x - μ)/σ · γ + β   dx = (γ/σ)(g - mean(g) - x̂ mean(g x̂))   dγ = Σ g x̂   dβ = Σ g
    // One node in training mode: the statistics and x̂ are computed once and the backward is the
    // closed form above (about a third of the passes over the activations that the composite's
    // recorded graph makes). When the backward itself is recorded (double backward), the composite is
    // differentiated instead, so that second derivatives see how μ and σ depend on x.
    internal static Tensor Training(Tensor x, Tensor weight, Tensor bias, int[] axes, int[] shape, double eps, out Tensor mean, out Tensor var)
    {
        Tensor xhat, invstd, y;
        using (Autograd.NoGrad())
        {
            mean = x.Mean(axes, keepDim: true);
            var centered = x - mean;
            var = centered.Square().Mean(axes, keepDim: true);
            invstd = 1.0 / (var + eps).Sqrt();
            xhat = centered * invstd;
            y = xhat * weight.Reshape(shape) + bias.Reshape(shape);
        }
        return Autograd.Record(y, "batch_norm", [x, weight, bias], g =>
        {
            if (Autograd.IsGradEnabled)
            {
                var wanted = new[] { x, weight, bias }.Where(Autograd.Needs).ToArray();   // never empty: the pass runs this rule for one of them
                var grads = Autograd.Grad([Composite(x, weight, bias, axes, shape, eps)], wanted, [g], createGraph: true, allowUnused: true);
                return [Autograd.Needs(x) ? grads[Array.IndexOf(wanted, x)] : null,
                        Autograd.Needs(weight) ? grads[Array.IndexOf(wanted, weight)] : null,
                        Autograd.Needs(bias) ? grads[Array.IndexOf(wanted, bias)] : null];
            }
            var gx = g * xhat;
            return [
                Autograd.Needs(x) ? (g - g.Mean(axes, keepDim: true) - xhat * gx.Mean(axes, keepDim: true)) * (weight.Reshape(shape) * invstd) : null,
                Autograd.Needs(weight) ? gx.Sum(axes).Reshape(weight.Shape.ToArray()) : null,
                Autograd.Needs(bias) ? g.Sum(axes).Reshape(bias.Shape.ToArray()) : null];
        });
    }
}

/// <summary>Batch normalization of (N, C) inputs, or of (N, C, L) ones with statistics over N and L.</summary>
public sealed class BatchNorm1d(int features, double eps = 1e-5, double momentum = 0.1) : BatchNorm(features, 2, eps, momentum);

/// <summary>Batch normalization of (N, C, H, W) inputs, per channel.</summary>
public sealed class BatchNorm2d(int features, double eps = 1e-5, double momentum = 0.1) : BatchNorm(features, 4, eps, momentum);

/// <summary>Layer normalization (Ba, Kiros &amp; Hinton 2016) over the trailing dimensions, with an elementwise affine map.</summary>
public sealed class LayerNorm : Module
{
    /// <inheritdoc/>
    protected internal override bool MayKeepInput => false;
    private readonly int[] _shape;
    private readonly double _eps;
    /// <summary>Scale.</summary>
    public Tensor Weight { get; }
    /// <summary>Shift.</summary>
    public Tensor Bias { get; }
    /// <summary>The trailing dimensions normalized over.</summary>
    public IReadOnlyList<int> NormalizedShape => _shape;
    /// <summary>The ε added to the variance.</summary>
    public double Eps => _eps;

    /// <summary>Normalizes over the trailing dimensions <paramref name="normalizedShape"/>.</summary>
    public LayerNorm(int[] normalizedShape, double eps = 1e-5)
    {
        Checks.NonNegative(eps, "eps", "LayerNorm");
        _shape = [.. normalizedShape];
        _eps = eps;
        Weight = RegisterParameter("weight", Tensor.Ones(normalizedShape));
        Bias = RegisterParameter("bias", Tensor.Zeros(normalizedShape));
    }

    /// <summary>Normalizes over the last dimension.</summary>
    public LayerNorm(int features, double eps = 1e-5) : this([features], eps) { }

    /// <inheritdoc/>
    public override string Describe() => $"LayerNorm({Shapes.Format(_shape)})";

    /// <inheritdoc/>
    protected override Tensor ForwardImpl(Tensor x)
    {
        if (x.Rank < _shape.Length || !x.Shape.ToArray()[^_shape.Length..].SequenceEqual(_shape))
            throw new ShapeMismatchException(Describe(), $"{Describe()}: input {x.Shape} must end in {Shapes.Format(_shape)}");
        return Tensor.LayerNorm(x, _shape, Weight, Bias, _eps);
    }
}

/// <summary>
/// Group normalization over (N, C, ...) (PyTorch's GroupNorm; see <see cref="Tensor.GroupNorm"/>): γ = 1
/// and β = 0 per channel at the start. It keeps no running statistics, so training and evaluation
/// compute the same thing, at any batch size.
/// </summary>
public sealed class GroupNorm : Module
{
    /// <inheritdoc/>
    protected internal override bool MayKeepInput => false;
    /// <summary>Scale per channel, or null without affine parameters.</summary>
    public Tensor? Weight { get; }
    /// <summary>Shift per channel, or null without affine parameters.</summary>
    public Tensor? Bias { get; }
    /// <summary>The number of groups.</summary>
    public int Groups { get; }
    /// <summary>The number of channels.</summary>
    public int Channels { get; }
    /// <summary>The ε added to the variance.</summary>
    public double Eps { get; }

    /// <summary><paramref name="channels"/> channels in <paramref name="groups"/> groups.</summary>
    public GroupNorm(int groups, int channels, double eps = 1e-5, bool affine = true)
    {
        if (groups < 1 || channels < 1 || channels % groups != 0)
            throw new ArgumentException($"GroupNorm: {groups} groups must divide {channels} channels, both positive");
        Checks.NonNegative(eps, "eps", "GroupNorm");
        Groups = groups;
        Channels = channels;
        Eps = eps;
        if (!affine) return;
        Weight = RegisterParameter("weight", Tensor.Ones(channels));
        Bias = RegisterParameter("bias", Tensor.Zeros(channels));
    }

    /// <inheritdoc/>
    public override string Describe() => $"GroupNorm({Groups}, {Channels}{(Weight is null ? ", affine=False" : "")})";

    /// <inheritdoc/>
    protected override Tensor ForwardImpl(Tensor x)
    {
        if (x.Rank < 2 || x.Size(1) != Channels)
            throw new ShapeMismatchException(Describe(), $"{Describe()}: input {x.Shape} must be (N, {Channels}, ...)");
        return Tensor.GroupNorm(x, Groups, Weight, Bias, Eps);
    }
}

/// <summary>A lookup table of vectors indexed by int32 ids. Initialized N(0, 1), as in PyTorch.</summary>
public sealed class Embedding : Module
{
    /// <inheritdoc/>
    protected internal override bool MayKeepInput => false;
    /// <summary>(num, dim).</summary>
    public Tensor Weight { get; }
    /// <summary>A table of <paramref name="num"/> vectors of size <paramref name="dim"/>.</summary>
    public Embedding(int num, int dim, Generator? generator = null)
    {
        // A table with no rows has nothing to look up: every forward would fail on its first id.
        if (num < 1 || dim < 1) throw new ArgumentOutOfRangeException(num < 1 ? nameof(num) : nameof(dim), $"Embedding: the table needs at least one row and one column, got {num} × {dim}");
        Weight = RegisterParameter("weight", Tensor.Randn(new Shape(num, dim), generator));
    }
    /// <inheritdoc/>
    public override string Describe() => $"Embedding({Weight.Size(0)}, {Weight.Size(1)})";
    /// <inheritdoc/>
    protected override Tensor ForwardImpl(Tensor ids) => Tensor.Embedding(ids, Weight);
}

/// <summary>Modules applied in order; children are named "0", "1", ...</summary>
public sealed class Sequential : Module
{
    private readonly Module[] _layers;
    /// <summary>A chain of modules.</summary>
    public Sequential(params Module[] layers)
    {
        _layers = layers;
        for (int i = 0; i < layers.Length; i++) RegisterModule(i.ToString(System.Globalization.CultureInfo.InvariantCulture), layers[i]);
    }
    /// <summary>The layers, in order.</summary>
    public IReadOnlyList<Module> Layers => _layers;
    /// <summary>Layer i.</summary>
    public Module this[int i] => _layers[i];
    /// <inheritdoc/>
    protected override Tensor ForwardImpl(Tensor x)
    {
        // An activation passed from one layer to the next is seen by nobody else, unless a hook, a
        // layer that keeps its input, or the result (which may view the same buffer) can see it. With
        // recording off (evaluation, attacks, queries) it is dead once the next layer has read it and
        // goes back to the pool at once: a forward pass over 5,000 images spent a third of its time in
        // the garbage collections that otherwise return the buffers. With recording on, the graph
        // still needs it; it is marked, and Backward recycles it when it frees the graph (a CNN step
        // otherwise forced a full collection every step to get 25 MB of activations back).
        // Only buffers created during this call are given back.
        bool recycle = !Autograd.IsGradEnabled;
        long firstSerial = Storage.NextSerial;
        Module? producer = null;
        for (int i = 0; i < _layers.Length; i++)
        {
            var layer = _layers[i];
            // A Linear or Conv2d followed by a ReLU runs as one fused op (same bits, one pass fewer over
            // the activation) unless a hook must see the pre-activation.
            Tensor? y = null;
            if (i + 1 < _layers.Length && _layers[i + 1] is Activation { IsRelu: true } relu && !layer.HasForwardHooks && !relu.HasForwardHooks
                && (y = layer.ForwardWithRelu(x)) is not null)
                i++;
            y ??= layer.Forward(x);
            if (producer is not null && !producer.HasForwardHooks && !layer.HasForwardHooks && !layer.MayKeepInput
                && x.Storage.Serial >= firstSerial && x.Storage.IsRecyclable)
            {
                if (!recycle) x.Storage.ReleaseWithGraph |= x.RequiresGrad;
                else if (!ReferenceEquals(y.Storage, x.Storage)) x.Storage.Recycle();
            }
            producer = _layers[i];
            x = y;
        }
        x.Storage.ReleaseWithGraph = false;   // the result leaves this module, whatever buffer it views
        return x;
    }

    /// <inheritdoc/>
    protected internal override bool MayKeepInput => _layers.Length == 0 || _layers[0].MayKeepInput;
}

/// <summary>A residual block (He et al. 2016): y = body(x) + shortcut(x), the shortcut being the identity unless given.</summary>
public sealed class Residual : Module
{
    /// <inheritdoc/>
    protected internal override bool MayKeepInput => _body.MayKeepInput || (_shortcut?.MayKeepInput ?? false);
    private readonly Module _body;
    private readonly Module? _shortcut;
    /// <summary>y = body(x) + (shortcut ?? identity)(x).</summary>
    public Residual(Module body, Module? shortcut = null)
    {
        _body = RegisterModule("body", body);
        if (shortcut is not null) _shortcut = RegisterModule("shortcut", shortcut);
    }
    /// <summary>The residual branch.</summary>
    public Module Body => _body;
    /// <summary>The projection on the skip path, or null for the identity.</summary>
    public Module? Shortcut => _shortcut;
    /// <inheritdoc/>
    protected override Tensor ForwardImpl(Tensor x)
    {
        var y = _body.Forward(x);
        var s = _shortcut is null ? x : _shortcut.Forward(x);
        if (y.Shape != s.Shape)
            throw new ShapeMismatchException("Residual", $"Residual: body output {y.Shape} and shortcut {s.Shape} differ; give a shortcut that projects");
        return y + s;
    }
}

/// <summary>
/// The mean of several models' outputs. For classifiers whose outputs are logits this is the
/// geometric mean of their predicted distributions (softmax of the mean logit), at any temperature:
/// the ensemble teacher of Hinton, Vinyals &amp; Dean (2015).
/// </summary>
public sealed class Ensemble : Module
{
    private readonly Module[] _members;

    /// <summary>An ensemble of at least one member; outputs must share one shape.</summary>
    public Ensemble(params Module[] members)
    {
        if (members.Length == 0) throw new ArgumentException("Ensemble: at least one member");
        _members = members;
        for (int i = 0; i < members.Length; i++) RegisterModule($"member{i}", members[i]);
    }

    /// <summary>The members.</summary>
    public IReadOnlyList<Module> Members => _members;

    /// <inheritdoc/>
    protected internal override bool MayKeepInput => _members.Any(m => m.MayKeepInput);

    /// <inheritdoc/>
    protected override Tensor ForwardImpl(Tensor x)
    {
        var sum = _members[0].Forward(x);
        for (int i = 1; i < _members.Length; i++)
        {
            var y = _members[i].Forward(x);
            if (y.Shape != sum.Shape) throw new ShapeMismatchException("Ensemble", $"Ensemble: member {i} outputs shape {y.Shape}, member 0 {sum.Shape}");
            sum = sum + y;
        }
        return sum / _members.Length;
    }

    /// <inheritdoc/>
    public override string Describe() => $"Ensemble({_members.Length} members)";
}
