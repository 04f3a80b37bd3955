using ILGPU;
using ILGPU.Runtime;
using MiniDeep.Gpu.Kernels;

namespace MiniDeep.Gpu;

// Matrix products and the sliding-window ops built on them.
public sealed partial class GpuBackend
{
    /// <summary>
    /// Whether the kernels that share data through group memory (the tiled GEMM, the per-group
    /// reduction) run, or their one-thread-per-output forms. Null (the default) means yes on a GPU
    /// and no on ILGPU's CPU accelerator, which emulates every thread of a group with barriers at a
    /// cost far above the work (tests set it to check both forms; benchmarks to show the progression).
    /// </summary>
    public bool? GroupKernels { get; set; }

    private bool UseGroupKernels => GroupKernels ?? Accelerator.AcceleratorType != AcceleratorType.CPU;

    /// <summary>
    /// The tile of the grouped float32 GEMM: 64 (<see cref="Gemm.Tiled"/>) or 128 (<see cref="Gemm.Tiled128"/>).
    /// Null (the default) takes 128 when the product has at least one 128×128 tile per multiprocessor,
    /// else 64, whose four times as many groups keep a large GPU busy on smaller products.
    /// </summary>
    public int? GemmTile
    {
        get => _gemmTile;
        set => _gemmTile = value is null or Gemm.Tile or Gemm.BigTile ? value
            : throw new ArgumentOutOfRangeException(nameof(value), $"GemmTile: {value}; the tiles are {Gemm.Tile} and {Gemm.BigTile}");
    }
    private int? _gemmTile;

    private int ChooseTile(GemmShape s, int batch) => _gemmTile ??
        ((long)((s.M + Gemm.BigTile - 1) / Gemm.BigTile) * ((s.N + Gemm.BigTile - 1) / Gemm.BigTile) * batch >= Math.Max(1, Accelerator.NumMultiprocessors)
            ? Gemm.BigTile : Gemm.Tile);

    // C (batch × M × N, dense) = A·B with A, B read through strides; bias along n (or m) and ReLU fused.
    private void GemmInto(GpuStorage a, GpuStorage b, GpuStorage? bias, GemmShape s, int batch, GpuStorage y)
    {
        if (s.M == 0 || s.N == 0 || batch == 0) return;
        var biasView = bias ?? y;   // unused when HasBias = 0, but the kernel needs a view of the right type
        if (a.DType == DType.Float32)
        {
            if (!UseGroupKernels) Run(Gemm.Naive<float, F32>, batch * s.M * s.N, a.F32, b.F32, biasView.F32, s, y.F32);
            else
            {
                int tile = ChooseTile(s, batch);
                var grid = new Index3D((s.N + tile - 1) / tile, (s.M + tile - 1) / tile, batch);
                var config = new KernelConfig(grid, new Index3D(Gemm.Threads, Gemm.Threads, 1));
                if (tile == Gemm.BigTile) RunGrouped(Gemm.Tiled128, config, a.F32, b.F32, biasView.F32, s, y.F32);
                else RunGrouped(Gemm.Tiled, config, a.F32, b.F32, biasView.F32, s, y.F32);
            }
        }
        else if (a.DType == DType.Float64) Run(Gemm.Naive<double, F64>, batch * s.M * s.N, a.F64, b.F64, biasView.F64, s, y.F64);
        else throw NotFloating("matmul", a.DType);
    }

    private static int[] BatchStrides(View v, int batchRank)
    {
        // Batch dims of v broadcast to the batch shape: missing leading dims and size-1 dims step by 0.
        int rank = v.Shape.Length, lead = batchRank - (rank - 2);
        var strides = new int[batchRank];
        for (int d = 0; d < batchRank; d++)
        {
            int vd = d - lead;
            strides[d] = vd < 0 || v.Shape[vd] == 1 ? 0 : v.Layout.Strides[vd];
        }
        return strides;
    }

