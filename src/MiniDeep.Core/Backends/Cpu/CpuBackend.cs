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
    // Below this many elements an op runs on the calling thread: a thread hand-off costs microseconds.
    private const int ParallelGrain = 1 << 15;

    /// <inheritdoc/>
    public override Device Device => Device.Cpu;

    /// <inheritdoc/>
    public override Storage Copy(View x, DType dtype)
    {
        if (dtype == x.DType && x.Layout.IsContiguous)
        {
            var src = ((HostStorage)x.Storage).Data;
            var dst = DTypes.NewArray(dtype, x.Layout.Numel);
            Array.Copy(src, x.Layout.Offset, dst, 0, dst.Length);
            return Host(dst);
        }
        if (dtype == x.DType && dtype == DType.Float32) return Host(Materialize<float>(x));
        if (dtype == x.DType && dtype == DType.Float64) return Host(Materialize<double>(x));
        if (dtype == DType.Float32 && x.DType == DType.Float64)
        {
            var d = x.Layout.IsContiguous ? Data<double>(x.Storage).AsSpan(x.Layout.Offset, x.Layout.Numel) : Materialize<double>(x);
            var y = new float[d.Length];
            TensorPrimitives.ConvertTruncating<double, float>(d, y);
            return Host(y);
        }
        return base.Copy(x, dtype);
    }

    /// <summary>Row-major copy of a strided float view, walking contiguous inner runs with span copies.</summary>
    internal static T[] Materialize<T>(View x) where T : unmanaged
    {
        var src = Data<T>(x.Storage);
        var y = new T[x.Layout.Numel];
        if (y.Length == 0) return y;
        if (x.Layout.IsContiguous) { Array.Copy(src, x.Layout.Offset, y, 0, y.Length); return y; }
        var (shape, strides) = Coalesce(x.Layout.Shape, x.Layout.Strides);
        int inner = shape[^1], innerStride = strides[^1];
        int rows = y.Length / inner;
        for (int r = 0; r < rows; r++)
        {
            int off = x.Layout.Offset, rem = r;
            for (int d = shape.Length - 2; d >= 0; d--) { off += rem % shape[d] * strides[d]; rem /= shape[d]; }
            var dst = y.AsSpan(r * inner, inner);
            if (innerStride == 1) src.AsSpan(off, inner).CopyTo(dst);
            else if (innerStride == 0) dst.Fill(src[off]);
            else for (int q = 0; q < inner; q++) dst[q] = src[off + q * innerStride];
        }
        return y;
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
    public override Storage Unary<TOp>(View x)
    {
        return x.DType switch
        {
            DType.Float32 => Host(UnaryT<TOp, float>(x)),
            DType.Float64 => Host(UnaryT<TOp, double>(x)),
            _ => base.Unary<TOp>(x),
        };
    }

    private static T[] UnaryT<TOp, T>(View x) where TOp : IUnaryOp where T : unmanaged, IFloatingPointIeee754<T>
    {
        var src = x.Layout.IsContiguous ? null : Materialize<T>(x);
        var data = src ?? Data<T>(x.Storage);
        int off = src is null ? x.Layout.Offset : 0, n = x.Layout.Numel;
        var y = src ?? new T[n];
        Parallelism.ForRange(n, ParallelGrain, (s, e) => UnarySpan<TOp, T>(data.AsSpan(off + s, e - s), y.AsSpan(s, e - s)));
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
    public override Storage Binary<TOp>(View a, View b, int[] shape)
    {
        return a.DType switch
        {
            DType.Float32 => Host(BinaryT<TOp, float>(a, b, shape)),
            DType.Float64 => Host(BinaryT<TOp, double>(a, b, shape)),
            _ => base.Binary<TOp>(a, b, shape),
        };
    }

    // Coalesce the three index spaces, then walk rows of the innermost dimension, each row being one
    // of span∘span, span∘scalar or scalar∘span (broadcast operands have stride 0 there).
    private static T[] BinaryT<TOp, T>(View a, View b, int[] shape) where TOp : IBinaryOp where T : unmanaged, IFloatingPointIeee754<T>
    {
        int n = Shapes.Numel(shape);
        var y = new T[n];
        if (n == 0) return y;
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
                var dst = y.AsSpan(r * inner, inner);
                if (fast) BinaryRow<TOp, T>(da, oa, ia, db, ob, ib, dst);
                else for (int q = 0; q < inner; q++) dst[q] = Invoke<TOp, T>(da[oa + q * ia], db[ob + q * ib]);
            }
        });
        return y;
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

    /// <inheritdoc/>
    public override Storage Reduce(ReduceKind kind, View x, bool[] reduceAxes)
    {
        return x.DType switch
        {
            DType.Float32 => Host(ReduceT<float>(kind, x, reduceAxes)),
            DType.Float64 => Host(ReduceT<double>(kind, x, reduceAxes)),
            _ => base.Reduce(kind, x, reduceAxes),
        };
    }

    // Reduced axes are moved last; each output is then a reduction of one contiguous row, split into
    // fixed blocks for long rows. Neither the row nor the block boundaries depend on the thread count.
    private static T[] ReduceT<T>(ReduceKind kind, View x, bool[] flags) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int rank = flags.Length;
        var perm = Enumerable.Range(0, rank).Where(d => !flags[d]).Concat(Enumerable.Range(0, rank).Where(d => flags[d])).ToArray();
        int outN = 1, rowLen = 1;
        for (int d = 0; d < rank; d++) { if (flags[d]) rowLen *= x.Shape[d]; else outN *= x.Shape[d]; }
        var y = new T[outN];
        if (outN == 0) return y;
        if (rowLen == 0) return y; // empty sum = 0 (max/min of empty were refused above this layer)
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
            return y;
        }
        int rowsPerChunk = Math.Max(1, ParallelGrain / rowLen);
        Parallelism.ForRange(outN, rowsPerChunk, (r0, r1) =>
        {
            for (int r = r0; r < r1; r++) y[r] = ReduceSpan(kind, data.AsSpan(off + r * rowLen, rowLen));
        });
        return y;
    }

    private static T ReduceSpan<T>(ReduceKind kind, ReadOnlySpan<T> s) where T : unmanaged, IFloatingPointIeee754<T> => kind switch
    {
        ReduceKind.Sum => TensorPrimitives.Sum(s),
        ReduceKind.Max => TensorPrimitives.Max(s),
        _ => TensorPrimitives.Min(s),
    };

    /// <inheritdoc/>
    public override unsafe Storage MatMul(View a, View b, int[] batch)
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
            var y = new float[nb * m * n];
            var da = Data<float>(a.Storage); var db = Data<float>(b.Storage);
            fixed (float* pa = da) fixed (float* pb = db) fixed (float* py = y)
                for (int bi = 0; bi < nb; bi++)
                    Gemm.Sgemm(m, n, k, pa + BatchOffset(la, bi), aRow, aCol, pb + BatchOffset(lb, bi), bRow, bCol, py + (long)bi * m * n, n);
            return Host(y);
        }
        if (a.DType == DType.Float64)
        {
            var y = new double[nb * m * n];
            var da = Data<double>(a.Storage); var db = Data<double>(b.Storage);
            fixed (double* pa = da) fixed (double* pb = db) fixed (double* py = y)
                for (int bi = 0; bi < nb; bi++)
                    Gemm.Dgemm(m, n, k, pa + BatchOffset(la, bi), aRow, aCol, pb + BatchOffset(lb, bi), bRow, bCol, py + (long)bi * m * n, n);
            return Host(y);
        }
        return base.MatMul(a, b, batch);
    }

    /// <inheritdoc/>
    public override Storage CrossEntropyRows(View logits, View targets)
    {
        if (logits.DType != DType.Float32 || !logits.Layout.IsContiguous) return base.CrossEntropyRows(logits, targets);
        int n = logits.Shape[0], c = logits.Shape[1];
        var x = Data<float>(logits.Storage);
        int off = logits.Layout.Offset;
        var t = Materialize<int>(targets);
        var y = new float[n];
        for (int i = 0; i < n; i++)
            if ((uint)t[i] >= (uint)c)
                throw new ArgumentOutOfRangeException(nameof(targets), $"cross_entropy: target {t[i]} at row {i} is outside [0, {c})");
        Parallelism.ForRange(n, Math.Max(1, ParallelGrain / Math.Max(c, 1)), (r0, r1) =>
        {
            var buf = new float[c];
            for (int i = r0; i < r1; i++)
            {
                var row = x.AsSpan(off + i * c, c);
                float m = c == 0 ? float.NegativeInfinity : TensorPrimitives.Max(row);
                TensorPrimitives.Subtract(row, m, buf);
                TensorPrimitives.Exp(buf, buf);
                // Sum in double: a row of 10 classes or 1000, the log of the sum keeps every digit float can show.
                double s = 0;
                foreach (var v in buf) s += v;
                y[i] = (float)(Math.Log(s) - ((double)row[t[i]] - m));
            }
        });
        return Host(y);
    }
}
