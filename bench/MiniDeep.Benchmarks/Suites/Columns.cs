using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace MiniDeep.Benchmarks.Suites;

/// <summary>Implemented by benchmark classes whose cases do a known number of floating-point operations.</summary>
public interface IFlopCount
{
    /// <summary>Floating-point operations of one invocation of the benchmark with these parameters.</summary>
    double Flops(BenchmarkCase benchmark);
}

/// <summary>GFLOP/s from the mean time, and that rate as a percentage of the FMA peak of all cores,
/// measured once in the host process (12 Vector512 FMA chains per core, as the quick mode does).</summary>
public sealed class GflopsColumn(bool percentOfPeak) : IColumn
{
    private static readonly Lazy<double> Peak = new(() => Quick.MeasurePeak(Parallelism.MaxThreads));

    public string Id => percentOfPeak ? "PercentOfPeak" : "GFLOPs";
    public string ColumnName => percentOfPeak ? "% of peak" : "GFLOP/s";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => percentOfPeak ? 1 : 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => percentOfPeak
        ? "GFLOP/s as a percentage of the FMA peak of all cores, measured in the host process"
        : "billions of floating-point operations per second, from the mean time";
    public bool IsAvailable(Summary summary) => true;
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, SummaryStyle.Default);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var report = summary[benchmarkCase];
        if (report?.ResultStatistics is not { } stats) return "-";
        if (Activator.CreateInstance(benchmarkCase.Descriptor.Type) is not IFlopCount counter) return "-";
        double flops = counter.Flops(benchmarkCase);
        if (flops <= 0) return "-";
        double gflops = flops / (stats.Mean * 1e-9) / 1e9;
        return percentOfPeak ? $"{100 * gflops / Peak.Value:F1}" : $"{gflops:F1}";
    }
}
