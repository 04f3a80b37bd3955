using MiniDeep.Nn;
using Xunit;

namespace MiniDeep.Tests.NnTests;

public class ModuleTests
{
    private static Tensor X(params int[] shape) => Tensor.Randn(new Shape(shape), new Generator(1));

    public static TheoryData<string, Func<Module>, int[], int[], long> Layers => new()
    {
        // name, module, input shape, output shape, parameter count
        { "Linear", () => new Linear(784, 256), [8, 784], [8, 256], 784 * 256 + 256 },
        { "Linear without bias", () => new Linear(10, 3, bias: false), [2, 5, 10], [2, 5, 3], 30 },
        { "Conv2d", () => new Conv2d(1, 32, 3, padding: 1), [2, 1, 28, 28], [2, 32, 28, 28], 32 * 9 + 32 },
        { "Conv2d strided", () => new Conv2d(3, 8, (3, 3), stride: (2, 2)), [1, 3, 9, 9], [1, 8, 4, 4], 8 * 27 + 8 },
        { "Conv2d grouped", () => new Conv2d(4, 8, (3, 3), padding: (1, 1), groups: 2), [1, 4, 5, 5], [1, 8, 5, 5], 8 * 2 * 9 + 8 },
        { "ConvTranspose2d", () => new ConvTranspose2d(8, 4, 4, stride: 2, padding: 1), [2, 8, 7, 7], [2, 4, 14, 14], 8 * 4 * 16 + 4 },
        { "ConvTranspose2d output padding, grouped", () => new ConvTranspose2d(4, 6, (3, 3), stride: (2, 2), padding: (1, 1), outputPadding: (1, 0), groups: 2), [1, 4, 5, 5], [1, 6, 10, 9], 4 * 3 * 9 + 6 },
        { "Upsample scale", () => new Upsample(3), [2, 3, 4, 5], [2, 3, 12, 15], 0 },
        { "Upsample size, bilinear", () => new Upsample((7, 2), UpsampleMode.Bilinear), [2, 3, 4, 5], [2, 3, 7, 2], 0 },
        { "Conv1d", () => new Conv1d(4, 8, 5, stride: 2, padding: 2), [3, 4, 20], [3, 8, 10], 8 * 4 * 5 + 8 },
        { "ConvTranspose1d", () => new ConvTranspose1d(8, 4, 4, stride: 2, padding: 1), [3, 8, 10], [3, 4, 20], 8 * 4 * 4 + 4 },
        { "MaxPool1d", () => new MaxPool1d(2), [3, 4, 9], [3, 4, 4], 0 },
        { "AvgPool1d", () => new AvgPool1d(3, 1, 1), [3, 4, 9], [3, 4, 9], 0 },
        { "Lstm", () => new Lstm(10, 20), [5, 3, 10], [5, 3, 20], 4 * 20 * (10 + 20) + 2 * 4 * 20 },
        { "Gru, 2 layers, bidirectional, batch first", () => new Gru(10, 20, numLayers: 2, batchFirst: true, bidirectional: true), [3, 5, 10], [3, 5, 40],
            2 * (3 * 20 * (10 + 20) + 2 * 3 * 20) + 2 * (3 * 20 * (40 + 20) + 2 * 3 * 20) },
        { "Lstm, unbatched", () => new Lstm(4, 6, bias: false), [7, 4], [7, 6], 4 * 6 * (4 + 6) },
        { "MaxPool2d", () => new MaxPool2d(2), [2, 3, 8, 8], [2, 3, 4, 4], 0 },
        { "AvgPool2d", () => new AvgPool2d(2), [2, 3, 8, 6], [2, 3, 4, 3], 0 },
        { "Flatten", () => new Flatten(), [2, 3, 4, 5], [2, 60], 0 },
        { "ReLU", Activations.ReLU, [3, 4], [3, 4], 0 },
        { "GELU", Activations.GELU, [3, 4], [3, 4], 0 },
        { "Dropout", () => new Dropout(0.5), [3, 4], [3, 4], 0 },
        { "BatchNorm1d", () => new BatchNorm1d(16), [8, 16], [8, 16], 32 },
        { "BatchNorm1d on (N, C, L)", () => new BatchNorm1d(4), [3, 4, 10], [3, 4, 10], 8 },
        { "BatchNorm2d", () => new BatchNorm2d(4), [2, 4, 5, 5], [2, 4, 5, 5], 8 },
        { "LayerNorm", () => new LayerNorm(16), [4, 7, 16], [4, 7, 16], 32 },
        { "GroupNorm", () => new GroupNorm(4, 8), [2, 8, 5, 5], [2, 8, 5, 5], 16 },
        { "GroupNorm without affine", () => new GroupNorm(2, 4, affine: false), [3, 4, 6], [3, 4, 6], 0 },
        { "Residual", () => new Residual(new Sequential(new Linear(8, 8), Activations.ReLU())), [5, 8], [5, 8], 72 },
        { "Sequential MLP", () => new Sequential(new Flatten(), new Linear(784, 300), Activations.ReLU(), new Linear(300, 100), Activations.ReLU(), new Linear(100, 10)), [4, 1, 28, 28], [4, 10], 266_610 },
    };

