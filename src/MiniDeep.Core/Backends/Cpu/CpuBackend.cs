using System.Numerics;
using System.Numerics.Tensors;

namespace MiniDeep.Cpu;

/// <summary>
/// The SIMD CPU backend. Elementwise ops and reductions run TensorPrimitives over contiguous runs;
/// matrix products run our packed GEMM (Gemm.cs); large ops are split over cores in chunks that do
/// not depend on the thread count. Kernels it does not override are the reference loops.
/// </summary>
public sealed class CpuBackend : Reference.ReferenceBackend
{
    // Below this many elements an op runs on the calling thread: elementwise work is memory-bound and
    // a thread hand-off costs more than it saves below about 64K floats (measured on the 2-core target).
    private const int ParallelGrain = 1 << 16;
    // Optimizer updates stream several arrays per element and are bound by memory: a finer split
    // evens out the two cores' shares (a 784×512 weight was 7 chunks of 64K, 4 against 3).
    private const int StreamGrain = 1 << 14;

    /// <inheritdoc/>
    public override Device Device => Device.Cpu;

    // ----- public entry points: each keeps its inputs' storages reachable until the kernel is done,
    // because a pooled storage that the collector finds unreachable hands its array back to the pool
    // (BufferPool) while a kernel might still be reading it through a raw array reference. -----

    /// <inheritdoc/>
    public override Storage Full(DType dtype, int length, double value)
    {
        switch (dtype)
        {
            case DType.Float32: { var a = BufferPool.Rent<float>(length, clear: false); Array.Fill(a, (float)value); return Pooled(a); }
            case DType.Float64: { var a = BufferPool.Rent<double>(length, clear: false); Array.Fill(a, value); return Pooled(a); }
            default: return base.Full(dtype, length, value);
        }
    }
    /// <inheritdoc/>
    public override Storage Copy(View x, DType dtype) { var r = CopyImpl(x, dtype); GC.KeepAlive(x.Storage); return r; }
    /// <inheritdoc/>
    public override void CopyInto(View src, Storage dst, Layout dstLayout) { CopyIntoImpl(src, dst, dstLayout); GC.KeepAlive(src.Storage); GC.KeepAlive(dst); }
    /// <inheritdoc/>
    public override Storage Unary<TOp>(View x) { var r = UnaryImpl<TOp>(x); GC.KeepAlive(x.Storage); return r; }
    /// <inheritdoc/>
    public override Storage Binary<TOp>(View a, View b, int[] shape) { var r = BinaryImpl<TOp>(a, b, shape); GC.KeepAlive(a.Storage); GC.KeepAlive(b.Storage); return r; }
    /// <inheritdoc/>
    public override Storage Compare<TOp>(View a, View b, int[] shape) { var r = CompareImpl<TOp>(a, b, shape); GC.KeepAlive(a.Storage); GC.KeepAlive(b.Storage); return r; }
    /// <inheritdoc/>
    public override Storage Where(View cond, View a, View b, int[] shape) { var r = WhereImpl(cond, a, b, shape); GC.KeepAlive(cond.Storage); GC.KeepAlive(a.Storage); GC.KeepAlive(b.Storage); return r; }
    /// <inheritdoc/>
    public override Storage Reduce(ReduceKind kind, View x, bool[] reduceAxes) { var r = ReduceImpl(kind, x, reduceAxes); GC.KeepAlive(x.Storage); return r; }
    /// <inheritdoc/>
    public override Storage ArgReduce(View x, int axis, bool max) { var r = base.ArgReduce(x, axis, max); GC.KeepAlive(x.Storage); return r; }
    /// <inheritdoc/>
    public override Storage MatMul(View a, View b, int[] batch) { var r = MatMulImpl(a, b, batch); GC.KeepAlive(a.Storage); GC.KeepAlive(b.Storage); return r; }
    /// <inheritdoc/>
    public override void BinaryInPlace<TOp>(View a, View b) { BinaryInPlaceImpl<TOp>(a, b); GC.KeepAlive(a.Storage); GC.KeepAlive(b.Storage); }
    /// <inheritdoc/>
    public override void Axpy(View y, double alpha, View x) { AxpyImpl(y, alpha, x); GC.KeepAlive(y.Storage); GC.KeepAlive(x.Storage); }
    /// <inheritdoc/>
    public override void AdamStep(View p, View grad, View m, View v, AdamHyper h)
    {
        AdamStepImpl(p, grad, m, v, h);
        GC.KeepAlive(p.Storage); GC.KeepAlive(grad.Storage); GC.KeepAlive(m.Storage); GC.KeepAlive(v.Storage);
    }
    /// <inheritdoc/>
    public override void SgdStep(View p, View grad, View momentum, SgdHyper h)
    {
        SgdStepImpl(p, grad, momentum, h);
        GC.KeepAlive(p.Storage); GC.KeepAlive(grad.Storage); GC.KeepAlive(momentum.Storage);
    }
    /// <inheritdoc/>
    public override Storage Linear(View x, View w, View? bias, bool relu) { var r = LinearImpl(x, w, bias, relu); GC.KeepAlive(x.Storage); GC.KeepAlive(w.Storage); GC.KeepAlive(bias?.Storage); return r; }
    /// <inheritdoc/>
    public override Storage Conv2d(View x, View w, View? bias, WindowGeometry g, bool relu) { var r = Conv2dImpl(x, w, bias, g, relu); GC.KeepAlive(x.Storage); GC.KeepAlive(w.Storage); GC.KeepAlive(bias?.Storage); return r; }
    /// <inheritdoc/>
    public override Storage Conv2dInputGrad(View gy, View w, WindowGeometry g) { var r = Conv2dInputGradImpl(gy, w, g); GC.KeepAlive(gy.Storage); GC.KeepAlive(w.Storage); return r; }
    /// <inheritdoc/>
    public override Storage Conv2dWeightGrad(View gy, View x, WindowGeometry g) { var r = Conv2dWeightGradImpl(gy, x, g); GC.KeepAlive(gy.Storage); GC.KeepAlive(x.Storage); return r; }
    /// <inheritdoc/>
    public override Storage Unfold(View x, WindowGeometry g) { var r = UnfoldImpl(x, g); GC.KeepAlive(x.Storage); return r; }
    /// <inheritdoc/>
    public override Storage Fold(View cols, WindowGeometry g) { var r = FoldImpl(cols, g); GC.KeepAlive(cols.Storage); return r; }
    /// <inheritdoc/>
    public override (Storage Values, Storage Indices) MaxPool2d(View x, WindowGeometry g) { var r = MaxPool2dImpl(x, g); GC.KeepAlive(x.Storage); return r; }
    /// <inheritdoc/>
    public override Storage MaxPool2dBackward(View grad, View indices, WindowGeometry g) { var r = MaxPool2dBackwardImpl(grad, indices, g); GC.KeepAlive(grad.Storage); GC.KeepAlive(indices.Storage); return r; }
    /// <inheritdoc/>
    public override Storage Gather(View x, int axis, View index, string op = "gather") { var r = GatherImpl(x, axis, index, op); GC.KeepAlive(x.Storage); GC.KeepAlive(index.Storage); return r; }
    /// <inheritdoc/>
    public override Storage ScatterAdd(int[] shape, int axis, View index, View src) { var r = ScatterAddImpl(shape, axis, index, src); GC.KeepAlive(index.Storage); GC.KeepAlive(src.Storage); return r; }
    /// <inheritdoc/>
    public override Storage CrossEntropyRows(View logits, View targets) { var r = CrossEntropyRowsImpl(logits, targets); GC.KeepAlive(logits.Storage); GC.KeepAlive(targets.Storage); return r; }
    /// <inheritdoc/>
    public override Storage CrossEntropyRowsBackward(View logits, View targets, View grad) { var r = CrossEntropyRowsBackwardImpl(logits, targets, grad); GC.KeepAlive(logits.Storage); GC.KeepAlive(targets.Storage); GC.KeepAlive(grad.Storage); return r; }

    /// <summary>
    /// Random fills in parallel chunks: element i is Philox(seed, stream, i) whatever the chunking, so the
    /// values are those of the reference backend, bit for bit, on any number of threads. Float32 uniform
    /// and Bernoulli draws (dropout and denoising masks, the hot ones) go through Philox's vectorized fills.
    /// </summary>
    public override Storage Random(RandomKind kind, DType dtype, int length, ulong seed, ulong stream, double a, double b)
    {
        var y = RentArray(dtype, length);
        if (y is float[] f && kind is RandomKind.Uniform or RandomKind.Bernoulli)
            Parallelism.ForRange(length, StreamGrain, (F: f, Bernoulli: kind == RandomKind.Bernoulli, Seed: seed, Stream: stream, A: a, B: b), static (st, s, e) =>
            {
                if (st.Bernoulli) Philox.BernoulliFloats(st.Seed, st.Stream, (ulong)s, st.A, st.F.AsSpan(s, e - s));
                else Philox.UniformFloats(st.Seed, st.Stream, (ulong)s, st.A, st.B, st.F.AsSpan(s, e - s));
            });
        else
            Parallelism.ForRange(length, StreamGrain, (Y: y, Kind: kind, Seed: seed, Stream: stream, A: a, B: b),
                static (st, s, e) => FillRandom(st.Y, s, e, st.Kind, st.Seed, st.Stream, st.A, st.B));
        return Pooled(y);
    }

    private static Array RentArray(DType dtype, int length) => dtype switch
    {
        DType.Float32 => BufferPool.Rent<float>(length, clear: false),
        DType.Float64 => BufferPool.Rent<double>(length, clear: false),
        DType.Int32 => BufferPool.Rent<int>(length, clear: false),
        _ => BufferPool.Rent<bool>(length, clear: false),
    };

    /// <summary>Wraps a freshly allocated result array (referenced by nothing else) as storage that recycles it.</summary>
    private static HostStorage Pooled(Array a) => CaptureTape.Active ? CaptureTape.Current!.Wrap(a, static a => Wrap(a)) : Wrap(a);

    private static HostStorage Wrap(Array a) =>
        Buffer.ByteLength(a) >= BufferPool.MinPooledBytes ? new PooledHostStorage(a, Device.Cpu) : new HostStorage(a, Device.Cpu);

