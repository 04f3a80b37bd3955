using ILGPU;

namespace MiniDeep.Gpu.Kernels;

/// <summary>Layer normalization of rows, one thread per row, accumulated in double (as the reference
/// backend does).</summary>
public static class Normalization
{
    // y = (x − μ)·r·w + b, r = 1/√(σ² + ε); flags: 1 = a weight, 2 = a bias
    /// <summary>One row of y, and its μ and r into stats.</summary>
    public static void LayerNormRows<T, C>(Index1D i, ArrayView<T> x, Strided xl, int cols, ArrayView<T> w, Strided wl, ArrayView<T> b, Strided bl,
        int flags, double eps, ArrayView<T> y, ArrayView<T> stats) where T : unmanaged where C : struct, IElem<T>
    {
        int row = i * cols;
        double sum = 0, sq = 0;
        for (int j = 0; j < cols; j++) sum += C.Get(x[xl.At(row + j)]);
        double mean = sum / cols;
        for (int j = 0; j < cols; j++) { double d = C.Get(x[xl.At(row + j)]) - mean; sq += d * d; }
        double r = 1 / Math.Sqrt(sq / cols + eps);
        for (int j = 0; j < cols; j++)
        {
            double v = (C.Get(x[xl.At(row + j)]) - mean) * r;
            if ((flags & 1) != 0) v *= C.Get(w[wl.At(j)]);
            if ((flags & 2) != 0) v += C.Get(b[bl.At(j)]);
            y[row + j] = C.Put(v);
        }
        stats[2 * i] = C.Put(mean);
        stats[2 * i + 1] = C.Put(r);
    }

    // dx = r·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)), ĝ = g·w, x̂ = (x − μ)·r; gxh = g·x̂
    /// <summary>One row of the input gradient, and g·x̂ for the weight's gradient.</summary>
    public static void LayerNormRowsBackward<T, C>(Index1D i, ArrayView<T> x, Strided xl, int cols, ArrayView<T> w, Strided wl, int hasWeight,
        ArrayView<T> stats, Strided sl, ArrayView<T> g, Strided gl, ArrayView<T> dx, ArrayView<T> gxh) where T : unmanaged where C : struct, IElem<T>
    {
        int row = i * cols;
        double mean = C.Get(stats[sl.At(2 * i)]), r = C.Get(stats[sl.At(2 * i + 1)]);
        double sumG = 0, sumGx = 0;
        for (int j = 0; j < cols; j++)
        {
            double xhat = (C.Get(x[xl.At(row + j)]) - mean) * r, gj = C.Get(g[gl.At(row + j)]);
            double gh = hasWeight != 0 ? gj * C.Get(w[wl.At(j)]) : gj;
            sumG += gh;
            sumGx += gh * xhat;
        }
        for (int j = 0; j < cols; j++)
        {
            double xhat = (C.Get(x[xl.At(row + j)]) - mean) * r, gj = C.Get(g[gl.At(row + j)]);
            double gh = hasWeight != 0 ? gj * C.Get(w[wl.At(j)]) : gj;
            dx[row + j] = C.Put(r * (gh - sumG / cols - xhat * (sumGx / cols)));
            gxh[row + j] = C.Put(gj * xhat);
        }
    }
}
