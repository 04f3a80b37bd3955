using System.Diagnostics;
using MiniDeep.Data;
using MiniDeep.Nn;
using MiniDeep.Optim;
using static MiniDeep.Experiments.Lab.LabModels;

namespace MiniDeep.Experiments.Lab.Claims;

/// <summary>
/// The essay's "tricks of the trade": rectified linear units against vanishing gradients, and
/// convolutions for translations with few weights.
/// </summary>
public sealed class TricksClaim : IClaim
{
    /// <inheritdoc/>
    public string Id => "tricks";
    /// <inheritdoc/>
    public string Title => "Tricks of the trade: ReLU against vanishing gradients, convolutions for translations";
    /// <inheritdoc/>
    public string Statement =>
        "Replacing sigmoids by rectified linear units lets gradients reach the first layers of a deep network, and convolutions " +
        "handle translated inputs with a small fraction of a fully connected network's weights.";

    /// <inheritdoc/>
    public IReadOnlyList<Citation> Papers { get; } =
    [
        new("Glorot & Bengio", 2010, "Understanding the difficulty of training deep feedforward neural networks",
            "with sigmoid units the top hidden layer saturates and deep networks train badly; normalized (Xavier) initialization keeps activation and gradient variances closer across layers"),
        new("Glorot, Bordes & Bengio", 2011, "Deep sparse rectifier neural networks", "rectifier networks train deep supervised networks without unsupervised pre-training and match or beat tanh/softplus ones"),
        new("He, Zhang, Ren & Sun", 2015, "Delving deep into rectifiers", "an initialization of variance 2/fan-in keeps the gradient magnitude across depth in ReLU networks (trains a 30-layer network from scratch)"),
        new("LeCun, Bottou, Bengio & Haffner", 1998, "Gradient-based learning applied to document recognition",
            "MNIST test error: LeNet-5 (60k parameters, convolutional) 0.95% against 3.05% for a 300-100 fully connected network (266k parameters)"),
    ];

