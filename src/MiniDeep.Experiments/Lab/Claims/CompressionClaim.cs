using System.Diagnostics;
using MiniDeep.Compression;
using MiniDeep.Data;
using MiniDeep.Geometry;
using MiniDeep.Nn;
using MiniDeep.Optim;
using static MiniDeep.Experiments.Lab.LabModels;

namespace MiniDeep.Experiments.Lab.Claims;

/// <summary>
/// "Neural networks can be compressed": most of a trained network's weights can be removed, and the
/// rest stored in a few bits each, at almost no cost in accuracy (Han, Mao &amp; Dally's Deep
/// Compression on LeNet-300-100).
/// </summary>
/// <remarks>About 120 s at the standard budget, the teacher's 15 epochs most of it.</remarks>
public sealed class CompressionClaim : IClaim
{
    /// <inheritdoc/>
    public string Id => "compression";
    /// <inheritdoc/>
    public string Title => "Neural networks can be compressed";
    /// <inheritdoc/>
    public string Statement =>
        "A trained network keeps its accuracy when nine tenths of its weights are removed and the rest are stored as a few bits each, " +
        "so the file that holds it shrinks by more than an order of magnitude.";

    /// <inheritdoc/>
    public IReadOnlyList<Citation> Papers { get; } =
    [
        new("Han, Pool, Tran & Dally", 2015, "Learning both weights and connections for efficient neural networks",
            "LeNet-300-100 keeps 8% of its weights (fc1 8%, fc2 9%, fc3 26%) after iterative pruning and retraining, with no loss of accuracy (MNIST)"),
        new("Hinton, Vinyals & Dean", 2015, "Distilling the knowledge in a neural network",
            "a small net trained on an ensemble's soft targets at temperature T comes close to it (MNIST: 146 errors for the teacher, 146 → 74 for the 784-800-800-10 student); with every 3 left out of the transfer set, 98.6% of the test 3s are right after raising the 3's bias"),
        new("Han, Mao & Dally", 2016, "Deep compression: compressing deep neural networks with pruning, trained quantization and Huffman coding",
            "LeNet-300-100: 1070 KB → 27 KB (40×) with pruning, 6-bit weight sharing and Huffman coding, error 1.64% → 1.58% (MNIST)"),
    ];

    // LeNet-300-100, as in Han et al.
    private static Sequential LeNet300(Tensor trainX, Generator g) => Mlp(trainX, g, 784, 300, 100, 10);

    private static List<Linear> Layers(Sequential model) => model.NamedModules().Select(m => m.Module).OfType<Linear>().ToList();

    /// <inheritdoc/>
    public IReadOnlyList<Check> Run(LabContext ctx, Report report)
    {
        var checks = new List<Check>();
        report.Setup.Add($"Data: {ctx.Data.Name}, {ctx.Data.Train.Count:N0} training and {ctx.Data.Test.Count:N0} test images.");
        DeepCompression(ctx, report, checks);
        Distillation(ctx, report, checks);
        return checks;
    }

    // ----- 1a: pruning, weight sharing, Huffman coding -----

