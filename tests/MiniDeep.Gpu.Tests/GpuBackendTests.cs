using ILGPU;
using ILGPU.Runtime;
using MiniDeep.Gpu;
using MiniDeep.Nn;
using MiniDeep.Optim;
using MiniDeep.Tests.BackendTests;
using Xunit;

namespace MiniDeep.Gpu.Tests;

/// <summary>The GPU kernels, run by ILGPU's CPU accelerator, against the reference backend: every check the CPU backend passes.</summary>
public class GpuConformanceTests : BackendConformance
{
    protected override Device Device => GpuDevices.CpuAccelerator();
}

[CollectionDefinition("gpu", DisableParallelization = true)]
public class GpuCollection;

[Collection("gpu")]
public class GpuBackendTests
{
    private static readonly Device Dev = GpuDevices.CpuAccelerator();
    private static GpuBackend Backend => GpuDevices.Backend(Dev);

    [Fact]
    public void Ops_RunAsKernelsOnTheDevice_NotOnTheCpuBackend()
    {
        long before = Backend.KernelsLaunched;
        var x = Tensor.FromArray([1f, 2f, 3f]).To(Dev);
        var y = (x * x).Exp().Sum();
        Assert.Equal(Dev, y.Device);
        Assert.IsType<GpuStorage>(y.Storage);
        Assert.Equal(MathF.Exp(1) + MathF.Exp(4) + MathF.Exp(9), y.Item(), 1e-3);
        Assert.True(Backend.KernelsLaunched >= before + 3, $"{Backend.KernelsLaunched - before} kernels launched for a product, an exp and a sum");
    }

    [Fact]
    public void AModelOnTheDevice_ExportsTheSameOnnxAsOnTheCpu()
    {
        Module Build() => new Sequential(new Conv2d(1, 4, 3, padding: 1, generator: new Generator(2)), Activations.ReLU(), new MaxPool2d(2),
            new BatchNorm2d(4), new Flatten(), new Linear(4 * 4 * 4, 3, generator: new Generator(3)));
        var onCpu = MiniDeep.IO.Onnx.ExportBytes(Build(), new Shape(2, 1, 8, 8));
        var onDevice = MiniDeep.IO.Onnx.ExportBytes(Build().To(Dev), new Shape(2, 1, 8, 8));
        Assert.Equal(onCpu, onDevice);
    }

    [Fact]
    public void MixingDevices_NamesBothDevices()
    {
        var a = Tensor.Ones(3);
        var b = Tensor.Ones(3).To(Dev);
        var e = Assert.Throws<InvalidOperationException>(() => a + b);
        Assert.Contains("'cpu'", e.Message);
        Assert.Contains("'ilgpu-cpu'", e.Message);
    }

    [Fact]
    public void AHostTensorHandedToTheDeviceBackend_NamesTheOpTheCallerCalled()
    {
        // Tensor.Gather checks devices first; a caller of the backend itself gets the same op name back.
        var host = Tensor.FromArray([1f, 2f, 3f]);
        var index = Tensor.FromArray([0, 2]).To(Dev);
        var e = Assert.Throws<InvalidOperationException>(() => Backend.Gather(host.AsView, 0, index.AsView, "index_select"));
        Assert.StartsWith("index_select: a tensor on cpu", e.Message);
    }

    [Fact]
    public void AskingForCuda_WithoutOne_ListsTheDevicesFound()
    {
        if (GpuDevices.Available().Any(d => d.StartsWith("cuda")))
        {
            Assert.Equal("cuda", GpuDevices.Cuda().Kind);
            return;
        }
        var e = Assert.Throws<DeviceNotFoundException>(() => GpuDevices.Get("cuda"));
        Assert.Contains("no CUDA GPU", e.Message);
        Assert.Contains("ilgpu-cpu", e.Message);
        Assert.Throws<DeviceNotFoundException>(() => GpuDevices.Get("tpu"));
    }

    // Not a valid kernel: it allocates a managed array, which no GPU can.
    private static void Broken(Index1D i, ArrayView<int> y) => y[i] = new int[i + 1].Length;

    [Fact]
    public void AKernelThatDoesNotCompile_LeavesTheDeviceUsable()
    {
        var x = Tensor.FromArray([1f, 4f, 9f]).To(Dev);
        using var err = (GpuStorage)Backend.Full(DType.Int32, 4, 0);
        var e = Assert.Throws<GpuKernelException>(() => Backend.Run(Broken, 4, err.I32));
        Assert.Contains("Broken", e.Message);
        // The device, its buffers and new kernels all still work.
        Assert.Equal([1f, 2f, 3f], x.Sqrt().ToArray<float>());
        Assert.Equal([2f, 5f, 10f], (x + 1).ToArray<float>());
    }

