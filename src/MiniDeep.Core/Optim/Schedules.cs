namespace MiniDeep.Optim;

/// <summary>
/// A learning-rate schedule: after each <see cref="Step"/>, every group's learning rate is its
/// initial rate times <see cref="Factor"/>(t), t counting steps taken (epochs or batches — the
/// caller decides by when it calls Step).
/// </summary>
public abstract class LrScheduler
{
    /// <summary>A schedule driving <paramref name="optimizer"/>.</summary>
    protected LrScheduler(Optimizer optimizer)
    {
        Optimizer = optimizer;
        Apply();
    }

    // A schedule's arguments are checked before the base constructor applies its first factor
    // (StepLr with stepSize 0 would divide by zero there; CosineLr with tMax 0 would set NaN rates).
    private protected static Optimizer Checked(Optimizer optimizer, string? problem) =>
        problem is null ? optimizer ?? throw new ArgumentNullException(nameof(optimizer)) : throw new ArgumentOutOfRangeException(null, problem);

    private protected static string? GammaProblem(string op, double gamma) =>
        gamma >= 0 && double.IsFinite(gamma) ? null : $"{op}: gamma must be finite and at least 0, got {gamma}";

    /// <summary>The optimizer whose learning rates are set.</summary>
    public Optimizer Optimizer { get; }

    /// <summary>Steps taken so far (saved in checkpoints).</summary>
    public int StepCount { get; set; }

    /// <summary>The multiplier of the initial learning rate after <paramref name="t"/> steps.</summary>
    public abstract double Factor(int t);

    /// <summary>Advances the schedule by one step and updates the learning rates.</summary>
    public void Step()
    {
        StepCount++;
        Apply();
    }

    /// <summary>Sets the learning rates for the current step count.</summary>
    public void Apply()
    {
        double f = Factor(StepCount);
        foreach (var g in Optimizer.Groups) g.Lr = g.InitialLr * f;
    }
}

/// <summary>Multiply by γ every <c>stepSize</c> steps.</summary>
public sealed class StepLr(Optimizer optimizer, int stepSize, double gamma = 0.1)
    : LrScheduler(Checked(optimizer, stepSize < 1 ? $"StepLr: stepSize must be at least 1, got {stepSize}" : GammaProblem("StepLr", gamma)))
{
    /// <inheritdoc/>
    public override double Factor(int t) => Math.Pow(gamma, t / stepSize);
}

/// <summary>Multiply by γ every step.</summary>
public sealed class ExponentialLr(Optimizer optimizer, double gamma) : LrScheduler(Checked(optimizer, GammaProblem("ExponentialLr", gamma)))
{
    /// <inheritdoc/>
    public override double Factor(int t) => Math.Pow(gamma, t);
}

/// <summary>Cosine annealing from the initial rate to <c>minFactor</c>·initial over <c>tMax</c> steps (Loshchilov &amp; Hutter 2017, no restarts).</summary>
public sealed class CosineLr(Optimizer optimizer, int tMax, double minFactor = 0)
    : LrScheduler(Checked(optimizer, tMax >= 1 && minFactor >= 0 && double.IsFinite(minFactor) ? null : $"CosineLr: tMax must be at least 1 and minFactor finite and at least 0, got {tMax} and {minFactor}"))
{
    /// <inheritdoc/>
    public override double Factor(int t) =>
        minFactor + (1 - minFactor) * 0.5 * (1 + Math.Cos(Math.PI * Math.Min(t, tMax) / tMax));
}

/// <summary>Linear warm-up from <c>startFactor</c> to 1 over <c>warmupSteps</c>, then the optional schedule <c>after</c> (counted from the end of warm-up).</summary>
public sealed class LinearWarmup(Optimizer optimizer, int warmupSteps, Func<int, double>? after = null, double startFactor = 0.0)
    : LrScheduler(Checked(optimizer, warmupSteps >= 0 && startFactor >= 0 && double.IsFinite(startFactor) ? null : $"LinearWarmup: warmupSteps and startFactor must be at least 0, got {warmupSteps} and {startFactor}"))
{
    /// <inheritdoc/>
    public override double Factor(int t) => t < warmupSteps
        ? startFactor + (1 - startFactor) * t / warmupSteps
        : after?.Invoke(t - warmupSteps) ?? 1;
}

