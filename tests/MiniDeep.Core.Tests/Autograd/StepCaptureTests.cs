using MiniDeep.Nn;
using MiniDeep.Optim;
using Xunit;
using static MiniDeep.Nn.Activations;

namespace MiniDeep.Tests;

/// <summary>A captured step replays the eager step: same losses, gradients and parameters, bit for bit.</summary>
public class StepCaptureTests(ITestOutputHelper output)
{
    private static Module Mlp(ulong seed)
    {
        var g = new Generator(seed);
        return new Sequential(new Linear(20, 32, generator: g), ReLU(), new Linear(32, 16, generator: g), Tanh(), new Linear(16, 5, generator: g));
    }

    private static Module Cnn(ulong seed)
    {
        var g = new Generator(seed);
        return new Sequential(new Conv2d(1, 4, 3, padding: 1, generator: g), ReLU(), new MaxPool2d(2),
            new Conv2d(4, 6, 3, generator: g), new BatchNorm2d(6), Sigmoid(), new Flatten(), new Linear(6 * 2 * 2, 5, generator: g));
    }

    // Trains two copies of a model on the same batches: one eagerly, one by replaying a captured step.
    private void ReplayMatchesEager(Func<ulong, Module> build, Shape inputShape, bool adam)
    {
        var eager = build(7);
        var captured = build(7);
        Optimizer Opt(Module m) => adam ? new Adam(m.Parameters(), 1e-2) : new Sgd(m.Parameters(), 0.05, momentum: 0.9);
        var eagerOpt = Opt(eager);
        var capturedOpt = Opt(captured);
        var data = new Generator(11);
        var batches = Enumerable.Range(0, 6).Select(_ => (X: Tensor.Randn(inputShape, data), Y: Tensor.Randint(0, 5, new Shape(inputShape[0]), data))).ToList();

        var x = Tensor.Zeros(inputShape);
        var y = Tensor.Zeros(new Shape(inputShape[0]), DType.Int32);
        CapturedStep? step = null;
        foreach (var (bx, by) in batches)
        {
            eagerOpt.ZeroGrad();
            var eagerLoss = Losses.CrossEntropy(eager.Forward(bx), by);
            eagerLoss.Backward();
            eagerOpt.Step();

            x.CopyFrom(bx);
            y.CopyFrom(by);
            Tensor loss;
            if (step is null)
            {
                step = StepCapture.Capture(captured.Parameters(), () =>
                {
                    var l = Losses.CrossEntropy(captured.Forward(x), y);
                    l.Backward();
                    return l;
                });
                loss = step.Output;
            }
            else
            {
                capturedOpt.ZeroGrad();   // sets the gradients to null: the replay puts them back
                loss = step.Replay();
            }
            capturedOpt.Step();

            Assert.Equal(eagerLoss.Item(), loss.Item());
            foreach (var ((name, p), (_, q)) in eager.NamedParameters().Zip(captured.NamedParameters()))
                Assert.True(p.ToArray<float>().SequenceEqual(q.ToArray<float>()), $"parameter {name} differs");
            foreach (var ((name, b), (_, c)) in eager.NamedBuffers().Zip(captured.NamedBuffers()))
                Assert.True(b.ToArray<float>().SequenceEqual(c.ToArray<float>()), $"buffer {name} differs");
        }
        output.WriteLine($"{step!.Kernels} kernels, {step.Bytes:N0} bytes of captured buffers");
    }

    [Fact]
    public void AnMlpStep_ReplaysBitForBit_WithSgd() => ReplayMatchesEager(Mlp, new Shape(8, 20), adam: false);

    [Fact]
    public void ACnnStep_WithPoolingAndBatchNorm_ReplaysBitForBit_WithAdam() => ReplayMatchesEager(Cnn, new Shape(4, 1, 8, 8), adam: true);

