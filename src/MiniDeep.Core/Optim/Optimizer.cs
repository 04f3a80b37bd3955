using System.Globalization;

namespace MiniDeep.Optim;

/// <summary>A set of parameters with its own hyperparameters (learning rate, weight decay, ...).</summary>
public sealed class ParamGroup
{
    /// <summary>A group of parameters with a learning rate and weight decay.</summary>
    public ParamGroup(IEnumerable<Tensor> parameters, double lr, double weightDecay = 0)
    {
        Params = parameters.ToList();
        foreach (var p in Params)
            if (!p.IsLeaf) throw new ArgumentException("optimizers update leaf tensors only; this parameter was computed by " + p.GradFn!.Op);
        Lr = lr;
        InitialLr = lr;
        WeightDecay = weightDecay;
    }

    /// <summary>The tensors updated.</summary>
    public List<Tensor> Params { get; }

    /// <summary>Current learning rate (schedules change it).</summary>
    public double Lr { get => _lr; set => _lr = NonNegative(value, "learning rate"); }
    /// <summary>The learning rate schedules scale from.</summary>
    public double InitialLr { get => _initialLr; set => _initialLr = NonNegative(value, "initial learning rate"); }
    /// <summary>Weight decay (coupled L2 for SGD/Adam/RMSprop, decoupled for AdamW).</summary>
    public double WeightDecay { get => _weightDecay; set => _weightDecay = NonNegative(value, "weight decay"); }

    private double _lr, _initialLr, _weightDecay;

    private static double NonNegative(double value, string what) => Checks.NonNegative(value, what, nameof(ParamGroup));
}

/// <summary>
/// Base of the optimizers. Each parameter's state (momentum buffers, Adam's moments, step counts)
/// lives in <see cref="State"/> as named tensors, so checkpoints can save and restore it exactly.
/// Updates run under NoGrad and modify parameters in place, so models keep their references.
/// </summary>
public abstract class Optimizer
{
    /// <summary>An optimizer over parameter groups.</summary>
    protected Optimizer(IEnumerable<ParamGroup> groups)
    {
        Groups = groups.ToList();
        // A parameter listed twice would be stepped twice per step (twice the rate for SGD, moments
        // updated twice for Adam).
        var seen = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        for (int gi = 0; gi < Groups.Count; gi++)
            for (int pi = 0; pi < Groups[gi].Params.Count; pi++)
                if (!seen.Add(Groups[gi].Params[pi]))
                    throw new ArgumentException($"{GetType().Name}: parameter {pi} of group {gi} (shape {Groups[gi].Params[pi].Shape}) is already in the optimizer; it would be stepped twice per step");
        // Usually an IEnumerable of parameters enumerated twice, or a filter that kept nothing: Step would do nothing.
        if (seen.Count == 0) throw new ArgumentException($"{GetType().Name}: no parameters to optimize (an empty parameter list)");
    }

    /// <summary>
    /// The names of the per-parameter state this optimizer keeps ("step", "exp_avg", ...), so that
    /// <see cref="LoadStateDict"/> refuses another optimizer's state instead of silently starting afresh;
    /// null (the default for optimizers defined elsewhere) accepts any name.
    /// </summary>
    protected virtual IReadOnlyCollection<string>? StateNames => null;

    /// <summary>Parameter groups, each with its own learning rate.</summary>
    public List<ParamGroup> Groups { get; }

    /// <summary>Per-parameter state: name → tensor ("momentum_buffer", "exp_avg", "exp_avg_sq", "step", ...).</summary>
    public Dictionary<Tensor, Dictionary<string, Tensor>> State { get; } = new(ReferenceEqualityComparer.Instance);

    /// <summary>Sets every parameter's gradient to null.</summary>
    public void ZeroGrad()
    {
        foreach (var g in Groups) foreach (var p in g.Params) p.Grad = null;
    }

