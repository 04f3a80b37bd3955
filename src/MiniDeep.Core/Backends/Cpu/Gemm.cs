using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace MiniDeep.Cpu;

/// <summary>
/// Single-precision GEMM, C = A·B, in the Goto/BLIS shape: B is packed into panels NR columns wide
/// and A into panels MR rows tall, so the micro-kernel streams both from contiguous memory while an
/// MR×NR block of C stays in registers. The operands are read through arbitrary (row, column)
/// strides while packing, so transposed views cost nothing.
/// Threads take disjoint tiles of C; the k-loop order is fixed, so any thread count gives
/// bit-identical results.
/// </summary>
public static unsafe class Gemm
{
    /// <summary>Rows of A per micro-tile.</summary>
    public const int MR = 6;
    // K block: one B micro-panel (KC × NR floats) stays in L1, an A block (MC × KC) in L2.
    private const int KC = 256;
    private const int MC = 120;

    /// <summary>Which micro-kernel the hardware selects: 16 (AVX-512), 8 (AVX2), 4 (SSE/NEON) or 1 (scalar).</summary>
    public static int VectorWidth =>
        Vector512.IsHardwareAccelerated ? 16 : Vector256.IsHardwareAccelerated ? 8 : Vector128.IsHardwareAccelerated ? 4 : 1;

    /// <summary>
    /// C[m×n] = A[m×k] · B[k×n]. A element (i, p) is at a[i*aRow + p*aCol]; B element (p, j) at
    /// b[p*bRow + j*bCol]; C is dense row-major with leading dimension ldc and is overwritten.
    /// </summary>
    public static void Sgemm(int m, int n, int k, float* a, int aRow, int aCol, float* b, int bRow, int bCol, float* c, int ldc, int? forceWidth = null)
    {
        if (m == 0 || n == 0) return;
        for (int i = 0; i < m; i++) new Span<float>(c + (long)i * ldc, n).Clear();
        if (k == 0) return;
        switch (forceWidth ?? VectorWidth)
        {
            case 16: Run<Simd512, Vector512<float>>(m, n, k, a, aRow, aCol, b, bRow, bCol, c, ldc); break;
            case 8: Run<Simd256, Vector256<float>>(m, n, k, a, aRow, aCol, b, bRow, bCol, c, ldc); break;
            case 4: Run<Simd128, Vector128<float>>(m, n, k, a, aRow, aCol, b, bRow, bCol, c, ldc); break;
            default: Run<Simd1, float>(m, n, k, a, aRow, aCol, b, bRow, bCol, c, ldc); break;
        }
    }

