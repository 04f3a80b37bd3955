namespace MiniDeep.Reference;

/// <summary>
/// The executable specification: every kernel as the plainest loop over elements, addressing each
/// through its layout, accumulating in double. It is slow on purpose and never clever; every other
/// backend is tested against it (tests/Backends/ConformanceTests.cs).
/// The CPU backend derives from it and overrides the kernels it speeds up.
/// </summary>
public class ReferenceBackend : IBackend
{
    /// <inheritdoc/>
    public virtual Device Device => Device.Reference;

    /// <summary>Wraps a new host array as storage of this device.</summary>
    protected HostStorage Host(Array data) => new(data, Device);

    /// <summary>The host array behind a storage, checked to be of element type T.</summary>
    protected static T[] Data<T>(Storage s) => s is HostStorage h
        ? h.As<T>()
        : throw new InvalidOperationException($"storage on {s.Device} is not host memory");

    /// <inheritdoc/>
    public Storage FromArray(Array data) => Host(data);

    /// <inheritdoc/>
    public Array ToArray(View x)
    {
        var copy = (HostStorage)Copy(x, x.DType);
        GC.KeepAlive(x.Storage);
        return copy.TakeOwnership();
    }

    /// <inheritdoc/>
    public virtual Storage Full(DType dtype, int length, double value)
    {
        var a = DTypes.NewArray(dtype, length);
        switch (a)
        {
            case float[] f: Array.Fill(f, (float)value); break;
            case double[] d: Array.Fill(d, value); break;
            case int[] i: Array.Fill(i, (int)value); break;
            case bool[] b: Array.Fill(b, value != 0); break;
        }
        return Host(a);
    }

    // Reads element k of any host array as a double (exact for every dtype we have).
    internal static double ReadAsDouble(Array a, int k) => a switch
    {
        float[] f => f[k],
        double[] d => d[k],
        int[] i => i[k],
        bool[] b => b[k] ? 1 : 0,
        _ => throw new NotSupportedException(),
    };

    // Writes a double into element k, converting as PyTorch does: float rounding, int truncation, bool = (v != 0).
    internal static void WriteFromDouble(Array a, int k, double v)
    {
        switch (a)
        {
            case float[] f: f[k] = (float)v; break;
            case double[] d: d[k] = v; break;
            case int[] i: i[k] = double.IsNaN(v) ? 0 : (int)Math.Clamp(Math.Truncate(v), int.MinValue, int.MaxValue); break;
            case bool[] b: b[k] = v != 0; break;
        }
    }

    /// <inheritdoc/>
    public virtual Storage Copy(View x, DType dtype)
    {
        var src = ((HostStorage)x.Storage).Data;
        var dst = DTypes.NewArray(dtype, x.Layout.Numel);
        for (int i = 0; i < dst.Length; i++) WriteFromDouble(dst, i, ReadAsDouble(src, x.Layout.IndexOf(i)));
        return Host(dst);
    }

    /// <inheritdoc/>
    public virtual void CopyInto(View src, Storage dst, Layout dstLayout)
    {
        if (!Shapes.SameShape(src.Shape, dstLayout.Shape))
            throw new ShapeMismatchException("copy_into", $"copy_into: source {Shapes.Format(src.Shape)} and destination {Shapes.Format(dstLayout.Shape)} differ");
        // Read everything first: source and destination may overlap (x.CopyFrom(x.T)).
        var values = Copy(src, dst.DType);
        var v = ((HostStorage)values).Data;
        var d = ((HostStorage)dst).Data;
        for (int i = 0; i < v.Length; i++) WriteFromDouble(d, dstLayout.IndexOf(i), ReadAsDouble(v, i));
    }

    /// <inheritdoc/>
    public virtual Storage Unary<TOp>(View x) where TOp : IUnaryOp
    {
        int n = x.Layout.Numel;
        switch (x.DType)
        {
            case DType.Float32:
            {
                var s = Data<float>(x.Storage); var y = new float[n];
                for (int i = 0; i < n; i++) y[i] = TOp.Invoke(s[x.Layout.IndexOf(i)]);
                return Host(y);
            }
            case DType.Float64:
            {
                var s = Data<double>(x.Storage); var y = new double[n];
                for (int i = 0; i < n; i++) y[i] = TOp.Invoke(s[x.Layout.IndexOf(i)]);
                return Host(y);
            }
            default: throw new InvalidOperationException($"unary {typeof(TOp).Name}: dtype {x.DType.Name()} is not floating");
        }
    }