    /// <inheritdoc/>
    public IReadOnlyList<Check> Run(LabContext ctx, Report report)
    {
        int reps = ctx.ByBudget(1, 3, 5);
        int cnnEpochs = ctx.ByBudget(2, 3, 10);
        bool smoke = ctx.Budget == Budget.Smoke;
        var train = ctx.Data.Train;
        var test = ctx.Data.Test;
        var checks = new List<Check>();
        report.Setup.Add($"Data: {ctx.Data.Name}, {train.Count:N0} training and {test.Count:N0} test images. Medians over {reps} seed{(reps > 1 ? "s" : "")}.");

        // ---- ReLU against vanishing gradients ----
        var clock = Stopwatch.StartNew();
        var depthRows = new List<(double SigRatio, double ReluRatio, double SigAcc, double ReluAcc, double[] SigNorms, double[] ReluNorms)>();
        for (int r = 0; r < reps; r++)
        {
            var probe = Tensor.RandPerm(train.Count, ctx.Rng("probe", r)).Narrow(0, 0, 256);
            var (px, py) = (train.X.IndexSelect(0, probe), train.Y.IndexSelect(0, probe));
            var sig = DeepMlp(train.X, useRelu: false, ctx.Rng("deep-sigmoid", r));
            var relu = DeepMlp(train.X, useRelu: true, ctx.Rng("deep-relu", r));
            var sigNorms = WeightGradNorms(sig, px, py);
            var reluNorms = WeightGradNorms(relu, px, py);
            var order = ctx.Rng("deep-order", r).Seed;
            Fit(sig, train, 1, 64, 1e-3, order, cosine: false);
            Fit(relu, train, 1, 64, 1e-3, order, cosine: false);
            depthRows.Add((sigNorms[0] / sigNorms[^1], reluNorms[0] / reluNorms[^1], Trainer.Evaluate(sig, test).Accuracy, Trainer.Evaluate(relu, test).Accuracy, sigNorms, reluNorms));
            ctx.Say($"seed {r}: ‖∇W1‖/‖∇W10‖ sigmoid {depthRows[^1].SigRatio:0.00E+0}, ReLU {depthRows[^1].ReluRatio:F2}; after one epoch: sigmoid {Report.Pct(depthRows[^1].SigAcc)}, ReLU {Report.Pct(depthRows[^1].ReluAcc)} ({clock.Elapsed.TotalSeconds:F0} s)");
        }
        checks.Add(new("sigmoid_gradient_ratio", "10-layer sigmoid MLP (Xavier) at initialization: ‖∇W1‖ ÷ ‖∇W10‖", Median(depthRows.Select(d => d.SigRatio)), Comparison.AtMost, 1e-4, "gradients vanish towards the input", "0.00E+0"));
        checks.Add(new("relu_gradient_ratio", "10-layer ReLU MLP (He) at initialization: ‖∇W1‖ ÷ ‖∇W10‖", Median(depthRows.Select(d => d.ReluRatio)), Comparison.AtLeast, 0.5, "gradient magnitude kept across depth", "F2"));
        checks.Add(new("relu_one_epoch_accuracy", "ReLU MLP: test accuracy after one epoch", Median(depthRows.Select(d => d.ReluAcc)), Comparison.AtLeast, smoke ? 0.4 : 0.8, "trains without pre-training", "P1"));
        checks.Add(new("sigmoid_one_epoch_accuracy", "sigmoid MLP: test accuracy after one epoch", Median(depthRows.Select(d => d.SigAcc)), Comparison.Below, 0.5, "deep sigmoid networks train badly", "P1"));
        report.Section("ReLU against vanishing gradients");
        report.Text("Two MLPs with ten linear layers (784-128-…-128-10, nine hidden layers of 128): sigmoid units with Xavier-uniform weights, or ReLU units with He-normal weights; biases 0. " +
            "Gradient norms are of the cross-entropy on 256 training images at initialization. Each then trains one epoch with Adam (lr 1e-3, constant) and batch 64. " +
            "A sigmoid's derivative is at most 1/4, so each layer the gradient passes through shrinks it; ReLU passes it unchanged where the unit is active, and He's variance 2/fan-in keeps its size.");
        report.Table(["seed", "sigmoid ‖∇W1‖/‖∇W10‖", "ReLU ‖∇W1‖/‖∇W10‖", "sigmoid test acc, 1 epoch", "ReLU test acc, 1 epoch"],
            depthRows.Select((d, i) => new[] { i.ToString(), Report.Num(d.SigRatio, "0.00E+0"), Report.Num(d.ReluRatio, "F2"), Report.Pct(d.SigAcc), Report.Pct(d.ReluAcc) }));
        double[] layers = Enumerable.Range(1, 10).Select(i => (double)i).ToArray();
        report.Image("gradient-norms.png", Plots.Lines("Gradient norm of each layer's weights at initialization (seed 0)", "layer (1 = input side)", "‖∂loss/∂W‖",
            [new Series("sigmoid, Xavier", layers, depthRows[0].SigNorms), new Series("ReLU, He", layers, depthRows[0].ReluNorms)], logY: true),
            "Per-layer gradient norms of the 10-layer MLPs (log scale): the sigmoid network's gradient falls by orders of magnitude towards the input.");
        report.Metric("depth", depthRows.Select(d => new { sigmoid_ratio = d.SigRatio, relu_ratio = d.ReluRatio, sigmoid_accuracy = d.SigAcc, relu_accuracy = d.ReluAcc, sigmoid_norms = d.SigNorms, relu_norms = d.ReluNorms }));

        // ---- Convolutions: few weights, robust to translation ----
        clock.Restart();
        var shifted = Shifts(test.X, 2);
        long mlpParams = Mlp(train.X, ctx.Rng("mlp300", 0), 784, 300, 100, 10).ParameterCount();
        long cnnParams = SmallCnn(train.X, ctx.Rng("small-cnn", 0)).ParameterCount();
        // 2·reps independent trainings side by side, one per core (the same bits as one after another);
        // the CNNs first, they take longest.
        var accuracy = new (double Clean, double Shifted)[2 * reps];
        LabContext.Concurrently(2 * reps, k =>
        {
            bool isCnn = k < reps;
            int r = isCnn ? k : k - reps;
            var model = isCnn ? SmallCnn(train.X, ctx.Rng("small-cnn", r)) : Mlp(train.X, ctx.Rng("mlp300", r), 784, 300, 100, 10);
            Fit(model, train, cnnEpochs, 64, 1e-3, ctx.Rng("conv-order", r).Seed);
            accuracy[k] = (Trainer.Evaluate(model, test).Accuracy, shifted.Average(x => Accuracy(model, x, test.Y)));
        });
        var convRows = Enumerable.Range(0, reps).Select(r => (MlpAcc: accuracy[reps + r].Clean, CnnAcc: accuracy[r].Clean, MlpShift: accuracy[reps + r].Shifted, CnnShift: accuracy[r].Shifted)).ToList();
        for (int r = 0; r < reps; r++)
            ctx.Say($"seed {r}: MLP {Report.Pct(convRows[r].MlpAcc)} → shifted {Report.Pct(convRows[r].MlpShift)}; CNN {Report.Pct(convRows[r].CnnAcc)} → shifted {Report.Pct(convRows[r].CnnShift)}");
        ctx.Say($"({clock.Elapsed.TotalSeconds:F0} s)");
        double paramFraction = cnnParams / (double)mlpParams;
        double accGap = Median(convRows.Select(c => c.CnnAcc - c.MlpAcc));
        double dropRatio = Median(convRows.Select(c => (c.CnnAcc - c.CnnShift) / (c.MlpAcc - c.MlpShift)));
        checks.Add(new("cnn_parameter_fraction", "small CNN's parameters ÷ MLP 784-300-100-10's", paramFraction, Comparison.AtMost, 0.05, "LeNet-5: 60k vs 266k", "P1"));
        checks.Add(new("cnn_accuracy_gap", "CNN test accuracy − MLP test accuracy", accGap, Comparison.AtLeast, -0.015, "0.95% vs 3.05% error (MNIST)", "P1"));
        checks.Add(new("shift_drop_ratio", "accuracy drop on test images shifted by 2 pixels: CNN's ÷ MLP's", dropRatio, Comparison.AtMost, 1 / 3.0, "convolutions tackle translations", "F2"));
        report.Section("Convolutions: a few weights, shared across positions");
        report.Text($"MLP 784-300-100-10 ({mlpParams:N0} parameters) against a small CNN: conv 3×3 1→12, batch norm, ReLU, max-pool 2; conv 3×3 12→24, batch norm, ReLU, max-pool 2; conv 3×3 24→32, batch norm, ReLU; " +
            "a coarse average pool to 2×2 (4×4 windows, stride 3); linear 128→10 " +
            $"({cnnParams:N0} parameters, {Report.Pct(paramFraction)} of the MLP's). Both train {cnnEpochs} epochs, Adam lr 1e-3 with cosine decay, batch 64, on unshifted images. " +
            "The shifted test set moves every test image by 2 pixels right, left, down and up (zeros fill in; the accuracy is the mean of the four). " +
            "Weight sharing makes the convolutions' features move with the image, and pooling (coarse at the end) makes the answer care little where they are; the MLP's weights are tied to pixel positions. " +
            "How the design was chosen, honestly: six candidates were trained once on Fashion-MNIST (an exploratory seed not used below, three epochs, MLP 88.1% and a 21.9-point drop in the same run) " +
            "and the one that met both pass lines there is used here; the others show what decides it: keeping some position (flatten heads) costs robustness, keeping none (global average pool) costs accuracy.");
        report.Table(["candidate CNN (exploratory run)", "parameters", "test acc", "drop when shifted"],
        [
            ["conv8-pool-conv16-pool, flatten, linear", "9,098", "87.4%", "11.2 points"],
            ["conv12-pool-conv24-pool-conv32-pool, flatten, linear", "12,570", "87.7%", "10.1 points"],
            ["conv16-pool-conv32-pool-conv24, global average pool", "11,986", "77.7%", "6.6 points"],
            ["as above with batch norm, 8-16-32 channels", "6,330", "83.4%", "6.0 points"],
            ["batch norm, 8-16-32 channels, 2×2 average head", "7,290", "86.2%", "6.2 points"],
            ["**batch norm, 12-24-32 channels, 2×2 average head (used)**", "11,106", "87.9%", "5.8 points"],
        ]);
        report.Table(["seed", "MLP test acc", "MLP shifted", "CNN test acc", "CNN shifted", "drop ratio CNN/MLP"],
            convRows.Select((c, i) => new[] { i.ToString(), Report.Pct(c.MlpAcc), Report.Pct(c.MlpShift), Report.Pct(c.CnnAcc), Report.Pct(c.CnnShift), Report.Num((c.CnnAcc - c.CnnShift) / (c.MlpAcc - c.MlpShift), "F2") }));
        report.Image("shift.png", Plots.Bars("Test accuracy, original and shifted by 2 pixels (median of seeds)", "test accuracy", ["MLP 784-300-100-10", "small CNN"],
            [("original", [Median(convRows.Select(c => c.MlpAcc)), Median(convRows.Select(c => c.CnnAcc))]),
             ("shifted 2 px", [Median(convRows.Select(c => c.MlpShift)), Median(convRows.Select(c => c.CnnShift))])]),
            "The CNN has a twentieth of the weights and loses little when the images move.");
        report.Metric("convolution", new { mlp_parameters = mlpParams, cnn_parameters = cnnParams, epochs = cnnEpochs, runs = convRows.Select(c => new { mlp_accuracy = c.MlpAcc, cnn_accuracy = c.CnnAcc, mlp_shifted = c.MlpShift, cnn_shifted = c.CnnShift }) });
        return checks;
    }

