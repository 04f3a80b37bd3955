using MiniDeep.Nn;

namespace MiniDeep.Attacks;

/// <summary>Settings of <see cref="MinimalPerturbation"/>.</summary>
public sealed record MinimalPerturbationOptions
{
    /// <summary>Bisection steps over the distortion weight c, per image.</summary>
    public int SearchSteps { get; init; } = 8;
    /// <summary>Projected Adam steps on the perturbation for each value of c.</summary>
    public int Iterations { get; init; } = 100;
    /// <summary>Adam's step size in pixel units, decayed to 0 by a cosine over each inner run (so the
    /// perturbation settles instead of rattling at the step size).</summary>
    public double LearningRate { get; init; } = 0.01;
    /// <summary>The first c tried for every image.</summary>
    public double InitialC { get; init; } = 1.0;
    /// <summary>The box the adversarial image must stay in.</summary>
    public double Lo { get; init; }
    /// <summary>The box the adversarial image must stay in.</summary>
    public double Hi { get; init; } = 1;
}

/// <summary>What <see cref="MinimalPerturbation"/> found: per image, the smallest successful perturbation.</summary>
/// <param name="Adversarial">The adversarial images (the originals where no attack succeeded).</param>
/// <param name="Success">Whether each image was flipped (to its target, or away from its label).</param>
/// <param name="Rms">Root-mean-square distortion √(Σ r²/n) of each success (NaN for failures): Szegedy et al.'s measure.</param>
/// <param name="Predicted">The model's class for each adversarial image.</param>
public sealed record MinimalPerturbationResult(Tensor Adversarial, bool[] Success, double[] Rms, int[] Predicted)
{
    /// <summary>Fraction of images flipped.</summary>
    public double SuccessRate => Success.Length == 0 ? 0 : Success.Count(s => s) / (double)Success.Length;
    /// <summary>Mean RMS distortion over the successes.</summary>
    public double MeanRms => Rms.Where(double.IsFinite).DefaultIfEmpty(double.NaN).Average();
}

/// <summary>
/// The minimal-perturbation attack of Szegedy et al. 2014 ("Intriguing properties of neural
/// networks"): for each image x find r minimizing c·‖r‖² + loss(x + r) with x + r inside the box,
/// and search c per image for the smallest r that still changes the decision. Szegedy et al. used
/// box-constrained L-BFGS for the inner problem and a line search over c; here the inner problem is
/// solved by Adam with projection onto the box, and c by bisection (×10 / ÷10 until bracketed), all
/// images of a batch at once since the objective is a sum of independent per-image terms.
/// Targeted: loss is the cross-entropy towards the target class (Szegedy's loss_f). Untargeted: the
/// hinge max(z_label − max_{j≠label} z_j, 0), which stops pushing once the label has lost.
/// </summary>
public static class MinimalPerturbation
{
    /// <summary>Smallest perturbations that make the model answer <paramref name="targets"/>.</summary>
    public static MinimalPerturbationResult Targeted(Module model, Tensor x, int[] targets, MinimalPerturbationOptions? options = null) =>
        Search(model, x, targets, targeted: true, options ?? new());

    /// <summary>Smallest perturbations that make the model answer anything but <paramref name="labels"/>.</summary>
    public static MinimalPerturbationResult Untargeted(Module model, Tensor x, int[] labels, MinimalPerturbationOptions? options = null) =>
        Search(model, x, labels, targeted: false, options ?? new());

