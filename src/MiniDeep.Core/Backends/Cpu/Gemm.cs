using System.Buffers;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

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
    // K block: the depth of one pass over a tile of C (its loads and stores amortized over KC FMAs).
    private const int KC = 256;
    // Rows of A packed at a time, when A has no unit stride and must be packed.
    private const int MC = 120;
    // The packed B of one pass is at most this many bytes, so it stays in the 1 MB L2 of a Zen core
    // while the row tiles stream past it (a 2048-wide B in one pass was 2 MB, read from L3 per tile).
    private const int PackedBBytes = 256 * 1024;
    // An A of at least this many floats (1 MB) does not stay in a core's L2 from one column group to
    // the next: such products get the task grid that reads it fewer times (see Grid).
    private const long LargeA = 1 << 18;
    // A large A with at least this many rows, in K blocks at least this deep, is walked row tile by
    // row tile (see Task).
    private const int TileOuterRows = 2048, TileOuterDepth = 64;

    /// <summary>Which micro-kernel the hardware selects: 16 (AVX-512), 8 (AVX2), 4 (SSE/NEON) or 1 (scalar).</summary>
    public static int VectorWidth =>
        Vector512.IsHardwareAccelerated ? 16 : Vector256.IsHardwareAccelerated ? 8 : Vector128.IsHardwareAccelerated ? 4 : 1;

    /// <summary>
    /// C[m×n] = A[m×k] · B[k×n]. A element (i, p) is at a[i*aRow + p*aCol]; B element (p, j) at
    /// b[p*bRow + j*bCol]; C is dense row-major with leading dimension ldc and is overwritten, or
    /// added to when <paramref name="accumulate"/> (C += A·B: a linear layer starts C at its bias).
    /// </summary>
    public static void Sgemm(int m, int n, int k, float* a, int aRow, int aCol, float* b, int bRow, int bCol, float* c, int ldc,
        int? forceWidth = null, bool accumulate = false)
    {
        if (m == 0 || n == 0) return;
        if (k == 0)
        {
            if (!accumulate) for (int i = 0; i < m; i++) new Span<float>(c + (long)i * ldc, n).Clear();
            return;
        }
        switch (forceWidth ?? VectorWidth)
        {
            case 16: Run<Simd512, Vector512<float>>(m, n, k, a, aRow, aCol, b, bRow, bCol, c, ldc, accumulate); break;
            case 8: Run<Simd256, Vector256<float>>(m, n, k, a, aRow, aCol, b, bRow, bCol, c, ldc, accumulate); break;
            case 4: Run<Simd128, Vector128<float>>(m, n, k, a, aRow, aCol, b, bRow, bCol, c, ldc, accumulate); break;
            default: Run<Simd1, float>(m, n, k, a, aRow, aCol, b, bRow, bCol, c, ldc, accumulate); break;
        }
    }

    // One parallel region per product. The tasks split C into a grid of column groups by row splits;
    // each task walks all of K itself, packing only its own B panels into its own buffer, so packing
    // runs on every core and the threads meet once per product instead of twice per K block.
    // Every element of C is computed by one task in a fixed order, so any thread count gives the same bits.
    private static void Run<TS, TV>(int m, int n, int k, float* a, int aRow, int aCol, float* b, int bRow, int bCol, float* c, int ldc, bool accumulate)
        where TS : struct, ISimd<TV> where TV : struct
    {
        int nr = 2 * TS.Width;
        int panelsN = (n + nr - 1) / nr;
        // K blocks of equal depth (784 = 4 × 196, not 3 × 256 + 16: a 16-deep block pays the C tile's
        // loads and stores for very little arithmetic).
        int kBlocks = (k + KC - 1) / KC, kcMax = (k + kBlocks - 1) / kBlocks;
        // A is read in place when one of its strides is 1 (row-major A, or Aᵀ stored row-major): the
        // kernel walks six row pointers; packing A cost as much as the arithmetic at batch 64.
        bool directA = aCol == 1 || aRow == 1;
        bool wideTranspose = TS.Width >= 8 && Avx.IsSupported;
        long flops = 2L * m * n * k;
        int threads = flops < 1 << 20 ? 1 : Parallelism.MaxThreads;
        int rowTiles = (m + MR - 1) / MR;
        bool largeA = (long)m * k >= LargeA;
        var (groups, rowSplits) = Grid(m, n, threads, panelsN, rowTiles, largeA);
        int perGroup = (panelsN + groups - 1) / groups;
        groups = (panelsN + perGroup - 1) / perGroup;
        int tilesPerSplit = (rowTiles + rowSplits - 1) / rowSplits;
        rowSplits = (rowTiles + tilesPerSplit - 1) / tilesPerSplit;
        int passPanels = Math.Clamp(PackedBBytes / (kcMax * nr * sizeof(float)), 1, perGroup);

        // The tasks' shared description travels as a struct to a static body: a product called every
        // training step allocates nothing (a local function turned into a delegate allocated its closure).
        var job = new GemmJob(m, n, k, a, aRow, aCol, b, bRow, bCol, c, ldc, accumulate, nr, panelsN, kcMax, directA, wideTranspose,
            groups, perGroup, tilesPerSplit, passPanels, largeA && m >= TileOuterRows && kcMax >= TileOuterDepth);
        int tasks = groups * rowSplits;
        if (tasks == 1) Task<TS, TV>(job, 0);
        else Parallelism.ForRange(tasks, 1, job, static (j, t0, t1) => { for (int t = t0; t < t1; t++) Task<TS, TV>(j, t); });
    }

    // The task grid: g column groups by r row splits, at least two tasks per thread (so a core slowed
    // by its neighbour on the VM does not hold the product up) and at most four column groups per
    // thread. Every column group reads all of its rows of A, and every row split packs all of its
    // columns of B. While A fits in L2 its second reading is cheap, so the grid takes as many column
    // groups as it may (B packed once, the tasks small enough to balance). A larger A comes from L3
    // or memory again for every column group, so its grid minimizes g·m + r·n, the elements of A and
    // B read more than once (times k), ties going to more column groups: a 2048 × 512 product of
    // depth 2048 had been cut into eight groups of 64 columns, each streaming all 16 MB of A
    // (158 GFLOP/s on 2 Zen 4 cores); four row splits read it once (194 GFLOP/s, docs/benchmarks.md).
    private static (int Groups, int RowSplits) Grid(int m, int n, int threads, int panelsN, int rowTiles, bool largeA)
    {
        int need = threads == 1 ? 1 : 2 * threads, maxGroups = Math.Min(panelsN, 4 * threads);
        if (!largeA) return (maxGroups, threads == 1 ? 1 : Math.Clamp((need + maxGroups - 1) / maxGroups, 1, rowTiles));
        (int G, int R) best = (maxGroups, 1);
        long bestCost = long.MaxValue;
        for (int g = 1; g <= maxGroups; g++)
        {
            int r = Math.Min(rowTiles, (need + g - 1) / g);
            if (g * r < need && g < maxGroups) continue;   // too few tasks; the largest g stands in when none has enough
            long cost = (long)g * m + (long)r * n;
            if (cost <= bestCost) { bestCost = cost; best = (g, r); }
        }
        return best;
    }

    private readonly struct GemmJob(int m, int n, int k, float* a, int aRow, int aCol, float* b, int bRow, int bCol, float* c, int ldc,
        bool accumulate, int nr, int panelsN, int kcMax, bool directA, bool wideTranspose, int groups, int perGroup, int tilesPerSplit,
        int passPanels, bool tileOuter)
    {
        public readonly int M = m, N = n, K = k, ARow = aRow, ACol = aCol, BRow = bRow, BCol = bCol, Ldc = ldc;
        public readonly float* A = a, B = b, C = c;
        public readonly bool Accumulate = accumulate, DirectA = directA, WideTranspose = wideTranspose;
        public readonly int Nr = nr, PanelsN = panelsN, KcMax = kcMax, Groups = groups, PerGroup = perGroup, TilesPerSplit = tilesPerSplit,
            PassPanels = passPanels;
        public readonly bool TileOuter = tileOuter;
    }

    // Task t: column group t mod groups, row split t / groups, all of K, in passes over at most
    // PassPanels packed B panels (a BLIS jc loop inside the group). Within one pass and K block the
    // tiles meet in one of two orders. By default each B panel meets every row tile of the block in
    // turn, the panel reused from L1 or L2 and the rows of A from L2. A large A with many rows goes
    // row tile by row tile instead, each tile of A (6 × 256 floats, 6 KB) staying in L1 while it
    // meets every panel of the pass, which streams from L2: with AVX-512 a panel is 256 × 32 floats,
    // as large as a Zen 4 core's L1. The rule is measured, not derived: on top of the grid, row tile
    // by row tile gained 2-21% from 2048 rows up (2048 × 2048 × 128: 1.04 → 1.26× of the old kernel)
    // but lost up to 10% at 512-1024 rows and for shallow blocks (k = 10: 92 against 149 GFLOP/s).
    private static void Task<TS, TV>(in GemmJob job, int t) where TS : struct, ISimd<TV> where TV : struct
    {
        int m = job.M, n = job.N, k = job.K, aRow = job.ARow, aCol = job.ACol, bRow = job.BRow, bCol = job.BCol, ldc = job.Ldc;
        float* a = job.A, b = job.B, c = job.C;
        bool directA = job.DirectA, wideTranspose = job.WideTranspose;
        int nr = job.Nr, kcMax = job.KcMax, groups = job.Groups, perGroup = job.PerGroup, tilesPerSplit = job.TilesPerSplit;
        int gr = t % groups, rs0 = t / groups;
        int jpGroup0 = gr * perGroup, jpGroup1 = Math.Min(job.PanelsN, jpGroup0 + perGroup);
        int iStart = rs0 * tilesPerSplit * MR, iEnd = Math.Min(m, iStart + tilesPerSplit * MR);
        int passPanels = job.PassPanels;
        var bBuf = ArrayPool<float>.Shared.Rent(passPanels * kcMax * nr);
        var aBuf = directA ? null : ArrayPool<float>.Shared.Rent(((MC + MR - 1) / MR) * kcMax * MR);
        try
        {
            fixed (float* bp = bBuf)
            fixed (float* ap = aBuf)
            {
                float* tmp = stackalloc float[MR * 64];
                for (int jp0 = jpGroup0; jp0 < jpGroup1; jp0 += passPanels)
                {
                    int jp1 = Math.Min(jpGroup1, jp0 + passPanels);
                    for (int p0 = 0; p0 < k; p0 += kcMax)
                    {
                        int kc = Math.Min(kcMax, k - p0);
                        bool load = job.Accumulate || p0 > 0;   // the first K block of an overwrite starts from zero
                        for (int jp = jp0; jp < jp1; jp++)
                            PackBPanel<TS, TV>(bp + (long)(jp - jp0) * kc * nr, b, bRow, bCol, n, p0, kc, jp, wideTranspose);
                        for (int ic = iStart; ic < iEnd; ic += MC)
                        {
                            int icEnd = Math.Min(iEnd, ic + MC);
                            if (!directA)
                                for (int ip = 0; ic + ip * MR < icEnd; ip++)
                                    PackAPanel(ap + (long)ip * kc * MR, a, aRow, aCol, m, p0, kc, ic / MR + ip);
                            // The two orders differ only in which loop is outside. A helper for the tile
                            // body, called from both, read the job's fields through its reference on every
                            // tile: a training step's small products ran at 0.94-0.99× in one run of 41
                            // paired rounds, so the body is written out in each.
                            if (!job.TileOuter)
                                for (int jp = jp0; jp < jp1; jp++)
                                {
                                    int j = jp * nr, nv = Math.Min(nr, n - j);
                                    float* bPanel = bp + (long)(jp - jp0) * kc * nr;
                                    for (int i = ic; i < icEnd; i += MR)
                                    {
                                        int mv = Math.Min(MR, m - i);
                                        // Row r of the tile starts at aTile + r·rs and steps by cs per k.
                                        float* aTile; long rs, cs;
                                        if (directA) { aTile = a + (long)i * aRow + (long)p0 * aCol; rs = aRow; cs = aCol; }
                                        else { aTile = ap + (long)((i - ic) / MR) * kc * MR; rs = 1; cs = MR; }
                                        float* cTile = c + (long)i * ldc + j;
                                        if (mv == MR && nv == nr) Block<TS, TV, Six, Two>(kc, aTile, rs, cs, bPanel, cTile, ldc, load);
                                        else EdgeTile<TS, TV>(kc, aTile, rs, cs, mv, nv, bPanel, nr, cTile, ldc, load, tmp);
                                    }
                                }
                            else
                                for (int i = ic; i < icEnd; i += MR)
                                {
                                    int mv = Math.Min(MR, m - i);
                                    float* aTile; long rs, cs;
                                    if (directA) { aTile = a + (long)i * aRow + (long)p0 * aCol; rs = aRow; cs = aCol; }
                                    else { aTile = ap + (long)((i - ic) / MR) * kc * MR; rs = 1; cs = MR; }
                                    for (int jp = jp0; jp < jp1; jp++)
                                    {
                                        int j = jp * nr, nv = Math.Min(nr, n - j);
                                        float* bPanel = bp + (long)(jp - jp0) * kc * nr, cTile = c + (long)i * ldc + j;
                                        if (mv == MR && nv == nr) Block<TS, TV, Six, Two>(kc, aTile, rs, cs, bPanel, cTile, ldc, load);
                                        else EdgeTile<TS, TV>(kc, aTile, rs, cs, mv, nv, bPanel, nr, cTile, ldc, load, tmp);
                                    }
                                }
                        }
                    }
                }
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(bBuf);
            if (aBuf is not null) ArrayPool<float>.Shared.Return(aBuf);
        }
    }

    // Bp[p][q] = B(p0 + p, jp*nr + q) for one panel, zero beyond n. Row-major B is copied row by row.
    // Transposed B (bRow = 1: a linear layer's wᵀ, read down the rows of w) is transposed 8×8 blocks
    // at a time in AVX registers where the hardware has them, else element by element with
    // contiguous reads.
    private static void PackBPanel<TS, TV>(float* dst, float* b, int bRow, int bCol, int n, int p0, int kc, int jp, bool wideTranspose)
        where TS : struct, ISimd<TV> where TV : struct
    {
        int w = TS.Width, nr = 2 * w;
        int j0 = jp * nr, nv = Math.Min(nr, n - j0);
        if (bRow == 1 && bCol != 1)
        {
            int q = 0;
            if (wideTranspose)
                for (; q + 8 <= nv; q += 8)
                {
                    int p = 0;
                    for (; p + 8 <= kc; p += 8)
                        Transpose8x8(b + (long)(j0 + q) * bCol + p0 + p, bCol, dst + p * nr + q, nr);
                    for (; p < kc; p++)
                        for (int r = 0; r < 8; r++) dst[p * nr + q + r] = b[(long)(j0 + q + r) * bCol + p0 + p];
                }
            for (; q < nv; q++)
            {
                float* col = b + (long)(j0 + q) * bCol + p0;
                for (int p = 0; p < kc; p++) dst[p * nr + q] = col[p];
            }
            for (q = nv; q < nr; q++)
                for (int p = 0; p < kc; p++) dst[p * nr + q] = 0f;
            return;
        }
        if (bCol == 1 && nv == nr)
        {
            // A whole panel row is two vectors: moved in registers (a span copy of 64 bytes a row spent
            // most of its time entering and leaving memmove).
            for (int p = 0; p < kc; p++)
            {
                float* row = b + (long)(p0 + p) * bRow + j0;
                TS.Store(dst + p * nr, TS.Load(row));
                TS.Store(dst + p * nr + w, TS.Load(row + w));
            }
            return;
        }
        for (int p = 0; p < kc; p++)
        {
            float* row = b + (long)(p0 + p) * bRow + (long)j0 * bCol;
            float* d = dst + p * nr;
            if (bCol == 1) new ReadOnlySpan<float>(row, nv).CopyTo(new Span<float>(d, nv));
            else for (int q = 0; q < nv; q++) d[q] = row[(long)q * bCol];
            for (int q = nv; q < nr; q++) d[q] = 0f;
        }
    }

    // dst[s*ldd + r] = src[r*lds + s] for an 8×8 block: the classic unpack / shuffle / lane-permute
    // sequence, 24 shuffles for 64 elements.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Transpose8x8(float* src, int lds, float* dst, int ldd)
    {
        var r0 = Avx.LoadVector256(src); var r1 = Avx.LoadVector256(src + lds);
        var r2 = Avx.LoadVector256(src + 2 * lds); var r3 = Avx.LoadVector256(src + 3 * lds);
        var r4 = Avx.LoadVector256(src + 4 * lds); var r5 = Avx.LoadVector256(src + 5 * lds);
        var r6 = Avx.LoadVector256(src + 6 * lds); var r7 = Avx.LoadVector256(src + 7 * lds);
        var t0 = Avx.UnpackLow(r0, r1); var t1 = Avx.UnpackHigh(r0, r1);
        var t2 = Avx.UnpackLow(r2, r3); var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5); var t5 = Avx.UnpackHigh(r4, r5);
        var t6 = Avx.UnpackLow(r6, r7); var t7 = Avx.UnpackHigh(r6, r7);
        var u0 = Avx.Shuffle(t0, t2, 0x44); var u1 = Avx.Shuffle(t0, t2, 0xEE);
        var u2 = Avx.Shuffle(t1, t3, 0x44); var u3 = Avx.Shuffle(t1, t3, 0xEE);
        var u4 = Avx.Shuffle(t4, t6, 0x44); var u5 = Avx.Shuffle(t4, t6, 0xEE);
        var u6 = Avx.Shuffle(t5, t7, 0x44); var u7 = Avx.Shuffle(t5, t7, 0xEE);
        Avx.Store(dst, Avx.Permute2x128(u0, u4, 0x20));
        Avx.Store(dst + ldd, Avx.Permute2x128(u1, u5, 0x20));
        Avx.Store(dst + 2 * ldd, Avx.Permute2x128(u2, u6, 0x20));
        Avx.Store(dst + 3 * ldd, Avx.Permute2x128(u3, u7, 0x20));
        Avx.Store(dst + 4 * ldd, Avx.Permute2x128(u0, u4, 0x31));
        Avx.Store(dst + 5 * ldd, Avx.Permute2x128(u1, u5, 0x31));
        Avx.Store(dst + 6 * ldd, Avx.Permute2x128(u2, u6, 0x31));
        Avx.Store(dst + 7 * ldd, Avx.Permute2x128(u3, u7, 0x31));
    }

    // Ap[p][r] = A(ip*MR + r, p0 + p) for one panel, zero beyond m (only for A with no unit stride).
    private static void PackAPanel(float* dst, float* a, int aRow, int aCol, int m, int p0, int kc, int ip)
    {
        int i0 = ip * MR, mv = Math.Min(MR, m - i0);
        for (int r = 0; r < MR; r++)
        {
            if (r >= mv) { for (int p = 0; p < kc; p++) dst[p * MR + r] = 0f; continue; }
            float* row = a + (long)(i0 + r) * aRow + (long)p0 * aCol;
            for (int p = 0; p < kc; p++) dst[p * MR + r] = row[(long)p * aCol];
        }
    }

    // An edge tile: fewer than MR rows of C, or fewer than nr columns. Rows go through blocks of 4, 2 and
    // 1 rows, so a two-row edge (m = 128 = 21·6 + 2) costs a third of a full tile rather than a whole
    // one; columns short of the panel are computed in a zero-padded copy of C, one vector wide when
    // they fit in one (a 10-class output layer with AVX-512). Every element is still one chain of FMAs
    // over k in increasing order, so an edge gives the bits the interior would.
    private static void EdgeTile<TS, TV>(int kc, float* a, long rs, long cs, int mv, int nv, float* b, int nr, float* c, int ldc, bool load, float* tmp)
        where TS : struct, ISimd<TV> where TV : struct
    {
        float* dst = c;
        int ldd = ldc;
        if (nv < nr)
        {
            // Only a tile that loads C reads the copy; its padding is cleared so that it holds no stray
            // NaNs or denormals (those columns are computed and dropped).
            if (load)
            {
                new Span<float>(tmp, MR * nr).Clear();
                for (int r = 0; r < mv; r++)
                    new ReadOnlySpan<float>(c + (long)r * ldc, nv).CopyTo(new Span<float>(tmp + r * nr, nv));
            }
            dst = tmp;
            ldd = nr;
        }
        bool one = nv <= TS.Width;
        int i = 0;
        if (mv == MR) { EdgeRows<TS, TV, Six>(one, kc, a, rs, cs, b, dst, ldd, load); i = MR; }
        for (; i + 4 <= mv; i += 4) EdgeRows<TS, TV, Four>(one, kc, a + i * rs, rs, cs, b, dst + (long)i * ldd, ldd, load);
        for (; i + 2 <= mv; i += 2) EdgeRows<TS, TV, Two>(one, kc, a + i * rs, rs, cs, b, dst + (long)i * ldd, ldd, load);
        for (; i < mv; i++) EdgeRows<TS, TV, One>(one, kc, a + i * rs, rs, cs, b, dst + (long)i * ldd, ldd, load);
        if (nv < nr)
            for (int r = 0; r < mv; r++)
                new ReadOnlySpan<float>(tmp + r * nr, nv).CopyTo(new Span<float>(c + (long)r * ldc, nv));
    }

    // TR.Count rows, one vector wide or two.
    private static void EdgeRows<TS, TV, TR>(bool one, int kc, float* a, long rs, long cs, float* b, float* c, int ldc, bool load)
        where TS : struct, ISimd<TV> where TV : struct where TR : struct, ICount
    {
        if (one) Block<TS, TV, TR, One>(kc, a, rs, cs, b, c, ldc, load);
        else Block<TS, TV, TR, Two>(kc, a, rs, cs, b, c, ldc, load);
    }

    // The micro-kernel: TR.Count rows (1, 2, 4 or 6) by TW.Count vectors (1 or 2) of C in registers,
    // one rank-1 update per k; a full tile is 6 × 2 (12 accumulators). Row r of A is read at
    // a + r·rs + p·cs through six fixed row bases and one shared offset, which serves A read in place
    // (cs = 1) and packed (rs = 1) alike: a kernel that advanced six A pointers instead ran out of
    // general registers and spilled them to the stack inside the k loop (55–63% of one core's FMA
    // peak). The counts are constants of each instantiation, so the JIT drops the accumulators and
    // branches a block does not have. Kept out of the driver (NoInlining) for its own register allocation.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Block<TS, TV, TR, TW>(int kc, float* a, long rs, long cs, float* b, float* c, int ldc, bool load)
        where TS : struct, ISimd<TV> where TV : struct where TR : struct, ICount where TW : struct, ICount
    {
        int w = TS.Width, rows = TR.Count;
        bool two = TW.Count == 2;
        float* a0 = a, a1 = a + rs, a2 = a + 2 * rs, a3 = a + 3 * rs, a4 = a + 4 * rs, a5 = a + 5 * rs;
        TV c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        TV c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        if (load)
        {
            c00 = TS.Load(c); if (two) c01 = TS.Load(c + w);
            if (rows > 1) { c10 = TS.Load(c + ldc); if (two) c11 = TS.Load(c + ldc + w); }
            if (rows > 2)
            {
                c20 = TS.Load(c + 2 * ldc); if (two) c21 = TS.Load(c + 2 * ldc + w);
                c30 = TS.Load(c + 3 * ldc); if (two) c31 = TS.Load(c + 3 * ldc + w);
            }
            if (rows > 4)
            {
                c40 = TS.Load(c + 4 * ldc); if (two) c41 = TS.Load(c + 4 * ldc + w);
                c50 = TS.Load(c + 5 * ldc); if (two) c51 = TS.Load(c + 5 * ldc + w);
            }
        }
        long off = 0;
        for (int p = 0; p < kc; p++, off += cs, b += 2 * w)   // a packed B panel is 2·W wide, whatever TW
        {
            TV b0 = TS.Load(b), b1 = two ? TS.Load(b + w) : default;
            TV x = TS.Broadcast(a0[off]); c00 = TS.Fma(x, b0, c00); if (two) c01 = TS.Fma(x, b1, c01);
            if (rows > 1) { x = TS.Broadcast(a1[off]); c10 = TS.Fma(x, b0, c10); if (two) c11 = TS.Fma(x, b1, c11); }
            if (rows > 2)
            {
                x = TS.Broadcast(a2[off]); c20 = TS.Fma(x, b0, c20); if (two) c21 = TS.Fma(x, b1, c21);
                x = TS.Broadcast(a3[off]); c30 = TS.Fma(x, b0, c30); if (two) c31 = TS.Fma(x, b1, c31);
            }
            if (rows > 4)
            {
                x = TS.Broadcast(a4[off]); c40 = TS.Fma(x, b0, c40); if (two) c41 = TS.Fma(x, b1, c41);
                x = TS.Broadcast(a5[off]); c50 = TS.Fma(x, b0, c50); if (two) c51 = TS.Fma(x, b1, c51);
            }
        }
        TS.Store(c, c00); if (two) TS.Store(c + w, c01);
        if (rows > 1) { TS.Store(c + ldc, c10); if (two) TS.Store(c + ldc + w, c11); }
        if (rows > 2)
        {
            TS.Store(c + 2 * ldc, c20); if (two) TS.Store(c + 2 * ldc + w, c21);
            TS.Store(c + 3 * ldc, c30); if (two) TS.Store(c + 3 * ldc + w, c31);
        }
        if (rows > 4)
        {
            TS.Store(c + 4 * ldc, c40); if (two) TS.Store(c + 4 * ldc + w, c41);
            TS.Store(c + 5 * ldc, c50); if (two) TS.Store(c + 5 * ldc + w, c51);
        }
    }

    private interface ICount { static abstract int Count { get; } }
    private struct One : ICount { public static int Count => 1; }
    private struct Two : ICount { public static int Count => 2; }
    private struct Four : ICount { public static int Count => 4; }
    private struct Six : ICount { public static int Count => 6; }

    /// <summary>Double-precision GEMM for gradient checks and float64 experiments: no packed
    /// micro-kernel (speed is not the point in float64), but the loop order suits the shape. When the
    /// inner dimension k is at least n, each element of C is one SIMD dot product of a row of A and a
    /// column of B, both copied contiguous first (a small model's weight gradient, 16×10 over 1,000
    /// examples, was 16,000 ten-element row updates); otherwise rows of C are updated with scaled rows
    /// of B. Fixed order either way: the same bits on any thread count.</summary>
    public static void Dgemm(int m, int n, int k, double* a, int aRow, int aCol, double* b, int bRow, int bCol, double* c, int ldc)
    {
        var pool = ArrayPool<double>.Shared;
        if (k >= 64 && k >= 4 * n)
        {
            var ap = pool.Rent(k);
            var bt = pool.Rent(n * k);
            try
            {
                for (int j = 0; j < n; j++)
                    for (int p = 0; p < k; p++) bt[j * k + p] = b[(long)p * bRow + (long)j * bCol];
                for (int i = 0; i < m; i++)
                {
                    for (int p = 0; p < k; p++) ap[p] = a[(long)i * aRow + (long)p * aCol];
                    var crow = new Span<double>(c + (long)i * ldc, n);
                    for (int j = 0; j < n; j++) crow[j] = TensorPrimitives.Dot<double>(ap.AsSpan(0, k), bt.AsSpan(j * k, k));
                }
            }
            finally { pool.Return(ap); pool.Return(bt); }
            return;
        }
        // B copied row-major and padded to whole vectors; each row of C accumulates in vector registers
        // (one call per row instead of one span call per element of A).
        int w = System.Numerics.Vector<double>.Count, np = (n + w - 1) / w * w;
        var bp = pool.Rent(k * np);
        var acc = pool.Rent(np);
        try
        {
            for (int p = 0; p < k; p++)
            {
                for (int j = 0; j < n; j++) bp[p * np + j] = b[(long)p * bRow + (long)j * bCol];
                for (int j = n; j < np; j++) bp[p * np + j] = 0;
            }
            fixed (double* pb = bp) fixed (double* pacc = acc)
                for (int i = 0; i < m; i++)
                {
                    RowTimesMatrix(k, np, a + (long)i * aRow, aCol, pb, pacc);
                    new ReadOnlySpan<double>(pacc, n).CopyTo(new Span<double>(c + (long)i * ldc, n));
                }
        }
        finally { pool.Return(bp); pool.Return(acc); }
    }

    // acc[0..np) = Σ_p a[p·aCol] · b[p·np .. p·np + np), np a whole number of vectors.
    private static void RowTimesMatrix(int k, int np, double* a, int aCol, double* b, double* acc)
    {
        int w = System.Numerics.Vector<double>.Count;
        for (int j = 0; j < np; j += 4 * w)
        {
            int width = Math.Min(4 * w, np - j);
            var c0 = System.Numerics.Vector<double>.Zero; var c1 = c0; var c2 = c0; var c3 = c0;
            for (int p = 0; p < k; p++)
            {
                var x = new System.Numerics.Vector<double>(a[(long)p * aCol]);
                double* row = b + (long)p * np + j;
                c0 += x * System.Runtime.CompilerServices.Unsafe.ReadUnaligned<System.Numerics.Vector<double>>(row);
                if (width > w) c1 += x * System.Runtime.CompilerServices.Unsafe.ReadUnaligned<System.Numerics.Vector<double>>(row + w);
                if (width > 2 * w) c2 += x * System.Runtime.CompilerServices.Unsafe.ReadUnaligned<System.Numerics.Vector<double>>(row + 2 * w);
                if (width > 3 * w) c3 += x * System.Runtime.CompilerServices.Unsafe.ReadUnaligned<System.Numerics.Vector<double>>(row + 3 * w);
            }
            System.Runtime.CompilerServices.Unsafe.WriteUnaligned(acc + j, c0);
            if (width > w) System.Runtime.CompilerServices.Unsafe.WriteUnaligned(acc + j + w, c1);
            if (width > 2 * w) System.Runtime.CompilerServices.Unsafe.WriteUnaligned(acc + j + 2 * w, c2);
            if (width > 3 * w) System.Runtime.CompilerServices.Unsafe.WriteUnaligned(acc + j + 3 * w, c3);
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
