using MiniDeep.Optim;

namespace MiniDeep.Continual;

/// <summary>
/// Quadratic anchors that hold parameters near the values earlier tasks left them at:
/// EWC (Kirkpatrick et al. 2017), where each parameter is held by its diagonal Fisher information, and
/// the plain L2 anchor, where every parameter is held alike. The penalty for the tasks so far is
/// (λ/2) Σ_t Σ_i F_t,i (θ_i − θ*_t,i)².
/// </summary>
/// <remarks>
/// Why not just add the penalty's gradient to the loss: a gradient step on (λ/2)F(θ − θ*)² multiplies
/// θ − θ* by 1 − ηλF, which flips sign and grows once ηλF &gt; 2, and the Fisher of a confident network
/// has entries large enough for that at the λ EWC needs. <see cref="Attach"/> instead takes the
/// optimizer's step on the task loss and then the exact proximal step of the penalty,
/// θ ← (θ + ηλ Σ_t F_t θ*_t) / (1 + ηλ Σ_t F_t), the minimizer of (1/2η)‖θ − θ_step‖² + penalty, which
/// only ever pulls θ towards the anchors, for any η, λ and F.
/// </remarks>
public sealed class QuadraticAnchors
{
    private readonly List<Tensor> _parameters;
    // Σ_t F_t and Σ_t F_t θ*_t per parameter: all the proximal step and the penalty need.
    private readonly Tensor[] _weight;
    private readonly Tensor[] _weightedAnchor;
    private readonly Tensor[] _weightedAnchorSq;

    /// <summary>Anchors for <paramref name="parameters"/> (none yet: the penalty is 0 until <see cref="Consolidate"/>).</summary>
    public QuadraticAnchors(IEnumerable<Tensor> parameters)
    {
        _parameters = parameters.ToList();
        if (_parameters.Count == 0) throw new ArgumentException("QuadraticAnchors: no parameters to anchor");
        _weight = _parameters.Select(p => Tensor.ZerosLike(p).Detach()).ToArray();
        _weightedAnchor = _parameters.Select(p => Tensor.ZerosLike(p).Detach()).ToArray();
        _weightedAnchorSq = _parameters.Select(p => Tensor.ZerosLike(p).Detach()).ToArray();
    }

    /// <summary>Tasks consolidated so far.</summary>
    public int Tasks { get; private set; }

    /// <summary>
    /// Anchors the parameters at their current values with per-entry importances <paramref name="importance"/>
    /// (one tensor per parameter, e.g. <see cref="Fisher.Diagonal"/>; null means 1 everywhere, the L2 anchor).
    /// </summary>
    public void Consolidate(IReadOnlyList<Tensor>? importance = null)
    {
        if (importance is not null && importance.Count != _parameters.Count)
            throw new ArgumentException($"QuadraticAnchors.Consolidate: {importance.Count} importance tensors for {_parameters.Count} parameters");
        using var _ = Autograd.NoGrad();
        // Every importance is checked before any sum changes, so a refused call anchors nothing. A negative
        // one would turn the anchor into a push away from θ*, and a NaN would make the penalty NaN.
        for (int i = 0; importance is not null && i < _parameters.Count; i++)
        {
            if (importance[i].Shape != _parameters[i].Shape)
                throw new ArgumentException($"QuadraticAnchors.Consolidate: importance {i} has shape {importance[i].Shape}, its parameter {_parameters[i].Shape}");
            var values = importance[i].ToDoubleArray();
            int bad = Array.FindIndex(values, v => !(v >= 0 && double.IsFinite(v)));
            if (bad >= 0)
                throw new ArgumentOutOfRangeException(nameof(importance), $"QuadraticAnchors.Consolidate: importance {i} holds {values[bad]} at flat index {bad}; importances must be finite and non-negative");
        }
        for (int i = 0; i < _parameters.Count; i++)
        {
            var theta = _parameters[i].Detach();
            var f = importance is null ? Tensor.OnesLike(theta) : importance[i].Detach();
            _weight[i].AddInPlace(f);
            _weightedAnchor[i].AddInPlace(f * theta);
            _weightedAnchorSq[i].AddInPlace(f * theta * theta);
        }
        Tasks++;
    }

    /// <summary>The penalty Σ_t Σ_i F_t,i (θ_i − θ*_t,i)² / 2 at the current parameters, without λ (for reports).</summary>
    public double Penalty()
    {
        using var _ = Autograd.NoGrad();
        double total = 0;
        for (int i = 0; i < _parameters.Count; i++)
        {
            var theta = _parameters[i].Detach();
            // Σ F(θ − θ*)² = θ²ΣF − 2θΣFθ* + ΣFθ*²
            total += (theta * theta * _weight[i] - theta * _weightedAnchor[i] * 2 + _weightedAnchorSq[i]).Sum().Item() / 2;
        }
        return total;
    }

