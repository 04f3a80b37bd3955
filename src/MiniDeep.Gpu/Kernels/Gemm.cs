using ILGPU;
using ILGPU.Runtime;

namespace MiniDeep.Gpu.Kernels;

/// <summary>
/// The operands of one (batched) matrix product C = A·B (+ bias) (ReLU): A is M×K and B is K×N, each
/// read through its row and column strides, so transposed operands (Linear's wᵀ, backward's Aᵀ·G and
/// G·Bᵀ) are never materialized. Batch b of A starts at ABatch.At(b), of B at BBatch.At(b); C is dense.
/// </summary>
public struct GemmShape
{
#pragma warning disable CS1591
    public int M, N, K;
    public int ARow, ACol, BRow, BCol;
    public Strided ABatch, BBatch;
    /// <summary>1: add bias[n] (BiasStride apart) to every row, or bias[m] to every column with BiasAlongM
    /// (a convolution's bias per output channel); 1 in Relu: max(·, 0) with NaN kept.</summary>
    public int HasBias, BiasAlongM, BiasStride, BiasOffset, Relu;
#pragma warning restore CS1591
}

/// <summary>
/// GEMM kernels, the progression docs/gpu.md walks through: <see cref="Naive{T, C}"/> (one thread per
/// output, every operand element read from global memory K times), <see cref="Tiled"/> (64×64 tiles
/// of C per group staged through shared memory, each thread holding a 4×4 block of C in registers) and
/// <see cref="Tiled128"/> (128×128 tiles, 8×8 per thread, the next slices loaded during the multiply).
/// Every output is one thread's sum over k in increasing order: the same bits on every run.
/// </summary>
public static class Gemm
{
    private static double Epilogue(double v, ArrayView<float> bias, in GemmShape s, int m, int n)
    {
        if (s.HasBias != 0) v += bias[s.BiasOffset + (s.BiasAlongM != 0 ? m : n) * s.BiasStride];
        return s.Relu != 0 && v < 0 ? 0 : v;
    }

    /// <summary>One thread per element of C, accumulating in double: the first step, and the float64 path.</summary>
    public static void Naive<T, C>(Index1D idx, ArrayView<T> a, ArrayView<T> b, ArrayView<T> bias, GemmShape s, ArrayView<T> y)
        where T : unmanaged where C : struct, IElem<T>
    {
        int mn = s.M * s.N;
        int batch = idx / mn, r = idx - batch * mn, m = r / s.N, n = r - m * s.N;
        int aAt = s.ABatch.At(batch) + m * s.ARow, bAt = s.BBatch.At(batch) + n * s.BCol;
        double acc = 0;
        for (int k = 0; k < s.K; k++) acc += C.Get(a[aAt + k * s.ACol]) * C.Get(b[bAt + k * s.BRow]);
        if (s.HasBias != 0) acc += C.Get(bias[s.BiasOffset + (s.BiasAlongM != 0 ? m : n) * s.BiasStride]);
        if (s.Relu != 0 && acc < 0) acc = 0;
        y[idx] = C.Put(acc);
    }

    /// <summary>Rows and columns of C per group, and the k-slice staged per step.</summary>
    public const int Tile = 64, Slice = 16, Threads = 16;

    /// <summary>
    /// Float32 GEMM, 16×16 threads per group computing a 64×64 tile of C. Each step stages a 64×16
    /// slice of A and a 16×64 slice of B in shared memory (each thread loads four of each), then every
    /// thread multiplies its 4 rows (ty, ty+16, ty+32, ty+48) by its 4 columns (tx, tx+16, ...) out of
    /// shared memory, so every element loaded from global memory is used 64 times.
    /// </summary>
    public static void Tiled(ArrayView<float> a, ArrayView<float> b, ArrayView<float> bias, GemmShape s, ArrayView<float> y)
    {
        var As = SharedMemory.Allocate<float>(Slice * Tile);   // As[k * Tile + row]
        var Bs = SharedMemory.Allocate<float>(Slice * Tile);   // Bs[k * Tile + col]
        int tx = Group.IdxX, ty = Group.IdxY, t = ty * Threads + tx;
        int n0 = Grid.IdxX * Tile, m0 = Grid.IdxY * Tile, batch = Grid.IdxZ;
        int aBase = s.ABatch.At(batch), bBase = s.BBatch.At(batch);
        float c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
        float c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
        for (int k0 = 0; k0 < s.K; k0 += Slice)
        {
            for (int j = 0; j < 4; j++)
            {
                int e = t + j * Threads * Threads;
                int row = e / Slice, ka = e - row * Slice;          // A: 64 rows × 16 k
                int m = m0 + row, k = k0 + ka;
                As[ka * Tile + row] = m < s.M && k < s.K ? a[aBase + m * s.ARow + k * s.ACol] : 0f;
                int kb = e / Tile, col = e - kb * Tile;             // B: 16 k × 64 columns
                int n = n0 + col; k = k0 + kb;
                Bs[kb * Tile + col] = n < s.N && k < s.K ? b[bBase + k * s.BRow + n * s.BCol] : 0f;
            }
            Group.Barrier();
            for (int k = 0; k < Slice; k++)
            {
                float a0 = As[k * Tile + ty], a1 = As[k * Tile + ty + 16], a2 = As[k * Tile + ty + 32], a3 = As[k * Tile + ty + 48];
                float b0 = Bs[k * Tile + tx], b1 = Bs[k * Tile + tx + 16], b2 = Bs[k * Tile + tx + 32], b3 = Bs[k * Tile + tx + 48];
                c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
                c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
                c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
                c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
            }
            Group.Barrier();
        }
        int yBase = batch * s.M * s.N;
        Store(y, bias, s, yBase, m0 + ty, n0 + tx, c00, c01, c02, c03);
        Store(y, bias, s, yBase, m0 + ty + 16, n0 + tx, c10, c11, c12, c13);
        Store(y, bias, s, yBase, m0 + ty + 32, n0 + tx, c20, c21, c22, c23);
        Store(y, bias, s, yBase, m0 + ty + 48, n0 + tx, c30, c31, c32, c33);
    }