    /// <inheritdoc/>
    public virtual Storage Binary<TOp>(View a, View b, int[] shape) where TOp : IBinaryOp
    {
        int n = Shapes.Numel(shape);
        switch (a.DType)
        {
            case DType.Float32:
            {
                var sa = Data<float>(a.Storage); var sb = Data<float>(b.Storage); var y = new float[n];
                for (int i = 0; i < n; i++) y[i] = TOp.Invoke(sa[a.Layout.IndexOf(i)], sb[b.Layout.IndexOf(i)]);
                return Host(y);
            }
            case DType.Float64:
            {
                var sa = Data<double>(a.Storage); var sb = Data<double>(b.Storage); var y = new double[n];
                for (int i = 0; i < n; i++) y[i] = TOp.Invoke(sa[a.Layout.IndexOf(i)], sb[b.Layout.IndexOf(i)]);
                return Host(y);
            }
            default: throw new InvalidOperationException($"binary {typeof(TOp).Name}: dtype {a.DType.Name()} is not floating");
        }
    }

    /// <inheritdoc/>
    public virtual Storage Compare<TOp>(View a, View b, int[] shape) where TOp : ICompareOp
    {
        int n = Shapes.Numel(shape);
        var y = new bool[n];
        switch (a.DType)
        {
            case DType.Float32:
            {
                var sa = Data<float>(a.Storage); var sb = Data<float>(b.Storage);
                for (int i = 0; i < n; i++) y[i] = TOp.Invoke(sa[a.Layout.IndexOf(i)], sb[b.Layout.IndexOf(i)]);
                break;
            }
            case DType.Float64:
            {
                var sa = Data<double>(a.Storage); var sb = Data<double>(b.Storage);
                for (int i = 0; i < n; i++) y[i] = TOp.Invoke(sa[a.Layout.IndexOf(i)], sb[b.Layout.IndexOf(i)]);
                break;
            }
            case DType.Int32:
            {
                var sa = Data<int>(a.Storage); var sb = Data<int>(b.Storage);
                for (int i = 0; i < n; i++) y[i] = TOp.Invoke(sa[a.Layout.IndexOf(i)], sb[b.Layout.IndexOf(i)]);
                break;
            }
            default: throw new InvalidOperationException($"compare: dtype {a.DType.Name()} is not numeric");
        }
        return Host(y);
    }

    /// <inheritdoc/>
    public virtual Storage Where(View cond, View a, View b, int[] shape)
    {
        int n = Shapes.Numel(shape);
        var c = Data<bool>(cond.Storage);
        var sa = ((HostStorage)a.Storage).Data;
        var sb = ((HostStorage)b.Storage).Data;
        var y = DTypes.NewArray(a.DType, n);
        for (int i = 0; i < n; i++)
        {
            bool take = c[cond.Layout.IndexOf(i)];
            Array.Copy(take ? sa : sb, take ? a.Layout.IndexOf(i) : b.Layout.IndexOf(i), y, i, 1);
        }
        return Host(y);
    }

    /// <inheritdoc/>
    public virtual Storage Reduce(ReduceKind kind, View x, bool[] reduceAxes)
    {
        var inShape = x.Shape;
        var outShape = inShape.Select((d, i) => reduceAxes[i] ? 1 : d).ToArray();
        int outN = Shapes.Numel(outShape), inN = x.Layout.Numel;
        var acc = new double[outN];
        var seen = new bool[outN];
        var outStrides = Shapes.ContiguousStrides(outShape);
        var src = ((HostStorage)x.Storage).Data;
        // Visit every input element once, row-major, and fold it into its output slot.
        for (int i = 0; i < inN; i++)
        {
            int rem = i, o = 0;
            for (int d = inShape.Length - 1; d >= 0; d--)
            {
                int coord = rem % inShape[d];
                rem /= inShape[d];
                if (!reduceAxes[d]) o += coord * outStrides[d];
            }
            double v = ReadAsDouble(src, x.Layout.IndexOf(i));
            if (!seen[o]) { acc[o] = v; seen[o] = true; continue; }
            acc[o] = kind switch
            {
                ReduceKind.Sum => acc[o] + v,
                ReduceKind.Max => double.IsNaN(acc[o]) || double.IsNaN(v) ? double.NaN : Math.Max(acc[o], v),
                _ => double.IsNaN(acc[o]) || double.IsNaN(v) ? double.NaN : Math.Min(acc[o], v),
            };
        }
        var y = DTypes.NewArray(x.DType, outN);
        for (int o = 0; o < outN; o++) WriteFromDouble(y, o, acc[o]);
        return Host(y);
    }

