namespace MiniDeep.Nn;

/// <summary>
/// The multi-layer, optionally bidirectional loop that <see cref="Lstm"/> and <see cref="Gru"/> share,
/// with PyTorch's parameter names, layouts and initialization: for layer k and direction d,
/// weight_ih_lk[_reverse] (gates·H, in), weight_hh_lk[_reverse] (gates·H, H) and the two biases, all
/// uniform on ±1/√H. Every step is ordinary tensor ops (the input projection of the whole sequence is
/// one GEMM, then one small GEMM and the gate arithmetic per step), so backpropagation through time,
/// second derivatives and every backend come from the ops' own rules.
/// </summary>
public abstract class Recurrent : Module
{
    /// <inheritdoc/>
    protected internal override bool MayKeepInput => false;
    private readonly int _gates;
    private readonly Tensor[][] _weights;   // per layer and direction: W_ih, W_hh, and b_ih, b_hh when there are biases

    /// <summary>Features of each input step.</summary>
    public int InputSize { get; }
    /// <summary>Features of the hidden state.</summary>
    public int HiddenSize { get; }
    /// <summary>Stacked layers; each takes the previous one's outputs.</summary>
    public int NumLayers { get; }
    /// <summary>Whether the inputs and outputs are (N, T, features) rather than (T, N, features).</summary>
    public bool BatchFirst { get; }
    /// <summary>Whether each layer also runs the sequence backwards and concatenates both directions' outputs.</summary>
    public bool Bidirectional { get; }
    private int Directions => Bidirectional ? 2 : 1;

    /// <summary>The probability with which dropout zeroes each output of every layer but the last, in training mode.</summary>
    public double Dropout { get; }
    /// <summary>The generator of those dropout masks (null: <see cref="Generator.Default"/>); checkpoints save its state.</summary>
    public Generator? DropoutGenerator { get; }

    private protected Recurrent(string kind, int gates, int inputSize, int hiddenSize, int numLayers, bool bias, bool batchFirst, bool bidirectional,
        double dropout, Generator? dropoutGenerator, Generator? generator, DType dtype)
    {
        if (inputSize < 1 || hiddenSize < 1 || numLayers < 1)
            throw new ArgumentException($"{kind}: input size {inputSize}, hidden size {hiddenSize} and layers {numLayers} must be positive");
        if (!(dropout >= 0 && dropout <= 1)) throw new ArgumentOutOfRangeException(nameof(dropout), $"{kind}: dropout must lie in [0, 1], got {dropout}");
        (_gates, InputSize, HiddenSize, NumLayers, BatchFirst, Bidirectional) = (gates, inputSize, hiddenSize, numLayers, batchFirst, bidirectional);
        (Dropout, DropoutGenerator) = (dropout, dropoutGenerator);
        double bound = 1 / Math.Sqrt(hiddenSize);
        Tensor Uniform(params int[] shape) => Tensor.Rand(new Shape(shape), generator, -bound, bound, dtype);
        _weights = new Tensor[numLayers * Directions][];
        for (int layer = 0; layer < numLayers; layer++)
            for (int d = 0; d < Directions; d++)
            {
                string suffix = $"_l{layer}{(d == 1 ? "_reverse" : "")}";
                int inSize = layer == 0 ? inputSize : hiddenSize * Directions;
                var w = new List<Tensor>
                {
                    RegisterParameter("weight_ih" + suffix, Uniform(gates * hiddenSize, inSize)),
                    RegisterParameter("weight_hh" + suffix, Uniform(gates * hiddenSize, hiddenSize)),
                };
                if (bias)
                {
                    w.Add(RegisterParameter("bias_ih" + suffix, Uniform(gates * hiddenSize)));
                    w.Add(RegisterParameter("bias_hh" + suffix, Uniform(gates * hiddenSize)));
                }
                _weights[layer * Directions + d] = [.. w];
            }
    }

    /// <summary>Whether the layers have the two bias vectors.</summary>
    public bool HasBias => _weights[0].Length > 2;

    /// <summary>W_ih, W_hh and (with biases) b_ih, b_hh of one layer and direction (1: the reverse one).</summary>
    public IReadOnlyList<Tensor> Weights(int layer, int direction)
    {
        if ((uint)layer >= (uint)NumLayers || (uint)direction >= (uint)Directions)
            throw new ArgumentOutOfRangeException(nameof(layer), $"{Describe()}: no layer {layer} in direction {direction} ({NumLayers} layers, {Directions} direction{(Directions == 1 ? "" : "s")})");
        return _weights[layer * Directions + direction];
    }