    /// <summary>Rows and columns of C per group of <see cref="Tiled128"/>, its k-slice, and the padded
    /// row length of its A slice in shared memory.</summary>
    public const int BigTile = 128, BigSlice = 16, BigAStride = BigTile + 2;

    /// <summary>
    /// The next step: 16×16 threads per group compute a 128×128 tile of C, each thread an 8×8 block
    /// (rows ty + 16i, columns tx + 16j) in 64 registers. Per k a thread reads 8 values of A and 8 of B
    /// from shared memory for 64 multiply-adds, against 8 for 16 in <see cref="Tiled"/>, which is bound
    /// by those reads (on an H200: 26 TFLOP/s at n = 4096 against 15, cuBLAS 50). The A slice is stored k-major with rows
    /// padded to 130, so the two rows × sixteen k a warp writes fall in 32 different banks. It fills the
    /// GPU only when there are enough 128×128 tiles (GpuBackend chooses).
    /// </summary>
    public static void Tiled128(ArrayView<float> a, ArrayView<float> b, ArrayView<float> bias, GemmShape s, ArrayView<float> y)
    {
        var As = SharedMemory.Allocate<float>(BigSlice * BigAStride);   // As[k * 130 + row]
        var Bs = SharedMemory.Allocate<float>(BigSlice * BigTile);      // Bs[k * 128 + col]
        int tx = Group.IdxX, ty = Group.IdxY, t = ty * Threads + tx;
        int n0 = Grid.IdxX * BigTile, m0 = Grid.IdxY * BigTile, batch = Grid.IdxZ;
        int aBase = s.ABatch.At(batch), bBase = s.BBatch.At(batch);
        Vec8 c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default, c6 = default, c7 = default;
        // Each thread stages elements t, t + 256, …, t + 1792 of each slice: of A's 128 rows × 16 k
        // (row e / 16, k e % 16) and of B's 16 k × 128 columns (k e / 128, column e % 128). They are read
        // into registers one slice ahead, so the global loads of the next slice are in flight while the
        // current one is multiplied (double buffering through registers).
        Vec8 nextA = LoadA(a, s, aBase, m0, 0, t), nextB = LoadB(b, s, bBase, n0, 0, t);
        for (int k0 = 0; k0 < s.K; k0 += BigSlice)
        {
            for (int j = 0; j < 8; j++)
            {
                int e = t + j * Threads * Threads;
                int row = e / BigSlice, ka = e - row * BigSlice, kb = e / BigTile, col = e - kb * BigTile;
                As[ka * BigAStride + row] = nextA.Get(j);
                Bs[kb * BigTile + col] = nextB.Get(j);
            }
            Group.Barrier();
            if (k0 + BigSlice < s.K)
            {
                nextA = LoadA(a, s, aBase, m0, k0 + BigSlice, t);
                nextB = LoadB(b, s, bBase, n0, k0 + BigSlice, t);
            }
            for (int k = 0; k < BigSlice; k++)
            {
                var bk = Vec8.Load(Bs, k * BigTile + tx, Threads);
                int ak = k * BigAStride + ty;
                c0.Fma(As[ak], bk); c1.Fma(As[ak + 16], bk); c2.Fma(As[ak + 32], bk); c3.Fma(As[ak + 48], bk);
                c4.Fma(As[ak + 64], bk); c5.Fma(As[ak + 80], bk); c6.Fma(As[ak + 96], bk); c7.Fma(As[ak + 112], bk);
            }
            Group.Barrier();
        }
        int yBase = batch * s.M * s.N;
        Store8(y, bias, s, yBase, m0 + ty, n0 + tx, c0); Store8(y, bias, s, yBase, m0 + ty + 16, n0 + tx, c1);
        Store8(y, bias, s, yBase, m0 + ty + 32, n0 + tx, c2); Store8(y, bias, s, yBase, m0 + ty + 48, n0 + tx, c3);
        Store8(y, bias, s, yBase, m0 + ty + 64, n0 + tx, c4); Store8(y, bias, s, yBase, m0 + ty + 80, n0 + tx, c5);
        Store8(y, bias, s, yBase, m0 + ty + 96, n0 + tx, c6); Store8(y, bias, s, yBase, m0 + ty + 112, n0 + tx, c7);
    }

