namespace MiniDeep;

// Reductions over any set of axes, with keepDim. Sum, max and min are backend kernels; mean,
// variance, standard deviation and log-sum-exp are composites and get their gradients for free.
public sealed partial class Tensor
{
    private bool[] AxisFlags(string op, int[]? axes)
    {
        var flags = new bool[Rank];
        if (axes is null) { Array.Fill(flags, true); return flags; }
        if (Rank == 0)
        {
            // A scalar has no axes; like NumPy we accept axis 0 / -1 on it and reduce nothing.
            foreach (var a in axes) Shapes.NormalizeAxis(a, 0, op);
            return flags;
        }
        foreach (var a in axes)
        {
            int ax = Shapes.NormalizeAxis(a, Rank, op);
            if (flags[ax]) throw new ArgumentException($"{op}: axis {a} is repeated");
            flags[ax] = true;
        }
        return flags;
    }

    private static int[] KeptShape(int[] dims, bool[] flags)
    {
        var kept = new int[dims.Length];
        for (int i = 0; i < dims.Length; i++) kept[i] = flags[i] ? 1 : dims[i];
        return kept;
    }

    private static int[] DroppedShape(int[] dims, bool[] flags)
    {
        int n = 0;
        foreach (var f in flags) if (!f) n++;
        var dropped = new int[n];
        for (int i = 0, j = 0; i < dims.Length; i++) if (!flags[i]) dropped[j++] = dims[i];
        return dropped;
    }

    private Tensor ReduceKernel(string op, ReduceKind kind, bool[] flags, bool keepDim)
    {
        if (!DType.IsFloating())
            throw new InvalidOperationException($"{op}: needs a floating tensor, got {DType.Name()}; convert with .Float()");
        if (kind != ReduceKind.Sum)
            for (int i = 0; i < Rank; i++)
                if (flags[i] && Dims[i] == 0)
                    throw new ArgumentException($"{op}: cannot reduce over axis {i} of size 0 (shape {Shape}): the result has no identity");
        var kept = KeptShape(Dims, flags);
        var y = new Tensor(Backend.Reduce(kind, AsView, flags), kept);
        return keepDim ? y : y.Detach().Reshape(DroppedShape(Dims, flags));
    }

    /// <summary>Sum over <paramref name="axes"/> (all when null).</summary>
    // y = Σ x   dx = expand(g)
    public Tensor Sum(int[]? axes = null, bool keepDim = false)
    {
        var flags = AxisFlags("sum", axes);
        var y = ReduceKernel("sum", ReduceKind.Sum, flags, keepDim);
        var inShape = Dims;
        var kept = KeptShape(Dims, flags);
        return Autograd.Record(y, "sum", [this], g => [g.Reshape(kept).Expand(inShape)]);
    }

    /// <summary>Sum over one axis.</summary>
    public Tensor Sum(int axis, bool keepDim = false) => Sum([axis], keepDim);

    /// <summary>Mean over <paramref name="axes"/> (all when null).</summary>
    // y = Σ x / n   dx = expand(g) / n
    public Tensor Mean(int[]? axes = null, bool keepDim = false)
    {
        var flags = AxisFlags("mean", axes);
        int n = 1;
        for (int i = 0; i < Rank; i++) if (flags[i]) n *= Dims[i];
        return Sum(axes, keepDim) / n;
    }

    /// <summary>Mean over one axis.</summary>
    public Tensor Mean(int axis, bool keepDim = false) => Mean([axis], keepDim);

    /// <summary>Largest value over <paramref name="axes"/> (all when null). At ties the gradient is shared equally.</summary>
    // y = max x   dx = expand(g) * [x = y] / #{x = y}
    public Tensor Max(int[]? axes = null, bool keepDim = false) => Extreme("max", ReduceKind.Max, axes, keepDim);

    /// <summary>Largest value over one axis.</summary>
    public Tensor Max(int axis, bool keepDim = false) => Max([axis], keepDim);

    /// <summary>Smallest value over <paramref name="axes"/> (all when null). At ties the gradient is shared equally.</summary>
    // y = min x   dx = expand(g) * [x = y] / #{x = y}
    public Tensor Min(int[]? axes = null, bool keepDim = false) => Extreme("min", ReduceKind.Min, axes, keepDim);

    /// <summary>Smallest value over one axis.</summary>
    public Tensor Min(int axis, bool keepDim = false) => Min([axis], keepDim);

