using Xunit;

namespace MiniDeep.Tests.BackendTests;

[Collection("threads")]
public unsafe class GemmTests
{
    // Reference C = A·B with A and B read through (row, col) strides, accumulated in double.
    private static double[] Reference(int m, int n, int k, float[] a, int aRow, int aCol, float[] b, int bRow, int bCol)
    {
        var c = new double[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int p = 0; p < k; p++) s += (double)a[i * aRow + p * aCol] * b[p * bRow + j * bCol];
                c[i * n + j] = s;
            }
        return c;
    }

    private static float[] Run(int m, int n, int k, float[] a, int aRow, int aCol, float[] b, int bRow, int bCol, int width)
    {
        var c = new float[m * n];
        fixed (float* pa = a) fixed (float* pb = b) fixed (float* pc = c)
            Cpu.Gemm.Sgemm(m, n, k, pa, aRow, aCol, pb, bRow, bCol, pc, n, width);
        return c;
    }

    public static TheoryData<int> Widths => new(16, 8, 4, 1);

    // Sizes around every edge: the 6-row micro-tile, the 2·W-column panel for each W, the 120-row and 256-deep blocks.
    private static readonly int[] Edges = [1, 2, 5, 6, 7, 8, 11, 12, 13, 15, 16, 17, 31, 32, 33, 47, 48, 49, 63, 64, 65, 67];

    [Theory]
    [MemberData(nameof(Widths))]
    public void Sgemm_OddSizesAndEveryTransposeForm_MatchReference(int width)
    {
        var g = new Generator(17);
        foreach (var m in Edges.Where((_, i) => i % 2 == 0))
            foreach (var n in Edges.Where((_, i) => i % 2 == 1))
                foreach (var k in new[] { 1, 3, 17, 64 })
                    foreach (var (ta, tb) in new[] { (false, false), (true, false), (false, true), (true, true) })
                    {
                        var a = Tensor.Randn(new Shape(m * k), g).ToArray<float>();
                        var b = Tensor.Randn(new Shape(k * n), g).ToArray<float>();
                        // A stored as m×k (row, col) = (k, 1), or as its transpose k×m: (1, m)
                        var (aRow, aCol) = ta ? (1, m) : (k, 1);
                        var (bRow, bCol) = tb ? (1, k) : (n, 1);
                        var expected = Reference(m, n, k, a, aRow, aCol, b, bRow, bCol);
                        var actual = Run(m, n, k, a, aRow, aCol, b, bRow, bCol, width);
                        for (int i = 0; i < expected.Length; i++)
                            Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-5 * (Math.Sqrt(k) + Math.Abs(expected[i])),
                                $"m={m} n={n} k={k} ta={ta} tb={tb} width={width} element {i}: {expected[i]} vs {actual[i]}");
                    }
    }

    [Fact]
    public void Sgemm_AcrossTheCacheBlockEdges_MatchesReference()
    {
        var g = new Generator(3);
        foreach (var (m, n, k) in new[] { (119, 33, 255), (121, 31, 257), (240, 65, 513), (1, 300, 260) })
        {
            var a = Tensor.Randn(new Shape(m * k), g).ToArray<float>();
            var b = Tensor.Randn(new Shape(k * n), g).ToArray<float>();
            var expected = Reference(m, n, k, a, k, 1, b, n, 1);
            var actual = Run(m, n, k, a, k, 1, b, n, 1, Cpu.Gemm.VectorWidth);
            for (int i = 0; i < expected.Length; i++)
                Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-4 * Math.Sqrt(k), $"({m}, {n}, {k}) element {i}: {expected[i]} vs {actual[i]}");
        }
    }

    [Theory]
    [MemberData(nameof(Widths))]
    public void Sgemm_Accumulate_AddsToC_AcrossKBlocks(int width)
    {
        var g = new Generator(5);
        foreach (var (m, n, k) in new[] { (7, 33, 300), (64, 40, 17), (13, 9, 1) })
        {
            var a = Tensor.Randn(new Shape(m * k), g).ToArray<float>();
            var b = Tensor.Randn(new Shape(k * n), g).ToArray<float>();
            var c0 = Tensor.Randn(new Shape(m * n), g).ToArray<float>();
            var expected = Reference(m, n, k, a, k, 1, b, 1, k);            // B read transposed, as a linear layer does
            var c = (float[])c0.Clone();
            fixed (float* pa = a) fixed (float* pb = b) fixed (float* pc = c)
                Cpu.Gemm.Sgemm(m, n, k, pa, k, 1, pb, 1, k, pc, n, width, accumulate: true);
            for (int i = 0; i < c.Length; i++)
                Assert.True(Math.Abs(expected[i] + c0[i] - c[i]) <= 1e-4 * Math.Sqrt(k), $"({m}, {n}, {k}) element {i}");
        }
    }

    [Fact]
    public void Sgemm_OneAndTwoThreads_GiveTheSameBits_ForEveryOperandLayout()
    {
        int saved = Parallelism.MaxThreads;
        try
        {
            var g = new Generator(9);
            int m = 131, n = 97, k = 600;
            var a = Tensor.Randn(new Shape(m * k), g).ToArray<float>();
            var b = Tensor.Randn(new Shape(k * n), g).ToArray<float>();
            foreach (var (aRow, aCol, bRow, bCol) in new[] { (k, 1, n, 1), (1, m, n, 1), (k, 1, 1, k), (1, m, 1, k) })
            {
                Parallelism.MaxThreads = 1;
                var one = Run(m, n, k, a, aRow, aCol, b, bRow, bCol, Cpu.Gemm.VectorWidth);
                Parallelism.MaxThreads = 2;
                var two = Run(m, n, k, a, aRow, aCol, b, bRow, bCol, Cpu.Gemm.VectorWidth);
                Assert.Equal(one, two);
            }
        }
        finally { Parallelism.MaxThreads = saved; }
    }

    [Fact]
    public void Sgemm_EveryVectorWidthTheMachineRuns_GivesTheSameBits()
    {
        // Each element of C is one chain of fused multiply-adds over k in increasing order, whatever the
        // lane count, so an AVX-512 and an AVX2 machine agree on every product (reductions do not).
        var g = new Generator(10);
        int m = 37, n = 70, k = 530;   // edge tiles in both directions, three K blocks
        var a = Tensor.Randn(new Shape(m * k), g).ToArray<float>();
        var b = Tensor.Randn(new Shape(k * n), g).ToArray<float>();
        var widths = new[] { 16, 8, 4, 1 }.Where(w => w <= Cpu.Gemm.VectorWidth).ToArray();
        foreach (var (aRow, aCol, bRow, bCol) in new[] { (k, 1, n, 1), (1, m, n, 1), (k, 1, 1, k), (1, m, 1, k) })
        {
            var widest = Run(m, n, k, a, aRow, aCol, b, bRow, bCol, widths[0]);
            foreach (int w in widths.Skip(1))
                Assert.Equal(widest, Run(m, n, k, a, aRow, aCol, b, bRow, bCol, w));
        }
    }

    [Theory]
    [MemberData(nameof(Widths))]
    public void Sgemm_EveryTileShape_IsOneFmaChainPerElement_BitForBit(int width)
    {
        // The exact specification behind the bit-identity tests above: C(i, j) starts at 0 (or at C when
        // accumulating) and takes fma(A(i, p), B(p, j), ·) for p = 0, 1, …, k − 1 in order. Full tiles,
        // edge tiles of every row count (m mod 6 = 1…5, through blocks of 4, 2 and 1 rows) and column
        // edges one and two vectors wide must all meet it to the bit, across K blocks, for every layout:
        // A row-major or transposed (read in place) or with no unit stride (packed into panels first).
        var g = new Generator(21);
        int nr = 2 * width;
        foreach (int m in new[] { 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 13, 128 })
            foreach (int n in new[] { 1, Math.Max(1, width - 1), width, width + 1, nr - 1, nr, nr + 3, 3 * nr })
                foreach (int k in new[] { 5, 300 })
                    foreach (var (aForm, tb) in new[] { ("rows", false), ("transposed", false), ("strided", false), ("rows", true), ("transposed", true), ("strided", true) })
                        foreach (bool accumulate in new[] { false, true })
                        {
                            var a = Tensor.Randn(new Shape(2 * m * k), g).ToArray<float>();
                            var b = Tensor.Randn(new Shape(k * n), g).ToArray<float>();
                            var c0 = Tensor.Randn(new Shape(m * n), g).ToArray<float>();
                            var (aRow, aCol) = aForm switch { "rows" => (k, 1), "transposed" => (1, m), _ => (2 * k, 2) };
                            var (bRow, bCol) = tb ? (1, k) : (n, 1);
                            var c = (float[])c0.Clone();
                            fixed (float* pa = a) fixed (float* pb = b) fixed (float* pc = c)
                                Cpu.Gemm.Sgemm(m, n, k, pa, aRow, aCol, pb, bRow, bCol, pc, n, width, accumulate);
                            for (int i = 0; i < m; i++)
                                for (int j = 0; j < n; j++)
                                {
                                    float s = accumulate ? c0[i * n + j] : 0f;
                                    for (int p = 0; p < k; p++) s = MathF.FusedMultiplyAdd(a[i * aRow + p * aCol], b[p * bRow + j * bCol], s);
                                    if (BitConverter.SingleToInt32Bits(s) != BitConverter.SingleToInt32Bits(c[i * n + j]))
                                        Assert.Fail($"m={m} n={n} k={k} A {aForm} tb={tb} accumulate={accumulate} width={width}: C({i}, {j}) = {c[i * n + j]:R}, the FMA chain gives {s:R}");
                                }
                        }
    }

    [Fact]
    public void Sgemm_LargeProducts_InPassesAndRowTileOrder_AreOneFmaChainPerElement_OnOneAndTwoThreads()
    {
        // The paths only large products take: an A of 2054 × 130 (over a million bytes) gets the grid
        // that reads it fewer times (a single task on one thread, two by two on two), is walked row
        // tile by row tile (2054 rows, 130 deep), and 500 columns are more B panels than one pass
        // packs (15 of 32 columns at 130 deep with AVX-512, 31 of 16 with AVX2). 2054 and 500 leave
        // edges on both sides. Each element must still be the FMA chain of the specification above.
        int saved = Parallelism.MaxThreads;
        try
        {
            var g = new Generator(33);
            int m = 2054, n = 500, k = 130;
            var widths = new[] { 16, 8 }.Where(w => w <= Cpu.Gemm.VectorWidth).ToArray();
            foreach (var (aForm, tb, accumulate) in new[] { ("rows", false, false), ("strided", true, true), ("transposed", false, true) })
            {
                var a = Tensor.Randn(new Shape(2 * m * k), g).ToArray<float>();
                var b = Tensor.Randn(new Shape(k * n), g).ToArray<float>();
                var c0 = Tensor.Randn(new Shape(m * n), g).ToArray<float>();
                var (aRow, aCol) = aForm switch { "rows" => (k, 1), "transposed" => (1, m), _ => (2 * k, 2) };
                var (bRow, bCol) = tb ? (1, k) : (n, 1);
                var expected = new float[m * n];
                for (int i = 0; i < m; i++)
                    for (int j = 0; j < n; j++)
                    {
                        float s = accumulate ? c0[i * n + j] : 0f;
                        for (int p = 0; p < k; p++) s = MathF.FusedMultiplyAdd(a[i * aRow + p * aCol], b[p * bRow + j * bCol], s);
                        expected[i * n + j] = s;
                    }
                foreach (int width in widths)
                    foreach (int threads in new[] { 1, 2 })
                    {
                        Parallelism.MaxThreads = threads;
                        var c = (float[])c0.Clone();
                        fixed (float* pa = a) fixed (float* pb = b) fixed (float* pc = c)
                            Cpu.Gemm.Sgemm(m, n, k, pa, aRow, aCol, pb, bRow, bCol, pc, n, width, accumulate);
                        for (int i = 0; i < c.Length; i++)
                            if (BitConverter.SingleToInt32Bits(expected[i]) != BitConverter.SingleToInt32Bits(c[i]))
                                Assert.Fail($"A {aForm} tb={tb} accumulate={accumulate} width={width} threads={threads}: C({i / n}, {i % n}) = {c[i]:R}, the FMA chain gives {expected[i]:R}");
                    }
            }
        }
        finally { Parallelism.MaxThreads = saved; }
    }

    [Fact]
    public void ABatchOfSmallProducts_RunsOnePerCore_WithTheBitsOfOneAtATime()
    {
        // 2 × 20 products of 7 × 9 by 9 × 5, too small for the GEMM to split, go one per core; the
        // second operand broadcasts over the first batch axis and is read transposed. Each must equal
        // its own product computed alone, on 1 and 2 threads.
        int saved = Parallelism.MaxThreads;
        try
        {
            var g = new Generator(12);
            var a = Tensor.Randn(new Shape(2, 20, 7, 9), g);
            var b = Tensor.Randn(new Shape(20, 5, 9), g).Transpose(-2, -1);
            var alone = new float[2 * 20 * 7 * 5];
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 20; j++)
                    Tensor.MatMul(a.Select(0, i).Select(0, j), b.Select(0, j)).ToArray<float>().CopyTo(alone, (i * 20 + j) * 35);
            foreach (int threads in new[] { 1, 2 })
            {
                Parallelism.MaxThreads = threads;
                Assert.Equal(alone, Tensor.MatMul(a, b).ToArray<float>());
            }
        }
        finally { Parallelism.MaxThreads = saved; }
    }

    [Fact]
    public void Sgemm_ZeroDepth_GivesZeros_AndEmptyShapesAreFine()
    {
        Assert.All(Run(3, 4, 0, [], 0, 1, [], 4, 1, Cpu.Gemm.VectorWidth), v => Assert.Equal(0f, v));
        Assert.Empty(Run(0, 4, 3, [], 3, 1, new float[12], 4, 1, Cpu.Gemm.VectorWidth));
    }
}