    // This thread's eight elements of A's slice at k0 (zero outside the matrix).
    private static Vec8 LoadA(ArrayView<float> a, in GemmShape s, int aBase, int m0, int k0, int t)
    {
        Vec8 v = default;
        for (int j = 0; j < 8; j++)
        {
            int e = t + j * Threads * Threads, row = e / BigSlice;
            int m = m0 + row, k = k0 + e - row * BigSlice;
            v.Set(j, m < s.M && k < s.K ? a[aBase + m * s.ARow + k * s.ACol] : 0f);
        }
        return v;
    }

    // This thread's eight elements of B's slice at k0.
    private static Vec8 LoadB(ArrayView<float> b, in GemmShape s, int bBase, int n0, int k0, int t)
    {
        Vec8 v = default;
        for (int j = 0; j < 8; j++)
        {
            int e = t + j * Threads * Threads, kb = e / BigTile;
            int n = n0 + e - kb * BigTile, k = k0 + kb;
            v.Set(j, n < s.N && k < s.K ? b[bBase + k * s.BRow + n * s.BCol] : 0f);
        }
        return v;
    }

    private static void Store8(ArrayView<float> y, ArrayView<float> bias, in GemmShape s, int yBase, int m, int n, in Vec8 v)
    {
        if (m >= s.M) return;
        Store(y, bias, s, yBase, m, n, v.X0, v.X1, v.X2, v.X3);
        Store(y, bias, s, yBase, m, n + 64, v.X4, v.X5, v.X6, v.X7);
    }

    private static void Store(ArrayView<float> y, ArrayView<float> bias, in GemmShape s, int yBase, int m, int n, float v0, float v1, float v2, float v3)
    {
        if (m >= s.M) return;
        int at = yBase + m * s.N;
        if (n < s.N) y[at + n] = (float)Epilogue(v0, bias, s, m, n);
        if (n + 16 < s.N) y[at + n + 16] = (float)Epilogue(v1, bias, s, m, n + 16);
        if (n + 32 < s.N) y[at + n + 32] = (float)Epilogue(v2, bias, s, m, n + 32);
        if (n + 48 < s.N) y[at + n + 48] = (float)Epilogue(v3, bias, s, m, n + 48);
    }
}

/// <summary>Eight floats in registers: one row of a thread's block of C (columns 16 apart), or the
/// elements of the next slices a thread has loaded.</summary>
internal struct Vec8
{
#pragma warning disable CS1591
    public float X0, X1, X2, X3, X4, X5, X6, X7;
#pragma warning restore CS1591

    /// <summary>Eight values <paramref name="step"/> apart from <paramref name="at"/>.</summary>
    public static Vec8 Load(ArrayView<float> v, int at, int step) => new()
    {
        X0 = v[at], X1 = v[at + step], X2 = v[at + 2 * step], X3 = v[at + 3 * step],
        X4 = v[at + 4 * step], X5 = v[at + 5 * step], X6 = v[at + 6 * step], X7 = v[at + 7 * step],
    };

    /// <summary>Element j (0 to 7).</summary>
    public readonly float Get(int j) => j switch { 0 => X0, 1 => X1, 2 => X2, 3 => X3, 4 => X4, 5 => X5, 6 => X6, _ => X7 };

    /// <summary>Sets element j (0 to 7).</summary>
    public void Set(int j, float v)
    {
        switch (j)
        {
            case 0: X0 = v; break; case 1: X1 = v; break; case 2: X2 = v; break; case 3: X3 = v; break;
            case 4: X4 = v; break; case 5: X5 = v; break; case 6: X6 = v; break; default: X7 = v; break;
        }
    }

    /// <summary>this += a·b, element by element.</summary>
    public void Fma(float a, in Vec8 b)
    {
        X0 += a * b.X0; X1 += a * b.X1; X2 += a * b.X2; X3 += a * b.X3;
        X4 += a * b.X4; X5 += a * b.X5; X6 += a * b.X6; X7 += a * b.X7;
    }
}
