using System.Diagnostics;
using MiniDeep.Continual;
using MiniDeep.Data;
using MiniDeep.Nn;
using MiniDeep.Optim;
using static MiniDeep.Experiments.Lab.LabModels;

namespace MiniDeep.Experiments.Lab.Claims;

/// <summary>
/// "Neural networks forget what they learn": trained on one task and then on another, a network loses
/// the first (catastrophic forgetting), unless something holds the old knowledge in place: rehearsal of
/// old examples, anchors on the important weights (EWC), or attention masks over the units (HAT).
/// </summary>
/// <remarks>About 95 s at the standard budget. On these tasks HAT and a strongly anchored EWC both forget
/// almost nothing and differ in ρ by at most about 0.0016 (a few test images), which way round depends on the
/// seed; the report says which way it went and how it went on seeds 0 to 4.</remarks>
public sealed class ForgettingClaim : IClaim
{
    /// <inheritdoc/>
    public string Id => "forgetting";
    /// <inheritdoc/>
    public string Title => "Neural networks forget what they learn";
    /// <inheritdoc/>
    public string Statement =>
        "A network trained on a new task loses what it learned on the previous ones, quickly and almost entirely, " +
        "unless old examples are rehearsed or the weights and units that matter to old tasks are protected.";

    /// <inheritdoc/>
    public IReadOnlyList<Citation> Papers { get; } =
    [
        new("McCloskey & Cohen", 1989, "Catastrophic interference in connectionist networks: the sequential learning problem",
            "after learning the 'ones' addition facts, a network trained on the 'twos' alone loses the ones within a few trials; rehearsing both keeps both"),
        new("Kirkpatrick et al.", 2017, "Overcoming catastrophic forgetting in neural networks",
            "on permuted MNIST, plain SGD forgets earlier tasks while EWC keeps them (Fig. 2)"),
        new("Shin, Lee, Kim & Kim", 2017, "Continual learning with deep generative replay",
            "a generator's samples, labelled by the previous solver, stand in for old data"),
        new("Serrà, Surís, Miron & Karatzoglou", 2018, "Overcoming catastrophic forgetting with hard attention to the task",
            "HAT cuts forgetting by 45–80% against the best of the compared methods, EWC among them"),
    ];

    /// <inheritdoc/>
    public IReadOnlyList<Check> Run(LabContext ctx, Report report)
    {
        var checks = new List<Check>();
        report.Setup.Add($"Data: {ctx.Data.Name}, {ctx.Data.Train.Count:N0} training and {ctx.Data.Test.Count:N0} test images.");
        AdditionFacts(ctx, report, checks);
        PermutedTasks(ctx, report, checks);
        SplitTasks(ctx, report, checks);
        return checks;
    }

    // ----- 2a: McCloskey & Cohen's addition facts -----

    // A fact a + b: the two operands one-hot (1–9 each), the answer one of 19 classes (0–18).
    private static (Tensor X, Tensor Y) Facts(IEnumerable<(int A, int B)> facts)
    {
        var list = facts.ToList();
        var x = new float[list.Count * 18];
        var y = new int[list.Count];
        for (int i = 0; i < list.Count; i++)
        {
            x[i * 18 + list[i].A - 1] = 1;
            x[i * 18 + 9 + list[i].B - 1] = 1;
            y[i] = list[i].A + list[i].B;
        }
        return (Tensor.FromArray(x, list.Count, 18), Tensor.FromArray(y));
    }

    private static IEnumerable<(int, int)> FactsWith(int n) => Enumerable.Range(1, 9).SelectMany(a => new[] { (n, a), (a, n) }).Distinct();

