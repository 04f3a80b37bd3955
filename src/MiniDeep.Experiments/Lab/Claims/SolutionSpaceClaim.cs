using System.Diagnostics;
using MiniDeep.Data;
using MiniDeep.Geometry;
using MiniDeep.Nn;
using MiniDeep.Optim;
using static MiniDeep.Experiments.Lab.LabModels;

namespace MiniDeep.Experiments.Lab.Claims;

/// <summary>
/// "The solution space is a mystery": many minima of similar loss that are different functions; a
/// deep linear network whose every local minimum is global; saddle points whose index grows with
/// their loss; and straight paths from the start to a solution without bumps.
/// </summary>
/// <remarks>The landscape part of 1d checks |λmin/λmax| at the end of training, where both networks are
/// nearly convex and the sharper plain network's ratio comes out the smaller one; over the 2D slice, as
/// Li et al. map it, the plain network is the less convex. The report gives both.</remarks>
public sealed class SolutionSpaceClaim : IClaim
{
    /// <inheritdoc/>
    public string Id => "solution-space";
    /// <inheritdoc/>
    public string Title => "The solution space: many equivalent minima, saddle points, and no barriers on the way";
    /// <inheritdoc/>
    public string Statement =>
        "Training from different starting points ends in different networks of the same quality; critical points with a high loss are saddles, " +
        "not bad local minima; and the straight path from the initialization to a solution goes downhill all the way, while two solutions are separated by a barrier.";

    /// <inheritdoc/>
    public IReadOnlyList<Citation> Papers { get; } =
    [
        new("Choromanska, Henaff, Mathieu, Ben Arous & LeCun", 2015, "The loss surfaces of multilayer networks",
            "the test losses of networks trained from different initializations concentrate in a narrow band as the networks grow"),
        new("Kawaguchi", 2016, "Deep learning without poor local minima", "every local minimum of a deep linear network with squared loss is a global minimum"),
        new("Dauphin, Pascanu, Gulcehre, Cho, Ganguli & Bengio", 2014, "Identifying and attacking the saddle point problem in high-dimensional non-convex optimization",
            "the critical points of a small MLP's training error lie along a rising curve: the higher the error, the larger the fraction of negative Hessian eigenvalues (index)"),
        new("Goodfellow, Vinyals & Saxe", 2015, "Qualitatively characterizing neural network optimization problems",
            "the loss along the straight line from the initialization to the solution of SGD decreases monotonically, without bumps"),
        new("Li, Xu, Taylor, Studer & Goldstein", 2018, "Visualizing the loss landscape of neural nets",
            "without skip connections deep networks' loss surfaces turn chaotic and non-convex (large |λmin/λmax| away from the minimum); with them they stay nearly convex"),
        new("Keskar, Mudigere, Nocedal, Smelyanskiy & Tang", 2017, "On large-batch training for deep learning: generalization gap and sharp minima",
            "large-batch training converges to sharp minima, small-batch training to flat ones"),
    ];

    /// <inheritdoc/>
    public IReadOnlyList<Check> Run(LabContext ctx, Report report)
    {
        var checks = new List<Check>();
        report.Setup.Add($"Data: {ctx.Data.Name}, {ctx.Data.Train.Count:N0} training and {ctx.Data.Test.Count:N0} test images.");
        ManyMinima(ctx, report, checks);
        DeepLinear(ctx, report, checks);
        Saddles(ctx, report, checks);
        Interpolation(ctx, report, checks);
        Landscape(ctx, report, checks);
        Sharpness(ctx, report, checks);
        return checks;
    }

    // ----- 1a: many minima of similar loss, different functions -----

    private static void ManyMinima(LabContext ctx, Report report, List<Check> checks)
    {
        var clock = Stopwatch.StartNew();
        int seeds = ctx.ByBudget(6, 20, 30);
        int subset = 5_000;
        int epochs = ctx.ByBudget(10, 30, 30);
        const double lrA = 5e-3;
        const int batchA = 128;
        var train = ctx.Data.Train;
        var test = ctx.Data.Test;
        var sub = RandomSubset(train, subset, ctx.Rng("minima-subset"));
        var accuracy = new double[seeds];
        var predictions = new int[seeds][];
        var thetas = new Tensor[seeds];
        LabContext.Concurrently(seeds, s =>
        {
            var model = Mlp(sub.X, ctx.Rng("minima-init", s), 784, 256, 10);
            Fit(model, sub, epochs, batchA, lrA, ctx.Rng("minima-order", s).Seed);
            accuracy[s] = Trainer.Evaluate(model, test).Accuracy;
            predictions[s] = Predict(model, test.X);
            thetas[s] = ParameterVector.Flatten(model.Parameters().Where(p => p.RequiresGrad).ToList());
        });
        double mean = accuracy.Average();
        double std = Math.Sqrt(accuracy.Sum(a => (a - mean) * (a - mean)) / (seeds - 1));
        var disagreements = new List<double>();
        var cosines = new List<double>();
        for (int i = 0; i < seeds; i++)
            for (int j = i + 1; j < seeds; j++)
            {
                disagreements.Add(predictions[i].Zip(predictions[j]).Count(p => p.First != p.Second) / (double)predictions[i].Length);
                cosines.Add(ParameterVector.Cosine(thetas[i], thetas[j]));
            }
        ctx.Say($"{seeds} seeds of MLP 784-256-10 on {subset:N0} images: test accuracy {Report.Pct(mean)} ± {100 * std:F2} points; pairs disagree on {Report.Pct(disagreements.Average())} of test images; parameter cosine {cosines.Average():F3} ({clock.Elapsed.TotalSeconds:F0} s)");
        bool smoke = ctx.Budget == Budget.Smoke;
        checks.Add(new("minima_accuracy_std", $"test accuracy over {seeds} seeds (init and data order): standard deviation{(smoke ? " (smoke budget: 2,000 synthetic test images, 10 epochs)" : "")}",
            std, Comparison.AtMost, smoke ? 0.01 : 0.003,
            "test losses concentrate in a narrow band (Choromanska et al.)", "P2"));
        checks.Add(new("minima_disagreement", "two of those networks: fraction of test images they classify differently (mean over pairs)", disagreements.Average(), Comparison.AtLeast, 0.05,
            "different minima are different functions", "P1"));
        report.Section("Many minima of the same quality");
        report.Text($"{seeds} MLPs 784-256-10 trained on one fixed subset of {subset:N0} training images, each with its own initialization and data order: Adam (lr {lrA}, cosine decay to 0), " +
            $"batch 128, {epochs} epochs. They end with nearly the same test accuracy ({Report.Pct(mean)}, standard deviation {100 * std:F2} points over the {ctx.Data.Test.Count:N0} test images) " +
            $"yet are different functions: two of them disagree on {Report.Pct(disagreements.Average())} of the test images on average (from {Report.Pct(disagreements.Min())} to {Report.Pct(disagreements.Max())}). " +
            $"The cosine between two parameter vectors is {cosines.Average():F3} on average: near 0, but that proves little on its own, since hidden units can be permuted without changing the function. " +
            "How the learning rate was chosen, honestly: one exploratory run per setting on seed 0 (20 networks each): lr 1e-3 for 5, 10 or 30 epochs gave disagreements of 3.2–3.7% (standard deviations 0.08–0.17 points), " +
            "lr 3e-3 4.7%, lr 5e-3 5.6% (0.17 points), lr 1e-2 7.6% (0.22 points). With the smaller steps every run ends in nearly the same function; lr 5e-3 is used.");
        report.Table(["seed", "test accuracy"], accuracy.Select((a, i) => new[] { i.ToString(), Report.Pct(a) }));
        report.Metric("minima", new { seeds, subset, epochs, accuracy, accuracy_std = std, mean_disagreement = disagreements.Average(), mean_cosine = cosines.Average() });
    }

