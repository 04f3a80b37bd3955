namespace MiniDeep;

// Gather and its adjoint scatter-add: the two index primitives. Index-select, embedding, one-hot
// lookups and the cross-entropy target pick are built on them.
public sealed partial class Tensor
{
    private static void CheckIndex(string op, Tensor index)
    {
        if (index.DType != DType.Int32)
            throw new InvalidOperationException($"{op}: indices must be int32, got {index.DType.Name()}");
    }

    /// <summary>out[i][j][k] = x[i][index[i][j][k]][k] for axis 1 (and likewise for any axis). index has the output's shape.</summary>
    public Tensor Gather(int axis, Tensor index) => Gather(axis, index, "gather");

    // y = gather(x, axis, idx)   dx = scatter_add(zeros(shape(x)), axis, idx, g)
    // op is the name errors give: index_select, embedding and nll are gathers underneath, and their callers
    // should read the op they called, whichever check (here or the backend's range check) fires.
    internal Tensor Gather(int axis, Tensor index, string op)
    {
        CheckIndex(op, index);
        int ax = Shapes.NormalizeAxis(axis, Rank, op);
        if (index.Rank != Rank)
            throw new ShapeMismatchException(op, $"{op}: index {index.Shape} must have the same rank as the input {Shape}");
        for (int d = 0; d < Rank; d++)
            if (d != ax && index.Dims[d] > Dims[d])
                throw new ShapeMismatchException(op, $"{op}: index {index.Shape} is larger than input {Shape} in dimension {d}");
        if (index.Device != Device) throw DeviceMismatch(op, this, index);
        var y = new Tensor(Backend.Gather(AsView, ax, index.AsView, op), (int[])index.Dims.Clone());
        var inShape = Dims;
        return Autograd.Record(y, "gather", [this], g => [ScatterAdd(inShape, ax, index, g)]);
    }

    /// <summary>zeros(shape), then out[..index[i]..] += src[i] along <paramref name="axis"/>.</summary>
    // y = scatter_add(0, axis, idx, src)   dsrc = gather(g, axis, idx)
    public static Tensor ScatterAdd(int[] shape, int axis, Tensor index, Tensor src)
    {
        CheckIndex("scatter_add", index);
        int ax = Shapes.NormalizeAxis(axis, shape.Length, "scatter_add");
        if (index.Shape != src.Shape)
            throw new ShapeMismatchException("scatter_add", $"scatter_add: index {index.Shape} and source {src.Shape} must have the same shape");
        if (index.Rank != shape.Length)
            throw new ShapeMismatchException("scatter_add", $"scatter_add: index {index.Shape} must have the rank of the output {Shapes.Format(shape)}");
        if (!src.DType.IsFloating()) throw new InvalidOperationException($"scatter_add: source must be floating, got {src.DType.Name()}");
        var y = new Tensor(src.Backend.ScatterAdd(shape, ax, index.AsView, src.AsView), (int[])shape.Clone());
        return Autograd.Record(y, "scatter_add", [src], g => [g.Gather(ax, index)]);
    }

    /// <summary>
    /// The elements along <paramref name="axis"/> in ascending (or descending) order, and where each came
    /// from (int32), as PyTorch's torch.sort(x, dim, descending, stable=True): equal elements keep their
    /// order, and NaN counts as larger than every number (last ascending, first descending). The values
    /// are a <see cref="Gather(int, Tensor)"/> of x at the indices, so their gradient flows back to the places they
    /// came from. The order is found on the host: a tensor on another device is copied there for it.
    /// </summary>
    public (Tensor Values, Tensor Indices) Sort(int axis = -1, bool descending = false) => Ordered("sort", axis, null, descending);

    /// <summary>The <paramref name="k"/> largest (or smallest) elements along <paramref name="axis"/>, in
    /// order, and their indices (int32), as PyTorch's torch.topk (ties: the earlier element first; NaN the
    /// largest). Top-5 accuracy is whether the target is among TopK(5).Indices.</summary>
    public (Tensor Values, Tensor Indices) TopK(int k, int axis = -1, bool largest = true) => Ordered("topk", axis, k, largest);

    /// <summary>The indices that sort the elements along <paramref name="axis"/> (int32); see <see cref="Sort(int, bool)"/>.</summary>
    public Tensor ArgSort(int axis = -1, bool descending = false) => Ordered("argsort", axis, null, descending).Indices;

