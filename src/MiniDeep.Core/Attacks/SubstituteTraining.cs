using MiniDeep.Data;
using MiniDeep.Nn;
using MiniDeep.Optim;

namespace MiniDeep.Attacks;

/// <summary>Settings of <see cref="SubstituteTraining"/>.</summary>
public sealed record SubstituteOptions
{
    /// <summary>Jacobian augmentations (ρ in the paper); each doubles the training set.</summary>
    public int Augmentations { get; init; } = 6;
    /// <summary>Step λ of the augmentation, in pixel units.</summary>
    public double Lambda { get; init; } = 0.1;
    /// <summary>The sign of λ flips every τ augmentations (Papernot et al.'s periodic step size), so
    /// new points do not all drift away from the decision boundaries.</summary>
    public int Tau { get; init; } = 3;
    /// <summary>Training epochs over the current set after each labelling.</summary>
    public int EpochsPerRound { get; init; } = 10;
    /// <summary>Mini-batch size.</summary>
    public int BatchSize { get; init; } = 32;
    /// <summary>Adam's learning rate.</summary>
    public double LearningRate { get; init; } = 1e-3;
    /// <summary>Most label queries in all: augmentation stops before it would exceed this.</summary>
    public long MaxQueries { get; init; } = 10_000;
}

/// <summary>What substitute training produced.</summary>
/// <param name="Substitute">The trained substitute (eval mode).</param>
/// <param name="Queries">Label queries spent.</param>
/// <param name="TrainingSetSize">Points the substitute was last trained on.</param>
/// <param name="Rounds">Training rounds run (augmentations + 1).</param>
public sealed record SubstituteResult(Module Substitute, long Queries, int TrainingSetSize, int Rounds);

/// <summary>
/// Black-box attack by substitute (Papernot, McDaniel, Goodfellow, Jha, Celik &amp; Swami 2017,
/// "Practical black-box attacks against machine learning"): label a few seed images with the
/// oracle, train a local substitute on them, and grow the set by Jacobian-based augmentation,
/// x' = clip(x + λ·sign(∂F_y(x)/∂x)) with y the oracle's label of x, which places new points where
/// the substitute's output changes fastest. Adversarial examples crafted on the substitute then
/// transfer to the oracle. sign(∂p_y) = sign(∂ log p_y) = −sign(∂CE(x, y)), so one input gradient of the
/// cross-entropy gives the direction.
/// </summary>
public static class SubstituteTraining
{
    /// <summary>Trains <paramref name="substitute"/> against a label-only <paramref name="oracle"/> from <paramref name="seeds"/>.</summary>
    public static SubstituteResult Train(QueryOracle oracle, Tensor seeds, Module substitute, Generator generator, SubstituteOptions? options = null,
        double lo = 0, double hi = 1)
    {
        var o = options ?? new();
        if (seeds.Rank < 2 || seeds.Size(0) == 0)
            throw new ShapeMismatchException("SubstituteTraining", $"SubstituteTraining: seeds must be a non-empty batch (N, ...), got {seeds.Shape}");
        if (seeds.Size(0) > o.MaxQueries)
            throw new ArgumentException($"SubstituteTraining: {seeds.Size(0)} seeds exceed the query budget of {o.MaxQueries}");
        // Checked together, before the first query: a bad option found after the oracle answered would
        // have spent queries on a run that cannot go on.
        if (o.Augmentations < 0 || o.Tau < 1 || !(o.Lambda > 0 && double.IsFinite(o.Lambda)) || o.EpochsPerRound < 1 || o.BatchSize < 1
            || !(o.LearningRate > 0 && double.IsFinite(o.LearningRate)))
            throw new ArgumentException($"SubstituteTraining: Augmentations must be ≥ 0, Tau, EpochsPerRound and BatchSize ≥ 1, Lambda and LearningRate finite and > 0; got {o}");
        AttackChecks.Box("SubstituteTraining", seeds, lo, hi, "seeds");
        long begin = oracle.Queries;
        var x = seeds.Detach().Float();
        var y = Tensor.FromArray(oracle.Labels(x), [x.Size(0)]);
        var optimizer = new Adam(substitute.Parameters(), o.LearningRate);
        int rounds = 0;
        for (int rho = 0; ; rho++)
        {
            var loader = new DataLoader(new TensorDataset(x, y), o.BatchSize, shuffle: true, seed: generator.Fork().Seed);
            Trainer.Fit(substitute, optimizer, loader, o.EpochsPerRound);
            rounds++;
            if (rho == o.Augmentations || oracle.Queries - begin + x.Size(0) > o.MaxQueries) break;
            double lambda = o.Lambda * ((rho / o.Tau) % 2 == 0 ? 1 : -1);
            var g = GradientAttacks.InputGradient(substitute, x, y);
            Tensor fresh;
            using (Autograd.NoGrad()) fresh = (x - g.Sign() * lambda).Clamp(lo, hi);
            var freshLabels = Tensor.FromArray(oracle.Labels(fresh), [fresh.Size(0)]);
            x = Tensor.Concat([x, fresh]);
            y = Tensor.Concat([y, freshLabels]);
        }
        substitute.Eval();
        return new SubstituteResult(substitute, oracle.Queries - begin, x.Size(0), rounds);
    }
}
