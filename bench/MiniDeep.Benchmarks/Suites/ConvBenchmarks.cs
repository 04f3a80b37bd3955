using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Running;

namespace MiniDeep.Benchmarks.Suites;

/// <summary>
/// The two convolutions of the benchmark CNN at batch 64 (28×28×1 → 32 channels; 14×14×32 → 64),
/// forward and forward + both backward passes, against the same convolution written as
/// Unfold + MatMul (the composite the fused kernels replaced).
/// </summary>
[Config(typeof(KernelConfig))]
public class ConvBenchmarks : IFlopCount
{
    [Params("conv1 1→32 28×28", "conv2 32→64 14×14")]
    public string Layer = "";

    private Tensor _x = null!, _w = null!, _b = null!;

    [GlobalSetup]
    public void Setup()
    {
        var g = new Generator(5);
        (int c, int o, int hw) = Layer.StartsWith("conv1") ? (1, 32, 28) : (32, 64, 14);
        _x = Tensor.Randn(new Shape(64, c, hw, hw), g).RequiresGrad_();
        _w = (Tensor.Randn(new Shape(o, c, 3, 3), g) * 0.1).RequiresGrad_();
        _b = Tensor.Zeros(o).RequiresGrad_();
    }

    public double Flops(BenchmarkCase b)
    {
        bool first = ((string)b.Parameters["Layer"]).StartsWith("conv1");
        (int c, int o, int hw) = first ? (1, 32, 28) : (32, 64, 14);
        double forward = 2.0 * 64 * o * hw * hw * c * 9;
        return b.Descriptor.WorkloadMethod.Name.Contains("Backward") ? 3 * forward : forward;
    }

    [Benchmark(Description = "forward: fused kernel")]
    public Tensor Forward() { using (Autograd.NoGrad()) return Tensor.Conv2d(_x, _w, _b, padding: (1, 1)); }

    [Benchmark(Description = "forward: unfold + matmul", Baseline = true)]
    public Tensor ForwardComposite() { using (Autograd.NoGrad()) return Composite(); }

    [Benchmark(Description = "forward + backward: fused kernels")]
    public void ForwardBackward() { _x.Grad = _w.Grad = _b.Grad = null; Tensor.Conv2d(_x, _w, _b, padding: (1, 1)).Sum().Backward(); }

    [Benchmark(Description = "forward + backward: unfold + matmul")]
    public void ForwardBackwardComposite() { _x.Grad = _w.Grad = _b.Grad = null; Composite().Sum().Backward(); }

    private Tensor Composite()
    {
        int n = _x.Size(0), o = _w.Size(0), hw = _x.Size(2);
        var geo = new WindowGeometry(_x.Size(1), hw, hw, 3, 3, 1, 1, 1, 1, 1, 1);
        var cols = Tensor.Unfold(_x, geo);                                                 // (N, C·9, L)
        var y = Tensor.MatMul(_w.Reshape(o, -1), cols.Permute(1, 0, 2).Reshape(cols.Size(1), -1)); // (O, N·L)
        return y.Reshape(o, n, hw, hw).Permute(1, 0, 2, 3) + _b.Reshape(1, o, 1, 1);
    }
}
