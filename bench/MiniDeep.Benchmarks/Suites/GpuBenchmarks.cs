using BenchmarkDotNet.Attributes;
using MiniDeep.Gpu;

namespace MiniDeep.Benchmarks.Suites;

/// <summary>
/// The GPU GEMM progression on CUDA: the naive kernel (one thread per output) against the tiled one
/// (64×64 tiles through shared memory, 4×4 per thread), and the CPU backend's GEMM as the baseline.
/// Without a CUDA device the suite does nothing: <see cref="Available"/> says why, and Program prints
/// it before BenchmarkDotNet starts (the CPU accelerator's timings measure its launch cost, not a GPU;
/// `gpu-check --device ilgpu-cpu` reports them).
/// </summary>
[Config(typeof(KernelConfig))]
public class GpuBenchmarks
{
    [Params(1024, 4096)]
    public int N;

    private Tensor _a = null!, _b = null!, _ca = null!, _cb = null!;
    private GpuBackend? _backend;

    /// <summary>Null when a CUDA device is here, else the reason the suite is skipped.</summary>
    public static string? Available() =>
        GpuDevices.Available().Any(d => d.StartsWith(GpuDevices.CudaKind)) ? null
            : $"GPU benchmarks skipped: no CUDA device here (found: {string.Join("; ", GpuDevices.Available())})";

    [GlobalSetup]
    public void Setup()
    {
        if (Available() is { } reason) throw new InvalidOperationException(reason);
        var device = GpuDevices.Cuda();
        _backend = GpuDevices.Backend(device);
        var g = new Generator(3);
        _ca = Tensor.Randn(new Shape(N, N), g);
        _cb = Tensor.Randn(new Shape(N, N), g);
        _a = _ca.To(device);
        _b = _cb.To(device);
    }

    private Tensor OnDevice(bool tiled)
    {
        _backend!.GroupKernels = tiled;
        var c = Tensor.MatMul(_a, _b);
        _backend.Synchronize();
        return c;
    }

    [Benchmark(Description = "sgemm: CPU backend", Baseline = true)]
    public Tensor Cpu() => Tensor.MatMul(_ca, _cb);

    [Benchmark(Description = "sgemm: GPU naive")]
    public Tensor Naive() => OnDevice(false);

    [Benchmark(Description = "sgemm: GPU tiled")]
    public Tensor Tiled() => OnDevice(true);
}
