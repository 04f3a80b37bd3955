using MiniDeep.Nn;

namespace MiniDeep.Attacks;

/// <summary>Images a classifier assigns to their target classes.</summary>
/// <param name="Images">One image per target, (N, ...) in the box.</param>
/// <param name="Confidence">p(target) of each final image.</param>
/// <param name="Cost">Per image: gradient steps taken (white box) or oracle queries spent (black box) until the goal was reached, or in all when it was not.</param>
/// <param name="Reached">Whether p(target) reached the goal.</param>
public sealed record FoolingResult(Tensor Images, double[] Confidence, long[] Cost, bool[] Reached);

/// <summary>Settings of the NES search (Ilyas, Engstrom, Athalye &amp; Lin 2018).</summary>
public sealed record NesOptions
{
    /// <summary>Antithetic pairs per gradient estimate (2 × this many queries).</summary>
    public int Pairs { get; init; } = 50;
    /// <summary>Standard deviation of the Gaussian probes, in pixel units.</summary>
    public double Sigma { get; init; } = 0.05;
    /// <summary>Size of each signed step.</summary>
    public double StepSize { get; init; } = 0.01;
    /// <summary>Stop when p(target) reaches this.</summary>
    public double Goal { get; init; } = 0.99;
    /// <summary>Most oracle queries for one image.</summary>
    public long MaxQueries { get; init; } = 50_000;
}

/// <summary>Settings of the (1+λ) evolution strategy.</summary>
public sealed record EvolutionOptions
{
    /// <summary>Children per generation (λ); each costs one query.</summary>
    public int Children { get; init; } = 20;
    /// <summary>Probability that a pixel is mutated in a child.</summary>
    public double MutationRate { get; init; } = 0.02;
    /// <summary>Standard deviation of a pixel's mutation.</summary>
    public double Sigma { get; init; } = 0.2;
    /// <summary>Stop when p(target) reaches this.</summary>
    public double Goal { get; init; } = 0.99;
    /// <summary>Most oracle queries for one image.</summary>
    public long MaxQueries { get; init; } = 50_000;
}

/// <summary>
/// Fooling images (Nguyen, Yosinski &amp; Clune 2015): inputs unrecognizable to people that a network
/// classifies with near certainty. Three searches, from the most to the least the searcher may see:
/// gradient ascent on log p(target) (white box); NES, which estimates that gradient from output
/// probabilities alone; and a (1+λ) evolution strategy on pixels, which also reads only probabilities
/// (Nguyen et al. evolved images with MAP-Elites; this is the simplest member of that family).
/// All three work in the box [lo, hi] and start from the images given.
/// </summary>
public static class FoolingImages
{
    /// <summary>
    /// <paramref name="steps"/> steps of x ← clip(x + η·∇ₓ log p(target | x)), for a batch of starts
    /// and one target per start. Cost is the first step at which p(target) ≥ <paramref name="goal"/>.
    /// </summary>
    public static FoolingResult GradientAscent(Module model, Tensor start, int[] targets, int steps, double stepSize,
        double goal = 0.999, double lo = 0, double hi = 1)
    {
        if (start.Rank < 2 || start.Size(0) != targets.Length)
            throw new ShapeMismatchException("FoolingImages.GradientAscent", $"FoolingImages.GradientAscent: starts {start.Shape} and {targets.Length} targets must agree on N");
        if (steps < 0 || !(stepSize > 0)) throw new ArgumentException($"FoolingImages.GradientAscent: steps must be ≥ 0 and stepSize > 0, got {steps}, {stepSize}");
        CheckGoalAndBox("GradientAscent", start, goal, lo, hi);
        int n = targets.Length;
        var y = Tensor.FromArray(targets, [n]);
        var x = start.Detach().Float();
        if (n > 0) AttackChecks.Classes("FoolingImages.GradientAscent", targets, AttackChecks.ClassCount(model, x), "target");
        var cost = Enumerable.Repeat((long)steps, n).ToArray();
        var reached = new bool[n];
        for (int t = 0; t <= steps; t++)
        {
            var p = TargetProbability(model, x, y);
            for (int i = 0; i < n; i++)
                if (!reached[i] && p[i] >= goal) { reached[i] = true; cost[i] = t; }
            if (t == steps) return new FoolingResult(x, p, cost, reached);
            // ∇ log p(target) = −∇ CE(target); the per-example sum keeps each image's own gradient.
            var g = GradientAttacks.InputGradient(model, x, y, (logits, labels) => Losses.CrossEntropy(logits, labels, Reduction.Sum));
            using var _ = Autograd.NoGrad();
            x = (x - g * stepSize).Clamp(lo, hi);
        }
        throw new InvalidOperationException("unreachable");
    }