    // y = gather(x, axis, order(x))   dx = scatter_add(zeros(shape(x)), axis, order(x), g)
    private (Tensor Values, Tensor Indices) Ordered(string op, int axis, int? k, bool descending)
    {
        if (!DType.IsFloating() && DType != DType.Int32)
            throw new InvalidOperationException($"{op}: needs a numeric tensor, got {DType.Name()}");
        // A replay reruns kernels, not this host-side sort: it would gather in the order of the capture.
        if (StepCapture.IsCapturing)
            throw new NotSupportedException($"{op}: the order is found on the host, so a captured step would replay the order of its capture whatever the data; sort outside StepCapture.Capture");
        if (Rank == 0)
        {
            if (k is not null && k != 0 && k != 1) throw new ArgumentOutOfRangeException(nameof(k), $"{op}: k = {k} for a scalar, which has one element");
            var (v, i) = Reshape(1).Ordered(op, 0, k, descending);
            return k == 0 ? (v, i) : (v.Reshape([]), i.Reshape([]));
        }
        int ax = Shapes.NormalizeAxis(axis, Rank, op);
        int n = Dims[ax], take = k ?? n;
        if (take < 0 || take > n)
            throw new ArgumentOutOfRangeException(nameof(k), $"{op}: k = {take} for axis {ax} of size {n} (shape {Shape})");
        // Rows along the last axis, on the host, in float64 (exact for every int32 and float32).
        var rows = Detach().Transpose(ax, Rank - 1).Contiguous().ToDoubleArray();
        int count = n == 0 ? 0 : rows.Length / n;
        var order = new int[count * take];
        var perm = new int[n];
        for (int r = 0; r < count; r++)
        {
            int start = r * n;
            for (int j = 0; j < n; j++) perm[j] = j;
            // A total order: by value (NaN above everything), then by position, so the sort is stable and
            // the same on every run whatever algorithm Array.Sort picks.
            Array.Sort(perm, (a, b) =>
            {
                int c = CompareNaNLargest(rows[start + a], rows[start + b]);
                return c != 0 ? (descending ? -c : c) : a.CompareTo(b);
            });
            Array.Copy(perm, 0, order, r * take, take);
        }
        var shape = (int[])Dims.Clone();
        (shape[ax], shape[Rank - 1]) = (shape[Rank - 1], shape[ax]);
        shape[Rank - 1] = take;
        var indices = FromArray(order, shape, null).Transpose(ax, Rank - 1).Contiguous().To(Device);
        return (Gather(ax, indices, op), indices);
    }

    private static int CompareNaNLargest(double a, double b) =>
        double.IsNaN(a) ? (double.IsNaN(b) ? 0 : 1) : double.IsNaN(b) ? -1 : a < b ? -1 : a > b ? 1 : 0;

    /// <summary>Picks entries of a 1-D int32 index along <paramref name="axis"/>: out.shape[axis] = index.length.</summary>
    public Tensor IndexSelect(int axis, Tensor index) => IndexSelect(axis, index, "index_select");

    private Tensor IndexSelect(int axis, Tensor index, string op)
    {
        CheckIndex(op, index);
        if (index.Rank != 1) throw new ShapeMismatchException(op, $"{op}: index must be 1-D, got {index.Shape}");
        int ax = Shapes.NormalizeAxis(axis, Rank, op);
        var viewShape = Enumerable.Repeat(1, Rank).ToArray();
        viewShape[ax] = index.Numel;
        var outShape = (int[])Dims.Clone();
        outShape[ax] = index.Numel;
        // A stride-0 expansion of the index: no copy of the indices per output element.
        return Gather(ax, index.Reshape(viewShape).Expand(outShape), op);
    }

    /// <summary>Rows of <paramref name="weight"/> (V, D) looked up by int32 <paramref name="indices"/> of any shape: result indices.shape + (D).</summary>
    public static Tensor Embedding(Tensor indices, Tensor weight)
    {
        if (weight.Rank != 2) throw new ShapeMismatchException("embedding", $"embedding: weight must be (num_embeddings, dim), got {weight.Shape}");
        CheckIndex("embedding", indices);
        // An id outside the table is reported where the ids are read: "embedding: index 7 is out of range for axis 0 of size 5".
        return weight.IndexSelect(0, indices.Reshape(-1), "embedding").Reshape([.. indices.Dims, weight.Dims[1]]);
    }

    /// <summary>One-hot encoding of int32 class indices: shape indices.shape + (numClasses).</summary>
    public static Tensor OneHot(Tensor indices, int numClasses, DType dtype = DType.Float32)
    {
        CheckIndex("one_hot", indices);
        var classes = Arange(numClasses, DType.Int32, indices.Device);
        var idx = indices.Detach().Unsqueeze(-1);
        var bad = LogicalOr(idx < 0, idx >= numClasses);
        if (bad.Any())
            throw new ArgumentOutOfRangeException(nameof(indices), $"one_hot: indices must lie in [0, {numClasses}); found {indices.To(DType.Float64).Max().Item()} / {indices.To(DType.Float64).Min().Item()}");
        return (idx == classes).To(dtype);
    }
}
