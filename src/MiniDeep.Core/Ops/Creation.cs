namespace MiniDeep;

// Factory functions. Every random one draws from a Generator (Random/Philox.cs): element i of a draw
// is Philox(seed, stream, i), so values do not depend on thread count, backend or fill order.
public sealed partial class Tensor
{
    private static Device Dev(Device? d) => d ?? Device.Default;

    /// <summary>A tensor with every element equal to <paramref name="value"/>.</summary>
    public static Tensor Full(Shape shape, double value, DType dtype = DType.Float32, Device? device = null)
    {
        CheckRepresentable("Full", value, dtype);
        var dims = shape.ToArray();
        return new Tensor(Dev(device).Backend.Full(dtype, Shapes.Numel(dims), value), dims);
    }

    // An int32 or bool tensor cannot hold NaN, 2.5 or 1e20: the fill would truncate or saturate without a word.
    internal static void CheckRepresentable(string op, double value, DType dtype)
    {
        if (!Representable(value, dtype)) throw new ArgumentException($"{op}: {value} is not a {dtype.Name()} value");
    }

    private static bool Representable(double value, DType dtype) => dtype switch
    {
        DType.Int32 => value == Math.Floor(value) && value >= int.MinValue && value <= int.MaxValue,
        DType.Bool => value is 0 or 1,
        _ => true,
    };

    /// <summary>All zeros.</summary>
    public static Tensor Zeros(params int[] shape) => Full(shape, 0);
    /// <summary>All zeros.</summary>
    public static Tensor Zeros(Shape shape, DType dtype = DType.Float32, Device? device = null) => Full(shape, 0, dtype, device);
    /// <summary>All ones.</summary>
    public static Tensor Ones(params int[] shape) => Full(shape, 1);
    /// <summary>All ones.</summary>
    public static Tensor Ones(Shape shape, DType dtype = DType.Float32, Device? device = null) => Full(shape, 1, dtype, device);
    /// <summary>Zeros with the shape, dtype and device of <paramref name="like"/>.</summary>
    public static Tensor ZerosLike(Tensor like) => Full(like.Shape, 0, like.DType, like.Device);
    /// <summary>Ones with the shape, dtype and device of <paramref name="like"/>.</summary>
    public static Tensor OnesLike(Tensor like) => Full(like.Shape, 1, like.DType, like.Device);
    /// <summary>A constant with the shape, dtype and device of <paramref name="like"/>.</summary>
    public static Tensor FullLike(Tensor like, double value) => Full(like.Shape, value, like.DType, like.Device);

    /// <summary>A rank-0 tensor.</summary>
    public static Tensor Scalar(double value, DType dtype = DType.Float32, Device? device = null) => Full(new Shape(), value, dtype, device);

    /// <summary>A rank-0 tensor of the same dtype and device as <paramref name="like"/>: how ops make constants.</summary>
    // A scalar operand for an op with `like`: of its dtype when the value fits, else float32, so that an
    // int32 tensor divided by 2.5 or compared with 2.5 is promoted (as in PyTorch), not met by a truncated 2.
    internal static Tensor ScalarLike(Tensor like, double value) =>
        Full(new Shape(), value, Representable(value, like.DType) ? like.DType : DType.Float32, like.Device);

    /// <summary>Values start, start+step, ... below end (above end for a negative step).</summary>
    public static Tensor Arange(double start, double end, double step = 1, DType dtype = DType.Float32, Device? device = null)
    {
        if (step == 0 || !double.IsFinite(step)) throw new ArgumentException($"Arange: step must be finite and non-zero, got {step}");
        if (!double.IsFinite(start) || !double.IsFinite(end)) throw new ArgumentException($"Arange: the bounds must be finite, got [{start}, {end})");
        // PyTorch refuses a step that points away from end, rather than returning nothing.
        if ((end - start) * step < 0) throw new ArgumentException($"Arange: step {step} points away from end: [{start}, {end}) would be empty");
        int n = (int)Math.Max(0, Math.Ceiling((end - start) / step));
        var v = new double[n];
        for (int i = 0; i < n; i++) v[i] = start + i * step;
        return FromArray(v, [n]).To(dtype).To(Dev(device));
    }