    private static void DeepCompression(LabContext ctx, Report report, List<Check> checks)
    {
        var clock = Stopwatch.StartNew();
        int epochs = ctx.ByBudget(6, 10, 20);
        int rounds = ctx.ByBudget(3, 4, 6), retrainEpochs = ctx.ByBudget(2, 2, 3);
        int shareEpochs = ctx.ByBudget(1, 2, 3);
        bool smoke = ctx.Budget == Budget.Smoke;
        // SynthDigits (smoke) has a fifth of the training images and prunes less well: half the sparsity there.
        double[] finalKeep = smoke ? [0.20, 0.30, 0.60] : [0.10, 0.15, 0.40];
        const int clusters = 64;
        var train = ctx.Data.Train;
        var test = ctx.Data.Test;
        ulong order = ctx.Rng("compression-order").Seed;

        var model = LeNet300(train.X, ctx.Rng("compression-init"));
        Fit(model, train, epochs, 128, 1e-3, order);
        double baseAccuracy = Trainer.Evaluate(model, test).Accuracy;
        var layers = Layers(model);
        var weights = layers.Select(l => l.Weight).ToList();
        var trained = ParameterVector.Flatten(weights);   // the trained weights, to restore between sensitivity runs
        ctx.Say($"LeNet-300-100: test accuracy {Report.Pct(baseAccuracy)} after {epochs} epochs ({clock.Elapsed.TotalSeconds:F0} s)");

        // One-shot pruning without retraining, each layer alone and all together (global), to see which
        // layers tolerate it: Han et al.'s sensitivity analysis.
        double[] sparsities = [0, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98];
        var sensitivity = new double[layers.Count + 1][];
        for (int which = 0; which <= layers.Count; which++)
        {
            sensitivity[which] = new double[sparsities.Length];
            for (int s = 0; s < sparsities.Length; s++)
            {
                ParameterVector.Assign(weights, trained);
                var masks = which < layers.Count
                    ? PruningMasks.PerLayer([(weights[which], 1 - sparsities[s])])
                    : PruningMasks.Global(weights, 1 - sparsities[s]);
                masks.Apply();
                sensitivity[which][s] = Trainer.Evaluate(model, test).Accuracy;
            }
        }
        ParameterVector.Assign(weights, trained);

        // Iterative pruning with retraining to the per-layer rates.
        var roundRows = new List<(int Round, double[] Density, double Overall, double Accuracy)>();
        var masksFinal = IterativePruning.PerLayer(weights.Select((w, i) => (w, finalKeep[i])).ToList(), rounds, (masks, round) =>
        {
            var opt = new Adam(model.Parameters(), 3e-4);
            var loader = new DataLoader(train, 128, shuffle: true, seed: ctx.Rng("compression-retrain", round).Seed);
            using (masks.Attach(opt))
                Trainer.Fit(model, opt, loader, retrainEpochs, scheduler: new CosineLr(opt, retrainEpochs * loader.BatchesPerEpoch));
            roundRows.Add((round, weights.Select(masks.DensityOf).ToArray(), masks.Density, Trainer.Evaluate(model, test).Accuracy));
        });
        double prunedAccuracy = roundRows[^1].Accuracy;
        double density = masksFinal.Density;
        ctx.Say($"iterative pruning, {rounds} rounds: {Report.Pct(density)} of the weights left, test accuracy {Report.Pct(prunedAccuracy)} ({clock.Elapsed.TotalSeconds:F0} s)");

        // Weight sharing: 64 centroids per layer, then the centroids fine-tuned (biases with Adam).
        var shared = weights.Select(w => SharedWeights.Cluster(w, clusters, masksFinal.MaskOf(w))).ToList();
        double clusteredAccuracy = Trainer.Evaluate(model, test).Accuracy;
        var biases = layers.Select(l => l.Bias!).ToList();
        var biasOpt = new Adam(biases, 1e-4);
        var shareLoader = new DataLoader(train, 128, shuffle: true, seed: ctx.Rng("compression-share").Seed);
        const double centroidLr = 1e-4;
        model.Train();
        for (int e = 0; e < shareEpochs; e++)
            foreach (var batch in shareLoader.NextEpoch())
            {
                biasOpt.ZeroGrad();
                foreach (var w in weights) w.Grad = null;
                Losses.CrossEntropy(model.Forward(batch.X), batch.Y).Backward();
                foreach (var s in shared) s.StepCentroids(centroidLr);
                biasOpt.Step();
            }
        model.Eval();
        double sharedAccuracy = Trainer.Evaluate(model, test).Accuracy;
        ctx.Say($"weight sharing, {clusters} centroids a layer: test accuracy {Report.Pct(clusteredAccuracy)} clustered, {Report.Pct(sharedAccuracy)} after fine-tuning the centroids ({clock.Elapsed.TotalSeconds:F0} s)");

        // The files: every stage serialized, its size measured.
        var names = layers.SelectMany((_, i) => new[] { $"fc{i + 1}.weight", $"fc{i + 1}.bias" }).ToArray();
        List<(string, CompressedTensor)> Archive(Func<int, CompressedTensor> weight) =>
            layers.SelectMany((l, i) => new[] { (names[2 * i], weight(i)), (names[2 * i + 1], CompressedTensor.Dense(l.Bias!)) }).ToList();
        var trainedWeights = ParameterVector.Unflatten(trained, weights);
        long dense = CompressedArchive.Encode(Archive(i => CompressedTensor.Dense(trainedWeights[i])), false).Length;
        long sparse = CompressedArchive.Encode(Archive(i => CompressedTensor.Sparse(weights[i])), false).Length;
        var sharedArchive = Archive(i => CompressedTensor.Shared(shared[i]));
        long packed = CompressedArchive.Encode(sharedArchive, false).Length;
        var path = Path.Combine(ctx.OutDir, "lenet-300-100.mdcz");
        long coded = CompressedArchive.Save(path, sharedArchive, huffman: true);
        // The file decodes to exactly the network that was evaluated.
        var decoded = CompressedArchive.Load(path);
        bool exact = decoded.Where((_, k) => k % 2 == 0).Select((t, i) => t.Tensor.ToTensor().ToFloatArray().SequenceEqual(weights[i].ToFloatArray())).All(x => x);
        if (!exact) throw new InvalidOperationException("compression: the archive does not decode to the evaluated weights");
        ctx.Say($"sizes: fp32 {dense:N0} B, pruned {sparse:N0} B, + weight sharing {packed:N0} B ({(double)dense / packed:F1}×), + Huffman {coded:N0} B ({(double)dense / coded:F1}×) ({clock.Elapsed.TotalSeconds:F0} s)");

        checks.Add(new("pruned_density", $"LeNet-300-100 after {rounds} rounds of pruning and retraining: fraction of weights left{(smoke ? " (smoke budget: SynthDigits, half the sparsity)" : "")}",
            density, Comparison.AtMost, smoke ? 0.25 : 0.12,
            "8% (MNIST; Han et al. 2015)", "P1"));
        checks.Add(new("pruning_accuracy_loss", "test accuracy lost to pruning (points)", baseAccuracy - prunedAccuracy, Comparison.AtMost, 0.01,
            "none: error 1.64% → 1.59% (MNIST)", "P2"));
        checks.Add(new("sharing_accuracy_loss", $"further test accuracy lost to {clusters}-centroid weight sharing with centroid fine-tuning (points)", prunedAccuracy - sharedAccuracy, Comparison.AtMost, 0.003,
            "none: 1.58% error after all three stages (MNIST)", "P2"));
        checks.Add(new("size_ratio_quantized", "fp32 file bytes ÷ pruned + weight-shared file bytes (measured)", (double)dense / packed, Comparison.AtLeast, smoke ? 10 : 20,
            "(Han et al. report the three stages together)", "F1"));
        checks.Add(new("size_ratio_huffman", "fp32 file bytes ÷ pruned + weight-shared + Huffman-coded file bytes (measured)", (double)dense / coded, Comparison.AtLeast, smoke ? 12 : 24,
            "40× (1070 KB → 27 KB, MNIST)", "F1"));

        report.Section("Pruning, weight sharing and Huffman coding");
        report.Text($"LeNet-300-100 (784 → 300 → 100 → 10, ReLU; {weights.Sum(w => (long)w.Numel):N0} weights and {biases.Sum(b => (long)b.Numel)} biases) trained with Adam " +
            $"(lr 1e-3, cosine decay, batch 128) for {epochs} epochs on the {train.Count:N0} training images: {Report.Pct(baseAccuracy)} test accuracy.");
        report.Text($"Pruning: {rounds} rounds, each removing the smallest-magnitude weights of every layer so that the fraction left falls geometrically to " +
            $"fc1 {Report.Pct(finalKeep[0])}, fc2 {Report.Pct(finalKeep[1])} and fc3 {Report.Pct(finalKeep[2])}, and each followed by {retrainEpochs} epochs of retraining with the masks held " +
            $"(Adam lr 3e-4, cosine decay; pruned weights get no gradient and are re-zeroed after every step). The rates are ours, set before the first run: Han et al. reached 8%, 9% and 26% on MNIST, " +
            "and on Fashion-MNIST the first layer is known not to go as low without losing more; the last layer, with only 1,000 weights, is the most sensitive (below) and costs little to keep. " +
            $"{Report.Pct(density)} of the weights are left, at {Report.Pct(prunedAccuracy)} test accuracy ({100 * (baseAccuracy - prunedAccuracy):F2} points lost).");
        report.Table(["round", "fc1 left", "fc2 left", "fc3 left", "all weights left", "test accuracy after retraining"],
            roundRows.Select(r => new[] { r.Round.ToString(), Report.Pct(r.Density[0]), Report.Pct(r.Density[1]), Report.Pct(r.Density[2]), Report.Pct(r.Overall), Report.Pct(r.Accuracy) }));
        int at90 = Array.IndexOf(sparsities, 0.9);
        var bySensitivity = Enumerable.Range(0, layers.Count).OrderBy(i => sensitivity[i][at90]).Select(i => $"fc{i + 1} ({Report.Pct(sensitivity[i][at90])})").ToArray();
        var pct = sparsities.Select(s => 100 * s).ToArray();
        report.Image("sensitivity.png", Plots.Lines("Pruning without retraining: accuracy against sparsity", "weights pruned (%)", "test accuracy",
            [.. Enumerable.Range(0, layers.Count).Select(i => new Series($"fc{i + 1} alone", pct, sensitivity[i])), new Series("all layers, one global threshold", pct, sensitivity[^1]),
                new Series("all layers, iterative with retraining (our rates)", [0, .. roundRows.Select(r => 100 * (1 - r.Overall))], [baseAccuracy, .. roundRows.Select(r => r.Accuracy)])],
            legend: ScottPlot.Alignment.LowerLeft),
            $"Magnitude pruning of the trained network without retraining, one layer at a time and all layers together with one threshold, and the rounds of iterative pruning with retraining. " +
            $"With 90% of a layer's weights pruned and no retraining, from the most to the least sensitive: {string.Join(", ", bySensitivity)}.");
        report.Text($"Weight sharing: the live weights of each layer clustered into {clusters} values (6-bit codes) by k-means with linear initialization: " +
            $"{Report.Pct(clusteredAccuracy)} straight after clustering; after {shareEpochs} epoch{(shareEpochs > 1 ? "s" : "")} of fine-tuning the centroids " +
            $"(SGD lr {centroidLr:G2} on each centroid's summed gradient; biases with Adam lr 1e-4) {Report.Pct(sharedAccuracy)}, " +
            $"{Math.Abs(100 * (prunedAccuracy - sharedAccuracy)):F2} points {(sharedAccuracy > prunedAccuracy ? "above" : "below")} the pruned network.");
        report.Text($"Sizes are the lengths of files written by `CompressedArchive`: headers, shapes, codebooks, biases (fp32), positions as 5-bit gaps, values, and a 4-byte CRC-32 that makes a damaged file an error. " +
            $"The last one is written beside this report (`lenet-300-100.mdcz`) and decodes to exactly the evaluated network.");
        report.Table(["stage", "bytes", "× smaller than fp32", "test accuracy"],
        [
            ["fp32, dense", $"{dense:N0}", "1.0", Report.Pct(baseAccuracy)],
            ["pruned (sparse, fp32 values)", $"{sparse:N0}", $"{(double)dense / sparse:F1}", Report.Pct(prunedAccuracy)],
            [$"+ weight sharing ({clusters} values, 6-bit codes)", $"{packed:N0}", $"{(double)dense / packed:F1}", Report.Pct(sharedAccuracy)],
            ["+ Huffman coding of gaps and codes", $"{coded:N0}", $"{(double)dense / coded:F1}", Report.Pct(sharedAccuracy)],
        ]);
        report.Metric("deep_compression", new
        {
            epochs, rounds, retrain_epochs = retrainEpochs, final_keep = finalKeep, clusters, share_epochs = shareEpochs,
            base_accuracy = baseAccuracy, pruned_accuracy = prunedAccuracy, clustered_accuracy = clusteredAccuracy, shared_accuracy = sharedAccuracy, density,
            rounds_detail = roundRows.Select(r => new { r.Round, density = r.Density, accuracy = r.Accuracy }),
            sparsities, sensitivity, bytes = new { dense, sparse, packed, huffman = coded },
        });
    }

