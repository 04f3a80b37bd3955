using System.Numerics;
using ILGPU;

namespace MiniDeep.Gpu.Kernels;

/// <summary>Reads and writes one element type through double, with PyTorch's conversions (the
/// reference backend's ReadAsDouble/WriteFromDouble on the device).</summary>
public interface IElem<T> where T : unmanaged
{
    /// <summary>The element as a double (exact for every dtype we have).</summary>
    static abstract double Get(T x);
    /// <summary>A double stored as T: float rounding, int truncation (NaN to 0, saturating), bool = (v != 0).</summary>
    static abstract T Put(double v);
}

#pragma warning disable CS1591 // codecs are named after their element type
public struct F32 : IElem<float> { public static double Get(float x) => x; public static float Put(double v) => (float)v; }
public struct F64 : IElem<double> { public static double Get(double x) => x; public static double Put(double v) => v; }
public struct I32 : IElem<int>
{
    public static double Get(int x) => x;
    public static int Put(double v) => double.IsNaN(v) ? 0 : v >= 2147483647.0 ? int.MaxValue : v <= -2147483648.0 ? int.MinValue : (int)v;
}
public struct U8 : IElem<byte> { public static double Get(byte x) => x; public static byte Put(double v) => v != 0 ? (byte)1 : (byte)0; }
#pragma warning restore CS1591

/// <summary>
/// Elementwise kernels. Each thread computes one output element; inputs are read through their
/// layouts (<see cref="Strided"/>), so transposed, sliced and broadcast views need no copy first. The
/// op itself is the same operator struct the CPU backends use (one scalar definition serves all).
/// </summary>
public static class Elementwise
{
    /// <summary>y[i] = v.</summary>
    public static void Fill<T>(Index1D i, ArrayView<T> y, T v) where T : unmanaged => y[i] = v;

    /// <summary>dst[dl(i)] = convert(src[sl(i)]): copies, casts, and writes into views.</summary>
    public static void Convert<TS, TD, CS, CD>(Index1D i, ArrayView<TS> src, Strided sl, ArrayView<TD> dst, Strided dl)
        where TS : unmanaged where TD : unmanaged where CS : struct, IElem<TS> where CD : struct, IElem<TD>
        => dst[dl.At(i)] = CD.Put(CS.Get(src[sl.At(i)]));

    /// <summary>dst[dl(i)] = src[sl(i)], same type.</summary>
    public static void Copy<T>(Index1D i, ArrayView<T> src, Strided sl, ArrayView<T> dst, Strided dl) where T : unmanaged
        => dst[dl.At(i)] = src[sl.At(i)];

    /// <summary>y[i] = op(x[xl(i)]), float32.</summary>
    public static void UnaryF32<TOp>(Index1D i, ArrayView<float> x, Strided xl, ArrayView<float> y) where TOp : IUnaryOp
        => y[i] = TOp.Invoke(x[xl.At(i)]);

    /// <summary>y[i] = op(x[xl(i)]), float64.</summary>
    public static void UnaryF64<TOp>(Index1D i, ArrayView<double> x, Strided xl, ArrayView<double> y) where TOp : IUnaryOp
        => y[i] = TOp.Invoke(x[xl.At(i)]);

    /// <summary>y[i] = op(a[al(i)], b[bl(i)]), float32.</summary>
    public static void BinaryF32<TOp>(Index1D i, ArrayView<float> a, Strided al, ArrayView<float> b, Strided bl, ArrayView<float> y) where TOp : IBinaryOp
        => y[i] = TOp.Invoke(a[al.At(i)], b[bl.At(i)]);

    /// <summary>y[i] = op(a[al(i)], b[bl(i)]), float64.</summary>
    public static void BinaryF64<TOp>(Index1D i, ArrayView<double> a, Strided al, ArrayView<double> b, Strided bl, ArrayView<double> y) where TOp : IBinaryOp
        => y[i] = TOp.Invoke(a[al.At(i)], b[bl.At(i)]);

    /// <summary>a[al(i)] = op(a[al(i)], b[bl(i)]) in place, float32.</summary>
    public static void BinaryInPlaceF32<TOp>(Index1D i, ArrayView<float> a, Strided al, ArrayView<float> b, Strided bl) where TOp : IBinaryOp
    {
        int at = al.At(i);
        a[at] = TOp.Invoke(a[at], b[bl.At(i)]);
    }

    /// <summary>a[al(i)] = op(a[al(i)], b[bl(i)]) in place, float64.</summary>
    public static void BinaryInPlaceF64<TOp>(Index1D i, ArrayView<double> a, Strided al, ArrayView<double> b, Strided bl) where TOp : IBinaryOp
    {
        int at = al.At(i);
        a[at] = TOp.Invoke(a[at], b[bl.At(i)]);
    }

