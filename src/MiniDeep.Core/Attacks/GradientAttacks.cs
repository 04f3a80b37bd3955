using MiniDeep.Nn;

namespace MiniDeep.Attacks;

/// <summary>
/// Gradient-based adversarial attacks on a classifier. Each takes inputs in a box [lo, hi] (pixels in
/// [0, 1] by default) and returns perturbed inputs in the same box, computed without touching the
/// model's parameter gradients (it differentiates with respect to the input only, through
/// <see cref="Autograd.Grad(Tensor, Tensor, bool)"/>), in eval mode.
/// </summary>
public static class GradientAttacks
{
    /// <summary>∂loss/∂x for a batch, the model in eval mode, parameters untouched.</summary>
    public static Tensor InputGradient(Module model, Tensor x, Tensor labels, Func<Tensor, Tensor, Tensor>? loss = null)
    {
        loss ??= Trainer.CrossEntropy;
        bool wasTraining = model.IsTraining;
        model.Eval();
        try
        {
            using var _ = Autograd.EnableGrad();
            var input = x.Detach().RequiresGrad_();
            return Autograd.Grad(loss(model.Forward(input), labels), input);
        }
        finally
        {
            model.Train(wasTraining);
        }
    }

    /// <summary>
    /// Fast gradient sign method (Goodfellow, Shlens &amp; Szegedy 2015): x' = clip(x + ε·sign(∇ₓ loss)).
    /// One gradient, the worst case to first order within the L∞ ball of radius ε.
    /// </summary>
    public static Tensor Fgsm(Module model, Tensor x, Tensor labels, double epsilon, double lo = 0, double hi = 1, Func<Tensor, Tensor, Tensor>? loss = null)
    {
        CheckArguments("Fgsm", x, epsilon, lo, hi);
        var g = InputGradient(model, x, labels, loss);
        using var _ = Autograd.NoGrad();
        return (x.Detach() + g.Sign() * epsilon).Clamp(lo, hi);
    }

    /// <summary>
    /// Projected gradient descent in L∞ (Madry et al. 2018): <paramref name="steps"/> signed steps of
    /// size <paramref name="stepSize"/>, each projected back onto the ε-ball around x and the box,
    /// from a uniformly random start in the ball when a generator is given.
    /// </summary>
    public static Tensor PgdLinf(Module model, Tensor x, Tensor labels, double epsilon, int steps, double stepSize,
        Generator? randomStart = null, double lo = 0, double hi = 1, Func<Tensor, Tensor, Tensor>? loss = null)
    {
        CheckArguments("PgdLinf", x, epsilon, lo, hi, steps, stepSize);
        var x0 = x.Detach();
        Tensor adv;
        using (Autograd.NoGrad())
            adv = randomStart is null ? x0 : (x0 + Tensor.Rand(x0.Shape, randomStart, -epsilon, epsilon, x0.DType, x0.Device)).Clamp(lo, hi);
        for (int i = 0; i < steps; i++)
        {
            var g = InputGradient(model, adv, labels, loss);
            using var _ = Autograd.NoGrad();
            adv = ProjectLinf(adv + g.Sign() * stepSize, x0, epsilon).Clamp(lo, hi);
        }
        return adv;
    }

    /// <summary>
    /// Projected gradient descent in L2: steps along the gradient normalized per example, each result
    /// projected onto the L2 ball of radius ε around x (per example) and the box.
    /// </summary>
    public static Tensor PgdL2(Module model, Tensor x, Tensor labels, double epsilon, int steps, double stepSize,
        double lo = 0, double hi = 1, Func<Tensor, Tensor, Tensor>? loss = null)
    {
        CheckArguments("PgdL2", x, epsilon, lo, hi, steps, stepSize);
        var x0 = x.Detach();
        var adv = x0;
        for (int i = 0; i < steps; i++)
        {
            var g = InputGradient(model, adv, labels, loss);
            using var _ = Autograd.NoGrad();
            var step = g / (PerExampleNorm(g) + 1e-12);
            var delta = adv + step * stepSize - x0;
            var scale = Tensor.Minimum(Tensor.OnesLike(PerExampleNorm(delta)), epsilon / (PerExampleNorm(delta) + 1e-12));
            adv = (x0 + delta * scale).Clamp(lo, hi);
        }
        return adv;
    }

    /// <summary>Each example's L2 norm over all its features, shaped (N, 1, ..., 1) to broadcast against the batch.</summary>
    public static Tensor PerExampleNorm(Tensor t)
    {
        var axes = Enumerable.Range(1, t.Rank - 1).ToArray();
        return axes.Length == 0 ? t.Abs() : t.Square().Sum(axes, keepDim: true).Sqrt();
    }

    private static Tensor ProjectLinf(Tensor x, Tensor center, double epsilon) =>
        Tensor.Minimum(Tensor.Maximum(x, center - epsilon), center + epsilon);

    private static void CheckArguments(string op, Tensor x, double epsilon, double lo, double hi, int steps = 0, double stepSize = 1)
    {
        if (!(epsilon >= 0)) throw new ArgumentOutOfRangeException(nameof(epsilon), $"{op}: epsilon must be non-negative, got {epsilon}");
        if (steps < 0) throw new ArgumentOutOfRangeException(nameof(steps), $"{op}: steps must be non-negative, got {steps}");
        if (!(stepSize > 0 && double.IsFinite(stepSize)))
            throw new ArgumentOutOfRangeException(nameof(stepSize), $"{op}: the step size must be finite and positive, got {stepSize}");
        AttackChecks.Box(op, x, lo, hi);
    }
}