    [Fact]
    public void ABadIndexOrTarget_ThrowsItsOpsError_AtTheNextReadBack_OrAtTheOpWhenChecked()
    {
        var logits = Tensor.Randn(new Shape(4, 10), new Generator(3)).To(Dev);
        var bad = Tensor.FromArray([1, 12, 3, 0]).To(Dev);
        var good = Tensor.FromArray([1, 2, 3, 0]).To(Dev);
        var x = Tensor.FromArray([1f, 2f, 3f]).To(Dev);
        Backend.Synchronize();   // earlier tests' checks (all passing) are read here
        try { DeferredChecks(logits, bad, good, x); }
        finally
        {
            Backend.CheckEachLaunch = false;
            try { Backend.Synchronize(); } catch (Exception) { }   // a failed assertion above must not leave an error for the next test
        }
    }

    private static void DeferredChecks(Tensor logits, Tensor bad, Tensor good, Tensor x)
    {
        // Deferred (the default): the op returns, the check waits, the next read back throws it.
        Losses.CrossEntropy(logits, bad, Reduction.None);
        Assert.Equal(1, Backend.PendingChecks);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => (x * 2).ToArray<float>());
        Assert.Contains("cross_entropy: target 12 at row 1 is outside [0, 10)", e.Message);
        Assert.Equal(0, Backend.PendingChecks);
        Assert.Equal([2f, 4f, 6f], (x * 2).ToArray<float>());   // reported once; the device still works

        // The first failed check is the one reported, and Synchronize reports it too.
        x.Gather(0, Tensor.FromArray([0, 5]).To(Dev));
        Losses.CrossEntropy(logits, bad);
        var g = Assert.Throws<IndexOutOfRangeException>(() => Backend.Synchronize());
        Assert.Contains("gather: index 5 is out of range for axis 0 of size 3", g.Message);

        // index_select and embedding are gathers underneath; their errors name the op the caller called.
        x.IndexSelect(0, Tensor.FromArray([4]).To(Dev));
        Assert.Contains("index_select: index 4 is out of range for axis 0 of size 3", Assert.Throws<IndexOutOfRangeException>(() => Backend.Synchronize()).Message);
        Tensor.Embedding(Tensor.FromArray([0, 6]).To(Dev), x.Reshape(3, 1));
        Assert.Contains("embedding: index 6 is out of range for axis 0 of size 3", Assert.Throws<IndexOutOfRangeException>(() => Backend.Synchronize()).Message);

        // A scope that ends before the read back frees the op's tensors, not its pending check.
        using (new GpuScope()) Losses.CrossEntropy(logits, bad);
        Assert.Throws<ArgumentOutOfRangeException>(() => (x * 2).ToArray<float>());

        // Checked at each launch: the op itself throws.
        Backend.CheckEachLaunch = true;
        Assert.Throws<ArgumentOutOfRangeException>(() => Losses.CrossEntropy(logits, bad));
        Backend.CheckEachLaunch = false;

        // A check costs its op no launch of its own (the slots live in one zeroed buffer of the backend).
        long launches = Backend.KernelsLaunched;
        Losses.CrossEntropy(logits, good, Reduction.None);
        Assert.Equal(1, Backend.KernelsLaunched - launches);

