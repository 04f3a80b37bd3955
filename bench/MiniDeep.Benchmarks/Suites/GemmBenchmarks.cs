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
/// <see cref="TrainingShapes"/>: the products of one batch-128 training step of an MLP 784-512-512-10,
/// edge tiles and all. Run: <c>--filter '*GemmTrainingShapes*'</c>.
/// </summary>
[Config(typeof(KernelConfig))]
public class GemmTrainingShapesBenchmarks : IFlopCount
{
    public static IEnumerable<string> Shapes => TrainingShapes.All;

    /// <summary>"kind m n k" (see <see cref="TrainingShapes.All"/>).</summary>
    [ParamsSource(nameof(Shapes))]
    public string Shape = "";

    private TrainingShapes.Product _product = null!;

    [GlobalSetup]
    public void Setup() => _product = new TrainingShapes.Product(Shape);

    public double Flops(BenchmarkCase b) => TrainingShapes.Flops((string)b.Parameters["Shape"]);

    [Benchmark(Description = "packed SIMD kernel, all cores")]
    public void Product() => _product.Run();
}
