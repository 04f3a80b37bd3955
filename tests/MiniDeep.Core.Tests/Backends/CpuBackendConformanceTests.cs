namespace MiniDeep.Tests.BackendTests;

/// <summary>The SIMD CPU backend against the reference backend.</summary>
public class CpuBackendConformanceTests : BackendConformance
{
    protected override Device Device => Device.Cpu;
}