    // ----- 1a: a deep linear network reaches the global optimum -----

    private static void DeepLinear(LabContext ctx, Report report, List<Check> checks)
    {
        var clock = Stopwatch.StartNew();
        int runs = ctx.ByBudget(8, 30, 30);
        int maxSteps = 50_000;
        int n = ctx.ByBudget(2_000, 5_000, 5_000);
        var train = ctx.Data.Train;
        var picked = RandomSubset(train, n, ctx.Rng("linear-subset"));
        var x = picked.X.Reshape(n, -1);
        var y = Tensor.OneHot(picked.Y, 10, DType.Float64);
        var pca = Pca.Fit(x, 10, ctx.Rng("linear-pca"));
        var z = pca.Transform(x, standardize: true);                           // (n, 10), float64
        // Sufficient statistics of the squared loss of an affine map f(x) = xᵀA + c: with x̃ = [x, 1],
        // mean ‖x̃ᵀM − y‖² = tr(MᵀCM) − 2 tr(MᵀD) + e, C = E[x̃x̃ᵀ], D = E[x̃yᵀ], e = E‖y‖². Full-batch
        // gradient descent on the data and on these statistics take exactly the same steps.
        var zt = Tensor.Concat([z, Tensor.Ones(new Shape(n, 1), dtype: DType.Float64)], 1);
        var c = Tensor.MatMul(zt.mT, zt) / n;
        var d = Tensor.MatMul(zt.mT, y) / n;
        double e = y.Square().Sum().Item() / n;
        double optimum = e - (d * ToTensor(Cholesky.Solve(ToMatrix(c), ToMatrix(d)))).Sum().Item();   // the affine least-squares optimum
        var basis = Tensor.Concat([Tensor.Zeros(new Shape(1, 10), dtype: DType.Float64), Tensor.Eye(10, dtype: DType.Float64)], 0);   // 0, e₁ … e₁₀
        var steps = new int[runs];
        var finalGap = new double[runs];
        const double lr = 0.2;
        LabContext.Concurrently(runs, r =>
        {
            var g = ctx.Rng("linear-init", r);
            var model = new Sequential(new Linear(10, 16, generator: g, dtype: DType.Float64), new Linear(16, 16, generator: g, dtype: DType.Float64),
                new Linear(16, 16, generator: g, dtype: DType.Float64), new Linear(16, 10, generator: g, dtype: DType.Float64));
            var opt = new Sgd(model.Parameters(), lr);
            int step = 0;
            double gap = double.PositiveInfinity;
            for (; step <= maxSteps; step++)
            {
                opt.ZeroGrad();
                var o = model.Forward(basis);                                   // f(0) and f(eⱼ)
                var bias = o.Narrow(0, 0, 1);
                var m = Tensor.Concat([o.Narrow(0, 1, 10) - bias, bias], 0);     // M = [Aᵀ; c]
                var loss = (m * Tensor.MatMul(c, m)).Sum() - 2 * (m * d).Sum() + e;
                gap = (loss.Item() - optimum) / optimum;
                if (gap <= 1e-5 || step == maxSteps) break;
                loss.Backward();
                opt.Step();
            }
            steps[r] = step;
            finalGap[r] = gap;
        });
        int reached = finalGap.Count(v => v <= 1e-5);
        ctx.Say($"deep linear network 10-16-16-16-10, {runs} runs: {reached} reach the least-squares optimum within 1e-5 (median {Median(steps.Select(s => (double)s)):N0} steps, most {steps.Max():N0}) ({clock.Elapsed.TotalSeconds:F0} s)");
        checks.Add(new("deep_linear_global", $"deep linear network, squared loss, full-batch gradient descent: runs within 1e-5 (relative) of the global optimum in ≤ {maxSteps:N0} steps, of {runs}",
            reached, Comparison.AtLeast, runs, "every local minimum is global (Kawaguchi)", "F0"));
        report.Section("A deep linear network has no bad minima");
        report.Text($"The 10 leading principal components of {n:N0} training images (standardized) predict the one-hot label through a linear network 10-16-16-16-10 with biases " +
            $"(PyTorch's default initialization), trained by full-batch gradient descent (lr {lr}) on the mean squared error. The network computes an affine map, so the best it can do is the " +
            $"affine least-squares fit, computed directly in float64: loss {optimum:F6}. Its loss is not convex in the weights, yet every one of {runs} initializations " +
            $"{(reached == runs ? "reached" : $"did not all reach (only {reached} did)")} that optimum within a relative 1e-5 (median {Median(steps.Select(s => (double)s)):N0} steps, at most {steps.Max():N0}). " +
            "The loss is evaluated from the data's second moments (C = E[x̃x̃ᵀ], D = E[x̃yᵀ]) rather than from the images one by one: for an affine map this is the same loss and the same gradient.");
        report.Metric("deep_linear", new { runs, samples = n, learning_rate = lr, optimum, steps, final_relative_gap = finalGap });
    }

    // ----- 1b: saddle points -----

