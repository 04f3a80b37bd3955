namespace MiniDeep.Optim;

/// <summary>
/// Lowers the learning rate when a monitored metric stops improving (PyTorch's ReduceLROnPlateau): after
/// <c>patience</c> calls of <see cref="Step"/> in a row without an improvement, every group's rate is
/// multiplied by <c>factor</c> (not below <c>minLr</c>), and <c>cooldown</c> calls follow in which no
/// reduction counts bad epochs. Unlike an <see cref="LrScheduler"/>, the rate it sets depends on the
/// metrics it was shown, not on a step count: do not drive the same optimizer with both, since a
/// schedule recomputes the rate from its initial value at every step and would undo each reduction.
/// </summary>
/// <remarks>
/// An improvement is a value below best·(1 − threshold) (<see cref="PlateauMode.Min"/>, relative), above
/// best·(1 + threshold) (<see cref="PlateauMode.Max"/>), or beyond best ∓ threshold with
/// <c>absoluteThreshold</c>. A reduction smaller than 1e-8 is skipped, as in PyTorch. Checkpoints save
/// its state (<see cref="IO.TrainingState.Plateau"/>); the rates themselves are the optimizer's.
/// </remarks>
public sealed class ReduceLrOnPlateau
{
    private const double Eps = 1e-8;
    private readonly double _factor, _threshold, _minLr;
    private readonly int _patience, _cooldown;
    private readonly bool _absoluteThreshold;

    /// <summary>A plateau rule for <paramref name="optimizer"/>'s groups.</summary>
    public ReduceLrOnPlateau(Optimizer optimizer, PlateauMode mode = PlateauMode.Min, double factor = 0.1, int patience = 10,
        double threshold = 1e-4, bool absoluteThreshold = false, int cooldown = 0, double minLr = 0)
    {
        Optimizer = optimizer ?? throw new ArgumentNullException(nameof(optimizer));
        if (!(factor > 0 && factor < 1)) throw new ArgumentOutOfRangeException(nameof(factor), $"ReduceLrOnPlateau: factor must lie in (0, 1), got {factor}");
        if (patience < 0 || cooldown < 0) throw new ArgumentOutOfRangeException(nameof(patience), $"ReduceLrOnPlateau: patience and cooldown must be at least 0, got {patience} and {cooldown}");
        Mode = mode;
        _factor = factor;
        _patience = patience;
        _threshold = Checks.NonNegative(threshold, "threshold", nameof(ReduceLrOnPlateau));
        _absoluteThreshold = absoluteThreshold;
        _cooldown = cooldown;
        _minLr = Checks.NonNegative(minLr, "minimum learning rate", nameof(ReduceLrOnPlateau));
        Best = mode == PlateauMode.Min ? double.PositiveInfinity : double.NegativeInfinity;
    }

    /// <summary>The optimizer whose learning rates are lowered.</summary>
    public Optimizer Optimizer { get; }
    /// <summary>Whether lower (<see cref="PlateauMode.Min"/>, a loss) or higher (<see cref="PlateauMode.Max"/>, an accuracy) is better.</summary>
    public PlateauMode Mode { get; }
    /// <summary>The best metric seen so far (±∞ before the first).</summary>
    public double Best { get; set; }
    /// <summary>Calls in a row without an improvement (saved in checkpoints).</summary>
    public int BadEpochs { get; set; }
    /// <summary>Calls left in the cooldown after a reduction (saved in checkpoints).</summary>
    public int CooldownLeft { get; set; }

    /// <summary>Reports one value of the metric (usually once an epoch, on validation data); returns whether the rates were lowered.</summary>
    public bool Step(double metric)
    {
        // NaN compares false with everything, so it would count as a bad epoch and lower the rate of a
        // run that has diverged, where a lower rate cannot help: say so instead.
        if (double.IsNaN(metric)) throw new ArgumentException("ReduceLrOnPlateau.Step: the metric is NaN (has the run diverged?)", nameof(metric));
        if (IsBetter(metric)) { Best = metric; BadEpochs = 0; }
        else BadEpochs++;
        if (CooldownLeft > 0)
        {
            CooldownLeft--;
            BadEpochs = 0;
        }
        if (BadEpochs <= _patience) return false;
        bool lowered = false;
        foreach (var g in Optimizer.Groups)
        {
            double lr = Math.Max(g.Lr * _factor, _minLr);
            if (g.Lr - lr > Eps) { g.Lr = lr; lowered = true; }
        }
        CooldownLeft = _cooldown;
        BadEpochs = 0;
        return lowered;
    }

    private bool IsBetter(double metric) => (Mode, _absoluteThreshold) switch
    {
        (PlateauMode.Min, false) => metric < Best * (1 - _threshold),
        (PlateauMode.Min, true) => metric < Best - _threshold,
        (_, false) => metric > Best * (1 + _threshold),
        _ => metric > Best + _threshold,
    };
}

/// <summary>Which direction of a monitored metric is an improvement.</summary>
public enum PlateauMode
{
    /// <summary>Lower is better (a loss).</summary>
    Min,
    /// <summary>Higher is better (an accuracy).</summary>
    Max,
}
