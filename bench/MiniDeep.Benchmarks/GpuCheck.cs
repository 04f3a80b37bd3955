using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using MiniDeep.Gpu;
using MiniDeep.Nn;
using MiniDeep.Optim;

namespace MiniDeep.Benchmarks;

/// <summary>
/// `gpu-check [--device cuda|ilgpu-cpu] [--json FILE]`: the device check of a GPU machine in one run.
/// It runs conformance cases against the reference backend, compiles every kernel to PTX for sm_90,
/// times GEMM (naive, tiled 64×64 and 128×128), a convolution and the MLP training step at batch 1024 (with the CPU
/// backend's step for the ratio), and prints one JSON object.
/// </summary>
public static class GpuCheck
{
    public static int Run(string? deviceName, string? jsonPath)
    {
        deviceName ??= GpuDevices.Available().Any(d => d.StartsWith(GpuDevices.CudaKind)) ? GpuDevices.CudaKind : GpuDevices.CpuAcceleratorKind;
        bool onCuda = deviceName.StartsWith(GpuDevices.CudaKind);
        int mlpBatch = onCuda ? 1024 : 64;
        // The CPU backend's step first: once ILGPU's CPU accelerator exists, its worker threads share
        // the cores (measured here: 12.8 ms against 4.3 ms for the same step at batch 64).
        double cpuStep = MlpStep(Device.Cpu, mlpBatch, null);
        var device = GpuDevices.Get(deviceName);
        var backend = GpuDevices.Backend(device);
        bool cuda = device.Kind == GpuDevices.CudaKind;
        var result = new JsonObject
        {
            ["device"] = device.ToString(),
            ["accelerator"] = backend.Accelerator.Name,
            ["date"] = DateTime.UtcNow.ToString("yyyy-MM-dd"),
        };
        Console.Error.WriteLine($"gpu-check on {device} ({backend.Accelerator.Name}); devices here: {string.Join("; ", GpuDevices.Available())}");

        var (passed, failures) = Conformance(device);
        result["conformance_cases"] = passed + failures.Count;
        result["conformance_passed"] = failures.Count == 0;
        if (failures.Count > 0) result["conformance_failures"] = new JsonArray(failures.Select(f => (JsonNode)f).ToArray());
        Console.Error.WriteLine($"conformance: {passed} of {passed + failures.Count} cases agree with the reference backend");

        var accuracy = Accuracy(device);
        result["accuracy_max_ulps"] = accuracy;
        Console.Error.WriteLine($"accuracy against the reference backend, largest error in ulps of each dtype: {accuracy.ToJsonString()}");

        var clock = Stopwatch.StartNew();
        result["ptx_sm90_kernels"] = KernelCatalog.CompileAll(GpuDevices.Compiler);
        result["ptx_seconds"] = Math.Round(clock.Elapsed.TotalSeconds, 1);

        // GEMM: naive (one thread per output) against tiled, GFLOP/s.
        int[] sizes = cuda ? [256, 512, 1024, 2048, 4096] : [64, 128];
        var gemm = new JsonObject();
        foreach (int n in sizes)
        {
            var g = new Generator((ulong)n);
            var a = Tensor.Randn(new Shape(n, n), g, device: device);
            var b = Tensor.Randn(new Shape(n, n), g, device: device);
            var row = new JsonObject();
            foreach (var (name, grouped, tile) in new[] { ("naive", false, (int?)null), ("tiled", true, 64), ("tiled128", true, 128) })
            {
                if (!cuda && grouped) continue;   // the CPU accelerator's barrier groups take minutes at these sizes
                backend.GroupKernels = grouped;
                backend.GemmTile = tile;
                double s = Time(() => Tensor.MatMul(a, b), backend, cuda ? 0.5 : 0.2);
                row[name] = Math.Round(2.0 * n * n * n / s / 1e9, 1);
            }
            backend.GroupKernels = null;
            backend.GemmTile = null;
            gemm[n.ToString()] = row;
            Console.Error.WriteLine($"sgemm n={n}: {row.ToJsonString()} GFLOP/s");
        }
        result["sgemm_gflops"] = gemm;

        // A convolution of the CNN workload: 64 images 32×28×28 → 64 channels, 3×3, padding 1.
        {
            var g = new Generator(5);
            int batch = cuda ? 64 : 4;
            var x = Tensor.Randn(new Shape(batch, 32, 28, 28), g, device: device);
            var w = Tensor.Randn(new Shape(64, 32, 3, 3), g, device: device);
            double s = Time(() => Tensor.Conv2d(x, w, padding: (1, 1)), backend, 0.3);
            result["conv_ms"] = Math.Round(s * 1e3, 3);
            result["conv_shape"] = $"{batch}x32x28x28 * 64x32x3x3";
            result["conv_gflops"] = Math.Round(2.0 * batch * 64 * 28 * 28 * 32 * 9 / s / 1e9, 1);
        }

        // The MLP step of the CPU-kernel issue at batch 1024, on the device and on the CPU backend.
        long launchesBefore = backend.KernelsLaunched;
        double gpuStep = MlpStep(device, mlpBatch, backend);
        result["mlp_batch"] = mlpBatch;
        result["mlp_step_ms"] = Math.Round(gpuStep * 1e3, 3);
        result["mlp_step_ms_mse_loss"] = Math.Round(MlpStep(device, mlpBatch, backend, meanSquared: true) * 1e3, 3);
        result["launches_for_both_mlp_timings"] = backend.KernelsLaunched - launchesBefore;
        {
            // The loss alone, at the MLP step's shape: what the two losses cost by themselves.
            var g = new Generator(2);
            var logits = Tensor.Randn(new Shape(mlpBatch, 10), g, device: device);
            var targets = Tensor.Randint(0, 10, new Shape(mlpBatch), g, device: device);
            var oneHot = Tensor.OneHot(Tensor.Randint(0, 10, new Shape(mlpBatch), g), 10).To(device);
            var leaf = logits.Detach().RequiresGrad_();
            result["cross_entropy_forward_ms"] = Math.Round(Time(() => Losses.CrossEntropy(logits, targets, Reduction.None), backend, 0.3) * 1e3, 4);
            result["cross_entropy_forward_backward_ms"] = Math.Round(Time(() => { leaf.Grad = null; Losses.CrossEntropy(leaf, targets).Backward(); return leaf.Grad!; }, backend, 0.3) * 1e3, 4);
            result["mse_forward_backward_ms"] = Math.Round(Time(() => { leaf.Grad = null; Losses.Mse(leaf, oneHot).Backward(); return leaf.Grad!; }, backend, 0.3) * 1e3, 4);
            result["exp_1024x10_ms"] = Math.Round(Time(() => logits.Exp(), backend, 0.3) * 1e3, 4);
        }
        result["mlp_step_ms_cpu_backend"] = Math.Round(cpuStep * 1e3, 3);
        result["mlp_speedup_over_cpu"] = Math.Round(cpuStep / gpuStep, 2);
        result["kernels_launched"] = backend.KernelsLaunched;
        result["kernels_loaded"] = backend.KernelsLoaded;
        result["live_buffers"] = backend.Allocator.LiveBuffers;

        var text = result.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
        Console.WriteLine(text);
        if (jsonPath is not null) MiniDeep.IO.AtomicFile.WriteAllText(jsonPath, text);
        return failures.Count == 0 ? 0 : 1;
    }