    [Theory]
    [MemberData(nameof(Layers))]
    public void Module_GivesTheDocumentedShapeAndParameterCount(string name, Func<Module> make, int[] input, int[] output, long parameters)
    {
        var m = make();
        Assert.Equal(new Shape(output), m.Forward(X(input)).Shape);
        Assert.Equal(parameters, m.ParameterCount());
        _ = name;
    }

    [Fact]
    public void ConvTranspose2d_InitializesAsPyTorch_FromTheFanInOfTheTransposedWeight()
    {
        // PyTorch reads the fan-in off weight.size(1) · kh · kw, which for a transposed weight
        // (in, out/groups, kh, kw) is out/groups · kh · kw: here 3 · 2 · 2 = 12, bound 1/√12.
        var m = new ConvTranspose2d(64, 6, (2, 2), groups: 2, generator: new Generator(4));
        Assert.Equal([64, 3, 2, 2], m.Weight.Dims);
        double bound = 1 / Math.Sqrt(12), largest = m.Weight.Abs().Max().Item();
        Assert.True(largest <= bound && largest > 0.95 * bound, $"largest |w| {largest}, bound {bound}");
        Assert.True(m.Bias!.Abs().Max().Item() <= bound);
        Assert.Equal("ConvTranspose2d(64, 6, kernel=(2, 2), stride=(1, 1), padding=(0, 0))", m.Describe());
    }