    /// <inheritdoc/>
    public virtual Storage ArgReduce(View x, int axis, bool max)
    {
        var shape = x.Shape;
        int size = shape[axis];
        var outShape = (int[])shape.Clone();
        outShape[axis] = 1;
        int outN = Shapes.Numel(outShape);
        var y = new int[outN];
        var src = ((HostStorage)x.Storage).Data;
        for (int o = 0; o < outN; o++)
        {
            // Coordinates of output o; walk the reduced axis from there.
            var start = new Layout(outShape, x.Layout.Strides, x.Layout.Offset).IndexOf(o);
            int best = 0;
            double bv = ReadAsDouble(src, start);
            for (int k = 1; k < size && !double.IsNaN(bv); k++)
            {
                double v = ReadAsDouble(src, start + k * x.Layout.Strides[axis]);
                if (double.IsNaN(v) || (max ? v > bv : v < bv)) { bv = v; best = k; }
            }
            y[o] = best;
        }
        return Host(y);
    }

    /// <inheritdoc/>
    public virtual Storage MatMul(View a, View b, int[] batch)
    {
        int m = a.Shape[^2], k = a.Shape[^1], n = b.Shape[^1];
        int nb = Shapes.Numel(batch);
        var y = DTypes.NewArray(a.DType, nb * m * n);
        var sa = ((HostStorage)a.Storage).Data;
        var sb = ((HostStorage)b.Storage).Data;
        var la = a.Layout; var lb = b.Layout;
        for (int bi = 0; bi < nb; bi++)
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                {
                    double s = 0;
                    for (int p = 0; p < k; p++)
                        s += ReadAsDouble(sa, la.IndexOf((bi * m + i) * k + p)) * ReadAsDouble(sb, lb.IndexOf((bi * k + p) * n + j));
                    WriteFromDouble(y, (bi * m + i) * n + j, s);
                }
        return Host(y);
    }

    /// <summary>Defined as the out-of-place op followed by a copy back.</summary>
    public virtual void BinaryInPlace<TOp>(View a, View b) where TOp : IBinaryOp
    {
        var r = Binary<TOp>(a, b, a.Shape);
        CopyInto(new View(r, Layout.Contiguous(a.Shape)), a.Storage, a.Layout);
    }

    /// <inheritdoc/>
    public virtual void Axpy(View y, double alpha, View x)
    {
        var sy = ((HostStorage)y.Storage).Data; var sx = ((HostStorage)x.Storage).Data;
        for (int i = 0; i < y.Layout.Numel; i++)
        {
            int at = y.Layout.IndexOf(i);
            WriteFromDouble(sy, at, ReadAsDouble(sy, at) + alpha * ReadAsDouble(sx, x.Layout.IndexOf(i)));
        }
    }

    /// <inheritdoc/>
    public virtual void AdamStep(View p, View grad, View m, View v, AdamHyper h)
    {
        var sp = ((HostStorage)p.Storage).Data; var sg = ((HostStorage)grad.Storage).Data;
        var sm = ((HostStorage)m.Storage).Data; var sv = ((HostStorage)v.Storage).Data;
        for (int i = 0; i < p.Layout.Numel; i++)
        {
            int ip = p.Layout.IndexOf(i), im = m.Layout.IndexOf(i), iv = v.Layout.IndexOf(i);
            double pi = ReadAsDouble(sp, ip), gi = ReadAsDouble(sg, grad.Layout.IndexOf(i));
            if (h.Decoupled) pi *= 1 - h.Lr * h.WeightDecay;
            else gi += h.WeightDecay * pi;
            double mi = h.Beta1 * ReadAsDouble(sm, im) + (1 - h.Beta1) * gi;
            double vi = h.Beta2 * ReadAsDouble(sv, iv) + (1 - h.Beta2) * gi * gi;
            WriteFromDouble(sm, im, mi);
            WriteFromDouble(sv, iv, vi);
            WriteFromDouble(sp, ip, pi - h.Lr / h.C1 * mi / (Math.Sqrt(vi / h.C2) + h.Eps));
        }
    }