    // This session's layers: transposed convolution, group norm, bilinear resizing, uneven adaptive
    // pooling (gathers whose indices come from the shapes alone), a 1-D convolution and an LSTM.
    private static Module Decoder(ulong seed)
    {
        var g = new Generator(seed);
        return new Sequential(new ConvTranspose2d(1, 4, 3, stride: 2, generator: g), new GroupNorm(2, 4), ReLU(),
            new Upsample((10, 9), UpsampleMode.Bilinear), new AdaptiveAvgPool2d((3, 4)), new Flatten(2), new Conv1d(4, 6, 3, padding: 1, generator: g),
            new Lstm(12, 5, batchFirst: true, generator: g), new Flatten(), new Linear(6 * 5, 5, generator: g));
    }

    [Fact]
    public void ADecoderStep_WithTheNewLayersAndAnLstm_ReplaysBitForBit_WithAdam() => ReplayMatchesEager(Decoder, new Shape(3, 1, 4, 4), adam: true);

    // A Transformer encoder layer with dropout in its attention and feed-forward block: the masks
    // take the next stream of their generator on every replay, as the eager step's do.
    private static Module Encoder(ulong seed) =>
        new Sequential(new Linear(6, 8, generator: new Generator(seed)),
            new TransformerEncoderLayer(8, 2, dimFeedforward: 16, dropout: 0.2, batchFirst: true, generator: new Generator(seed), dropoutGenerator: new Generator(seed + 1)),
            new Flatten(), new Linear(3 * 8, 5, generator: new Generator(seed)));

    [Fact]
    public void ATransformerEncoderStep_WithDropout_ReplaysBitForBit_WithAdam() => ReplayMatchesEager(Encoder, new Shape(4, 3, 6), adam: true);