    [Fact]
    public void RecurrentLayers_NameTheirParametersAsPyTorch_AndHaveSecondDerivativesThroughTime()
    {
        var lstm = new Lstm(3, 4, numLayers: 2, bidirectional: true);
        Assert.Equal(["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "weight_ih_l0_reverse", "weight_hh_l0_reverse", "bias_ih_l0_reverse", "bias_hh_l0_reverse",
                      "weight_ih_l1", "weight_hh_l1", "bias_ih_l1", "bias_hh_l1", "weight_ih_l1_reverse", "weight_hh_l1_reverse", "bias_ih_l1_reverse", "bias_hh_l1_reverse"],
            lstm.NamedParameters().Select(p => p.Name));
        Assert.Equal([16, 8], lstm.NamedParameters().Single(p => p.Name == "weight_ih_l1").Tensor.Dims);
        Assert.True(lstm.Parameters().All(p => p.Abs().Max().Item() <= 0.5), "uniform on ±1/√4");
        Assert.Equal("Lstm(3, 4, num_layers=2, bidirectional=True)", lstm.Describe());
        var (y, (h, c)) = lstm.Run(X(6, 2, 3));
        Assert.Equal([6, 2, 8], y.Dims);
        Assert.Equal([4, 2, 4], h.Dims);
        Assert.Equal([4, 2, 4], c.Dims);
        // The last step's output of the forward direction of the top layer is its final h (slot 2).
        Assert.Equal(y.Select(0, 5).Narrow(1, 0, 4).ToArray<float>(), h.Select(0, 2).ToArray<float>());
        // and the backward direction's final h is its output at the first step.
        Assert.Equal(y.Select(0, 0).Narrow(1, 4, 4).ToArray<float>(), h.Select(0, 3).ToArray<float>());

        var g = new Generator(3);
        var small = new Lstm(2, 3, generator: g, dtype: DType.Float64);
        var gru = new Gru(2, 3, bidirectional: true, generator: g, dtype: DType.Float64);
        var check = GradCheck.CheckSecondOrder(a => small.Run(a[0]).Output.Square().Sum() + gru.Run(a[0]).H.Square().Sum(),
            [Tensor.Randn(new Shape(4, 2, 2), g, dtype: DType.Float64)]);
        Assert.True(check.Passed, check.Failure);
        var e = Assert.Throws<ShapeMismatchException>(() => new Gru(3, 5).Run(X(4, 2, 3), Tensor.Zeros(2, 2, 5)));
        Assert.Contains("Gru(3, 5): initial state (2, 2, 5) must be (1, 2, 5) for input (4, 2, 3)", e.Message);
        Assert.Same(lstm.NamedParameters().Single(p => p.Name == "weight_hh_l1_reverse").Tensor, lstm.Weights(1, 1)[1]);
        Assert.Contains("no layer 2 in direction 0 (2 layers, 2 directions)", Assert.Throws<ArgumentOutOfRangeException>(() => lstm.Weights(2, 0)).Message);
        Assert.Contains("Lstm(3, 4): input (4, 2, 5) must be (T, N, 3) or (T, 3)", Assert.Throws<ShapeMismatchException>(() => new Lstm(3, 4).Forward(X(4, 2, 5))).Message);
    }

    [Fact]
    public void RecurrentDropout_DropsBetweenLayersInTrainingOnly_AsTheDropoutOpWithTheSameGenerator()
    {
        var x = X(5, 2, 3);
        var two = new Lstm(3, 4, numLayers: 2, dropout: 0.5, dropoutGenerator: new Generator(7), generator: new Generator(1));
        // The same network as two one-layer LSTMs with the dropout op between them, drawing from the same seed.
        var first = new Lstm(3, 4, generator: new Generator(2));
        var second = new Lstm(4, 4, generator: new Generator(3));
        using (Autograd.NoGrad())
            foreach (var (name, p) in two.NamedParameters())
                (name.EndsWith("_l0") ? first : second).NamedParameters().Single(q => q.Name == name[..^1] + "0").Tensor.CopyFrom(p);
        var masks = new Generator(7);
        var expected = second.Forward(first.Forward(x).Dropout(0.5, training: true, generator: masks));
        Assert.Equal(expected.ToArray<float>(), two.Forward(x).ToArray<float>());
        // Evaluation: no dropout. One layer: nothing between layers to drop, as in PyTorch.
        two.Eval();
        Assert.Equal(second.Forward(first.Forward(x)).ToArray<float>(), two.Forward(x).ToArray<float>());
        var one = new Lstm(3, 4, dropout: 0.9, dropoutGenerator: new Generator(7), generator: new Generator(2));
        Assert.Equal(new Lstm(3, 4, generator: new Generator(2)).Forward(x).ToArray<float>(), one.Forward(x).ToArray<float>());
        Assert.Equal("Lstm(3, 4, num_layers=2, dropout=0.5)", two.Describe());
        Assert.Throws<ArgumentOutOfRangeException>(() => new Gru(3, 4, dropout: 1.5));
    }

    [Fact]
    public void Embedding_LooksUpRows()
    {
        var e = new Embedding(10, 4);
        var y = e.Forward(Tensor.FromArray(new[] { 1, 2, 1 }, 3));
        Assert.Equal(new Shape(3, 4), y.Shape);
        Assert.Equal(y.Select(0, 0).ToArray<float>(), y.Select(0, 2).ToArray<float>());
        Assert.Equal(40, e.ParameterCount());
    }