    /// <inheritdoc/>
    public virtual void SgdStep(View p, View grad, View momentum, SgdHyper h)
    {
        var sp = ((HostStorage)p.Storage).Data; var sg = ((HostStorage)grad.Storage).Data; var sv = ((HostStorage)momentum.Storage).Data;
        for (int i = 0; i < p.Layout.Numel; i++)
        {
            int ip = p.Layout.IndexOf(i), iv = momentum.Layout.IndexOf(i);
            double pi = ReadAsDouble(sp, ip);
            double d = ReadAsDouble(sg, grad.Layout.IndexOf(i)) + h.WeightDecay * pi;
            double v = h.Momentum * ReadAsDouble(sv, iv) + d;
            WriteFromDouble(sv, iv, v);
            WriteFromDouble(sp, ip, pi - h.Lr * (h.Nesterov ? d + h.Momentum * v : v));
        }
    }

    /// <summary>Defined by its parts: x·wᵀ through <see cref="MatMul"/> on a transposed view, then the bias row added.</summary>
    public virtual Storage Linear(View x, View w, View? bias, bool relu)
    {
        int m = x.Shape[0], n = w.Shape[0];
        var wt = new View(w.Storage, w.Layout.Permute([1, 0]));
        var y = MatMul(x, wt, []);
        if (bias is { } b)
            y = Binary<AddOp>(new View(y, Layout.Contiguous([m, n])), new View(b.Storage, b.Layout.BroadcastTo([m, n])), [m, n]);
        return relu ? Unary<ReluOp>(new View(y, Layout.Contiguous([m, n]))) : y;
    }

    // The three convolution kernels are the definition written out: one sum per output element over
    // the window (y), and the same correspondence read backwards for the two adjoints.
    // y[b,o,oi,oj] = bias[o] + Σ_{c,ki,kj} w[o,c,ki,kj] · x[b,c, oi·sh - ph + ki·dh, oj·sw - pw + kj·dw]

    /// <inheritdoc/>
    public virtual Storage Conv2d(View x, View w, View? bias, WindowGeometry g, bool relu)
    {
        int n = x.Shape[0], o = w.Shape[0];
        var acc = new double[n * o * g.OutH * g.OutW];
        var sx = ((HostStorage)x.Storage).Data; var sw = ((HostStorage)w.Storage).Data;
        ForEachConvTerm(n, o, g, (yi, xi, wi) => acc[yi] += ReadAsDouble(sx, x.Layout.IndexOf(xi)) * ReadAsDouble(sw, w.Layout.IndexOf(wi)));
        if (bias is { } b)
        {
            var sb = ((HostStorage)b.Storage).Data;
            int l = g.OutH * g.OutW;
            for (int i = 0; i < acc.Length; i++) acc[i] += ReadAsDouble(sb, b.Layout.IndexOf(i / l % o));
        }
        if (relu)
            for (int i = 0; i < acc.Length; i++) acc[i] = ReluOp.Invoke(acc[i]);
        return FromDoubles(x.DType, acc);
    }

    /// <inheritdoc/>
    public virtual Storage Conv2dInputGrad(View gy, View w, WindowGeometry g)
    {
        int n = gy.Shape[0], o = w.Shape[0];
        var acc = new double[n * g.Channels * g.Height * g.Width];
        var sg = ((HostStorage)gy.Storage).Data; var sw = ((HostStorage)w.Storage).Data;
        ForEachConvTerm(n, o, g, (yi, xi, wi) => acc[xi] += ReadAsDouble(sg, gy.Layout.IndexOf(yi)) * ReadAsDouble(sw, w.Layout.IndexOf(wi)));
        return FromDoubles(gy.DType, acc);
    }

