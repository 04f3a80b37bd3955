using MiniDeep.Data;
using MiniDeep.Nn;
using MiniDeep.Optim;

namespace MiniDeep.Continual;

/// <summary>
/// Hard attention to the task (HAT; Serrà, Surís, Miron &amp; Karatzoglou 2018) on a fully connected ReLU
/// network with one head per task. Each task t has an embedding e_l^t per hidden layer l; the layer's
/// units are gated by a_l^t = σ(s·e_l^t), which a large scale s makes nearly binary. Learning task t
/// leaves alone the weights between units that earlier tasks use: a weight's gradient is multiplied by
/// 1 − min(a_out^{&lt;t}, a_in^{&lt;t}), where a^{&lt;t} is the element-wise maximum of the earlier tasks'
/// gates, and a regularizer keeps each task's gates sparse among the units still free.
/// </summary>
/// <remarks>
/// The training of one task (<see cref="TrainTask"/>) follows the paper: s is annealed within each epoch
/// from 1/s_max to s_max, s = 1/s_max + (s_max − 1/s_max)(b − 1)/(B − 1) for batch b of B; the embeddings'
/// gradients are compensated for that annealing, q' = s_max[cosh(s·e) + 1] / (s[cosh(e) + 1])·q (eq. 5);
/// the embeddings are kept within ±6; the loss adds c·R with
/// R = Σ_l Σ_i a_{l,i}^t (1 − a_{l,i}^{&lt;t}) / Σ_l Σ_i (1 − a_{l,i}^{&lt;t}) (eq. 6). At test time s = s_max.
/// </remarks>
public sealed class HatMlp : Module, ITaskConditioned
{
    private readonly Module? _input;
    private readonly Linear[] _layers;
    private readonly Tensor[] _embeddings;          // (tasks, units) per hidden layer
    private readonly Module[] _heads;
    private readonly double[][] _cumulative;        // a^{<t} per hidden layer, updated by EndTask
    // What the cumulative gates imply, rebuilt only by EndTask (they change nowhere else): per hidden
    // layer, 1 − a^{<t} as a (1, units) row for the regularizer and a (units) vector for the biases, and
    // 1 − min(a_out^{<t}, a_in^{<t}) as an (out, in) matrix for the weights.
    private readonly Tensor[] _freeRow, _freeBias, _freeWeight;
    private readonly double[] _freeCount;

    /// <summary>
    /// A HAT network: an optional input module (e.g. standardize and flatten), hidden ReLU layers of the
    /// given widths, and one linear head per task.
    /// </summary>
    public HatMlp(int inputs, int[] hidden, int[] headClasses, Generator generator, Module? input = null, double sMax = 400)
    {
        if (hidden.Length == 0 || headClasses.Length == 0) throw new ArgumentException("HatMlp: at least one hidden layer and one task");
        if (inputs < 1) throw new ArgumentOutOfRangeException(nameof(inputs), $"HatMlp: at least one input, got {inputs}");
        for (int l = 0; l < hidden.Length; l++)
            if (hidden[l] < 1) throw new ArgumentOutOfRangeException(nameof(hidden), $"HatMlp: hidden layer {l + 1} needs at least one unit, got {hidden[l]}");
        for (int t = 0; t < headClasses.Length; t++)
            if (headClasses[t] < 1) throw new ArgumentOutOfRangeException(nameof(headClasses), $"HatMlp: task {t}'s head needs at least one class, got {headClasses[t]}");
        SMax = sMax > 1 ? sMax : throw new ArgumentOutOfRangeException(nameof(sMax), $"HatMlp: s_max must exceed 1, got {sMax}");
        if (input is not null) _input = RegisterModule("input", input);
        _layers = new Linear[hidden.Length];
        _embeddings = new Tensor[hidden.Length];
        _cumulative = new double[hidden.Length][];
        _freeRow = new Tensor[hidden.Length];
        _freeBias = new Tensor[hidden.Length];
        _freeWeight = new Tensor[hidden.Length];
        _freeCount = new double[hidden.Length];
        for (int l = 0; l < hidden.Length; l++)
        {
            _layers[l] = RegisterModule($"fc{l + 1}", new Linear(l == 0 ? inputs : hidden[l - 1], hidden[l], generator: generator));
            _embeddings[l] = RegisterParameter($"embedding{l + 1}", Tensor.Randn(new Shape(headClasses.Length, hidden[l]), generator));
            _cumulative[l] = new double[hidden[l]];
        }
        _heads = new Module[headClasses.Length];
        for (int t = 0; t < headClasses.Length; t++) _heads[t] = RegisterModule($"head{t + 1}", new Linear(hidden[^1], headClasses[t], generator: generator));
        RebuildFree();
        Scale = sMax;
    }

    /// <summary>The largest scale, used at test time (400 in the paper).</summary>
    public double SMax { get; }