        // Good targets never throw, and a loop that never reads back keeps a bounded number of checks.
        for (int i = 0; i < 300; i++) Losses.CrossEntropy(logits, good);
        Assert.InRange(Backend.PendingChecks, 1, 256);
        Assert.Equal(Losses.CrossEntropy(logits.To(Device.Cpu), good.To(Device.Cpu)).Item(), Losses.CrossEntropy(logits, good).Item(), 1e-5);
        Assert.Equal(0, Backend.PendingChecks);
    }

    [Fact]
    public void RandomNumbers_AreTheCpuGeneratorsNumbers()
    {
        var shape = new Shape(1000);
        Assert.Equal(Tensor.Rand(shape, new Generator(7)).ToArray<float>(), Tensor.Rand(shape, new Generator(7), device: Dev).ToArray<float>());
        Assert.Equal(Tensor.Randint(-3, 50, shape, new Generator(8)).ToArray<int>(), Tensor.Randint(-3, 50, shape, new Generator(8), device: Dev).ToArray<int>());
        var cpu = Tensor.Randn(shape, new Generator(9), dtype: DType.Float64).ToArray<double>();
        var gpu = Tensor.Randn(shape, new Generator(9), dtype: DType.Float64, device: Dev).ToArray<double>();
        for (int i = 0; i < cpu.Length; i++) Assert.Equal(cpu[i], gpu[i], 1e-12);
    }

    private static Sequential Mlp(Generator g, bool hidden) => hidden
        ? new(new Linear(12, 16, generator: g), Activations.ReLU(), new Linear(16, 3, generator: g))
        : new(new Linear(12, 3, generator: g));

    private static float[] TrainMlp(Device device, int steps, bool hidden = true)
    {
        var g = new Generator(3);
        var model = Mlp(g, hidden);
        model.To(device);
        var x = Tensor.Randn(new Shape(32, 12), g).To(device);
        var y = Tensor.Randint(0, 3, new Shape(32), g).To(device);
        return Train(model, new Sgd(model.Parameters(), 0.05, momentum: 0.9), x, y, steps);
    }

    // Full-batch steps of cross-entropy training; the loss of each step.
    private static float[] Train(Module model, Optimizer opt, Tensor x, Tensor y, int steps)
    {
        var losses = new float[steps];
        for (int s = 0; s < steps; s++)
        {
            opt.ZeroGrad();
            var loss = Losses.CrossEntropy(model.Forward(x), y);
            loss.Backward();
            opt.Step();
            losses[s] = (float)loss.Item();
        }
        return losses;
    }

    [Fact]
    public void UnchangedModelCode_TrainsTheSameOnTheDevice()
    {
        var cpu = TrainMlp(Device.Cpu, 30);
        var gpu = TrainMlp(Dev, 30);
        for (int s = 0; s < cpu.Length; s++) Assert.Equal(cpu[s], gpu[s], 1e-4);
        Assert.True(gpu[^1] < 0.5 * gpu[0], $"loss {gpu[0]} → {gpu[^1]}");
    }

    [Fact]
    public void TheTrainingLoop_RunsOnADatasetHeldOnTheDevice()
    {
        // What `train --device` does: the data and the model move, the loader and the loop are unchanged.
        var g = new Generator(6);
        var x = Tensor.Randn(new Shape(96, 12), g);
        var y = (x.Narrow(1, 0, 1).Reshape(96) > 0).To(DType.Int32);
        var data = new MiniDeep.Data.TensorDataset(x.To(Dev), y.To(Dev));
        var model = Mlp(g, hidden: true).To(Dev);
        var opt = new Adam(model.Parameters(), 1e-2);
        var stats = Trainer.Fit(model, opt, new MiniDeep.Data.DataLoader(data, 16, shuffle: true, seed: 1), 4, data);
        var (loss, accuracy) = Trainer.Evaluate(model, data);
        Assert.Equal(4, stats.Count);
        Assert.True(accuracy > 0.8, $"accuracy {accuracy} on a linearly separable task after 4 epochs");
        Assert.True(double.IsFinite(loss));
        Assert.All(model.Parameters(), p => Assert.Equal(Dev, p.Device));
    }

    [Fact]
    public void ACnn_TrainsTheSameOnTheDevice()
    {
        float[] TrainOn(Device device)
        {
            var g = new Generator(4);
            var model = new Sequential(new Conv2d(1, 4, 3, padding: 1, generator: g), Activations.ReLU(), new MaxPool2d(2),
                new Flatten(), new Linear(4 * 4 * 4, 3, generator: g));
            model.To(device);
            var x = Tensor.Randn(new Shape(6, 1, 8, 8), g).To(device);
            var y = Tensor.Randint(0, 3, new Shape(6), g).To(device);
            return Train(model, new Adam(model.Parameters(), 1e-2), x, y, 8);
        }
        var cpu = TrainOn(Device.Cpu);
        var gpu = TrainOn(Dev);
        for (int s = 0; s < cpu.Length; s++) Assert.Equal(cpu[s], gpu[s], 1e-4);
    }

    [Fact]
    public void DecoderAndRecurrentLayers_TrainTheSameOnTheDevice()
    {
        // Transposed convolution, group norm, bilinear resizing, uneven adaptive pooling, a 1-D convolution,
        // an LSTM and a top-k: their index tensors, masks and initial states are made on the input's device.
        float[] TrainOn(Device device)
        {
            var g = new Generator(5);
            var model = new Sequential(new ConvTranspose2d(1, 4, 3, stride: 2, generator: g), new GroupNorm(2, 4), Activations.ReLU(),
                new Upsample((10, 9), UpsampleMode.Bilinear), new AdaptiveAvgPool2d((3, 4)), new Flatten(2), new Conv1d(4, 6, 3, padding: 1, generator: g),
                new Lstm(12, 5, batchFirst: true, generator: g), new Flatten(), new Linear(6 * 5, 3, generator: g));
            model.To(device);
            var x = Tensor.Randn(new Shape(4, 1, 4, 4), g).To(device);
            var y = Tensor.Randint(0, 3, new Shape(4), g).To(device);
            return Train(model, new Adam(model.Parameters(), 1e-2), x, y, 6);
        }
        var cpu = TrainOn(Device.Cpu);
        var gpu = TrainOn(Dev);
        for (int s = 0; s < cpu.Length; s++) Assert.Equal(cpu[s], gpu[s], 1e-4);
        var v = Tensor.FromArray([3f, 1f, 2f, 5f]).To(Dev).TopK(2);
        Assert.Equal(Dev, v.Values.Device);
        Assert.Equal([5f, 3f], v.Values.ToArray<float>());
        Assert.Equal([3, 0], v.Indices.ToArray<int>());
    }

    [Fact]
    public void ATransformerEncoder_WithDropoutAndACausalMask_TrainsTheSameOnTheDevice()
    {
        // The causal mask is made on the input's device, and the dropout masks come from the same
        // generator streams as on the CPU (RandomNumbers_AreTheCpuGeneratorsNumbers).
        float[] TrainOn(Device device)
        {
            var g = new Generator(6);
            var encoder = new TransformerEncoderLayer(8, 2, dimFeedforward: 16, dropout: 0.1, batchFirst: true, normFirst: true, generator: g, dropoutGenerator: new Generator(9));
            var model = new Sequential(new Linear(3, 8, generator: g), new CausalEncoder(encoder), new Flatten(), new Linear(5 * 8, 3, generator: g));
            model.To(device);
            var x = Tensor.Randn(new Shape(4, 5, 3), g).To(device);
            var y = Tensor.Randint(0, 3, new Shape(4), g).To(device);
            return Train(model, new Adam(model.Parameters(), 1e-2), x, y, 6);
        }
        var cpu = TrainOn(Device.Cpu);
        var gpu = TrainOn(Dev);
        for (int s = 0; s < cpu.Length; s++) Assert.Equal(cpu[s], gpu[s], 1e-4);
    }

    private sealed class CausalEncoder : Module
    {
        private readonly TransformerEncoderLayer _layer;
        public CausalEncoder(TransformerEncoderLayer layer) => _layer = RegisterModule("layer", layer);
        protected override Tensor ForwardImpl(Tensor x) => _layer.Run(x, isCausal: true);
    }

    [Fact]
    public void NoDeviceBufferIsLeftAlive_After1000TrainingSteps()
    {
        static long Live()
        {
            for (int i = 0; i < 3; i++) { GC.Collect(); GC.WaitForPendingFinalizers(); }
            return Backend.Allocator.LiveBuffers;
        }
        long before = Live();
        // A single linear layer keeps the 1,000 steps quick on the CPU accelerator (about 3 ms a launch).
        TrainMlp(Dev, 1000, hidden: false);
        Assert.Equal(before, Live());
        Assert.True(Backend.Allocator.CacheHits > Backend.Allocator.DriverAllocations, "the cache should serve most buffers");
    }

    [Fact]
    public async Task AScope_DisposesWhatWasMadeInIt_AndFollowsAsyncCode()
    {
        Tensor kept, dropped;
        using (var scope = new GpuScope())
        {
            var a = Tensor.Ones(8).To(Dev);
            await Task.Yield();                       // the continuation may run on another thread
            dropped = a * 2;
            kept = a + 1;
            scope.Keep(kept);
            Assert.True(scope.Count >= 2);
        }
        Assert.Equal(Enumerable.Repeat(2f, 8), kept.ToArray<float>());
        var e = Assert.Throws<ObjectDisposedException>(() => dropped.ToArray<float>());
        Assert.Contains("GpuScope", e.Message);
    }

    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(33, 47, 29)]
    [InlineData(64, 64, 64)]
    [InlineData(70, 5, 130)]
    [InlineData(130, 19, 140)]
    public void TheTiledGemm_AndTheGroupReduction_MatchTheSimpleKernels(int m, int k, int n)
    {
        // On the GPU-shaped CPU accelerator: the tiled GEMM's groups have 256 threads.
        var dev = GpuDevices.Get("ilgpu-cpu:1");
        var backend = GpuDevices.Backend(dev);
        var g = new Generator((ulong)(m * 1000 + k * 10 + n));
        var a = Tensor.Randn(new Shape(2, m, k), g).To(dev);
        var b = Tensor.Randn(new Shape(k, n), g).To(dev);
        var w = Tensor.Randn(new Shape(n, k), g).To(dev);
        var bias = Tensor.Randn(new Shape(n), g).To(dev);
        var big = Tensor.Randn(new Shape(3, 2000), g).To(dev);
        (float[] Mm, float[] Lin, float[] MmT, float[] Sum) Run(bool grouped, int? tile)
        {
            backend.GroupKernels = grouped;
            backend.GemmTile = tile;
            try
            {
                return (Tensor.MatMul(a, b).ToArray<float>(), Tensor.LinearRelu(a.Narrow(0, 0, 1).Reshape(m, k), w, bias).ToArray<float>(),
                    Tensor.MatMul(b.mT, a.Narrow(0, 1, 1).Reshape(m, k).mT).ToArray<float>(), big.Sum(1).ToArray<float>());
            }
            finally { backend.GroupKernels = null; backend.GemmTile = null; }
        }
        var simple = Run(false, null);
        foreach (int tile in new[] { 64, 128 })
        {
            var tiled = Run(true, tile);
            foreach (var (x, y) in new[] { (simple.Mm, tiled.Mm), (simple.Lin, tiled.Lin), (simple.MmT, tiled.MmT), (simple.Sum, tiled.Sum) })
                for (int i = 0; i < x.Length; i++) Assert.Equal(x[i], y[i], 1e-4 * (1 + Math.Abs(x[i])));
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => backend.GemmTile = 32);
    }

    [Fact]
    public void EveryKernel_CompilesToPtxForSm90()
    {
        var compiled = KernelCatalog.CompileAll(GpuDevices.Compiler);
        Assert.True(compiled >= 100, $"{compiled} kernel instantiations compiled");
        foreach (var (name, ptx) in GpuDevices.Compiler.Ptx)
            Assert.True(ptx.Contains(".entry") && ptx.Contains(".address_size 64"), $"{name}: no kernel entry in its PTX");
    }

    // PTX's approximate instructions (tanh.approx.f32 keeps about 11 bits; sin/cos.approx have no range
    // reduction; ex2/lg2.approx lose bits as |x| grows) must not reach a kernel: on an H200 they made the
    // device's tanh differ from the reference in the sixth digit. The op structs evaluate in float64.
    [Fact]
    public void NoKernel_UsesPtxApproximateMath()
    {
        KernelCatalog.CompileAll(GpuDevices.Compiler);
        var offenders = GpuDevices.Compiler.Ptx
            .Select(p => (p.Key, Approx: System.Text.RegularExpressions.Regex.Matches(p.Value, @"\b[a-z0-9]+\.approx[a-z0-9.]*").Select(m => m.Value).Distinct().ToList()))
            .Where(p => p.Approx.Count > 0)
            .Select(p => $"{p.Key}: {string.Join(", ", p.Approx)}")
            .ToList();
        Assert.True(offenders.Count == 0, "kernels with approximate math: " + string.Join("; ", offenders));
    }

    // ILGPU builds float64 Math.Exp, Log, Sin, Tanh … from CORDIC iterations in PTX functions: slow (the
    // cross-entropy kernel took 0.7 ms for 1,024 rows on an H200) and, for Tanh and Sin, wrong. The
    // transcendental ops and the loss kernels use Core's own (Elementary, Trig), which inline to
    // straight-line multiply-adds: their PTX declares no function. (Pow, softplus, the normal CDF and the
    // random normals still call ILGPU's: correct, slower; see docs/gpu.md.)
    [Fact]
    public void TheTranscendentalAndLossKernels_CallNoSoftwareMathRoutine()
    {
        KernelCatalog.CompileAll(GpuDevices.Compiler);
        string[] ops = ["ExpOp", "LogOp", "SigmoidOp", "TanhOp", "SinOp", "CosOp"];
        var checkedKernels = GpuDevices.Compiler.Ptx
            .Where(p => ops.Any(o => p.Key.Contains($"Unary") && p.Key.Contains($"<{o}>")) || p.Key.StartsWith("Loss.CrossEntropyRows"))
            .ToList();
        Assert.True(checkedKernels.Count >= 14, $"{checkedKernels.Count} kernels found");
        var offenders = checkedKernels.Where(p => p.Value.Contains(".func")).Select(p => p.Key).ToList();
        Assert.True(offenders.Count == 0, "kernels calling a PTX function: " + string.Join(", ", offenders));
    }
}
