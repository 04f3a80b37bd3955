namespace MiniDeep;

// Matrix products. The backend multiplies strided matrices directly, so the transposes in the
// backward rules are free views, never copies.
public sealed partial class Tensor
{
    /// <summary>
    /// Matrix product with NumPy semantics: 1-D operands are promoted to a row (left) or column
    /// (right) and the added dimension removed afterwards; leading batch dimensions broadcast.
    /// </summary>
    public static Tensor MatMul(Tensor a, Tensor b)
    {
        if (a.Rank == 0 || b.Rank == 0)
            throw new ShapeMismatchException("matmul", $"matmul: both operands need at least one dimension, got {a.Shape} and {b.Shape}");
        bool va = a.Rank == 1, vb = b.Rank == 1;
        var a2 = va ? a.Unsqueeze(0) : a;
        var b2 = vb ? b.Unsqueeze(1) : b;
        var y = MatMulCore(a2, b2, a.Shape, b.Shape);
        if (va) y = y.Squeeze(-2);
        if (vb) y = y.Squeeze(-1);
        return y;
    }

    /// <summary>Instance form of <see cref="MatMul(Tensor, Tensor)"/>.</summary>
    public Tensor MatMul(Tensor other) => MatMul(this, other);

    // y = a @ b   da = g @ bᵀ   db = aᵀ @ g   (each summed over broadcast batch dims)
    private static Tensor MatMulCore(Tensor a, Tensor b, Shape origA, Shape origB)
    {
        (a, b) = Promoted("matmul", a, b);
        int m = a.Dims[^2], k = a.Dims[^1], k2 = b.Dims[^2], n = b.Dims[^1];
        if (k != k2)
            throw new ShapeMismatchException("matmul", $"matmul: shapes {origA} and {origB} are not aligned: {k} (dim -1 of the first) != {k2} (dim -2 of the second)");
        int[] batch;
        try { batch = Shapes.Broadcast("matmul", a.Dims[..^2], b.Dims[..^2]); }
        catch (ShapeMismatchException)
        {
            throw new ShapeMismatchException("matmul", $"matmul: the batch dimensions of {origA} and {origB} cannot be broadcast together");
        }
        var la = a.Layout.BroadcastTo([.. batch, m, k]);
        var lb = b.Layout.BroadcastTo([.. batch, k, n]);
        var y = new Tensor(a.Backend.MatMul(new View(a.Storage, la), new View(b.Storage, lb), batch), [.. batch, m, n]);
        return Autograd.Record(y, "matmul", [a, b], g => [
            Autograd.Needs(a) ? MatMul(g, b.mT).SumTo(a.Dims) : null,
            Autograd.Needs(b) ? MatMul(a.mT, g).SumTo(b.Dims) : null]);
    }

    /// <summary>x @ wᵀ + b, the affine map of a Linear layer (w is (out, in)).</summary>
    public static Tensor Linear(Tensor x, Tensor weight, Tensor? bias = null) => LinearCore(x, weight, bias, relu: false);

    /// <summary>Linear(x, w, b).Relu() as one op, with the same values and gradients bit for bit: the
    /// activation runs on the output while it is in cache and its backward reads the mask from the
    /// output. Sequential uses it for a Linear followed by a ReLU when neither has hooks.</summary>
    public static Tensor LinearRelu(Tensor x, Tensor weight, Tensor? bias = null) => LinearCore(x, weight, bias, relu: true);

    private static Tensor LinearCore(Tensor x, Tensor weight, Tensor? bias, bool relu)
    {
        if (weight.Rank != 2)
            throw new ShapeMismatchException("linear", $"linear: weight must be (out, in), got {weight.Shape}");
        if (x.Rank == 0 || x.Dims[^1] != weight.Dims[1])
            throw new ShapeMismatchException("linear", $"linear: input {x.Shape} does not end in the weight's in_features {weight.Dims[1]} (weight {weight.Shape})");
        if (bias is not null && (bias.Rank != 1 || bias.Dims[0] != weight.Dims[0]))
            throw new ShapeMismatchException("linear", $"linear: bias {bias.Shape} does not match out_features {weight.Dims[0]}");
        if (x.Rank >= 2 && x.DType.IsFloating() && weight.DType == x.DType && x.Device == weight.Device
            && (bias is null || (bias.DType == x.DType && bias.Device == x.Device)))
        {
            if (x.Rank == 2) return LinearFused(x, weight, bias, relu);
            // (…, in) as one (rows, in) matrix: one GEMM with the bias in it, and a weight gradient that
            // is one GEMM over every row. As a broadcast MatMul it was a GEMM per leading index, each
            // weight gradient a (…, out, in) tensor summed afterwards, and the bias a separate Add: a
            // Transformer encoder's training step (32 × 32 tokens, width 64) spent 27% of its time there.
            int rows = 1;
            for (int i = 0; i < x.Rank - 1; i++) rows *= x.Dims[i];
            return LinearFused(x.Reshape(rows, x.Dims[^1]), weight, bias, relu).Reshape([.. x.Dims[..^1], weight.Dims[0]]);
        }
        var y = MatMul(x, weight.T);
        if (bias is not null) y += bias;
        return relu ? y.Relu() : y;
    }

    // y = x wᵀ + b   dx = g w   dw = gᵀ x   db = Σ_rows g
    // One node instead of three (transpose, matmul, add): the weight's gradient comes out contiguous in
    // the weight's own (out, in) layout, so accumulating it into .Grad is a plain copy, and the bias
    // rides along in the GEMM. The backward is written with tensor ops, so it is differentiable again.
    // With the ReLU fused, the gradient is first masked where the output is zero (relu's backward).
    private static Tensor LinearFused(Tensor x, Tensor weight, Tensor? bias, bool relu)
    {
        var y = new Tensor(x.Backend.Linear(x.AsView, weight.AsView, bias?.AsView, relu), [x.Dims[0], weight.Dims[0]]);
        Tensor[] inputs = bias is null ? [x, weight] : [x, weight, bias];
        var output = y;
        return Autograd.Record(y, relu ? "linear_relu" : "linear", inputs, g => relu
            ? WithReluMask(g, output, gm => LinearGrads(gm, x, weight, bias))
            : LinearGrads(g, x, weight, bias));
    }

    private static Tensor?[] LinearGrads(Tensor g, Tensor x, Tensor weight, Tensor? bias) => bias is null
        ? [Autograd.Needs(x) ? MatMul(g, weight) : null, Autograd.Needs(weight) ? MatMul(g.mT, x) : null]
        : [Autograd.Needs(x) ? MatMul(g, weight) : null, Autograd.Needs(weight) ? MatMul(g.mT, x) : null,
           Autograd.Needs(bias) ? g.Sum(0) : null];
}