    /// <summary>Applies one update to every parameter that has a gradient, then runs the step hooks.</summary>
    public void Step()
    {
        // Updates run with recording off. A fused update calls a backend kernel, which records
        // nothing, so the scope is entered only for the first update made of tensor ops: the scope's
        // AsyncLocal writes were most of what a step of fused updates allocated.
        IDisposable? noGrad = null;
        try
        {
            foreach (var g in Groups)
                foreach (var p in g.Params)
                    if (p.Grad is not null && p.RequiresGrad)
                    {
                        if (!State.TryGetValue(p, out var s)) State[p] = s = new Dictionary<string, Tensor>();
                        // A gradient with a graph (create_graph) is detached; a plain one is used as it is (no new tensor per parameter per step).
                        var grad = p.Grad.GradFn is null ? p.Grad : p.Grad.Detach();
                        if (UpdateFused(g, p, grad, s)) continue;
                        noGrad ??= Autograd.NoGrad();
                        Update(g, p, grad, s);
                    }
            if (_stepHooks is not null)
            {
                noGrad ??= Autograd.NoGrad();
                foreach (var hook in _stepHooks.ToArray()) hook();
            }
        }
        finally
        {
            noGrad?.Dispose();
        }
    }

    private List<Action>? _stepHooks;

    /// <summary>
    /// Registers an action run after every <see cref="Step"/>, under NoGrad, e.g. re-applying pruning
    /// masks (momentum and Adam's running averages would otherwise move pruned weights off zero) or
    /// projecting parameters back onto a constraint. Dispose the result to remove it.
    /// </summary>
    public IDisposable RegisterStepHook(Action afterStep)
    {
        ArgumentNullException.ThrowIfNull(afterStep);
        (_stepHooks ??= []).Add(afterStep);
        return new StepHookHandle(this, afterStep);
    }

    private sealed class StepHookHandle(Optimizer owner, Action hook) : IDisposable
    {
        public void Dispose() => owner._stepHooks?.Remove(hook);
    }

    /// <summary>One parameter's update: modify <paramref name="p"/> in place from <paramref name="grad"/> and its state.</summary>
    protected abstract void Update(ParamGroup group, Tensor p, Tensor grad, Dictionary<string, Tensor> state);

    /// <summary>The update as one backend kernel, when it can be (recording need not be off for it);
    /// false leaves it to <see cref="Update"/>, run under NoGrad.</summary>
    protected virtual bool UpdateFused(ParamGroup group, Tensor p, Tensor grad, Dictionary<string, Tensor> state) => false;

    /// <summary>The optimizer state by "group.index.name" keys, plus each group's learning rate, for checkpoints.</summary>
    public Dictionary<string, Tensor> StateDict()
    {
        var d = new Dictionary<string, Tensor>();
        for (int gi = 0; gi < Groups.Count; gi++)
        {
            d[$"{gi}.lr"] = Tensor.Scalar(Groups[gi].Lr, DType.Float64);
            d[$"{gi}.initial_lr"] = Tensor.Scalar(Groups[gi].InitialLr, DType.Float64);
            for (int pi = 0; pi < Groups[gi].Params.Count; pi++)
                if (State.TryGetValue(Groups[gi].Params[pi], out var s))
                    foreach (var (k, v) in s) d[$"{gi}.{pi}.{k}"] = v.Detach().Clone();
        }
        return d;
    }

    /// <summary>
    /// Restores what <see cref="StateDict"/> produced, for the same parameter groups. Every entry is
    /// checked before anything changes: it must name a group and parameter that exist and state this
    /// optimizer keeps; "step" must be a count and every other buffer must have its parameter's shape
    /// (it is converted to the parameter's dtype and device).
    /// </summary>
    public void LoadStateDict(IReadOnlyDictionary<string, Tensor> state) => PrepareLoad(state)();

