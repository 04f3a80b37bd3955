using System.Numerics.Tensors;

namespace MiniDeep.Benchmarks;

/// <summary>
/// The teaching steps of the GEMM progression, C = A·B for row-major n×n matrices. MiniDeep's own
/// kernel (Cpu.Gemm: packed panels, a 6×32 register tile, cores) is the last step; these are the
/// ones before it, kept simple on purpose.
/// </summary>
public static class GemmVariants
{
    /// <summary>Three loops in textbook order (i, j, p): the inner loop walks B down a column, a new cache line per step.</summary>
    public static void Naive(int n, float[] a, float[] b, float[] c)
    {
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                float s = 0;
                for (int p = 0; p < n; p++) s += a[i * n + p] * b[p * n + j];
                c[i * n + j] = s;
            }
    }

    /// <summary>
    /// Loop order (i, p, j) and 64×64 blocks: the inner loop streams a row of B and a row of C
    /// (the JIT does not vectorize it), and a block of B is reused from L1/L2 for 64 rows of A.
    /// </summary>
    public static void Blocked(int n, float[] a, float[] b, float[] c)
    {
        const int Bs = 64;
        Array.Clear(c, 0, n * n);
        for (int i0 = 0; i0 < n; i0 += Bs)
            for (int p0 = 0; p0 < n; p0 += Bs)
                for (int j0 = 0; j0 < n; j0 += Bs)
                {
                    int i1 = Math.Min(n, i0 + Bs), p1 = Math.Min(n, p0 + Bs), j1 = Math.Min(n, j0 + Bs);
                    for (int i = i0; i < i1; i++)
                        for (int p = p0; p < p1; p++)
                        {
                            float x = a[i * n + p];
                            for (int j = j0; j < j1; j++) c[i * n + j] += x * b[p * n + j];
                        }
                }
    }

    /// <summary>
    /// The library baseline: every element of C is one TensorPrimitives.Dot of a row of A with a row
    /// of Bᵀ (transposed once, outside the timing of nothing: it is part of the call). SIMD, but each
    /// dot product re-reads its operands from memory, with no register tiling.
    /// </summary>
    public static void TensorPrimitivesDot(int n, float[] a, float[] bT, float[] c)
    {
        for (int i = 0; i < n; i++)
        {
            var row = a.AsSpan(i * n, n);
            for (int j = 0; j < n; j++) c[i * n + j] = TensorPrimitives.Dot(row, bT.AsSpan(j * n, n));
        }
    }

    /// <summary>Bᵀ, for <see cref="TensorPrimitivesDot"/>.</summary>
    public static float[] Transpose(int n, float[] b)
    {
        var t = new float[n * n];
        for (int p = 0; p < n; p++)
            for (int j = 0; j < n; j++) t[j * n + p] = b[p * n + j];
        return t;
    }
}