    /// <inheritdoc/>
    public virtual Storage Conv2dWeightGrad(View gy, View x, WindowGeometry g)
    {
        int n = gy.Shape[0], o = gy.Shape[1];
        var acc = new double[o * g.Channels * g.KernelH * g.KernelW];
        var sg = ((HostStorage)gy.Storage).Data; var sx = ((HostStorage)x.Storage).Data;
        ForEachConvTerm(n, o, g, (yi, xi, wi) => acc[wi] += ReadAsDouble(sg, gy.Layout.IndexOf(yi)) * ReadAsDouble(sx, x.Layout.IndexOf(xi)));
        return FromDoubles(gy.DType, acc);
    }

    // Calls term(y, x, w) with the flat row-major indices of every product in the convolution sum
    // (windows hanging over the zero padding contribute nothing).
    private static void ForEachConvTerm(int n, int o, WindowGeometry g, Action<int, int, int> term)
    {
        int c = g.Channels, kh = g.KernelH, kw = g.KernelW;
        for (int b = 0; b < n; b++)
            for (int oc = 0; oc < o; oc++)
                for (int oi = 0; oi < g.OutH; oi++)
                    for (int oj = 0; oj < g.OutW; oj++)
                    {
                        int yi = ((b * o + oc) * g.OutH + oi) * g.OutW + oj;
                        for (int ci = 0; ci < c; ci++)
                            for (int ki = 0; ki < kh; ki++)
                            {
                                int ii = oi * g.StrideH - g.PadH + ki * g.DilationH;
                                if (ii < 0 || ii >= g.Height) continue;
                                for (int kj = 0; kj < kw; kj++)
                                {
                                    int jj = oj * g.StrideW - g.PadW + kj * g.DilationW;
                                    if (jj < 0 || jj >= g.Width) continue;
                                    term(yi, ((b * c + ci) * g.Height + ii) * g.Width + jj, ((oc * c + ci) * kh + ki) * kw + kj);
                                }
                            }
                    }
    }

    private Storage FromDoubles(DType dtype, double[] acc)
    {
        var y = DTypes.NewArray(dtype, acc.Length);
        for (int i = 0; i < acc.Length; i++) WriteFromDouble(y, i, acc[i]);
        return Host(y);
    }

    /// <summary>
    /// The im2col correspondence both Unfold and Fold are defined by: for every column element
    /// (b, c·kh·kw + ki·kw + kj, oi·outW + oj) the image element (b, c, oi·sh - ph + ki·dh, oj·sw - pw + kj·dw)
    /// it reads, or -1 where the window hangs over the zero padding. Indices are row-major flat.
    /// </summary>
    protected static void ForEachWindowElement(int batch, WindowGeometry g, Action<int, int> pair)
    {
        int rows = g.Channels * g.KernelH * g.KernelW, l = g.OutH * g.OutW;
        for (int bi = 0; bi < batch; bi++)
            for (int c = 0; c < g.Channels; c++)
                for (int ki = 0; ki < g.KernelH; ki++)
                    for (int kj = 0; kj < g.KernelW; kj++)
                    {
                        int row = (c * g.KernelH + ki) * g.KernelW + kj;
                        for (int oi = 0; oi < g.OutH; oi++)
                            for (int oj = 0; oj < g.OutW; oj++)
                            {
                                int ii = oi * g.StrideH - g.PadH + ki * g.DilationH;
                                int jj = oj * g.StrideW - g.PadW + kj * g.DilationW;
                                bool inside = ii >= 0 && ii < g.Height && jj >= 0 && jj < g.Width;
                                pair(inside ? ((bi * g.Channels + c) * g.Height + ii) * g.Width + jj : -1,
                                     (bi * rows + row) * l + oi * g.OutW + oj);
                            }
                    }
    }

    /// <inheritdoc/>
    public virtual Storage Unfold(View x, WindowGeometry g)
    {
        int batch = x.Shape[0];
        var y = DTypes.NewArray(x.DType, batch * g.Channels * g.KernelH * g.KernelW * g.OutH * g.OutW);
        var src = ((HostStorage)x.Storage).Data;
        ForEachWindowElement(batch, g, (image, col) =>
            WriteFromDouble(y, col, image < 0 ? 0 : ReadAsDouble(src, x.Layout.IndexOf(image))));
        return Host(y);
    }

