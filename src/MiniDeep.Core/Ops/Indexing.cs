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
