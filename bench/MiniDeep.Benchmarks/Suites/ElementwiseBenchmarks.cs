using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Running;

namespace MiniDeep.Benchmarks.Suites;

/// <summary>
/// y = a + b over n floats and Σ x: a scalar loop, a hand-written Vector256 loop, TensorPrimitives,
/// and MiniDeep's tensor op (which adds the op's bookkeeping, pooling and the split over cores).
/// Memory-bound beyond the caches, so the GFLOP/s columns are low by nature.
/// </summary>
[Config(typeof(KernelConfig))]
public class ElementwiseBenchmarks : IFlopCount
{
    [Params(64, 65_536, 4_194_304)]
    public int N;

    private float[] _a = [], _b = [], _y = [];
    private Tensor _ta = null!, _tb = null!;

    [GlobalSetup]
    public void Setup()
    {
        var g = new Generator(4);
        _ta = Tensor.Randn(new Shape(N), g);
        _tb = Tensor.Randn(new Shape(N), g);
        _a = _ta.ToArray<float>(); _b = _tb.ToArray<float>(); _y = new float[N];
    }

    public double Flops(BenchmarkCase b) => (int)b.Parameters["N"];

    [Benchmark(Description = "add: scalar loop", Baseline = true)]
    public void AddScalar() { for (int i = 0; i < _y.Length; i++) _y[i] = _a[i] + _b[i]; }

    [Benchmark(Description = "add: Vector256 loop")]
    public void AddVector256()
    {
        int i = 0, n = _y.Length;
        ref float a = ref _a[0], b = ref _b[0], y = ref _y[0];
        for (; i <= n - 8; i += 8)
            Vector256.StoreUnsafe(Vector256.LoadUnsafe(ref a, (nuint)i) + Vector256.LoadUnsafe(ref b, (nuint)i), ref y, (nuint)i);
        for (; i < n; i++) _y[i] = _a[i] + _b[i];
    }

    [Benchmark(Description = "add: TensorPrimitives")]
    public void AddTensorPrimitives() => TensorPrimitives.Add(_a, _b, _y);

    [Benchmark(Description = "add: MiniDeep tensor")]
    public Tensor AddTensor() => _ta + _tb;

    [Benchmark(Description = "sum: scalar loop")]
    public float SumScalar() { float s = 0; foreach (var v in _a) s += v; return s; }

    [Benchmark(Description = "sum: TensorPrimitives")]
    public float SumTensorPrimitives() => TensorPrimitives.Sum(_a);

    [Benchmark(Description = "sum: MiniDeep tensor")]
    public Tensor SumTensor() => _ta.Sum();
}