    private static void Run<TS, TV>(int m, int n, int k, float* a, int aRow, int aCol, float* b, int bRow, int bCol, float* c, int ldc)
        where TS : struct, ISimd<TV> where TV : struct
    {
        int nr = 2 * TS.Width;
        int panelsN = (n + nr - 1) / nr, panelsM = (m + MR - 1) / MR;
        int blocksM = (m + MC - 1) / MC;
        var bBuf = ArrayPool<float>.Shared.Rent(panelsN * KC * nr);
        var aBuf = ArrayPool<float>.Shared.Rent(panelsM * KC * MR);
        try
        {
            fixed (float* bp = bBuf)
            fixed (float* ap = aBuf)
            {
                float* bpp = bp, app = ap;
                for (int p0 = 0; p0 < k; p0 += KC)
                {
                    int kc = Math.Min(KC, k - p0);
                    PackB(bpp, b, bRow, bCol, n, p0, kc, nr);
                    PackA(app, a, aRow, aCol, m, p0, kc);
                    // Tasks: (block of MC rows) × (group of B panels). Small problems run inline.
                    long flops = 2L * m * n * kc;
                    int groups = flops < (1 << 19) ? 1 : Math.Min(panelsN, 4 * Parallelism.MaxThreads);
                    int perGroup = (panelsN + groups - 1) / groups;
                    groups = (panelsN + perGroup - 1) / perGroup;
                    int tasks = blocksM * groups;
                    void Task(int t)
                    {
                        int bm = t / groups, gr = t % groups;
                        int i0 = bm * MC, i1 = Math.Min(m, i0 + MC);
                        int jp0 = gr * perGroup, jp1 = Math.Min(panelsN, jp0 + perGroup);
                        float* tmp = stackalloc float[MR * 64];
                        for (int jp = jp0; jp < jp1; jp++)
                        {
                            int j = jp * nr, nv = Math.Min(nr, n - j);
                            float* bPanel = bpp + (long)jp * kc * nr;
                            for (int i = i0; i < i1; i += MR)
                            {
                                int mv = Math.Min(MR, m - i);
                                float* aPanel = app + (long)(i / MR) * kc * MR;
                                float* cTile = c + (long)i * ldc + j;
                                if (mv == MR && nv == nr)
                                {
                                    Kernel<TS, TV>(kc, aPanel, bPanel, cTile, ldc);
                                }
                                else
                                {
                                    // Edge tile: run the full kernel on a zero-padded copy.
                                    for (int r = 0; r < MR; r++)
                                        for (int q = 0; q < nr; q++)
                                            tmp[r * nr + q] = r < mv && q < nv ? cTile[(long)r * ldc + q] : 0f;
                                    Kernel<TS, TV>(kc, aPanel, bPanel, tmp, nr);
                                    for (int r = 0; r < mv; r++)
                                        for (int q = 0; q < nv; q++)
                                            cTile[(long)r * ldc + q] = tmp[r * nr + q];
                                }
                            }
                        }
                    }
                    if (tasks == 1) Task(0);
                    else Parallelism.For(tasks, Task);
                }
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(bBuf);
            ArrayPool<float>.Shared.Return(aBuf);
        }
    }

    // Bp[panel][p][q] = B(p0 + p, panel*nr + q), zero beyond n.
    private static void PackB(float* bp, float* b, int bRow, int bCol, int n, int p0, int kc, int nr)
    {
        int panels = (n + nr - 1) / nr;
        for (int jp = 0; jp < panels; jp++)
        {
            int j0 = jp * nr, nv = Math.Min(nr, n - j0);
            float* dst = bp + (long)jp * kc * nr;
            for (int p = 0; p < kc; p++)
            {
                float* row = b + (long)(p0 + p) * bRow + (long)j0 * bCol;
                float* d = dst + p * nr;
                if (bCol == 1) new ReadOnlySpan<float>(row, nv).CopyTo(new Span<float>(d, nv));
                else for (int q = 0; q < nv; q++) d[q] = row[(long)q * bCol];
                for (int q = nv; q < nr; q++) d[q] = 0f;
            }
        }
    }

    // Ap[panel][p][r] = A(panel*MR + r, p0 + p), zero beyond m.
    private static void PackA(float* ap, float* a, int aRow, int aCol, int m, int p0, int kc)
    {
        int panels = (m + MR - 1) / MR;
        for (int ip = 0; ip < panels; ip++)
        {
            int i0 = ip * MR, mv = Math.Min(MR, m - i0);
            float* dst = ap + (long)ip * kc * MR;
            for (int r = 0; r < MR; r++)
            {
                if (r >= mv) { for (int p = 0; p < kc; p++) dst[p * MR + r] = 0f; continue; }
                float* row = a + (long)(i0 + r) * aRow + (long)p0 * aCol;
                for (int p = 0; p < kc; p++) dst[p * MR + r] = row[(long)p * aCol];
            }
        }
    }

    // The micro-kernel: a 6 × (2·W) block of C in 12 vector registers, one rank-1 update per k.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Kernel<TS, TV>(int kc, float* a, float* b, float* c, int ldc)
        where TS : struct, ISimd<TV> where TV : struct
    {
        int w = TS.Width;
        TV c00 = TS.Load(c), c01 = TS.Load(c + w);
        TV c10 = TS.Load(c + ldc), c11 = TS.Load(c + ldc + w);
        TV c20 = TS.Load(c + 2 * ldc), c21 = TS.Load(c + 2 * ldc + w);
        TV c30 = TS.Load(c + 3 * ldc), c31 = TS.Load(c + 3 * ldc + w);
        TV c40 = TS.Load(c + 4 * ldc), c41 = TS.Load(c + 4 * ldc + w);
        TV c50 = TS.Load(c + 5 * ldc), c51 = TS.Load(c + 5 * ldc + w);
        for (int p = 0; p < kc; p++)
        {
            TV b0 = TS.Load(b), b1 = TS.Load(b + w);
            TV x = TS.Broadcast(a[0]); c00 = TS.Fma(x, b0, c00); c01 = TS.Fma(x, b1, c01);
            x = TS.Broadcast(a[1]); c10 = TS.Fma(x, b0, c10); c11 = TS.Fma(x, b1, c11);
            x = TS.Broadcast(a[2]); c20 = TS.Fma(x, b0, c20); c21 = TS.Fma(x, b1, c21);
            x = TS.Broadcast(a[3]); c30 = TS.Fma(x, b0, c30); c31 = TS.Fma(x, b1, c31);
            x = TS.Broadcast(a[4]); c40 = TS.Fma(x, b0, c40); c41 = TS.Fma(x, b1, c41);
            x = TS.Broadcast(a[5]); c50 = TS.Fma(x, b0, c50); c51 = TS.Fma(x, b1, c51);
            a += MR;
            b += 2 * w;
        }
        TS.Store(c, c00); TS.Store(c + w, c01);
        TS.Store(c + ldc, c10); TS.Store(c + ldc + w, c11);
        TS.Store(c + 2 * ldc, c20); TS.Store(c + 2 * ldc + w, c21);
        TS.Store(c + 3 * ldc, c30); TS.Store(c + 3 * ldc + w, c31);
        TS.Store(c + 4 * ldc, c40); TS.Store(c + 4 * ldc + w, c41);
        TS.Store(c + 5 * ldc, c50); TS.Store(c + 5 * ldc + w, c51);
    }

    /// <summary>Double-precision GEMM for gradient checks and float64 experiments: row-major axpy
    /// updates with TensorPrimitives, fixed order, no packing (speed is not the point in float64).</summary>
    public static void Dgemm(int m, int n, int k, double* a, int aRow, int aCol, double* b, int bRow, int bCol, double* c, int ldc)
    {
        var brow = new double[n];
        for (int i = 0; i < m; i++) new Span<double>(c + (long)i * ldc, n).Clear();
        for (int p = 0; p < k; p++)
        {
            for (int j = 0; j < n; j++) brow[j] = b[(long)p * bRow + (long)j * bCol];
            for (int i = 0; i < m; i++)
            {
                var crow = new Span<double>(c + (long)i * ldc, n);
                TensorPrimitives.MultiplyAdd(brow, a[(long)i * aRow + (long)p * aCol], crow, crow);
            }
        }
    }
}

/// <summary>The handful of vector operations the GEMM micro-kernel needs, so one kernel source
/// serves every vector width (the JIT specializes it per struct).</summary>
internal unsafe interface ISimd<TV> where TV : struct
{
    static abstract int Width { get; }
    static abstract TV Load(float* p);
    static abstract void Store(float* p, TV v);
    static abstract TV Broadcast(float v);
    static abstract TV Fma(TV a, TV b, TV c);
}

internal unsafe struct Simd512 : ISimd<Vector512<float>>
{
    public static int Width => 16;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Load(float* p) => Vector512.Load(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float* p, Vector512<float> v) => v.Store(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Broadcast(float v) => Vector512.Create(v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector512<float> Fma(Vector512<float> a, Vector512<float> b, Vector512<float> c) => Vector512.FusedMultiplyAdd(a, b, c);
}

internal unsafe struct Simd256 : ISimd<Vector256<float>>
{
    public static int Width => 8;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Load(float* p) => Vector256.Load(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float* p, Vector256<float> v) => v.Store(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Broadcast(float v) => Vector256.Create(v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector256<float> Fma(Vector256<float> a, Vector256<float> b, Vector256<float> c) => Vector256.FusedMultiplyAdd(a, b, c);
}

internal unsafe struct Simd128 : ISimd<Vector128<float>>
{
    public static int Width => 4;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Load(float* p) => Vector128.Load(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float* p, Vector128<float> v) => v.Store(p);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Broadcast(float v) => Vector128.Create(v);
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static Vector128<float> Fma(Vector128<float> a, Vector128<float> b, Vector128<float> c) => Vector128.FusedMultiplyAdd(a, b, c);
}

internal unsafe struct Simd1 : ISimd<float>
{
    public static int Width => 1;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Load(float* p) => *p;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static void Store(float* p, float v) => *p = v;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Broadcast(float v) => v;
    [MethodImpl(MethodImplOptions.AggressiveInlining)] public static float Fma(float a, float b, float c) => MathF.FusedMultiplyAdd(a, b, c);
}