    // ----- 1b: distillation -----

    private const int LeftOut = 3;   // Dress: the class kept out of the student's transfer set
    private const int ValidationImages = 5_000;   // training images outside the transfer set that choose T and the bias correction

    // Inputs and a target row per image: the teacher's 10 logits, then the label (as a float), so a
    // DataLoader shuffles them together.
    private static TensorDataset WithTeacher(TensorDataset d, Tensor teacherLogits) =>
        new(d.X, Tensor.Concat([teacherLogits, d.Y.To(DType.Float32).Reshape(d.Count, 1)], 1));

    private static Sequential Student(Tensor trainX, Generator g) => Mlp(trainX, g, 784, 64, 64, 10);

    // Trains a student with Adam (cosine decay) on hard labels alone (teacher null) or on the distillation objective.
    private static Sequential TrainStudent(TensorDataset data, Tensor? teacherLogits, double temperature, double alpha, int epochs, Generator init, ulong order)
    {
        var student = Student(data.X, init);
        var opt = new Adam(student.Parameters(), 1e-3);
        var loader = new DataLoader(teacherLogits is null ? data : WithTeacher(data, teacherLogits), 128, shuffle: true, seed: order);
        Func<Tensor, Tensor, Tensor>? loss = teacherLogits is null ? null : (output, target) =>
            Losses.Distillation(output, target.Narrow(1, 0, 10), target.Narrow(1, 10, 1).Reshape(target.Size(0)).To(DType.Int32), temperature, alpha);
        Trainer.Fit(student, opt, loader, epochs, loss: loss, scheduler: new CosineLr(opt, epochs * loader.BatchesPerEpoch));
        return student;
    }

