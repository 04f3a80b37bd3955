using BenchmarkDotNet.Attributes;

namespace MiniDeep.Benchmarks.Suites;

/// <summary>Whole training steps (forward, cross-entropy, backward, SGD with momentum) of the two
/// models the libtorch figures describe, and the per-op overhead probes. MemoryDiagnoser's
/// "Allocated" column is the managed allocation per step.</summary>
[Config(typeof(KernelConfig))]
public class StepBenchmarks
{
    private Workloads.Step _mlp64 = null!, _mlp256 = null!, _cnn64 = null!;
    private Workloads.CapturedStep _captured64 = null!, _captured256 = null!, _capturedCnn64 = null!;
    private Workloads.Tiny _tiny = null!;

    [GlobalSetup]
    public void Setup()
    {
        _mlp64 = Workloads.MlpStep(64);
        _mlp256 = Workloads.MlpStep(256);
        _cnn64 = Workloads.CnnStep(64);
        _captured64 = Workloads.CapturedMlpStep(64);
        _captured256 = Workloads.CapturedMlpStep(256);
        _capturedCnn64 = Workloads.CapturedCnnStep(64);
        _tiny = new Workloads.Tiny();
    }

    [Benchmark(Description = "MLP 784-512-256-10 step, batch 64")]
    public void Mlp64() => _mlp64.Run();

    [Benchmark(Description = "MLP 784-512-256-10 step, batch 256")]
    public void Mlp256() => _mlp256.Run();

    [Benchmark(Description = "MLP step, batch 64, captured and replayed")]
    public void Captured64() => _captured64.Run();

    [Benchmark(Description = "MLP step, batch 256, captured and replayed")]
    public void Captured256() => _captured256.Run();

    [Benchmark(Description = "CNN step, batch 64")]
    public void Cnn64() => _cnn64.Run();

    [Benchmark(Description = "CNN step, batch 64, captured and replayed")]
    public void CapturedCnn64() => _capturedCnn64.Run();

    [Benchmark(Description = "add of two 64-float tensors")]
    public Tensor TinyAdd() => _tiny.Add();

    [Benchmark(Description = "(w*w).Sum().Backward(), 64 floats")]
    public void TinyBackward() => _tiny.MulSumBackward();
}
