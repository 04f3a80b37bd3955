using MiniDeep.Continual;

namespace MiniDeep.Experiments.Lab.Claims;

/// <summary>How EWC's quadratic anchors act on the weights in the split-task experiment.</summary>
public enum EwcUpdate
{
    /// <summary>The exact proximal step after every SGD step (<see cref="QuadraticAnchors.Attach"/>): stable for any λ; the lab's.</summary>
    Proximal,
    /// <summary>The penalty added to the loss (<see cref="QuadraticAnchors.PenaltyTerm"/>), as Kirkpatrick et al. and Serrà et al. ran it:
    /// the kept epoch is then chosen by the validation loss with the penalty, and the step diverges once lr·λ·F &gt; 2.</summary>
    Penalty,
}

/// <summary>
/// One setup of the forgetting claim's split-task experiment (part 2c: HAT against EWC and SGD on five
/// two-class tasks, one head each). The defaults are the lab's standard setup; <see cref="ForBudget"/>
/// gives the setup of each budget, and the report's exploratory rows each change one or two fields.
/// </summary>
public sealed record SplitSetup
{
    /// <summary>Training images per task.</summary>
    public int PerTask { get; init; } = 5_000;
    /// <summary>Held-out training images per task: the kept epoch and EWC's λ are chosen on them, never on the test images.</summary>
    public int ValidationPerTask { get; init; } = 1_000;
    /// <summary>Epochs per task (every method keeps the epoch with the lowest validation loss).</summary>
    public int Epochs { get; init; } = 5;
    /// <summary>SGD's learning rate, for every method (0.05 in Serrà et al.'s code).</summary>
    public double Lr { get; init; } = 0.05;
    /// <summary>Batch size.</summary>
    public int Batch { get; init; } = 32;
    /// <summary>Width of both hidden layers.</summary>
    public int Hidden { get; init; } = 400;
    /// <summary>HAT's regularizer weight c (0.75 in the paper).</summary>
    public double C { get; init; } = 0.75;
    /// <summary>HAT's largest gate scale s_max (400 in the paper).</summary>
    public double SMax { get; init; } = 400;
    /// <summary>Images EWC's Fisher information is estimated from, per task.</summary>
    public int FisherSamples { get; init; } = 500;
    /// <summary>EWC's λ sweep; the one compared with HAT has the highest ρ on the validation images.</summary>
    // The standard sweep brackets the chosen λ: with {100, 1e3, 1e4}, 1e4 won on every seed, at the grid's
    // edge; 100 forgets far more than either neighbour (ρ about −0.05), so the grid moved up a decade.
    public double[] Lambdas { get; init; } = [1_000, 10_000, 100_000];
    /// <summary>How the anchors act.</summary>
    public EwcUpdate Ewc { get; init; } = EwcUpdate.Proximal;

    /// <summary>The claim's setup at <paramref name="budget"/>.</summary>
    public static SplitSetup ForBudget(Budget budget) => budget switch
    {
        Budget.Smoke => new() { PerTask = 1_000, ValidationPerTask = 500, Epochs = 3, Lambdas = [100] },
        Budget.Full => new() { PerTask = 10_000, Epochs = 10, Lambdas = [100, 1_000, 10_000, 100_000] },
        _ => new(),
    };

    /// <summary>Checks every field; throws naming the one at fault.</summary>
    public void Validate()
    {
        if (PerTask < 10) throw new ArgumentException($"split: at least 10 training images per task, got {PerTask}");
        if (ValidationPerTask < 10) throw new ArgumentException($"split: at least 10 validation images per task, got {ValidationPerTask}");
        if (Epochs < 1) throw new ArgumentException($"split: epochs must be at least 1, got {Epochs}");
        if (!(Lr > 0) || double.IsInfinity(Lr)) throw new ArgumentException($"split: the learning rate must be positive and finite, got {Lr}");
        if (Batch < 1) throw new ArgumentException($"split: the batch size must be at least 1, got {Batch}");
        if (Hidden < 1) throw new ArgumentException($"split: the hidden width must be at least 1, got {Hidden}");
        if (!(C >= 0) || double.IsInfinity(C)) throw new ArgumentException($"split: HAT's c must be at least 0 and finite, got {C}");
        if (!(SMax > 1) || double.IsInfinity(SMax)) throw new ArgumentException($"split: HAT's s_max must exceed 1 and be finite, got {SMax}");
        if (FisherSamples < 1) throw new ArgumentException($"split: the Fisher needs at least 1 sample, got {FisherSamples}");
        if (Lambdas.Length == 0) throw new ArgumentException("split: EWC needs at least one λ");
        foreach (var l in Lambdas)
            if (!(l > 0) || double.IsInfinity(l)) throw new ArgumentException($"split: every λ must be positive and finite, got {l}");
        if (Lambdas.Distinct().Count() != Lambdas.Length) throw new ArgumentException($"split: λ appears twice in {string.Join(", ", Lambdas)}");
    }

    /// <inheritdoc/>
    public override string ToString() =>
        $"{PerTask:N0} images a task ({ValidationPerTask:N0} validation), {Epochs} epochs, SGD lr {Lr}, batch {Batch}, hidden {Hidden}, " +
        $"HAT c {C} s_max {SMax}, EWC {Ewc.ToString().ToLowerInvariant()} λ {string.Join(", ", Lambdas.Select(l => l.ToString("G3")))}, Fisher from {FisherSamples}";
}

/// <summary>
/// What <see cref="ForgettingClaim.RunSplitTasks"/> gives back, one entry per method in <see cref="Names"/>
/// order: plain SGD, EWC at each λ, HAT, and the joint network (the forgetting ratio's reference).
/// </summary>
public sealed record SplitResults(
    string[] Names,
    AccuracyMatrix[] Matrices,
    double[] Rho,
    double[] RhoValidation,
    double[][] FinalValidation,
    double[] Joint,
    double[] Random,
    int[][] Kept,
    double[][] HatValidationByEpoch,
    double[] Lambdas)
{
    /// <summary>Index of HAT.</summary>
    public int Hat => Array.IndexOf(Names, "HAT");
    /// <summary>Index of the EWC run with the highest ρ on the validation images (the earliest λ among equals).</summary>
    public int BestEwc => Enumerable.Range(1, Lambdas.Length).MaxBy(m => RhoValidation[m]);
    /// <summary>The λ of <see cref="BestEwc"/>.</summary>
    public double ChosenLambda => Lambdas[BestEwc - 1];
    /// <summary>HAT's ρ − the chosen EWC's: the claim's line (above 0 when HAT forgets less).</summary>
    public double HatMinusEwc => Rho[Hat] - Rho[BestEwc];
}