    private static void AdditionFacts(LabContext ctx, Report report, List<Check> checks)
    {
        var clock = Stopwatch.StartNew();
        var ones = Facts(FactsWith(1));
        var twos = Facts(FactsWith(2));
        var both = (X: Tensor.Concat([ones.X, twos.X]), Y: Tensor.Concat([ones.Y, twos.Y]));
        const int firstEpochs = 500, secondEpochs = 5, rehearsalEpochs = 100;
        const double lr = 0.5;
        // 17 facts make a network's score move in steps of 5.9 points, and the networks spread widely: of 1,000
        // (lab seeds 0–39, 25 each; measured 2026-11-30) the median kept 41% of the ones after 5 epochs of twos and
        // 74% kept at most half. The median of 5 networks a seed failed the 50% line on 3 lab seeds of those 40
        // (seed 2: 52.9%); the median of 25 on none. `lab run forgetting --seed N` reports both medians (the first
        // 5 networks are the ones 5 a seed trained) and its metrics.json holds every network's curve.
        int seeds = ctx.ByBudget(5, 25, 50);
        // One network per seed and condition: sigmoid hidden layer as in the 1989 network, SGD one fact at a time.
        Sequential Net(Generator g) => new(new Linear(18, 50, generator: g), Activations.Sigmoid(), new Linear(50, 19, generator: g));
        double Acc(Module m, (Tensor X, Tensor Y) d) => Accuracy(m, d.X, d.Y);
        void Train(Module m, Optimizer opt, (Tensor X, Tensor Y) d, int epochs, ulong seed)
        {
            var loader = new DataLoader(new TensorDataset(d.X, d.Y), 1, shuffle: true, seed: seed);
            Trainer.Fit(m, opt, loader, epochs);
        }
        var curves = new double[seeds][];
        var rehearsal = new (double Ones, double Twos)[seeds];
        var learned = new double[seeds];
        LabContext.Concurrently(2 * seeds, k =>
        {
            int s = k / 2;
            bool rehearse = k % 2 == 1;
            var net = Net(ctx.Rng("facts-init", s));
            var opt = new Sgd(net.Parameters(), lr);
            Train(net, opt, ones, firstEpochs, ctx.Rng("facts-order", s).Seed);
            if (!rehearse)
            {
                learned[s] = Acc(net, ones);
                var curve = new double[secondEpochs + 1];
                curve[0] = learned[s];
                for (int e = 1; e <= secondEpochs; e++)
                {
                    Train(net, opt, twos, 1, ctx.Rng("facts-twos", s * 100 + e).Seed);
                    curve[e] = Acc(net, ones);
                }
                curves[s] = curve;
            }
            else
            {
                Train(net, opt, both, rehearsalEpochs, ctx.Rng("facts-both", s).Seed);
                rehearsal[s] = (Acc(net, ones), Acc(net, twos));
            }
        });
        double onesAfter = Median(curves.Select(c => c[^1]));
        int atOrBelowHalf = curves.Count(c => c[^1] <= 0.5);
        double firstFiveMedian = Median(curves.Take(5).Select(c => c[^1]));
        double rehearsedMin = Median(rehearsal.Select(r => Math.Min(r.Ones, r.Twos)));
        ctx.Say($"addition facts: ones learned {Report.Pct(Median(learned))}; after {secondEpochs} epochs of twos alone {Report.Pct(onesAfter)}; with rehearsal ones {Report.Pct(Median(rehearsal.Select(r => r.Ones)))}, twos {Report.Pct(Median(rehearsal.Select(r => r.Twos)))} ({clock.Elapsed.TotalSeconds:F0} s)");
        checks.Add(new("facts_ones_forgotten", $"'ones' facts right after {secondEpochs} epochs of the 'twos' alone (median of {seeds} seeds)", onesAfter, Comparison.AtMost, 0.5,
            "the ones are lost within a few trials of the twos (McCloskey & Cohen)", "P0"));
        checks.Add(new("facts_rehearsal", "with rehearsal of the ones: the lower of ones and twos accuracy (median of seeds)", rehearsedMin, Comparison.AtLeast, 0.9,
            "trained together, both are kept", "P0"));
        report.Section("The addition facts");
        report.Text($"McCloskey & Cohen's experiment: a network with one sigmoid hidden layer (18 inputs, the two operands one-hot; 50 hidden units; 19 outputs, the sums 0–18) learns the " +
            $"17 'ones' facts (1 + 1 to 1 + 9 and 2 + 1 to 9 + 1) by SGD (lr {lr}, one fact at a time, {firstEpochs} epochs): {Report.Pct(Median(learned))} right. It then trains on the 17 'twos' facts alone. " +
            $"After {secondEpochs} epochs of twos it gets {Report.Pct(onesAfter)} of the ones right (median of {seeds} seeds); a network that instead trains on ones and twos together ({rehearsalEpochs} epochs) keeps " +
            $"{Report.Pct(Median(rehearsal.Select(r => r.Ones)))} of the ones and learns {Report.Pct(Median(rehearsal.Select(r => r.Twos)))} of the twos.");
        report.Text($"With 17 facts a network's score moves in steps of 5.9 points, and the networks spread widely: after {secondEpochs} epochs of twos {atOrBelowHalf} of these {seeds} " +
            $"networks are at or below 50%, and their scores run from {Report.Pct(curves.Min(c => c[^1]))} to {Report.Pct(curves.Max(c => c[^1]))}." +
            (seeds > 5
                ? $" Until 2026-11-30 the lab trained 5 networks a seed, and their median sat on the line (here the first 5 alone give {Report.Pct(firstFiveMedian)}): " +
                  "on lab seed 2 it was 52.9%, and the line failed there (measured on an AVX2 machine; this experiment's curves for lab seed 0 are the same there as on the AVX-512 machine)."
                : ""));
        // Quartiles by nearest rank: the scores are multiples of 1/17, so the bands show where the networks sit.
        var epochAxis = Enumerable.Range(0, secondEpochs + 1).Select(i => (double)i).ToArray();
        double[] Quantile(double q) => [.. epochAxis.Select((_, e) => curves.Select(c => c[e]).Order().ElementAt((int)Math.Round(q * (seeds - 1))))];
        report.Image("addition-facts.png", Plots.Lines($"The 'ones' facts while training on the 'twos' alone ({seeds} networks)", "epochs of twos", "ones facts right",
            [new("75th percentile", epochAxis, Quantile(0.75)), new("median", epochAxis, Quantile(0.5)), new("25th percentile", epochAxis, Quantile(0.25))],
            horizontal: (0.5, "pass line: median ≤ 50% after 5 epochs"), integerX: true),
            $"The median and quartiles of {seeds} networks (one per seed): the ones are lost within a few passes over the twos.");
        report.Metric("addition_facts", new { seeds, lr, first_epochs = firstEpochs, second_epochs = secondEpochs, learned, curves, rehearsal_ones = rehearsal.Select(r => r.Ones), rehearsal_twos = rehearsal.Select(r => r.Twos) });
    }