    /// <summary>The gate scale s of the next forward pass, in (0, ∞) (annealed from 1/s_max to s_max in training).</summary>
    public double Scale
    {
        get;
        set => field = double.IsFinite(value) && value > 0 ? value
            : throw new ArgumentOutOfRangeException(nameof(Scale), $"HatMlp.Scale: the gate scale must be finite and positive, got {value}");
    }

    /// <summary>The task (head and embeddings) of the next forward pass.</summary>
    public int ActiveTask
    {
        get => _active;
        set => _active = (uint)value < (uint)_heads.Length ? value : throw new ArgumentOutOfRangeException(nameof(value), $"HatMlp: task {value} of {_heads.Length}");
    }
    private int _active;

    /// <summary>The task embeddings, one (tasks, units) tensor per hidden layer.</summary>
    public IReadOnlyList<Tensor> Embeddings => _embeddings;

    /// <summary>Number of tasks the network has heads for.</summary>
    public int Tasks => _heads.Length;

    /// <summary>The gates a_l = σ(s·e_l) of the active task at the current scale, one (1, units) tensor per hidden layer (recorded).</summary>
    public Tensor[] Gates() => _embeddings.Select(e => (e.Narrow(0, _active, 1) * Scale).Sigmoid()).ToArray();

    /// <inheritdoc/>
    protected override Tensor ForwardImpl(Tensor x)
    {
        var h = _input is null ? x : _input.Forward(x);
        var gates = Gates();
        for (int l = 0; l < _layers.Length; l++) h = _layers[l].Forward(h).Relu() * gates[l];
        return _heads[_active].Forward(h);
    }

    /// <summary>
    /// The attention regularizer of the active task, Σ a^t(1 − a^{&lt;t}) / Σ(1 − a^{&lt;t}) over all hidden
    /// units (recorded, so it can be added to the loss).
    /// </summary>
    public Tensor Regularizer()
    {
        var gates = Gates();
        Tensor? num = null;
        for (int l = 0; l < gates.Length; l++)
        {
            var term = (gates[l] * _freeRow[l]).Sum();
            num = num is null ? term : num + term;
        }
        return num! / Math.Max(_freeCount.Sum(), 1e-12);
    }

    /// <summary>Fraction of each hidden layer's units that earlier tasks hold (cumulative gate above ½).</summary>
    public double[] UnitsInUse() => _cumulative.Select(a => a.Count(v => v > 0.5) / (double)a.Length).ToArray();

    /// <summary>
    /// After Backward: scales the hidden weights' and biases' gradients by what earlier tasks leave free,
    /// and compensates the embeddings' gradients for the annealed scale (eq. 5).
    /// </summary>
    public void ConditionGradients()
    {
        using var _ = Autograd.NoGrad();
        for (int l = 0; l < _layers.Length; l++)
        {
            var w = _layers[l].Weight;
            if (w.Grad is not null) w.Grad = w.Grad * _freeWeight[l];
            var b = _layers[l].Bias!;
            if (b.Grad is not null) b.Grad = b.Grad * _freeBias[l];
            var e = _embeddings[l];
            if (e.Grad is not null)
            {
                var values = e.ToDoubleArray();
                var factor = new double[values.Length];
                for (int i = 0; i < values.Length; i++)
                {
                    // The official implementation clamps s·e at ±50 so that cosh stays finite.
                    double num = Math.Cosh(Math.Clamp(Scale * values[i], -50, 50)) + 1, den = Math.Cosh(values[i]) + 1;
                    factor[i] = SMax / Scale * num / den;
                }
                e.Grad = e.Grad * Tensor.FromArray(factor, e.Shape.ToArray()).To(e.DType);
            }
        }
    }

    /// <summary>Keeps the embeddings within ±<paramref name="limit"/> (6 in the paper's code: σ(400·6) is 1 in float32 already).</summary>
    public void ClampEmbeddings(double limit = 6)
    {
        if (!(limit >= 0)) throw new ArgumentOutOfRangeException(nameof(limit), $"HatMlp.ClampEmbeddings: the limit must be non-negative, got {limit}");
        using var _ = Autograd.NoGrad();
        foreach (var e in _embeddings) e.CopyFrom(e.Detach().Clamp(-limit, limit));
    }

    /// <summary>Folds the active task's gates at s_max into the cumulative gates: its units are now held.</summary>
    public void EndTask()
    {
        double saved = Scale;
        Scale = SMax;
        using (Autograd.NoGrad())
        {
            var gates = Gates();
            for (int l = 0; l < gates.Length; l++)
            {
                var a = gates[l].ToDoubleArray();
                for (int i = 0; i < a.Length; i++) _cumulative[l][i] = Math.Max(_cumulative[l][i], a[i]);
            }
        }
        Scale = saved;
        RebuildFree();
    }