    /// <inheritdoc/>
    public virtual Storage Fold(View cols, WindowGeometry g)
    {
        int batch = cols.Shape[0];
        var acc = new double[batch * g.Channels * g.Height * g.Width];
        var src = ((HostStorage)cols.Storage).Data;
        ForEachWindowElement(batch, g, (image, col) =>
        {
            if (image >= 0) acc[image] += ReadAsDouble(src, cols.Layout.IndexOf(col));
        });
        var y = DTypes.NewArray(cols.DType, acc.Length);
        for (int i = 0; i < acc.Length; i++) WriteFromDouble(y, i, acc[i]);
        return Host(y);
    }

    /// <inheritdoc/>
    public virtual (Storage Values, Storage Indices) MaxPool2d(View x, WindowGeometry g)
    {
        int batch = x.Shape[0], l = g.OutH * g.OutW;
        var y = new int[batch * g.Channels * l];
        var values = DTypes.NewArray(x.DType, y.Length);
        var src = ((HostStorage)x.Storage).Data;
        for (int plane = 0; plane < batch * g.Channels; plane++)
            for (int oi = 0; oi < g.OutH; oi++)
                for (int oj = 0; oj < g.OutW; oj++)
                {
                    int best = -1;
                    double bv = 0;
                    for (int ki = 0; ki < g.KernelH; ki++)
                        for (int kj = 0; kj < g.KernelW; kj++)
                        {
                            int ii = oi * g.StrideH - g.PadH + ki * g.DilationH, jj = oj * g.StrideW - g.PadW + kj * g.DilationW;
                            if (ii < 0 || ii >= g.Height || jj < 0 || jj >= g.Width) continue;
                            double v = ReadAsDouble(src, x.Layout.IndexOf(plane * g.Height * g.Width + ii * g.Width + jj));
                            if (best < 0 || (!double.IsNaN(bv) && (v > bv || double.IsNaN(v)))) { best = ii * g.Width + jj; bv = v; }
                        }
                    if (best < 0) throw new ArgumentException($"max_pool2d: a window at ({oi}, {oj}) lies entirely in the padding");
                    int at = plane * l + oi * g.OutW + oj;
                    y[at] = best;
                    Array.Copy(src, x.Layout.IndexOf(plane * g.Height * g.Width + best), values, at, 1);
                }
        return (Host(values), Host(y));
    }

    /// <inheritdoc/>
    public virtual Storage MaxPool2dBackward(View grad, View indices, WindowGeometry g)
    {
        int planes = grad.Shape[0] * g.Channels, l = g.OutH * g.OutW, plane = g.Height * g.Width;
        var acc = new double[planes * plane];
        var src = ((HostStorage)grad.Storage).Data;
        var idx = Data<int>(indices.Storage);
        for (int p = 0; p < planes; p++)
            for (int k = 0; k < l; k++)
                acc[p * plane + CheckedIndex("max_pool2d_backward", idx[indices.Layout.IndexOf(p * l + k)], plane, 2)] +=
                    ReadAsDouble(src, grad.Layout.IndexOf(p * l + k));
        var y = DTypes.NewArray(grad.DType, acc.Length);
        for (int i = 0; i < acc.Length; i++) WriteFromDouble(y, i, acc[i]);
        return Host(y);
    }

    private static int CheckedIndex(string op, int idx, int size, int axis)
    {
        if ((uint)idx >= (uint)size)
            throw new IndexOutOfRangeException($"{op}: index {idx} is out of range for axis {axis} of size {size}");
        return idx;
    }

    /// <inheritdoc/>
    public virtual Storage Gather(View x, int axis, View index, string op = "gather")
    {
        var outShape = index.Shape;
        int n = Shapes.Numel(outShape);
        var y = DTypes.NewArray(x.DType, n);
        var src = ((HostStorage)x.Storage).Data;
        var idx = Data<int>(index.Storage);
        var xStrides = x.Layout.Strides;
        for (int i = 0; i < n; i++)
        {
            int rem = i, off = x.Layout.Offset;
            int target = CheckedIndex(op, idx[index.Layout.IndexOf(i)], x.Shape[axis], axis);
            for (int d = outShape.Length - 1; d >= 0; d--)
            {
                int coord = rem % outShape[d];
                rem /= outShape[d];
                off += (d == axis ? target : coord) * xStrides[d];
            }
            Array.Copy(src, off, y, i, 1);
        }
        return Host(y);
    }

