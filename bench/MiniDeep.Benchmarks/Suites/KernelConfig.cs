using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;

namespace MiniDeep.Benchmarks.Suites;

/// <summary>Every suite: GFLOP/s and percent-of-peak columns, and allocations per operation.</summary>
public sealed class KernelConfig : ManualConfig
{
    public KernelConfig()
    {
        AddColumn(new GflopsColumn(percentOfPeak: false), new GflopsColumn(percentOfPeak: true));
        AddDiagnoser(MemoryDiagnoser.Default);
    }
}