    /// <inheritdoc/>
    public Storage MatMul(View a, View b, int[] batch)
    {
        lock (_gate)
        {
            var sa = Own(a.Storage, "matmul"); var sb = Own(b.Storage, "matmul");
            int ra = a.Shape.Length, rb = b.Shape.Length;
            int m = a.Shape[ra - 2], k = a.Shape[ra - 1], n = b.Shape[rb - 1];
            int count = Shapes.Numel(batch);
            var s = new GemmShape
            {
                M = m, N = n, K = k,
                ARow = a.Layout.Strides[ra - 2], ACol = a.Layout.Strides[ra - 1],
                BRow = b.Layout.Strides[rb - 2], BCol = b.Layout.Strides[rb - 1],
                ABatch = Strided.Of(batch, BatchStrides(a, batch.Length), a.Layout.Offset, "matmul"),
                BBatch = Strided.Of(batch, BatchStrides(b, batch.Length), b.Layout.Offset, "matmul"),
            };
            var y = New(a.DType, count * m * n);
            if (k == 0) { Fill(y, 0); return y; }
            GemmInto(sa, sb, null, s, count, y);
            return y;
        }
    }

    private void Fill(GpuStorage y, double v)
    {
        if (y.DType == DType.Float32) Run(Elementwise.Fill, y.Length, y.F32, (float)v);
        else Run(Elementwise.Fill, y.Length, y.F64, v);
    }

    /// <inheritdoc/>
    public Storage Linear(View x, View w, View? bias, bool relu)
    {
        lock (_gate)
        {
            var sx = Own(x.Storage, "linear"); var sw = Own(w.Storage, "linear");
            var sbias = bias is { } bv ? Own(bv.Storage, "linear") : null;
            int m = x.Shape[0], k = x.Shape[1], n = w.Shape[0];
            // y = x·wᵀ: B[k, n] = w[n, k], so B's row stride is w's column stride and vice versa.
            var s = new GemmShape
            {
                M = m, N = n, K = k,
                ARow = x.Layout.Strides[0], ACol = x.Layout.Strides[1],
                BRow = w.Layout.Strides[1], BCol = w.Layout.Strides[0],
                ABatch = new Strided { Dense = 1, Offset = x.Layout.Offset },
                BBatch = new Strided { Dense = 1, Offset = w.Layout.Offset },
                HasBias = bias is null ? 0 : 1,
                BiasStride = bias is { } b1 ? b1.Layout.Strides[0] : 0,
                BiasOffset = bias is { } b2 ? b2.Layout.Offset : 0,
                Relu = relu ? 1 : 0,
            };
            var y = New(x.DType, m * n);
            if (k == 0)
            {
                // No products: the bias (or 0), through the ReLU.
                Fill(y, 0);
                var yl = Strided.Of(Layout.Contiguous([m, n]));
                if (bias is { } bb)
                {
                    var bl = Strided.Of([m, n], [0, bb.Layout.Strides[0]], bb.Layout.Offset, "linear");
                    if (y.DType == DType.Float32) Run(Elementwise.Axpy<float, F32>, m * n, y.F32, yl, sbias!.F32, bl, 1.0);
                    else Run(Elementwise.Axpy<double, F64>, m * n, y.F64, yl, sbias!.F64, bl, 1.0);
                }
                if (relu && y.DType == DType.Float32) Run(Elementwise.UnaryF32<ReluOp>, m * n, y.F32, yl, y.F32);
                else if (relu) Run(Elementwise.UnaryF64<ReluOp>, m * n, y.F64, yl, y.F64);
                return y;
            }
            GemmInto(sx, sw, sbias, s, 1, y);
            return y;
        }
    }

    // ----- convolution: im2col + GEMM -----

    /// <inheritdoc/>
    public Storage Unfold(View x, WindowGeometry g)
    {
        lock (_gate) return UnfoldCore(Own(x.Storage, "unfold"), x, g);
    }

    private GpuStorage UnfoldCore(GpuStorage s, View x, WindowGeometry g)
    {
        int batch = x.Shape[0], outH = g.OutH, outW = g.OutW;
        int n = batch * g.Channels * g.KernelH * g.KernelW * outH * outW;
        var cols = New(x.DType, n);
        var xl = Strided.Of(x.Layout);
        switch (x.DType)
        {
            case DType.Float32: Run(Windows.Unfold, n, s.F32, xl, g, outH, outW, cols.F32); break;
            case DType.Float64: Run(Windows.Unfold, n, s.F64, xl, g, outH, outW, cols.F64); break;
            default: throw NotFloating("unfold", x.DType);
        }
        return cols;
    }

