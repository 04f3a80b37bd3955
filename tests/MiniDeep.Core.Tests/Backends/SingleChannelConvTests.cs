using MiniDeep.Cpu;
using Xunit;

namespace MiniDeep.Tests.BackendTests;

/// <summary>The direct one-channel convolution gives the GEMM path's bits, whatever the geometry and SIMD width.</summary>
public class SingleChannelConvTests
{
    public static TheoryData<int, int, int, int, int, int, int, bool, bool> Geometries => new()
    {
        // n, h, w, out, kh, kw, pad (both axes), bias, relu
        { 4, 28, 28, 32, 3, 3, 1, true, true },    // the lab CNN's first layer
        { 2, 28, 28, 6, 5, 5, 2, true, false },    // LeNet's
        { 3, 7, 5, 4, 3, 3, 0, false, true },      // narrower than a vector: the scalar and 128-bit paths
        { 1, 16, 17, 3, 2, 4, 1, true, false },    // 17 columns: a last run overlapping the one before
        { 5, 12, 40, 2, 1, 3, 0, false, false },
        { 2, 3, 3, 2, 3, 3, 2, true, true },       // more padding than image
    };

    [Theory]
    [MemberData(nameof(Geometries))]
    public void DirectKernel_GivesTheGemmPathsBits(int n, int h, int w, int o, int kh, int kw, int pad, bool bias, bool relu)
    {
        var g = new Generator((ulong)(n * 1000 + h * 10 + w));
        var x = Tensor.Randn(new Shape(n, 1, h, w), g);
        var k = Tensor.Randn(new Shape(o, 1, kh, kw), g);
        var b = bias ? Tensor.Randn(new Shape(o), g) : null;
        var geometry = new WindowGeometry(1, h, w, kh, kw, 1, 1, pad, pad, 1, 1);
        Assert.True(SingleChannelConv.Applies(geometry));
        var direct = (relu ? Tensor.Conv2dRelu(x, k, b, padding: (pad, pad)) : Tensor.Conv2d(x, k, b, padding: (pad, pad))).ToArray<float>();
        // The im2col + GEMM path the backend takes for every other convolution, on the same inputs.
        var gemm = new float[n * o * geometry.OutH * geometry.OutW];
        CpuBackend.Conv2dGemm(x.ToArray<float>(), 0, k.ToArray<float>(), 0, b?.ToArray<float>(), gemm, n, o, geometry, relu, pointwise: false);
        Assert.Equal(gemm.Length, direct.Length);
        for (int i = 0; i < gemm.Length; i++)
            Assert.True(BitConverter.SingleToInt32Bits(gemm[i]) == BitConverter.SingleToInt32Bits(direct[i]), $"element {i}: GEMM {gemm[i]:R}, direct {direct[i]:R}");
    }
}