    private void RebuildFree()
    {
        for (int l = 0; l < _layers.Length; l++)
        {
            var used = _cumulative[l];
            _freeRow[l] = Tensor.FromArray(used.Select(a => (float)(1 - a)).ToArray(), 1, used.Length);
            _freeBias[l] = _freeRow[l].Reshape(used.Length);
            _freeCount[l] = used.Sum(a => 1 - a);
            // The first layer's inputs carry no gate: only the unit a weight feeds decides.
            var outUsed = Tensor.FromArray(used.Select(a => (float)a).ToArray(), used.Length, 1);
            var held = l == 0 ? outUsed : Tensor.Minimum(outUsed, Tensor.FromArray(_cumulative[l - 1].Select(a => (float)a).ToArray(), 1, _cumulative[l - 1].Length));
            _freeWeight[l] = (1 - held).Contiguous();
        }
    }

    /// <summary>
    /// Trains the network on one task, the paper's way: SGD on cross-entropy + c·regularizer, the scale
    /// annealed within every epoch, gradients conditioned, embeddings clamped; then <see cref="EndTask"/>.
    /// </summary>
    /// <param name="task">The task to learn (0-based): its head and embeddings are trained.</param>
    /// <param name="loader">The task's training batches.</param>
    /// <param name="epochs">Passes over the loader.</param>
    /// <param name="lr">SGD's learning rate (0.05 in the paper).</param>
    /// <param name="c">The regularizer's weight (0.75 in the paper).</param>
    /// <param name="clipNorm">The gradient norm clipped to (10,000 in the paper's code).</param>
    /// <param name="afterEpoch">Called after each epoch (0-based) with the network in eval mode at s = s_max, e.g. to watch
    /// the task's accuracy; it must not train the network.</param>
    /// <param name="keepBestOn">Validation examples of the task: the network kept (and whose gates are folded in) is the
    /// one of the epoch with the lowest cross-entropy on them at s = s_max, as the paper's code keeps its best
    /// validation model (which it chooses by the loss with the regularizer added).</param>
    /// <returns>The epoch kept (the last one unless <paramref name="keepBestOn"/> chose another) and each epoch's
    /// loss and accuracy on <paramref name="keepBestOn"/>, so a caller that reports them need not evaluate again.</returns>
    public HatTaskResult TrainTask(int task, DataLoader loader, int epochs, double lr, double c = 0.75, double clipNorm = 10_000, Action<int>? afterEpoch = null,
        IDataset? keepBestOn = null)
    {
        if (epochs < 1) throw new ArgumentOutOfRangeException(nameof(epochs), $"HatMlp.TrainTask: at least one epoch, got {epochs} (no epoch would fold untrained gates into the held units)");
        Checks.NonNegative(c, "regularizer's weight c", "HatMlp.TrainTask");
        ActiveTask = task;
        var best = keepBestOn is null ? null : new BestEpoch(this);
        var validation = new List<(double Loss, double Accuracy)>();
        // Listed once: Parameters() walks the module tree and deduplicates, which the batch loop need not repeat.
        var parameters = Parameters();
        var opt = new Sgd(parameters, lr);
        int batches = loader.BatchesPerEpoch;
        for (int epoch = 0; epoch < epochs; epoch++)
        {
            Train();
            int b = 0;
            foreach (var batch in loader.NextEpoch())
            {
                Scale = 1 / SMax + (SMax - 1 / SMax) * (batches > 1 ? b / (double)(batches - 1) : 1);
                b++;
                opt.ZeroGrad();
                var loss = Losses.CrossEntropy(Forward(batch.X), batch.Y) + Regularizer() * c;
                loss.Backward();
                ConditionGradients();
                GradClip.ClipGradNorm(parameters, clipNorm);
                opt.Step();
                ClampEmbeddings();
            }
            if (afterEpoch is not null || keepBestOn is not null)
            {
                Scale = SMax;
                Eval();
                afterEpoch?.Invoke(epoch);
                if (best is not null)
                {
                    validation.Add(Trainer.Evaluate(this, keepBestOn!));
                    best.Offer(epoch + 1, validation[^1].Loss);
                }
            }
        }
        best?.Restore();
        Scale = SMax;
        Eval();
        EndTask();
        return new HatTaskResult(best?.Epoch ?? epochs, validation);
    }

    /// <inheritdoc/>
    public override string Describe() => $"HatMlp({_layers.Length} hidden layers, {_heads.Length} tasks, s_max={SMax})";
}

/// <summary>What <see cref="HatMlp.TrainTask"/> did with one task.</summary>
/// <param name="KeptEpoch">The epoch (1-based) whose network was kept and whose gates were folded in.</param>
/// <param name="Validation">Each epoch's cross-entropy and accuracy on the validation set at s = s_max; empty without one.</param>
public sealed record HatTaskResult(int KeptEpoch, IReadOnlyList<(double Loss, double Accuracy)> Validation);
