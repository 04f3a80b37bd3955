using Xunit;

namespace MiniDeep.Tests.BackendTests;

/// <summary>
/// The scalar exp, log, sin, cos and tanh that every backend's kernels are built from (Operators.cs:
/// Elementary, Trig, TanhOp) against .NET's own functions, in units in the last place: they replace
/// ILGPU's, which were slow everywhere and wrong for some arguments on a GPU.
/// </summary>
public class ScalarMathTests
{
    private static long Ulps(double a, double b)
    {
        if (double.IsNaN(a) || double.IsNaN(b)) return double.IsNaN(a) && double.IsNaN(b) ? 0 : long.MaxValue;
        if (a == b) return 0;   // also ±∞ and ±0
        static long Ordered(double x) { long i = BitConverter.DoubleToInt64Bits(x); return i < 0 ? long.MinValue - i : i; }
        return Math.Abs(Ordered(a) - Ordered(b));
    }

    private static long FloatUlps(float a, float b)
    {
        if (float.IsNaN(a) || float.IsNaN(b) || float.IsInfinity(a) || float.IsInfinity(b)) return long.MaxValue;
        static long Ordered(float x) { int i = BitConverter.SingleToInt32Bits(x); return i < 0 ? int.MinValue - (long)i : i; }
        return Math.Abs(Ordered(a) - Ordered(b));
    }

    private static void Within(Func<double, double> ours, Func<double, double> dotnet, long ulps, IEnumerable<double> xs, string name)
    {
        foreach (double x in xs)
        {
            long u = Ulps(ours(x), dotnet(x));
            Assert.True(u <= ulps, $"{name}({x:R}) = {ours(x):R}, .NET: {dotnet(x):R} ({u} ulps apart)");
            // And rounded to float32, as the float32 kernels use them: .NET's float, or the next one when
            // the exact value lies within a few float64 ulps of a rounding boundary.
            float f = (float)x, a = (float)ours(f), b = (float)dotnet(f);
            Assert.True(a.Equals(b) || FloatUlps(a, b) <= 1, $"{name}((float){f:R}) in float32: {a:R} against {b:R}");
        }
    }

    private static IEnumerable<double> Uniform(double lo, double hi, int n, int seed)
    {
        var r = new Random(seed);
        for (int i = 0; i < n; i++) yield return lo + (hi - lo) * r.NextDouble();
    }

    [Fact]
    public void Exp_IsWithin3UlpsOfDotNets_FromUnderflowToOverflow()
    {
        Within(Elementary.Exp, Math.Exp, 3, Uniform(-745, 709.78, 200_000, 1), "exp");
        Within(Elementary.Exp, Math.Exp, 3, Uniform(-1e-6, 1e-6, 20_000, 2), "exp");
        Assert.Equal(double.PositiveInfinity, Elementary.Exp(710));
        Assert.Equal(0, Elementary.Exp(-746));
        Assert.True(double.IsNaN(Elementary.Exp(double.NaN)));
        Assert.Equal(1, Elementary.Exp(0));
        Assert.Equal(double.PositiveInfinity, Elementary.Exp(double.PositiveInfinity));
        Assert.Equal(0, Elementary.Exp(double.NegativeInfinity));
        Assert.True(Elementary.Exp(-740) > 0);   // subnormal results come out, not zero
    }

    [Fact]
    public void Log_IsWithin3UlpsOfDotNets_SubnormalsAndNearOneIncluded()
    {
        Within(Elementary.Log, Math.Log, 3, Uniform(-300, 300, 200_000, 3).Select(e => Math.Pow(10, e)), "log");
        Within(Elementary.Log, Math.Log, 3, Uniform(1 - 1e-6, 1 + 1e-6, 20_000, 4), "log");
        Within(Elementary.Log, Math.Log, 3, Uniform(0.5, 2, 100_000, 5), "log");
        Within(Elementary.Log, Math.Log, 3, [double.Epsilon, 1e-310, 2.2250738585072014e-308, double.MaxValue, 1, 2, 0.5, Math.Sqrt(2)], "log");
        Assert.Equal(double.NegativeInfinity, Elementary.Log(0));
        Assert.True(double.IsNaN(Elementary.Log(-1)));
        Assert.True(double.IsNaN(Elementary.Log(double.NaN)));
        Assert.Equal(double.PositiveInfinity, Elementary.Log(double.PositiveInfinity));
    }

    [Fact]
    public void SinCosTanh_AreWithinAFewUlpsOfDotNets()
    {
        Within(Trig.Sin, Math.Sin, 2, Uniform(-100, 100, 100_000, 6), "sin");
        Within(Trig.Cos, Math.Cos, 2, Uniform(-100, 100, 100_000, 7), "cos");
        Within(Trig.Sin, Math.Sin, 2, Uniform(-1e7, 1e7, 50_000, 8), "sin");
        Within(Trig.Sin, Math.Sin, 1, Uniform(-1e-3, 1e-3, 20_000, 9), "sin");
        Within(TanhOp.Invoke, Math.Tanh, 5, Uniform(-25, 25, 100_000, 10), "tanh");
        Within(TanhOp.Invoke, Math.Tanh, 5, Uniform(-0.6, 0.6, 100_000, 11), "tanh");
        Assert.True(double.IsNegative(Trig.Sin(-0.0)) && double.IsNegative(TanhOp.Invoke(-0.0)));
        Assert.True(double.IsNaN(Trig.Sin(double.PositiveInfinity)) && double.IsNaN(Trig.Cos(double.NaN)));
        Assert.Equal(1, TanhOp.Invoke(30));
        Assert.Equal(-1, TanhOp.Invoke(double.NegativeInfinity));
    }
}
