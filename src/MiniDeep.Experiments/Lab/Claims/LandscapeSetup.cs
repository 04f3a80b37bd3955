using MiniDeep.Nn;

namespace MiniDeep.Experiments.Lab.Claims;

/// <summary>The residual network's form in the landscape experiment (the plain network follows the same choice of normalization).</summary>
public enum LandscapeArch
{
    /// <summary>Blocks ReLU(x + W₂ReLU(W₁x + b₁) + b₂) with W₂ = 0 at the start: the lab's setup.</summary>
    PostActivation,
    /// <summary>Blocks x + W₂ReLU(W₁ReLU(x)) with W₂ = 0 (He et al.'s identity-mapping form, 2016).</summary>
    PreActivation,
    /// <summary>The lab's blocks with W₂ drawn from He's distribution and divided by 3 instead of 0.</summary>
    ScaledBranch,
    /// <summary>Batch norm after every linear layer but the last, in both networks and in every residual branch, as in Li et al.'s networks; W₂ is He.</summary>
    BatchNorm,
}

/// <summary>The optimizer the landscape networks train with.</summary>
public enum LandscapeOptimizer
{
    /// <summary>SGD with momentum 0.9 (the lab's).</summary>
    SgdMomentum,
    /// <summary>SGD without momentum.</summary>
    Sgd,
    /// <summary>Adam.</summary>
    Adam,
}

/// <summary>Which function the Hessian is taken of, for a network with batch norm (the two are the same without it).</summary>
public enum HessianMode
{
    /// <summary>Eval mode: batch norm uses its running statistics (Li et al.'s code).</summary>
    Eval,
    /// <summary>Training mode: batch norm uses the statistics of the Hessian's images, and the Hessian sees them move.</summary>
    Training,
}

/// <summary>
/// One setup of the plain-against-residual landscape experiment (claim solution-space, part 1d). The
/// defaults are the lab's standard setup; the report's exploratory rows each change one or two of them.
/// </summary>
public sealed record LandscapeSetup
{
    /// <summary>Networks of each kind (lab seed's repetitions 0 … Seeds−1).</summary>
    public int Seeds { get; init; } = 5;
    /// <summary>Epochs over the 5,000-image subset.</summary>
    public int Epochs { get; init; } = 15;
    /// <summary>Optimizer.</summary>
    public LandscapeOptimizer Optimizer { get; init; } = LandscapeOptimizer.SgdMomentum;
    /// <summary>Initial learning rate.</summary>
    public double Lr { get; init; } = 0.01;
    /// <summary>L2 weight decay.</summary>
    public double WeightDecay { get; init; }
    /// <summary>Cosine decay to 0 over the training (else a constant rate).</summary>
    public bool Cosine { get; init; } = true;
    /// <summary>Architecture variant.</summary>
    public LandscapeArch Arch { get; init; } = LandscapeArch.PostActivation;
    /// <summary>He initialization with zero biases (else <see cref="Linear"/>'s default, PyTorch's).</summary>
    public bool HeInit { get; init; } = true;
    /// <summary>Training images the Hessian's loss is taken on (the first of the subset).</summary>
    public int HessianImages { get; init; } = 1_000;
    /// <summary>Eval or training mode for the Hessian.</summary>
    public HessianMode HessianMode { get; init; } = HessianMode.Eval;
    /// <summary>Only the weight matrices (rank ≥ 2), as Li et al.'s code; else every parameter.</summary>
    public bool WeightsOnly { get; init; }
    /// <summary>Lanczos steps (Hessian-vector products) per network.</summary>
    public int LanczosSteps { get; init; } = 20;

    /// <summary>Checks every field; throws naming the one at fault.</summary>
    public void Validate()
    {
        if (Seeds < 1) throw new ArgumentException($"landscape: seeds must be at least 1, got {Seeds}");
        if (Epochs < 1) throw new ArgumentException($"landscape: epochs must be at least 1, got {Epochs}");
        if (!(Lr > 0) || double.IsInfinity(Lr)) throw new ArgumentException($"landscape: the learning rate must be positive and finite, got {Lr}");
        if (!(WeightDecay >= 0) || double.IsInfinity(WeightDecay)) throw new ArgumentException($"landscape: weight decay must be at least 0 and finite, got {WeightDecay}");
        if (HessianImages < 2 || HessianImages > 5_000) throw new ArgumentException($"landscape: the Hessian's images must be between 2 and the subset's 5,000, got {HessianImages}");
        if (LanczosSteps < 2) throw new ArgumentException($"landscape: Lanczos needs at least 2 steps, got {LanczosSteps}");
    }
}

/// <summary>What <see cref="SolutionSpaceClaim.TrainLandscapeNetworks"/> gives back: index 2s is seed s's plain network, 2s + 1 its residual one.</summary>
public sealed record LandscapeNetworks(Sequential[] Models, (double Min, double Max)[] Extremes, (double Loss, double Accuracy)[] Fit, Tensor HessianX, Tensor HessianY)
{
    /// <summary>|λmin/λmax| of each network.</summary>
    public double[] Ratios => Extremes.Select(e => Math.Abs(e.Min / e.Max)).ToArray();

    /// <summary>Median over seeds of <paramref name="of"/>(network k), for the plain networks or the residual ones.</summary>
    public double Median(bool residual, Func<int, double> of) =>
        LabModels.Median(Enumerable.Range(0, Models.Length).Where(k => k % 2 == (residual ? 1 : 0)).Select(of));

    /// <summary>Median |λmin/λmax| of the plain or the residual networks.</summary>
    public double MedianRatio(bool residual) => Median(residual, k => Math.Abs(Extremes[k].Min / Extremes[k].Max));

    /// <summary>Median |λmin/λmax| of the plain networks ÷ that of the residual ones: the claim's measure.</summary>
    public double RatioOfMedians => MedianRatio(residual: false) / MedianRatio(residual: true);
}
