using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MiniDeep.Cpu;

/// <summary>
/// Max pooling on the CPU: the window maxima and their indices in one pass, and the backward pass that
/// routes each window's gradient to its maximum. The rule everywhere: padding never wins, the first
/// maximum in scan order wins ties, a NaN wins its window (the first NaN if there are several).
/// </summary>
internal static class Pooling
{
    /// <summary>Values (planes × L) and flat in-plane indices (planes × L) of every window's maximum.</summary>
    public static void MaxPool(ReadOnlySpan<float> image, Span<float> values, Span<int> indices, in WindowGeometry g)
    {
        if (IsPair(g)) { MaxPoolPair(image, values, indices, g.Height, g.Width, g.OutH, g.OutW); return; }
        int outW = g.OutW;
        for (int oi = 0; oi < g.OutH; oi++)
            for (int oj = 0; oj < outW; oj++)
            {
                int best = -1;
                float bv = 0;
                for (int ki = 0; ki < g.KernelH; ki++)
                {
                    int ii = oi * g.StrideH - g.PadH + ki * g.DilationH;
                    if (ii < 0 || ii >= g.Height) continue;
                    for (int kj = 0; kj < g.KernelW; kj++)
                    {
                        int jj = oj * g.StrideW - g.PadW + kj * g.DilationW;
                        if (jj < 0 || jj >= g.Width) continue;
                        int at = ii * g.Width + jj;
                        float v = image[at];
                        if (best < 0 || (!float.IsNaN(bv) && (v > bv || float.IsNaN(v)))) { best = at; bv = v; }
                    }
                }
                indices[oi * outW + oj] = best;
                values[oi * outW + oj] = bv;
            }
    }

    /// <summary>2×2 windows with stride 2, no padding or dilation: the pooling of nearly every CNN.</summary>
    public static bool IsPair(in WindowGeometry g) =>
        g.KernelH == 2 && g.KernelW == 2 && g.StrideH == 2 && g.StrideW == 2 && g.PadH == 0 && g.PadW == 0 && g.DilationH == 1 && g.DilationW == 1;

    // Eight windows at a time where AVX2 is on and a row holds at least eight, the rest without
    // branches: which of two activations is larger is a coin toss, and mispredicted branches made the
    // scalar loop 7× slower than the same loop with selects. A row's last vector step starts at
    // outW − 8 and recomputes a few windows rather than leaving a scalar tail.
    private static void MaxPoolPair(ReadOnlySpan<float> image, Span<float> values, Span<int> indices, int height, int width, int outH, int outW)
    {
        for (int oi = 0; oi < outH; oi++)
        {
            int r0 = 2 * oi * width;
            var vRow = values.Slice(oi * outW, outW);
            var iRow = indices.Slice(oi * outW, outW);
            if (!Avx2.IsSupported) { PairScalar(image, r0, width, 0, outW, vRow, iRow); continue; }
            for (int oj = 0; oj < outW; oj += 8)
            {
                int count = Math.Min(8, outW - oj);
                if (!PairVector8(image, r0, width, oj, count, vRow, iRow)) PairScalar(image, r0, width, oj, oj + count, vRow, iRow);
            }
        }
    }

    private static void PairScalar(ReadOnlySpan<float> image, int r0, int width, int from, int to, Span<float> vRow, Span<int> iRow)
    {
        int r1 = r0 + width;
        for (int oj = from; oj < to; oj++)
        {
            int i0 = r0 + 2 * oj, i2 = r1 + 2 * oj;
            float a0 = image[i0], a1 = image[i0 + 1], a2 = image[i2], a3 = image[i2 + 1];
            int best;
            if (float.IsNaN(a0 + a1 + a2 + a3))
            {
                best = i0;
                float bv = a0;
                if (!float.IsNaN(bv) && (a1 > bv || float.IsNaN(a1))) { best = i0 + 1; bv = a1; }
                if (!float.IsNaN(bv) && (a2 > bv || float.IsNaN(a2))) { best = i2; bv = a2; }
                if (!float.IsNaN(bv) && (a3 > bv || float.IsNaN(a3))) { best = i2 + 1; }
            }
            else
            {
                // The first maximum of each pair (the later one only if strictly larger), then of the
                // two pairs, the lower pair only if strictly larger.
                // Arithmetic on 0/1 rather than conditionals, which the JIT may compile to branches.
                int w01 = i0 + Select(a1 > a0), w23 = i2 + Select(a3 > a2);
                best = w01 + (w23 - w01) * Select(Max(a2, a3) > Max(a0, a1));
            }
            iRow[oj] = best;
            vRow[oj] = image[best];
        }
    }