    private Tensor Extreme(string op, ReduceKind kind, int[]? axes, bool keepDim)
    {
        var flags = AxisFlags(op, axes);
        var y = ReduceKernel(op, kind, flags, keepDim);
        var x = this;
        var kept = KeptShape(Dims, flags);
        return Autograd.Record(y, op, [this], g =>
        {
            var yk = y.Detach().Reshape(kept);
            var mask = (x.Detach() == yk).To(g.DType);
            var count = mask.Sum(axes, keepDim: true);
            return [g.Reshape(kept) * mask / count];
        });
    }

    /// <summary>Variance with Bessel's correction by default (correction = 1, as torch.var).</summary>
    // y = Σ (x - mean)² / (n - c)   (composite)
    public Tensor Var(int[]? axes = null, bool keepDim = false, int correction = 1)
    {
        var flags = AxisFlags("var", axes);
        int n = 1;
        for (int i = 0; i < Rank; i++) if (flags[i]) n *= Dims[i];
        var d = this - Mean(axes, keepDim: true);
        return (d * d).Sum(axes, keepDim) / Math.Max(n - correction, 0);
    }

    /// <summary>Variance over one axis.</summary>
    public Tensor Var(int axis, bool keepDim = false, int correction = 1) => Var([axis], keepDim, correction);

    /// <summary>Standard deviation (square root of <see cref="Var(int[], bool, int)"/>).</summary>
    public Tensor Std(int[]? axes = null, bool keepDim = false, int correction = 1) => Var(axes, keepDim, correction).Sqrt();

    /// <summary>Standard deviation over one axis.</summary>
    public Tensor Std(int axis, bool keepDim = false, int correction = 1) => Std([axis], keepDim, correction);

    /// <summary>log Σ exp(x), stable for large x: the max m is subtracted first (and treated as a
    /// constant, which is exact because m cancels in the gradient).</summary>
    // y = m + log Σ exp(x - m)   dx = g * softmax(x)
    public Tensor LogSumExp(int[]? axes = null, bool keepDim = false)
    {
        var flags = AxisFlags("logsumexp", axes);
        if (Enumerable.Range(0, Rank).Any(d => flags[d] && Dims[d] == 0))
        {
            // log of an empty sum: -inf, as in PyTorch.
            var kept = KeptShape(Dims, flags);
            return Full(keepDim ? kept : DroppedShape(Dims, flags), double.NegativeInfinity, DType, Device);
        }
        var m = Max(axes, keepDim: true).Detach();
        // An all -inf (or +inf) slice has a non-finite max; shifting by it would give NaN.
        m = Where(m.IsFinite(), m, ScalarLike(m, 0));
        var s = (this - m).Exp().Sum(axes, keepDim: true).Log() + m;
        return keepDim ? s : s.Reshape(DroppedShape(Dims, flags));
    }

    /// <summary>log Σ exp over one axis.</summary>
    public Tensor LogSumExp(int axis, bool keepDim = false) => LogSumExp([axis], keepDim);

    /// <summary>True where the element is finite.</summary>
    public Tensor IsFinite() => LogicalAnd(this == Detach(), Abs() < double.PositiveInfinity);

    /// <summary>Index of the largest element along <paramref name="axis"/> (first on ties), int32. Over all elements when null.</summary>
    public Tensor ArgMax(int? axis = null, bool keepDim = false) => ArgExtreme(axis, keepDim, max: true);

    /// <summary>Index of the smallest element along <paramref name="axis"/> (first on ties), int32.</summary>
    public Tensor ArgMin(int? axis = null, bool keepDim = false) => ArgExtreme(axis, keepDim, max: false);

    private Tensor ArgExtreme(int? axis, bool keepDim, bool max)
    {
        string op = max ? "argmax" : "argmin";
        if (!DType.IsFloating() && DType != DType.Int32)
            throw new InvalidOperationException($"{op}: needs a numeric tensor, got {DType.Name()}");
        var x = axis is null ? Detach().Reshape(-1) : Detach();
        int ax = axis is null ? 0 : Shapes.NormalizeAxis(axis.Value, Rank, op);
        if (x.Rank == 0) x = x.Reshape(1);
        if (x.Dims[ax] == 0) throw new ArgumentException($"{op}: axis {ax} has size 0 (shape {Shape})");
        var xf = x.DType.IsFloating() ? x : x.To(DType.Float64);
        var kept = (int[])xf.Dims.Clone();
        kept[ax] = 1;
        var y = new Tensor(Backend.ArgReduce(xf.AsView, ax, max), kept);
        if (axis is null) return keepDim ? y.Reshape(Enumerable.Repeat(1, Rank).ToArray()) : y.Reshape([]);
        return keepDim ? y : y.Squeeze(ax);
    }
}