    // Median seconds of f after a warm-up, with the device synchronized around each timing.
    private static double Time(Func<Tensor> f, GpuBackend? backend, double minSeconds)
    {
        f(); backend?.Synchronize();
        var samples = new List<double>();
        var total = Stopwatch.StartNew();
        while (samples.Count < 3 || (total.Elapsed.TotalSeconds < minSeconds && samples.Count < 50))
        {
            var sw = Stopwatch.StartNew();
            f();
            backend?.Synchronize();
            samples.Add(sw.Elapsed.TotalSeconds);
        }
        samples.Sort();
        return samples[samples.Count / 2];
    }

    // With meanSquared, the loss is the squared error against one-hot targets instead of the
    // cross-entropy, whose kernels read a bad-target flag back (a device synchronization each):
    // the difference between the two timings is what those synchronizations cost.
    private static double MlpStep(Device device, int batch, GpuBackend? backend, bool meanSquared = false)
    {
        var g = new Generator(1);
        var model = new Sequential(new Linear(784, 512, generator: g), Activations.ReLU(), new Linear(512, 256, generator: g), Activations.ReLU(), new Linear(256, 10, generator: g)).To(device);
        var x = Tensor.Randn(new Shape(batch, 784), g, device: device);
        var y = Tensor.Randint(0, 10, new Shape(batch), g, device: device);
        var oneHot = Tensor.OneHot(Tensor.Randint(0, 10, new Shape(batch), g), 10).To(device);
        var opt = new Sgd(model.Parameters(), 0.01, momentum: 0.9);
        return Time(() =>
        {
            opt.ZeroGrad();
            var logits = model.Forward(x);
            var loss = meanSquared ? Losses.Mse(logits, oneHot) : Losses.CrossEntropy(logits, y);
            loss.Backward();
            opt.Step();
            return loss;
        }, backend, 1.0);
    }