    // ----- 2b: permuted tasks: SGD, replay, EWC, generative replay -----

    private sealed record Method(string Name, double Lambda = 0);

    private static void PermutedTasks(LabContext ctx, Report report, List<Check> checks)
    {
        var clock = Stopwatch.StartNew();
        int taskCount = 5, perTask = ctx.ByBudget(2_000, 10_000, 10_000), epochs = ctx.ByBudget(2, 3, 3);
        const double lr = 0.1;
        // Batch 10: 1,000 SGD steps per epoch. With batch 64 (470 steps) task 1 lost only 6 points over the sequence, with batch 32 14.
        const int batch = 10, memory = 100, fisherSamples = 500;
        double[] lambdas = ctx.ByBudget(new double[] { 10, 100 }, [10, 100, 1000], [10, 100, 1000, 10_000]);
        // λ is chosen on held-out training images, never on the test images the table reports.
        int validationPerTask = ctx.ByBudget(500, 2_000, 2_000);
        var tasks = TaskSequences.Permuted(ctx.Data, taskCount, perTask, ctx.Rng("permuted-tasks"), validationPerTask: validationPerTask);
        var tests = tasks.Select(t => RandomSubset(t.Test, ctx.ByBudget(1_000, 5_000, 10_000), ctx.Rng("permuted-test"))).ToList();
        var methods = new List<Method> { new("SGD"), new("replay") };
        methods.AddRange(lambdas.Select(l => new Method("EWC", l)));
        methods.Add(new("generative replay"));
        var results = new AccuracyMatrix[methods.Count];
        var validation = new double[methods.Count];
        LabContext.Concurrently(methods.Count, m =>
        {
            var method = methods[m];
            var g = ctx.Rng("permuted-run", m);
            var model = Mlp(tasks[0].Train.X, ctx.Rng("permuted-init"), 784, 400, 400, 10);
            var opt = new Sgd(model.Parameters(), lr);
            var anchors = new QuadraticAnchors(model.Parameters());
            var buffer = new ReplayBuffer(memory, g);
            Vae? vae = null;
            Sequential? oldSolver = null;
            var r = new AccuracyMatrix(taskCount);
            for (int t = 0; t < taskCount; t++)
            {
                var loader = new DataLoader(tasks[t].Train, batch, shuffle: true, seed: ctx.Rng("permuted-order", t).Seed);
                using (method.Name == "EWC" ? anchors.Attach(opt, method.Lambda) : null)
                    for (int e = 0; e < epochs; e++)
                    {
                        model.Train();
                        foreach (var b in loader.NextEpoch())
                        {
                            var (x, y) = (b.X, b.Y);
                            if (method.Name == "replay" && buffer.Sample(batch) is { } old) { x = Tensor.Concat([x, old.X]); y = Tensor.Concat([y, old.Y]); }
                            if (method.Name == "generative replay" && vae is not null)
                            {
                                var (dx, dy) = Vae.Dreams(vae, oldSolver!, batch, g);
                                x = Tensor.Concat([x, dx]); y = Tensor.Concat([y, dy]);
                            }
                            opt.ZeroGrad();
                            Losses.CrossEntropy(model.Forward(x), y).Backward();
                            opt.Step();
                        }
                    }
                model.Eval();
                for (int j = 0; j < taskCount; j++) r[t, j] = Trainer.Evaluate(model, tests[j]).Accuracy;
                if (method.Name == "EWC")
                    anchors.Consolidate(Fisher.Diagonal(model.Forward, model.Parameters(), tasks[t].Train.X.Narrow(0, 0, fisherSamples), g));
                if (method.Name == "replay") buffer.Add(t, tasks[t].Train);
                if (method.Name == "generative replay" && t + 1 < taskCount)
                {
                    // The next generator learns this task's images and the previous generator's dreams.
                    var next = new Vae([1, 28, 28], 256, 16, g);
                    var vaeOpt = new Adam(next.Parameters(), 1e-3);
                    var vaeLoader = new DataLoader(tasks[t].Train, batch, shuffle: true, seed: ctx.Rng("permuted-vae", t).Seed);
                    for (int e = 0; e < epochs; e++)
                        foreach (var b in vaeLoader.NextEpoch())
                        {
                            var x = vae is null ? b.X : Tensor.Concat([b.X, vae.Sample(batch * t, g)]);
                            vaeOpt.ZeroGrad(); next.Loss(x, g).Backward(); vaeOpt.Step();
                        }
                    vae = next;
                    oldSolver = Mlp(tasks[0].Train.X, ctx.Rng("permuted-init"), 784, 400, 400, 10);
                    oldSolver.LoadStateDict(model.StateDict());
                    oldSolver.Eval();
                }
            }
            results[m] = r;
            validation[m] = tasks.Average(t => Trainer.Evaluate(model, t.Validation!).Accuracy);
        });
        var sgd = results[0];
        var replay = results[1];
        int bestEwc = Enumerable.Range(2, lambdas.Length).MaxBy(m => validation[m]);
        var ewc = results[bestEwc];
        var dreaming = results[^1];
        ctx.Say($"permuted tasks: mean final accuracy SGD {Report.Pct(sgd.AverageAccuracy)} (task 1: {Report.Pct(sgd[0, 0])} → {Report.Pct(sgd[taskCount - 1, 0])}), " +
            $"replay {Report.Pct(replay.AverageAccuracy)}, EWC {string.Join(", ", lambdas.Select((l, i) => $"λ={l:G3} {Report.Pct(results[2 + i].AverageAccuracy)} (validation {Report.Pct(validation[2 + i])})"))}, generative replay {Report.Pct(dreaming.AverageAccuracy)} ({clock.Elapsed.TotalSeconds:F0} s)");
        checks.Add(new("permuted_sgd_forgets", $"plain SGD, {taskCount} permuted tasks: accuracy on task 1 lost by the end (points)", sgd.Forgetting(0), Comparison.AtLeast, 0.2,
            "earlier tasks are forgotten (Kirkpatrick et al., Fig. 2A)", "P1"));
        checks.Add(new("permuted_replay_gain", $"replay ({memory} stored examples a task): mean final accuracy − SGD's (points)", replay.AverageAccuracy - sgd.AverageAccuracy, Comparison.AtLeast, 0.1,
            "rehearsal of a few old examples keeps old tasks", "P1"));
        checks.Add(new("permuted_ewc_gain", $"EWC (λ = {methods[bestEwc].Lambda:G3}, the best of {lambdas.Length} on validation images): mean final accuracy − SGD's (points)", ewc.AverageAccuracy - sgd.AverageAccuracy, Comparison.AtLeast, 0.03,
            "EWC keeps old tasks (Kirkpatrick et al., Fig. 2A)", "P1"));

        report.Section("Permuted tasks");
        report.Text($"{taskCount} tasks: Fashion-MNIST with a fixed random permutation of the pixels per task (the first unpermuted), {perTask:N0} training images each, " +
            $"learned one after the other by one MLP 784-400-400-10 with a single head (SGD, lr {lr}, batch {batch}, {epochs} epochs per task; forgetting depends strongly on how long " +
            $"each task is trained, so this is part of the setup: with batch 64, 470 steps an epoch, task 1 lost only 6 points over the sequence, with batch 32 14). Accuracy on each task's test images ({tests[0].Count:N0}) after each task fills the accuracy matrix. " +
            $"Replay mixes {batch} examples drawn from a memory of {memory} per earlier task into every batch. EWC anchors the weights after each task with their diagonal Fisher " +
            $"information from {fisherSamples} training images (labels drawn from the network's own predictions), applied as an exact proximal step after each SGD step " +
            "(a plain gradient penalty diverges once lr·λ·F > 2; with lr 0.1 that is λF > 20); λ is swept, and the one kept is the one with the best mean final accuracy on " +
            $"{validationPerTask:N0} held-out training images per task (permuted alike), never on the test images the table reports. " +
            "Generative replay trains a VAE (784-256-16) per task on the task's images and the previous VAE's dreams, and mixes a batch of dreams labelled by the previous network into every batch.");
        report.Table(["method", "mean final accuracy", "on validation images", "task 1 just after learning it", "task 1 at the end", "backward transfer"],
            methods.Select((method, m) => new[] { method.Name == "EWC" ? $"EWC, λ = {method.Lambda:G3}" : method.Name, Report.Pct(results[m].AverageAccuracy), Report.Pct(validation[m]),
                Report.Pct(results[m][0, 0]), Report.Pct(results[m][taskCount - 1, 0]), Points(results[m].BackwardTransfer) }));
        report.Image("permuted-matrices.png", Plots.SideBySide([.. methods.Select((method, m) => Plots.Matrix(method.Name == "EWC" ? $"EWC, λ = {method.Lambda:G3}" : method.Name,
                "after training task", "tested on task", results[m].ToArray(), 0.4, 0.9))]),
            "Accuracy matrices of every method (row: after training task i; column: tested on task j). Above the diagonal, tasks not yet seen sit near chance (10%; the colours stop at 40%).");
        var xs = Enumerable.Range(1, taskCount).Select(i => (double)i).ToArray();
        report.Image("permuted.png", Plots.Lines("Accuracy on task 1 as more tasks are learned", "tasks learned", "task 1 test accuracy",
            [new Series("SGD", xs, Column(sgd, 0)), new Series("replay", xs, Column(replay, 0)), new Series($"EWC, λ = {methods[bestEwc].Lambda:G3}", xs, Column(ewc, 0)),
                new Series("generative replay", xs, Column(dreaming, 0))], legend: ScottPlot.Alignment.LowerLeft, integerX: true),
            "Task 1's accuracy after each task of the sequence, per method.");
        report.Metric("permuted", new
        {
            tasks = taskCount, per_task = perTask, validation_per_task = validationPerTask, epochs, lr, batch, memory, fisher_samples = fisherSamples, lambdas,
            chosen_lambda = methods[bestEwc].Lambda,
            methods = methods.Select((method, m) => new { method.Name, lambda = method.Lambda, matrix = ToJagged(results[m]), average = results[m].AverageAccuracy,
                validation_average = validation[m], backward_transfer = results[m].BackwardTransfer }),
        });
    }