    /// <inheritdoc/>
    public Storage Fold(View cols, WindowGeometry g)
    {
        lock (_gate) return FoldCore(Own(cols.Storage, "fold"), cols.Layout, cols.Shape[0], g);
    }

    private GpuStorage FoldCore(GpuStorage s, Layout layout, int batch, WindowGeometry g)
    {
        int n = batch * g.Channels * g.Height * g.Width;
        var x = New(s.DType, n);
        var cl = Strided.Of(layout);
        switch (s.DType)
        {
            case DType.Float32: Run(Windows.Fold<float, F32>, n, s.F32, cl, g, g.OutH, g.OutW, x.F32); break;
            case DType.Float64: Run(Windows.Fold<double, F64>, n, s.F64, cl, g, g.OutH, g.OutW, x.F64); break;
            default: throw NotFloating("fold", s.DType);
        }
        return x;
    }

    /// <inheritdoc/>
    public Storage Conv2d(View x, View w, View? bias, WindowGeometry g, bool relu)
    {
        lock (_gate)
        {
            var sx = Own(x.Storage, "conv2d"); var sw = Own(w.Storage, "conv2d");
            var sbias = bias is { } bv ? Own(bv.Storage, "conv2d") : null;
            int batch = x.Shape[0], o = w.Shape[0], rows = g.Channels * g.KernelH * g.KernelW, l = g.OutH * g.OutW;
            var y = New(x.DType, batch * o * l);
            if (y.Length == 0) return y;
            using var cols = UnfoldCore(sx, x, g);
            // y[b] (O × L) = W (O × CKK, every batch) · cols[b] (CKK × L), bias per output channel (row).
            var s = new GemmShape
            {
                M = o, N = l, K = rows,
                ARow = w.Layout.Strides[0], ACol = w.Layout.Strides[3],
                BRow = l, BCol = 1,
                ABatch = Strided.Of([batch], [0], w.Layout.Offset, "conv2d"),
                BBatch = Strided.Of([batch], [rows * l], 0, "conv2d"),
                HasBias = bias is null ? 0 : 1, BiasAlongM = 1,
                BiasStride = bias is { } b1 ? b1.Layout.Strides[0] : 0,
                BiasOffset = bias is { } b2 ? b2.Layout.Offset : 0,
                Relu = relu ? 1 : 0,
            };
            if (!IsDenseWeight(w)) throw new NotSupportedException("conv2d: the GPU backend needs a contiguous weight (call Contiguous() on it)");
            GemmInto(sw, cols, sbias, s, batch, y);
            return y;
        }
    }

    // The GEMMs read the incoming gradient as dense rows from element 0: use it as it is when it already
    // is (the usual case), copy it only when it is a view.
    private static View? DenseOrNull(View v) => v.Layout.IsContiguous && v.Layout.Offset == 0 ? v : null;

    // W (O, C, kh, kw) read as O × (C·kh·kw) needs the inner three dims dense.
    private static bool IsDenseWeight(View w) =>
        w.Layout.Strides[3] == 1 && w.Layout.Strides[2] == w.Shape[3] && w.Layout.Strides[1] == w.Shape[2] * w.Shape[3];

    /// <inheritdoc/>
    public Storage Conv2dInputGrad(View gy, View w, WindowGeometry g)
    {
        lock (_gate)
        {
            var sg = Own(gy.Storage, "conv2d_backward"); var sw = Own(w.Storage, "conv2d_backward");
            if (!IsDenseWeight(w)) throw new NotSupportedException("conv2d_backward: the GPU backend needs a contiguous weight");
            int batch = gy.Shape[0], o = w.Shape[0], rows = g.Channels * g.KernelH * g.KernelW, l = g.OutH * g.OutW;
            using var copied = DenseOrNull(gy) is null ? (GpuStorage)Copy(gy, gy.DType) : null;
            var gyDense = copied ?? sg;
            using var cols = New(gy.DType, batch * rows * l);
            // cols[b] (CKK × L) = Wᵀ (CKK × O) · gy[b] (O × L); then col2im sums the windows.
            var s = new GemmShape
            {
                M = rows, N = l, K = o,
                ARow = 1, ACol = w.Layout.Strides[0],
                BRow = l, BCol = 1,
                ABatch = Strided.Of([batch], [0], w.Layout.Offset, "conv2d_backward"),
                BBatch = Strided.Of([batch], [o * l], 0, "conv2d_backward"),
            };
            if (cols.Length > 0) GemmInto(sw, gyDense, null, s, batch, cols);
            else Fill(cols, 0);
            return FoldCore(cols, Layout.Contiguous([batch, rows, l]), batch, g);
        }
    }

