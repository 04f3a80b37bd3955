using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Running;
using MiniDeep.Cpu;

namespace MiniDeep.Benchmarks.Suites;

/// <summary>
/// How a fast SGEMM is built, one step at a time, on square n×n matrices: loop order and cache
/// blocking; the TensorPrimitives.Dot baseline; MiniDeep's packed kernel on one core; and on every
/// core (the textbook loop is <see cref="GemmNaiveBenchmarks"/>). Run: <c>--filter '*Gemm*'</c>.
/// </summary>
[Config(typeof(KernelConfig))]
public class GemmBenchmarks : IFlopCount
{
    [Params(64, 256, 1024)]
    public int N;

    private float[] _a = [], _b = [], _bT = [], _c = [];

    [GlobalSetup]
    public void Setup()
    {
        var op = new Workloads.GemmOperands(N);
        (_a, _b, _c) = (op.A, op.B, op.C);
        _bT = GemmVariants.Transpose(N, _b);
    }

    public double Flops(BenchmarkCase b) => 2.0 * Math.Pow((int)b.Parameters["N"], 3);

    [Benchmark(Description = "2 blocked ipj")]
    public void Blocked() => GemmVariants.Blocked(N, _a, _b, _c);

    [Benchmark(Description = "3 TensorPrimitives.Dot", Baseline = true)]
    public void TensorPrimitivesDot() => GemmVariants.TensorPrimitivesDot(N, _a, _bT, _c);

    [Benchmark(Description = "4 packed SIMD kernel, 1 core")]
    public void PackedOneCore()
    {
        int saved = Parallelism.MaxThreads;
        Parallelism.MaxThreads = 1;
        try { Run(); } finally { Parallelism.MaxThreads = saved; }
    }

    [Benchmark(Description = "5 packed SIMD kernel, all cores")]
    public void PackedAllCores() => Run();

    private unsafe void Run()
    {
        fixed (float* a = _a) fixed (float* b = _b) fixed (float* c = _c)
            Gemm.Sgemm(N, N, N, a, N, 1, b, N, 1, c, N);
    }
}

/// <summary>The textbook ijk loop, step 1 of the progression, at the sizes where it finishes in
/// seconds (at n = 1024 one call takes minutes).</summary>
[Config(typeof(KernelConfig))]
public class GemmNaiveBenchmarks : IFlopCount
{
    [Params(64, 256)]
    public int N;

    private float[] _a = [], _b = [], _c = [];

    [GlobalSetup]
    public void Setup()
    {
        var op = new Workloads.GemmOperands(N);
        (_a, _b, _c) = (op.A, op.B, op.C);
    }

    public double Flops(BenchmarkCase b) => 2.0 * Math.Pow((int)b.Parameters["N"], 3);

    [Benchmark(Description = "1 naive ijk")]
    public void Naive() => GemmVariants.Naive(N, _a, _b, _c);
}

/// <summary>
/// The products of one training step of an MLP 784-512-512-10 at batch 128 (the memorization claim's
/// network), in the layouts the linear layers hand the GEMM: the forward x·wᵀ (w read transposed),
/// the input gradient dy·w (w row-major) and the weight gradient dyᵀ·x (dy read transposed). None is
/// a whole number of 6-row tiles (128 = 21·6 + 2, 512 = 85·6 + 2, 10 = 6 + 4) and the output layer
/// fills 10 of a panel's 16 or 32 columns, so these measure the edge tiles and B packing that square
/// products hide. Run: <c>--filter '*GemmTrainingShapes*'</c>.
/// </summary>
[Config(typeof(KernelConfig))]
public class GemmTrainingShapesBenchmarks : IFlopCount
{
    /// <summary>"kind m n k": fwd = x·wᵀ, dx = dy·w, dw = dyᵀ·x, each C = m×n over depth k.</summary>
    [Params("fwd 128 512 784", "fwd 128 512 512", "fwd 128 10 512",
            "dx 128 512 512", "dx 128 512 10",
            "dw 512 784 128", "dw 512 512 128", "dw 10 512 128")]
    public string Shape = "";

    private string _kind = "";
    private int _m, _n, _k;
    private float[] _a = [], _b = [], _c = [];

    [GlobalSetup]
    public void Setup()
    {
        (_kind, _m, _n, _k) = Parse(Shape);
        var g = new Generator(1);
        _a = Tensor.Randn(new Shape(_m * _k), g).ToArray<float>();
        _b = Tensor.Randn(new Shape(_k * _n), g).ToArray<float>();
        _c = new float[_m * _n];
    }

    private static (string Kind, int M, int N, int K) Parse(string shape)
    {
        var f = shape.Split(' ');
        return (f[0], int.Parse(f[1]), int.Parse(f[2]), int.Parse(f[3]));
    }

    public double Flops(BenchmarkCase b)
    {
        var (_, m, n, k) = Parse((string)b.Parameters["Shape"]);
        return 2.0 * m * n * k;
    }

    [Benchmark(Description = "packed SIMD kernel, all cores")]
    public unsafe void Product()
    {
        // A is m×k: row-major for fwd and dx, stored k×m (read transposed) for dw. B is k×n: stored
        // n×k (read transposed) for fwd, row-major otherwise.
        var (aRow, aCol) = _kind == "dw" ? (1, _m) : (_k, 1);
        var (bRow, bCol) = _kind == "fwd" ? (1, _k) : (_n, 1);
        fixed (float* a = _a) fixed (float* b = _b) fixed (float* c = _c)
            Gemm.Sgemm(_m, _n, _k, a, aRow, aCol, b, bRow, bCol, c, _n);
    }
}