    /// <summary>Checks <paramref name="state"/> as <see cref="LoadStateDict"/> does, without changing anything; the returned action applies it.</summary>
    internal Action PrepareLoad(IReadOnlyDictionary<string, Tensor> state)
    {
        string Where(string key) => $"{GetType().Name}.LoadStateDict: entry '{key}'";
        var rates = new List<(ParamGroup Group, bool Initial, double Value)>();
        var loaded = new Dictionary<Tensor, Dictionary<string, Tensor>>(ReferenceEqualityComparer.Instance);
        foreach (var (key, value) in state)
        {
            var parts = key.Split('.', 3);
            if (!int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int gi) || gi >= Groups.Count)
                throw new ArgumentException($"{Where(key)} names group {parts[0]}, but there are {Groups.Count} groups");
            var group = Groups[gi];
            if (parts.Length == 2)
            {
                if (parts[1] is not ("lr" or "initial_lr")) throw new ArgumentException($"{Where(key)} is unknown");
                if (value.Numel != 1) throw new ArgumentException($"{Where(key)} must hold one number, got shape {value.Shape}");
                double rate = value.Item();
                Checks.NonNegative(rate, parts[1] == "lr" ? "learning rate" : "initial learning rate", Where(key));
                rates.Add((group, parts[1] == "initial_lr", rate));
                continue;
            }
            if (parts.Length != 3 || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int pi) || pi >= group.Params.Count)
                throw new ArgumentException($"{Where(key)} does not name a parameter of group {gi} (it has {group.Params.Count})");
            string name = parts[2];
            if (StateNames is { } names && !names.Contains(name))
                throw new ArgumentException($"{Where(key)}: {GetType().Name} keeps no state '{name}' (it keeps {string.Join(", ", names)}): the state of another optimizer?");
            var p = group.Params[pi];
            Tensor restored;
            if (name == "step")
            {
                double count = value.Numel == 1 ? value.Item() : double.NaN;
                if (!(count >= 0 && count == Math.Floor(count) && count <= int.MaxValue))
                    throw new ArgumentException($"{Where(key)} must be one non-negative whole number, got {(value.Numel == 1 ? count.ToString(CultureInfo.InvariantCulture) : "shape " + value.Shape)}");
                restored = Tensor.Scalar(count, DType.Float64);
            }
            else
            {
                if (value.Shape != p.Shape)
                    throw new ShapeMismatchException("optimizer_state", $"{Where(key)} has shape {value.Shape}, but parameter {pi} of group {gi} has shape {p.Shape}");
                if (!value.DType.IsFloating())
                    throw new ArgumentException($"{Where(key)} is {value.DType.Name()}; optimizer buffers are floating point");
                restored = value.Detach().To(p.Device).To(p.DType).Clone();
            }
            if (!loaded.TryGetValue(p, out var s)) loaded[p] = s = new Dictionary<string, Tensor>();
            s[name] = restored;
        }
        for (int gi = 0; gi < Groups.Count; gi++)
            foreach (bool initial in (bool[])[false, true])
                if (!rates.Any(r => r.Group == Groups[gi] && r.Initial == initial))
                    throw new ArgumentException($"{GetType().Name}.LoadStateDict: entry '{gi}.{(initial ? "initial_lr" : "lr")}' is missing (the state of an optimizer with fewer parameter groups?)");
        return () =>
        {
            State.Clear();
            foreach (var (p, s) in loaded) State[p] = s;
            foreach (var (group, initial, rate) in rates)
                if (initial) group.InitialLr = rate; else group.Lr = rate;
        };
    }

    /// <summary>The state tensor <paramref name="name"/>, created as zeros like <paramref name="like"/> on first use.</summary>
    protected static Tensor Buffer(Dictionary<string, Tensor> state, string name, Tensor like)
    {
        if (!state.TryGetValue(name, out var t)) state[name] = t = Tensor.ZerosLike(like);
        return t;
    }

    /// <summary>Increments and returns the step counter kept in the state (as a float64 scalar).</summary>
    protected static int NextStep(Dictionary<string, Tensor> state)
    {
        int step = state.TryGetValue("step", out var s) ? (int)s.Item() + 1 : 1;
        state["step"] = Tensor.Scalar(step, DType.Float64);
        return step;
    }
}

/// <summary>
/// Stochastic gradient descent with optional momentum (heavy ball or Nesterov) and coupled weight
/// decay, in PyTorch's formulation: g ← g + λp; v ← μv + g; step along g + μv (Nesterov) or v.
/// </summary>
public sealed class Sgd : Optimizer
{
    private readonly double _momentum;
    private readonly bool _nesterov;