    [Fact]
    public void WrongInputShape_NamesTheLayerAndBothShapes()
    {
        var e = Assert.Throws<ShapeMismatchException>(() => new Linear(784, 256).Forward(X(8, 100)));
        Assert.Contains("Linear(784, 256)", e.Message);
        Assert.Contains("(8, 100)", e.Message);
        Assert.Contains("(256, 784)", e.Message);
        var c = Assert.Throws<ShapeMismatchException>(() => new Conv2d(3, 8, 3).Forward(X(1, 1, 8, 8)));
        Assert.Contains("Conv2d(3, 8", c.Message);
        Assert.Contains("(1, 1, 8, 8)", c.Message);
    }

    [Fact]
    public void NamedParameters_AreDottedAndOrdered_AndStateDictRoundTrips()
    {
        var m = new Sequential(new Linear(4, 3), new BatchNorm1d(3), new Linear(3, 2));
        Assert.Equal(new[] { "0.weight", "0.bias", "1.weight", "1.bias", "2.weight", "2.bias" }, m.NamedParameters().Select(p => p.Name));
        Assert.Equal(new[] { "1.running_mean", "1.running_var" }, m.NamedBuffers().Select(b => b.Name));
        var state = m.StateDict();
        var other = new Sequential(new Linear(4, 3, generator: new Generator(9)), new BatchNorm1d(3), new Linear(3, 2, generator: new Generator(9)));
        var x = X(5, 4);
        m.Eval(); other.Eval();
        Assert.NotEqual(m.Forward(x).ToArray<float>(), other.Forward(x).ToArray<float>());
        var before = other.Parameters()[0];
        other.LoadStateDict(state);
        Assert.Same(before, other.Parameters()[0]);           // loaded in place
        Assert.Equal(m.Forward(x).ToArray<float>(), other.Forward(x).ToArray<float>());
    }

    [Fact]
    public void LoadStateDict_NamesMissingExtraAndMisShapedEntries()
    {
        var m = new Sequential(new Linear(4, 3));
        var state = m.StateDict();
        state.Remove("0.bias");
        state["0.weight"] = Tensor.Zeros(2, 2);
        state["extra"] = Tensor.Zeros(1);
        var e = Assert.Throws<ArgumentException>(() => m.LoadStateDict(state));
        Assert.Contains("missing entry '0.bias'", e.Message);
        Assert.Contains("unexpected entry 'extra'", e.Message);
        Assert.Contains("'0.weight' has shape (2, 2), the model expects (3, 4)", e.Message);
    }

    [Fact]
    public void Freeze_StopsGradients_AndTrainEvalSwitchesEveryChild()
    {
        var m = new Sequential(new Linear(4, 3), new Dropout(0.5), new Linear(3, 2));
        m[0].Freeze();
        Assert.Equal(3 * 2 + 2, m.ParameterCount(trainableOnly: true));
        Losses.Mse(m.Forward(X(6, 4)), Tensor.Zeros(6, 2)).Backward();
        Assert.Null(((Linear)m[0]).Weight.Grad);
        Assert.NotNull(((Linear)m[2]).Weight.Grad);
        m.Eval();
        Assert.All(m.NamedModules(), x => Assert.False(x.Module.IsTraining));
        var x = X(6, 4);
        Assert.Equal(m.Forward(x).ToArray<float>(), m.Forward(x).ToArray<float>());   // dropout off
    }