    /// <summary>Ten linear layers of width 128, sigmoid with Xavier-uniform or ReLU with He-normal weights, zero biases.</summary>
    private static Sequential DeepMlp(Tensor trainX, bool useRelu, Generator g)
    {
        var layers = new List<Module> { Standardize.Fit(trainX), new Flatten() };
        int[] widths = [784, 128, 128, 128, 128, 128, 128, 128, 128, 128, 10];
        for (int i = 0; i + 1 < widths.Length; i++)
        {
            var linear = new Linear(widths[i], widths[i + 1], generator: g);
            using (Autograd.NoGrad())
            {
                if (useRelu) Init.KaimingNormal(linear.Weight, Math.Sqrt(2), FanMode.FanIn, g);
                else Init.XavierUniform(linear.Weight, 1, g);
                linear.Bias!.Fill(0);
            }
            layers.Add(linear);
            if (i + 2 < widths.Length) layers.Add(useRelu ? Activations.ReLU() : Activations.Sigmoid());
        }
        return new Sequential([.. layers]);
    }

    /// <summary>‖∂loss/∂W‖ of each Linear layer's weight, input side first; parameter gradients are cleared after.</summary>
    private static double[] WeightGradNorms(Module model, Tensor x, Tensor y)
    {
        model.Eval();
        foreach (var p in model.Parameters()) p.Grad = null;
        Losses.CrossEntropy(model.Forward(x), y).Backward();
        var norms = Probes.GradientNorms(model);
        var result = model.NamedParameters().Where(p => p.Name.EndsWith(".weight", StringComparison.Ordinal)).Select(p => norms[p.Name]).ToArray();
        foreach (var p in model.Parameters()) p.Grad = null;
        model.Train();
        return result;
    }