    // ----- 2c: split tasks, multi-head: HAT against EWC and SGD -----

    private static void SplitTasks(LabContext ctx, Report report, List<Check> checks)
    {
        var clock = Stopwatch.StartNew();
        var setup = SplitSetup.ForBudget(ctx.Budget);
        var split = RunSplitTasks(ctx, setup);
        var (names, results, rho, joint) = (split.Names, split.Matrices, split.Rho, split.Joint);
        int T = joint.Length, hatIndex = split.Hat, bestEwc = split.BestEwc;
        ctx.Say($"split tasks: forgetting ratio ρ {string.Join(", ", names.Select((n, m) => $"{n} {Report.Num(rho[m], "F3")}"))}; joint accuracies {string.Join(" ", joint.Select(Report.Pct))} ({clock.Elapsed.TotalSeconds:F0} s)");
        checks.Add(new("split_hat_rho", $"HAT, {T} split tasks, multi-head: forgetting ratio ρ after the last task", rho[hatIndex], Comparison.AtLeast, -0.05,
            "ρ close to 0: as good as joint training (Serrà et al., Fig. 3)", "F3"));
        checks.Add(new("split_hat_vs_ewc", $"HAT's ρ − EWC's at the λ chosen on validation images ({split.ChosenLambda:G3})", split.HatMinusEwc, Comparison.Above, 0,
            "HAT forgets less than EWC", "F4"));
        checks.Add(new("split_hat_vs_sgd", "HAT's ρ − plain SGD's", rho[hatIndex] - rho[0], Comparison.Above, 0, "HAT forgets less than SGD", "F3"));
        report.Section("Split tasks with one head each: HAT");
        report.Text($"{T} tasks of two classes each ({string.Join(", ", SplitGroups.Select(g => $"{g[0]}/{g[1]}"))}), {setup.PerTask:N0} training images per task, tested on all of the test images of their classes, " +
            $"learned in turn by a network 784-{setup.Hidden}-{setup.Hidden} with one two-way head per task (task-incremental: the task is known at test time), SGD lr {setup.Lr}, batch {setup.Batch}, {setup.Epochs} epochs a task. " +
            $"Plain SGD; EWC with λ swept ({string.Join(", ", setup.Lambdas.Select(l => l.ToString("G3")))}; proximal update, Fisher from {setup.FisherSamples} images; the λ compared with HAT is the one with the " +
            $"highest ρ on {setup.ValidationPerTask:N0} held-out training images per task, never the test images); HAT with s_max = {setup.SMax} and c = {setup.C} " +
            "(the paper's values); and, as the reference, the same network trained on all tasks jointly. Every method keeps, of each task's epochs, the network with the lowest " +
            "cross-entropy on that task's validation images (the joint network: the lowest mean over the tasks), as the paper's code keeps its best validation model for every approach " +
            "(it chooses by each approach's training loss, regularizer included, and trains up to 200 epochs with a decaying learning rate; here the budget is the fixed number of epochs). " +
            "Until 2026-11-29 this lab kept the network after the last epoch instead; on seed 0 with AVX-512 that gave HAT ρ = −0.007 against −0.000 for EWC with λ = 1E+04, and the HAT-against-EWC line failed. " +
            "The forgetting ratio of Serrà et al., " +
            "ρ = mean over tasks of (A − A_R)/(A_J − A_R) − 1, with A the final accuracy on a task, A_J the joint network's and A_R a random stratified classifier's (50% here), " +
            "is 0 for no forgetting at all and −1 for forgetting everything.");
        report.Table(["method", "forgetting ratio ρ", "ρ on validation images", "mean final accuracy", "backward transfer", "epoch kept, per task"],
            names.Select((n, m) => new[] { n, Report.Num(rho[m], "F4"), Report.Num(split.RhoValidation[m], "F4"), Report.Pct(results[m].AverageAccuracy),
                Points(results[m].BackwardTransfer), string.Join(", ", split.Kept[m]) }));
        report.Image("split-matrices.png", Plots.SideBySide([.. Enumerable.Range(0, names.Length - 1).Select(m => Plots.Matrix(names[m], "after training task", "tested on task", results[m].ToArray(), 0.5, 1))]),
            $"Accuracy matrices of every method (row: after training task i; column: tested on task j; below the diagonal is memory; 0.5 is chance). " +
            $"Backward transfer: SGD {Points(results[0].BackwardTransfer)}, EWC {Points(results[bestEwc].BackwardTransfer)}, HAT {Points(results[hatIndex].BackwardTransfer)}.");
        var hat = results[hatIndex];
        double hatFirst = hat[0, 0];
        string firstByEpoch = string.Join(", ", split.HatValidationByEpoch[0].Select(Report.Pct));
        // What the two compared methods have in common on these tasks, whichever way the line goes.
        string ewcNote = $"EWC with λ = {split.ChosenLambda:G3} forgets little ({Points(results[bestEwc].BackwardTransfer)} of backward transfer) and still learns the later tasks " +
            "nearly to the joint network's level, because two-class Fashion-MNIST tasks need little more than the features the first task left: the anchor nearly freezes the shared " +
            "layers and the new heads do the rest. On tasks that need new features, as in the paper's mixtures of data sets, a frozen trunk would fail the later tasks; these five do " +
            $"not ask it to, so the two methods' mean final accuracies differ here by {100 * Math.Abs(hat.AverageAccuracy - results[bestEwc].AverageAccuracy):F2} points, not by the paper's margins.";
        string hatNote = $"HAT's backward transfer is {Points(hat.BackwardTransfer)} (its masks keep earlier tasks' units fixed) and its ρ of {Report.Num(rho[hatIndex], "F3")} measures how well it learned each " +
            $"task in the first place (task 1: {Report.Pct(hatFirst)} just after learning it, {Report.Pct(joint[0])} jointly). Its network at s = s_max moves from epoch to epoch " +
            $"(task 1 on its validation images after each epoch: {firstByEpoch}; kept: epoch {split.Kept[hatIndex][0]}).";
        string validationNote = $"On the validation images ρ is {Report.Num(split.RhoValidation[hatIndex], "F4")} for HAT and {Report.Num(split.RhoValidation[bestEwc], "F4")} for EWC.";
        report.Text(split.HatMinusEwc > 0
            ? $"HAT forgets less than EWC here, by {Report.Num(split.HatMinusEwc, "F4")} in ρ. {validationNote} {hatNote} {ewcNote}"
            : $"HAT does not beat EWC here ({Report.Num(split.HatMinusEwc, "F4")} in ρ). {validationNote} {hatNote} {ewcNote}");
        // Measured 2026-11-29 on the AVX-512 machine: `lab run forgetting --seed N` for N = 0 to 4 (proximal EWC, as
        // the lab runs it), and exploratory runs of the same seeds with the penalty in the loss; on 2026-11-30, on an
        // AVX2 machine, both with `lab explore split` (the second table).
        report.Text("Over lab seeds 0 to 4 the comparison is a tie, which the pass line decides by the sign of the noise: with the proximal EWC this lab runs, HAT − EWC in ρ " +
            "lies between −0.0012 and +0.0016 on a machine with AVX-512 and between −0.0012 and +0.0048 on one without (at most a quarter of a point of mean accuracy, " +
            "a few test images a task), HAT ahead on three seeds of five on each; and which λ validation picks is itself decided by differences of that size " +
            "(seed 0 with AVX-512: ρ on validation −0.0020 at 1E+03 against −0.0021 at 1E+04). Nor does the form of EWC's update decide it. With the penalty added to the loss, " +
            "as Kirkpatrick et al. and Serrà et al. used it (λ of 300, 1E+03, 3E+03 and 1E+04), stability caps λ: at 1E+04 the step diverged on every seed " +
            "and at 3E+03 on three of five on both machines (ρ between −1.0 and −0.2, tasks at chance). HAT is then ahead on four seeds of five, by more than against the proximal EWC " +
            "because the capped λ anchors less, but still behind on seed 0, where λ = 3E+03 stayed stable. `lab explore split` reruns any of these runs " +
            "(`--seed N`, and `--ewc penalty --lambdas 300,1000,3000,10000` for the penalty). On the AVX-512 machine (2 cores of AMD Zen 5, 2026-11-29):");
        report.Table(["lab seed", "proximal EWC (the lab's): λ chosen", "HAT − EWC in ρ", "penalty in the loss: λ chosen", "HAT − EWC in ρ"],
        [
            ["0", "1E+03", "−0.0006", "3E+03", "−0.0006"],
            ["1", "1E+05", "+0.0016", "1E+03", "+0.0062"],
            ["2", "1E+04", "+0.0004", "1E+03", "+0.0052"],
            ["3", "1E+04", "−0.0012", "3E+03", "+0.00005"],
            ["4", "1E+04", "+0.00001", "1E+03", "+0.0019"],
        ]);
        report.Text("The same, rerun on 2026-11-30 with `lab explore split` on a 2-core AMD EPYC without AVX-512, whose kernels add in another order " +
            "(there the lab's own seed-0 run gives λ = 1E+04 and −0.0010, against 1E+03 and −0.0006 with AVX-512); on that machine the command prints these numbers:");
        report.Table(["lab seed", "proximal EWC (the lab's): λ chosen", "HAT − EWC in ρ", "penalty in the loss: λ chosen", "HAT − EWC in ρ"],
        [
            ["0", "1E+04", "−0.0010", "3E+03", "−0.0016"],
            ["1", "1E+05", "+0.0001", "3E+03", "+0.0011"],
            ["2", "1E+03", "+0.0048", "1E+03", "+0.0046"],
            ["3", "1E+04", "−0.0012", "1E+03", "+0.0056"],
            ["4", "1E+03", "+0.0021", "1E+03", "+0.0018"],
        ]);
        // Measured 2026-11-30 on the AVX2 machine: `lab explore split --hidden N --seed S`, N ∈ {25, 50, 100}, S = 0 to 4.
        report.Text("Nor does the width of the shared layers, which decides how much room a frozen trunk leaves the later tasks and how many free units HAT's masks find " +
            "(`lab explore split --hidden N --seed S` on the AVX2 machine, every other setting the lab's). With 25, 50 or 100 units a layer EWC forgets at some λ of its sweep " +
            "(backward transfer down to −7.6, −3.1 and −4.2 points) while HAT keeps 0, but validation picks a λ that forgets little, and HAT is ahead on two, four and three seeds of five: " +
            "at 50 units the fifth is a tie (−0.0001), at 100 the differences run from −0.0012 to +0.0054, and at 25 HAT leaves one task unlearned on seed 1 " +
            "(ρ −0.20 with no backward transfer).");
        report.Metric("split", new
        {
            tasks = T, per_task = setup.PerTask, validation_per_task = setup.ValidationPerTask, epochs = setup.Epochs, lr = setup.Lr, batch = setup.Batch, c = setup.C,
            lambdas = setup.Lambdas, chosen_lambda = split.ChosenLambda, joint, random = split.Random,
            rho = names.Select((n, m) => new { method = n, rho = rho[m], rho_validation = split.RhoValidation[m], final_validation = split.FinalValidation[m] }),
            hat_validation_by_epoch = split.HatValidationByEpoch,
            kept_epochs = names.Select((n, m) => new { method = n, epochs = split.Kept[m] }),
            matrices = names.Select((n, m) => new { method = n, matrix = ToJagged(results[m]) }),
        });
    }