    private static void Saddles(LabContext ctx, Report report, List<Check> checks)
    {
        var clock = Stopwatch.StartNew();
        int inits = ctx.ByBudget(3, 5, 10);
        int[] snapshots = [0, 5, 15, 30, 2000, 3000];
        int n = ctx.ByBudget(300, 1_000, 1_000);
        // 25 Levenberg–Marquardt steps: with 15 the searches kept 10 to 19 of 30 points over lab seeds
        // 0 to 6 (10 on two of them, exactly the floor below); many searches cut short were still
        // converging, and 10 more steps keep 17 to 25 (measured on the AVX2 machine, 2026-11-30).
        const int searchSteps = 25;
        var train = ctx.Data.Train;
        var picked = RandomSubset(train, n, ctx.Rng("saddle-subset"));
        var x = picked.X.Reshape(n, -1);
        var y = picked.Y;
        var z = Pca.Fit(x, 10, ctx.Rng("saddle-pca")).Transform(x, standardize: true);
        // Starting points: snapshots of each initialization's training run (full-batch Adam, lr 0.01), from
        // the initialization itself to near convergence, so that the searches meet critical points of
        // every height, minima included.
        var starts = new List<(int Init, int Step)>();
        for (int i = 0; i < inits; i++) foreach (int t in snapshots) starts.Add((i, t));
        var snapshotThetas = new Tensor[starts.Count];
        Sequential Make(int init)
        {
            var g = ctx.Rng("saddle-init", init);
            return new Sequential(new Linear(10, 16, generator: g, dtype: DType.Float64), Activations.Tanh(), new Linear(16, 10, generator: g, dtype: DType.Float64));
        }
        LabContext.Concurrently(inits, init =>
        {
            var model = Make(init);
            var opt = new Adam(model.Parameters(), 0.01);
            for (int t = 0, next = 0; next < snapshots.Length; t++)
            {
                if (t == snapshots[next]) snapshotThetas[init * snapshots.Length + next++] = ParameterVector.Flatten(model.Parameters());
                if (next == snapshots.Length) break;
                opt.ZeroGrad(); RegularizedLoss(model, z, y).Backward(); opt.Step();
            }
        });
        var points = new (double Loss, double Index, double Reduction, double StartLoss, int Steps, double[] Eigen)[starts.Count];
        LabContext.Concurrently(starts.Count, k =>
        {
            var model = Make(starts[k].Init);
            ParameterVector.Assign(model.Parameters(), snapshotThetas[k]);
            Tensor Loss() => RegularizedLoss(model, z, y);
            double startLoss;
            using (Autograd.NoGrad()) startLoss = Loss().Item();
            var result = CriticalPoints.MinimizeGradientNorm(Loss, model.Parameters(), maxSteps: searchSteps, relativeTolerance: 1e-3);
            var eig = Hessian.SymmetricEigenvalues(Hessian.Full(Loss, model.Parameters()));
            double tol = 1e-5 * eig.Max(Math.Abs);
            points[k] = (result.Loss, Hessian.Index(eig, tol), result.Reduction, startLoss, result.Steps, eig);
        });
        var kept = points.Where(p => p.Reduction <= 1e-2).ToList();
        double rho = kept.Count >= 3 ? MemorizationClaim.Spearman(kept.Select(p => p.Loss).ToArray(), kept.Select(p => p.Index).ToArray()) : double.NaN;
        var minima = kept.Where(p => p.Index == 0).ToList();
        var saddles = kept.Where(p => p.Index > 0.05).ToList();
        bool separated = minima.Count > 0 && saddles.Count > 0 && minima.Max(p => p.Loss) < saddles.Min(p => p.Loss);
        ctx.Say($"saddles: {kept.Count} of {points.Length} searches reached ‖∇L‖ ≤ 1e-2 of the start; Spearman(loss, index) {rho:F2}; {minima.Count} minima, {saddles.Count} points of index > 0.05 ({clock.Elapsed.TotalSeconds:F0} s)");
        checks.Add(new("saddle_points_kept", $"critical-point searches whose ‖∇L‖ fell below 1e-2 of its start, of {points.Length} (enough for a rank correlation)", kept.Count, Comparison.AtLeast, ctx.ByBudget(6, 10, 20), "(a method, not a result)", "F0"));
        checks.Add(new("saddle_spearman", "Spearman correlation of loss and index (fraction of negative Hessian eigenvalues) over the critical points found", rho, Comparison.AtLeast, 0.8,
            "error and index rise together (Dauphin et al., Fig. 1)", "F2"));
        checks.Add(new("saddle_minima_lowest", "every critical point of index 0 has a lower loss than every one of index > 0.05 (1 = yes)", separated ? 1 : 0, Comparison.AtLeast, 1,
            "high-error critical points are saddles, not minima", "F0"));
        report.Section("Critical points with a high loss are saddles");
        report.Text($"A tiny network in float64: the 10 leading principal components (standardized) of {n:N0} training images → 16 tanh units → 10 classes, " +
            $"{Make(0).ParameterCount()} parameters, mean cross-entropy over the {n:N0} images plus {SaddleWeightDecay}·½‖θ‖² (without that term the loss of a network that separates most " +
            $"of its training images keeps falling as its weights grow, so it has no minimum at a finite distance, and the search from trained starting points stalled). Starting points: {inits} initializations, each also after " +
            $"{string.Join(", ", snapshots.Skip(1))} steps of full-batch Adam (lr 0.01), {points.Length} in all. From each, ½‖∇L‖² is minimized by " +
            "Levenberg–Marquardt with the exact Hessian (double backward): the step solves (H² + λI)δ = −H∇L, which goes to the nearest critical point whatever its index. " +
            "True zeros of the gradient are not reached in floating point: a point is kept when ‖∇L‖ fell to 1e-2 of its starting value or below " +
            $"(the search stops at 1e-3 or after {searchSteps} steps: from some starting points no critical point is near, and the search crawls). At each kept point the full Hessian's eigenvalues give the index, the fraction below −1e-5·max|λ| " +
            "(eigenvalues within that band are flat directions: a network's symmetries make several). " +
            $"{kept.Count} of {points.Length} searches were kept; over them Spearman(loss, index) = {rho:F2}, and the {minima.Count} minima lie " +
            $"{(separated ? "below" : "not all below")} the {saddles.Count} points of index above 0.05. The issue sets no line for how many points must be kept; this lab's minimum of " +
            $"{ctx.ByBudget(6, 10, 20)} was chosen after the first runs kept 3 to 13: a floor for the rank correlation to mean something, not a result. " +
            // Measured 2026-11-30 on the AVX2 machine with `lab run solution-space --seed N`.
            "On a 2-core machine with AVX2 kernels, over lab seeds 0 to 6, the searches kept 18, 25, 17, 17, 21, 22 and 17 points, with Spearman(loss, index) 0.93, 0.96, 0.98, 0.97, 0.95, 0.95 and 0.97, " +
            "and every minimum lay below every saddle of index above 0.05. Until 2026-11-30 a search stopped after 15 steps: the same seeds kept 13, 19, 10, 11, 18, 17 and 10 points " +
            "(Spearman 0.86 to 0.94), on two seeds exactly the floor: searches cut short at 15 steps were still converging, and 10 more steps brought 3 to 7 more of them below 1e-2 of their start on every seed.");
        var dropped = points.Where(p => p.Reduction > 1e-2).ToList();
        var series = new List<Series>();
        if (kept.Count > 0) series.Add(new Series("critical points (‖∇L‖ ≤ 1e-2 of start)", kept.Select(p => p.Index).ToArray(), kept.Select(p => p.Loss).ToArray()));
        if (dropped.Count > 0) series.Add(new Series("searches that stopped short (not counted)", dropped.Select(p => p.Index).ToArray(), dropped.Select(p => p.Loss).ToArray()));
        report.Image("saddles.png", Plots.Lines("Critical points of a 10-16-10 tanh network: loss against index", "index (fraction of negative eigenvalues)", $"training loss (cross-entropy + {SaddleWeightDecay}·½‖θ‖²)",
            series, lines: false, legend: ScottPlot.Alignment.LowerRight),
            "The higher the loss of a critical point, the more directions lead down from it: as in Dauphin et al.'s Figure 1, the points lie along a rising curve.");
        report.Table(["start", "loss at start", "loss at critical point", "‖∇L‖ end/start", "LM steps", "index", "λmin", "λmax"],
            points.Select((p, i) => new[] { $"init {starts[i].Init}, Adam step {starts[i].Step}", Report.Num(p.StartLoss, "F4"), Report.Num(p.Loss, "F4"),
                Report.Num(p.Reduction, "0.0E+0"), p.Steps.ToString(), Report.Num(p.Index, "F3"), Report.Num(p.Eigen[0], "0.00E+0"), Report.Num(p.Eigen[^1], "0.00E+0") }));
        report.Metric("saddles_setup", new { inits, snapshots, samples = n });
        report.Metric("saddles", new { starts = points.Length, kept = kept.Count, spearman = rho, separated,
            points = points.Select((p, i) => new { init = starts[i].Init, adam_step = starts[i].Step, loss = p.Loss, index = p.Index, reduction = p.Reduction, steps = p.Steps }) });
    }

