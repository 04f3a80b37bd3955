using ILGPU;

namespace MiniDeep.Gpu.Kernels;

/// <summary>The fused softmax + cross-entropy rows, one thread per row, in the max-shifted frame. Exp and
/// log are Core's <c>Elementary</c> functions, not Math.Exp and Math.Log: ILGPU builds those from CORDIC
/// iterations, and this kernel took 0.7 ms for 1,024 rows of 10 classes on an H200 with them.</summary>
public static class Loss
{
    // loss_i = log Σ_j exp(x_ij − m_i) − (x_it − m_i),   m_i = max_j x_ij
    /// <summary>Per-row loss; a target outside [0, C) is recorded in err.</summary>
    public static void CrossEntropyRows<T, C>(Index1D i, ArrayView<T> x, Strided xl, int classes, ArrayView<int> targets, Strided tl, ArrayView<T> y, ArrayView<int> err)
        where T : unmanaged where C : struct, IElem<T>
    {
        int target = targets[tl.At(i)];
        if (target < 0 || target >= classes) { err[0] = 1; err[1] = target; err[2] = i; y[i] = default; return; }
        int row = i * classes;
        double m = double.NegativeInfinity;
        for (int j = 0; j < classes; j++) { double v = C.Get(x[xl.At(row + j)]); m = v > m || double.IsNaN(v) ? v : m; }
        double s = 0;
        for (int j = 0; j < classes; j++) s += Elementary.Exp(C.Get(x[xl.At(row + j)]) - m);
        y[i] = C.Put(Elementary.Log(s) - (C.Get(x[xl.At(row + target)]) - m));
    }

    // dloss_i/dx_ij = softmax(x_i)_j − [j = t_i], times the incoming gradient of row i
    /// <summary>Gradient of <see cref="CrossEntropyRows{T, C}"/>, one thread per element.</summary>
    public static void CrossEntropyRowsBackward<T, C>(Index1D k, ArrayView<T> x, Strided xl, int classes, ArrayView<int> targets, Strided tl,
        ArrayView<T> grad, Strided gl, ArrayView<T> y, ArrayView<int> err) where T : unmanaged where C : struct, IElem<T>
    {
        int i = k / classes, j = k - i * classes, row = i * classes;
        int target = targets[tl.At(i)];
        if (target < 0 || target >= classes) { err[0] = 1; err[1] = target; err[2] = i; y[k] = default; return; }
        double m = double.NegativeInfinity;
        for (int c = 0; c < classes; c++) { double v = C.Get(x[xl.At(row + c)]); m = v > m || double.IsNaN(v) ? v : m; }
        double s = 0;
        for (int c = 0; c < classes; c++) s += Elementary.Exp(C.Get(x[xl.At(row + c)]) - m);
        double e = Elementary.Exp(C.Get(x[xl.At(row + j)]) - m);
        y[k] = C.Put((e / s - (j == target ? 1 : 0)) * C.Get(grad[gl.At(i)]));
    }
}

/// <summary>
/// The counter-based generator on the device: element i of a fill is a function of (seed, stream, i)
/// only, computed by the very functions of <see cref="Philox"/> the CPU backends call (ILGPU compiles
/// them into the kernel), so a GPU tensor and a CPU tensor drawn with the same seed hold the same numbers
/// (uniform and integer bits exactly; normals up to the last bits of the device's log and cos).
/// </summary>
public static class RandomFill
{
    /// <summary>
    /// y[i] for kind 0 uniform on [a, b), 1 normal (mean a, sd b), 2 integer on [a, b), 3 Bernoulli(a);
    /// <paramref name="f64"/> selects the 53-bit uniform (float64 tensors) over the 24-bit one. The same
    /// cases as the reference backend's FillRandom.
    /// </summary>
    public static void Fill<T, C>(Index1D i, ArrayView<T> y, ulong seed, ulong stream, int kind, int f64, double a, double b)
        where T : unmanaged where C : struct, IElem<T>
    {
        ulong k = (ulong)i.X;
        double v;
        if (kind == 1) v = a + b * Philox.Normal(seed, stream, k);
        else if (kind == 2) v = Philox.Integer(seed, stream, k, (int)a, (int)b);
        else
        {
            double u = f64 != 0 ? Philox.UniformDouble(seed, stream, k) : Philox.UniformFloat(seed, stream, k);
            v = kind == 0 ? a + (b - a) * u : u < a ? 1 : 0;
        }
        y[i] = C.Put(v);
    }
}
