namespace MiniDeep.Gpu.Kernels;

/// <summary>
/// A layout a kernel can carry by value: up to six dimensions (shape and strides, broadcast dims with
/// stride 0) and an offset. <see cref="At"/> maps a row-major element number to the storage index,
/// the device-side twin of <see cref="Layout.IndexOf"/>. Dense layouts skip the arithmetic.
/// </summary>
public struct Strided
{
    /// <summary>Maximum rank after merging dims that are contiguous with each other.</summary>
    public const int MaxRank = 6;

    /// <summary>1 when element i sits at Offset + i.</summary>
    public int Dense;
    /// <summary>Storage index of element 0.</summary>
    public int Offset;
#pragma warning disable CS1591
    public int D0, D1, D2, D3, D4, D5;
    public int S0, S1, S2, S3, S4, S5;
#pragma warning restore CS1591

    /// <summary>Storage index of row-major element <paramref name="i"/>.</summary>
    public readonly int At(int i)
    {
        if (Dense != 0) return Offset + i;
        int o = Offset, r;
        r = i % D5; i /= D5; o += r * S5;
        r = i % D4; i /= D4; o += r * S4;
        r = i % D3; i /= D3; o += r * S3;
        r = i % D2; i /= D2; o += r * S2;
        r = i % D1; i /= D1; o += r * S1;
        return o + i * S0;
    }

    /// <summary>The kernel form of a layout (after merging dims that are contiguous with each other).</summary>
    public static Strided Of(Layout layout) => Of(layout.Shape, layout.Strides, layout.Offset, "gpu");

    /// <summary>The kernel form of shape, strides and offset; <paramref name="op"/> names the caller in errors.</summary>
    public static Strided Of(int[] shape, int[] strides, int offset, string op)
    {
        // Merge dim k into k+1 where stepping over k is the same as stepping D[k+1] times over k+1.
        var d = new List<int>(); var s = new List<int>();
        for (int k = 0; k < shape.Length; k++)
        {
            if (shape[k] == 1) continue;
            if (d.Count > 0 && s[^1] == strides[k] * shape[k]) { d[^1] *= shape[k]; s[^1] = strides[k]; continue; }
            d.Add(shape[k]); s.Add(strides[k]);
        }
        var r = new Strided { Offset = offset };
        if (d.Count == 0 || (d.Count == 1 && s[0] == 1)) { r.Dense = 1; return r; }
        if (d.Count > MaxRank)
            throw new NotSupportedException($"{op}: a view of shape [{string.Join(", ", shape)}] with strides [{string.Join(", ", strides)}] has {d.Count} non-mergeable dims; the GPU kernels take at most {MaxRank} (make it contiguous first)");
        while (d.Count < MaxRank) { d.Insert(0, 1); s.Insert(0, 0); }
        (r.D0, r.D1, r.D2, r.D3, r.D4, r.D5) = (d[0], d[1], d[2], d[3], d[4], d[5]);
        (r.S0, r.S1, r.S2, r.S3, r.S4, r.S5) = (s[0], s[1], s[2], s[3], s[4], s[5]);
        return r;
    }
}
