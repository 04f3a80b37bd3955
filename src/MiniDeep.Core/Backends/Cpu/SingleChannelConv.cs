using System.Numerics.Tensors;
using System.Runtime.Intrinsics;

namespace MiniDeep.Cpu;

/// <summary>
/// The forward convolution of a one-channel image (a network's first layer on grey images) without
/// im2col. Through im2col and GEMM its product has K = kh·kw = 9: the micro-kernel loads and stores
/// each tile of the output for nine multiply-adds, and the columns are nine copies of the image
/// (1.1 ms for the lab CNN's first layer at batch 64, 27 GFLOP/s). Here each image is copied once into
/// a zero-bordered scratch, and each run of output columns is one vector that takes its kh·kw taps as
/// shifted loads of the scratch rows.
/// </summary>
/// <remarks>
/// Same bits as the GEMM path: every output starts at its bias (or 0) and adds w[t]·x[t] with one fused
/// multiply-add per tap, t = i·kw + j in order, as the GEMM accumulates over the rows of the columns.
/// </remarks>
internal static unsafe class SingleChannelConv
{
    /// <summary>One input channel, unit stride and dilation, and a non-empty output.</summary>
    public static bool Applies(in WindowGeometry g) =>
        g.Channels == 1 && g.StrideH == 1 && g.StrideW == 1 && g.DilationH == 1 && g.DilationW == 1
        && g.OutH > 0 && g.OutW > 0 && (g.Height + 2 * g.PadH) * (g.Width + 2 * g.PadW) <= 1 << 14;

    private readonly record struct Job(float[] X, int XOffset, float[] W, int WOffset, float[]? Bias, float[] Y, int Out, WindowGeometry G, bool Relu);

    /// <summary>y (n, o, outH, outW) = conv(x (n, 1, H, W), w (o, 1, kh, kw)) + bias, then ReLU if asked.</summary>
    public static void Forward(float[] x, int xo, float[] w, int wo, float[]? bias, float[] y, int n, int o, WindowGeometry g, bool relu)
    {
        var job = new Job(x, xo, w, wo, bias, y, o, g, relu);
        int grain = Math.Max(1, (1 << 16) / Math.Max(1, o * g.OutH * g.OutW));
        int width = Gemm.VectorWidth;
        if (width >= 16 && g.OutW >= 16) Parallelism.ForRange(n, grain, job, static (j, b0, b1) => Images<Simd512, Vector512<float>>(j, b0, b1));
        else if (width >= 8 && g.OutW >= 8) Parallelism.ForRange(n, grain, job, static (j, b0, b1) => Images<Simd256, Vector256<float>>(j, b0, b1));
        else if (width >= 4 && g.OutW >= 4) Parallelism.ForRange(n, grain, job, static (j, b0, b1) => Images<Simd128, Vector128<float>>(j, b0, b1));
        else Parallelism.ForRange(n, grain, job, static (j, b0, b1) => Images<Simd1, float>(j, b0, b1));
    }

    private static void Images<TS, TV>(Job job, int b0, int b1) where TS : struct, ISimd<TV> where TV : struct
    {
        var g = job.G;
        int h = g.Height, wd = g.Width, kh = g.KernelH, kw = g.KernelW, oh = g.OutH, ow = g.OutW, o = job.Out;
        int rows = h + 2 * g.PadH, cols = wd + 2 * g.PadW, kk = kh * kw, l = oh * ow, v = TS.Width;
        float* pad = stackalloc float[rows * cols];
        new Span<float>(pad, rows * cols).Clear();   // the border stays zero; the interior is overwritten per image
        fixed (float* px = job.X, pw = job.W, py = job.Y, pb = job.Bias)
        {
            for (int b = b0; b < b1; b++)
            {
                float* image = px + job.XOffset + (long)b * h * wd;
                for (int r = 0; r < h; r++)
                    new ReadOnlySpan<float>(image + (long)r * wd, wd).CopyTo(new Span<float>(pad + (r + g.PadH) * cols + g.PadW, wd));
                for (int oc = 0; oc < o; oc++)
                {
                    float* wr = pw + job.WOffset + oc * kk;
                    TV start = TS.Broadcast(pb is null ? 0f : pb[oc]);
                    float* dst = py + ((long)b * o + oc) * l;
                    for (int r = 0; r < oh; r++)
                    {
                        // Runs of v output columns; the last run ends at the last column (it may overlap
                        // the one before it, which writes the same values).
                        for (int c0 = 0; ; c0 += v)
                        {
                            int s = Math.Min(c0, ow - v);
                            TV acc = start;
                            for (int i = 0; i < kh; i++)
                            {
                                float* src = pad + (r + i) * cols + s;
                                for (int j = 0; j < kw; j++) acc = TS.Fma(TS.Broadcast(wr[i * kw + j]), TS.Load(src + j), acc);
                            }
                            TS.Store(dst + r * ow + s, acc);
                            if (s + v >= ow) break;
                        }
                    }
                    if (job.Relu) TensorPrimitives.Max(new ReadOnlySpan<float>(dst, l), 0f, new Span<float>(dst, l));
                }
            }
        }
    }
}