    /// <summary>SGD over one group.</summary>
    public Sgd(IEnumerable<Tensor> parameters, double lr, double momentum = 0, bool nesterov = false, double weightDecay = 0)
        : this([new ParamGroup(parameters, lr, weightDecay)], momentum, nesterov) { }

    /// <summary>SGD over several groups.</summary>
    public Sgd(IEnumerable<ParamGroup> groups, double momentum = 0, bool nesterov = false) : base(groups)
    {
        Checks.NonNegative(momentum, "momentum", "Sgd");
        if (nesterov && momentum <= 0) throw new ArgumentException("Sgd: Nesterov momentum needs momentum > 0");
        _momentum = momentum;
        _nesterov = nesterov;
    }

    /// <inheritdoc/>
    protected override IReadOnlyCollection<string>? StateNames => ["momentum_buffer"];

    /// <inheritdoc/>
    protected override bool UpdateFused(ParamGroup group, Tensor p, Tensor grad, Dictionary<string, Tensor> state)
    {
        if (!(_momentum != 0 && state.TryGetValue("momentum_buffer", out var momentum)
            && grad.DType == p.DType && grad.Shape == p.Shape && momentum.Shape == p.Shape)) return false;
        // Every step after the first: one fused pass (the formula is on SgdHyper).
        p.Backend.SgdStep(p.AsView, grad.AsView, momentum.AsView, new SgdHyper(group.Lr, _momentum, group.WeightDecay, _nesterov));
        p.Storage.BumpVersion(); momentum.Storage.BumpVersion();
        return true;
    }

    /// <inheritdoc/>
    protected override void Update(ParamGroup group, Tensor p, Tensor grad, Dictionary<string, Tensor> state)
    {
        var d = group.WeightDecay != 0 ? grad + p * group.WeightDecay : grad;
        if (_momentum != 0)
        {
            // The first step starts the buffer at d, as PyTorch does.
            var buf = state["momentum_buffer"] = d.Clone();
            d = _nesterov ? d + buf * _momentum : buf;
        }
        p.AddInPlace(d, -group.Lr);
    }
}

/// <summary>
/// Adam (Kingma &amp; Ba 2015) with bias correction; weight decay is added to the gradient (coupled L2).
/// m ← β₁m + (1-β₁)g; v ← β₂v + (1-β₂)g²; p ← p - lr·(m/(1-β₁ᵗ)) / (√(v/(1-β₂ᵗ)) + ε).
/// </summary>
public class Adam : Optimizer
{
    /// <summary>β₁, β₂.</summary>
    protected readonly (double B1, double B2) Betas;
    /// <summary>ε.</summary>
    protected readonly double Eps;

    /// <summary>Adam over one group.</summary>
    public Adam(IEnumerable<Tensor> parameters, double lr = 1e-3, (double, double)? betas = null, double eps = 1e-8, double weightDecay = 0)
        : this([new ParamGroup(parameters, lr, weightDecay)], betas, eps) { }

    /// <summary>Adam over several groups.</summary>
    public Adam(IEnumerable<ParamGroup> groups, (double, double)? betas = null, double eps = 1e-8) : base(groups)
    {
        Betas = betas ?? (0.9, 0.999);
        // β = 1 makes the bias correction 1 − βᵗ zero: every step would divide by it.
        if (!(Betas.B1 >= 0 && Betas.B1 < 1 && Betas.B2 >= 0 && Betas.B2 < 1))
            throw new ArgumentOutOfRangeException(nameof(betas), $"{GetType().Name}: betas must lie in [0, 1), got ({Betas.B1}, {Betas.B2})");
        Eps = Checks.NonNegative(eps, "eps", GetType().Name);
    }

    /// <inheritdoc/>
    protected override IReadOnlyCollection<string>? StateNames => ["step", "exp_avg", "exp_avg_sq"];

    /// <summary>Whether weight decay is decoupled from the gradient (AdamW) or added to it (Adam).</summary>
    protected virtual bool Decoupled => false;

    /// <inheritdoc/>
    protected override void Update(ParamGroup group, Tensor p, Tensor grad, Dictionary<string, Tensor> state) => UpdateFused(group, p, grad, state);

