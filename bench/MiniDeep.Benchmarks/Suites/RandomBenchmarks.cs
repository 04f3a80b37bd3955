using BenchmarkDotNet.Attributes;

namespace MiniDeep.Benchmarks.Suites;

/// <summary>
/// Random fills (Philox4x32-10, element i a pure function of seed, stream and i): the reference
/// backend's per-element loop against the CPU backend's (32 or 16 counters at once, split over cores),
/// which gives the same bits. Bernoulli draws are dropout masks.
/// </summary>
[Config(typeof(KernelConfig))]
public class RandomBenchmarks
{
    [Params(65_536, 1_048_576)]
    public int N;

    private readonly Generator _g = new(5);

    [Benchmark(Description = "uniform: reference backend", Baseline = true)]
    public Tensor UniformReference() => Tensor.Rand(new Shape(N), _g, device: Device.Reference);

    [Benchmark(Description = "uniform: CPU backend")]
    public Tensor UniformCpu() => Tensor.Rand(new Shape(N), _g);

    [Benchmark(Description = "bernoulli: reference backend")]
    public Tensor BernoulliReference() => Tensor.Bernoulli(new Shape(N), 0.5, _g, device: Device.Reference);

    [Benchmark(Description = "bernoulli: CPU backend")]
    public Tensor BernoulliCpu() => Tensor.Bernoulli(new Shape(N), 0.5, _g);
}