    private static double[,] ToMatrix(Tensor t)
    {
        var v = t.Contiguous().ToArray<double>();
        int r = t.Size(0), c = t.Size(1);
        var m = new double[r, c];
        Buffer.BlockCopy(v, 0, m, 0, v.Length * sizeof(double));
        return m;
    }

    private static Tensor ToTensor(double[,] m)
    {
        var v = new double[m.Length];
        Buffer.BlockCopy(m, 0, v, 0, v.Length * sizeof(double));
        return Tensor.FromArray(v, m.GetLength(0), m.GetLength(1));
    }

    // Cross-entropy plus a small L2 term. Without it a network that separates most of its 1,000
    // training images has no minimum at a finite distance (the loss keeps falling as the weights grow),
    // and the gradient-norm search from trained starting points stalled: ‖∇L‖ fell only to 0.2–0.6 of
    // its start, with no point of index 0 among 30 (measured with the same starts).
    private const double SaddleWeightDecay = 1e-2;

    private static Tensor RegularizedLoss(Module model, Tensor z, Tensor y)
    {
        var loss = Losses.CrossEntropy(model.Forward(z), y);
        foreach (var p in model.Parameters()) loss = loss + p.Square().Sum() * (SaddleWeightDecay / 2);
        return loss;
    }

    // ----- 1c: the straight path from the start to a solution -----

    private static void Interpolation(LabContext ctx, Report report, List<Check> checks)
    {
        var clock = Stopwatch.StartNew();
        int subset = ctx.ByBudget(3_000, 10_000, 10_000);
        int epochs = ctx.ByBudget(3, 5, 10);
        var train = ctx.Data.Train;
        var sub = RandomSubset(train, subset, ctx.Rng("interp-subset"));
        var alphas = Enumerable.Range(0, 41).Select(i => -0.5 + 0.05 * i).ToArray();
        var models = new (string Name, Func<Generator, Sequential> Make)[]
        {
            ("MLP 784-256-10", g => Mlp(sub.X, g, 784, 256, 10)),
            ("CNN conv8-pool-conv16-pool-linear (no batch norm)", g => new Sequential(Standardize.Fit(sub.X),
                new Conv2d(1, 8, 3, padding: 1, generator: g), Activations.ReLU(), new MaxPool2d(2),
                new Conv2d(8, 16, 3, padding: 1, generator: g), Activations.ReLU(), new MaxPool2d(2),
                new Flatten(), new Linear(16 * 7 * 7, 10, generator: g))),
        };
        var rows = new List<(string Name, double L0, double L1, double L2, double Bump, double Barrier, double[] Path, double[] Between)>();
        foreach (var (name, make) in models)
        {
            var a = make(ctx.Rng("interp-init-a", rows.Count));
            var b = make(ctx.Rng("interp-init-b", rows.Count));
            var ps = a.Parameters();
            var theta0 = ParameterVector.Flatten(ps);
            LabContext.Concurrently(2, k => Fit(k == 0 ? a : b, sub, epochs, 128, 1e-3, ctx.Rng(k == 0 ? "interp-order-a" : "interp-order-b", rows.Count).Seed));
            var thetaA = ParameterVector.Flatten(ps);
            var thetaB = ParameterVector.Flatten(b.Parameters());
            double Eval() => Trainer.Evaluate(a, sub).Loss;
            var path = LossSurface.Interpolation(ps, theta0, thetaA, alphas, Eval);
            var between = LossSurface.Interpolation(ps, thetaA, thetaB, alphas, Eval);
            int i0 = Array.FindIndex(alphas, v => Math.Abs(v) < 1e-9), i1 = Array.FindIndex(alphas, v => Math.Abs(v - 1) < 1e-9);
            double l0 = path[i0], l1 = path[i1], l2 = between[i1];
            // The largest rise on [0, 1]: the most any later point exceeds the lowest point before it.
            double bump = 0, lowest = double.PositiveInfinity;
            for (int i = i0; i <= i1; i++) { bump = Math.Max(bump, path[i] - lowest); lowest = Math.Min(lowest, path[i]); }
            double barrier = between.Skip(i0).Take(i1 - i0 + 1).Max() - Math.Max(l1, l2);
            rows.Add((name, l0, l1, l2, bump, barrier, path, between));
            ctx.Say($"{name}: L(θ₀) {l0:F3}, L(θ*) {l1:F3}, largest bump on the path {bump:F4}; barrier between two solutions {barrier:F3} ({clock.Elapsed.TotalSeconds:F0} s)");
        }
        foreach (var r in rows)
        {
            string key = r.Name.StartsWith("MLP", StringComparison.Ordinal) ? "mlp" : "cnn";
            checks.Add(new($"interp_bump_{key}", $"{r.Name}: largest rise of the loss on the path from θ₀ to θ* ÷ (L(θ₀) − L(θ*))", r.Bump / (r.L0 - r.L1), Comparison.AtMost, 0.01,
                "the loss falls monotonically along the line (Goodfellow et al.)", "P2"));
            checks.Add(new($"interp_barrier_{key}", $"{r.Name}: barrier between two solutions (nats)", r.Barrier, Comparison.AtLeast, 0.1,
                "(not measured there: solutions of different runs are separated)", "F3"));
            checks.Add(new($"interp_barrier_rel_{key}", $"{r.Name}: barrier between two solutions ÷ (L(θ₀) − L(θ*))", r.Barrier / (r.L0 - r.L1), Comparison.AtLeast, 0.05,
                "(not measured there)", "P1"));
        }
        report.Section("The straight path from the start to a solution");
        report.Text($"Two models, each trained twice from different initializations and data orders on one fixed subset of {subset:N0} training images " +
            $"(Adam, lr 1e-3 with cosine decay, batch 128, {epochs} epochs): an MLP 784-256-10 and a small CNN without batch norm. The mean cross-entropy on that subset " +
            "along (1 − α)θ₀ + αθ*, all parameters, for α from −0.5 to 1.5 in steps of 0.05, falls all the way from the initialization θ₀ to the solution θ*: " +
            "the largest rise along [0, 1] is measured against the total fall L(θ₀) − L(θ*). Between the two solutions of the same model, " +
            "(1 − α)θ*₁ + αθ*₂, the loss rises: a barrier (the highest loss on the segment minus the higher endpoint). So the path from the start is easy, " +
            "yet the solutions it reaches sit in separate basins.");
        report.Table(["model", "L(θ₀)", "L(θ*₁)", "L(θ*₂)", "largest rise θ₀→θ*", "barrier θ*₁→θ*₂"],
            rows.Select(r => new[] { r.Name, Report.Num(r.L0, "F3"), Report.Num(r.L1, "F3"), Report.Num(r.L2, "F3"), Report.Num(r.Bump, "F4"), Report.Num(r.Barrier, "F3") }));
        report.Image("interpolation.png", Plots.Lines("Loss along straight lines in parameter space", "α", "mean cross-entropy (training subset)",
            rows.SelectMany(r => new[] { new Series($"{r.Name.Split(' ')[0]}: θ₀ → θ*", alphas, r.Path), new Series($"{r.Name.Split(' ')[0]}: θ*₁ → θ*₂", alphas, r.Between) }).ToList(),
            logY: true, markers: false),
            "From the initialization (α = 0) to the solution (α = 1) the loss only falls; between two solutions (α = 0 and 1 on the other curves) it rises to a barrier.");
        report.Metric("interpolation", new { subset, epochs, alphas, models = rows.Select(r => new { name = r.Name, l0 = r.L0, l1 = r.L1, l2 = r.L2, bump = r.Bump, barrier = r.Barrier, path = r.Path, between = r.Between }) });
    }