    [Fact]
    public void AReplay_AllocatesNothingOnItsThread()
    {
        var g = new Generator(3);
        var model = new Sequential(new Linear(784, 512, generator: g), ReLU(), new Linear(512, 256, generator: g), ReLU(), new Linear(256, 10, generator: g));
        var opt = new Sgd(model.Parameters(), 0.01, momentum: 0.9);
        var x = Tensor.Rand(new Shape(64, 784), g);
        var y = Tensor.Randint(0, 10, new Shape(64), g);
        var step = StepCapture.Capture(model.Parameters(), () =>
        {
            var l = Losses.CrossEntropy(model.Forward(x), y);
            l.Backward();
            return l;
        });
        // Warm-up: the first replays see methods compiled again by the tiered JIT, which allocates. Under
        // load (the whole suite on two cores) the JIT's background tier-up can land after any fixed
        // warm-up, so the replays are measured in windows of 100 until one allocates nothing, at most
        // five: a one-off allocation shows in one window, an allocation per replay in every one.
        for (int i = 0; i < 100; i++) { step.Replay(); opt.Step(); }
        var windows = new List<long>();
        do
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 100; i++) step.Replay();
            windows.Add(GC.GetAllocatedBytesForCurrentThread() - before);
        } while (windows[^1] != 0 && windows.Count < 5);
        output.WriteLine($"{step.Kernels} kernels; bytes in each window of 100 replays: {string.Join(", ", windows)}; by kernel: " +
                         string.Join(", ", step.Profile(1).Select(k => $"{k.Kernel} {k.BytesAllocated}")));
        Assert.Equal(0, windows[^1]);
    }

    [Fact]
    public void Dropout_DrawsTheEagerStepsMasks_OnEveryReplay()
    {
        // Each replay takes the next streams of the dropout's generator, as the eager step does.
        Module Build(ulong seed) => new Sequential(new Linear(6, 16, generator: new Generator(seed)), ReLU(), new Dropout(0.5, new Generator(99)),
            new Linear(16, 3, generator: new Generator(seed + 1)));
        var eager = Build(1);
        var captured = Build(1);
        var x = Tensor.Randn(new Shape(5, 6), new Generator(2));
        var y = Tensor.FromArray([0, 1, 2, 1, 0]);
        var step = StepCapture.Capture(captured.Parameters(), () => { var l = Losses.CrossEntropy(captured.Forward(x), y); l.Backward(); return l; });
        var losses = new List<double> { step.Output.Item() };
        for (int i = 0; i < 4; i++) losses.Add(step.Replay().Item());
        foreach (var l in losses) Assert.Equal(Losses.CrossEntropy(eager.Forward(x), y).Item(), l);
        Assert.True(losses.Distinct().Count() > 1, "the masks differ from step to step");
    }

    [Fact]
    public void AFixedSeedFill_IsRefused_AndTheCaptureLeavesNothingBehind()
    {
        var e = Assert.Throws<NotSupportedException>(() =>
            StepCapture.Capture([], () => new Tensor(Device.Cpu.Backend.Random(RandomKind.Uniform, DType.Float32, 4, 1, 2, 0, 1), [4])));
        Assert.Contains("fixed seed", e.Message);
        // The thread is back to eager mode, and another capture works.
        var x = Tensor.Randn(new Shape(2, 4));
        Assert.IsNotType<CapturingBackend>(x.Backend);
        var step = StepCapture.Capture([], () => (x * 2).Sum());
        Assert.Equal(step.Output.Item(), step.Replay().Item());
    }

    [Fact]
    public void TrainerFit_WithCapture_TrainsTheSameAsEagerly()
    {
        // A CNN with dropout and batch norm; 70 examples in batches of 16, so the last batch of each
        // epoch (6 examples) runs eagerly between replays.
        Module Build() => new Sequential(new Conv2d(1, 4, 3, padding: 1, generator: new Generator(5)), new BatchNorm2d(4), ReLU(), new MaxPool2d(2),
            new Flatten(), new Dropout(0.3, new Generator(6)), new Linear(4 * 4 * 4, 3, generator: new Generator(7)));
        var g = new Generator(8);
        var data = new MiniDeep.Data.TensorDataset(Tensor.Randn(new Shape(70, 1, 8, 8), g), Tensor.Randint(0, 3, new Shape(70), g));
        List<EpochStats> Run(bool capture, out Module model)
        {
            model = Build();
            var opt = new Adam(model.Parameters(), 1e-2);
            return Trainer.Fit(model, opt, new MiniDeep.Data.DataLoader(data, 16, shuffle: true, seed: 3), 3, capture: capture);
        }
        var eager = Run(false, out var a);
        var captured = Run(true, out var b);
        Assert.Equal(eager.Select(h => (h.TrainLoss, h.TrainAccuracy)), captured.Select(h => (h.TrainLoss, h.TrainAccuracy)));
        foreach (var ((name, p), (_, q)) in a.StateDict().Zip(b.StateDict()))
            Assert.True(p.ToDoubleArray().SequenceEqual(q.ToDoubleArray()), $"{name} differs");
    }

    [Fact]
    public void CapturesDoNotNest()
    {
        var x = Tensor.Ones(3);
        var e = Assert.Throws<InvalidOperationException>(() => StepCapture.Capture([], () => StepCapture.Capture([], () => x * 2).Output));
        Assert.Contains("do not nest", e.Message);
        Assert.Equal(6.0, StepCapture.Capture([], () => (x * 2).Sum()).Replay().Item());
    }

    [Fact]
    public void OtherDevices_AreRefused()
    {
        var r = Tensor.Ones(3).To(Device.Reference);
        var e = Assert.Throws<NotSupportedException>(() => StepCapture.Capture([], () => r * 2));
        Assert.Contains("'reference'", e.Message);
    }

    [Fact]
    public void ReplayingAfterOtherWork_StillReadsTheInputsCurrentValues()
    {
        var w = Tensor.FromArray([1f, 2f, 3f]).RequiresGrad_();
        var x = Tensor.FromArray([1f, 1f, 1f]);
        var step = StepCapture.Capture([w], () => { var l = (w * x).Square().Sum(); l.Backward(); return l; });
        Assert.Equal(14f, step.Output.Item<float>());
        // Unrelated eager work that rents and recycles buffers of the same sizes in between.
        for (int i = 0; i < 50; i++) _ = (Tensor.Randn(new Shape(3)) * 2).Sum().Item();
        x.CopyFrom(Tensor.FromArray([2f, 0f, 1f]));
        Assert.Equal(4f + 0f + 9f, step.Replay().Item<float>());
        Assert.Equal([8f, 0f, 6f], w.Grad!.ToArray<float>());   // d/dw Σ (w x)² = 2 w x²
    }
}
