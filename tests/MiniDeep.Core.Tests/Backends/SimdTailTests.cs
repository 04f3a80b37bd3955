using Xunit;

namespace MiniDeep.Tests.BackendTests;

/// <summary>
/// The CPU backend's SIMD kernels against the reference for every length 0..256, so every vector
/// tail (and the empty case) is hit. SimdFallbackTests runs this class again in child processes
/// with AVX-512 and AVX2 switched off.
/// </summary>
public class SimdTailTests
{
    private const int MaxLength = 256;

    [Fact]
    public void VectorWidth_IsWhatTheEnvironmentAsksFor()
    {
        var expected = Environment.GetEnvironmentVariable("MINIDEEP_EXPECT_VECTOR_WIDTH");
        if (expected is null) Assert.Contains(Cpu.Gemm.VectorWidth, new[] { 1, 4, 8, 16 });
        else Assert.Equal(int.Parse(expected), Cpu.Gemm.VectorWidth);
    }

    // Tolerances: TensorPrimitives' vector exp/log/tanh differ from MathF's scalar ones by an ulp or
    // two, so values near zero need an absolute floor of about one ulp of 1.
    private static void Check(Func<Tensor, Tensor> f, DType t, double rtol, Domain domain = Domain.Any)
    {
        double atol = rtol == 0 ? 0 : t == DType.Float32 ? 1.2e-7 : 2.3e-16;
        for (int n = 0; n <= MaxLength; n++)
        {
            var x = TestData.Values([n], n + 1, domain).To(t);
            var expected = f(x.To(Device.Reference)).ToDoubleArray();
            var actual = f(x).ToDoubleArray();
            Assert.Equal(expected.Length, actual.Length);
            for (int i = 0; i < expected.Length; i++)
                Assert.True(Math.Abs(expected[i] - actual[i]) <= rtol * Math.Abs(expected[i]) + atol || expected[i] == actual[i],
                    $"length {n}, element {i}: reference {expected[i]:R}, cpu {actual[i]:R}");
        }
    }

    public static TheoryData<DType> FloatTypes => new(DType.Float32, DType.Float64);

    [Theory]
    [MemberData(nameof(FloatTypes))]
    public void UnaryKernels_EveryTail(DType t)
    {
        double r = t == DType.Float32 ? 2e-6 : 1e-13;
        Check(x => x.Exp(), t, r);
        Check(x => x.Log(), t, r, Domain.Positive);
        Check(x => x.Sqrt(), t, r, Domain.Positive);
        Check(x => x.Abs(), t, 0);
        Check(x => x.Relu(), t, 0);
        Check(x => -x, t, 0);
        Check(x => x.Sigmoid(), t, r);
        Check(x => x.Tanh(), t, r);
        Check(x => x.Softplus(), t, r);
    }

    [Theory]
    [MemberData(nameof(FloatTypes))]
    public void BinaryKernels_EveryTail_SpanSpan_SpanScalar_ScalarSpan(DType t)
    {
        Check(x => x + x.Exp(), t, 1e-6);
        Check(x => x - 1.5, t, 0);
        Check(x => 2 - x, t, 0);
        Check(x => x * x, t, 0);
        Check(x => x * 3, t, 0);
        Check(x => x / 1.7, t, 0);
        Check(x => 1.7 / x, t, 0, Domain.AwayFromZero);
        Check(x => x / (x.Abs() + 1), t, 0);
        Check(x => Tensor.Maximum(x, x.Flip0()), t, 0);
        Check(x => Tensor.Minimum(x, Tensor.Scalar(0.1, t, x.Device)), t, 0);
    }

    [Theory]
    [MemberData(nameof(FloatTypes))]
    public void Reductions_EveryTail(DType t)
    {
        double r = t == DType.Float32 ? 1e-5 : 1e-12;
        for (int n = 1; n <= MaxLength; n++)
        {
            var x = TestData.Values([n], n, Domain.Any).To(t);
            var rx = x.To(Device.Reference);
            Assert.Equal(rx.Sum().Item(), x.Sum().Item(), r * n);
            Assert.Equal(rx.Max().Item(), x.Max().Item());
            Assert.Equal(rx.Min().Item(), x.Min().Item());
            var logits = x.Reshape(1, n);
            Assert.Equal(Losses.CrossEntropy(logits.To(Device.Reference), Tensor.FromArray(new[] { n / 2 }).To(Device.Reference)).Item(),
                         Losses.CrossEntropy(logits, Tensor.FromArray(new[] { n / 2 })).Item(), 1e-5);
        }
    }

    [Fact]
    public void Gemm_SmallSizes_EveryTail()
    {
        foreach (var m in new[] { 1, 5, 6, 7, 13 })
            for (int n = 1; n <= 70; n++)
            {
                var a = TestData.Values([m, 9], m * 100 + n).Float();
                var b = TestData.Values([9, n], n).Float();
                var expected = Tensor.MatMul(a.To(Device.Reference), b.To(Device.Reference)).ToArray<float>();
                var actual = Tensor.MatMul(a, b).ToArray<float>();
                for (int i = 0; i < expected.Length; i++)
                    Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-5f * (1 + Math.Abs(expected[i])), $"m={m} n={n} element {i}: {expected[i]} vs {actual[i]}");
            }
    }
}

internal static class TensorTestExtensions
{
    /// <summary>The elements of a 1-D tensor in reverse order (a strided copy).</summary>
    public static Tensor Flip0(this Tensor x) =>
        x.Numel == 0 ? x * 1.0 : x.IndexSelect(0, Tensor.Arange(x.Numel - 1, -1, -1, DType.Int32, x.Device));
}