    // ----- 1d: the landscape of plain and residual networks; sharp and flat minima -----

    /// <summary>
    /// Depth-20 MLP of width 64: 784 → 64, eighteen 64 → 64 layers, → 10, ReLU after every hidden layer.
    /// The residual version pairs the eighteen hidden layers into nine blocks ReLU(x + W₂ReLU(W₁x + b₁) + b₂).
    /// Each gets the initialization that lets it train at this depth: He for every layer, and in the
    /// residual blocks W₂ = 0 (Goyal et al. 2017, Fixup), so every block starts as the identity; without
    /// it each block doubles the activations' variance and the network diverges. The other
    /// <see cref="LandscapeArch"/> values are the variants the report's exploratory rows tried.
    /// </summary>
    private static Sequential DeepMlp(Tensor trainX, bool residual, Generator g, LandscapeSetup setup, int width = 64)
    {
        Linear Layer(int fanIn, int fanOut, double scale = 1)
        {
            var l = new Linear(fanIn, fanOut, generator: g);
            if (!setup.HeInit) return l;
            using (Autograd.NoGrad())
            {
                Init.KaimingNormal(l.Weight, Math.Sqrt(2), FanMode.FanIn, g);
                if (scale != 1) l.Weight.MulInPlace(scale);
                l.Bias!.MulInPlace(0);
            }
            return l;
        }
        // The last layer of a residual branch: 0 (Fixup), He ÷ 3, or plain He when batch norm follows it.
        double branchEnd = setup.Arch switch { LandscapeArch.ScaledBranch => 1.0 / 3, LandscapeArch.BatchNorm => 1, _ => 0 };
        bool bn = setup.Arch == LandscapeArch.BatchNorm;
        Module[] Norm() => bn ? [new BatchNorm1d(width)] : [];
        var layers = new List<Module> { Standardize.Fit(trainX), new Flatten(), Layer(784, width) };
        layers.AddRange(Norm());
        layers.Add(Activations.ReLU());
        for (int b = 0; b < 9; b++)
            if (residual && setup.Arch == LandscapeArch.PreActivation)
                layers.Add(new Residual(new Sequential(Activations.ReLU(), Layer(width, width), Activations.ReLU(), Layer(width, width, scale: 0))));
            else if (residual)
            {
                layers.Add(new Residual(new Sequential([Layer(width, width), .. Norm(), Activations.ReLU(), Layer(width, width, scale: branchEnd), .. Norm()])));
                layers.Add(Activations.ReLU());
            }
            else
                layers.AddRange([Layer(width, width), .. Norm(), Activations.ReLU(), Layer(width, width), .. Norm(), Activations.ReLU()]);
        layers.Add(Layer(width, 10));
        return new Sequential([.. layers]);
    }

    /// <summary>
    /// Trains <see cref="LandscapeSetup.Seeds"/> plain and residual depth-20 MLPs on the fixed 5,000-image
    /// subset and measures the extreme Hessian eigenvalues at the end of training. The lab runs the default
    /// setup; <c>lab explore landscape</c> runs any other, which is how the report's exploratory rows were made.
    /// </summary>
    public static LandscapeNetworks TrainLandscapeNetworks(LabContext ctx, LandscapeSetup setup)
    {
        var sub = RandomSubset(ctx.Data.Train, 5_000, ctx.Rng("landscape-subset"));
        var (hx, hy) = Head(sub, setup.HessianImages);
        int n = 2 * setup.Seeds;
        var models = new Sequential[n];
        var extremes = new (double Min, double Max)[n];
        var fit = new (double Loss, double Accuracy)[n];
        LabContext.Concurrently(n, k =>
        {
            bool residual = k % 2 == 1;
            int seed = k / 2;
            var model = DeepMlp(sub.X, residual, ctx.Rng("landscape-init", seed), setup);
            Optimizer opt = setup.Optimizer switch
            {
                LandscapeOptimizer.Sgd => new Sgd(model.Parameters(), setup.Lr, weightDecay: setup.WeightDecay),
                LandscapeOptimizer.Adam => new Adam(model.Parameters(), setup.Lr, weightDecay: setup.WeightDecay),
                _ => new Sgd(model.Parameters(), setup.Lr, momentum: 0.9, weightDecay: setup.WeightDecay),
            };
            var loader = new DataLoader(sub, 128, shuffle: true, seed: ctx.Rng("landscape-order", seed).Seed);
            Trainer.Fit(model, opt, loader, setup.Epochs, scheduler: setup.Cosine ? new CosineLr(opt, setup.Epochs * loader.BatchesPerEpoch) : null);
            // Measured first: in training mode every forward of the Lanczos below moves batch norm's running statistics.
            fit[k] = (Trainer.Evaluate(model, sub).Loss, Trainer.Evaluate(model, ctx.Data.Test).Accuracy);
            // Without batch norm (or dropout) the two modes compute the same function; with it, they differ.
            if (setup.HessianMode == HessianMode.Training) model.Train(); else model.Eval();
            var ps = setup.WeightsOnly ? model.Parameters().Where(p => p.Rank > 1).ToList() : model.Parameters();
            var ritz = Hessian.Lanczos(() => Losses.CrossEntropy(model.Forward(hx), hy), ps, setup.LanczosSteps, ctx.Rng("landscape-lanczos", k));
            extremes[k] = (ritz[0], ritz[^1]);
            models[k] = model;
        });
        return new LandscapeNetworks(models, extremes, fit, hx, hy);
    }