    [Fact]
    public void BatchNorm_NormalizesInTraining_AndTracksRunningStatistics()
    {
        var bn = new BatchNorm1d(2);
        var x = Tensor.FromArray(new float[] { 1, 10, 3, 20, 5, 30 }, 3, 2);
        var y = bn.Forward(x);
        // per column: mean 3 and 20, biased var 8/3 and 200/3
        Assert.Equal(0, y.Mean(0).ToArray<float>()[0], 5);
        Assert.Equal(1, y.Var(0, correction: 0).ToArray<float>()[0], 3);
        // running mean moves 10% toward the batch mean; running var toward the unbiased variance (4 and 100)
        Assert.Equal(new float[] { 0.3f, 2f }, bn.RunningMean.ToArray<float>());
        Assert.Equal(0.9f + 0.4f, bn.RunningVar.ToArray<float>()[0], 5);
        bn.Eval();
        var e = bn.Forward(x).ToArray<float>();
        Assert.Equal((1 - 0.3) / Math.Sqrt(1.3 + 1e-5), e[0], 4);
    }

    // Training-mode batch norm is one node with a closed-form backward; its first and second
    // derivatives (the latter through the composite) must pass the float64 gradient check.
    [Theory]
    [InlineData(2)]
    [InlineData(4)]
    public void BatchNormTraining_PassesFirstAndSecondOrderGradientChecks(int rank)
    {
        int[] xs = rank == 2 ? [5, 3] : [3, 2, 3, 2];
        int[] axes = rank == 2 ? [0] : [0, 2, 3];
        int[] shape = rank == 2 ? [1, 3] : [1, 2, 1, 1];
        int c = xs[1];
        var g = new Generator(7);
        Tensor[] inputs = [Tensor.Randn(new Shape(xs), g), Tensor.Randn(new Shape(c), g) + 1, Tensor.Randn(new Shape(c), g)];
        Tensor F(Tensor[] a) => BatchNorm.Training(a[0], a[1], a[2], axes, shape, 1e-5, out _, out _) * Tensor.Arange(a[0].Numel).Reshape(xs).To(a[0].DType).Sin();
        var first = GradCheck.Check(F, inputs);
        Assert.True(first.Passed, first.Failure);
        var second = GradCheck.CheckSecondOrder(F, inputs);
        Assert.True(second.Passed, second.Failure);
    }

    [Fact]
    public void ToFloat64_ConvertsParametersAndBuffersInPlace_ForAFloat64GradientCheck()
    {
        var g = new Generator(11);
        var model = new Sequential(new Conv2d(2, 3, (3, 3), padding: (1, 1), generator: g), new BatchNorm2d(3), Activations.Tanh(), new Flatten(), new Linear(3 * 4 * 4, 2, generator: g));
        var x = Tensor.Randn(new Shape(2, 2, 4, 4), g);
        float[] before = model.Forward(x).ToArray<float>();
        var weight = model.Parameters().First();
        Assert.Same(model, model.To(DType.Float64));
        Assert.Same(weight, model.Parameters().First());                  // the same objects: optimizers and hooks keep them
        Assert.All(model.Parameters().Concat(model.NamedBuffers().Select(b => b.Tensor)), p => Assert.Equal(DType.Float64, p.DType));
        var x64 = x.Double();
        double[] after = model.Forward(x64).ToDoubleArray();
        Assert.Equal(before, after.Select(v => (float)v).ToArray(), (a, b) => Math.Abs(a - b) < 1e-5f);
        // What the conversion is for: a float64 gradient check through layers that take no dtype.
        var check = GradCheck.Check(a => model.Forward(a[0]).Square().Sum(), [x64]);
        Assert.True(check.Passed, check.Failure);
        Assert.Throws<ArgumentException>(() => model.To(DType.Int32));
    }

    // Without recording, Sequential gives intermediate activations back to the buffer pool as soon as
    // the next layer has read them: the results must not change.
    [Fact]
    public void SequentialWithoutRecording_GivesTheSameResults()
    {
        var g = new Generator(11);
        var model = new Sequential(new Linear(300, 200, generator: g), Activations.ReLU(), new Linear(200, 150, generator: g),
            Activations.Tanh(), new Flatten(), new Linear(150, 10, generator: g));
        var x = Tensor.Randn(new Shape(128, 300), g);          // 128·200 > 16K: pooled buffers
        var expected = model.Forward(x).ToArray<float>();          // recording on: nothing recycled
        float[] again;
        using (Autograd.NoGrad())
        {
            for (int i = 0; i < 3; i++) model.Forward(x);           // churn the pool
            again = model.Forward(x).ToArray<float>();
        }
        Assert.Equal(expected, again);

    }

