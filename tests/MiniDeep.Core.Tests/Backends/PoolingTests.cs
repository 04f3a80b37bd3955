using Xunit;

namespace MiniDeep.Tests.BackendTests;

/// <summary>The CPU max-pooling kernels against the reference backend. SimdFallbackTests runs this class
/// again with AVX-512, AVX2 and all intrinsics switched off, so the scalar paths are checked too.</summary>
public class PoolingTests
{
    // Max pooling's fast paths (eight 2×2 windows at a time where rows hold eight; the scalar rule
    // elsewhere and around NaNs) must pick exactly the reference's element: ties resolved to the first
    // maximum in scan order, -0 and +0 told apart by which one was picked, a NaN winning its window.
    // The backward routes each window's gradient to that same element.
    [Theory]
    [InlineData(28, 28)]
    [InlineData(14, 14)]
    [InlineData(17, 31)]
    [InlineData(9, 19)]
    [InlineData(5, 5)]
    public void MaxPool_PicksTheReferencesElement_OnTiesSignedZerosAndNaNs(int h, int w)
    {
        var rnd = new Random(h * 100 + w);
        var data = new float[2 * 3 * h * w];
        for (int i = 0; i < data.Length; i++)
            data[i] = rnd.Next(6) switch { 0 => -0f, 1 => 0f, 2 => 1f, 3 => -1f, 4 => (float)rnd.NextDouble(), _ => 2f };
        data[3] = float.NaN;
        data[h * w + w + 1] = float.NaN;
        data[2 * h * w + 2 * w + 5] = float.NaN;
        var upstream = Tensor.Randn(new Shape(2, 3, h / 2, w / 2), new Generator(7));
        (float[] Y, float[] Dx) Run(Device d)
        {
            var x = Tensor.FromArray(data, 2, 3, h, w).To(d).RequiresGrad_();
            var y = Tensor.MaxPool2d(x, (2, 2));
            (y * upstream.To(d)).Sum().Backward();
            return (y.ToArray<float>(), x.Grad!.ToArray<float>());
        }
        var (ry, rdx) = Run(Device.Reference);
        var (ay, adx) = Run(Device.Cpu);
        Assert.Equal(ry.Select(BitConverter.SingleToInt32Bits), ay.Select(BitConverter.SingleToInt32Bits));
        Assert.Equal(rdx, adx);
        Assert.Contains(ay, float.IsNaN);
    }
}