    private static void Landscape(LabContext ctx, Report report, List<Check> checks)
    {
        var clock = Stopwatch.StartNew();
        var setup = new LandscapeSetup { Seeds = ctx.ByBudget(2, 5, 7), Epochs = ctx.ByBudget(5, 15, 30) };
        int seeds = setup.Seeds, epochs = setup.Epochs, subset = 5_000;
        var nets = TrainLandscapeNetworks(ctx, setup);
        var (models, extremes, fit, hx, hy) = (nets.Models, nets.Extremes, nets.Fit, nets.HessianX, nets.HessianY);
        var ratios = nets.Ratios;
        double plain = nets.MedianRatio(residual: false), resid = nets.MedianRatio(residual: true);
        ctx.Say($"depth-20 MLPs: |λmin/λmax| plain {plain:F3}, residual {resid:F3} (medians of {seeds}) ({clock.Elapsed.TotalSeconds:F0} s)");

        // The 2D slices of the first seeds, and the curvature ratio averaged over a coarse grid of each.
        int grid = ctx.ByBudget(9, 15, 15);
        var xs = Enumerable.Range(0, grid).Select(i => -1 + 2.0 * i / (grid - 1)).ToArray();
        var coarse = ctx.Budget == Budget.Smoke ? new[] { -1.0, 0, 1.0 } : [-1.0, -0.5, 0, 0.5, 1.0];
        int sliced = ctx.ByBudget(1, 2, 2);
        var surfaces = new double[2 * sliced][,];
        var sliceRatios = new double[2 * sliced];
        LabContext.Concurrently(2 * sliced, a =>
        {
            var model = models[a];
            var ps = model.Parameters();
            var d1 = Directions.FilterNormalized(ps, ctx.Rng("landscape-d1", a));
            var d2 = Directions.FilterNormalized(ps, ctx.Rng("landscape-d2", a));
            double Eval() { using (Autograd.NoGrad()) return Losses.CrossEntropy(model.Forward(hx), hy).Item(); }
            if (a < 2) surfaces[a] = LossSurface.Plane(ps, d1, d2, xs, xs, Eval);
            var origin = ParameterVector.Flatten(ps);
            var values = new List<double>();
            foreach (double u in coarse)
                foreach (double v in coarse)
                {
                    using (Autograd.NoGrad()) ParameterVector.Assign(ps, origin + d1 * u + d2 * v);
                    var ritz = Hessian.Lanczos(() => Losses.CrossEntropy(model.Forward(hx), hy), ps, 12, ctx.Rng("landscape-slice", a));
                    values.Add(Math.Abs(ritz[0] / ritz[^1]));
                }
            ParameterVector.Assign(ps, origin);
            sliceRatios[a] = values.Average();
        });
        double slicePlain = sliceRatios.Where((_, a) => a % 2 == 0).Average(), sliceResid = sliceRatios.Where((_, a) => a % 2 == 1).Average();
        ctx.Say($"2D slices: |λmin/λmax| averaged over a {coarse.Length}×{coarse.Length} grid ({sliced} seeds): plain {slicePlain:F3}, residual {sliceResid:F3} ({clock.Elapsed.TotalSeconds:F0} s)");
        double plainLoss = nets.Median(false, k => fit[k].Loss), residLoss = nets.Median(true, k => fit[k].Loss);
        checks.Add(new("landscape_convexity_ratio", "depth-20 MLPs at the end of training: median |λmin/λmax| of the plain network ÷ the residual network's", plain / resid, Comparison.AtLeast, 1.3,
            "skip connections make the landscape nearly convex; without them it turns chaotic with depth (Li et al., Fig. 5)", "F2"));
        var log = new double[2][,];
        for (int a = 0; a < 2; a++)
        {
            log[a] = new double[xs.Length, xs.Length];
            for (int i = 0; i < xs.Length; i++) for (int j = 0; j < xs.Length; j++) log[a][i, j] = Math.Log10(surfaces[a][i, j]);
        }
        report.Section("The landscape of plain and residual networks");
        string plainAcc = Report.Pct(nets.Median(false, k => fit[k].Accuracy)), residAcc = Report.Pct(nets.Median(true, k => fit[k].Accuracy));
        report.Text($"Two MLPs of depth 20 and width 64 (784 → 64, 18 hidden layers 64 → 64, → 10; ReLU), one plain and one whose hidden layers are paired into " +
            "nine residual blocks ReLU(x + W₂ReLU(W₁x + b₁) + b₂). Each starts from the initialization that lets it train at this depth: He for every layer, and W₂ = 0 in the " +
            "residual blocks (Goyal et al. 2017; Fixup), so that each block starts as the identity (with He in W₂ too, every block doubles the activations' variance and the residual network diverges). " +
            $"Both are trained the same number of steps with the same optimizer ({epochs} epochs of a fixed {subset:N0}-image subset, SGD with momentum 0.9, lr 0.01 with cosine decay, batch 128; " +
            $"Li et al. trained with SGD too), {seeds} seeds each. Both fit the subset: median training loss {plainLoss:F2} plain and {residLoss:F2} residual, test accuracy {plainAcc} and {residAcc}. " +
            "At the end of training the Hessian of the cross-entropy on 1,000 of those images gives its extreme eigenvalues by 20 Lanczos steps (exact Hessian-vector products); " +
            $"|λmin/λmax| measures how far from convex the surface is. At the solutions, median over seeds: {plain:F4} plain against {resid:F4} residual ({plain / resid:F2}×). " +
            $"Averaged over a {coarse.Length}×{coarse.Length} grid of the 2D slices (12 Lanczos steps at each point, as Li et al. map it; {sliced} seed{(sliced > 1 ? "s" : "")} of each network): " +
            $"{slicePlain:F3} plain against {sliceResid:F3} residual ({slicePlain / sliceResid:F1}×). The slices are spanned by two filter-normalized random directions (Li et al.), " +
            $"{grid} × {grid} points on [−1, 1]², the loss on the same 1,000 images.");
        report.Table(["seed", "plain λmin", "plain λmax", "plain ratio", "plain loss / test acc", "residual λmin", "residual λmax", "residual ratio", "residual loss / test acc"],
            Enumerable.Range(0, seeds).Select(sd => new[] { sd.ToString(),
                Report.Num(extremes[2 * sd].Min, "0.00E+0"), Report.Num(extremes[2 * sd].Max, "0.00E+0"), Report.Num(ratios[2 * sd], "F3"), $"{fit[2 * sd].Loss:F2} / {Report.Pct(fit[2 * sd].Accuracy)}",
                Report.Num(extremes[2 * sd + 1].Min, "0.00E+0"), Report.Num(extremes[2 * sd + 1].Max, "0.00E+0"), Report.Num(ratios[2 * sd + 1], "F3"), $"{fit[2 * sd + 1].Loss:F2} / {Report.Pct(fit[2 * sd + 1].Accuracy)}" }));
        if (plain / resid < 1.3)
            report.Text($"The check, at the solutions themselves, does not reproduce{(slicePlain / sliceResid >= 1.3 ? $"; the slices do ({slicePlain / sliceResid:F1}×)" : ", and neither do the slices")}. " +
                $"At the bottom of the basin both networks are nearly convex (|λmin/λmax| at most {ratios.Max():F3}, λmin between {extremes.Min(e => e.Min):F2} and {extremes.Max(e => e.Min):F2} for both), " +
                "and the plain network's larger λmax (it is the sharper minimum) makes its ratio the smaller one. " +
                "Li et al.'s maps show the same thing: blue (convex) at the centre for every network, the plain ones turning non-convex away from it. " +
                "Without batch norm, other setups do not turn the ratio at the solutions around while both networks train (the two tables below); it rises above 1 only where the plain network is stuck " +
                "on a plateau, and then which way it goes follows how far the plain network trained, not its architecture. With batch norm after every linear layer, as in Li et al.'s networks, " +
                "and their optimizer and Hessian, the plain network's ratio is the larger one on every lab seed from 0 to 4, but by at least 1.3× on only two of them, and with 25 networks of each kind on lab seeds 5 to 9 again on two of five (the last rows); " +
                "a setup chosen after seeing that would pass the committed seed and fail three others, so the lab keeps the setup above. " +
                // Measured 2026-11-29 and 30 with `lab run solution-space --seed N` on both machines.
                "Over lab seeds 0 to 4 this is the only line of the claim that fails, on every seed and on both machines it ran on: with AVX-512 kernels 0.42×, 0.79×, 0.77×, 0.64× and 0.68× at the solutions, " +
                "against 2.5×, 2.1×, 2.6×, 3.9× and 2.3× averaged over the slices; with AVX2 kernels (which add in another order, so the bits differ) 0.51×, 1.00×, 0.61×, 0.57× and 0.67× " +
                "at the solutions, and 0.70× and 0.67× on lab seeds 5 and 6.");
        // Exploratory runs of this part alone (2026-11-28 and 29), the same seeds, one run of every seed per setup; not rerun by the lab.
        report.Text("Other setups tried on the AVX-512 machine, one exploratory run of the same seeds each (the lab does not rerun them): the ratio of the medians, plain ÷ residual, at the solutions and averaged over the slices.");
        report.Table(["setup (changed from the one above)", "plain network's training", "at the solutions", "over the slices"],
        [
            ["80 Lanczos steps instead of 20", "as above", "the same as with 20", "—"],
            ["40 epochs instead of 15", "loss 0.18 (residual 0.07)", "0.84× (0.0057 against 0.0068)", "—"],
            ["weight decay 5e-4 (Li et al.'s)", "trains", "0.61×", "2.2×"],
            ["lr 0.05 and weight decay 5e-4", "loss 0.58–0.83", "0.53×", "2.0×"],
            ["lr 0.03", "trains", "0.22×", "2.2×"],
            ["lr 0.1 (Li et al.'s; their networks have batch norm)", "diverges", "—", "—"],
            ["PyTorch's default initialization, Adam lr 1e-3", "partly (loss about 1), λmax in the thousands", "0.2×", "—"],
            ["PyTorch's default initialization, Adam lr 3e-4", "stuck on a plateau", "2.2×", "—"],
            ["PyTorch's default initialization, SGD lr 0.01", "stays at chance", "40×", "—"],
        ]);
        // Exploratory runs of 2026-11-30, on a machine without AVX-512 (AVX2 kernels add in another order, so its
        // bits differ: the setup above gives 0.51× there, against 0.42× with AVX-512).
        report.Text("More setups, tried later on a machine without AVX-512, where the setup above gives 0.51× (its kernels add in another order, so the bits differ): " +
            "the ratio of the medians at the solutions, with the medians of the plain network's training loss and λmax against the residual one's. " +
            "Each row reruns with `lab explore landscape` and the options given (`dotnet run -c Release --project src/MiniDeep.Experiments -- lab explore landscape --epochs 3`; " +
            "on that machine the command gives the rows' numbers).");
        report.Table(["setup (changed from the one above)", "options of `lab explore landscape`", "training loss, plain / residual", "λmax, plain / residual", "at the solutions"],
        [
            ["3 epochs instead of 15 (cosine decay over them)", "`--epochs 3`", "0.84 / 0.49", "266 / 57", "0.42×"],
            ["5 epochs instead of 15", "`--epochs 5`", "0.67 / 0.41", "159 / 46", "0.62×"],
            ["Adam lr 1e-3 with cosine decay (the lab's usual optimizer), He initialization", "`--optimizer adam --lr 0.001`", "0.29 / 0.17", "224 / 58", "0.35×"],
            ["no decay: constant lr 0.01", "`--schedule constant`", "0.45 / 0.24", "61 / 43", "0.72×"],
            ["SGD without momentum, lr 0.05 with cosine decay", "`--optimizer sgd --lr 0.05`", "0.45 / 0.31", "150 / 47", "0.33×"],
            ["SGD without momentum, constant lr 0.1", "`--optimizer sgd --lr 0.1 --schedule constant`", "1.26 / 0.43", "112 / 22", "0.76×"],
            ["200 Lanczos steps instead of 20: λmax does not move and the most negative Ritz value grows (by up to 54% for one network), for both kinds alike: the median |λmin/λmax| rises by 13% for each (0.0054 to 0.0061 plain, 0.0105 to 0.0119 residual)", "`--lanczos-steps 200`", "0.39 / 0.24", "135 / 43", "0.51×, as with 20"],
            ["the Hessian on all 5,000 training images instead of 1,000", "`--hessian-images 5000`", "0.39 / 0.24", "121 / 42", "0.59×"],
            ["pre-activation residual blocks x + W₂ReLU(W₁ReLU(x)), the form of He et al.'s identity-mapping paper (2016)", "`--arch pre-activation`", "0.39 / 0.20", "135 / 43", "0.40×"],
            ["W₂ initialized at He ÷ 3 instead of 0", "`--arch scaled-branch`", "0.39 / 0.24", "135 / 54", "0.65×"],
            ["batch norm after every linear layer but the last, in both networks and in every residual branch, W₂ = He (Li et al.'s networks have it), with Li et al.'s optimizer " +
                "(SGD, lr 0.1, momentum 0.9, weight decay 5e-4, cosine decay) and their Hessian (eval mode, the weight matrices only); lab seeds 0 to 4",
                "`--arch batch-norm --lr 0.1 --weight-decay 5e-4 --hessian-params weights --seed 0` (to 4)",
                "0.66 / 0.43 (seed 0); test accuracy 67–76% plain, 77–82% residual", "22 / 5.9 (seed 0)",
                "1.93×, 1.38×, 1.24×, 1.14×, 1.24×: above 1 on every seed, at least 1.3 on two. Over the 25 networks of each kind the medians' ratio is 1.36×, " +
                "and the ratio of the medians of 5 networks drawn from those 25 reaches 1.3 in 51% of 20,000 draws"],
            ["the same, lab seed 0, the Hessian over every parameter: in eval mode; in training mode (the 1,000 images' batch statistics)",
                "`--arch batch-norm --lr 0.1 --weight-decay 5e-4` (`--hessian-mode training`)", "0.66 / 0.43", "30 / 7.9; 2.5 / 2.5", "1.53×; 0.90×"],
            ["batch norm, lab seed 0, eval mode, every parameter: lr 0.05 with weight decay 5e-4; lr 0.01 with it; lr 0.1 without",
                "`--arch batch-norm --lr 0.05 --weight-decay 5e-4`, and so on", "0.62 / 0.38; 0.68 / 0.32; 0.68 / 0.41", "39 / 13; 66 / 49; 31 / 7.2", "1.74×; 1.68×; 1.53×"],
            // 2026-11-30: lab seeds never looked at before, to test whether more networks steady the batch-norm setup.
            ["the batch-norm setup of the lab-seeds-0-to-4 row, with 25 networks of each kind instead of 5, on lab seeds 5 to 9 (not looked at before)",
                "`--arch batch-norm --lr 0.1 --weight-decay 5e-4 --hessian-params weights --seeds 25 --seed 5` (to 9)",
                "0.63–0.67 / 0.42–0.45; test accuracy 73–74% plain, 80–81% residual", "24–26 / 5.5–6.1",
                "1.07×, 2.04×, 1.24×, 1.40×, 0.97×: at least 1.3 on two seeds of five. Pooled over the 125 networks of each kind (the five runs' `--json` files) the medians' ratio is 1.23×, " +
                "and the ratio of the medians of 25 networks drawn from those 125 reaches 1.3 in 46% of 20,000 draws (of 5 networks, in 49%): " +
                "more networks do not carry this setup over the line, because its true ratio sits at or below it"],
        ]);
        report.Image("landscape.png", Plots.SideBySide(
                Plots.Contour("Plain depth-20 MLP", "direction 1", "direction 2", "log10 loss", xs, xs, log[0]),
                Plots.Contour("Residual depth-20 MLP", "direction 1", "direction 2", "log10 loss", xs, xs, log[1])),
            "Loss surfaces around the solutions of seed 0 along two filter-normalized random directions (log10 of the cross-entropy). The ratio column of the table is |λmin/λmax| at the solution.");
        report.Metric("landscape", new { seeds, epochs, plain_ratios = ratios.Where((_, k) => k % 2 == 0), residual_ratios = ratios.Where((_, k) => k % 2 == 1),
            slice_average = new { plain = slicePlain, residual = sliceResid, seeds = sliced, each = sliceRatios }, train_loss = fit.Select(f => f.Loss), test_accuracy = fit.Select(f => f.Accuracy) });
    }

