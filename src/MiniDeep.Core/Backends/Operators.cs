using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.Intrinsics;

namespace MiniDeep;

// Operator structs: one scalar definition per op serves the reference backend (and, later, the GPU
// kernels); the optional span overloads let the CPU backend use TensorPrimitives' SIMD loops where
// they exist. Returning false means "no vector kernel here, loop the scalar Invoke".
// The derivative of each op is not here: it lives with the differentiable op in Ops/.
//
// The float32 definitions of the transcendental functions (exp, log, sin, cos, sigmoid, tanh, pow)
// evaluate in float64 and round once. ILGPU compiles MathF.Tanh to PTX's tanh.approx.f32, which keeps
// about 11 bits, MathF.Sin and Cos to sin/cos.approx (no range reduction), and MathF.Exp, Log and Pow to
// ex2/lg2.approx of a rescaled argument, whose error grows with |x|. Its float64 Math functions are
// software CORDIC iterations: slow (a cross-entropy kernel of 1,024 rows took 0.7 ms on an H200) and,
// for Tanh and Sin, wrong for some arguments. So exp, log, sin, cos and tanh come from Elementary and
// Trig below, a few dozen float64 multiply-adds each, accurate to a few float64 ulps; rounding to
// float32 then gives the same float on every backend (gpu-check's accuracy table, docs/gpu.md). The
// CPU backend's contiguous loops use TensorPrimitives and do not come here.

