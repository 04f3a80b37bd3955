namespace MiniDeep;

/// <summary>A storage seen through a layout: what a kernel reads.</summary>
public readonly record struct View(Storage Storage, Layout Layout)
{
    /// <summary>Element type.</summary>
    public DType DType => Storage.DType;
    /// <summary>Dimension sizes.</summary>
    public int[] Shape => Layout.Shape;
}

/// <summary>Reductions a backend provides. Mean, variance and log-sum-exp are composites built on these.</summary>
public enum ReduceKind
{
    /// <summary>Sum of elements.</summary>
    Sum,
    /// <summary>Largest element (NaN wins).</summary>
    Max,
    /// <summary>Smallest element (NaN wins).</summary>
    Min,
}

/// <summary>Distributions for <see cref="IBackend.Random"/>.</summary>
public enum RandomKind
{
    /// <summary>Uniform on [a, b).</summary>
    Uniform,
    /// <summary>Normal with mean a and standard deviation b.</summary>
    Normal,
    /// <summary>Integers uniform on [a, b).</summary>
    Integer,
    /// <summary>1 with probability a, else 0.</summary>
    Bernoulli,
}

/// <summary>Geometry of a 2-D sliding window (im2col), shared by convolution and pooling.</summary>
public readonly record struct WindowGeometry(
    int Channels, int Height, int Width,
    int KernelH, int KernelW,
    int StrideH, int StrideW,
    int PadH, int PadW,
    int DilationH, int DilationW)
{
    /// <summary>Output height (0 when the window does not fit).</summary>
    public int OutH => OutSize(Height, PadH, DilationH, KernelH, StrideH);
    /// <summary>Output width (0 when the window does not fit).</summary>
    public int OutW => OutSize(Width, PadW, DilationW, KernelW, StrideW);

    // floor((n + 2p - d(k-1) - 1) / s) + 1; C#'s division truncates toward zero, so a window that
    // does not fit (negative numerator) must be caught before dividing.
    private static int OutSize(int n, int pad, int dilation, int kernel, int stride)
    {
        int span = n + 2 * pad - dilation * (kernel - 1) - 1;
        return span < 0 ? 0 : span / stride + 1;
    }
}

/// <summary>
/// The narrow set of kernels every device implements. Backends never see gradients: autograd sits
/// above them and writes every backward rule with tensor ops, which call back into these kernels.
/// Inputs are views with any strides (broadcast dims have stride 0); outputs are new contiguous
/// storages unless the method says otherwise.
/// </summary>
public interface IBackend
{
    /// <summary>The device this backend computes on.</summary>
    Device Device { get; }

    /// <summary>A new storage holding a copy of a host array (float[], double[], int[] or bool[]).</summary>
    Storage FromArray(Array data);

    /// <summary>The elements of a view, row-major, as a new host array of the view's dtype.</summary>
    Array ToArray(View x);

    /// <summary>A new contiguous storage of <paramref name="length"/> elements all equal to <paramref name="value"/>.</summary>
    Storage Full(DType dtype, int length, double value);

    /// <summary>Row-major copy of a view into a new contiguous storage, converting to <paramref name="dtype"/>.</summary>
    Storage Copy(View x, DType dtype);

    /// <summary>Writes <paramref name="src"/> (same shape as <paramref name="dstLayout"/>) into <paramref name="dst"/> in place.</summary>
    void CopyInto(View src, Storage dst, Layout dstLayout);

    /// <summary>y = op(x) for each element (floating dtypes).</summary>
    Storage Unary<TOp>(View x) where TOp : IUnaryOp;

    /// <summary>c = op(a, b); both views are already broadcast to <paramref name="shape"/> and share a dtype.</summary>
    Storage Binary<TOp>(View a, View b, int[] shape) where TOp : IBinaryOp;

    /// <summary>Bool result of op(a, b); views broadcast to <paramref name="shape"/>, same dtype.</summary>
    Storage Compare<TOp>(View a, View b, int[] shape) where TOp : ICompareOp;

    /// <summary>cond ? a : b; views broadcast to <paramref name="shape"/>.</summary>
    Storage Where(View cond, View a, View b, int[] shape);

    /// <summary>Reduces the axes whose flag is set; the result keeps them as size 1.</summary>
    Storage Reduce(ReduceKind kind, View x, bool[] reduceAxes);

    /// <summary>Index (int32) of the largest (or smallest) element along <paramref name="axis"/>, first on ties; the axis is kept as size 1.</summary>
    Storage ArgReduce(View x, int axis, bool max);

    /// <summary>Batched matrix product: a is (..., M, K), b is (..., K, N), batch dims already broadcast to <paramref name="batch"/>.</summary>
    Storage MatMul(View a, View b, int[] batch);

    /// <summary>The affine map of a linear layer: x is (M, K), w is (N, K), bias (N) or null; result (M, N) = x·wᵀ + bias.
    /// One kernel, so the bias costs no extra pass and wᵀ is never materialized. With <paramref name="relu"/>
    /// the result is max(·, 0) (NaN stays NaN), applied while the output is still in cache.</summary>
    Storage Linear(View x, View w, View? bias, bool relu);

    /// <summary>Convolution (cross-correlation, groups = 1): x (N, C, H, W), w (O, C, kh, kw), bias (O) or
    /// null; the result is (N, O, outH, outW). <paramref name="g"/> describes x's windows. With
    /// <paramref name="relu"/> the result is max(·, 0) (NaN stays NaN).</summary>
    Storage Conv2d(View x, View w, View? bias, WindowGeometry g, bool relu);