    /// <inheritdoc/>
    public virtual Storage ScatterAdd(int[] shape, int axis, View index, View src)
    {
        var acc = new double[Shapes.Numel(shape)];
        var strides = Shapes.ContiguousStrides(shape);
        var idx = Data<int>(index.Storage);
        var s = ((HostStorage)src.Storage).Data;
        var srcShape = src.Shape;
        int n = Shapes.Numel(srcShape);
        for (int i = 0; i < n; i++)
        {
            int rem = i, off = 0;
            int target = CheckedIndex("scatter_add", idx[index.Layout.IndexOf(i)], shape[axis], axis);
            for (int d = srcShape.Length - 1; d >= 0; d--)
            {
                int coord = rem % srcShape[d];
                rem /= srcShape[d];
                off += (d == axis ? target : coord) * strides[d];
            }
            acc[off] += ReadAsDouble(s, src.Layout.IndexOf(i));
        }
        var y = DTypes.NewArray(src.DType, acc.Length);
        for (int i = 0; i < acc.Length; i++) WriteFromDouble(y, i, acc[i]);
        return Host(y);
    }

    /// <inheritdoc/>
    public virtual Storage Random(RandomKind kind, DType dtype, int length, ulong seed, ulong stream, double a, double b)
    {
        var y = DTypes.NewArray(dtype, length);
        FillRandom(y, 0, length, kind, seed, stream, a, b);
        return Host(y);
    }

    /// <summary>Fills y[start..end) with element i = f(seed, stream, i): any split of the range gives the same values.</summary>
    protected static void FillRandom(Array y, int start, int end, RandomKind kind, ulong seed, ulong stream, double a, double b)
    {
        bool f64 = y is double[];
        for (int i = start; i < end; i++)
        {
            ulong k = (ulong)i;
            double v = kind switch
            {
                RandomKind.Uniform => a + (b - a) * (f64 ? Philox.UniformDouble(seed, stream, k) : Philox.UniformFloat(seed, stream, k)),
                RandomKind.Normal => a + b * Philox.Normal(seed, stream, k),
                RandomKind.Integer => Philox.Integer(seed, stream, k, (int)a, (int)b),
                _ => (f64 ? Philox.UniformDouble(seed, stream, k) : Philox.UniformFloat(seed, stream, k)) < a ? 1 : 0,
            };
            WriteFromDouble(y, i, v);
        }
    }

    /// <inheritdoc/>
    public virtual (Storage Y, Storage Stats) LayerNormRows(View x, View? weight, View? bias, int cols, double eps)
    {
        int rows = cols == 0 ? 0 : x.Layout.Numel / cols;
        var src = ((HostStorage)x.Storage).Data;
        var y = DTypes.NewArray(x.DType, rows * cols);
        var stats = DTypes.NewArray(x.DType, rows * 2);
        for (int i = 0; i < rows; i++)
        {
            double sum = 0, sq = 0;
            for (int j = 0; j < cols; j++) sum += ReadAsDouble(src, x.Layout.IndexOf(i * cols + j));
            double mean = sum / cols;
            for (int j = 0; j < cols; j++) { double d = ReadAsDouble(src, x.Layout.IndexOf(i * cols + j)) - mean; sq += d * d; }
            double r = 1 / Math.Sqrt(sq / cols + eps);
            for (int j = 0; j < cols; j++)
            {
                double v = (ReadAsDouble(src, x.Layout.IndexOf(i * cols + j)) - mean) * r;
                if (weight is View w) v *= ReadAsDouble(((HostStorage)w.Storage).Data, w.Layout.IndexOf(j));
                if (bias is View b) v += ReadAsDouble(((HostStorage)b.Storage).Data, b.Layout.IndexOf(j));
                WriteFromDouble(y, i * cols + j, v);
            }
            WriteFromDouble(stats, 2 * i, mean);
            WriteFromDouble(stats, 2 * i + 1, r);
        }
        return (Host(y), Host(stats));
    }