/// <summary>An elementwise function of one float.</summary>
public interface IUnaryOp
{
    /// <summary>Scalar definition (float32).</summary>
    static abstract float Invoke(float x);
    /// <summary>Scalar definition (float64).</summary>
    static abstract double Invoke(double x);
    /// <summary>Optional SIMD kernel over a whole span; false when there is none.</summary>
    static virtual bool Span<T>(ReadOnlySpan<T> x, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T> => false;
}

/// <summary>An elementwise function of two floats.</summary>
public interface IBinaryOp
{
    /// <summary>Scalar definition (float32).</summary>
    static abstract float Invoke(float a, float b);
    /// <summary>Scalar definition (float64).</summary>
    static abstract double Invoke(double a, double b);
    /// <summary>Optional SIMD kernel, span ∘ span.</summary>
    static virtual bool Span<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T> => false;
    /// <summary>Optional SIMD kernel, span ∘ scalar.</summary>
    static virtual bool Span<T>(ReadOnlySpan<T> a, T b, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T> => false;
    /// <summary>Optional SIMD kernel, scalar ∘ span.</summary>
    static virtual bool Span<T>(T a, ReadOnlySpan<T> b, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T> => false;
}

/// <summary>An elementwise comparison.</summary>
public interface ICompareOp
{
    /// <summary>Scalar definition for any numeric dtype.</summary>
    static abstract bool Invoke<T>(T a, T b) where T : INumber<T>;
}

#pragma warning disable CS1591 // the op structs are named after what they compute
public struct NegOp : IUnaryOp
{
    public static float Invoke(float x) => -x;
    public static double Invoke(double x) => -x;
    public static bool Span<T>(ReadOnlySpan<T> x, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T> { TensorPrimitives.Negate(x, y); return true; }
}

public struct ExpOp : IUnaryOp
{
    public static float Invoke(float x) => (float)Elementary.Exp(x);
    public static double Invoke(double x) => Elementary.Exp(x);
    public static bool Span<T>(ReadOnlySpan<T> x, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T> { TensorPrimitives.Exp(x, y); return true; }
}

public struct LogOp : IUnaryOp
{
    public static float Invoke(float x) => (float)Elementary.Log(x);
    public static double Invoke(double x) => Elementary.Log(x);
    public static bool Span<T>(ReadOnlySpan<T> x, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T> { TensorPrimitives.Log(x, y); return true; }
}

public struct SqrtOp : IUnaryOp
{
    public static float Invoke(float x) => MathF.Sqrt(x);
    public static double Invoke(double x) => Math.Sqrt(x);
    public static bool Span<T>(ReadOnlySpan<T> x, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T> { TensorPrimitives.Sqrt(x, y); return true; }
}

public struct AbsOp : IUnaryOp
{
    public static float Invoke(float x) => MathF.Abs(x);
    public static double Invoke(double x) => Math.Abs(x);
    public static bool Span<T>(ReadOnlySpan<T> x, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T> { TensorPrimitives.Abs(x, y); return true; }
}

/// <summary>sin, from <see cref="Trig"/> rather than Math.Sin (see there).</summary>
public struct SinOp : IUnaryOp
{
    public static float Invoke(float x) => (float)Trig.Sin(x);
    public static double Invoke(double x) => Trig.Sin(x);
    public static bool Span<T>(ReadOnlySpan<T> x, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T> { TensorPrimitives.Sin(x, y); return true; }
}

/// <summary>cos, from <see cref="Trig"/> rather than Math.Cos (see there).</summary>
public struct CosOp : IUnaryOp
{
    public static float Invoke(float x) => (float)Trig.Cos(x);
    public static double Invoke(double x) => Trig.Cos(x);
    public static bool Span<T>(ReadOnlySpan<T> x, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T> { TensorPrimitives.Cos(x, y); return true; }
}

/// <summary>sign(x) in {-1, 0, 1}; NaN stays NaN. (Not Math.Sign: it throws on NaN, and the GPU kernels,
/// compiled from this same struct, can contain no throw.)</summary>
public struct SignOp : IUnaryOp
{
    public static float Invoke(float x) => float.IsNaN(x) ? x : x > 0 ? 1f : x < 0 ? -1f : 0f;
    public static double Invoke(double x) => double.IsNaN(x) ? x : x > 0 ? 1d : x < 0 ? -1d : 0d;
}

/// <summary>max(x, 0). NaN propagates (Math.Max returns NaN when either input is NaN).</summary>
public struct ReluOp : IUnaryOp
{
    public static float Invoke(float x) => float.IsNaN(x) ? x : x > 0 ? x : 0f;
    public static double Invoke(double x) => double.IsNaN(x) ? x : x > 0 ? x : 0d;
    public static bool Span<T>(ReadOnlySpan<T> x, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T> { TensorPrimitives.Max(x, T.Zero, y); return true; }
}

/// <summary>1 / (1 + e^-x), written so that neither tail overflows.</summary>
public struct SigmoidOp : IUnaryOp
{
    public static float Invoke(float x) => (float)Invoke((double)x);
    public static double Invoke(double x) => x >= 0 ? 1d / (1d + Elementary.Exp(-x)) : Elementary.Exp(x) / (1d + Elementary.Exp(x));
    public static bool Span<T>(ReadOnlySpan<T> x, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T> { TensorPrimitives.Sigmoid(x, y); return true; }
}

/// <summary>
/// tanh from <see cref="Elementary.Exp"/> and arithmetic alone, to a few float64 ulps: ILGPU builds Math.Tanh(double) in software,
/// and on an H200 that code returned values hundreds of millions of float32 ulps off for some arguments
/// in [−10, 10] (gpu-check's accuracy table), so the op does not call it.
/// </summary>
public struct TanhOp : IUnaryOp
{
    public static float Invoke(float x) => (float)Invoke((double)x);
    public static double Invoke(double x)
    {
        double ax = Math.Abs(x);
        if (ax == 0 || double.IsNaN(x)) return x;         // ±0 keeps its sign
        if (ax >= 22) return x > 0 ? 1d : -1d;            // 1 − tanh(22) < 2⁻⁶³
        double t;
        if (ax < 0.34)
        {
            // tanh = e / (e + 2) with e = exp(2|x|) − 1, which must not be formed as exp − 1 near 0:
            // m = exp(|x|) − 1 from exp's own series (|x| lies inside its reduced range), then
            // exp(2|x|) − 1 = m(m + 2), all terms positive.
            double m = Elementary.ExpM1Reduced(ax);
            double e = m * (m + 2);
            t = e / (e + 2);
        }
        else
        {
            double q = Elementary.Exp(-2 * ax);           // at most e^−0.68 ≈ 0.51: 1 − q loses nothing
            t = (1 - q) / (1 + q);
        }
        return x > 0 ? t : -t;
    }

    public static bool Span<T>(ReadOnlySpan<T> x, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T> { TensorPrimitives.Tanh(x, y); return true; }
}

/// <summary>log(1 + e^x) = max(x, 0) + log1p(e^-|x|): exact for large |x| where the naive form overflows.</summary>
public struct SoftplusOp : IUnaryOp
{
    public static float Invoke(float x) => (float)Invoke((double)x);
    public static double Invoke(double x) => double.IsNaN(x) ? x : Math.Max(x, 0) + Log1P(Math.Exp(-Math.Abs(x)));

    // log(1 + u) for small u without losing the digits of u.
    private static double Log1P(double u) => u < 1e-4 ? u * (1 - u * (0.5 - u / 3)) : Math.Log(1 + u);
}

/// <summary>Φ(x), the standard normal CDF, = ½ erfc(-x/√2). GELU is x·Φ(x).</summary>
public struct NormCdfOp : IUnaryOp
{
    public static float Invoke(float x) => (float)Invoke((double)x);
    public static double Invoke(double x) => 0.5 * SpecialFunctions.Erfc(-x / Math.Sqrt(2));
}

public struct AddOp : IBinaryOp
{
    public static float Invoke(float a, float b) => a + b;
    public static double Invoke(double a, double b) => a + b;
    public static bool Span<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T> { TensorPrimitives.Add(a, b, y); return true; }
    public static bool Span<T>(ReadOnlySpan<T> a, T b, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T> { TensorPrimitives.Add(a, b, y); return true; }
    public static bool Span<T>(T a, ReadOnlySpan<T> b, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T> { TensorPrimitives.Add(b, a, y); return true; }
}

public struct SubOp : IBinaryOp
{
    public static float Invoke(float a, float b) => a - b;
    public static double Invoke(double a, double b) => a - b;
    public static bool Span<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T> { TensorPrimitives.Subtract(a, b, y); return true; }
    public static bool Span<T>(ReadOnlySpan<T> a, T b, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T> { TensorPrimitives.Subtract(a, b, y); return true; }
    public static bool Span<T>(T a, ReadOnlySpan<T> b, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T> { TensorPrimitives.Subtract(a, b, y); return true; }
}

public struct MulOp : IBinaryOp
{
    public static float Invoke(float a, float b) => a * b;
    public static double Invoke(double a, double b) => a * b;
    public static bool Span<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T> { TensorPrimitives.Multiply(a, b, y); return true; }
    public static bool Span<T>(ReadOnlySpan<T> a, T b, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T> { TensorPrimitives.Multiply(a, b, y); return true; }
    public static bool Span<T>(T a, ReadOnlySpan<T> b, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T> { TensorPrimitives.Multiply(b, a, y); return true; }
}

public struct DivOp : IBinaryOp
{
    public static float Invoke(float a, float b) => a / b;
    public static double Invoke(double a, double b) => a / b;
    public static bool Span<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T> { TensorPrimitives.Divide(a, b, y); return true; }
    public static bool Span<T>(ReadOnlySpan<T> a, T b, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T> { TensorPrimitives.Divide(a, b, y); return true; }
    public static bool Span<T>(T a, ReadOnlySpan<T> b, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T> { TensorPrimitives.Divide(a, b, y); return true; }
}

public struct PowOp : IBinaryOp
{
    public static float Invoke(float a, float b) => (float)Math.Pow(a, b);
    public static double Invoke(double a, double b) => Math.Pow(a, b);
}

/// <summary>Elementwise maximum; NaN wins (IEEE 754-2019 maximum), as in PyTorch.</summary>
public struct MaximumOp : IBinaryOp
{
    public static float Invoke(float a, float b) => MathF.Max(a, b);
    public static double Invoke(double a, double b) => Math.Max(a, b);
    public static bool Span<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T> { TensorPrimitives.Max(a, b, y); return true; }
    public static bool Span<T>(ReadOnlySpan<T> a, T b, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T> { TensorPrimitives.Max(a, b, y); return true; }
    public static bool Span<T>(T a, ReadOnlySpan<T> b, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T> { TensorPrimitives.Max(b, a, y); return true; }
}

/// <summary>Elementwise minimum; NaN wins.</summary>
public struct MinimumOp : IBinaryOp
{
    public static float Invoke(float a, float b) => MathF.Min(a, b);
    public static double Invoke(double a, double b) => Math.Min(a, b);
    public static bool Span<T>(ReadOnlySpan<T> a, ReadOnlySpan<T> b, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T> { TensorPrimitives.Min(a, b, y); return true; }
    public static bool Span<T>(ReadOnlySpan<T> a, T b, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T> { TensorPrimitives.Min(a, b, y); return true; }
    public static bool Span<T>(T a, ReadOnlySpan<T> b, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T> { TensorPrimitives.Min(b, a, y); return true; }
}

/// <summary>g where x &gt; 0, else 0: the ReLU backward in one vectorized pass (a = g, b = x).</summary>
public struct ReluMaskOp : IBinaryOp
{
    public static float Invoke(float g, float x) => x > 0 ? g : 0f;
    public static double Invoke(double g, double x) => x > 0 ? g : 0d;
    public static bool Span<T>(ReadOnlySpan<T> g, ReadOnlySpan<T> x, Span<T> y) where T : unmanaged, IFloatingPointIeee754<T>
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated && Vector512<T>.IsSupported)
            for (; i <= y.Length - Vector512<T>.Count; i += Vector512<T>.Count)
            {
                var xv = Vector512.Create(x.Slice(i, Vector512<T>.Count));
                Vector512.ConditionalSelect(Vector512.GreaterThan(xv, Vector512<T>.Zero), Vector512.Create(g.Slice(i, Vector512<T>.Count)), Vector512<T>.Zero)
                    .CopyTo(y.Slice(i, Vector512<T>.Count));
            }
        if (Vector256.IsHardwareAccelerated && Vector256<T>.IsSupported)
            for (; i <= y.Length - Vector256<T>.Count; i += Vector256<T>.Count)
            {
                var xv = Vector256.Create(x.Slice(i, Vector256<T>.Count));
                Vector256.ConditionalSelect(Vector256.GreaterThan(xv, Vector256<T>.Zero), Vector256.Create(g.Slice(i, Vector256<T>.Count)), Vector256<T>.Zero)
                    .CopyTo(y.Slice(i, Vector256<T>.Count));
            }
        if (Vector128.IsHardwareAccelerated && Vector128<T>.IsSupported)
            for (; i <= y.Length - Vector128<T>.Count; i += Vector128<T>.Count)
            {
                var xv = Vector128.Create(x.Slice(i, Vector128<T>.Count));
                Vector128.ConditionalSelect(Vector128.GreaterThan(xv, Vector128<T>.Zero), Vector128.Create(g.Slice(i, Vector128<T>.Count)), Vector128<T>.Zero)
                    .CopyTo(y.Slice(i, Vector128<T>.Count));
            }
        for (; i < y.Length; i++) y[i] = x[i] > T.Zero ? g[i] : T.Zero;
        return true;
    }
}

public struct EqOp : ICompareOp { public static bool Invoke<T>(T a, T b) where T : INumber<T> => a == b; }
public struct NeOp : ICompareOp { public static bool Invoke<T>(T a, T b) where T : INumber<T> => a != b; }
public struct LtOp : ICompareOp { public static bool Invoke<T>(T a, T b) where T : INumber<T> => a < b; }
public struct LeOp : ICompareOp { public static bool Invoke<T>(T a, T b) where T : INumber<T> => a <= b; }
public struct GtOp : ICompareOp { public static bool Invoke<T>(T a, T b) where T : INumber<T> => a > b; }
public struct GeOp : ICompareOp { public static bool Invoke<T>(T a, T b) where T : INumber<T> => a >= b; }
#pragma warning restore CS1591

/// <summary>Special functions .NET does not ship.</summary>
public static class SpecialFunctions
{
    /// <summary>erf(x) to double precision: Maclaurin series for |x| &lt; 2.5, else 1 - erfc.</summary>
    public static double Erf(double x)
    {
        if (double.IsNaN(x)) return x;
        double ax = Math.Abs(x);
        if (ax >= 2.5) return (x < 0 ? -1 : 1) * (1 - ErfcLarge(ax));
        // erf x = 2/√π Σ (-1)^n x^(2n+1) / (n! (2n+1)); terms peak near n ≈ x², so 60 terms
        // reach 1e-17 of the sum for |x| < 2.5 with at most a few digits lost to cancellation.
        double x2 = x * x, term = x, sum = x;
        for (int n = 1; n < 60; n++)
        {
            term *= -x2 / n;
            double t = term / (2 * n + 1);
            sum += t;
            if (Math.Abs(t) < 1e-17 * Math.Abs(sum)) break;
        }
        return 2 / Math.Sqrt(Math.PI) * sum;
    }

    /// <summary>erfc(x) = 1 - erf(x), accurate in the tails where 1 - erf would cancel.</summary>
    public static double Erfc(double x)
    {
        if (double.IsNaN(x)) return x;
        if (x >= 2.5) return ErfcLarge(x);
        if (x <= -2.5) return 2 - ErfcLarge(-x);
        return 1 - Erf(x);
    }

    // erfc for x ≥ 2.5 by its continued fraction, evaluated with the modified Lentz method:
    // erfc x = e^{-x²}/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))).
    private static double ErfcLarge(double x)
    {
        if (x > 27) return 0;
        const double tiny = 1e-300;
        double f = x, c = x, d = 0;
        for (int n = 1; n < 200; n++)
        {
            double an = n * 0.5;
            d = x + an * d; d = d == 0 ? tiny : d; d = 1 / d;
            c = x + an / c; c = c == 0 ? tiny : c;
            double delta = c * d;
            f *= delta;
            if (Math.Abs(delta - 1) < 1e-16) break;
        }
        return Math.Exp(-x * x) / Math.Sqrt(Math.PI) / f;
    }
}

/// <summary>
/// sin and cos to a few float64 ulps for |x| below about 2·10⁸, from arithmetic alone: ILGPU builds
/// Math.Sin(double) in software, and on an H200 that code returned values hundreds of millions of
/// float32 ulps off for some arguments in [−100, 100] (gpu-check's accuracy table). x = k·π/2 + r with
/// |r| ≤ π/4 (Cody and Waite's reduction: π/2 split into three 26-bit parts and a remainder, so each
/// k·part is exact while |k| &lt; 2²⁷), then the Taylor series of sin r or cos r, whose first omitted
/// terms (r¹⁹/19!, r²⁰/20!) are below 10⁻¹⁹ on that interval; the quadrant k mod 4 picks which and the sign.
/// </summary>
internal static class Trig
{
    private const double TwoOverPi = 0.6366197723675814;
    private const double P1 = 1.5707963109016418, P2 = 1.5893254712295857e-08, P3 = 6.123233932053594e-17, P4 = 6.36831716351095e-25;

    public static double Sin(double x)
    {
        if (x == 0) return x;                                       // ±0 keeps its sign
        if (!(Math.Abs(x) <= double.MaxValue)) return double.NaN;   // NaN and ±∞
        double k = Math.Round(x * TwoOverPi), r = Reduce(x, k);
        return Quadrant(k) switch { 0 => SinSeries(r), 1 => CosSeries(r), 2 => -SinSeries(r), _ => -CosSeries(r) };
    }

    public static double Cos(double x)
    {
        if (!(Math.Abs(x) <= double.MaxValue)) return double.NaN;
        double k = Math.Round(x * TwoOverPi), r = Reduce(x, k);
        return Quadrant(k) switch { 0 => CosSeries(r), 1 => -SinSeries(r), 2 => -CosSeries(r), _ => SinSeries(r) };
    }

    private static double Reduce(double x, double k) => (((x - k * P1) - k * P2) - k * P3) - k * P4;

    private static int Quadrant(double k) => (int)(k - 4 * Math.Floor(k * 0.25));

    // Horner in z = r²: r − r³/3! + r⁵/5! − … + r¹⁷/17!.
    private static double SinSeries(double r)
    {
        double z = r * r;
        double p = -1.0 / 1307674368000 + z / 355687428096000;      // −1/15! and 1/17!
        p = 1.0 / 6227020800 + z * p;
        p = -1.0 / 39916800 + z * p;
        p = 1.0 / 362880 + z * p;
        p = -1.0 / 5040 + z * p;
        p = 1.0 / 120 + z * p;
        p = -1.0 / 6 + z * p;
        return r + r * z * p;
    }

    // 1 − r²/2! + r⁴/4! − … up to r¹⁸/18!.
    private static double CosSeries(double r)
    {
        double z = r * r;
        double p = 1.0 / 20922789888000 - z / 6402373705728000;     // 1/16! and 1/18!
        p = -1.0 / 87178291200 + z * p;
        p = 1.0 / 479001600 + z * p;
        p = -1.0 / 3628800 + z * p;
        p = 1.0 / 40320 + z * p;
        p = -1.0 / 720 + z * p;
        p = 1.0 / 24 + z * p;
        p = -0.5 + z * p;
        return 1 + z * p;
    }
}

/// <summary>
/// exp and log in float64 from multiply-adds and the bits of the float, for every backend (see the note
/// at the top of this file). exp: x = k·ln 2 + r with |r| ≤ ln 2 / 2 (Cody and Waite: ln 2 split so that
/// k·Ln2Hi is exact), e^r by its Taylor series to r¹³ (the first term left out is below 5·10⁻¹⁸), times
/// 2^k built from its exponent bits in two halves (so that results near overflow and in the subnormal
/// range come out right). log: x = 2^e·m with m in [√½, √2), log m = 2 atanh(s) with s = (m − 1)/(m + 1),
/// |s| ≤ 0.172, by its odd series to s²³. Both agree with .NET's Math.Exp and Math.Log to a few ulps
/// (tested).
/// </summary>
internal static class Elementary
{
    private const double Log2E = 1.4426950408889634;
    private const double Ln2Hi = 0.6931471803691238, Ln2Lo = 1.9082149292705877e-10;   // Ln2Hi has 32 significant bits

    public static double Exp(double x)
    {
        if (double.IsNaN(x)) return x;
        if (x > 709.782712893384) return double.PositiveInfinity;
        if (x < -745.1332191019412) return 0;
        double k = Math.Round(x * Log2E);
        double r = (x - k * Ln2Hi) - k * Ln2Lo;
        int ki = (int)k, k1 = ki / 2;
        return (ExpM1Reduced(r) + 1) * Pow2(k1) * Pow2(ki - k1);
    }

    /// <summary>e^r − 1 = Σ rⁿ/n!, n = 1 … 13, by Horner, for |r| ≤ ln 2 / 2 (exp's reduced range).</summary>
    public static double ExpM1Reduced(double r)
    {
        double p = 1.0 / 6227020800;
        p = p * r + 1.0 / 479001600;
        p = p * r + 1.0 / 39916800;
        p = p * r + 1.0 / 3628800;
        p = p * r + 1.0 / 362880;
        p = p * r + 1.0 / 40320;
        p = p * r + 1.0 / 5040;
        p = p * r + 1.0 / 720;
        p = p * r + 1.0 / 120;
        p = p * r + 1.0 / 24;
        p = p * r + 1.0 / 6;
        p = p * r + 0.5;
        p = p * r + 1;
        return p * r;
    }

    public static double Log(double x)
    {
        if (!(x > 0)) return x == 0 ? double.NegativeInfinity : double.NaN;   // NaN and negatives
        if (x == double.PositiveInfinity) return x;
        int e = 0;
        if (x < 2.2250738585072014e-308) { x *= 18014398509481984.0; e = -54; }   // subnormal: scale by 2⁵⁴ first
        long bits = BitConverter.DoubleToInt64Bits(x);
        e += (int)(bits >> 52) - 1023;
        double m = BitConverter.Int64BitsToDouble((bits & 0x000FFFFFFFFFFFFFL) | 0x3FF0000000000000L);
        if (m > 1.4142135623730951) { m *= 0.5; e++; }
        double f = m - 1, s = f / (2 + f), z = s * s;   // m − 1 is exact for m in [½, 2]
        // 2 atanh(s) = 2s (1 + z/3 + z²/5 + … + z¹¹/23).
        double p = 1.0 / 23;
        p = p * z + 1.0 / 21;
        p = p * z + 1.0 / 19;
        p = p * z + 1.0 / 17;
        p = p * z + 1.0 / 15;
        p = p * z + 1.0 / 13;
        p = p * z + 1.0 / 11;
        p = p * z + 1.0 / 9;
        p = p * z + 1.0 / 7;
        p = p * z + 1.0 / 5;
        p = p * z + 1.0 / 3;
        p = p * z + 1;
        return e * Ln2Hi + (2 * s * p + e * Ln2Lo);
    }

    // 2^k for k in [−1022, 1023], from its exponent bits.
    private static double Pow2(int k) => BitConverter.Int64BitsToDouble((long)(k + 1023) << 52);
}