    /// <summary>The adjoint of <see cref="Conv2d"/> in x: gy (N, O, outH, outW) and w (O, C, kh, kw) to (N, C, H, W).</summary>
    Storage Conv2dInputGrad(View gy, View w, WindowGeometry g);

    /// <summary>The adjoint of <see cref="Conv2d"/> in w: gy (N, O, outH, outW) and x (N, C, H, W) to (O, C, kh, kw).</summary>
    Storage Conv2dWeightGrad(View gy, View x, WindowGeometry g);

    /// <summary>im2col: x is (B, C, H, W); result is (B, C*kh*kw, outH*outW), zero outside the image.</summary>
    Storage Unfold(View x, WindowGeometry g);

    /// <summary>col2im, the adjoint of <see cref="Unfold"/>: cols (B, C*kh*kw, outH*outW) summed into (B, C, H, W).</summary>
    Storage Fold(View cols, WindowGeometry g);

    /// <summary>Max pooling: x (B, C, H, W) to the window maxima (B, C, outH, outW), and for every window
    /// the flat index i·W + j of its maximum inside the image (int32, (B, C, outH·outW)). Padding never
    /// wins; the first maximum in scan order wins ties; a NaN wins.</summary>
    (Storage Values, Storage Indices) MaxPool2d(View x, WindowGeometry g);

    /// <summary>The adjoint of <see cref="MaxPool2d"/> in x: grad (B, C, outH, outW) added at each window's
    /// maximum (indices as <see cref="MaxPool2d"/> returns them), zero elsewhere; result (B, C, H, W).</summary>
    Storage MaxPool2dBackward(View grad, View indices, WindowGeometry g);

    /// <summary>out[i] = x[i with axis coordinate replaced by index[i]]; index (int32) has the output's shape.
    /// An index out of range throws <see cref="IndexOutOfRangeException"/> naming <paramref name="op"/>, the op
    /// the caller called (index_select, embedding and nll are gathers underneath).</summary>
    Storage Gather(View x, int axis, View index, string op = "gather");

    /// <summary>out = zeros(shape); out[i with axis coordinate index[i]] += src[i]. Adjoint of <see cref="Gather"/>.</summary>
    Storage ScatterAdd(int[] shape, int axis, View index, View src);

    /// <summary>Counter-based random numbers: element i is a function of (seed, stream, i) only.</summary>
    Storage Random(RandomKind kind, DType dtype, int length, ulong seed, ulong stream, double a, double b);

    /// <summary>a ← a ∘ b in place (b broadcast to a's shape): optimizers update their state without temporaries.</summary>
    void BinaryInPlace<TOp>(View a, View b) where TOp : IBinaryOp;

    /// <summary>y ← y + α·x in place (x broadcast to y's shape).</summary>
    void Axpy(View y, double alpha, View x);

    /// <summary>One Adam update of one parameter in a single pass over p, grad and the two moments
    /// (all the same shape); see <see cref="AdamHyper"/>.</summary>
    void AdamStep(View p, View grad, View m, View v, AdamHyper h);

    /// <summary>One SGD-with-momentum update of one parameter in a single pass over p, grad and the
    /// momentum buffer (all the same shape); see <see cref="SgdHyper"/>.</summary>
    void SgdStep(View p, View grad, View momentum, SgdHyper h);

    /// <summary>Layer normalization of each row of x, read as (rows, cols) in its own element order:
    /// y = (x − μ)·r·w + b with μ the row's mean, r = 1/√(σ² + ε) and σ² its biased variance; w and b
    /// (cols elements, optional) scale and shift. Stats (rows, 2) receives μ and r of each row.</summary>
    (Storage Y, Storage Stats) LayerNormRows(View x, View? weight, View? bias, int cols, double eps);

    /// <summary>The input gradient of <see cref="LayerNormRows"/>: with x̂ = (x − μ)·r and ĝ = grad·w,
    /// dx = r·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)) per row; GXhat receives grad·x̂, whose column sums are the
    /// weight's gradient. x, grad (rows, cols); stats as LayerNormRows returned them.</summary>
    (Storage Dx, Storage GXhat) LayerNormRowsBackward(View x, View? weight, View stats, View grad, int cols);

    /// <summary>Per-row cross-entropy of logits (N, C) against int32 targets (N), computed in the
    /// max-shifted frame so that huge logits stay exact: log Σ exp(x - m) - (x_t - m).</summary>
    Storage CrossEntropyRows(View logits, View targets);

    /// <summary>The gradient of <see cref="CrossEntropyRows"/>: (softmax(logits) − onehot(targets)) · grad[row],
    /// logits (N, C), targets int32 (N), grad (N); result (N, C).</summary>
    Storage CrossEntropyRowsBackward(View logits, View targets, View grad);
}

/// <summary>
/// The scalars of one Adam step: g ← grad + λp (coupled) or p ← p(1 - lr·λ) (decoupled); m ← β₁m + (1-β₁)g;
/// v ← β₂v + (1-β₂)g²; p ← p - (lr / c₁) · m / (√(v / c₂) + ε), with c₁ = 1 - β₁ᵗ and c₂ = 1 - β₂ᵗ.
/// </summary>
public readonly record struct AdamHyper(double Lr, double Beta1, double Beta2, double Eps, double WeightDecay, bool Decoupled, double C1, double C2);

/// <summary>
/// The scalars of one SGD step with momentum (PyTorch's formulation, no dampening): d ← grad + λp;
/// v ← μv + d; p ← p - lr · (d + μv) with Nesterov, p - lr · v without.
/// </summary>
public readonly record struct SgdHyper(double Lr, double Momentum, double WeightDecay, bool Nesterov);