    /// <inheritdoc/>
    private Storage CopyImpl(View x, DType dtype)
    {
        if (dtype == x.DType && x.Layout.IsContiguous)
        {
            var src = ((HostStorage)x.Storage).Data;
            var dst = RentArray(dtype, x.Layout.Numel);
            Array.Copy(src, x.Layout.Offset, dst, 0, dst.Length);
            return Pooled(dst);
        }
        if (dtype == x.DType && dtype == DType.Float32) return Pooled(Materialize<float>(x));
        if (dtype == x.DType && dtype == DType.Float64) return Pooled(Materialize<double>(x));
        return (x.DType, dtype) switch
        {
            (DType.Float64, DType.Float32) => Pooled(Convert<double, float>(x)),
            (DType.Float32, DType.Float64) => Pooled(Convert<float, double>(x)),
            (DType.Int32, DType.Float32) => Pooled(Convert<int, float>(x)),
            (DType.Int32, DType.Float64) => Pooled(Convert<int, double>(x)),
            (DType.Bool, DType.Float32) => Pooled(FromBool(x, 1f)),
            (DType.Bool, DType.Float64) => Pooled(FromBool(x, 1d)),
            (DType.Bool, DType.Int32) => Pooled(FromBool(x, 1)),
            _ => base.Copy(x, dtype),
        };
    }

    // Numeric conversion with the cast's rounding ((float)double rounds to nearest, as the reference does).
    private static TOut[] Convert<TIn, TOut>(View x) where TIn : unmanaged, INumber<TIn> where TOut : unmanaged, INumber<TOut>
    {
        ReadOnlySpan<TIn> src = x.Layout.IsContiguous ? Data<TIn>(x.Storage).AsSpan(x.Layout.Offset, x.Layout.Numel) : Materialize<TIn>(x);
        var y = BufferPool.Rent<TOut>(src.Length, clear: false);
        TensorPrimitives.ConvertTruncating<TIn, TOut>(src, y);
        return y;
    }

    private static T[] FromBool<T>(View x, T one) where T : unmanaged
    {
        ReadOnlySpan<bool> src = x.Layout.IsContiguous ? Data<bool>(x.Storage).AsSpan(x.Layout.Offset, x.Layout.Numel) : Materialize<bool>(x);
        var y = BufferPool.Rent<T>(src.Length, clear: true);
        for (int i = 0; i < src.Length; i++) if (src[i]) y[i] = one;
        return y;
    }

    /// <summary>Row-major copy of a strided float view, walking contiguous inner runs with span copies.</summary>
    internal static T[] Materialize<T>(View x) where T : unmanaged
    {
        var src = Data<T>(x.Storage);
        var y = BufferPool.Rent<T>(x.Layout.Numel, clear: false);
        if (y.Length == 0) return y;
        if (x.Layout.IsContiguous) { Array.Copy(src, x.Layout.Offset, y, 0, y.Length); return y; }
        MaterializeStrided(x, src, y);
        return y;
    }

    // (Its own method: the lambda's closure would otherwise be allocated on every call, the contiguous ones too.)
    private static void MaterializeStrided<T>(View x, T[] src, T[] y) where T : unmanaged
    {
        var (shape, strides) = Coalesce(x.Layout.Shape, x.Layout.Strides);
        int inner = shape[^1], innerStride = strides[^1];
        int rows = y.Length / inner;
        int baseOffset = x.Layout.Offset;
        Parallelism.ForRange(rows, Math.Max(1, ParallelGrain / Math.Max(inner, 1)), (r0, r1) =>
        {
            for (int r = r0; r < r1; r++)
            {
                int off = baseOffset, rem = r;
                for (int d = shape.Length - 2; d >= 0; d--) { off += rem % shape[d] * strides[d]; rem /= shape[d]; }
                var dst = y.AsSpan(r * inner, inner);
                if (innerStride == 1) src.AsSpan(off, inner).CopyTo(dst);
                else if (innerStride == 0) dst.Fill(src[off]);
                else for (int q = 0; q < inner; q++) dst[q] = src[off + q * innerStride];
            }
        });
    }

    /// <summary>Merges adjacent dimensions that are laid out as one (so a contiguous 4-D tensor becomes 1-D).</summary>
    internal static (int[] Shape, int[] Strides) Coalesce(int[] shape, params int[][] strideSets)
    {
        var sh = new List<int>();
        var st = strideSets.Select(_ => new List<int>()).ToArray();
        for (int d = 0; d < shape.Length; d++)
        {
            if (shape[d] == 1) continue;
            if (sh.Count > 0)
            {
                bool merge = true;
                for (int s = 0; s < strideSets.Length; s++)
                    merge &= st[s][^1] == strideSets[s][d] * shape[d];
                if (merge)
                {
                    sh[^1] *= shape[d];
                    for (int s = 0; s < strideSets.Length; s++) st[s][^1] = strideSets[s][d];
                    continue;
                }
            }
            sh.Add(shape[d]);
            for (int s = 0; s < strideSets.Length; s++) st[s].Add(strideSets[s][d]);
        }
        if (sh.Count == 0) { sh.Add(1); foreach (var s in st) s.Add(1); }
        return ([.. sh], strideSets.Length == 1 ? [.. st[0]] : [.. st.SelectMany(s => s)]);
    }

    /// <inheritdoc/>
    private Storage UnaryImpl<TOp>(View x) where TOp : IUnaryOp
    {
        return x.DType switch
        {
            DType.Float32 => Pooled(UnaryT<TOp, float>(x)),
            DType.Float64 => Pooled(UnaryT<TOp, double>(x)),
            _ => base.Unary<TOp>(x),
        };
    }

    private static T[] UnaryT<TOp, T>(View x) where TOp : IUnaryOp where T : unmanaged, IFloatingPointIeee754<T>
    {
        var src = x.Layout.IsContiguous ? null : Materialize<T>(x);
        var data = src ?? Data<T>(x.Storage);
        int off = src is null ? x.Layout.Offset : 0, n = x.Layout.Numel;
        var y = src ?? BufferPool.Rent<T>(n, clear: false);
        Parallelism.ForRange(n, ParallelGrain, (X: data, Off: off, Y: y),
            static (st, s, e) => UnarySpan<TOp, T>(st.X.AsSpan(st.Off + s, e - s), st.Y.AsSpan(s, e - s)));
        return y;
    }