    private static Tensor Logits(Module model, Tensor x)
    {
        using var _ = Autograd.NoGrad();
        model.Eval();
        return Batched(x, Tensor.Zeros(new Shape(x.Size(0)), DType.Int32), 1_000, (xb, _) => model.Forward(xb));
    }

    // Hinton et al.'s bias correction: the offset to class cls's logit that gives it `share` of the
    // predictions on a set of images (bisection: the share only grows with the offset; no labels are used).
    private static double ShareOffset(float[] logits, int rows, int cls, double share)
    {
        double Share(double offset)
        {
            int count = 0;
            for (int i = 0; i < rows; i++) if (Predict(logits, i, cls, offset) == cls) count++;
            return count / (double)rows;
        }
        double lo = -100, hi = 100;
        for (int it = 0; it < 60; it++) { double mid = (lo + hi) / 2; if (Share(mid) < share) lo = mid; else hi = mid; }
        return hi;
    }

    // Fraction of the images of class cls predicted as cls, with its logit raised by offset.
    private static double Recall(float[] logits, int[] labels, int cls, double offset = 0)
    {
        int right = 0, total = 0;
        for (int i = 0; i < labels.Length; i++)
            if (labels[i] == cls) { total++; if (Predict(logits, i, cls, offset) == cls) right++; }
        return right / (double)total;
    }