    /// <inheritdoc/>
    public override string Describe() =>
        $"{GetType().Name}({InputSize}, {HiddenSize}{(NumLayers > 1 ? $", num_layers={NumLayers}" : "")}{(BatchFirst ? ", batch_first=True" : "")}{(Bidirectional ? ", bidirectional=True" : "")}{(Dropout > 0 ? $", dropout={Dropout}" : "")})";

    /// <summary>The outputs of the last layer at every step (what a <see cref="Sequential"/> passes on).</summary>
    protected override Tensor ForwardImpl(Tensor x) => RunCore(x, null).Output;

    /// <summary>One step of the cell: the input's projection for this step (N, gates·H), the state
    /// (h first), the hidden-to-hidden weight and bias; the new state.</summary>
    private protected abstract Tensor[] Step(Tensor inputProjection, Tensor[] state, Tensor weightHh, Tensor? biasHh);

    /// <summary>The number of state tensors: 2 for an LSTM (h, c), 1 for a GRU.</summary>
    private protected abstract int StateCount { get; }

    // x: (T, N, in), (N, T, in) when batch first, or (T, in) unbatched. Initial states (L·D, N, H) each, or
    // (L·D, H) unbatched. Returns the last layer's outputs and each state component at the last step,
    // stacked over layers and directions as PyTorch orders them.
    private protected (Tensor Output, Tensor[] Final) RunCore(Tensor x, Tensor[]? initial)
    {
        string name = Describe();
        bool unbatched = x.Rank == 2;
        if (x.Rank is not (2 or 3) || x.Size(-1) != InputSize)
            throw new ShapeMismatchException(name, $"{name}: input {x.Shape} must be {(BatchFirst ? "(N, T" : "(T, N")}, {InputSize}) or (T, {InputSize})");
        var seq = unbatched ? x.Unsqueeze(1) : BatchFirst ? x.Transpose(0, 1) : x;   // (T, N, in)
        int steps = seq.Size(0), n = seq.Size(1), h = HiddenSize, slots = NumLayers * Directions;
        if (steps == 0) throw new ShapeMismatchException(name, $"{name}: input {x.Shape} has no time steps");
        var start = new Tensor[StateCount];
        for (int s = 0; s < StateCount; s++)
        {
            var given = initial?[s];
            if (given is null) { start[s] = Tensor.Zeros(new Shape(slots, n, h), x.DType, x.Device); continue; }
            var expected = unbatched ? new Shape(slots, h) : new Shape(slots, n, h);
            if (given.Shape != expected)
                throw new ShapeMismatchException(name, $"{name}: initial state {given.Shape} must be {expected} for input {x.Shape}");
            start[s] = unbatched ? given.Unsqueeze(1) : given;
        }

        var final = new Tensor[StateCount][];
        for (int s = 0; s < StateCount; s++) final[s] = new Tensor[slots];
        var layerInput = seq;
        for (int layer = 0; layer < NumLayers; layer++)
        {
            var directionOutputs = new Tensor[Directions];
            for (int d = 0; d < Directions; d++)
            {
                int slot = layer * Directions + d;
                var w = _weights[slot];
                int inSize = layerInput.Size(2);
                var projection = Tensor.Linear(layerInput.Reshape(steps * n, inSize), w[0], w.Length > 2 ? w[2] : null).Reshape(steps, n, _gates * h);
                var state = start.Select(t => t.Select(0, slot)).ToArray();
                var outputs = new Tensor[steps];
                for (int i = 0; i < steps; i++)
                {
                    int t = d == 0 ? i : steps - 1 - i;
                    state = Step(projection.Select(0, t), state, w[1], w.Length > 2 ? w[3] : null);
                    outputs[t] = state[0];
                }
                directionOutputs[d] = Tensor.Stack(outputs);
                for (int s = 0; s < StateCount; s++) final[s][slot] = state[s];
            }
            layerInput = Directions == 1 ? directionOutputs[0] : Tensor.Concat(directionOutputs, 2);
            // As PyTorch: between layers, never after the last (so one layer ignores it).
            if (layer < NumLayers - 1) layerInput = layerInput.Dropout(Dropout, IsTraining, DropoutGenerator);
        }
        var output = unbatched ? layerInput.Squeeze(1) : BatchFirst ? layerInput.Transpose(0, 1) : layerInput;
        var finals = final.Select(f => unbatched ? Tensor.Stack(f).Squeeze(1) : Tensor.Stack(f)).ToArray();
        return (output, finals);
    }
}

/// <summary>
/// Long short-term memory (PyTorch's nn.LSTM): per step, from the input x and the state (h, c),
/// i = σ(W_ii x + b_ii + W_hi h + b_hi), f = σ(… f …), g = tanh(… g …), o = σ(… o …) (the gates stacked
/// i, f, g, o in the weights' rows), c' = f·c + i·g, h' = o·tanh(c').
/// </summary>
public sealed class Lstm(int inputSize, int hiddenSize, int numLayers = 1, bool bias = true, bool batchFirst = false, bool bidirectional = false,
    double dropout = 0, Generator? dropoutGenerator = null, Generator? generator = null, DType dtype = DType.Float32)
    : Recurrent("Lstm", 4, inputSize, hiddenSize, numLayers, bias, batchFirst, bidirectional, dropout, dropoutGenerator, generator, dtype)
{
    /// <summary>The outputs of the last layer at every step, and (h, c) after the last step for every
    /// layer and direction, (layers·directions, N, H) each; <paramref name="state"/> is the initial (h, c),
    /// zeros when null.</summary>
    public (Tensor Output, (Tensor H, Tensor C) State) Run(Tensor x, (Tensor H, Tensor C)? state = null)
    {
        var (output, final) = RunCore(x, state is { } s ? new[] { s.H, s.C } : null);
        return (output, (final[0], final[1]));
    }

    private protected override int StateCount => 2;

    private protected override Tensor[] Step(Tensor inputProjection, Tensor[] state, Tensor weightHh, Tensor? biasHh)
    {
        int h = HiddenSize;
        var gates = inputProjection + Tensor.Linear(state[0], weightHh, biasHh);
        var i = gates.Narrow(1, 0, h).Sigmoid();
        var f = gates.Narrow(1, h, h).Sigmoid();
        var g = gates.Narrow(1, 2 * h, h).Tanh();
        var o = gates.Narrow(1, 3 * h, h).Sigmoid();
        var c = f * state[1] + i * g;
        return [o * c.Tanh(), c];
    }
}

/// <summary>
/// Gated recurrent unit (PyTorch's nn.GRU): per step, r = σ(W_ir x + b_ir + W_hr h + b_hr),
/// z = σ(… z …), n = tanh(W_in x + b_in + r·(W_hn h + b_hn)) (the reset gate inside, as PyTorch and
/// cuDNN have it), h' = (1 − z)·n + z·h; the gates stacked r, z, n in the weights' rows.
/// </summary>
public sealed class Gru(int inputSize, int hiddenSize, int numLayers = 1, bool bias = true, bool batchFirst = false, bool bidirectional = false,
    double dropout = 0, Generator? dropoutGenerator = null, Generator? generator = null, DType dtype = DType.Float32)
    : Recurrent("Gru", 3, inputSize, hiddenSize, numLayers, bias, batchFirst, bidirectional, dropout, dropoutGenerator, generator, dtype)
{
    /// <summary>The outputs of the last layer at every step, and h after the last step for every layer
    /// and direction, (layers·directions, N, H); <paramref name="h0"/> is the initial h, zeros when null.</summary>
    public (Tensor Output, Tensor H) Run(Tensor x, Tensor? h0 = null)
    {
        var (output, final) = RunCore(x, h0 is null ? null : new[] { h0 });
        return (output, final[0]);
    }

    private protected override int StateCount => 1;

    private protected override Tensor[] Step(Tensor inputProjection, Tensor[] state, Tensor weightHh, Tensor? biasHh)
    {
        int h = HiddenSize;
        var hidden = Tensor.Linear(state[0], weightHh, biasHh);
        var r = (inputProjection.Narrow(1, 0, h) + hidden.Narrow(1, 0, h)).Sigmoid();
        var z = (inputProjection.Narrow(1, h, h) + hidden.Narrow(1, h, h)).Sigmoid();
        var candidate = (inputProjection.Narrow(1, 2 * h, h) + r * hidden.Narrow(1, 2 * h, h)).Tanh();
        return [candidate + z * (state[0] - candidate)];
    }
}