    // The buffer pool's size floor is 16K elements: these activations are all pooled.
    private static Sequential SmallCnn(Generator g) => new(
        new Conv2d(2, 8, 3, padding: 1, generator: g), Activations.ReLU(), new MaxPool2d(2),
        new Flatten(), new Linear(8 * 16 * 16, 10, generator: g));

    // With recording on, Sequential marks the activations between its layers, and Backward recycles
    // them when it frees the graph; it also fuses the Conv2d and the ReLU. The gradients must be those
    // of the same layers run one by one (nothing recycled or fused), bit for bit; the result must stay
    // readable, and an activation reached through the graph afterwards must refuse to be read rather
    // than show another tensor's numbers.
    [Fact]
    public void SequentialTraining_RecyclesActivationsAfterBackward_WithUnchangedGradients()
    {
        var model = SmallCnn(new Generator(5));
        var x = Tensor.Randn(new Shape(16, 2, 32, 32), new Generator(6));
        var y = Tensor.Randint(0, 10, new Shape(16), new Generator(7));

        var h = x;
        foreach (var (_, layer) in model.NamedChildren()) h = layer.Forward(h);
        Losses.CrossEntropy(h, y).Backward();
        var expected = model.Parameters().Select(p => p.Grad!.ToArray<float>()).ToList();
        model.ZeroGrad();

        for (int step = 0; step < 3; step++)
        {
            model.ZeroGrad();
            var logits = model.Forward(x);
            var relu = logits.GradFn!.Inputs[0].GradFn!.Inputs[0].GradFn!.Inputs[0];   // linear ← flatten ← maxpool ← conv+relu
            Assert.Equal("conv2d_relu", relu.GradFn!.Op);                                // fused: Sequential saw Conv2d, ReLU
            var before = logits.ToArray<float>();
            Losses.CrossEntropy(logits, y).Backward();
            Assert.Equal(before, logits.ToArray<float>());
            var e = Assert.Throws<InvalidOperationException>(() => relu.ToArray<float>());
            Assert.Contains("recycled", e.Message);
            Assert.Equal(expected, model.Parameters().Select(p => p.Grad!.ToArray<float>()).ToList());
        }
    }

    // A forward hook can keep what it sees; so can a caller who keeps the graph: neither may be recycled.
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void HookedActivationsAndRetainedGraphs_AreNeverRecycled(bool recording)
    {
        var model = SmallCnn(new Generator(8));
        var x = Tensor.Randn(new Shape(16, 2, 32, 32), new Generator(9));
        Tensor? seen = null;
        using var hook = model[1].RegisterForwardHook((_, _, output) => seen = output);
        using (recording ? Autograd.EnableGrad() : Autograd.NoGrad())
        {
            var logits = model.Forward(x);
            if (recording) logits.Sum().Backward();
        }
        var copy = seen!.ToArray<float>();
        using (Autograd.NoGrad()) for (int i = 0; i < 3; i++) model.Forward(x);   // churn the pool
        Assert.Equal(copy, seen.ToArray<float>());

        hook.Dispose();
        var out2 = model.Forward(x);
        var pool = out2.GradFn!.Inputs[0].GradFn!.Inputs[0];
        var pooled = pool.ToArray<float>();
        out2.Sum().Backward(retainGraph: true);
        using (Autograd.NoGrad()) for (int i = 0; i < 3; i++) model.Forward(x);
        Assert.Equal(pooled, pool.ToArray<float>());
        out2.Sum().Backward();                                                     // the graph is still there
    }