    /// <inheritdoc/>
    public virtual (Storage Dx, Storage GXhat) LayerNormRowsBackward(View x, View? weight, View stats, View grad, int cols)
    {
        int rows = cols == 0 ? 0 : x.Layout.Numel / cols;
        var src = ((HostStorage)x.Storage).Data;
        var gs = ((HostStorage)grad.Storage).Data;
        var st = ((HostStorage)stats.Storage).Data;
        var dx = DTypes.NewArray(x.DType, rows * cols);
        var gxh = DTypes.NewArray(x.DType, rows * cols);
        var xhat = new double[cols];
        var gh = new double[cols];
        for (int i = 0; i < rows; i++)
        {
            double mean = ReadAsDouble(st, stats.Layout.IndexOf(2 * i)), r = ReadAsDouble(st, stats.Layout.IndexOf(2 * i + 1));
            double sumG = 0, sumGx = 0;
            for (int j = 0; j < cols; j++)
            {
                double g = ReadAsDouble(gs, grad.Layout.IndexOf(i * cols + j));
                xhat[j] = (ReadAsDouble(src, x.Layout.IndexOf(i * cols + j)) - mean) * r;
                gh[j] = weight is View w ? g * ReadAsDouble(((HostStorage)w.Storage).Data, w.Layout.IndexOf(j)) : g;
                sumG += gh[j];
                sumGx += gh[j] * xhat[j];
                WriteFromDouble(gxh, i * cols + j, g * xhat[j]);
            }
            for (int j = 0; j < cols; j++) WriteFromDouble(dx, i * cols + j, r * (gh[j] - sumG / cols - xhat[j] * (sumGx / cols)));
        }
        return (Host(dx), Host(gxh));
    }

    /// <inheritdoc/>
    public virtual Storage CrossEntropyRows(View logits, View targets)
    {
        int n = logits.Shape[0], c = logits.Shape[1];
        var src = ((HostStorage)logits.Storage).Data;
        var t = Data<int>(targets.Storage);
        var y = DTypes.NewArray(logits.DType, n);
        for (int i = 0; i < n; i++)
        {
            int target = t[targets.Layout.IndexOf(i)];
            if ((uint)target >= (uint)c)
                throw new ArgumentOutOfRangeException(nameof(targets), $"cross_entropy: target {target} at row {i} is outside [0, {c})");
            double m = double.NegativeInfinity;
            for (int j = 0; j < c; j++) m = Math.Max(m, ReadAsDouble(src, logits.Layout.IndexOf(i * c + j)));
            double s = 0;
            for (int j = 0; j < c; j++) s += Math.Exp(ReadAsDouble(src, logits.Layout.IndexOf(i * c + j)) - m);
            double xt = ReadAsDouble(src, logits.Layout.IndexOf(i * c + target));
            WriteFromDouble(y, i, Math.Log(s) - (xt - m));
        }
        return Host(y);
    }

    /// <inheritdoc/>
    public virtual Storage CrossEntropyRowsBackward(View logits, View targets, View grad)
    {
        int n = logits.Shape[0], c = logits.Shape[1];
        var src = ((HostStorage)logits.Storage).Data;
        var gs = ((HostStorage)grad.Storage).Data;
        var t = Data<int>(targets.Storage);
        var y = DTypes.NewArray(logits.DType, n * c);
        var e = new double[c];
        for (int i = 0; i < n; i++)
        {
            int target = t[targets.Layout.IndexOf(i)];
            if ((uint)target >= (uint)c)
                throw new ArgumentOutOfRangeException(nameof(targets), $"cross_entropy: target {target} at row {i} is outside [0, {c})");
            double m = double.NegativeInfinity, s = 0, g = ReadAsDouble(gs, grad.Layout.IndexOf(i));
            for (int j = 0; j < c; j++) m = Math.Max(m, ReadAsDouble(src, logits.Layout.IndexOf(i * c + j)));
            for (int j = 0; j < c; j++) s += e[j] = Math.Exp(ReadAsDouble(src, logits.Layout.IndexOf(i * c + j)) - m);
            for (int j = 0; j < c; j++) WriteFromDouble(y, i * c + j, (e[j] / s - (j == target ? 1 : 0)) * g);
        }
        return Host(y);
    }
}