    private static void UnarySpan<TOp, T>(ReadOnlySpan<T> x, Span<T> y) where TOp : IUnaryOp where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (TOp.Span(x, y)) return;
        if (typeof(T) == typeof(float))
        {
            var xf = System.Runtime.InteropServices.MemoryMarshal.Cast<T, float>(x);
            var yf = System.Runtime.InteropServices.MemoryMarshal.Cast<T, float>(y);
            for (int i = 0; i < xf.Length; i++) yf[i] = TOp.Invoke(xf[i]);
        }
        else
        {
            var xd = System.Runtime.InteropServices.MemoryMarshal.Cast<T, double>(x);
            var yd = System.Runtime.InteropServices.MemoryMarshal.Cast<T, double>(y);
            for (int i = 0; i < xd.Length; i++) yd[i] = TOp.Invoke(xd[i]);
        }
    }

    /// <inheritdoc/>
    private Storage BinaryImpl<TOp>(View a, View b, int[] shape) where TOp : IBinaryOp
    {
        return a.DType switch
        {
            DType.Float32 => Pooled(BinaryT<TOp, float>(a, b, shape)),
            DType.Float64 => Pooled(BinaryT<TOp, double>(a, b, shape)),
            _ => base.Binary<TOp>(a, b, shape),
        };
    }

    // Coalesce the three index spaces, then walk rows of the innermost dimension, each row being one
    // of span∘span, span∘scalar or scalar∘span (broadcast operands have stride 0 there).
    private static T[] BinaryT<TOp, T>(View a, View b, int[] shape, T[]? into = null, int intoOffset = 0)
        where TOp : IBinaryOp where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = Shapes.Numel(shape);
        var y = into ?? BufferPool.Rent<T>(n, clear: false);
        if (n == 0) return y;
        if (a.Layout.IsContiguous && b.Layout.IsContiguous && a.Layout.Numel == n && b.Layout.Numel == n)
        {
            // Both dense over the whole result: one run, no index bookkeeping.
            var xa = Data<T>(a.Storage); var xb = Data<T>(b.Storage);
            int oa = a.Layout.Offset, ob = b.Layout.Offset;
            Parallelism.ForRange(n, ParallelGrain, (A: xa, OA: oa, B: xb, OB: ob, Y: y, OY: intoOffset),
                static (st, s0, s1) => BinaryRow<TOp, T>(st.A, st.OA + s0, 1, st.B, st.OB + s0, 1, st.Y.AsSpan(st.OY + s0, s1 - s0)));
            return y;
        }
        BinaryStrided<TOp, T>(a, b, shape, y, intoOffset);
        return y;
    }

    // (Its own method, so that the dense path above allocates no closure.)
    private static void BinaryStrided<TOp, T>(View a, View b, int[] shape, T[] y, int intoOffset)
        where TOp : IBinaryOp where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = Shapes.Numel(shape);
        var (sh, st) = Coalesce(shape, a.Layout.Strides, b.Layout.Strides);
        int rank = sh.Length;
        var sa = st.AsSpan(0, rank).ToArray();
        var sb = st.AsSpan(rank, rank).ToArray();
        var da = Data<T>(a.Storage);
        var db = Data<T>(b.Storage);
        int inner = sh[^1], ia = sa[^1], ib = sb[^1];
        int rows = n / inner;
        bool fast = (ia is 0 or 1) && (ib is 0 or 1);
        int rowsPerChunk = Math.Max(1, ParallelGrain / Math.Max(inner, 1));
        Parallelism.ForRange(rows, rowsPerChunk, (r0, r1) =>
        {
            for (int r = r0; r < r1; r++)
            {
                int oa = a.Layout.Offset, ob = b.Layout.Offset, rem = r;
                for (int d = rank - 2; d >= 0; d--)
                {
                    int coord = rem % sh[d];
                    rem /= sh[d];
                    oa += coord * sa[d];
                    ob += coord * sb[d];
                }
                var dst = y.AsSpan(intoOffset + r * inner, inner);
                if (fast) BinaryRow<TOp, T>(da, oa, ia, db, ob, ib, dst);
                else for (int q = 0; q < inner; q++) dst[q] = Invoke<TOp, T>(da[oa + q * ia], db[ob + q * ib]);
            }
        });
    }

    private static void BinaryRow<TOp, T>(T[] da, int oa, int ia, T[] db, int ob, int ib, Span<T> dst)
        where TOp : IBinaryOp where T : unmanaged, IFloatingPointIeee754<T>
    {
        int len = dst.Length;
        bool done = (ia, ib) switch
        {
            (1, 1) => TOp.Span(da.AsSpan(oa, len), (ReadOnlySpan<T>)db.AsSpan(ob, len), dst),
            (1, 0) => TOp.Span(da.AsSpan(oa, len), db[ob], dst),
            (0, 1) => TOp.Span(da[oa], db.AsSpan(ob, len), dst),
            _ => false,
        };
        if (done) return;
        for (int q = 0; q < len; q++) dst[q] = Invoke<TOp, T>(da[oa + q * ia], db[ob + q * ib]);
    }

    private static T Invoke<TOp, T>(T x, T y) where TOp : IBinaryOp where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (typeof(T) == typeof(float)) return (T)(object)TOp.Invoke((float)(object)x, (float)(object)y);
        return (T)(object)TOp.Invoke((double)(object)x, (double)(object)y);
    }

    // Walks the rows (innermost coalesced dimension) of several views broadcast to one shape:
    // body(row, offsets of each view at the row start, row length, inner stride of each view).
    private delegate void RowBody(int row, ReadOnlySpan<int> offsets, int inner, ReadOnlySpan<int> innerStrides);

    private static void ForEachRow(int[] shape, View[] views, RowBody body)
    {
        int n = Shapes.Numel(shape);
        if (n == 0) return;
        var (sh, st) = Coalesce(shape, views.Select(v => v.Layout.Strides).ToArray());
        int rank = sh.Length, k = views.Length;
        int inner = sh[^1], rows = n / inner;
        var innerStrides = new int[k];
        for (int v = 0; v < k; v++) innerStrides[v] = st[v * rank + rank - 1];
        int rowsPerChunk = Math.Max(1, ParallelGrain / inner);
        Parallelism.ForRange(rows, rowsPerChunk, (r0, r1) =>
        {
            Span<int> offsets = stackalloc int[k];
            for (int r = r0; r < r1; r++)
            {
                int rem = r;
                for (int v = 0; v < k; v++) offsets[v] = views[v].Layout.Offset;
                for (int d = rank - 2; d >= 0; d--)
                {
                    int coord = rem % sh[d];
                    rem /= sh[d];
                    for (int v = 0; v < k; v++) offsets[v] += coord * st[v * rank + d];
                }
                body(r * inner, offsets, inner, innerStrides);
            }
        });
    }

    /// <inheritdoc/>
    private void CopyIntoImpl(View src, Storage dst, Layout dstLayout)
    {
        if (src.DType != dst.DType)
        {
            base.CopyInto(src, dst, dstLayout);
            return;
        }
        if (!Shapes.SameShape(src.Shape, dstLayout.Shape))
            throw new ShapeMismatchException("copy_into", $"copy_into: source {Shapes.Format(src.Shape)} and destination {Shapes.Format(dstLayout.Shape)} differ");
        switch (dst.DType)
        {
            case DType.Float32: CopyIntoT<float>(src, dst, dstLayout); break;
            case DType.Float64: CopyIntoT<double>(src, dst, dstLayout); break;
            case DType.Int32: CopyIntoT<int>(src, dst, dstLayout); break;
            default: CopyIntoT<bool>(src, dst, dstLayout); break;
        }
    }

    private static void CopyIntoT<T>(View src, Storage dst, Layout dstLayout) where T : unmanaged
    {
        if (dstLayout.Numel == 0) return;   // (an empty view's offset may lie past the end of its storage)
        if (!ReferenceEquals(src.Storage, dst) && src.Layout.IsContiguous && dstLayout.IsContiguous)
        {
            // Dense to dense: one block copy.
            Data<T>(src.Storage).AsSpan(src.Layout.Offset, src.Layout.Numel).CopyTo(Data<T>(dst).AsSpan(dstLayout.Offset, dstLayout.Numel));
            return;
        }
        CopyIntoStrided<T>(src, dst, dstLayout);
    }

    // (Its own method, so that the dense copy above allocates no closure.)
    private static void CopyIntoStrided<T>(View src, Storage dst, Layout dstLayout) where T : unmanaged
    {
        var d = Data<T>(dst);
        // Source and destination may share storage (x.CopyFrom(x.T)): read a private copy first then.
        var s = ReferenceEquals(src.Storage, dst) ? Materialize<T>(src) : Data<T>(src.Storage);
        var sv = ReferenceEquals(src.Storage, dst) ? new View(new HostStorage(s, Device.Cpu), Layout.Contiguous(src.Shape)) : src;
        ForEachRow(dstLayout.Shape, [new View(dst, dstLayout), sv], (_, off, inner, inc) =>
        {
            int od = off[0], os = off[1], id = inc[0], isrc = inc[1];
            if (id == 1 && isrc == 1) s.AsSpan(os, inner).CopyTo(d.AsSpan(od, inner));
            else if (id == 1 && isrc == 0) d.AsSpan(od, inner).Fill(s[os]);
            else for (int q = 0; q < inner; q++) d[od + q * id] = s[os + q * isrc];
        });
    }

    /// <inheritdoc/>
    private Storage GatherImpl(View x, int axis, View index, string op)
    {
        // The index-select pattern (an index that varies only along the axis, expanded with stride 0
        // elsewhere): copy whole inner blocks. It covers batching, embeddings and IndexSelect.
        var ix = index.Layout;
        if (axis == x.Shape.Length - 1 && x.Layout.IsContiguous && ix.IsContiguous && x.DType == DType.Float32
            && Shapes.SameShape(x.Shape.AsSpan(0, axis), index.Shape.AsSpan(0, axis)))
            return Pooled(GatherLastAxis(x, index, op));
        bool selectPattern = ix.Strides.Select((st, d) => d == axis || ((st == 0 || ix.Shape[d] == 1) && ix.Shape[d] == x.Shape[d])).All(b => b);
        if (!selectPattern || x.DType is not (DType.Float32 or DType.Float64 or DType.Int32)) return base.Gather(x, axis, index, op);
        return x.DType switch
        {
            DType.Float32 => Pooled(SelectRows<float>(x, axis, index, op)),
            DType.Float64 => Pooled(SelectRows<double>(x, axis, index, op)),
            _ => Pooled(SelectRows<int>(x, axis, index, op)),
        };
    }

    // Gather along the last axis of contiguous tensors, row by row (max pooling's values).
    private static float[] GatherLastAxis(View x, View index, string op)
    {
        var src = Data<float>(x.Storage);
        var idx = Data<int>(index.Storage);
        int size = x.Shape[^1], n = index.Shape[^1], rows = index.Layout.Numel / Math.Max(n, 1);
        int xo = x.Layout.Offset, io = index.Layout.Offset;
        var y = BufferPool.Rent<float>(rows * n, clear: false);
        Parallelism.ForRange(rows, Math.Max(1, ParallelGrain / Math.Max(n, 1)), (r0, r1) =>
        {
            for (int r = r0; r < r1; r++)
                for (int j = 0; j < n; j++)
                {
                    int v = idx[io + r * n + j];
                    if ((uint)v >= (uint)size) throw new IndexOutOfRangeException($"{op}: index {v} is out of range for axis {x.Shape.Length - 1} of size {size}");
                    y[r * n + j] = src[xo + r * size + v];
                }
        });
        return y;
    }

    /// <inheritdoc/>
    private Storage ScatterAddImpl(int[] shape, int axis, View index, View src)
    {
        var ix = index.Layout;
        if (axis != shape.Length - 1 || !ix.IsContiguous || !src.Layout.IsContiguous || src.DType != DType.Float32
            || !Shapes.SameShape(shape.AsSpan(0, axis), index.Shape.AsSpan(0, axis)))
            return base.ScatterAdd(shape, axis, index, src);
        // Row by row in a fixed order, so the sums do not depend on the thread count.
        var s = Data<float>(src.Storage);
        var idx = Data<int>(index.Storage);
        int size = shape[^1], n = index.Shape[^1], rows = index.Layout.Numel / Math.Max(n, 1);
        int so = src.Layout.Offset, io = ix.Offset;
        var y = BufferPool.Rent<float>(Shapes.Numel(shape), clear: true);
        Parallelism.ForRange(rows, Math.Max(1, ParallelGrain / Math.Max(n, 1)), (r0, r1) =>
        {
            for (int r = r0; r < r1; r++)
                for (int j = 0; j < n; j++)
                {
                    int v = idx[io + r * n + j];
                    if ((uint)v >= (uint)size) throw new IndexOutOfRangeException($"scatter_add: index {v} is out of range for axis {axis} of size {size}");
                    y[r * size + v] += s[so + r * n + j];
                }
        });
        return Pooled(y);
    }

    /// <inheritdoc/>
    public override (Storage Y, Storage Stats) LayerNormRows(View x, View? weight, View? bias, int cols, double eps)
    {
        if (x.DType != DType.Float32 || cols == 0) return base.LayerNormRows(x, weight, bias, cols, eps);
        var xs = Contiguous(x, out int xo, out bool xc);
        float[]? ws = null, bs = null;
        int wo = 0, bo = 0;
        bool wc = false, bc = false;
        if (weight is View w) ws = Contiguous(w, out wo, out wc);
        if (bias is View b) bs = Contiguous(b, out bo, out bc);
        int rows = x.Layout.Numel / cols;
        var y = BufferPool.Rent<float>(rows * cols, clear: false);
        var stats = BufferPool.Rent<float>(rows * 2, clear: false);
        // Each row on its own, in a fixed order: the same bits on any thread count. The rows travel as a
        // struct to a static body, so a training step's call allocates no closure.
        var job = (X: xs, Xo: xo, W: ws, Wo: wo, B: bs, Bo: bo, Y: y, Stats: stats, Cols: cols, Eps: (float)eps);
        Parallelism.ForRange(rows, Math.Max(1, ParallelGrain / cols), job, static (j, r0, r1) =>
        {
            int cols = j.Cols;
            for (int r = r0; r < r1; r++)
            {
                var xr = j.X.AsSpan(j.Xo + r * cols, cols);
                var yr = j.Y.AsSpan(r * cols, cols);
                float mean = TensorPrimitives.Sum(xr) / cols;
                TensorPrimitives.Subtract(xr, mean, yr);
                float rs = 1f / MathF.Sqrt(TensorPrimitives.SumOfSquares(yr) / cols + j.Eps);
                TensorPrimitives.Multiply(yr, rs, yr);
                if (j.W is not null) TensorPrimitives.Multiply(yr, j.W.AsSpan(j.Wo, cols), yr);
                if (j.B is not null) TensorPrimitives.Add(yr, j.B.AsSpan(j.Bo, cols), yr);
                j.Stats[2 * r] = mean;
                j.Stats[2 * r + 1] = rs;
            }
        });
        if (xc) BufferPool.Return(xs);
        if (wc) BufferPool.Return(ws!);
        if (bc) BufferPool.Return(bs!);
        GC.KeepAlive(x.Storage);
        return (Pooled(y), Pooled(stats));
    }

    /// <inheritdoc/>
    public override (Storage Dx, Storage GXhat) LayerNormRowsBackward(View x, View? weight, View stats, View grad, int cols)
    {
        if (x.DType != DType.Float32 || cols == 0) return base.LayerNormRowsBackward(x, weight, stats, grad, cols);
        var xs = Contiguous(x, out int xo, out bool xc);
        var gs = Contiguous(grad, out int go, out bool gc);
        var ss = Contiguous(stats, out int so, out bool sc);
        float[]? ws = null;
        int wo = 0;
        bool wc = false;
        if (weight is View w) ws = Contiguous(w, out wo, out wc);
        int rows = x.Layout.Numel / cols;
        var dx = BufferPool.Rent<float>(rows * cols, clear: false);
        var gxh = BufferPool.Rent<float>(rows * cols, clear: false);
        var job = (X: xs, Xo: xo, G: gs, Go: go, S: ss, So: so, W: ws, Wo: wo, Dx: dx, Gxh: gxh, Cols: cols);
        Parallelism.ForRange(rows, Math.Max(1, ParallelGrain / cols), job, static (j, r0, r1) =>
        {
            int cols = j.Cols;
            var scratch = System.Buffers.ArrayPool<float>.Shared.Rent(cols);
            try
            {
                var gh = scratch.AsSpan(0, cols);
                for (int r = r0; r < r1; r++)
                {
                    float mean = j.S[j.So + 2 * r], rs = j.S[j.So + 2 * r + 1];
                    var g = j.G.AsSpan(j.Go + r * cols, cols);
                    var xhat = j.Dx.AsSpan(r * cols, cols);      // x̂ first, then dx in its place
                    TensorPrimitives.Subtract(j.X.AsSpan(j.Xo + r * cols, cols), mean, xhat);
                    TensorPrimitives.Multiply(xhat, rs, xhat);
                    TensorPrimitives.Multiply(g, xhat, j.Gxh.AsSpan(r * cols, cols));
                    if (j.W is null) g.CopyTo(gh);
                    else TensorPrimitives.Multiply(g, j.W.AsSpan(j.Wo, cols), gh);
                    float meanG = TensorPrimitives.Sum(gh) / cols, meanGx = TensorPrimitives.Dot(gh, xhat) / cols;
                    // dx = r·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂))
                    TensorPrimitives.MultiplyAdd(xhat, -meanGx, gh, xhat);
                    TensorPrimitives.Add(xhat, -meanG, xhat);
                    TensorPrimitives.Multiply(xhat, rs, xhat);
                }
            }
            finally { System.Buffers.ArrayPool<float>.Shared.Return(scratch); }
        });
        if (xc) BufferPool.Return(xs);
        if (gc) BufferPool.Return(gs);
        if (sc) BufferPool.Return(ss);
        if (wc) BufferPool.Return(ws!);
        GC.KeepAlive(x.Storage);
        GC.KeepAlive(grad.Storage);
        return (Pooled(dx), Pooled(gxh));
    }

    /// <inheritdoc/>
    private (Storage Values, Storage Indices) MaxPool2dImpl(View x, WindowGeometry g)
    {
        if (x.DType != DType.Float32) return base.MaxPool2d(x, g);
        var src = Contiguous(x, out int off, out bool copied);
        int planes = x.Shape[0] * g.Channels, plane = g.Height * g.Width, l = g.OutH * g.OutW;
        var values = BufferPool.Rent<float>(planes * l, clear: false);
        var indices = BufferPool.Rent<int>(planes * l, clear: false);
        Parallelism.ForRange(planes, Math.Max(1, ParallelGrain / Math.Max(1, plane)), (p0, p1) =>
        {
            for (int p = p0; p < p1; p++)
                Pooling.MaxPool(src.AsSpan(off + p * plane, plane), values.AsSpan(p * l, l), indices.AsSpan(p * l, l), g);
        });
        if (copied) BufferPool.Return(src); // the temporary copy is ours alone
        return (Pooled(values), Pooled(indices));
    }

    private Storage MaxPool2dBackwardImpl(View grad, View indices, WindowGeometry g)
    {
        if (grad.DType != DType.Float32) return base.MaxPool2dBackward(grad, indices, g);
        var gs = Contiguous(grad, out int go, out bool gc);
        var ix = indices.Layout.IsContiguous ? Data<int>(indices.Storage) : Materialize<int>(indices);
        int io = indices.Layout.IsContiguous ? indices.Layout.Offset : 0;
        int planes = grad.Shape[0] * g.Channels, plane = g.Height * g.Width, l = g.OutH * g.OutW;
        var dx = BufferPool.Rent<float>(planes * plane, clear: false);
        Parallelism.ForRange(planes, Math.Max(1, ParallelGrain / Math.Max(1, plane)), (p0, p1) =>
        {
            for (int p = p0; p < p1; p++)
                Pooling.MaxPoolBackward(gs.AsSpan(go + p * l, l), ix.AsSpan(io + p * l, l), dx.AsSpan(p * plane, plane), g);
        });
        if (gc) BufferPool.Return(gs);
        return Pooled(dx);
    }

    private static T[] SelectRows<T>(View x, int axis, View index, string op) where T : unmanaged
    {
        var src = x.Layout.IsContiguous ? Data<T>(x.Storage) : Materialize<T>(x);
        int off = x.Layout.IsContiguous ? x.Layout.Offset : 0;
        var outShape = index.Shape;
        int outer = 1, inner = 1;
        for (int d = 0; d < axis; d++) outer *= outShape[d];
        for (int d = axis + 1; d < outShape.Length; d++) inner *= outShape[d];
        int n = outShape[axis], size = x.Shape[axis];
        var idx = Data<int>(index.Storage);
        var picks = new int[n];
        for (int j = 0; j < n; j++)
        {
            int v = idx[index.Layout.Offset + j * index.Layout.Strides[axis]];
            if ((uint)v >= (uint)size) throw new IndexOutOfRangeException($"{op}: index {v} is out of range for axis {axis} of size {size}");
            picks[j] = v;
        }
        var y = BufferPool.Rent<T>(outer * n * inner, clear: false);
        Parallelism.ForRange(outer * n, Math.Max(1, ParallelGrain / Math.Max(inner, 1)), (r0, r1) =>
        {
            for (int r = r0; r < r1; r++)
            {
                int o = r / n, j = r % n;
                src.AsSpan(off + (o * size + picks[j]) * inner, inner).CopyTo(y.AsSpan(r * inner, inner));
            }
        });
        if (!x.Layout.IsContiguous) BufferPool.Return(src); // the temporary copy is ours alone
        return y;
    }

    /// <inheritdoc/>
    private Storage CompareImpl<TOp>(View a, View b, int[] shape) where TOp : ICompareOp
    {
        var y = BufferPool.Rent<bool>(Shapes.Numel(shape), clear: false);
        switch (a.DType)
        {
            case DType.Float32: CompareT<TOp, float>(a, b, shape, y); break;
            case DType.Float64: CompareT<TOp, double>(a, b, shape, y); break;
            case DType.Int32: CompareT<TOp, int>(a, b, shape, y); break;
            default: return base.Compare<TOp>(a, b, shape);
        }
        return Pooled(y);
    }

    private static void CompareT<TOp, T>(View a, View b, int[] shape, bool[] y) where TOp : ICompareOp where T : unmanaged, INumber<T>
    {
        var da = Data<T>(a.Storage);
        var db = Data<T>(b.Storage);
        ForEachRow(shape, [a, b], (start, off, inner, inc) =>
        {
            int oa = off[0], ob = off[1], ia = inc[0], ib = inc[1];
            for (int q = 0; q < inner; q++) y[start + q] = TOp.Invoke(da[oa + q * ia], db[ob + q * ib]);
        });
    }

    /// <inheritdoc/>
    private Storage WhereImpl(View cond, View a, View b, int[] shape)
    {
        return a.DType switch
        {
            DType.Float32 => Pooled(WhereT<float>(cond, a, b, shape)),
            DType.Float64 => Pooled(WhereT<double>(cond, a, b, shape)),
            DType.Int32 => Pooled(WhereT<int>(cond, a, b, shape)),
            _ => Pooled(WhereT<bool>(cond, a, b, shape)),
        };
    }

    private static T[] WhereT<T>(View cond, View a, View b, int[] shape) where T : unmanaged
    {
        var y = BufferPool.Rent<T>(Shapes.Numel(shape), clear: false);
        var c = Data<bool>(cond.Storage);
        var da = Data<T>(a.Storage);
        var db = Data<T>(b.Storage);
        ForEachRow(shape, [cond, a, b], (start, off, inner, inc) =>
        {
            int oc = off[0], oa = off[1], ob = off[2], ic = inc[0], ia = inc[1], ib = inc[2];
            for (int q = 0; q < inner; q++) y[start + q] = c[oc + q * ic] ? da[oa + q * ia] : db[ob + q * ib];
        });
        return y;
    }

    /// <inheritdoc/>
    private Storage ReduceImpl(ReduceKind kind, View x, bool[] reduceAxes)
    {
        return x.DType switch
        {
            DType.Float32 => Pooled(ReduceT<float>(kind, x, reduceAxes)),
            DType.Float64 => Pooled(ReduceT<double>(kind, x, reduceAxes)),
            _ => base.Reduce(kind, x, reduceAxes),
        };
    }

    // Reduced axes are moved last; each output is then a reduction of one contiguous row, split into
    // fixed blocks for long rows. Neither the row nor the block boundaries depend on the thread count.
    private static T[] ReduceT<T>(ReduceKind kind, View x, bool[] flags) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int rank = flags.Length;
        if (x.Layout.IsContiguous && x.Layout.Numel is > 0 and <= 1 << 14 && Array.TrueForAll(flags, f => f))
        {
            // A small tensor reduced to one value: one vector pass, none of the general path's bookkeeping.
            var one = BufferPool.Rent<T>(1, clear: false);
            one[0] = ReduceSpan(kind, Data<T>(x.Storage).AsSpan(x.Layout.Offset, x.Layout.Numel));
            return one;
        }
        int outN = 1, rowLen = 1;
        for (int d = 0; d < rank; d++) { if (flags[d]) rowLen *= x.Shape[d]; else outN *= x.Shape[d]; }
        var y = BufferPool.Rent<T>(outN, clear: true);
        if (outN == 0) return y;
        if (rowLen == 0) return y; // empty sum = 0 (max/min of empty were refused above this layer)
        // Reduced axes forming one block in the middle of a contiguous tensor, (outer, R, inner) with
        // inner > 1 (a bias gradient summed over the batch, max pooling over window rows): fold the R
        // rows of each outer slice into the output with whole-row vector ops, in order r = 0..R-1.
        if (x.Layout.IsContiguous && MiddleBlock(x.Shape, flags) is var (outer, reduced, inner) && inner > 1)
        {
            Parallelism.ForRange(outer, Math.Max(1, ParallelGrain / Math.Max(1, reduced * inner)),
                (Src: Data<T>(x.Storage), Off: x.Layout.Offset, Y: y, Kind: kind, Reduced: reduced, Inner: inner), static (st, o0, o1) =>
            {
                int reduced = st.Reduced, inner = st.Inner;
                for (int o = o0; o < o1; o++)
                {
                    var dst = st.Y.AsSpan(o * inner, inner);
                    st.Src.AsSpan(st.Off + o * reduced * inner, inner).CopyTo(dst);
                    for (int r = 1; r < reduced; r++)
                    {
                        var row = st.Src.AsSpan(st.Off + (o * reduced + r) * inner, inner);
                        switch (st.Kind)
                        {
                            case ReduceKind.Sum: TensorPrimitives.Add(dst, row, dst); break;
                            case ReduceKind.Max: TensorPrimitives.Max(dst, row, dst); break;
                            default: TensorPrimitives.Min(dst, row, dst); break;
                        }
                    }
                }
            });
            return y;
        }
        ReduceOther(kind, x, flags, y, outN, rowLen);
        return y;
    }

    // The other reductions (their own method, so that the paths above allocate no closure).
    private static void ReduceOther<T>(ReduceKind kind, View x, bool[] flags, T[] y, int outN, int rowLen) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int rank = flags.Length;
        // Kept axes forming one block in the middle, (outer, K, inner) reduced over outer and inner
        // (per-channel sums of an (N, C, H, W) tensor: batch-norm statistics, a convolution's bias
        // gradient): each kept index sums its contiguous inner runs in order o = 0..outer-1, one
        // thread per kept index, without the permuted copy the general path makes.
        if (x.Layout.IsContiguous && MiddleBlock(x.Shape, Array.ConvertAll(flags, f => !f)) is var (kOuter, kept, kInner) && kInner > 1)
        {
            var src = Data<T>(x.Storage);
            int off0 = x.Layout.Offset;
            Parallelism.ForRange(kept, Math.Max(1, ParallelGrain / Math.Max(1, kOuter * kInner)), (k0, k1) =>
            {
                for (int k = k0; k < k1; k++)
                {
                    T acc = ReduceSpan(kind, src.AsSpan(off0 + k * kInner, kInner));
                    for (int o = 1; o < kOuter; o++)
                    {
                        T part = ReduceSpan(kind, src.AsSpan(off0 + (o * kept + k) * kInner, kInner));
                        acc = kind switch { ReduceKind.Sum => acc + part, ReduceKind.Max => T.Max(acc, part), _ => T.Min(acc, part) };
                    }
                    y[k] = acc;
                }
            });
            return;
        }
        var perm = Enumerable.Range(0, rank).Where(d => !flags[d]).Concat(Enumerable.Range(0, rank).Where(d => flags[d])).ToArray();
        var permuted = x.Layout.Permute(perm);
        var data = permuted.IsContiguous ? Data<T>(x.Storage) : Materialize<T>(new View(x.Storage, permuted));
        int off = permuted.IsContiguous ? permuted.Offset : 0;
        const int Block = 1 << 14;
        if (outN == 1 && rowLen > Block)
        {
            int blocks = (rowLen + Block - 1) / Block;
            var partial = new T[blocks];
            Parallelism.For(blocks, k =>
            {
                int s = k * Block;
                partial[k] = ReduceSpan(kind, data.AsSpan(off + s, Math.Min(Block, rowLen - s)));
            });
            y[0] = ReduceSpan(kind, partial);
            if (!permuted.IsContiguous) BufferPool.Return(data);
            return;
        }
        int rowsPerChunk = Math.Max(1, ParallelGrain / rowLen);
        Parallelism.ForRange(outN, rowsPerChunk, (r0, r1) =>
        {
            for (int r = r0; r < r1; r++) y[r] = ReduceSpan(kind, data.AsSpan(off + r * rowLen, rowLen));
        });
        if (!permuted.IsContiguous) BufferPool.Return(data);
    }

    // When the reduced axes (ignoring size-1 axes) are one consecutive block, the sizes before,
    // of, and after it; otherwise null.
    private static (int Outer, int Reduced, int Inner)? MiddleBlock(int[] shape, bool[] flags)
    {
        int first = -1, last = -1;
        for (int d = 0; d < shape.Length; d++)
        {
            if (shape[d] == 1 || !flags[d]) continue;
            if (first < 0) first = d;
            last = d;
        }
        if (first < 0) return null;
        for (int d = first; d <= last; d++)
            if (!flags[d] && shape[d] != 1) return null;
        int outer = 1, reduced = 1, inner = 1;
        for (int d = 0; d < shape.Length; d++)
        {
            if (d < first) outer *= shape[d];
            else if (d > last) inner *= shape[d];
            else reduced *= shape[d];
        }
        return (outer, reduced, inner);
    }

    private static T ReduceSpan<T>(ReduceKind kind, ReadOnlySpan<T> s) where T : unmanaged, IFloatingPointIeee754<T> => kind switch
    {
        ReduceKind.Sum => TensorPrimitives.Sum(s),
        ReduceKind.Max => TensorPrimitives.Max(s),
        _ => TensorPrimitives.Min(s),
    };

    /// <inheritdoc/>
    private unsafe Storage MatMulImpl(View a, View b, int[] batch)
    {
        int m = a.Shape[^2], k = a.Shape[^1], n = b.Shape[^1];
        int nb = Shapes.Numel(batch);
        int rank = batch.Length;
        var la = a.Layout; var lb = b.Layout;
        int aRow = la.Strides[rank], aCol = la.Strides[rank + 1];
        int bRow = lb.Strides[rank], bCol = lb.Strides[rank + 1];
        int BatchOffset(Layout l, int bi)
        {
            int off = l.Offset, rem = bi;
            for (int d = rank - 1; d >= 0; d--) { off += rem % batch[d] * l.Strides[d]; rem /= batch[d]; }
            return off;
        }
        if (a.DType == DType.Float32)
        {
            var y = BufferPool.Rent<float>(nb * m * n, clear: false);
            var da = Data<float>(a.Storage); var db = Data<float>(b.Storage);
            fixed (float* pa = da) fixed (float* pb = db) fixed (float* py = y)
            {
                // Products too small for Sgemm to split (attention's per-head scores: 32 × 32 × 16) run
                // one per core instead of one after another on one core; each is the same GEMM either
                // way, so the bits do not change. 128 of them ran at 30-40 GFLOP/s in a row.
                if (nb > 1 && 2L * m * n * k < 1 << 20 && Parallelism.MaxThreads > 1)
                {
                    var job = (A: (nint)pa, B: (nint)pb, Y: (nint)py, La: la, Lb: lb, Batch: batch, M: m, N: n, K: k);
                    Parallelism.ForRange(nb, Math.Max(1, (1 << 18) / Math.Max(1, 2 * m * n * k)), job, static (j, b0, b1) =>
                    {
                        int rank = j.Batch.Length;
                        for (int bi = b0; bi < b1; bi++)
                            Gemm.Sgemm(j.M, j.N, j.K, (float*)j.A + BatchOffsetOf(j.La, j.Batch, bi), j.La.Strides[rank], j.La.Strides[rank + 1],
                                (float*)j.B + BatchOffsetOf(j.Lb, j.Batch, bi), j.Lb.Strides[rank], j.Lb.Strides[rank + 1], (float*)j.Y + (long)bi * j.M * j.N, j.N);
                    });
                }
                else
                    for (int bi = 0; bi < nb; bi++)
                        Gemm.Sgemm(m, n, k, pa + BatchOffset(la, bi), aRow, aCol, pb + BatchOffset(lb, bi), bRow, bCol, py + (long)bi * m * n, n);
            }
            return Pooled(y);
        }
        if (a.DType == DType.Float64)
        {
            var y = BufferPool.Rent<double>(nb * m * n, clear: false);
            var da = Data<double>(a.Storage); var db = Data<double>(b.Storage);
            fixed (double* pa = da) fixed (double* pb = db) fixed (double* py = y)
                for (int bi = 0; bi < nb; bi++)
                    Gemm.Dgemm(m, n, k, pa + BatchOffset(la, bi), aRow, aCol, pb + BatchOffset(lb, bi), bRow, bCol, py + (long)bi * m * n, n);
            return Pooled(y);
        }
        return base.MatMul(a, b, batch);
    }

    // The storage offset of matrix bi of a batch-broadcast layout.
    private static int BatchOffsetOf(Layout l, int[] batch, int bi)
    {
        int off = l.Offset, rem = bi;
        for (int d = batch.Length - 1; d >= 0; d--) { off += rem % batch[d] * l.Strides[d]; rem /= batch[d]; }
        return off;
    }

    // ----- in place: the destination is written as it is read, element by element at the same
    // index, which is safe; a second operand that views the destination through another layout is not,
    // and goes the reference way (compute, then copy back).

    private static bool WritesSafely(View dst, View src) =>
        !ReferenceEquals(dst.Storage, src.Storage)
        || (src.Layout.Offset == dst.Layout.Offset && src.Layout.Strides.AsSpan().SequenceEqual(dst.Layout.Strides));

    private void BinaryInPlaceImpl<TOp>(View a, View b) where TOp : IBinaryOp
    {
        if (!a.Layout.IsContiguous || !WritesSafely(a, b) || a.DType != b.DType) { base.BinaryInPlace<TOp>(a, b); return; }
        switch (a.DType)
        {
            case DType.Float32: BinaryT<TOp, float>(a, b, a.Shape, Data<float>(a.Storage), a.Layout.Offset); break;
            case DType.Float64: BinaryT<TOp, double>(a, b, a.Shape, Data<double>(a.Storage), a.Layout.Offset); break;
            default: base.BinaryInPlace<TOp>(a, b); break;
        }
    }

    private void AxpyImpl(View y, double alpha, View x)
    {
        bool plain = y.Layout.IsContiguous && x.Layout.IsContiguous && x.DType == y.DType && !ReferenceEquals(x.Storage, y.Storage);
        if (plain && y.DType == DType.Float32) AxpyT(y, (float)alpha, x);
        else if (plain && y.DType == DType.Float64) AxpyT(y, alpha, x);
        else base.Axpy(y, alpha, x);
    }

    private static void AxpyT<T>(View y, T alpha, View x) where T : unmanaged, IFloatingPointIeee754<T>
    {
        var dy = Data<T>(y.Storage); var dx = Data<T>(x.Storage);
        int oy = y.Layout.Offset, ox = x.Layout.Offset;
        Parallelism.ForRange(y.Layout.Numel, StreamGrain, (s, e) =>
        {
            var dst = dy.AsSpan(oy + s, e - s);
            TensorPrimitives.MultiplyAdd(dx.AsSpan(ox + s, e - s), alpha, dst, dst);
        });
    }

    // Adam in one pass over four arrays (Vector<float> lanes, scalar tail); the float32 arithmetic is
    // the composed version's, operation for operation, so results match it to rounding.
    private void AdamStepImpl(View p, View grad, View m, View v, AdamHyper h)
    {
        bool plain = p.DType == DType.Float32 && grad.DType == DType.Float32 && m.DType == DType.Float32 && v.DType == DType.Float32
            && p.Layout.IsContiguous && grad.Layout.IsContiguous && m.Layout.IsContiguous && v.Layout.IsContiguous;
        if (!plain) { base.AdamStep(p, grad, m, v, h); return; }
        var dp = Data<float>(p.Storage); var dg = Data<float>(grad.Storage);
        var dm = Data<float>(m.Storage); var dv = Data<float>(v.Storage);
        int op = p.Layout.Offset, og = grad.Layout.Offset, om = m.Layout.Offset, ov = v.Layout.Offset;
        float b1 = (float)h.Beta1, b2 = (float)h.Beta2, a1 = (float)(1 - h.Beta1), a2 = (float)(1 - h.Beta2);
        float inv2 = (float)(1 / h.C2), eps = (float)h.Eps, step = (float)(h.Lr / h.C1);
        float wd = (float)h.WeightDecay, shrink = (float)(1 - h.Lr * h.WeightDecay);
        bool decoupled = h.Decoupled, coupled = !h.Decoupled && h.WeightDecay != 0;
        Parallelism.ForRange(p.Layout.Numel, StreamGrain, (s, e) =>
        {
            var ps = dp.AsSpan(op + s, e - s); var gs = dg.AsSpan(og + s, e - s);
            var ms = dm.AsSpan(om + s, e - s); var vs = dv.AsSpan(ov + s, e - s);
            int i = 0, w = Vector<float>.Count;
            if (Vector.IsHardwareAccelerated)
            {
                var vb1 = new Vector<float>(b1); var vb2 = new Vector<float>(b2); var va1 = new Vector<float>(a1); var va2 = new Vector<float>(a2);
                var vinv2 = new Vector<float>(inv2); var veps = new Vector<float>(eps); var vstep = new Vector<float>(step);
                var vwd = new Vector<float>(wd); var vshrink = new Vector<float>(shrink);
                for (; i <= ps.Length - w; i += w)
                {
                    var pv = new Vector<float>(ps[i..]); var g = new Vector<float>(gs[i..]);
                    if (decoupled) pv *= vshrink;
                    else if (coupled) g += vwd * pv;
                    var mv = vb1 * new Vector<float>(ms[i..]) + va1 * g;
                    var vv = vb2 * new Vector<float>(vs[i..]) + va2 * (g * g);
                    mv.CopyTo(ms[i..]);
                    vv.CopyTo(vs[i..]);
                    (pv - vstep * (mv / (Vector.SquareRoot(vv * vinv2) + veps))).CopyTo(ps[i..]);
                }
            }
            for (; i < ps.Length; i++)
            {
                float pv = ps[i], g = gs[i];
                if (decoupled) pv *= shrink;
                else if (coupled) g += wd * pv;
                float mv = b1 * ms[i] + a1 * g, vv = b2 * vs[i] + a2 * (g * g);
                ms[i] = mv; vs[i] = vv;
                ps[i] = pv - step * (mv / (MathF.Sqrt(vv * inv2) + eps));
            }
        });
    }

    // SGD with momentum in one pass over three arrays (three passes and two temporaries before).
    private void SgdStepImpl(View p, View grad, View momentum, SgdHyper h)
    {
        bool plain = p.DType == DType.Float32 && grad.DType == DType.Float32 && momentum.DType == DType.Float32
            && p.Layout.IsContiguous && grad.Layout.IsContiguous && momentum.Layout.IsContiguous;
        if (!plain) { base.SgdStep(p, grad, momentum, h); return; }
        var dp = Data<float>(p.Storage); var dg = Data<float>(grad.Storage); var dv = Data<float>(momentum.Storage);
        int op = p.Layout.Offset, og = grad.Layout.Offset, ov = momentum.Layout.Offset;
        Parallelism.ForRange(p.Layout.Numel, StreamGrain, (P: dp, OP: op, G: dg, OG: og, V: dv, OV: ov, H: h), static (st, s, e) =>
        {
            float lr = (float)st.H.Lr, mu = (float)st.H.Momentum, wd = (float)st.H.WeightDecay;
            bool nesterov = st.H.Nesterov;
            var ps = st.P.AsSpan(st.OP + s, e - s); var gs = st.G.AsSpan(st.OG + s, e - s); var vs = st.V.AsSpan(st.OV + s, e - s);
            int i = 0, w = Vector<float>.Count;
            if (Vector.IsHardwareAccelerated)
            {
                var vlr = new Vector<float>(lr); var vmu = new Vector<float>(mu); var vwd = new Vector<float>(wd);
                for (; i <= ps.Length - w; i += w)
                {
                    var pv = new Vector<float>(ps[i..]);
                    var d = new Vector<float>(gs[i..]) + vwd * pv;
                    var v = vmu * new Vector<float>(vs[i..]) + d;
                    v.CopyTo(vs[i..]);
                    (pv - vlr * (nesterov ? d + vmu * v : v)).CopyTo(ps[i..]);
                }
            }
            for (; i < ps.Length; i++)
            {
                float pv = ps[i], d = gs[i] + wd * pv, v = mu * vs[i] + d;
                vs[i] = v;
                ps[i] = pv - lr * (nesterov ? d + mu * v : v);
            }
        });
    }

    // y = x·wᵀ + b: every row of y starts as the bias and the GEMM accumulates onto it, reading w
    // through transposed strides (no copy of wᵀ, no second pass for the bias).
    private unsafe Storage LinearImpl(View x, View w, View? bias, bool relu)
    {
        if (x.DType != DType.Float32) return base.Linear(x, w, bias, relu);
        int m = x.Shape[0], k = x.Shape[1], n = w.Shape[0];
        var y = BufferPool.Rent<float>(m * n, clear: bias is null);
        if (bias is { } b)
        {
            var db = Data<float>(b.Storage);
            int bs = b.Layout.Strides[0], bo = b.Layout.Offset;
            var row = y.AsSpan(0, n);
            if (bs == 1) db.AsSpan(bo, n).CopyTo(row);
            else for (int j = 0; j < n; j++) row[j] = db[bo + j * bs];
            for (int i = 1; i < m; i++) row.CopyTo(y.AsSpan(i * n, n));
        }
        var dx = Data<float>(x.Storage); var dw = Data<float>(w.Storage);
        fixed (float* px = dx) fixed (float* pw = dw) fixed (float* py = y)
            Gemm.Sgemm(m, n, k, px + x.Layout.Offset, x.Layout.Strides[0], x.Layout.Strides[1],
                pw + w.Layout.Offset, w.Layout.Strides[1], w.Layout.Strides[0], py, n, accumulate: true);
        if (relu) TensorPrimitives.Max(y.AsSpan(0, m * n), 0f, y.AsSpan(0, m * n));
        return Pooled(y);
    }

    /// <inheritdoc/>
    private Storage UnfoldImpl(View x, WindowGeometry g)
    {
        if (x.DType != DType.Float32) return base.Unfold(x, g);
        int batch = x.Shape[0], kk = g.KernelH * g.KernelW, l = g.OutH * g.OutW;
        var src = x.Layout.IsContiguous ? Data<float>(x.Storage) : Materialize<float>(x);
        int off = x.Layout.IsContiguous ? x.Layout.Offset : 0;
        var y = BufferPool.Rent<float>(batch * g.Channels * kk * l, clear: false);
        int plane = g.Height * g.Width;
        // One task per (image, channel): it owns kh·kw rows of the output, so tasks never share a write.
        Parallelism.ForRange(batch * g.Channels, Math.Max(1, ParallelGrain / Math.Max(1, kk * l)), (t0, t1) =>
        {
            for (int t = t0; t < t1; t++)
                Im2Col(src.AsSpan(off + t * plane, plane), y.AsSpan(t * kk * l, kk * l), g);
        });
        if (!x.Layout.IsContiguous) BufferPool.Return(src); // the temporary copy is ours alone
        return Pooled(y);
    }

    /// <inheritdoc/>
    private Storage FoldImpl(View cols, WindowGeometry g)
    {
        if (cols.DType != DType.Float32) return base.Fold(cols, g);
        int batch = cols.Shape[0], kk = g.KernelH * g.KernelW, l = g.OutH * g.OutW;
        var src = cols.Layout.IsContiguous ? Data<float>(cols.Storage) : Materialize<float>(cols);
        int off = cols.Layout.IsContiguous ? cols.Layout.Offset : 0;
        int plane = g.Height * g.Width;
        var y = BufferPool.Rent<float>(batch * g.Channels * plane, clear: true);
        // The adjoint of Unfold, task by (image, channel): each task sums into its own plane in a fixed
        // order (ki, kj, oi, oj), so the result does not depend on the thread count.
        Parallelism.ForRange(batch * g.Channels, Math.Max(1, ParallelGrain / Math.Max(1, kk * l)), (t0, t1) =>
        {
            for (int t = t0; t < t1; t++)
                Col2Im(src.AsSpan(off + t * kk * l, kk * l), y.AsSpan(t * plane, plane), g);
        });
        if (!cols.Layout.IsContiguous) BufferPool.Return(src); // the temporary copy is ours alone
        return Pooled(y);
    }

    /// <summary>im2col for one channel plane: kh·kw rows of outH·outW window elements, zero over the padding.</summary>
    private static void Im2Col(ReadOnlySpan<float> image, Span<float> cols, in WindowGeometry g, int ld = -1)
    {
        int kh = g.KernelH, kw = g.KernelW, oh = g.OutH, ow = g.OutW, h = g.Height, w = g.Width, l = oh * ow;
        if (ld < 0) ld = l;
        int sh = g.StrideH, sw = g.StrideW, ph = g.PadH, pw = g.PadW, dh = g.DilationH, dw = g.DilationW;
        if (sh == 1 && sw == 1 && ow == w)
        {
            // Unit stride and as many output columns as input columns (the usual "same" padding): each
            // row of the columns is the whole image shifted by (ki·dh − ph) rows and (kj·dw − pw)
            // columns. One long copy per row instead of one short copy per output row (a 14×14 map cut
            // into 14-float runs spent more time in the calls than in the copying), then the padding:
            // the rows above and below the image, and the elements that the shift wrapped round from
            // the neighbouring image row.
            for (int ki = 0; ki < kh; ki++)
                for (int kj = 0; kj < kw; kj++)
                {
                    var row = cols.Slice((ki * kw + kj) * ld, l);
                    var tap = ShiftedTap.Of(g, ki, kj);
                    if (tap.OiLo > 0) row[..(tap.OiLo * w)].Clear();
                    if (tap.OiHi < oh) row[(tap.OiHi * w)..].Clear();
                    if (tap.Length == 0) continue;
                    image.Slice(tap.ImageStart, tap.Length).CopyTo(row.Slice(tap.RowStart, tap.Length));
                    tap.ZeroWrapped(row, w);
                }
            return;
        }
        for (int ki = 0; ki < kh; ki++)
            for (int kj = 0; kj < kw; kj++)
            {
                var row = cols.Slice((ki * kw + kj) * ld, l);
                int j0 = -pw + kj * dw;
                var (lo, hi) = InsideColumns(j0, sw, w, ow);
                for (int oi = 0; oi < oh; oi++)
                {
                    int ii = oi * sh - ph + ki * dh;
                    var dst = row.Slice(oi * ow, ow);
                    if (ii < 0 || ii >= h) { dst.Clear(); continue; }
                    dst[..lo].Clear();
                    dst[hi..].Clear();
                    var line = image.Slice(ii * w);
                    if (sw == 1) line.Slice(j0 + lo, hi - lo).CopyTo(dst[lo..hi]);
                    else for (int oj = lo; oj < hi; oj++) dst[oj] = line[j0 + oj * sw];
                }
            }
    }

    // The output columns [lo, hi) of a window column whose input column j0 + oj·sw lies inside an
    // image of width w (the rest read the zero padding).
    private static (int Lo, int Hi) InsideColumns(int j0, int sw, int w, int ow)
    {
        int lo = Math.Min(ow, j0 >= 0 ? 0 : (-j0 + sw - 1) / sw);
        int hi = j0 > w - 1 ? lo : Math.Clamp((w - 1 - j0) / sw + 1, lo, ow);
        return (lo, hi);
    }

    /// <summary>col2im from a scratch buffer, which it may overwrite: with unit stride and as many output
    /// as input columns, each row is added to the image as one shifted block (Im2Col's fast path run
    /// backwards), after zeroing the elements that the shift wrapped round from a neighbouring image row
    /// (they read the padding, so they contribute nothing). Each image element receives the same terms
    /// in the same (ki, kj) order as in <see cref="Col2Im"/>.</summary>
    private static void Col2ImScratch(Span<float> cols, Span<float> image, in WindowGeometry g, int ld)
    {
        int kh = g.KernelH, kw = g.KernelW, oh = g.OutH, ow = g.OutW, h = g.Height, w = g.Width, l = oh * ow;
        if (g.StrideH != 1 || g.StrideW != 1 || ow != w) { Col2Im(cols, image, g, ld); return; }
        for (int ki = 0; ki < kh; ki++)
            for (int kj = 0; kj < kw; kj++)
            {
                var tap = ShiftedTap.Of(g, ki, kj);
                if (tap.Length == 0) continue;
                var row = cols.Slice((ki * kw + kj) * ld, l);
                tap.ZeroWrapped(row, w);
                var dst = image.Slice(tap.ImageStart, tap.Length);
                TensorPrimitives.Add(dst, row.Slice(tap.RowStart, tap.Length), dst);
            }
    }

    // One kernel tap (ki, kj) of a unit-stride convolution whose output rows are as wide as the image:
    // its row of the columns is the image shifted by (ki·dh − ph) rows and (kj·dw − pw) columns. Output
    // rows [OiLo, OiHi) read image rows; the block of them maps to one contiguous run of the image,
    // ImageStart.. (Length elements) onto RowStart.. of the row, clipped at both ends of the image. In
    // each of those rows the first EdgeLo and the columns from EdgeHi on are the elements the shift
    // wrapped round from the neighbouring image row: they read padding.
    private readonly record struct ShiftedTap(int OiLo, int OiHi, int ImageStart, int RowStart, int Length, int EdgeLo, int EdgeHi)
    {
        public static ShiftedTap Of(in WindowGeometry g, int ki, int kj)
        {
            int h = g.Height, w = g.Width, oh = g.OutH;
            int rowShift = ki * g.DilationH - g.PadH, d = kj * g.DilationW - g.PadW;
            int oiLo = Math.Clamp(-rowShift, 0, oh), oiHi = Math.Clamp(h - rowShift, oiLo, oh);
            int start = (oiLo + rowShift) * w + d, n = (oiHi - oiLo) * w;
            int skip = Math.Max(0, -start), over = Math.Max(0, start + n - h * w);
            int edgeLo = Math.Clamp(-d, 0, w), edgeHi = Math.Clamp(w - d, edgeLo, w);
            return new(oiLo, oiHi, start + skip, oiLo * w + skip, Math.Max(0, n - skip - over), edgeLo, edgeHi);
        }

        // A few elements per row (|d| of them): stores, not Clear calls.
        public void ZeroWrapped(Span<float> row, int w)
        {
            for (int oi = OiLo; oi < OiHi; oi++)
            {
                var line = row.Slice(oi * w, w);
                for (int q = 0; q < EdgeLo; q++) line[q] = 0f;
                for (int q = EdgeHi; q < w; q++) line[q] = 0f;
            }
        }
    }

    /// <summary>col2im for one channel plane, the adjoint of <see cref="Im2Col"/>: adds the kh·kw rows into
    /// <paramref name="image"/> in a fixed order (ki, kj, oi, oj).</summary>
    private static void Col2Im(ReadOnlySpan<float> cols, Span<float> image, in WindowGeometry g, int ld = -1)
    {
        int kh = g.KernelH, kw = g.KernelW, oh = g.OutH, ow = g.OutW, h = g.Height, w = g.Width, l = oh * ow;
        if (ld < 0) ld = l;
        int sh = g.StrideH, sw = g.StrideW, ph = g.PadH, pw = g.PadW, dh = g.DilationH, dw = g.DilationW;
        for (int ki = 0; ki < kh; ki++)
            for (int kj = 0; kj < kw; kj++)
            {
                var row = cols.Slice((ki * kw + kj) * ld, l);
                int j0 = -pw + kj * dw;
                var (lo, hi) = InsideColumns(j0, sw, w, ow);
                for (int oi = 0; oi < oh; oi++)
                {
                    int ii = oi * sh - ph + ki * dh;
                    if (ii < 0 || ii >= h || hi <= lo) continue;
                    var part = row.Slice(oi * ow, ow);
                    var line = image.Slice(ii * w);
                    if (sw == 1)
                    {
                        var dst = line.Slice(j0 + lo, hi - lo);
                        TensorPrimitives.Add(dst, part[lo..hi], dst);
                    }
                    else for (int oj = lo; oj < hi; oj++) line[j0 + oj * sw] += part[oj];
                }
            }
    }

    // ----- convolution: im2col into a scratch buffer and one GEMM per group of images. A group puts
    // the columns of a few small images side by side (C·kh·kw × images·L), so that a 7×7 or 14×14
    // feature map still makes a GEMM wide enough to fill the vector panels; groups are fixed by the
    // shapes alone and each group's result is computed by one thread in a fixed order, so any thread
    // count gives the same bits. Groups run on separate cores when there are enough of them. A 1×1
    // convolution with unit stride and no padding reads the image as its own columns.

    private static bool IsPointwise(in WindowGeometry g) =>
        g.KernelH == 1 && g.KernelW == 1 && g.StrideH == 1 && g.StrideW == 1 && g.PadH == 0 && g.PadW == 0;

    // Images per GEMM: enough for about 512 output columns (one image when its map is that large).
    private static int ImagesPerGroup(int n, int l) => l >= 128 ? 1 : Math.Clamp(512 / Math.Max(l, 1), 1, Math.Max(n, 1));

    // Runs body(group) for every group: in parallel when there are at least as many groups as threads
    // (the GEMMs inside then run serially), else group by group with parallel GEMMs.
    private static void ForEachGroup(int groups, Action<int> body)
    {
        if (groups >= Parallelism.MaxThreads && groups > 1) Parallelism.For(groups, body);
        else for (int q = 0; q < groups; q++) body(q);
    }

    private static float[] Contiguous(View v, out int offset, out bool copied)
    {
        copied = !v.Layout.IsContiguous;
        offset = copied ? 0 : v.Layout.Offset;
        return copied ? Materialize<float>(v) : Data<float>(v.Storage);
    }

    // The columns of images b0 … b0+count-1, side by side: row r of image i at cols[r·ld + i·L].
    private static void GroupColumns(float[] xs, int xo, float[] cols, int b0, int count, in WindowGeometry g)
    {
        int c = g.Channels, kk = g.KernelH * g.KernelW, l = g.OutH * g.OutW, plane = g.Height * g.Width, ld = count * l;
        for (int i = 0; i < count; i++)
            for (int ci = 0; ci < c; ci++)
                Im2Col(xs.AsSpan(xo + ((b0 + i) * c + ci) * plane, plane), cols.AsSpan(ci * kk * ld + i * l), g, ld);
    }

    // The per-image blocks (rows × L each) of images b0 … side by side: dst[r·ld + i·L + j] = src[(b0+i)·rows·L + r·L + j].
    private static void GroupRows(float[] src, int so, float[] dst, int b0, int count, int rows, int l)
    {
        int ld = count * l;
        for (int i = 0; i < count; i++)
            for (int r = 0; r < rows; r++)
                src.AsSpan(so + ((b0 + i) * rows + r) * l, l).CopyTo(dst.AsSpan(r * ld + i * l, l));
    }

    private unsafe Storage Conv2dImpl(View x, View w, View? bias, WindowGeometry g, bool relu)
    {
        if (x.DType != DType.Float32) return base.Conv2d(x, w, bias, g, relu);
        int n = x.Shape[0], c = g.Channels, o = w.Shape[0];
        int ckk = c * g.KernelH * g.KernelW, l = g.OutH * g.OutW, plane = g.Height * g.Width;
        var xs = Contiguous(x, out int xo, out bool xc);
        var ws = Contiguous(w, out int wo, out bool wc);
        float[]? bs = null;
        if (bias is { } bv) bs = Materialize<float>(bv);
        var y = BufferPool.Rent<float>(n * o * l, clear: false);
        bool pointwise = IsPointwise(g);
        if (!pointwise && SingleChannelConv.Applies(g))
            SingleChannelConv.Forward(xs, xo, ws, wo, bs, y, n, o, g, relu);
        else
            Conv2dGemm(xs, xo, ws, wo, bs, y, n, o, g, relu, pointwise);
        if (xc) BufferPool.Return(xs);
        if (wc) BufferPool.Return(ws);
        return Pooled(y);
    }

    // im2col of a group of images side by side, one GEMM, the ReLU while the output is in cache.
    internal static unsafe void Conv2dGemm(float[] xs, int xo, float[] ws, int wo, float[]? bs, float[] y, int n, int o, WindowGeometry g, bool relu, bool pointwise)
    {
        int c = g.Channels, ckk = c * g.KernelH * g.KernelW, l = g.OutH * g.OutW, plane = g.Height * g.Width;
        int per = pointwise ? 1 : ImagesPerGroup(n, l), groups = (n + per - 1) / per;
        ForEachGroup(groups, q =>
        {
            int b0 = q * per, count = Math.Min(per, n - b0), ld = count * l;
            var pool = System.Buffers.ArrayPool<float>.Shared;
            float[]? cols = pointwise ? null : pool.Rent(ckk * ld);
            float[]? outs = count > 1 ? pool.Rent(o * ld) : null;
            try
            {
                if (cols is not null) GroupColumns(xs, xo, cols, b0, count, g);
                var dst = outs is not null ? outs.AsSpan(0, o * ld) : y.AsSpan(b0 * o * l, o * l);
                for (int oc = 0; oc < o; oc++) dst.Slice(oc * ld, ld).Fill(bs is null ? 0f : bs[oc]);
                fixed (float* pw = ws) fixed (float* pc = cols) fixed (float* px = xs) fixed (float* pd = dst)
                {
                    float* b = cols is null ? px + xo + (long)b0 * c * plane : pc;
                    Gemm.Sgemm(o, ld, ckk, pw + wo, ckk, 1, b, ld, 1, pd, ld, accumulate: true);
                }
                // The activation while this group's output is still in cache (a separate ReLU pass
                // read and wrote the whole activation from memory again).
                if (relu) TensorPrimitives.Max(dst, 0f, dst);
                if (outs is not null)
                    for (int i = 0; i < count; i++)
                        for (int oc = 0; oc < o; oc++)
                            outs.AsSpan(oc * ld + i * l, l).CopyTo(y.AsSpan(((b0 + i) * o + oc) * l, l));
            }
            finally
            {
                if (cols is not null) pool.Return(cols);
                if (outs is not null) pool.Return(outs);
            }
        });
    }

    private unsafe Storage Conv2dInputGradImpl(View gy, View w, WindowGeometry g)
    {
        if (gy.DType != DType.Float32) return base.Conv2dInputGrad(gy, w, g);
        int n = gy.Shape[0], c = g.Channels, o = w.Shape[0];
        int kk = g.KernelH * g.KernelW, ckk = c * kk, l = g.OutH * g.OutW, plane = g.Height * g.Width;
        var gs = Contiguous(gy, out int go, out bool gc);
        var ws = Contiguous(w, out int wo, out bool wc);
        bool pointwise = IsPointwise(g);
        var dx = BufferPool.Rent<float>(n * c * plane, clear: !pointwise);
        int per = pointwise ? 1 : ImagesPerGroup(n, l), groups = (n + per - 1) / per;
        ForEachGroup(groups, q =>
        {
            int b0 = q * per, count = Math.Min(per, n - b0), ld = count * l;
            var pool = System.Buffers.ArrayPool<float>.Shared;
            float[]? cols = pointwise ? null : pool.Rent(ckk * ld);
            float[]? gyg = count > 1 ? pool.Rent(o * ld) : null;
            try
            {
                if (gyg is not null) GroupRows(gs, go, gyg, b0, count, o, l);
                // dcols (C·kh·kw × images·L) = wᵀ · gy, read through transposed strides; then col2im.
                fixed (float* pw = ws) fixed (float* pg = gs) fixed (float* pgg = gyg) fixed (float* pc = cols) fixed (float* pd = dx)
                {
                    float* a = pgg is not null ? pgg : pg + go + (long)b0 * o * l;
                    float* dst = cols is null ? pd + (long)b0 * c * plane : pc;
                    Gemm.Sgemm(ckk, ld, o, pw + wo, 1, ckk, a, ld, 1, dst, ld);
                }
                if (cols is not null)
                    for (int i = 0; i < count; i++)
                        for (int ci = 0; ci < c; ci++)
                            Col2ImScratch(cols.AsSpan(ci * kk * ld + i * l), dx.AsSpan(((b0 + i) * c + ci) * plane, plane), g, ld);
            }
            finally
            {
                if (cols is not null) pool.Return(cols);
                if (gyg is not null) pool.Return(gyg);
            }
        });
        if (gc) BufferPool.Return(gs);
        if (wc) BufferPool.Return(ws);
        return Pooled(dx);
    }

    // The weight gradient sums over images. To give the same bits for any thread count, the image
    // groups are dealt to a fixed number of partial sums (group q to partial q mod 8, never depending
    // on the threads); each partial accumulates its groups in order, and the partials are added in order.
    private const int WeightGradGroups = 8;

    private unsafe Storage Conv2dWeightGradImpl(View gy, View x, WindowGeometry g)
    {
        if (gy.DType != DType.Float32) return base.Conv2dWeightGrad(gy, x, g);
        int n = gy.Shape[0], c = g.Channels, o = gy.Shape[1];
        int kk = g.KernelH * g.KernelW, ckk = c * kk, l = g.OutH * g.OutW, plane = g.Height * g.Width;
        var gs = Contiguous(gy, out int go, out bool gc);
        var xs = Contiguous(x, out int xo, out bool xc);
        bool pointwise = IsPointwise(g);
        int per = pointwise ? 1 : ImagesPerGroup(n, l), groups = (n + per - 1) / per;
        int partials = Math.Min(groups, WeightGradGroups), size = o * ckk;
        var partial = System.Buffers.ArrayPool<float>.Shared.Rent(partials * size);
        Array.Clear(partial, 0, partials * size);
        Parallelism.For(partials, part =>
        {
            var pool = System.Buffers.ArrayPool<float>.Shared;
            float[]? cols = pointwise ? null : pool.Rent(ckk * per * l);
            float[]? gyg = per > 1 ? pool.Rent(o * per * l) : null;
            try
            {
                for (int q = part; q < groups; q += partials)
                {
                    int b0 = q * per, count = Math.Min(per, n - b0), ld = count * l;
                    if (cols is not null) GroupColumns(xs, xo, cols, b0, count, g);
                    if (count > 1) GroupRows(gs, go, gyg!, b0, count, o, l);
                    // dW += gy (O × images·L) · colsᵀ (images·L × C·kh·kw)
                    fixed (float* pg = gs) fixed (float* pgg = gyg) fixed (float* pc = cols) fixed (float* px = xs) fixed (float* pp = partial)
                    {
                        float* a = count > 1 ? pgg : pg + go + (long)b0 * o * l;
                        float* b = cols is null ? px + xo + (long)b0 * c * plane : pc;
                        Gemm.Sgemm(o, ckk, ld, a, ld, 1, b, 1, ld, pp + (long)part * size, ckk, accumulate: true);
                    }
                }
            }
            finally
            {
                if (cols is not null) pool.Return(cols);
                if (gyg is not null) pool.Return(gyg);
            }
        });
        var dw = BufferPool.Rent<float>(size, clear: false);
        partial.AsSpan(0, size).CopyTo(dw);
        for (int part = 1; part < partials; part++)
            TensorPrimitives.Add(dw.AsSpan(0, size), partial.AsSpan(part * size, size), dw.AsSpan(0, size));
        System.Buffers.ArrayPool<float>.Shared.Return(partial);
        if (gc) BufferPool.Return(gs);
        if (xc) BufferPool.Return(xs);
        return Pooled(dw);
    }

    /// <inheritdoc/>
    private Storage CrossEntropyRowsImpl(View logits, View targets)
    {
        if (logits.DType != DType.Float32 || !logits.Layout.IsContiguous) return base.CrossEntropyRows(logits, targets);
        int n = logits.Shape[0], c = logits.Shape[1];
        var x = Data<float>(logits.Storage);
        int off = logits.Layout.Offset;
        var t = Materialize<int>(targets);
        var y = BufferPool.Rent<float>(n, clear: false);
        for (int i = 0; i < n; i++)
            if ((uint)t[i] >= (uint)c)
                throw new ArgumentOutOfRangeException(nameof(targets), $"cross_entropy: target {t[i]} at row {i} is outside [0, {c})");
        Parallelism.ForRange(n, Math.Max(1, ParallelGrain / Math.Max(c, 1)), (X: x, Off: off, T: t, Y: y, C: c), static (st, r0, r1) =>
        {
            int c = st.C;
            Span<float> buf = c <= 1024 ? stackalloc float[c] : new float[c];
            for (int i = r0; i < r1; i++)
            {
                var row = st.X.AsSpan(st.Off + i * c, c);
                float m = c == 0 ? float.NegativeInfinity : TensorPrimitives.Max(row);
                TensorPrimitives.Subtract(row, m, buf);
                TensorPrimitives.Exp(buf, buf);
                // Sum in double: a row of 10 classes or 1000, the log of the sum keeps every digit float can show.
                double s = 0;
                foreach (var v in buf) s += v;
                st.Y[i] = (float)(Math.Log(s) - ((double)row[st.T[i]] - m));
            }
        });
        return Pooled(y);
    }

    // One pass per row: the shifted exponentials, their sum, then (e / Σe − [j = t]) · g. A batch of 64
    // rows of 10 classes was fifteen tensor ops (softmax, a one-hot built from comparisons, a subtract
    // and a broadcast multiply), each with its own allocations and dispatch.
    private Storage CrossEntropyRowsBackwardImpl(View logits, View targets, View grad)
    {
        if (logits.DType != DType.Float32 || grad.DType != DType.Float32 || !logits.Layout.IsContiguous)
            return base.CrossEntropyRowsBackward(logits, targets, grad);
        int n = logits.Shape[0], c = logits.Shape[1];
        var x = Data<float>(logits.Storage);
        int off = logits.Layout.Offset;
        var t = Materialize<int>(targets);
        // The incoming gradient is one value per row, usually the mean's 1/N broadcast (stride 0):
        // read through its stride rather than materialized.
        var g = Data<float>(grad.Storage);
        int go = grad.Layout.Offset, gs = grad.Layout.Strides[0];
        for (int i = 0; i < n; i++)
            if ((uint)t[i] >= (uint)c)
                throw new ArgumentOutOfRangeException(nameof(targets), $"cross_entropy: target {t[i]} at row {i} is outside [0, {c})");
        var y = BufferPool.Rent<float>(n * c, clear: false);
        Parallelism.ForRange(n, Math.Max(1, ParallelGrain / Math.Max(c, 1)), (X: x, Off: off, T: t, G: g, GO: go, GS: gs, Y: y, C: c), static (st, r0, r1) =>
        {
            int c = st.C;
            for (int i = r0; i < r1; i++)
            {
                var row = st.X.AsSpan(st.Off + i * c, c);
                var dst = st.Y.AsSpan(i * c, c);
                float m = c == 0 ? float.NegativeInfinity : TensorPrimitives.Max(row);
                TensorPrimitives.Subtract(row, m, dst);
                TensorPrimitives.Exp(dst, dst);
                double s = 0;
                foreach (var v in dst) s += v;
                float gi = st.G[st.GO + i * st.GS];
                TensorPrimitives.Multiply(dst, (float)(gi / s), dst);
                dst[st.T[i]] -= gi;
            }
        });
        return Pooled(y);
    }
}