    // The transcendental functions over wide ranges of arguments, in float32 and float64: the largest
    // distance, in units in the last place of the dtype, between the device's result and the reference
    // backend's (computed in float64 with the same op structs, on the host).
    private static JsonObject Accuracy(Device device)
    {
        const int n = 1 << 20;
        var g = new Generator(99);
        Tensor U(double lo, double hi) => Tensor.Rand(new Shape(n), g, dtype: DType.Float64) * (hi - lo) + lo;
        var cases = new (string Name, Tensor[] Inputs, Func<Tensor[], Tensor> F)[]
        {
            ("exp on [-87, 88]", [U(-87, 88)], t => t[0].Exp()),
            ("log on [1e-30, 1e30]", [(U(-30, 30) * Math.Log(10)).Exp()], t => t[0].Log()),
            ("log near 1", [U(0.5, 2)], t => t[0].Log()),
            ("sin on [-100, 100]", [U(-100, 100)], t => t[0].Sin()),
            ("cos on [-100, 100]", [U(-100, 100)], t => t[0].Cos()),
            ("sigmoid on [-30, 30]", [U(-30, 30)], t => t[0].Sigmoid()),
            ("tanh on [-10, 10]", [U(-10, 10)], t => t[0].Tanh()),
            ("tanh on [-0.01, 0.01]", [U(-0.01, 0.01)], t => t[0].Tanh()),
            ("pow, base in (0, 10], exponent in [-8, 8]", [U(1e-6, 10), U(-8, 8)], t => Tensor.Pow(t[0], t[1])),
        };
        var result = new JsonObject();
        foreach (var dtype in new[] { DType.Float32, DType.Float64 })
        {
            var table = new JsonObject();
            foreach (var (name, inputs, f) in cases)
            {
                var typed = inputs.Select(t => t.To(dtype)).ToArray();
                var expected = f(typed.Select(t => t.To(Device.Reference)).ToArray()).ToDoubleArray();
                var actual = f(typed.Select(t => t.To(device)).ToArray()).To(Device.Reference).ToDoubleArray();
                var x0 = typed[0].To(Device.Reference).ToDoubleArray();
                long worst = 0;
                double worstAt = double.NaN;
                for (int i = 0; i < n; i++)
                {
                    if (double.IsNaN(expected[i]) && double.IsNaN(actual[i])) continue;
                    long u = dtype == DType.Float32 ? Ulps((float)expected[i], (float)actual[i]) : Ulps(expected[i], actual[i]);
                    if (u > worst) { worst = u; worstAt = x0[i]; }
                }
                table[name] = worst == 0 ? 0 : $"{worst} (x = {worstAt:R})";
            }
            result[dtype == DType.Float32 ? "float32" : "float64"] = table;
        }
        return result;
    }

    // Distance in representable numbers (ulps) between a and b, across zero too.
    private static long Ulps(float a, float b)
    {
        if (float.IsNaN(a) || float.IsNaN(b)) return long.MaxValue;
        static long Ordered(float x) { int i = BitConverter.SingleToInt32Bits(x); return i < 0 ? int.MinValue - (long)i : i; }
        return Math.Abs(Ordered(a) - Ordered(b));
    }

    private static long Ulps(double a, double b)
    {
        if (double.IsNaN(a) || double.IsNaN(b)) return long.MaxValue;
        static long Ordered(double x) { long i = BitConverter.DoubleToInt64Bits(x); return i < 0 ? long.MinValue - i : i; }
        long d = Ordered(a) - Ordered(b);
        return d == long.MinValue ? long.MaxValue : Math.Abs(d);
    }