    private static void Sharpness(LabContext ctx, Report report, List<Check> checks)
    {
        var clock = Stopwatch.StartNew();
        int seeds = ctx.ByBudget(1, 3, 5);
        int epochs = ctx.ByBudget(5, 10, 20);
        const double lr = 0.1;
        int subset = 10_000;
        var train = ctx.Data.Train;
        var sub = RandomSubset(train, subset, ctx.Rng("sharpness-subset"));
        var (hx, hy) = Head(sub, 2_000);
        int[] batches = [32, 1000];
        var top = new double[seeds * 2];
        var trainLoss = new double[seeds * 2];
        var testAcc = new double[seeds * 2];
        LabContext.Concurrently(seeds * 2, k =>
        {
            int seed = k / 2, batch = batches[k % 2];
            var model = Mlp(sub.X, ctx.Rng("sharpness-init", seed), 784, 256, 10);
            var opt = new Sgd(model.Parameters(), lr);
            Trainer.Fit(model, opt, new DataLoader(sub, batch, shuffle: true, seed: ctx.Rng("sharpness-order", seed).Seed), epochs);
            var ritz = Hessian.Lanczos(() => Losses.CrossEntropy(model.Forward(hx), hy), model.Parameters(), 20, ctx.Rng("sharpness-lanczos", k));
            top[k] = ritz[^1];
            trainLoss[k] = Trainer.Evaluate(model, sub).Loss;
            testAcc[k] = Trainer.Evaluate(model, ctx.Data.Test).Accuracy;
        });
        double small = Median(top.Where((_, k) => k % 2 == 0)), large = Median(top.Where((_, k) => k % 2 == 1));
        ctx.Say($"sharpness: top Hessian eigenvalue after {epochs} epochs of SGD: batch 32 {small:F2}, batch 1000 {large:F2} ({clock.Elapsed.TotalSeconds:F0} s)");
        checks.Add(new("sharpness_ratio", "SGD, matched epochs: top Hessian eigenvalue of the batch-1,000 solution ÷ the batch-32 solution's", large / small, Comparison.AtLeast, 2,
            "large-batch solutions are sharp minima, small-batch ones flat (Keskar et al.)", "F2"));
        report.Section("Noise finds flatter minima");
        report.Text($"MLP 784-256-10 trained with plain SGD (lr {lr}, no momentum) for {epochs} epochs of a fixed {subset:N0}-image subset with batch 32 or batch 1,000 " +
            $"({seeds} seed{(seeds > 1 ? "s" : "")}): the same number of passes over the data, so the small batch takes 31× more, noisier steps. The largest eigenvalue of the Hessian of the training loss " +
            $"(on 2,000 of the images, 20 Lanczos steps) measures how sharp the minimum is: {large:F2} with batch 1,000 against {small:F2} with batch 32, {large / small:F1}× (Keskar et al. 2017 report the same with sharpness measured in a box around the solution).");
        report.Table(["seed", "batch", "λmax", "training loss", "test accuracy"],
            Enumerable.Range(0, seeds * 2).Select(k => new[] { (k / 2).ToString(), batches[k % 2].ToString(), Report.Num(top[k], "F2"), Report.Num(trainLoss[k], "F3"), Report.Pct(testAcc[k]) }));
        report.Metric("sharpness", new { seeds, epochs, learning_rate = lr, top_eigenvalue = top, train_loss = trainLoss, test_accuracy = testAcc });
    }
}
