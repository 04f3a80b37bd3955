using ILGPU;

namespace MiniDeep.Gpu.Kernels;

/// <summary>The fused softmax + cross-entropy rows, one thread per row, in the max-shifted frame.</summary>
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
        for (int j = 0; j < classes; j++) s += Math.Exp(C.Get(x[xl.At(row + j)]) - m);
        y[i] = C.Put(Math.Log(s) - (C.Get(x[xl.At(row + target)]) - m));
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
        for (int c = 0; c < classes; c++) s += Math.Exp(C.Get(x[xl.At(row + c)]) - m);
        double e = Math.Exp(C.Get(x[xl.At(row + j)]) - m);
        y[k] = C.Put((e / s - (j == target ? 1 : 0)) * C.Get(grad[gl.At(i)]));
    }
}

/// <summary>
/// The counter-based generator on the device: element i of a fill is a function of (seed, stream, i)
/// only, the same Philox-4×32-10 rounds as <see cref="Philox"/>, so a GPU tensor and a CPU tensor
/// drawn with the same seed hold the same numbers (uniform and integer bits exactly; normals up to the
/// last bits of the device's log and cos).
/// </summary>
public static class RandomFill
{
    /// <summary>Writes the four words of the Philox block for counter (index, stream) under key seed.</summary>
    private static void Block(ulong seed, ulong stream, ulong index, out uint c0, out uint c1, out uint c2, out uint c3)
    {
        c0 = (uint)index; c1 = (uint)(index >> 32); c2 = (uint)stream; c3 = (uint)(stream >> 32);
        uint k0 = (uint)seed, k1 = (uint)(seed >> 32);
        for (int r = 0; r < 10; r++)
        {
            ulong p0 = (ulong)0xD2511F53u * c0, p1 = (ulong)0xCD9E8D57u * c2;
            uint n0 = (uint)(p1 >> 32) ^ c1 ^ k0;
            uint n1 = (uint)p1;
            uint n2 = (uint)(p0 >> 32) ^ c3 ^ k1;
            uint n3 = (uint)p0;
            c0 = n0; c1 = n1; c2 = n2; c3 = n3;
            k0 += 0x9E3779B9u; k1 += 0xBB67AE85u;
        }
    }

    /// <summary>
    /// y[i] for kind 0 uniform on [a, b), 1 normal (mean a, sd b), 2 integer on [a, b), 3 Bernoulli(a);
    /// <paramref name="f64"/> selects the 53-bit uniform (float64 tensors) over the 24-bit one.
    /// </summary>
    public static void Fill<T, C>(Index1D i, ArrayView<T> y, ulong seed, ulong stream, int kind, int f64, double a, double b)
        where T : unmanaged where C : struct, IElem<T>
    {
        Block(seed, stream, (ulong)i.X, out uint w0, out uint w1, out uint w2, out uint w3);
        double u = f64 != 0 ? ((((ulong)w0 << 32) | w1) >> 11) * (1.0 / 9007199254740992.0) : (double)((w0 >> 8) * (1f / 16777216f));
        double v;
        if (kind == 0) v = a + (b - a) * u;
        else if (kind == 1)
        {
            double u1 = (((((ulong)w0 << 32) | w1) >> 11) + 1) * (1.0 / 9007199254740992.0);
            double u2 = ((((ulong)w2 << 32) | w3) >> 11) * (1.0 / 9007199254740992.0);
            v = a + b * (Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
        }
        else if (kind == 2)
        {
            long low = (long)a;
            ulong range = (ulong)((long)b - low);
            v = (int)(low + (long)((w0 * range) >> 32));
        }
        else v = u < a ? 1 : 0;
        y[i] = C.Put(v);
    }
}
