namespace MiniDeep;

public sealed partial class Tensor
{
    /// <summary>
    /// Scaled dot-product attention (Vaswani et al. 2017), as PyTorch's
    /// <c>F.scaled_dot_product_attention</c>: softmax(q·kᵀ·scale + mask)·v, with q (…, L, E), k (…, S, E)
    /// and v (…, S, Ev) giving (…, L, Ev); the leading dimensions broadcast. The scale defaults to 1/√E.
    /// A bool <paramref name="attnMask"/> says which keys each query may attend to (true: it takes part,
    /// PyTorch's convention for this function; <see cref="Nn.MultiheadAttention"/> takes the opposite,
    /// as PyTorch's module does); a float mask is added to the scores (−∞ removes a key). Either
    /// broadcasts to (…, L, S). <paramref name="isCausal"/> lets query i attend to keys 0…i only.
    /// With <paramref name="dropoutP"/> &gt; 0 the attention weights go through dropout (always, as in
    /// PyTorch: pass 0 in evaluation). A query with no key to attend to gets NaN, as in PyTorch's
    /// reference path: softmax over nothing is undefined.
    /// </summary>
    /// <remarks>
    /// A composite of MatMul, Softmax and masking, so its gradients (and second derivatives) are those
    /// of the ops it is made of: with P = softmax(S), S = q·kᵀ·scale, dV = Pᵀ·g, dP = g·vᵀ,
    /// dS = P ⊙ (dP − rowsum(dP ⊙ P)), dq = dS·k·scale, dk = dSᵀ·q·scale.
    /// </remarks>
    public static Tensor ScaledDotProductAttention(Tensor query, Tensor key, Tensor value, Tensor? attnMask = null, double dropoutP = 0,
        bool isCausal = false, double? scale = null, Generator? generator = null) =>
        Attention(query, key, value, attnMask, dropoutP, isCausal, scale, generator, "scaled_dot_product_attention").Output;

    // The attention and its weights (after dropout), for ScaledDotProductAttention and MultiheadAttention.
    internal static (Tensor Output, Tensor Weights) Attention(Tensor query, Tensor key, Tensor value, Tensor? attnMask, double dropoutP,
        bool isCausal, double? scale, Generator? generator, string op)
    {
        ArgumentNullException.ThrowIfNull(query);
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(value);
        if (query.Rank < 2 || key.Rank < 2 || value.Rank < 2)
            throw new ShapeMismatchException(op, $"{op}: query {query.Shape}, key {key.Shape} and value {value.Shape} must each have at least 2 dimensions (…, sequence, features)");
        if (query.Size(-1) != key.Size(-1))
            throw new ShapeMismatchException(op, $"{op}: query {query.Shape} and key {key.Shape} must have the same number of features (last dimension)");
        if (key.Size(-2) != value.Size(-2))
            throw new ShapeMismatchException(op, $"{op}: key {key.Shape} and value {value.Shape} must have the same sequence length (second to last dimension)");
        if (query.DType != key.DType || query.DType != value.DType)
            throw new ArgumentException($"{op}: query, key and value must share a dtype, got {query.DType}, {key.DType} and {value.DType}");
        if (!(dropoutP >= 0 && dropoutP <= 1)) throw new ArgumentOutOfRangeException(nameof(dropoutP), $"{op}: dropout_p must lie in [0, 1], got {dropoutP}");
        if (isCausal && attnMask is not null)
            throw new ArgumentException($"{op}: give either a mask or is_causal, not both (the causal mask would silently replace {attnMask.Shape})");
        int l = query.Size(-2), s = key.Size(-2);
        double sc = scale ?? 1 / Math.Sqrt(query.Size(-1));
        var scores = MatMul(query, key.Transpose(-2, -1)) * sc;
        if (isCausal) attnMask = CausalMask(l, s, query.Device);
        if (attnMask is not null)
        {
            int[]? broadcast;
            try { broadcast = Shapes.Broadcast(op, scores.Shape.ToArray(), attnMask.Shape.ToArray()); }
            catch (ShapeMismatchException) { broadcast = null; }
            if (broadcast is null || !Shapes.SameShape(broadcast, scores.Shape.ToArray()))
                throw new ShapeMismatchException(op, $"{op}: mask {attnMask.Shape} must broadcast to the scores' shape {scores.Shape} (…, L, S)");
            scores = attnMask.DType == DType.Bool
                ? scores.MaskedFill(attnMask.LogicalNot(), double.NegativeInfinity)
                : scores + attnMask;
        }
        var weights = scores.Softmax(-1);
        if (dropoutP > 0) weights = weights.Dropout(dropoutP, training: true, generator);
        return (MatMul(weights, value), weights);
    }

    // 0 where query i may attend to key j (j ≤ i), −∞ elsewhere: the causal mask as scores add it.
    internal static Tensor CausalAdditiveMask(int l, int s, DType dtype, Device device)
    {
        using (Autograd.NoGrad())
            return Where(CausalMask(l, s, device), Scalar(0, dtype, device), Scalar(double.NegativeInfinity, dtype, device));
    }

    // True where query i may attend to key j: j ≤ i (PyTorch's tril of an L × S block of ones).
    internal static Tensor CausalMask(int l, int s, Device device)
    {
        using (Autograd.NoGrad())
            return Ge(Arange(l, DType.Float32, device).Unsqueeze(1), Arange(s, DType.Float32, device).Unsqueeze(0));
    }
}
