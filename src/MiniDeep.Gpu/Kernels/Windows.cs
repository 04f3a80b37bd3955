using ILGPU;

namespace MiniDeep.Gpu.Kernels;

/// <summary>
/// Sliding-window kernels: im2col and its adjoint (convolution by GEMM), max pooling and its adjoint.
/// The adjoints are written as gathers (each input pixel sums the windows that cover it, in window
/// order) rather than scatters, so they need no atomics and give the same bits on every run.
/// </summary>
public static class Windows
{
    /// <summary>cols[b, (c, ki, kj), (oi, oj)] = x[b, c, oi·sh − ph + ki·dh, oj·sw − pw + kj·dw], zero outside the image.</summary>
    public static void Unfold<T>(Index1D idx, ArrayView<T> x, Strided xl, WindowGeometry g, int outH, int outW, ArrayView<T> cols) where T : unmanaged
    {
        int l = outH * outW, kk = g.KernelH * g.KernelW;
        int rows = g.Channels * kk;
        int b = idx / (rows * l), r = idx - b * rows * l;
        int row = r / l, pos = r - row * l;
        int c = row / kk, k = row - c * kk, ki = k / g.KernelW, kj = k - ki * g.KernelW;
        int oi = pos / outW, oj = pos - oi * outW;
        int ii = oi * g.StrideH - g.PadH + ki * g.DilationH, jj = oj * g.StrideW - g.PadW + kj * g.DilationW;
        cols[idx] = ii < 0 || ii >= g.Height || jj < 0 || jj >= g.Width
            ? default
            : x[xl.At(((b * g.Channels + c) * g.Height + ii) * g.Width + jj)];
    }

    /// <summary>x[b, c, ii, jj] = Σ over the windows covering the pixel of cols[b, (c, ki, kj), (oi, oj)] (col2im).</summary>
    public static void Fold<T, C>(Index1D idx, ArrayView<T> cols, Strided cl, WindowGeometry g, int outH, int outW, ArrayView<T> x)
        where T : unmanaged where C : struct, IElem<T>
    {
        int plane = g.Height * g.Width, l = outH * outW;
        int bc = idx / plane, p = idx - bc * plane, ii = p / g.Width, jj = p - ii * g.Width;
        int b = bc / g.Channels, c = bc - b * g.Channels;
        double acc = 0;
        for (int ki = 0; ki < g.KernelH; ki++)
        {
            int ti = ii + g.PadH - ki * g.DilationH;
            if (ti < 0 || ti % g.StrideH != 0) continue;
            int oi = ti / g.StrideH;
            if (oi >= outH) continue;
            for (int kj = 0; kj < g.KernelW; kj++)
            {
                int tj = jj + g.PadW - kj * g.DilationW;
                if (tj < 0 || tj % g.StrideW != 0) continue;
                int oj = tj / g.StrideW;
                if (oj >= outW) continue;
                int row = (c * g.KernelH + ki) * g.KernelW + kj;
                acc += C.Get(cols[cl.At((b * g.Channels * g.KernelH * g.KernelW + row) * l + oi * outW + oj)]);
            }
        }
        x[idx] = C.Put(acc);
    }

    /// <summary>
    /// Max of each window and the flat index ii·W + jj of its first maximum (padding never wins, a NaN
    /// does). A window entirely in the padding is recorded in err.
    /// </summary>
    public static void MaxPool<T, C>(Index1D idx, ArrayView<T> x, Strided xl, WindowGeometry g, int outH, int outW,
        ArrayView<T> values, ArrayView<int> indices, ArrayView<int> err) where T : unmanaged where C : struct, IElem<T>
    {
        int l = outH * outW, plane = idx / l, k = idx - plane * l, oi = k / outW, oj = k - oi * outW;
        int best = -1;
        double bv = 0;
        for (int ki = 0; ki < g.KernelH; ki++)
            for (int kj = 0; kj < g.KernelW; kj++)
            {
                int ii = oi * g.StrideH - g.PadH + ki * g.DilationH, jj = oj * g.StrideW - g.PadW + kj * g.DilationW;
                if (ii < 0 || ii >= g.Height || jj < 0 || jj >= g.Width) continue;
                double v = C.Get(x[xl.At(plane * g.Height * g.Width + ii * g.Width + jj)]);
                if (best < 0 || (!double.IsNaN(bv) && (v > bv || double.IsNaN(v)))) { best = ii * g.Width + jj; bv = v; }
            }
        if (best < 0) { err[0] = 1; err[1] = oi; err[2] = oj; best = 0; }
        indices[idx] = best;
        values[idx] = x[xl.At(plane * g.Height * g.Width + best)];
    }

    /// <summary>grad_x[p, q] = Σ grad[p, k] over the windows k (in order) whose maximum is pixel q.</summary>
    public static void MaxPoolBackward<T, C>(Index1D idx, ArrayView<T> grad, Strided gl, ArrayView<int> indices, Strided il,
        WindowGeometry g, int outH, int outW, ArrayView<T> dx) where T : unmanaged where C : struct, IElem<T>
    {
        int planeSize = g.Height * g.Width, l = outH * outW;
        int p = idx / planeSize, q = idx - p * planeSize, ii = q / g.Width, jj = q - ii * g.Width;
        double acc = 0;
        // Windows covering (ii, jj) in increasing window number: ki (then kj) from the top down.
        for (int ki = g.KernelH - 1; ki >= 0; ki--)
        {
            int ti = ii + g.PadH - ki * g.DilationH;
            if (ti < 0 || ti % g.StrideH != 0) continue;
            int oi = ti / g.StrideH;
            if (oi >= outH) continue;
            for (int kj = g.KernelW - 1; kj >= 0; kj--)
            {
                int tj = jj + g.PadW - kj * g.DilationW;
                if (tj < 0 || tj % g.StrideW != 0) continue;
                int oj = tj / g.StrideW;
                if (oj >= outW) continue;
                int k = p * l + oi * outW + oj;
                if (indices[il.At(k)] == q) acc += C.Get(grad[gl.At(k)]);
            }
        }
        dx[idx] = C.Put(acc);
    }
}