    /// <inheritdoc/>
    public Storage Conv2dWeightGrad(View gy, View x, WindowGeometry g)
    {
        lock (_gate)
        {
            var sg = Own(gy.Storage, "conv2d_backward"); var sx = Own(x.Storage, "conv2d_backward");
            int batch = gy.Shape[0], o = gy.Shape[1], rows = g.Channels * g.KernelH * g.KernelW, l = g.OutH * g.OutW;
            using var copied = DenseOrNull(gy) is null ? (GpuStorage)Copy(gy, gy.DType) : null;
            var gyDense = copied ?? sg;
            using var cols = UnfoldCore(sx, x, g);
            using var perImage = New(gy.DType, batch * o * rows);
            // gw_b (O × CKK) = gy[b] (O × L) · cols[b]ᵀ (L × CKK), then summed over b in order.
            var s = new GemmShape
            {
                M = o, N = rows, K = l,
                ARow = l, ACol = 1,
                BRow = 1, BCol = l,
                ABatch = Strided.Of([batch], [o * l], 0, "conv2d_backward"),
                BBatch = Strided.Of([batch], [rows * l], 0, "conv2d_backward"),
            };
            if (l > 0) GemmInto(gyDense, cols, null, s, batch, perImage);
            else Fill(perImage, 0);
            return Reduce(ReduceKind.Sum, new View(perImage, Layout.Contiguous([batch, o * rows])), [true, false]);
        }
    }

    // ----- pooling -----

    /// <inheritdoc/>
    public (Storage Values, Storage Indices) MaxPool2d(View x, WindowGeometry g)
    {
        lock (_gate)
        {
            var s = Own(x.Storage, "max_pool2d");
            int n = x.Shape[0] * g.Channels * g.OutH * g.OutW;
            var values = New(x.DType, n);
            var indices = New(DType.Int32, n);
            var err = ErrorSlot();
            var xl = Strided.Of(x.Layout);
            switch (x.DType)
            {
                case DType.Float32: Run(Windows.MaxPool<float, F32>, n, s.F32, xl, g, g.OutH, g.OutW, values.F32, indices.I32, err); break;
                case DType.Float64: Run(Windows.MaxPool<double, F64>, n, s.F64, xl, g, g.OutH, g.OutW, values.F64, indices.I32, err); break;
                default: throw NotFloating("max_pool2d", x.DType);
            }
            Check(e => new ArgumentException($"max_pool2d: a window at ({e[1]}, {e[2]}) lies entirely in the padding"));
            return (values, indices);
        }
    }

    /// <inheritdoc/>
    public Storage MaxPool2dBackward(View grad, View indices, WindowGeometry g)
    {
        lock (_gate)
        {
            var sg = Own(grad.Storage, "max_pool2d_backward"); var si = Own(indices.Storage, "max_pool2d_backward");
            int n = grad.Shape[0] * g.Channels * g.Height * g.Width;
            var dx = New(grad.DType, n);
            var (gl, il) = (Strided.Of(grad.Layout), Strided.Of(indices.Layout));
            switch (grad.DType)
            {
                case DType.Float32: Run(Windows.MaxPoolBackward<float, F32>, n, sg.F32, gl, si.I32, il, g, g.OutH, g.OutW, dx.F32); break;
                case DType.Float64: Run(Windows.MaxPoolBackward<double, F64>, n, sg.F64, gl, si.I32, il, g, g.OutH, g.OutW, dx.F64); break;
                default: throw NotFloating("max_pool2d_backward", grad.DType);
            }
            return dx;
        }
    }
}