    /// <inheritdoc/>
    protected override bool UpdateFused(ParamGroup group, Tensor p, Tensor grad, Dictionary<string, Tensor> state)
    {
        int t = NextStep(state);
        var m = Buffer(state, "exp_avg", p);
        var v = Buffer(state, "exp_avg_sq", p);
        double c1 = 1 - Math.Pow(Betas.B1, t), c2 = 1 - Math.Pow(Betas.B2, t);
        // One fused pass (the formula is on AdamHyper): the composed form made five full-size temporaries per parameter.
        if (grad.DType != p.DType || grad.Device != p.Device || grad.Shape != p.Shape)
            throw new InvalidOperationException($"Adam: gradient {grad.Shape} ({grad.DType.Name()}) does not match parameter {p.Shape} ({p.DType.Name()})");
        p.Backend.AdamStep(p.AsView, grad.AsView, m.AsView, v.AsView,
            new AdamHyper(group.Lr, Betas.B1, Betas.B2, Eps, group.WeightDecay, Decoupled, c1, c2));
        p.Storage.BumpVersion(); m.Storage.BumpVersion(); v.Storage.BumpVersion();
        return true;
    }
}

/// <summary>AdamW (Loshchilov &amp; Hutter 2019): Adam with decoupled weight decay, p ← p(1 - lr·λ) before the Adam step.</summary>
public sealed class AdamW : Adam
{
    /// <summary>AdamW over one group (weight decay defaults to 0.01, as in PyTorch).</summary>
    public AdamW(IEnumerable<Tensor> parameters, double lr = 1e-3, (double, double)? betas = null, double eps = 1e-8, double weightDecay = 0.01)
        : base(parameters, lr, betas, eps, weightDecay) { }

    /// <summary>AdamW over several groups.</summary>
    public AdamW(IEnumerable<ParamGroup> groups, (double, double)? betas = null, double eps = 1e-8) : base(groups, betas, eps) { }

    /// <inheritdoc/>
    protected override bool Decoupled => true;
}

/// <summary>RMSprop (Hinton's lecture 6e) in PyTorch's formulation: v ← αv + (1-α)g²; p ← p - lr·g/(√v + ε), optionally with momentum.</summary>
public sealed class RmsProp : Optimizer
{
    private readonly double _alpha, _eps, _momentum;

    /// <summary>RMSprop over one group.</summary>
    public RmsProp(IEnumerable<Tensor> parameters, double lr = 1e-2, double alpha = 0.99, double eps = 1e-8, double momentum = 0, double weightDecay = 0)
        : this([new ParamGroup(parameters, lr, weightDecay)], alpha, eps, momentum) { }

    /// <summary>RMSprop over several groups.</summary>
    public RmsProp(IEnumerable<ParamGroup> groups, double alpha = 0.99, double eps = 1e-8, double momentum = 0) : base(groups)
    {
        if (!(alpha >= 0 && alpha <= 1)) throw new ArgumentOutOfRangeException(nameof(alpha), $"RmsProp: alpha must lie in [0, 1], got {alpha}");
        _alpha = alpha;
        _eps = Checks.NonNegative(eps, "eps", "RmsProp");
        _momentum = Checks.NonNegative(momentum, "momentum", "RmsProp");
    }

    /// <inheritdoc/>
    protected override IReadOnlyCollection<string>? StateNames => ["square_avg", "momentum_buffer"];

    /// <inheritdoc/>
    protected override void Update(ParamGroup group, Tensor p, Tensor grad, Dictionary<string, Tensor> state)
    {
        if (group.WeightDecay != 0) grad = grad + p * group.WeightDecay;
        var v = Buffer(state, "square_avg", p);
        v.MulInPlace(_alpha).AddInPlace(grad * grad, 1 - _alpha);
        var step = grad / (v.Sqrt() + _eps);
        if (_momentum > 0)
        {
            var buf = Buffer(state, "momentum_buffer", p);
            buf.MulInPlace(_momentum).AddInPlace(step);
            step = buf;
        }
        p.AddInPlace(step, -group.Lr);
    }
}