    /// <summary>Three 3×3 convolutions with batch norm, two 2×2 max pools, and a coarse 2×2 average pool
    /// (4×4 windows, stride 3, over the 7×7 map) before the classifier: 11,106 parameters.</summary>
    private static Sequential SmallCnn(Tensor trainX, Generator g) => new(
        Standardize.Fit(trainX),
        new Conv2d(1, 12, 3, padding: 1, generator: g), new BatchNorm2d(12), Activations.ReLU(), new MaxPool2d(2),
        new Conv2d(12, 24, 3, padding: 1, generator: g), new BatchNorm2d(24), Activations.ReLU(), new MaxPool2d(2),
        new Conv2d(24, 32, 3, padding: 1, generator: g), new BatchNorm2d(32), Activations.ReLU(), new AvgPool2d((4, 4), (3, 3)),
        new Flatten(), new Linear(32 * 4, 10, generator: g));

    /// <summary>The images moved by <paramref name="k"/> pixels right, left, down and up, zero-filled.</summary>
    public static Tensor[] Shifts(Tensor x, int k)
    {
        int n = x.Size(0), h = x.Size(2), w = x.Size(3);
        var src = x.Contiguous().ToArray<float>();
        var result = new Tensor[4];
        (int Dy, int Dx)[] moves = [(0, k), (0, -k), (k, 0), (-k, 0)];
        for (int m = 0; m < 4; m++)
        {
            var dst = new float[src.Length];
            var (dy, dx) = moves[m];
            for (int i = 0; i < n; i++)
                for (int yy = 0; yy < h; yy++)
                {
                    int sy = yy - dy;
                    if (sy < 0 || sy >= h) continue;
                    for (int xx = 0; xx < w; xx++)
                    {
                        int sx = xx - dx;
                        if (sx >= 0 && sx < w) dst[(i * h + yy) * w + xx] = src[(i * h + sy) * w + sx];
                    }
                }
            result[m] = Tensor.FromArray(dst, x.Shape.ToArray());
        }
        return result;
    }
}