    /// <summary>0, 1, ..., n-1.</summary>
    public static Tensor Arange(int n, DType dtype = DType.Float32, Device? device = null) => Arange(0, n, 1, dtype, device);

    /// <summary><paramref name="steps"/> evenly spaced values from start to end inclusive.</summary>
    public static Tensor Linspace(double start, double end, int steps, DType dtype = DType.Float32, Device? device = null)
    {
        if (steps < 0) throw new ArgumentException($"Linspace: steps must be non-negative, got {steps}");
        var v = new double[steps];
        for (int i = 0; i < steps; i++)
            v[i] = steps == 1 ? start : start + (end - start) * i / (steps - 1);
        return FromArray(v, [steps]).To(dtype).To(Dev(device));
    }

    /// <summary>An n×m matrix with ones on the diagonal.</summary>
    public static Tensor Eye(int n, int? m = null, DType dtype = DType.Float32, Device? device = null)
    {
        int cols = m ?? n;
        if (n < 0 || cols < 0) throw new ArgumentException($"Eye: sizes must be non-negative, got {n} × {cols}");
        var v = new double[n * cols];
        for (int i = 0; i < Math.Min(n, cols); i++) v[i * cols + i] = 1;
        return FromArray(v, [n, cols]).To(dtype).To(Dev(device));
    }

    /// <summary>A tensor holding a copy of <paramref name="data"/>; the shape defaults to 1-D.</summary>
    public static Tensor FromArray(float[] data, params int[] shape) => FromArrayCore(data, OneDByDefault(data, shape), null);
    /// <summary>A float64 tensor holding a copy of <paramref name="data"/>.</summary>
    public static Tensor FromArray(double[] data, params int[] shape) => FromArrayCore(data, OneDByDefault(data, shape), null);
    /// <summary>An int32 tensor holding a copy of <paramref name="data"/>.</summary>
    public static Tensor FromArray(int[] data, params int[] shape) => FromArrayCore(data, OneDByDefault(data, shape), null);
    /// <summary>A bool tensor holding a copy of <paramref name="data"/>.</summary>
    public static Tensor FromArray(bool[] data, params int[] shape) => FromArrayCore(data, OneDByDefault(data, shape), null);
    /// <summary>A float32 tensor holding a copy of <paramref name="data"/>.</summary>
    public static Tensor FromSpan(ReadOnlySpan<float> data, params int[] shape) => FromArray(data.ToArray(), shape);

    // With no shape given the data is 1-D; a rank-0 tensor comes from Tensor.Scalar or an explicit empty shape.
    private static int[] OneDByDefault(Array data, int[] shape) => shape.Length == 0 ? [data.Length] : shape;
    /// <summary>A tensor from a 2-D array.</summary>
    public static Tensor FromArray(float[,] data)
    {
        var flat = new float[data.Length];
        Buffer.BlockCopy(data, 0, flat, 0, data.Length * sizeof(float));
        return FromArrayCore(flat, [data.GetLength(0), data.GetLength(1)], null);
    }

    /// <summary>A tensor of exactly <paramref name="shape"/> (empty for rank 0) holding a copy of <paramref name="data"/> on <paramref name="device"/>.</summary>
    public static Tensor FromArray(Array data, int[] shape, Device? device) => FromArrayCore(data, shape, device);

    /// <summary>A CPU tensor over <paramref name="data"/> itself, without a copy: the caller hands the array over and must not touch it again.</summary>
    internal static Tensor Wrap(Array data, int[] shape)
    {
        if (Shapes.Numel(shape) != data.Length)
            throw new ShapeMismatchException("Wrap", $"Wrap: {data.Length} values do not fill shape {Shapes.Format(shape)}");
        return new Tensor(new HostStorage(data, Device.Cpu), shape);
    }