    /// <summary>y[i] = op(a[al(i)], b[bl(i)]) as a bool byte, any numeric type.</summary>
    public static void Compare<T, TOp>(Index1D i, ArrayView<T> a, Strided al, ArrayView<T> b, Strided bl, ArrayView<byte> y)
        where T : unmanaged, INumber<T> where TOp : ICompareOp
        => y[i] = TOp.Invoke(a[al.At(i)], b[bl.At(i)]) ? (byte)1 : (byte)0;

    /// <summary>y[i] = cond ? a : b.</summary>
    public static void Where<T>(Index1D i, ArrayView<byte> cond, Strided cl, ArrayView<T> a, Strided al, ArrayView<T> b, Strided bl, ArrayView<T> y) where T : unmanaged
        => y[i] = cond[cl.At(i)] != 0 ? a[al.At(i)] : b[bl.At(i)];

    /// <summary>y ← y + α·x in place, computed in double and rounded once (as the reference does).</summary>
    public static void Axpy<T, C>(Index1D i, ArrayView<T> y, Strided yl, ArrayView<T> x, Strided xl, double alpha) where T : unmanaged where C : struct, IElem<T>
    {
        int at = yl.At(i);
        y[at] = C.Put(C.Get(y[at]) + alpha * C.Get(x[xl.At(i)]));
    }

    /// <summary>The scalars of <see cref="SgdHyper"/> as a kernel takes them (ILGPU's CPU launcher
    /// failed on the ten separate arguments; one struct is also one parameter copy on a GPU).</summary>
    public struct SgdArgs
    {
#pragma warning disable CS1591
        public double Lr, Momentum, WeightDecay;
        public int Nesterov;
#pragma warning restore CS1591
        /// <summary>The kernel form of one step's scalars.</summary>
        public static SgdArgs Of(SgdHyper h) => new() { Lr = h.Lr, Momentum = h.Momentum, WeightDecay = h.WeightDecay, Nesterov = h.Nesterov ? 1 : 0 };
    }

    /// <summary>One SGD-with-momentum step of one element (see <see cref="SgdHyper"/>).</summary>
    // d = g + λp;  v = μv + d;  p = p − lr·(d + μv) (Nesterov) or p − lr·v
    public static void SgdStep<T, C>(Index1D i, ArrayView<T> p, Strided pl, ArrayView<T> g, Strided gl, ArrayView<T> v, Strided vl, SgdArgs h)
        where T : unmanaged where C : struct, IElem<T>
    {
        int ip = pl.At(i), iv = vl.At(i);
        double pi = C.Get(p[ip]);
        double d = C.Get(g[gl.At(i)]) + h.WeightDecay * pi;
        double vi = h.Momentum * C.Get(v[iv]) + d;
        v[iv] = C.Put(vi);
        p[ip] = C.Put(pi - h.Lr * (h.Nesterov != 0 ? d + h.Momentum * vi : vi));
    }

    /// <summary>The scalars of <see cref="AdamHyper"/> as a kernel can take them (no bool field).</summary>
    public struct AdamArgs
    {
#pragma warning disable CS1591
        public double Lr, Beta1, Beta2, Eps, WeightDecay, C1, C2;
        public int Decoupled;
#pragma warning restore CS1591
        /// <summary>The kernel form of one step's scalars.</summary>
        public static AdamArgs Of(AdamHyper h) => new()
        {
            Lr = h.Lr, Beta1 = h.Beta1, Beta2 = h.Beta2, Eps = h.Eps, WeightDecay = h.WeightDecay, C1 = h.C1, C2 = h.C2, Decoupled = h.Decoupled ? 1 : 0,
        };
    }

    /// <summary>One Adam step of one element (see <see cref="AdamHyper"/>).</summary>
    // m = β₁m + (1−β₁)g;  v = β₂v + (1−β₂)g²;  p = p − (lr/c₁)·m / (√(v/c₂) + ε)
    public static void AdamStep<T, C>(Index1D i, ArrayView<T> p, Strided pl, ArrayView<T> g, Strided gl, ArrayView<T> m, Strided ml, ArrayView<T> v, Strided vl,
        AdamArgs h) where T : unmanaged where C : struct, IElem<T>
    {
        int ip = pl.At(i), im = ml.At(i), iv = vl.At(i);
        double pi = C.Get(p[ip]), gi = C.Get(g[gl.At(i)]);
        if (h.Decoupled != 0) pi *= 1 - h.Lr * h.WeightDecay;
        else gi += h.WeightDecay * pi;
        double mi = h.Beta1 * C.Get(m[im]) + (1 - h.Beta1) * gi;
        double vi = h.Beta2 * C.Get(v[iv]) + (1 - h.Beta2) * gi * gi;
        m[im] = C.Put(mi);
        v[iv] = C.Put(vi);
        p[ip] = C.Put(pi - h.Lr / h.C1 * mi / (Math.Sqrt(vi / h.C2) + h.Eps));
    }
}