    /// <summary>
    /// The penalty (λ/2) Σ_t Σ_i F_t,i (θ_i − θ*_t,i)² as a differentiable scalar, to add to a loss: the
    /// textbook EWC, whose gradient λ(θ Σ_t F_t − Σ_t F_t θ*_t) the optimizer then steps along. Under SGD
    /// that step multiplies θ − θ* by 1 − ηλF, which diverges once ηλF &gt; 2 (see the remarks); it is here
    /// to compare against and for optimizers whose steps should see the penalty, and
    /// <see cref="Attach"/> is the stable choice.
    /// </summary>
    public Tensor PenaltyTerm(double lambda)
    {
        Checks.NonNegative(lambda, "λ", "QuadraticAnchors.PenaltyTerm");
        Tensor? total = null;
        for (int i = 0; i < _parameters.Count; i++)
        {
            var theta = _parameters[i];
            // Σ F(θ − θ*)² from the kept sums: θ²ΣF − 2θΣFθ* + ΣFθ*², whose gradient 2(θΣF − ΣFθ*) is exact.
            var term = (theta * theta * _weight[i] - theta * _weightedAnchor[i] * 2 + _weightedAnchorSq[i]).Sum();
            total = total is null ? term : total + term;
        }
        return (total ?? Tensor.Scalar(0.0)) * (lambda / 2);
    }

    /// <summary>
    /// After every step of <paramref name="optimizer"/>, applies the proximal step of λ·penalty with each
    /// parameter's group learning rate. Dispose to detach.
    /// </summary>
    public IDisposable Attach(Optimizer optimizer, double lambda)
    {
        Checks.NonNegative(lambda, "λ", "QuadraticAnchors.Attach");
        var index = new Dictionary<Tensor, int>(ReferenceEqualityComparer.Instance);
        for (int i = 0; i < _parameters.Count; i++) index[_parameters[i]] = i;
        // θ ← (θ + c·ΣFθ*)·1/(1 + c·ΣF) with c = ηλ: the two factors change only when a task is
        // consolidated or a scheduler moves η, so they are kept, and a step allocates nothing.
        var shift = new Tensor?[_parameters.Count];
        var scale = new Tensor?[_parameters.Count];
        var keptFor = new (double C, int Tasks)[_parameters.Count];
        return optimizer.RegisterStepHook(() =>
        {
            if (Tasks == 0 || lambda == 0) return;
            foreach (var g in optimizer.Groups)
                foreach (var p in g.Params)
                {
                    if (!index.TryGetValue(p, out int i)) continue;
                    double c = g.Lr * lambda;
                    if (shift[i] is null || keptFor[i] != (c, Tasks))
                    {
                        shift[i] = _weightedAnchor[i] * c;
                        scale[i] = 1 / (_weight[i] * c + 1);
                        keptFor[i] = (c, Tasks);
                    }
                    p.AddInPlace(shift[i]!);
                    p.MulInPlace(scale[i]!);
                }
        });
    }
}

/// <summary>The diagonal of the Fisher information of a classifier, estimated from samples.</summary>
public static class Fisher
{
    /// <summary>
    /// F_i = E_x E_{y ~ p(y|x)} [(∂ log p(y|x)/∂θ_i)²] over the rows of <paramref name="x"/> (the true Fisher:
    /// labels drawn from the model's own predictive distribution, one per input), one backward pass per
    /// sample. <paramref name="forward"/> maps a batch to logits.
    /// </summary>
    public static List<Tensor> Diagonal(Func<Tensor, Tensor> forward, IReadOnlyList<Tensor> parameters, Tensor x, Generator generator)
    {
        int n = x.Size(0);
        if (n == 0) throw new ArgumentException("Fisher.Diagonal: no samples");
        var sum = parameters.Select(p => Tensor.ZerosLike(p).Detach()).ToList();
        for (int i = 0; i < n; i++)
        {
            var xi = x.Narrow(0, i, 1);
            var logp = forward(xi).LogSoftmax(-1);
            int y;
            using (Autograd.NoGrad())
            {
                var probs = logp.Exp().ToDoubleArray();
                double u = Tensor.Rand(new Shape(1), generator).Item(), acc = 0;
                y = probs.Length - 1;
                for (int c = 0; c < probs.Length; c++) { acc += probs[c]; if (u < acc) { y = c; break; } }
            }
            var grads = Autograd.Grad([logp.Narrow(1, y, 1).Sum()], parameters.ToArray(), allowUnused: true);
            using (Autograd.NoGrad())
                for (int k = 0; k < parameters.Count; k++)
                    if (grads[k] is { } g) sum[k].AddInPlace(g * g);
        }
        using (Autograd.NoGrad()) foreach (var s in sum) s.MulInPlace(1.0 / n);
        return sum;
    }
}