    // The same rule on up to eight windows: even and odd columns of the two input rows are split out
    // with shuffles, compared lane by lane, and the winner picked with blends. The values are the
    // chosen elements themselves (not a max instruction), so -0 and +0 come out as the scalar rule
    // picks them. Fewer than eight windows (a 14-wide map has 7 per row) load and store under masks,
    // never touching memory beyond the row. Returns false, writing nothing, when a NaN is among the
    // inputs: the scalar rule handles those.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe bool PairVector8(ReadOnlySpan<float> image, int r0, int width, int oj, int count, Span<float> vRow, Span<int> iRow)
    {
        fixed (float* img = image)
        {
            float* top = img + r0 + 2 * oj, bottom = top + width;
            Vector256<float> a0, a1, a2, a3;
            if (count == 8)
            {
                (a0, a1) = Deinterleave(Avx.LoadVector256(top), Avx.LoadVector256(top + 8));
                (a2, a3) = Deinterleave(Avx.LoadVector256(bottom), Avx.LoadVector256(bottom + 8));
            }
            else
            {
                // Lanes at or beyond 2·count floats read as zero and are never stored.
                var lane = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7);
                var loMask = Vector256.LessThan(lane, Vector256.Create(2 * count)).AsSingle();
                var hiMask = Vector256.LessThan(lane, Vector256.Create(2 * count - 8)).AsSingle();
                (a0, a1) = Deinterleave(Avx.MaskLoad(top, loMask), Avx.MaskLoad(top + 8, hiMask));
                (a2, a3) = Deinterleave(Avx.MaskLoad(bottom, loMask), Avx.MaskLoad(bottom + 8, hiMask));
            }
            var sum = (a0 + a1) + (a2 + a3);
            if (!Vector256.EqualsAll(sum, sum)) return false;
            var later01 = Vector256.GreaterThan(a1, a0);
            var later23 = Vector256.GreaterThan(a3, a2);
            var m01 = Vector256.ConditionalSelect(later01, a1, a0);
            var m23 = Vector256.ConditionalSelect(later23, a3, a2);
            var second = Vector256.GreaterThan(m23, m01);
            var value = Vector256.ConditionalSelect(second, m23, m01);
            // index = r0 + 2·(oj + lane) + (second ? width + later23 : later01), a mask being -1 or 0
            var at = Vector256.Create(0, 2, 4, 6, 8, 10, 12, 14) + Vector256.Create(r0 + 2 * oj);
            var off01 = -later01.AsInt32();
            var off23 = Vector256.Create(width) - later23.AsInt32();
            var index = at + Vector256.ConditionalSelect(second.AsInt32(), off23, off01);
            fixed (float* v = vRow) fixed (int* ix = iRow)
            {
                if (count == 8) { value.Store(v + oj); index.Store(ix + oj); }
                else
                {
                    var keep = Vector256.LessThan(Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7), Vector256.Create(count));
                    Avx.MaskStore(v + oj, keep.AsSingle(), value);
                    Avx2.MaskStore(ix + oj, keep, index);
                }
            }
        }
        return true;
    }

    // (x0 … x7, x8 … x15) to (x0, x2, …, x14) and (x1, x3, …, x15).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector256<float> Even, Vector256<float> Odd) Deinterleave(Vector256<float> lo, Vector256<float> hi)
    {
        // Within each 128-bit lane: (lo0, lo2, hi0, hi2 | lo4, lo6, hi4, hi6); then the 64-bit pairs reordered.
        var even = Avx.Shuffle(lo, hi, 0b10_00_10_00);
        var odd = Avx.Shuffle(lo, hi, 0b11_01_11_01);
        return (Avx2.Permute4x64(even.AsDouble(), 0b11_01_10_00).AsSingle(), Avx2.Permute4x64(odd.AsDouble(), 0b11_01_10_00).AsSingle());
    }

    /// <summary>dx (one plane, zeroed here) from the gradient of the window maxima and their indices.</summary>
    public static void MaxPoolBackward(ReadOnlySpan<float> grad, ReadOnlySpan<int> indices, Span<float> dx, in WindowGeometry g)
    {
        if (!IsPair(g))
        {
            // Windows may overlap: several may share a maximum, whose gradient is then their sum.
            dx.Clear();
            for (int i = 0; i < grad.Length; i++) dx[indices[i]] += grad[i];
            return;
        }
        // Disjoint 2×2 windows: each window writes its four elements (the gradient at the maximum, zero
        // at the other three), so the plane needs no separate clearing pass; only a last odd row or
        // column that no window covers does.
        int width = g.Width, outH = g.OutH, outW = g.OutW;
        for (int oi = 0; oi < outH; oi++)
        {
            int r0 = 2 * oi * width, r1 = r0 + width;
            if (Avx2.IsSupported)
            {
                for (int oj = 0; oj < outW; oj += 8)
                    RouteVector8(grad.Slice(oi * outW), indices.Slice(oi * outW), dx, r0, width, oj, Math.Min(8, outW - oj));
            }
            else
            {
                for (int oj = 0; oj < outW; oj++)
                {
                    // Zero the window, then store the gradient over its maximum: no data-dependent branch.
                    int k = oi * outW + oj, i0 = r0 + 2 * oj;
                    dx[i0] = 0f; dx[i0 + 1] = 0f; dx[i0 + width] = 0f; dx[i0 + width + 1] = 0f;
                    dx[indices[k]] = grad[k];
                }
            }
            if (2 * outW < width) { dx[r0 + width - 1] = 0f; dx[r1 + width - 1] = 0f; }
        }
        if (2 * outH < g.Height) dx.Slice(2 * outH * width).Clear();
    }

    // Eight windows' four elements each: the gradient where the index points, zero at the other three,
    // interleaved back into the two image rows and stored whole (under a mask for a short row's end).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void RouteVector8(ReadOnlySpan<float> gRow, ReadOnlySpan<int> iRow, Span<float> dx, int r0, int width, int oj, int count)
    {
        var lane = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7);
        var keep = Vector256.LessThan(lane, Vector256.Create(count));
        Vector256<float> g; Vector256<int> at;
        fixed (float* pg = gRow) fixed (int* pi = iRow)
        {
            g = count == 8 ? Avx.LoadVector256(pg + oj) : Avx.MaskLoad(pg + oj, keep.AsSingle());
            at = count == 8 ? Avx.LoadVector256(pi + oj) : Avx2.MaskLoad(pi + oj, keep);
        }
        var rel = at - (Vector256.Create(r0 + 2 * oj) + lane * 2);
        var topEven = g & Vector256.Equals(rel, Vector256<int>.Zero).AsSingle();
        var topOdd = g & Vector256.Equals(rel, Vector256.Create(1)).AsSingle();
        var bottomEven = g & Vector256.Equals(rel, Vector256.Create(width)).AsSingle();
        var bottomOdd = g & Vector256.Equals(rel, Vector256.Create(width + 1)).AsSingle();
        fixed (float* d = dx)
        {
            StoreInterleaved(d + r0 + 2 * oj, topEven, topOdd, count);
            StoreInterleaved(d + r0 + width + 2 * oj, bottomEven, bottomOdd, count);
        }
    }

    // (e0, o0, e1, o1, …, e7, o7) at p: the first 2·count floats.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void StoreInterleaved(float* p, Vector256<float> even, Vector256<float> odd, int count)
    {
        var lo = Avx.UnpackLow(even, odd);     // e0 o0 e1 o1 | e4 o4 e5 o5
        var hi = Avx.UnpackHigh(even, odd);    // e2 o2 e3 o3 | e6 o6 e7 o7
        var first = Avx.Permute2x128(lo, hi, 0x20);
        var second = Avx.Permute2x128(lo, hi, 0x31);
        if (count == 8) { Avx.Store(p, first); Avx.Store(p + 8, second); return; }
        var lane = Vector256.Create(0, 1, 2, 3, 4, 5, 6, 7);
        Avx.MaskStore(p, Vector256.LessThan(lane, Vector256.Create(2 * count)).AsSingle(), first);
        Avx.MaskStore(p + 8, Vector256.LessThan(lane, Vector256.Create(2 * count - 8)).AsSingle(), second);
    }

    // 0 or 1 from a comparison, as a setcc rather than a branch.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Select(bool b) => Unsafe.As<bool, byte>(ref b);

    // The larger of two non-NaN floats without a branch (maxss where there is SSE).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Max(float a, float b) =>
        Sse.IsSupported ? Vector128.ToScalar(Sse.MaxScalar(Vector128.CreateScalarUnsafe(a), Vector128.CreateScalarUnsafe(b))) : MathF.Max(a, b);
}