/// <summary>
/// The one-cycle policy (Smith &amp; Topin 2019; PyTorch's OneCycleLR with its momentum left alone): the
/// rate climbs from peak/<c>divFactor</c> to the peak over the first <c>pctStart</c> of
/// <c>totalSteps</c>, then falls to peak/(<c>divFactor</c>·<c>finalDivFactor</c>) at step
/// <c>totalSteps</c> − 1, along half a cosine (or a straight line with <c>linear</c>). The peak is
/// each group's own learning rate, as the optimizer was given it. One step more than that holds the
/// final rate (PyTorch's formula overshoots there); any later step is an error, as in PyTorch, because
/// it means <c>totalSteps</c> was counted in other units than the calls to <see cref="LrScheduler.Step"/>.
/// </summary>
public sealed class OneCycleLr(Optimizer optimizer, int totalSteps, double pctStart = 0.3, double divFactor = 25, double finalDivFactor = 1e4, bool linear = false)
    : LrScheduler(Checked(optimizer, OneCycleProblem(totalSteps, pctStart, divFactor, finalDivFactor)))
{
    /// <inheritdoc/>
    public override double Factor(int t)
    {
        if (t < 0 || t > totalSteps)
            throw new InvalidOperationException($"OneCycleLr: step {t} is past the schedule's {totalSteps} steps (count totalSteps in calls to Step: batches, not epochs, if Step follows every batch)");
        double start = 1 / divFactor, end = start / finalDivFactor;
        // PyTorch's phase boundaries: the peak at step pctStart·totalSteps − 1 (not rounded), the end at totalSteps − 1.
        double peak = pctStart * totalSteps - 1, last = totalSteps - 1;
        return t <= peak ? Anneal(start, 1, t / peak) : Anneal(1, end, Math.Min(1, (t - peak) / (last - peak)));
    }

    private double Anneal(double from, double to, double pct) =>
        linear ? from + (to - from) * pct : to + (from - to) / 2 * (Math.Cos(Math.PI * pct) + 1);

    private static string? OneCycleProblem(int totalSteps, double pctStart, double divFactor, double finalDivFactor)
    {
        if (totalSteps < 2) return $"OneCycleLr: totalSteps must be at least 2, got {totalSteps}";
        if (!(pctStart > 0 && pctStart < 1) || !(pctStart * totalSteps > 1))
            return $"OneCycleLr: pctStart must lie in (0, 1) and leave the climb more than one step (pctStart·totalSteps > 1), got {pctStart} of {totalSteps} steps";
        if (!(divFactor > 0) || double.IsInfinity(divFactor) || !(finalDivFactor > 0) || double.IsInfinity(finalDivFactor))
            return $"OneCycleLr: divFactor and finalDivFactor must be finite and positive, got {divFactor} and {finalDivFactor}";
        return null;
    }
}

/// <summary>Gradient clipping.</summary>
public static class GradClip
{
    /// <summary>Scales all gradients together so that their global L2 norm is at most <paramref name="maxNorm"/>; returns the norm before clipping.</summary>
    public static double ClipGradNorm(IEnumerable<Tensor> parameters, double maxNorm)
    {
        var grads = parameters.Where(p => p.Grad is not null).Select(p => p.Grad!).ToList();
        double total;
        using (Autograd.NoGrad())
        {
            total = Math.Sqrt(grads.Sum(g => g.Double().Square().Sum().Item()));
            if (total > maxNorm && total > 0)
            {
                double scale = maxNorm / (total + 1e-6);
                foreach (var g in grads) g.MulInPlace(scale);
            }
        }
        return total;
    }

    /// <summary>Clamps every gradient element to [-clip, clip].</summary>
    public static void ClipGradValue(IEnumerable<Tensor> parameters, double clip)
    {
        using (Autograd.NoGrad())
            foreach (var p in parameters)
                p.Grad?.CopyFrom(p.Grad.Clamp(-clip, clip));
    }
}
