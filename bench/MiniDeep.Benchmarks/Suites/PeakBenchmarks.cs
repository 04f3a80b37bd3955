using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Running;

namespace MiniDeep.Benchmarks.Suites;

/// <summary>The machine's FMA peak: 12 independent Vector512 FMA chains per thread, on one core and on all.</summary>
[Config(typeof(KernelConfig))]
public class PeakBenchmarks : IFlopCount
{
    private const long Iterations = 2_000_000;

    [Params(1, 2)]
    public int Threads;

    public double Flops(BenchmarkCase b) =>
        2.0 * (System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated ? 16 : 8) * Workloads.PeakChains * Iterations * (int)b.Parameters["Threads"];

    [Benchmark(Description = "FMA chains")]
    public double Fma() => Workloads.PeakFma(Threads, Iterations);
}