    private static Tensor FromArrayCore(Array data, int[] shape, Device? device)
    {
        // Checked before the count: two negative sizes multiply to a positive one.
        foreach (int d in shape)
            if (d < 0) throw new ShapeMismatchException("FromArray", $"FromArray: negative dimension {d} in {Shapes.Format(shape)}");
        if (Shapes.Numel(shape) != data.Length)
            throw new ShapeMismatchException("FromArray", $"FromArray: {data.Length} values do not fill shape {Shapes.Format(shape)} ({Shapes.Numel(shape)} elements)");
        return new Tensor(Dev(device).Backend.FromArray((Array)data.Clone()), (int[])shape.Clone());
    }

    private static Tensor RandomCore(RandomKind kind, Shape shape, double a, double b, DType dtype, Generator? gen, Device? device)
    {
        var g = gen ?? Generator.Default;
        var dims = shape.ToArray();
        var backend = Dev(device).Backend;
        // Inside a captured step the draw is recorded with its generator, so that every replay takes
        // the next stream from it, as the eager step would.
        if (backend is CapturingBackend capture) return new Tensor(capture.Random(kind, dtype, Shapes.Numel(dims), g, a, b), dims);
        return new Tensor(backend.Random(kind, dtype, Shapes.Numel(dims), g.Seed, g.NextStream(), a, b), dims);
    }

    /// <summary>Uniform on [low, high).</summary>
    public static Tensor Rand(Shape shape, Generator? generator = null, double low = 0, double high = 1, DType dtype = DType.Float32, Device? device = null)
    {
        // low = high is allowed (a constant, e.g. a random start of radius 0); low > high would silently
        // draw from [high, low).
        if (!(low <= high && double.IsFinite(low) && double.IsFinite(high)))
            throw new ArgumentException($"Rand: the interval [low, high) = [{low}, {high}) must be finite with low ≤ high");
        if (!dtype.IsFloating()) throw new ArgumentException($"Rand: needs a floating dtype, got {dtype.Name()} (Randint draws integers)");
        return RandomCore(RandomKind.Uniform, shape, low, high, dtype, generator, device);
    }

    /// <summary>Normal with the given mean and standard deviation.</summary>
    public static Tensor Randn(Shape shape, Generator? generator = null, double mean = 0, double std = 1, DType dtype = DType.Float32, Device? device = null)
    {
        if (!(std >= 0 && double.IsFinite(std) && double.IsFinite(mean)))
            throw new ArgumentException($"Randn: the mean must be finite and the standard deviation finite and non-negative, got mean {mean}, std {std}");
        if (!dtype.IsFloating()) throw new ArgumentException($"Randn: needs a floating dtype, got {dtype.Name()}");
        return RandomCore(RandomKind.Normal, shape, mean, std, dtype, generator, device);
    }

    /// <summary>Integers uniform on [low, high), int32.</summary>
    public static Tensor Randint(int low, int high, Shape shape, Generator? generator = null, Device? device = null)
    {
        if (high <= low) throw new ArgumentException($"Randint: high ({high}) must be greater than low ({low})");
        return RandomCore(RandomKind.Integer, shape, low, high, DType.Int32, generator, device);
    }

    /// <summary>1 with probability p, else 0.</summary>
    public static Tensor Bernoulli(Shape shape, double p, Generator? generator = null, DType dtype = DType.Float32, Device? device = null)
    {
        if (!(p >= 0 && p <= 1)) throw new ArgumentOutOfRangeException(nameof(p), $"Bernoulli: p must lie in [0, 1], got {p}");
        return RandomCore(RandomKind.Bernoulli, shape, p, 0, dtype, generator, device);
    }

    /// <summary>A random permutation of 0..n-1 (int32): Philox keys sorted, so it too depends only on (seed, stream).</summary>
    public static Tensor RandPerm(int n, Generator? generator = null, Device? device = null)
    {
        var g = generator ?? Generator.Default;
        ulong stream = g.NextStream();
        var keys = new ulong[n];
        var idx = new int[n];
        for (int i = 0; i < n; i++)
        {
            var (a, b, _, _) = Philox.Block(g.Seed, stream, (ulong)i);
            keys[i] = ((ulong)a << 32) | b;
            idx[i] = i;
        }
        Array.Sort(keys, idx);
        return FromArrayCore(idx, [n], device);
    }
}