    // The five two-class tasks of the split experiment: 0/1, 2/3, 4/5, 6/7, 8/9.
    private static readonly int[][] SplitGroups = [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]];

    /// <summary>
    /// The split-task experiment in one setup: plain SGD, EWC at each λ of the sweep, HAT and the joint
    /// network, trained side by side (one per core), each keeping every task's best validation epoch.
    /// The claim and <c>lab explore split</c> both run this.
    /// </summary>
    public static SplitResults RunSplitTasks(LabContext ctx, SplitSetup setup)
    {
        setup.Validate();
        int perTask = setup.PerTask, epochs = setup.Epochs, batch = setup.Batch, fisherSamples = setup.FisherSamples, hidden = setup.Hidden;
        double lr = setup.Lr, c = setup.C;
        double[] lambdas = setup.Lambdas;
        // λ is chosen by ρ on held-out training images of each task's classes, never on the test images.
        var tasks = TaskSequences.Split(ctx.Data, SplitGroups, perTask, ctx.Rng("split-tasks"), setup.ValidationPerTask);
        int T = tasks.Count;
        var standardize = Standardize.Fit(ctx.Data.Train.X);
        Module Input() => new Sequential(new Standardize(standardize.Mean.Item(), standardize.Std.Item()), new Flatten());
        MultiHead Net(Generator g) => new(new Sequential(Input(), new Linear(784, hidden, generator: g), Activations.ReLU(), new Linear(hidden, hidden, generator: g), Activations.ReLU()),
            [.. Enumerable.Range(0, T).Select(_ => (Module)new Linear(hidden, 2, generator: g))]);
        double Accuracy(Module m, TensorDataset d) => Trainer.Evaluate(m, d).Accuracy;

        var names = new List<string> { "SGD" };
        names.AddRange(lambdas.Select(l => $"EWC, λ = {l:G3}"));
        names.Add("HAT");
        names.Add("joint");
        var results = new AccuracyMatrix[names.Count];
        var finalValidation = new double[names.Count][];
        var joint = new double[T];
        // HAT's accuracy on each task's validation images after every epoch of that task, at s = s_max.
        var hatByEpoch = new double[T][];
        // Per method and task, the epoch (1-based) whose network was kept: the lowest validation cross-entropy,
        // as the paper's code keeps its best validation model for every approach.
        var kept = new int[names.Count][];
        LabContext.Concurrently(names.Count, m =>
        {
            string name = names[m];
            var r = new AccuracyMatrix(T);
            kept[m] = new int[T];
            Module model;
            if (name == "HAT")
            {
                var hat = new HatMlp(784, [hidden, hidden], [.. Enumerable.Repeat(2, T)], ctx.Rng("split-init"), Input(), setup.SMax);
                for (int t = 0; t < T; t++)
                {
                    var done = hat.TrainTask(t, new DataLoader(tasks[t].Train, batch, shuffle: true, seed: ctx.Rng("split-order", t).Seed), epochs, lr, c,
                        keepBestOn: tasks[t].Validation);
                    kept[m][t] = done.KeptEpoch;
                    hatByEpoch[t] = [.. done.Validation.Select(v => v.Accuracy)];
                    for (int j = 0; j < T; j++) { hat.ActiveTask = j; r[t, j] = Accuracy(hat, tasks[j].Test); }
                }
                model = hat;
            }
            else if (name == "joint")
            {
                // Every task's examples together, each through its own head: the multitask reference of the forgetting ratio.
                var net = Net(ctx.Rng("split-init"));
                var opt = new Sgd(net.Parameters(), lr);
                var loaders = tasks.Select((t, i) => new DataLoader(t.Train, batch, shuffle: true, seed: ctx.Rng("split-joint", i).Seed)).ToList();
                var best = new BestEpoch(net);
                for (int e = 0; e < epochs; e++)
                {
                    net.Train();
                    var epochs_ = loaders.Select(l => l.NextEpoch().GetEnumerator()).ToList();
                    bool any = true;
                    while (any)
                    {
                        any = false;
                        for (int t = 0; t < T; t++)
                        {
                            if (!epochs_[t].MoveNext()) continue;
                            any = true;
                            net.ActiveTask = t;
                            opt.ZeroGrad(); Losses.CrossEntropy(net.Forward(epochs_[t].Current.X), epochs_[t].Current.Y).Backward(); opt.Step();
                        }
                    }
                    // The joint network is kept at its lowest mean validation cross-entropy over the tasks, like the others.
                    net.Eval();
                    best.Offer(e + 1, Enumerable.Range(0, T).Average(j => { net.ActiveTask = j; return Trainer.Evaluate(net, tasks[j].Validation!).Loss; }));
                }
                best.Restore();
                Array.Fill(kept[m], best.Epoch);
                net.Eval();
                for (int j = 0; j < T; j++) { net.ActiveTask = j; joint[j] = Accuracy(net, tasks[j].Test); }
                for (int i = 0; i < T; i++) for (int j = 0; j < T; j++) r[i, j] = joint[j];
                model = net;
            }
            else
            {
                double lambda = name == "SGD" ? 0 : lambdas[m - 1];
                var fisherRng = ctx.Rng("split-fisher", (int)lambda);
                var net = Net(ctx.Rng("split-init"));
                var opt = new Sgd(net.Parameters(), lr);
                var anchors = new QuadraticAnchors(net.Parameters());
                for (int t = 0; t < T; t++)
                {
                    net.ActiveTask = t;
                    var best = new BestEpoch(net);
                    var loader = new DataLoader(tasks[t].Train, batch, shuffle: true, seed: ctx.Rng("split-order", t).Seed);
                    if (lambda > 0 && setup.Ewc == EwcUpdate.Penalty)
                        // The textbook form: the penalty in the loss, so the kept epoch is chosen by the validation loss with it too.
                        Trainer.Fit(net, opt, loader, epochs, test: tasks[t].Validation, keepBest: best,
                            loss: (output, target) => Losses.CrossEntropy(output, target) + anchors.PenaltyTerm(lambda));
                    else
                        using (lambda > 0 ? anchors.Attach(opt, lambda) : null)
                            Trainer.Fit(net, opt, loader, epochs, test: tasks[t].Validation, keepBest: best);
                    kept[m][t] = best.Epoch;
                    for (int j = 0; j < T; j++) { net.ActiveTask = j; r[t, j] = Accuracy(net, tasks[j].Test); }
                    // A diverged network (the penalty form's step at large λ; its weights are NaN) has no Fisher
                    // information to anchor: it stays NaN through every later step whatever the anchors hold, and its
                    // accuracies are what the matrix records.
                    if (lambda > 0 && !Diverged(net))
                    {
                        net.ActiveTask = t;
                        // The Fisher's sampled labels are drawn from a generator of this λ's own, so that changing the sweep leaves the other λ's runs as they were.
                        anchors.Consolidate(Fisher.Diagonal(net.Forward, net.Parameters(), tasks[t].Train.X.Narrow(0, 0, Math.Min(fisherSamples, tasks[t].Train.Count)), fisherRng));
                    }
                }
                model = net;
            }
            results[m] = r;
            finalValidation[m] = [.. Enumerable.Range(0, T).Select(j =>
            {
                ((ITaskConditioned)model).ActiveTask = j;
                return Accuracy(model, tasks[j].Validation!);
            })];
        });
        var random = tasks.Select(t => AccuracyMatrix.RandomStratified(t.Test.Y.ToArray<int>())).ToArray();
        var rho = results.Select(r => r.ForgettingRatio(joint, random)).ToArray();
        var randomValidation = tasks.Select(t => AccuracyMatrix.RandomStratified(t.Validation!.Y.ToArray<int>())).ToArray();
        var rhoValidation = finalValidation.Select(f => AccuracyMatrix.ForgettingRatio(f, finalValidation[^1], randomValidation)).ToArray();

        return new SplitResults([.. names], results, rho, rhoValidation, finalValidation, joint, random, kept, hatByEpoch, lambdas);
    }

    private static bool Diverged(Module net) => net.Parameters().Any(p => !double.IsFinite(p.Sum().Item()));

    // A fraction as points of accuracy with one decimal ("-2.9 points"; never "-0.0").
    private static string Points(double x) => Report.Num(100 * x, "F1") + " points";

    private static double[] Column(AccuracyMatrix r, int j) => Enumerable.Range(0, r.Tasks).Select(i => r[i, j]).ToArray();

    private static double[][] ToJagged(AccuracyMatrix r) => Enumerable.Range(0, r.Tasks).Select(i => Enumerable.Range(0, r.Tasks).Select(j => r[i, j]).ToArray()).ToArray();
}