    private static MinimalPerturbationResult Search(Module model, Tensor x, int[] classes, bool targeted, MinimalPerturbationOptions o)
    {
        if (x.Rank < 2 || x.Size(0) != classes.Length)
            throw new ShapeMismatchException("MinimalPerturbation", $"MinimalPerturbation: images {x.Shape} and {classes.Length} classes must agree on N");
        if (o.SearchSteps < 1 || o.Iterations < 1 || !(o.LearningRate > 0) || !(o.InitialC > 0))
            throw new ArgumentException($"MinimalPerturbation: SearchSteps and Iterations must be ≥ 1, LearningRate and InitialC > 0; got {o}");
        int n = x.Size(0), features = x.Numel / n;
        var x0 = x.Detach().Float();
        // Outside the box the projection would move the image itself, and the perturbation measured from
        // it would include that move.
        AttackChecks.Box("MinimalPerturbation", x0, o.Lo, o.Hi, "images");
        int classCount = AttackChecks.ClassCount(model, x0);
        AttackChecks.Classes("MinimalPerturbation", classes, classCount, "class");
        var classT = Tensor.FromArray(classes, [n]);
        var classMask = Tensor.OneHot(classT, classCount) > 0.5;
        var cShape = new int[x.Rank];
        Array.Fill(cShape, 1);
        cShape[0] = n;
        var axes = Enumerable.Range(1, x.Rank - 1).ToArray();

        var c = Enumerable.Repeat(o.InitialC, n).ToArray();
        var cLo = new double[n];
        var cHi = Enumerable.Repeat(double.PositiveInfinity, n).ToArray();
        var x0Flat = x0.Contiguous().ToArray<float>();
        var best = (float[])x0Flat.Clone();
        var bestRms = Enumerable.Repeat(double.PositiveInfinity, n).ToArray();
        const double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;

        bool wasTraining = model.IsTraining;
        model.Eval();
        try
        {
            for (int s = 0; s < o.SearchSteps; s++)
            {
                var cT = Tensor.FromArray(c.Select(v => (float)v).ToArray(), cShape);
                var r = Tensor.ZerosLike(x0);
                var m = Tensor.ZerosLike(x0);
                var v = Tensor.ZerosLike(x0);
                var flippedNow = new bool[n];
                for (int t = 0; t < o.Iterations; t++)
                {
                    Tensor grad, logits;
                    using (Autograd.EnableGrad())
                    {
                        var rv = r.Detach().RequiresGrad_();
                        logits = model.Forward(x0 + rv);
                        var attack = targeted
                            ? Losses.CrossEntropy(logits, classT, Reduction.Sum)
                            : (logits.Gather(1, classT.Unsqueeze(1)).Squeeze(1) - logits.MaskedFill(classMask, double.NegativeInfinity).Max(1)).Relu().Sum();
                        var objective = (cT * rv.Square()).Sum() + attack;
                        grad = Autograd.Grad(objective, rv);
                    }
                    // The logits belong to x0 + r before this step: record every success on the way.
                    Record(logits.Detach(), r, x0Flat, classes, targeted, features, axes, best, bestRms, flippedNow);
                    using var _ = Autograd.NoGrad();
                    double lr = o.LearningRate * 0.5 * (1 + Math.Cos(Math.PI * t / o.Iterations));
                    m = m * beta1 + grad * (1 - beta1);
                    v = v * beta2 + grad.Square() * (1 - beta2);
                    var mHat = m / (1 - Math.Pow(beta1, t + 1));
                    var vHat = v / (1 - Math.Pow(beta2, t + 1));
                    r = (x0 + (r - mHat / (vHat.Sqrt() + eps) * lr)).Clamp(o.Lo, o.Hi) - x0;
                }
                using (Autograd.NoGrad())
                    Record(model.Forward(x0 + r), r, x0Flat, classes, targeted, features, axes, best, bestRms, flippedNow);
                // Flipped: weigh distortion more (smaller r); not flipped: weigh it less.
                for (int i = 0; i < n; i++)
                {
                    if (flippedNow[i]) cLo[i] = c[i];
                    else cHi[i] = c[i];
                    c[i] = double.IsPositiveInfinity(cHi[i]) ? c[i] * 10 : cLo[i] == 0 ? c[i] / 10 : Math.Sqrt(cLo[i] * cHi[i]);
                }
            }
            var adversarial = Tensor.FromArray(best, x0.Shape.ToArray());
            int[] predicted;
            using (Autograd.NoGrad()) predicted = model.Forward(adversarial).ArgMax(1).ToArray<int>();
            var success = bestRms.Select(double.IsFinite).ToArray();
            return new MinimalPerturbationResult(adversarial, success, bestRms.Select(b => double.IsFinite(b) ? b : double.NaN).ToArray(), predicted);
        }
        finally
        {
            model.Train(wasTraining);
        }
    }

    /// <summary>Marks the images that are flipped at x0 + r and keeps x0 + r for those whose distortion is the smallest yet.</summary>
    private static void Record(Tensor logits, Tensor r, float[] x0Flat, int[] classes, bool targeted, int features, int[] axes,
        float[] best, double[] bestRms, bool[] flippedNow)
    {
        using var _ = Autograd.NoGrad();
        var pred = logits.ArgMax(1).ToArray<int>();
        var rms = (r.Square().Sum(axes) / features).Sqrt().Double().ToArray<double>();
        float[]? rFlat = null;
        for (int i = 0; i < pred.Length; i++)
        {
            bool flipped = targeted ? pred[i] == classes[i] : pred[i] != classes[i];
            if (!flipped) continue;
            flippedNow[i] = true;
            if (rms[i] >= bestRms[i]) continue;
            bestRms[i] = rms[i];
            rFlat ??= r.Contiguous().ToArray<float>();
            for (int k = i * features; k < (i + 1) * features; k++) best[k] = x0Flat[k] + rFlat[k];
        }
    }
}