    [Fact]
    public void ForwardHook_SeesInputAndOutput()
    {
        var m = new Sequential(new Linear(4, 3), Activations.ReLU());
        Tensor? seen = null;
        using (m[1].RegisterForwardHook((_, _, output) => seen = output)) m.Forward(X(2, 4));
        Assert.NotNull(seen);
        Assert.True(seen!.Min().Item() >= 0);
    }

    [Fact]
    public void Init_Schemes_HaveTheDocumentedSpread()
    {
        var g = new Generator(3);
        double Std(Tensor t) => t.Std().Item();
        // 131,072 samples: the sample standard deviation is within 1% of the true one
        void Near(double expected, double actual) => Assert.InRange(actual, expected * 0.99, expected * 1.01);
        var w = Tensor.Zeros(512, 256);
        Near(Math.Sqrt(2.0 / 256), Std(Init.KaimingNormal(w, Init.Gain("relu"), FanMode.FanIn, g)));
        Near(Math.Sqrt(2.0 / 512), Std(Init.KaimingNormal(w, Init.Gain("relu"), FanMode.FanOut, g)));
        Near(Math.Sqrt(2.0 / (256 + 512)), Std(Init.XavierNormal(w, 1, g)));
        Near(Math.Sqrt(2.0 / (256 + 512)), Std(Init.XavierUniform(w, 1, g)));   // U(±a) has std a/√3
        Near(1 / Math.Sqrt(256), Std(Init.LeCunNormal(w, g)));
        Near(1 / Math.Sqrt(256), Std(Init.LeCunUniform(w, g)));
        Near(0.05, Std(Init.Apply(InitScheme.Normal, w, g, scale: 0.05)));
        Near(0.05 / Math.Sqrt(3), Std(Init.Apply(InitScheme.Uniform, w, g, scale: 0.05)));
        var conv = Tensor.Zeros(64, 32, 3, 3);
        Assert.Equal((32 * 9, 64 * 9), Init.Fans(conv));
    }
}

public class InitAndTrainerInputCheckTests
{
    [Fact]
    public void RandomDraws_RefuseAReversedIntervalANegativeStdAndIntegerTypes()
    {
        Assert.Contains("low ≤ high", Assert.Throws<ArgumentException>(() => Tensor.Rand(new Shape(3), new Generator(0), 1, 0)).Message);
        Assert.Contains("std -1", Assert.Throws<ArgumentException>(() => Tensor.Randn(new Shape(3), new Generator(0), 0, -1)).Message);
        Assert.Contains("int32", Assert.Throws<ArgumentException>(() => Tensor.Randn(new Shape(3), new Generator(0), dtype: DType.Int32)).Message);
        Assert.Equal(new float[] { 0.5f, 0.5f }, Tensor.Rand(new Shape(2), new Generator(0), 0.5, 0.5).ToFloatArray());   // an empty interval is a constant
        Assert.Equal(new float[] { 2, 2 }, Tensor.Randn(new Shape(2), new Generator(0), 2, 0).ToFloatArray());
    }

    [Fact]
    public void Init_RefusesAnEmptyFanAndANegativeGain_NamingTheScheme()
    {
        Assert.Contains("Init.KaimingNormal: the weight (3, 0) has fan_in 0", Assert.Throws<ArgumentException>(() => Init.KaimingNormal(Tensor.Zeros(3, 0))).Message);
        Assert.Contains("Init.XavierUniform: the gain", Assert.Throws<ArgumentOutOfRangeException>(() => Init.XavierUniform(Tensor.Zeros(3, 3), -1)).Message);
    }