    // A compact conformance run: each case computed on the reference backend and on the device.
    private static (int Passed, List<string> Failures) Conformance(Device device)
    {
        var failures = new List<string>();
        int passed = 0;
        void Case(string name, Func<Device, Tensor> f, double tol)
        {
            try
            {
                var expected = f(Device.Reference).ToDoubleArray();
                var actual = f(device).To(Device.Reference).ToDoubleArray();
                for (int i = 0; i < expected.Length; i++)
                    if (!(Math.Abs(expected[i] - actual[i]) <= tol * (1 + Math.Abs(expected[i])) || (double.IsNaN(expected[i]) && double.IsNaN(actual[i]))))
                        throw new Exception($"element {i}: reference {expected[i]:R}, device {actual[i]:R}");
                passed++;
            }
            catch (Exception e) { failures.Add($"{name}: {e.Message}"); }
        }
        Tensor R(Device d, ulong seed, params int[] shape) => Tensor.Randn(new Shape(shape), new Generator(seed)).To(d);
        Case("exp of a transposed view", d => R(d, 1, 37, 29).mT.Exp(), 1e-6);
        Case("broadcast add and multiply", d => R(d, 2, 17, 1, 9) * R(d, 3, 5, 1) + 1.5, 1e-6);
        Case("sigmoid, tanh, relu", d => R(d, 4, 300).Sigmoid() + R(d, 5, 300).Tanh() - R(d, 6, 300).Relu(), 1e-6);
        Case("sum over an axis", d => R(d, 7, 64, 130).Sum(1), 1e-5);
        Case("max over an axis", d => R(d, 8, 64, 130).Max(0), 0);
        Case("long sum", d => R(d, 9, 50_000).Sum().Reshape(1), 1e-5);
        Case("argmax", d => R(d, 10, 40, 11).ArgMax(1).To(DType.Float32), 0);
        Case("matmul 70×130·130×50", d => Tensor.MatMul(R(d, 11, 70, 130), R(d, 12, 130, 50)), 1e-4);
        Case("batched matmul, transposed operand", d => Tensor.MatMul(R(d, 13, 3, 33, 20), R(d, 14, 45, 20).mT), 1e-4);
        Case("linear + relu", d => Tensor.LinearRelu(R(d, 15, 64, 100), R(d, 16, 48, 100), R(d, 17, 48)), 1e-4);
        Case("conv2d", d => Tensor.Conv2d(R(d, 18, 2, 3, 12, 11), R(d, 19, 5, 3, 3, 3), R(d, 20, 5), padding: (1, 1)), 1e-4);
        Case("conv2d input gradient", d => { var x = R(d, 21, 2, 3, 9, 9).RequiresGrad_(); Tensor.Conv2d(x, R(d, 22, 4, 3, 3, 3), stride: (2, 2)).Square().Sum().Backward(); return x.Grad!; }, 1e-4);
        Case("conv2d weight gradient", d => { var w = R(d, 23, 4, 3, 3, 3).RequiresGrad_(); Tensor.Conv2d(R(d, 24, 2, 3, 9, 9), w, padding: (1, 1)).Square().Sum().Backward(); return w.Grad!; }, 1e-4);
        Case("max pool and its gradient", d => { var x = R(d, 25, 2, 3, 8, 8).RequiresGrad_(); Tensor.MaxPool2d(x, (2, 2)).Sum().Backward(); return x.Grad!; }, 0);
        Case("cross-entropy", d => Losses.CrossEntropy(R(d, 26, 32, 10) * 5, Tensor.Randint(0, 10, new Shape(32), new Generator(27)).To(d), Reduction.None), 1e-5);
        Case("uniform random numbers", d => Tensor.Rand(new Shape(1000), new Generator(28), device: d), 0);
        Case("adam steps", d =>
        {
            var w = R(d, 29, 40, 30).RequiresGrad_();
            var opt = new Adam([w], 1e-2);
            for (int s = 0; s < 3; s++) { opt.ZeroGrad(); (w * w * (s + 1)).Sum().Backward(); opt.Step(); }
            return w.Detach();
        }, 1e-5);
        return (passed, failures);
    }
}