    /// <summary>
    /// Natural evolution strategies: estimate ∇ log p(target) from antithetic Gaussian probes,
    /// ĝ = Σᵢ (f(x + σuᵢ) − f(x − σuᵢ)) uᵢ / (2nσ), and take a signed step along it, reading only the
    /// oracle's probabilities. One image, one target.
    /// </summary>
    public static FoolingResult Nes(QueryOracle oracle, Tensor start, int target, Generator generator, NesOptions? options = null,
        double lo = 0, double hi = 1)
    {
        var o = options ?? new();
        CheckSingle("Nes", start);
        if (o.Pairs < 1 || !(o.Sigma > 0) || !(o.StepSize > 0)) throw new ArgumentException($"FoolingImages.Nes: invalid options {o}");
        CheckGoalAndBox("Nes", start, o.Goal, lo, hi);
        long begin = oracle.Queries;
        var x = start.Detach().Float();
        var probeShape = x.Shape.ToArray();
        probeShape[0] = o.Pairs;
        var first = oracle.Probabilities(x);
        AttackChecks.Classes("FoolingImages.Nes", [target], first.Size(1), "target");
        double p = first.Select(1, target).Item();
        while (p < o.Goal && oracle.Queries - begin + 2 * o.Pairs + 1 <= o.MaxQueries)
        {
            using var _ = Autograd.NoGrad();
            var u = Tensor.Randn(probeShape, generator);
            var probes = Tensor.Concat([x + u * o.Sigma, x - u * o.Sigma]);
            var f = oracle.Probabilities(probes).Select(1, target).Clamp(1e-30).Log();
            var diff = f.Narrow(0, 0, o.Pairs) - f.Narrow(0, o.Pairs, o.Pairs);
            var diffShape = new int[x.Rank];
            Array.Fill(diffShape, 1);
            diffShape[0] = o.Pairs;
            var g = (u * diff.Reshape(diffShape)).Sum(0, keepDim: true);
            x = (x + g.Sign() * o.StepSize).Clamp(lo, hi);
            p = oracle.Probabilities(x).Select(1, target).Item();
        }
        return new FoolingResult(x, [p], [oracle.Queries - begin], [p >= o.Goal]);
    }

    /// <summary>
    /// (1+λ) evolution strategy: each generation mutates λ copies of the parent (each pixel with
    /// probability MutationRate, by Gaussian noise), and the best child replaces the parent when it is
    /// at least as good. Reads only the oracle's probabilities. One image, one target.
    /// </summary>
    public static FoolingResult OnePlusLambda(QueryOracle oracle, Tensor start, int target, Generator generator, EvolutionOptions? options = null,
        double lo = 0, double hi = 1)
    {
        var o = options ?? new();
        CheckSingle("OnePlusLambda", start);
        if (o.Children < 1 || !(o.MutationRate > 0 && o.MutationRate <= 1) || !(o.Sigma > 0))
            throw new ArgumentException($"FoolingImages.OnePlusLambda: invalid options {o}");
        CheckGoalAndBox("OnePlusLambda", start, o.Goal, lo, hi);
        long begin = oracle.Queries;
        var parent = start.Detach().Float();
        var childShape = parent.Shape.ToArray();
        childShape[0] = o.Children;
        var first = oracle.Probabilities(parent);
        AttackChecks.Classes("FoolingImages.OnePlusLambda", [target], first.Size(1), "target");
        double p = first.Select(1, target).Item();
        while (p < o.Goal && oracle.Queries - begin + o.Children <= o.MaxQueries)
        {
            using var _ = Autograd.NoGrad();
            var mask = Tensor.Bernoulli(childShape, o.MutationRate, generator);
            var children = (parent + mask * Tensor.Randn(childShape, generator, std: o.Sigma)).Clamp(lo, hi);
            var fitness = oracle.Probabilities(children).Select(1, target).Double().ToArray<double>();
            int best = Array.IndexOf(fitness, fitness.Max());
            if (fitness[best] >= p)
            {
                p = fitness[best];
                parent = children.Narrow(0, best, 1).Contiguous();
            }
        }
        return new FoolingResult(parent, [p], [oracle.Queries - begin], [p >= o.Goal]);
    }

    private static double[] TargetProbability(Module model, Tensor x, Tensor y)
    {
        using var _ = Autograd.NoGrad();
        bool wasTraining = model.IsTraining;
        model.Eval();
        try
        {
            return model.Forward(x).Softmax(1).Gather(1, y.Unsqueeze(1)).Squeeze(1).Double().ToArray<double>();
        }
        finally
        {
            model.Train(wasTraining);
        }
    }

    // A goal above 1 is never reached: the search would spend its whole budget.
    private static void CheckGoalAndBox(string op, Tensor start, double goal, double lo, double hi)
    {
        if (!(goal > 0 && goal <= 1)) throw new ArgumentOutOfRangeException(nameof(goal), $"FoolingImages.{op}: the goal is a probability in (0, 1], got {goal}");
        AttackChecks.Box($"FoolingImages.{op}", start, lo, hi, "the start's pixels");
    }

    private static void CheckSingle(string op, Tensor start)
    {
        if (start.Rank < 2 || start.Size(0) != 1)
            throw new ShapeMismatchException($"FoolingImages.{op}", $"FoolingImages.{op}: expected one start image shaped (1, ...), got {start.Shape}");
    }
}