    [Fact]
    public void Fit_RefusesAnOptimizerOfAnotherModel_NegativeEpochs_AndALoaderWithNoBatch()
    {
        var g = new Generator(7);
        var model = new Linear(4, 3, generator: g);
        var data = new Data.TensorDataset(Tensor.Rand(new Shape(6, 4), g), Tensor.FromArray(new[] { 0, 1, 2, 0, 1, 2 }));
        var loader = new Data.DataLoader(data, 4);
        var before = model.Weight.ToFloatArray();
        var other = new Optim.Sgd(new Linear(4, 3, generator: g).Parameters(), 0.1);
        Assert.Contains("none of the model's parameters", Assert.Throws<ArgumentException>(() => Trainer.Fit(model, other, loader, 1)).Message);
        var own = new Optim.Sgd(model.Parameters(), 0.1);
        Assert.Throws<ArgumentOutOfRangeException>(() => Trainer.Fit(model, own, loader, -1));
        Assert.Contains("yields no batch", Assert.Throws<ArgumentException>(() => Trainer.Fit(model, own, new Data.DataLoader(data, 8, dropLast: true), 1)).Message);
        Assert.Equal(before, model.Weight.ToFloatArray());
        Assert.Contains("empty", Assert.Throws<ArgumentException>(() => Trainer.Evaluate(model, Data.Dataset.Take(data, 0))).Message);
        Assert.Contains("empty", Assert.Throws<ArgumentException>(() => TensorStats.Of(Tensor.Zeros(new Shape(0)))).Message);
    }
}

public class SharedParameterTests
{
    [Fact]
    public void AModuleUsedTwice_ListsItsParametersOnce_TrainsAtTheGivenRate_AndItsStateDictKeepsEveryName()
    {
        var g = new Generator(8);
        var shared = new Linear(3, 3, generator: g);
        var model = new Sequential(shared, Activations.Tanh(), shared);
        Assert.Equal(2, model.Parameters().Count);
        Assert.Equal(12, model.ParameterCount());
        Assert.Equal(["0.weight", "0.bias"], model.NamedParameters().Select(p => p.Name));
        // Before, both copies went to the optimizer, which refused them; stepped twice they would move at twice the rate.
        var opt = new Optim.Sgd(model.Parameters(), 0.1);
        var x = Tensor.Rand(new Shape(4, 3), g);
        var before = shared.Weight.ToFloatArray();
        var loss = model.Forward(x).Square().Sum();
        loss.Backward();
        var grad = shared.Weight.Grad!.ToFloatArray();
        opt.Step();
        var after = shared.Weight.ToFloatArray();
        for (int i = 0; i < after.Length; i++) Assert.Equal(before[i] - 0.1f * grad[i], after[i], 6);
        var state = model.StateDict();
        Assert.Equal(["0.bias", "0.weight", "2.bias", "2.weight"], state.Keys.Order());
        var twin = new Linear(3, 3, generator: new Generator(9));
        var copy = new Sequential(twin, Activations.Tanh(), twin);
        copy.LoadStateDict(state);
        Assert.Equal(after, twin.Weight.ToFloatArray());
    }

    [Fact]
    public void AnOptimizerGivenAParameterTwice_SaysWhereTheSecondOneIs()
    {
        var w = Tensor.Ones(2, 2).RequiresGrad_();
        var e = Assert.Throws<ArgumentException>(() => new Optim.Adam([w, Tensor.Ones(3).RequiresGrad_(), w], 1e-3));
        Assert.Contains("Adam: parameter 2 of group 0 (shape (2, 2)) is already in the optimizer", e.Message);
    }
}

public class LayerInputCheckTests
{
    [Fact]
    public void Linear_AndEmbedding_NameThemselvesForBadSizes_AndEmbeddingForAnIdOutsideItsTable()
    {
        Assert.Contains("Linear: features must be non-negative", Assert.Throws<ArgumentOutOfRangeException>(() => new Linear(3, -2)).Message);
        Assert.Contains("Embedding: the table needs at least one row", Assert.Throws<ArgumentOutOfRangeException>(() => new Embedding(0, 2)).Message);
        var e = Assert.Throws<IndexOutOfRangeException>(() => new Embedding(3, 2, new Generator(1)).Forward(Tensor.FromArray(new[] { 1, 5 })));
        Assert.StartsWith("embedding: index 5 is out of range for axis 0 of size 3", e.Message);
        Assert.Throws<ArgumentNullException>(() => new Linear(3, 2).Forward(null!));
    }
}
