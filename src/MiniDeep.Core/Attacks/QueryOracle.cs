using MiniDeep.Nn;

namespace MiniDeep.Attacks;

/// <summary>An attack asked a black box for more answers than its budget allows.</summary>
public sealed class QueryBudgetExceededException(string message) : Exception(message);

/// <summary>
/// A model seen as a black box, the way a remote service is: an attacker may ask for the labels (or,
/// where allowed, the output probabilities) of inputs, never for gradients or weights, and every image
/// asked about is counted. Black-box attacks take an oracle instead of a <see cref="Module"/>, so the
/// type system enforces what they may see and <see cref="Queries"/> is what they paid.
/// </summary>
public sealed class QueryOracle
{
    private readonly Module _model;

    /// <summary>Wraps <paramref name="model"/> (run in eval mode, without recording).</summary>
    /// <param name="model">The classifier behind the box.</param>
    /// <param name="labelsOnly">True for a label-only oracle (Papernot et al. 2017's setting): <see cref="Probabilities"/> is refused.</param>
    /// <param name="budget">Most images that may be asked about, in all; null for no limit.</param>
    public QueryOracle(Module model, bool labelsOnly, long? budget = null)
    {
        if (budget is < 0) throw new ArgumentOutOfRangeException(nameof(budget), $"QueryOracle: budget must be non-negative, got {budget}");
        _model = model;
        LabelsOnly = labelsOnly;
        Budget = budget;
    }

    /// <summary>True when only labels are answered.</summary>
    public bool LabelsOnly { get; }

    /// <summary>The most images that may be asked about, or null.</summary>
    public long? Budget { get; }

    /// <summary>Images asked about so far (a batch of n counts n).</summary>
    public long Queries { get; private set; }

    /// <summary>The predicted class of each image of a batch.</summary>
    public int[] Labels(Tensor x)
    {
        using var _ = Autograd.NoGrad();
        return Ask(x).ArgMax(1).ToArray<int>();
    }

    /// <summary>The softmax output (N, classes) of a batch; refused by a label-only oracle.</summary>
    public Tensor Probabilities(Tensor x)
    {
        if (LabelsOnly) throw new InvalidOperationException("QueryOracle.Probabilities: this oracle answers labels only");
        using var _ = Autograd.NoGrad();
        return Ask(x).Softmax(1);
    }

    private Tensor Ask(Tensor x)
    {
        if (x.Rank < 1) throw new ShapeMismatchException("QueryOracle", $"QueryOracle: expected a batch (N, ...), got {x.Shape}");
        long n = x.Size(0);
        if (Budget is { } b && Queries + n > b)
            throw new QueryBudgetExceededException($"QueryOracle: {n} more queries would exceed the budget of {b} ({Queries} used)");
        Queries += n;
        bool wasTraining = _model.IsTraining;
        _model.Eval();
        try
        {
            return _model.Forward(x.Detach());
        }
        finally
        {
            _model.Train(wasTraining);
        }
    }
}