    private static int Predict(float[] logits, int row, int cls, double offset)
    {
        int best = 0;
        double bestValue = double.NegativeInfinity;
        for (int c = 0; c < 10; c++)
        {
            double v = logits[row * 10 + c] + (c == cls ? offset : 0);
            if (v > bestValue) { bestValue = v; best = c; }
        }
        return best;
    }

    private static double ErrorOf(float[] logits, int[] labels) =>
        Enumerable.Range(0, labels.Length).Count(i => Predict(logits, i, -1, 0) != labels[i]) / (double)labels.Length;

    private static void Distillation(LabContext ctx, Report report, List<Check> checks)
    {
        var clock = Stopwatch.StartNew();
        int teacherEpochs = ctx.ByBudget(8, 15, 20), memberEpochs = ctx.ByBudget(4, 5, 8);
        int studentEpochs = ctx.ByBudget(20, 30, 40);
        int seeds = ctx.ByBudget(1, 3, 5), members = 5;
        // Room is left for validation images when a data set is small (the smoke run's has 12,000).
        int transfer = Math.Min(10_000, ctx.Data.Train.Count * 5 / 6);
        double[] temperatures = [1, 2, 4, 10, 20];
        const double alpha = 0.5;
        var train = ctx.Data.Train;
        var test = ctx.Data.Test;
        var testLabels = test.Y.ToArray<int>();
        string left = ctx.Data.Name == "fashion-mnist" ? "Dress" : $"class {LeftOut}";

        // The teacher: a large MLP with dropout, on the whole training set.
        var tg = ctx.Rng("distill-teacher");
        var teacher = new Sequential(Standardize.Fit(train.X), new Flatten(), new Dropout(0.2, tg), new Linear(784, 1200, generator: tg), Activations.ReLU(), new Dropout(0.5, tg),
            new Linear(1200, 1200, generator: tg), Activations.ReLU(), new Dropout(0.5, tg), new Linear(1200, 10, generator: tg));
        Fit(teacher, train, teacherEpochs, 128, 1e-3, ctx.Rng("distill-teacher-order").Seed);
        // Five smaller networks for the ensemble teacher, trained side by side.
        var ensembleMembers = new Sequential[members];
        LabContext.Concurrently(members, m =>
        {
            var g = ctx.Rng("distill-member", m);
            ensembleMembers[m] = new Sequential(Standardize.Fit(train.X), new Flatten(), new Linear(784, 400, generator: g), Activations.ReLU(), new Dropout(0.3, g),
                new Linear(400, 400, generator: g), Activations.ReLU(), new Dropout(0.3, g), new Linear(400, 10, generator: g));
            Fit(ensembleMembers[m], train, memberEpochs, 128, 1e-3, ctx.Rng("distill-member-order", m).Seed);
        });
        var ensemble = new Ensemble(ensembleMembers);
        double teacherError = ErrorOf(Logits(teacher, test.X).ToFloatArray(), testLabels);
        double ensembleError = ErrorOf(Logits(ensemble, test.X).ToFloatArray(), testLabels);
        var memberErrors = ensembleMembers.Select(m => ErrorOf(Logits(m, test.X).ToFloatArray(), testLabels)).ToArray();
        ctx.Say($"teacher 784-1200-1200-10: test error {Report.Pct(teacherError)}; ensemble of {members} 784-400-400-10: {Report.Pct(ensembleError)} (members {Report.Pct(memberErrors.Min())}–{Report.Pct(memberErrors.Max())}) ({clock.Elapsed.TotalSeconds:F0} s)");

        // The transfer set: 10,000 training images; a second one without a single Dress. The next
        // 5,000 of the same permutation are the validation images that choose between T = 2 and 4,
        // so the temperature the check reports is not picked on the test set it is measured on.
        var transferOrder = Tensor.RandPerm(train.Count, ctx.Rng("distill-transfer")).ToArray<int>();
        TensorDataset Part(int from, int count) { var b = train.Get(transferOrder[from..(from + count)]); return new(b.X, b.Y); }
        var sub = Part(0, transfer);
        var validation = Part(transfer, Math.Min(ValidationImages, train.Count - transfer));
        var validationLabels = validation.Y.ToArray<int>();
        var subLabels = sub.Y.ToArray<int>();
        var noDressIdx = Tensor.FromArray(Enumerable.Range(0, sub.Count).Where(i => subLabels[i] != LeftOut).ToArray());
        var noDress = new TensorDataset(sub.X.IndexSelect(0, noDressIdx), sub.Y.IndexSelect(0, noDressIdx));
        var teacherOnSub = Logits(teacher, sub.X);
        var teacherOnNoDress = teacherOnSub.IndexSelect(0, noDressIdx);
        var ensembleOnSub = Logits(ensemble, sub.X);

        // Runs: (what, temperature, seed). "alone" = hard labels only.
        var runs = new List<(string What, double T, int Seed)>();
        for (int s = 0; s < seeds; s++) { runs.Add(("alone", 0, s)); runs.Add(("distilled", 2, s)); runs.Add(("distilled", 4, s)); }
        foreach (double t in temperatures) if (t is not (2 or 4)) runs.Add(("distilled", t, 0));
        runs.Add(("ensemble", 4, 0));
        runs.Add(("alone, no Dress", 0, 0));
        runs.Add(("distilled, no Dress", 4, 0));
        var logits = new float[runs.Count][];
        var validationLogits = new float[runs.Count][];
        LabContext.Concurrently(runs.Count, k =>
        {
            var (what, t, seed) = runs[k];
            var init = ctx.Rng("distill-student", seed);
            ulong order = ctx.Rng("distill-student-order", seed).Seed;
            var student = what switch
            {
                "alone" => TrainStudent(sub, null, 1, 0, studentEpochs, init, order),
                "distilled" => TrainStudent(sub, teacherOnSub, t, alpha, studentEpochs, init, order),
                "ensemble" => TrainStudent(sub, ensembleOnSub, t, alpha, studentEpochs, init, order),
                "alone, no Dress" => TrainStudent(noDress, null, 1, 0, studentEpochs, init, order),
                _ => TrainStudent(noDress, teacherOnNoDress, t, alpha, studentEpochs, init, order),
            };
            logits[k] = Logits(student, test.X).ToFloatArray();
            validationLogits[k] = Logits(student, validation.X).ToFloatArray();
        });
        double Err(int k) => ErrorOf(logits[k], testLabels);
        int[] Runs(string what, double t) => Enumerable.Range(0, runs.Count).Where(k => runs[k].What == what && runs[k].T == t).ToArray();
        double alone = Median(Runs("alone", 0).Select(Err));
        var distilledByT = new[] { 2.0, 4.0 }.ToDictionary(t => t, t => Median(Runs("distilled", t).Select(Err)));
        var validationByT = new[] { 2.0, 4.0 }.ToDictionary(t => t, t => Median(Runs("distilled", t).Select(k => ErrorOf(validationLogits[k], validationLabels))));
        double bestT = validationByT.MinBy(kv => kv.Value).Key, distilled = distilledByT[bestT];
        double gapClosed = (alone - distilled) / (alone - teacherError);
        var sweep = temperatures.Select(t => Err(Runs("distilled", t).First(k => runs[k].Seed == 0))).ToArray();
        double ensembleStudent = Err(Runs("ensemble", 4)[0]);
        int aloneNo = Runs("alone, no Dress", 0)[0], distilledNo = Runs("distilled, no Dress", 4)[0];
        // The offsets are set on the validation images' predictions, so the test images play no part in the correction.
        double offset = ShareOffset(validationLogits[distilledNo], validation.Count, LeftOut, 0.1);
        double dressCorrected = Recall(logits[distilledNo], testLabels, LeftOut, offset);
        double dressRaw = Recall(logits[distilledNo], testLabels, LeftOut);
        double aloneDressRaw = Recall(logits[aloneNo], testLabels, LeftOut);
        double aloneDressCorrected = Recall(logits[aloneNo], testLabels, LeftOut, ShareOffset(validationLogits[aloneNo], validation.Count, LeftOut, 0.1));
        ctx.Say($"students 784-64-64-10 on {transfer:N0} images: alone {Report.Pct(alone)} error, distilled T=2 {Report.Pct(distilledByT[2])}, T=4 {Report.Pct(distilledByT[4])} " +
            $"({100 * gapClosed:F0}% of the gap to the teacher closed); from the ensemble {Report.Pct(ensembleStudent)}; without {left}: distilled {Report.Pct(dressRaw)} of test {left} right, " +
            $"{Report.Pct(dressCorrected)} after the bias correction; alone {Report.Pct(aloneDressRaw)} ({clock.Elapsed.TotalSeconds:F0} s)");

        checks.Add(new("distilled_dress_recall", $"student distilled (T = 4) without a single {left} in its transfer set: test {left} images classified right after raising the {left} bias to a 10% share of the validation images' predictions",
            dressCorrected, Comparison.AtLeast, ctx.Budget == Budget.Smoke ? 0.5 : 0.6, "98.6% of the test 3s, none seen (MNIST)", "P1"));
        checks.Add(new("alone_dress_recall", $"the same student trained alone on hard labels: test {left} images classified right, no correction", aloneDressRaw, Comparison.AtMost, 0,
            "(a class never seen is never predicted)", "P1"));
        checks.Add(new("distilled_error_gap", $"student test error: distilled (T = 2 or 4, whichever has the lower validation error; α = {alpha}) − trained alone (medians of {seeds} seeds; points)", distilled - alone, Comparison.AtMost, 0,
            "146 → 74 errors (MNIST, 784-800-800-10 student)", "P2"));

        report.Section("Distillation");
        report.Text($"The teacher: an MLP 784-1200-1200-10 with dropout (0.2 on the inputs, 0.5 on the hidden layers) trained on all {train.Count:N0} training images " +
            $"(Adam lr 1e-3 with cosine decay, batch 128, {teacherEpochs} epochs): {Report.Pct(teacherError)} test error. The students: MLPs 784-64-64-10 trained for {studentEpochs} epochs " +
            $"(Adam lr 1e-3, cosine decay, batch 128) on a fixed subset of {transfer:N0} training images, the transfer set. Trained alone on the hard labels they reach " +
            $"{Report.Pct(alone)} test error (median of {seeds} seeds); trained on α·T²·KL(teacher_T ‖ student_T) + (1 − α)·CE with α = {alpha}: {Report.Pct(distilledByT[2])} at T = 2 and " +
            $"{Report.Pct(distilledByT[4])} at T = 4, {100 * (alone - distilled):F2} points better at T = {bestT}, {100 * gapClosed:F0}% of the gap between the student alone and the teacher. " +
            $"T = {bestT} is the temperature the check uses because its validation error is the lower one ({Report.Pct(validationByT[2])} at T = 2, {Report.Pct(validationByT[4])} at T = 4, " +
            $"medians on {validation.Count:N0} training images outside the transfer set); the test images play no part in that choice. " +
            "On MNIST Hinton et al. halved the student's errors; on Fashion-MNIST, with a student this small, the gain is a fraction of a point.");
        report.Table(["student", "test error (each seed)", "median"],
        [
            ["alone (hard labels)", string.Join(", ", Runs("alone", 0).Select(k => Report.Pct(Err(k)))), Report.Pct(alone)],
            ["distilled, T = 2", string.Join(", ", Runs("distilled", 2).Select(k => Report.Pct(Err(k)))), Report.Pct(distilledByT[2])],
            ["distilled, T = 4", string.Join(", ", Runs("distilled", 4).Select(k => Report.Pct(Err(k)))), Report.Pct(distilledByT[4])],
            [$"distilled from an ensemble of {members} (T = 4)", Report.Pct(ensembleStudent), Report.Pct(ensembleStudent)],
            ["teacher 784-1200-1200-10", Report.Pct(teacherError), Report.Pct(teacherError)],
            [$"ensemble of {members} MLPs 784-400-400-10 ({memberEpochs} epochs each)", Report.Pct(ensembleError), Report.Pct(ensembleError)],
        ]);
        report.Image("temperature.png", Plots.Lines("Distilled student: test error against temperature", "temperature T", "test error",
            [new Series("distilled student (seed 0)", temperatures, sweep)], horizontal: (alone, "student alone (median)"), legend: ScottPlot.Alignment.UpperLeft),
            $"The temperature sweep (α = {alpha}, seed 0): the lowest error at T = {temperatures[Array.IndexOf(sweep, sweep.Min())]} ({Report.Pct(sweep.Min())}), the highest at T = {temperatures[Array.IndexOf(sweep, sweep.Max())]} ({Report.Pct(sweep.Max())}). " +
            "The ensemble teacher averages its members' logits, the geometric mean of their distributions.");
        report.Text($"The left-out class: a second transfer set is the same {transfer:N0} images without the {subLabels.Count(l => l == LeftOut)} images of class {LeftOut} ({left}), so the student never sees one, " +
            $"only the teacher's soft targets on the other images, where {left} is sometimes a little likely. Distilled at T = 4 it classifies {Report.Pct(dressRaw)} of the test {left} images right as it stands; " +
            $"raising the {left} logit by {offset:F2}, the offset that gives {left} 10% of the predictions (its share of the classes) on the {validation.Count:N0} validation images, no labels used " +
            $"(Hinton et al.'s bias correction), brings that to {Report.Pct(dressCorrected)}. " +
            $"Trained alone on the same images, the student gets {Report.Pct(aloneDressRaw)} right, and {Report.Pct(aloneDressCorrected)} after the same correction: what the distilled student knows of that class came from the teacher.");
        report.Metric("distillation", new
        {
            teacher_epochs = teacherEpochs, member_epochs = memberEpochs, student_epochs = studentEpochs, seeds, transfer, alpha, temperatures,
            teacher_error = teacherError, ensemble_error = ensembleError, member_errors = memberErrors,
            alone = Runs("alone", 0).Select(Err), distilled_t2 = Runs("distilled", 2).Select(Err), distilled_t4 = Runs("distilled", 4).Select(Err),
            validation_images = validation.Count, validation_t2 = validationByT[2], validation_t4 = validationByT[4], chosen_t = bestT,
            sweep, ensemble_student = ensembleStudent, gap_closed = gapClosed,
            dress = new { distilled_raw = dressRaw, distilled_corrected = dressCorrected, offset, alone_raw = aloneDressRaw, alone_corrected = aloneDressCorrected },
        });
    }
}
