using System.Diagnostics;
using MiniDeep.Cpu;

namespace MiniDeep.Benchmarks;

/// <summary>
/// The products of one training step of an MLP 784-512-512-10 at batch 128 (the memorization claim's
/// network), in the layouts the linear layers hand the GEMM: the forward x·wᵀ (w read transposed),
/// the input gradient dy·w (w row-major) and the weight gradient dyᵀ·x (dy read transposed). None is
/// a whole number of 6-row tiles (128 = 21·6 + 2, 512 = 85·6 + 2, 10 = 6 + 4) and the output layer
/// fills 10 of a panel's 16 or 32 columns, so they measure the edge tiles and B packing that square
/// products hide. Shared by <see cref="Suites.GemmTrainingShapesBenchmarks"/> and the `gemm-shapes` mode.
/// </summary>
public static class TrainingShapes
{
    /// <summary>"kind m n k": fwd = x·wᵀ, dx = dy·w, dw = dyᵀ·x, each C = m×n over depth k.</summary>
    public static readonly string[] All =
    [
        "fwd 128 512 784", "fwd 128 512 512", "fwd 128 10 512",
        "dx 128 512 512", "dx 128 512 10",
        "dw 512 784 128", "dw 512 512 128", "dw 10 512 128",
    ];

    /// <summary>Floating-point operations of one product, 2·m·n·k.</summary>
    public static double Flops(string shape)
    {
        var f = shape.Split(' ');
        return 2.0 * int.Parse(f[1]) * int.Parse(f[2]) * int.Parse(f[3]);
    }

    /// <summary>One product's operands, random, and the call that multiplies them in its layout.</summary>
    public sealed class Product
    {
        private readonly string _kind;
        private readonly int _m, _n, _k;
        private readonly float[] _a, _b, _c;

        public Product(string shape)
        {
            var f = shape.Split(' ');
            (_kind, _m, _n, _k) = (f[0], int.Parse(f[1]), int.Parse(f[2]), int.Parse(f[3]));
            var g = new Generator(1);
            _a = Tensor.Randn(new Shape(_m * _k), g).ToArray<float>();
            _b = Tensor.Randn(new Shape(_k * _n), g).ToArray<float>();
            _c = new float[_m * _n];
        }

        public unsafe void Run()
        {
            // A is m×k: row-major for fwd and dx, stored k×m (read transposed) for dw. B is k×n: stored
            // n×k (read transposed) for fwd, row-major otherwise.
            var (aRow, aCol) = _kind == "dw" ? (1, _m) : (_k, 1);
            var (bRow, bCol) = _kind == "fwd" ? (1, _k) : (_n, 1);
            fixed (float* a = _a) fixed (float* b = _b) fixed (float* c = _c)
                Gemm.Sgemm(_m, _n, _k, a, aRow, aCol, b, bRow, bCol, c, _n);
        }
    }

    /// <summary>
    /// `gemm-shapes [THREADS]`: every product timed in 5 rounds of 100 ms after 400 ms of warm-up (the
    /// tiered JIT recompiles the kernels well after their first calls), rounds interleaved across the
    /// products; prints the best and the median round in µs a product. On a shared VM compare two
    /// builds by alternating whole processes and taking each one's best.
    /// </summary>
    public static int Loop(int threads)
    {
        int saved = Parallelism.MaxThreads;
        Parallelism.MaxThreads = threads;
        try
        {
            var products = All.Select(s => new Product(s)).ToArray();
            var rounds = All.Select(_ => new List<double>()).ToArray();
            for (int round = 0; round < 6; round++)
                for (int i = 0; i < products.Length; i++)
                {
                    var sw = Stopwatch.StartNew();
                    int reps = 0;
                    while (sw.ElapsedMilliseconds < (round == 0 ? 400 : 100)) { products[i].Run(); reps++; }
                    if (round > 0) rounds[i].Add(sw.Elapsed.TotalMilliseconds * 1e3 / reps);
                }
            Console.WriteLine($"gemm-shapes, {threads} thread(s): best and median of 5 rounds, µs a product");
            for (int i = 0; i < products.Length; i++)
            {
                var r = rounds[i].Order().ToArray();
                Console.WriteLine($"{All[i],-18} {r[0],10:F2} {r[r.Length / 2],10:F2}");
            }
            Console.WriteLine($"{"sum",-18} {rounds.Sum(r => r.Min()),10:F2}");
            return 0;
        }
        finally { Parallelism.MaxThreads = saved; }
    }
}
