namespace MiniDeep.Nn;

/// <summary>
/// Multi-head attention (Vaswani et al. 2017) with PyTorch's <c>nn.MultiheadAttention</c> parameters,
/// layouts, masks and initialization: in_proj_weight (3E, E) Glorot-uniform and in_proj_bias zero, or,
/// when the keys or values have other widths (kdim, vdim), q_proj_weight (E, E), k_proj_weight
/// (E, kdim) and v_proj_weight (E, vdim); out_proj a <see cref="Linear"/> (E, E) with a zero bias.
/// Each of the H heads attends over E/H of the projected features
/// (<see cref="Tensor.ScaledDotProductAttention"/>), and out_proj mixes the heads' outputs.
/// Inputs are (L, N, E), or (N, L, E) with batchFirst, or unbatched (L, E). Masks take PyTorch's
/// convention for this module: a bool mask marks what may NOT be attended to (true: masked out);
/// a float mask is added to the scores. A composite of tensor ops, so gradients, second derivatives and
/// every backend come from the ops' own rules.
/// </summary>
public sealed class MultiheadAttention : Module
{
    /// <summary>Width E of the queries and of the output.</summary>
    public int EmbedDim { get; }
    /// <summary>Heads H; each attends over E/H features.</summary>
    public int NumHeads { get; }
    /// <summary>Width of the keys.</summary>
    public int KDim { get; }
    /// <summary>Width of the values.</summary>
    public int VDim { get; }
    /// <summary>Whether inputs and outputs are (N, L, E) rather than (L, N, E).</summary>
    public bool BatchFirst { get; }
    /// <summary>Dropout probability on the attention weights, in training mode.</summary>
    public double Dropout { get; }
    /// <summary>The generator of those dropout masks (null: <see cref="Generator.Default"/>); checkpoints save its state.</summary>
    public Generator? DropoutGenerator { get; }
    /// <summary>The packed query, key and value projection (3E, E), or null when kdim or vdim differs from E.</summary>
    public Tensor? InProjWeight { get; }
    /// <summary>The separate projections (null when packed in <see cref="InProjWeight"/>).</summary>
    public Tensor? QProjWeight { get; }
    /// <inheritdoc cref="QProjWeight"/>
    public Tensor? KProjWeight { get; }
    /// <inheritdoc cref="QProjWeight"/>
    public Tensor? VProjWeight { get; }
    /// <summary>The three projections' biases (3E), or null without bias.</summary>
    public Tensor? InProjBias { get; }
    /// <summary>The output projection.</summary>
    public Linear OutProj { get; }

    /// <summary>Attention of width <paramref name="embedDim"/> split over <paramref name="numHeads"/> heads.</summary>
    public MultiheadAttention(int embedDim, int numHeads, double dropout = 0, bool bias = true, int? kdim = null, int? vdim = null,
        bool batchFirst = false, Generator? generator = null, Generator? dropoutGenerator = null, DType dtype = DType.Float32)
    {
        if (embedDim < 1 || numHeads < 1)
            throw new ArgumentException($"MultiheadAttention: embed_dim {embedDim} and num_heads {numHeads} must be positive");
        if (embedDim % numHeads != 0)
            throw new ArgumentException($"MultiheadAttention: embed_dim {embedDim} must be divisible by num_heads {numHeads}");
        if (kdim < 1 || vdim < 1) throw new ArgumentException($"MultiheadAttention: kdim {kdim} and vdim {vdim} must be positive");
        if (!(dropout >= 0 && dropout <= 1)) throw new ArgumentOutOfRangeException(nameof(dropout), $"MultiheadAttention: dropout must lie in [0, 1], got {dropout}");
        (EmbedDim, NumHeads, KDim, VDim, BatchFirst, Dropout, DropoutGenerator) =
            (embedDim, numHeads, kdim ?? embedDim, vdim ?? embedDim, batchFirst, dropout, dropoutGenerator);
        // Glorot uniform, bound √(6 / (fan_in + fan_out)); the packed weight's fan_out is 3E, as PyTorch computes it.
        Tensor Glorot(int rows, int cols) => Tensor.Rand(new Shape(rows, cols), generator, -Math.Sqrt(6.0 / (rows + cols)), Math.Sqrt(6.0 / (rows + cols)), dtype);
        if (KDim == embedDim && VDim == embedDim)
            InProjWeight = RegisterParameter("in_proj_weight", Glorot(3 * embedDim, embedDim));
        else
        {
            QProjWeight = RegisterParameter("q_proj_weight", Glorot(embedDim, embedDim));
            KProjWeight = RegisterParameter("k_proj_weight", Glorot(embedDim, KDim));
            VProjWeight = RegisterParameter("v_proj_weight", Glorot(embedDim, VDim));
        }
        if (bias) InProjBias = RegisterParameter("in_proj_bias", Tensor.Zeros(new Shape(3 * embedDim), dtype));
        OutProj = RegisterModule("out_proj", new Linear(embedDim, embedDim, bias, generator, dtype));
        if (bias) using (Autograd.NoGrad()) OutProj.Bias!.Fill(0);
        // Formed once: Run names the layer in its messages, and formatting the name on every forward
        // pass allocated a string per call in a training step.
        _name = $"MultiheadAttention({EmbedDim}, {NumHeads}{(KDim != EmbedDim ? $", kdim={KDim}" : "")}{(VDim != EmbedDim ? $", vdim={VDim}" : "")}{(Dropout > 0 ? $", dropout={Dropout}" : "")}{(BatchFirst ? ", batch_first=True" : "")})";
    }

    private readonly string _name;

    /// <inheritdoc/>
    public override string Describe() => _name;

    /// <summary>Self-attention of <paramref name="x"/> with no mask (what a <see cref="Sequential"/> passes on).</summary>
    protected override Tensor ForwardImpl(Tensor x) => Run(x, x, x, needWeights: false).Output;

    /// <summary>
    /// Attention of <paramref name="query"/> (L, N, E) over <paramref name="key"/> (S, N, kdim) and
    /// <paramref name="value"/> (S, N, vdim) (batch first: N leads; unbatched: no N), as PyTorch's
    /// forward. <paramref name="keyPaddingMask"/> (N, S) or (S): keys to ignore (bool true, or added
    /// when float). <paramref name="attnMask"/> (L, S) or (N·H, L, S): bool true where query i may not
    /// attend to key j, or added when float. <paramref name="isCausal"/> masks every key after the
    /// query (give no attnMask with it). Returns the output, shaped as the query but E wide, and, when
    /// <paramref name="needWeights"/>, the attention weights (N, L, S) averaged over the heads, or
    /// (N, H, L, S) per head (in training mode, after dropout, as PyTorch returns them).
    /// </summary>
    public (Tensor Output, Tensor? Weights) Run(Tensor query, Tensor key, Tensor value, Tensor? keyPaddingMask = null, bool needWeights = true,
        Tensor? attnMask = null, bool averageAttnWeights = true, bool isCausal = false)
    {
        ArgumentNullException.ThrowIfNull(query);
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(value);
        string op = _name;
        bool batched = query.Rank == 3;
        if (query.Rank is not (2 or 3) || key.Rank != query.Rank || value.Rank != query.Rank)
            throw new ShapeMismatchException(op, $"{op}: query {query.Shape}, key {key.Shape} and value {value.Shape} must all be 3-D (batched) or all 2-D (unbatched)");
        // Batch first from here on: (N, L, E).
        Tensor BatchFirstView(Tensor t) => !batched ? t.Unsqueeze(0) : BatchFirst ? t : t.Transpose(0, 1);
        var (q, k, v) = (BatchFirstView(query), BatchFirstView(key), BatchFirstView(value));
        int n = q.Size(0), l = q.Size(1), s = k.Size(1), e = EmbedDim, h = NumHeads;
        if (q.Size(2) != e || k.Size(2) != KDim || v.Size(2) != VDim)
            throw new ShapeMismatchException(op, $"{op}: query {query.Shape}, key {key.Shape} and value {value.Shape} must end in {e}, {KDim} and {VDim} features");
        if (k.Size(0) != n || v.Size(0) != n || v.Size(1) != s)
            throw new ShapeMismatchException(op, $"{op}: query {query.Shape}, key {key.Shape} and value {value.Shape} disagree on the batch size or the key and value sequence lengths");
        if (isCausal && attnMask is not null)
            throw new ArgumentException($"{op}: give either attn_mask or is_causal, not both (the causal mask would silently replace {attnMask.Shape})");

        var mask = AdditiveMask(op, query, attnMask, keyPaddingMask, batched, n, l, s, isCausal);

        // The three projections, each a Linear on its third of the packed weight. Self-attention could
        // run them as one GEMM and split its output, but the split's backward then fills three
        // (N, L, 3E) gradients with zeros to copy each slice in: one GEMM made the encoder benchmark's
        // step 3-5% slower (7.95 against 7.6 ms, median of 30 paired rounds, twice). The forward bits
        // are the same either way: each output element is the same chain of FMAs.
        Tensor? Bias(int part) => InProjBias?.Narrow(0, part * e, e);
        Tensor Weight(int part) => InProjWeight is not null ? InProjWeight.Narrow(0, part * e, e) : part == 0 ? QProjWeight! : part == 1 ? KProjWeight! : VProjWeight!;
        // (N, L, E) → (N, H, L, E/H): each head sees its own slice of the features, as a view.
        Tensor Heads(Tensor t, int len) => t.Reshape(n, len, h, e / h).Transpose(1, 2);
        var (qh, kh, vh) = (Heads(Tensor.Linear(q, Weight(0), Bias(0)), l), Heads(Tensor.Linear(k, Weight(1), Bias(1)), s), Heads(Tensor.Linear(v, Weight(2), Bias(2)), s));

        var (attended, weights) = Tensor.Attention(qh, kh, vh, mask, IsTraining ? Dropout : 0, isCausal: false, scale: null, DropoutGenerator, op);
        var output = OutProj.Forward(attended.Transpose(1, 2).Reshape(n, l, e));
        output = !batched ? output.Squeeze(0) : BatchFirst ? output : output.Transpose(0, 1);
        if (!needWeights) return (output, null);
        if (averageAttnWeights) weights = weights.Mean(1);
        return (output, batched ? weights : weights.Squeeze(0));
    }

    // attn_mask and key_padding_mask as one additive float mask that broadcasts to (N, H, L, S), or null.
    private Tensor? AdditiveMask(string op, Tensor query, Tensor? attnMask, Tensor? keyPaddingMask, bool batched, int n, int l, int s, bool isCausal)
    {
        Tensor Additive(Tensor m, string name)
        {
            if (m.DType == DType.Bool)
                return Tensor.Where(m, Tensor.Scalar(double.NegativeInfinity, query.DType, query.Device), Tensor.Scalar(0, query.DType, query.Device));
            if (!m.DType.IsFloating())
                throw new ArgumentException($"{op}: {name} must be bool or floating point, got {m.DType}");
            return m.DType == query.DType ? m : m.To(query.DType);
        }
        Tensor? mask = isCausal ? Tensor.CausalAdditiveMask(l, s, query.DType, query.Device).Reshape(1, 1, l, s) : null;
        if (attnMask is not null)
        {
            if (attnMask.Rank == 2 && attnMask.Size(0) == l && attnMask.Size(1) == s)
                mask = Additive(attnMask, "attn_mask").Reshape(1, 1, l, s);
            else if (attnMask.Rank == 3 && attnMask.Size(0) == n * NumHeads && attnMask.Size(1) == l && attnMask.Size(2) == s)
                mask = Additive(attnMask, "attn_mask").Reshape(n, NumHeads, l, s);
            else
                throw new ShapeMismatchException(op, $"{op}: attn_mask {attnMask.Shape} must be (L, S) = ({l}, {s}) or (N·H, L, S) = ({n * NumHeads}, {l}, {s})");
        }
        if (keyPaddingMask is not null)
        {
            bool fits = batched ? keyPaddingMask.Rank == 2 && keyPaddingMask.Size(0) == n && keyPaddingMask.Size(1) == s
                                : keyPaddingMask.Rank == 1 && keyPaddingMask.Size(0) == s;
            if (!fits)
                throw new ShapeMismatchException(op, $"{op}: key_padding_mask {keyPaddingMask.Shape} must be {(batched ? $"(N, S) = ({n}, {s})" : $"(S) = ({s})")}");
            var padding = Additive(keyPaddingMask, "key_padding_mask").Reshape(n, 1, 1, s);
            mask = mask is null ? padding : mask + padding;
        }
        return mask;
    }
}

/// <summary>
/// One layer of a Transformer encoder, as PyTorch's <c>nn.TransformerEncoderLayer</c> (same parameter
/// names): self-attention, then a feed-forward block linear1 → activation → dropout → linear2, each
/// added back to its input through dropout and a <see cref="LayerNorm"/>. Post-norm (the original
/// Transformer): x = norm1(x + sa(x)), x = norm2(x + ff(x)); with normFirst, pre-norm:
/// x = x + sa(norm1(x)), x = x + ff(norm2(x)), which trains deep stacks without warm-up.
/// </summary>
public sealed class TransformerEncoderLayer : Module
{
    private readonly Dropout _dropout, _dropout1, _dropout2;
    private readonly bool _gelu;
    /// <summary>The self-attention.</summary>
    public MultiheadAttention SelfAttn { get; }
    /// <summary>The feed-forward block's first layer (d_model → dim_feedforward).</summary>
    public Linear Linear1 { get; }
    /// <summary>The feed-forward block's second layer (dim_feedforward → d_model).</summary>
    public Linear Linear2 { get; }
    /// <summary>The normalization around the self-attention.</summary>
    public LayerNorm Norm1 { get; }
    /// <summary>The normalization around the feed-forward block.</summary>
    public LayerNorm Norm2 { get; }
    /// <summary>Pre-norm (true) or post-norm.</summary>
    public bool NormFirst { get; }
    /// <summary>The feed-forward block's activation: "relu" or "gelu".</summary>
    public string Activation => _gelu ? "gelu" : "relu";

    /// <summary>A layer of width <paramref name="dModel"/>; <paramref name="activation"/> is "relu" or "gelu".</summary>
    public TransformerEncoderLayer(int dModel, int nhead, int dimFeedforward = 2048, double dropout = 0.1, string activation = "relu",
        double layerNormEps = 1e-5, bool batchFirst = false, bool normFirst = false, Generator? generator = null, Generator? dropoutGenerator = null)
    {
        _gelu = TransformerBlock.FeedForwardIsGelu(activation, dimFeedforward, "TransformerEncoderLayer");
        NormFirst = normFirst;
        SelfAttn = RegisterModule("self_attn", new MultiheadAttention(dModel, nhead, dropout, batchFirst: batchFirst, generator: generator, dropoutGenerator: dropoutGenerator));
        Linear1 = RegisterModule("linear1", new Linear(dModel, dimFeedforward, generator: generator));
        _dropout = RegisterModule("dropout", new Dropout(dropout, dropoutGenerator));
        Linear2 = RegisterModule("linear2", new Linear(dimFeedforward, dModel, generator: generator));
        Norm1 = RegisterModule("norm1", new LayerNorm(dModel, layerNormEps));
        Norm2 = RegisterModule("norm2", new LayerNorm(dModel, layerNormEps));
        _dropout1 = RegisterModule("dropout1", new Dropout(dropout, dropoutGenerator));
        _dropout2 = RegisterModule("dropout2", new Dropout(dropout, dropoutGenerator));
    }

    /// <inheritdoc/>
    public override string Describe() =>
        $"TransformerEncoderLayer({SelfAttn.EmbedDim}, {SelfAttn.NumHeads}, dim_feedforward={Linear1.OutFeatures}, dropout={_dropout.P}{(_gelu ? ", activation=gelu" : "")}{(SelfAttn.BatchFirst ? ", batch_first=True" : "")}{(NormFirst ? ", norm_first=True" : "")})";

    /// <inheritdoc/>
    protected override Tensor ForwardImpl(Tensor x) => Run(x);

    /// <summary>The layer on <paramref name="src"/> with PyTorch's src_mask (<paramref name="mask"/>) and
    /// src_key_padding_mask, in <see cref="MultiheadAttention.Run"/>'s conventions.</summary>
    public Tensor Run(Tensor src, Tensor? mask = null, Tensor? srcKeyPaddingMask = null, bool isCausal = false)
    {
        ArgumentNullException.ThrowIfNull(src);
        Tensor Sa(Tensor x) => _dropout1.Forward(SelfAttn.Run(x, x, x, srcKeyPaddingMask, needWeights: false, attnMask: mask, isCausal: isCausal).Output);
        Tensor Ff(Tensor x) => TransformerBlock.FeedForward(x, Linear1, _gelu, _dropout, Linear2, _dropout2);
        if (NormFirst)
        {
            var x = src + Sa(Norm1.Forward(src));
            return x + Ff(Norm2.Forward(x));
        }
        var y = Norm1.Forward(src + Sa(src));
        return Norm2.Forward(y + Ff(y));
    }
}

/// <summary>
/// A stack of <see cref="TransformerEncoderLayer"/>s with an optional final <see cref="LayerNorm"/>
/// (PyTorch's <c>nn.TransformerEncoder</c>, names layers.0…, norm). Each layer comes from the
/// constructor's factory with its own initialization; PyTorch deep-copies one layer, so its layers
/// start identical.
/// </summary>
public sealed class TransformerEncoder : Module
{
    /// <summary>The layers, in order.</summary>
    public IReadOnlyList<TransformerEncoderLayer> Layers { get; }
    /// <summary>The final normalization, or null.</summary>
    public LayerNorm? Norm { get; }

    /// <summary><paramref name="numLayers"/> layers from <paramref name="makeLayer"/>, then <paramref name="norm"/> if given
    /// (pre-norm stacks need one: their last layer's output is not normalized).</summary>
    public TransformerEncoder(Func<TransformerEncoderLayer> makeLayer, int numLayers, LayerNorm? norm = null)
    {
        ArgumentNullException.ThrowIfNull(makeLayer);
        if (numLayers < 1) throw new ArgumentException($"TransformerEncoder: num_layers must be positive, got {numLayers}");
        var layers = Enumerable.Range(0, numLayers).Select(_ => makeLayer()).ToArray();
        Layers = layers;
        RegisterModule("layers", new TransformerBlock.LayerList(layers, "TransformerEncoder"));
        if (norm is not null) Norm = RegisterModule("norm", norm);
    }

    /// <inheritdoc/>
    public override string Describe() => $"TransformerEncoder({Layers.Count} × {Layers[0].Describe()}{(Norm is null ? "" : ", norm")})";

    /// <inheritdoc/>
    protected override Tensor ForwardImpl(Tensor x) => Run(x);

    /// <summary>Every layer on <paramref name="src"/> with the same masks, then the final norm.</summary>
    public Tensor Run(Tensor src, Tensor? mask = null, Tensor? srcKeyPaddingMask = null, bool isCausal = false)
    {
        var x = src;
        foreach (var layer in Layers) x = layer.Run(x, mask, srcKeyPaddingMask, isCausal);
        return Norm is null ? x : Norm.Forward(x);
    }
}

/// <summary>
/// One layer of a Transformer decoder, as PyTorch's <c>nn.TransformerDecoderLayer</c> (same parameter
/// names): self-attention over the target, attention from the target to the encoder's output (the
/// memory, multihead_attn), then the feed-forward block, each added back through dropout and a
/// <see cref="LayerNorm"/>, post-norm or (normFirst) pre-norm. It needs the memory, so it runs through
/// <see cref="Run"/>, not <see cref="Module.Forward"/>.
/// </summary>
public sealed class TransformerDecoderLayer : Module
{
    private readonly Dropout _dropout, _dropout1, _dropout2, _dropout3;
    private readonly bool _gelu;
    /// <summary>The self-attention over the target.</summary>
    public MultiheadAttention SelfAttn { get; }
    /// <summary>The attention from the target to the memory.</summary>
    public MultiheadAttention MultiheadAttn { get; }
    /// <summary>The feed-forward block's first layer (d_model → dim_feedforward).</summary>
    public Linear Linear1 { get; }
    /// <summary>The feed-forward block's second layer (dim_feedforward → d_model).</summary>
    public Linear Linear2 { get; }
    /// <summary>The normalizations around the self-attention, the memory attention and the feed-forward block.</summary>
    public LayerNorm Norm1 { get; }
    /// <inheritdoc cref="Norm1"/>
    public LayerNorm Norm2 { get; }
    /// <inheritdoc cref="Norm1"/>
    public LayerNorm Norm3 { get; }
    /// <summary>Pre-norm (true) or post-norm.</summary>
    public bool NormFirst { get; }
    /// <summary>The feed-forward block's activation: "relu" or "gelu".</summary>
    public string Activation => _gelu ? "gelu" : "relu";

    /// <summary>A layer of width <paramref name="dModel"/>; <paramref name="activation"/> is "relu" or "gelu".</summary>
    public TransformerDecoderLayer(int dModel, int nhead, int dimFeedforward = 2048, double dropout = 0.1, string activation = "relu",
        double layerNormEps = 1e-5, bool batchFirst = false, bool normFirst = false, Generator? generator = null, Generator? dropoutGenerator = null)
    {
        _gelu = TransformerBlock.FeedForwardIsGelu(activation, dimFeedforward, "TransformerDecoderLayer");
        NormFirst = normFirst;
        SelfAttn = RegisterModule("self_attn", new MultiheadAttention(dModel, nhead, dropout, batchFirst: batchFirst, generator: generator, dropoutGenerator: dropoutGenerator));
        MultiheadAttn = RegisterModule("multihead_attn", new MultiheadAttention(dModel, nhead, dropout, batchFirst: batchFirst, generator: generator, dropoutGenerator: dropoutGenerator));
        Linear1 = RegisterModule("linear1", new Linear(dModel, dimFeedforward, generator: generator));
        _dropout = RegisterModule("dropout", new Dropout(dropout, dropoutGenerator));
        Linear2 = RegisterModule("linear2", new Linear(dimFeedforward, dModel, generator: generator));
        Norm1 = RegisterModule("norm1", new LayerNorm(dModel, layerNormEps));
        Norm2 = RegisterModule("norm2", new LayerNorm(dModel, layerNormEps));
        Norm3 = RegisterModule("norm3", new LayerNorm(dModel, layerNormEps));
        _dropout1 = RegisterModule("dropout1", new Dropout(dropout, dropoutGenerator));
        _dropout2 = RegisterModule("dropout2", new Dropout(dropout, dropoutGenerator));
        _dropout3 = RegisterModule("dropout3", new Dropout(dropout, dropoutGenerator));
    }

    /// <inheritdoc/>
    public override string Describe() =>
        $"TransformerDecoderLayer({SelfAttn.EmbedDim}, {SelfAttn.NumHeads}, dim_feedforward={Linear1.OutFeatures}, dropout={_dropout.P}{(_gelu ? ", activation=gelu" : "")}{(SelfAttn.BatchFirst ? ", batch_first=True" : "")}{(NormFirst ? ", norm_first=True" : "")})";

    /// <summary>Refused: a decoder layer attends to the encoder's output, which one input cannot carry.</summary>
    protected override Tensor ForwardImpl(Tensor x) =>
        throw new InvalidOperationException($"{Describe()}: a decoder layer needs the encoder's output; call Run(tgt, memory, ...) instead of Forward");

    /// <summary>The layer on <paramref name="tgt"/> attending to <paramref name="memory"/>, with PyTorch's
    /// tgt_mask, memory_mask and key padding masks in <see cref="MultiheadAttention.Run"/>'s conventions;
    /// <paramref name="tgtIsCausal"/> masks every later target position.</summary>
    public Tensor Run(Tensor tgt, Tensor memory, Tensor? tgtMask = null, Tensor? memoryMask = null, Tensor? tgtKeyPaddingMask = null,
        Tensor? memoryKeyPaddingMask = null, bool tgtIsCausal = false)
    {
        ArgumentNullException.ThrowIfNull(tgt);
        ArgumentNullException.ThrowIfNull(memory);
        Tensor Sa(Tensor x) => _dropout1.Forward(SelfAttn.Run(x, x, x, tgtKeyPaddingMask, needWeights: false, attnMask: tgtMask, isCausal: tgtIsCausal).Output);
        Tensor Mha(Tensor x) => _dropout2.Forward(MultiheadAttn.Run(x, memory, memory, memoryKeyPaddingMask, needWeights: false, attnMask: memoryMask).Output);
        Tensor Ff(Tensor x) => TransformerBlock.FeedForward(x, Linear1, _gelu, _dropout, Linear2, _dropout3);
        if (NormFirst)
        {
            var x = tgt + Sa(Norm1.Forward(tgt));
            x = x + Mha(Norm2.Forward(x));
            return x + Ff(Norm3.Forward(x));
        }
        var y = Norm1.Forward(tgt + Sa(tgt));
        y = Norm2.Forward(y + Mha(y));
        return Norm3.Forward(y + Ff(y));
    }
}

/// <summary>
/// A stack of <see cref="TransformerDecoderLayer"/>s with an optional final <see cref="LayerNorm"/>
/// (PyTorch's <c>nn.TransformerDecoder</c>, names layers.0…, norm); every layer attends to the same
/// memory. Each layer comes from the constructor's factory with its own initialization.
/// </summary>
public sealed class TransformerDecoder : Module
{
    /// <summary>The layers, in order.</summary>
    public IReadOnlyList<TransformerDecoderLayer> Layers { get; }
    /// <summary>The final normalization, or null.</summary>
    public LayerNorm? Norm { get; }

    /// <summary><paramref name="numLayers"/> layers from <paramref name="makeLayer"/>, then <paramref name="norm"/> if given.</summary>
    public TransformerDecoder(Func<TransformerDecoderLayer> makeLayer, int numLayers, LayerNorm? norm = null)
    {
        ArgumentNullException.ThrowIfNull(makeLayer);
        if (numLayers < 1) throw new ArgumentException($"TransformerDecoder: num_layers must be positive, got {numLayers}");
        var layers = Enumerable.Range(0, numLayers).Select(_ => makeLayer()).ToArray();
        Layers = layers;
        RegisterModule("layers", new TransformerBlock.LayerList(layers, "TransformerDecoder"));
        if (norm is not null) Norm = RegisterModule("norm", norm);
    }

    /// <inheritdoc/>
    public override string Describe() => $"TransformerDecoder({Layers.Count} × {Layers[0].Describe()}{(Norm is null ? "" : ", norm")})";

    /// <summary>Refused, as for its layers: call <see cref="Run"/> with the memory.</summary>
    protected override Tensor ForwardImpl(Tensor x) =>
        throw new InvalidOperationException($"{Describe()}: a decoder needs the encoder's output; call Run(tgt, memory, ...) instead of Forward");

    /// <summary>Every layer on <paramref name="tgt"/> with the same memory and masks, then the final norm.</summary>
    public Tensor Run(Tensor tgt, Tensor memory, Tensor? tgtMask = null, Tensor? memoryMask = null, Tensor? tgtKeyPaddingMask = null,
        Tensor? memoryKeyPaddingMask = null, bool tgtIsCausal = false)
    {
        var x = tgt;
        foreach (var layer in Layers) x = layer.Run(x, memory, tgtMask, memoryMask, tgtKeyPaddingMask, memoryKeyPaddingMask, tgtIsCausal);
        return Norm is null ? x : Norm.Forward(x);
    }
}

/// <summary>
/// The encoder-decoder Transformer (Vaswani et al. 2017), as PyTorch's <c>nn.Transformer</c> (same
/// names: encoder.layers.0…, encoder.norm, decoder.layers.0…, decoder.norm): an encoder of
/// numEncoderLayers layers and a decoder of numDecoderLayers, each followed by a LayerNorm. Embeddings,
/// positions and the output head are the caller's, as in PyTorch.
/// </summary>
public sealed class Transformer : Module
{
    /// <summary>The encoder.</summary>
    public TransformerEncoder Encoder { get; }
    /// <summary>The decoder.</summary>
    public TransformerDecoder Decoder { get; }
    /// <summary>Whether inputs and outputs are (N, T, E) rather than (T, N, E).</summary>
    public bool BatchFirst { get; }

    /// <summary>PyTorch's defaults: d_model 512, 8 heads, 6 + 6 layers, dim_feedforward 2048, dropout 0.1.</summary>
    public Transformer(int dModel = 512, int nhead = 8, int numEncoderLayers = 6, int numDecoderLayers = 6, int dimFeedforward = 2048,
        double dropout = 0.1, string activation = "relu", double layerNormEps = 1e-5, bool batchFirst = false, bool normFirst = false,
        Generator? generator = null, Generator? dropoutGenerator = null)
    {
        BatchFirst = batchFirst;
        Encoder = RegisterModule("encoder", new TransformerEncoder(
            () => new TransformerEncoderLayer(dModel, nhead, dimFeedforward, dropout, activation, layerNormEps, batchFirst, normFirst, generator, dropoutGenerator),
            numEncoderLayers, new LayerNorm(dModel, layerNormEps)));
        Decoder = RegisterModule("decoder", new TransformerDecoder(
            () => new TransformerDecoderLayer(dModel, nhead, dimFeedforward, dropout, activation, layerNormEps, batchFirst, normFirst, generator, dropoutGenerator),
            numDecoderLayers, new LayerNorm(dModel, layerNormEps)));
    }

    /// <inheritdoc/>
    public override string Describe() => $"Transformer({Encoder.Layers.Count} encoder and {Decoder.Layers.Count} decoder layers of {Encoder.Layers[0].SelfAttn.EmbedDim})";

    /// <summary>Refused: the Transformer maps a source and a target; call <see cref="Run"/>.</summary>
    protected override Tensor ForwardImpl(Tensor x) =>
        throw new InvalidOperationException($"{Describe()}: a Transformer needs a source and a target; call Run(src, tgt, ...) instead of Forward");

    /// <summary>Encodes <paramref name="src"/> and decodes <paramref name="tgt"/> against it, with PyTorch's
    /// masks (<see cref="MultiheadAttention.Run"/>'s conventions); <paramref name="tgtIsCausal"/> masks every
    /// later target position, as <see cref="GenerateSquareSubsequentMask"/> does.</summary>
    public Tensor Run(Tensor src, Tensor tgt, Tensor? srcMask = null, Tensor? tgtMask = null, Tensor? memoryMask = null,
        Tensor? srcKeyPaddingMask = null, Tensor? tgtKeyPaddingMask = null, Tensor? memoryKeyPaddingMask = null, bool tgtIsCausal = false)
    {
        var memory = Encoder.Run(src, srcMask, srcKeyPaddingMask);
        return Decoder.Run(tgt, memory, tgtMask, memoryMask, tgtKeyPaddingMask, memoryKeyPaddingMask, tgtIsCausal);
    }

    /// <summary>PyTorch's generate_square_subsequent_mask: an n × n float mask, 0 on and below the
    /// diagonal and −∞ above it (position i attends to 0…i).</summary>
    public static Tensor GenerateSquareSubsequentMask(int n, Device? device = null)
    {
        if (n < 1) throw new ArgumentOutOfRangeException(nameof(n), $"GenerateSquareSubsequentMask: n must be positive, got {n}");
        return Tensor.CausalAdditiveMask(n, n, DType.Float32, device ?? Device.Cpu);
    }
}

// What the encoder and decoder layers share.
internal static class TransformerBlock
{
    // Checks the feed-forward block's arguments; true for GELU, false for ReLU, anything else refused.
    public static bool FeedForwardIsGelu(string activation, int dimFeedforward, string layer)
    {
        if (dimFeedforward < 1) throw new ArgumentException($"{layer}: dim_feedforward must be positive, got {dimFeedforward}");
        return activation switch
        {
            "relu" => false,
            "gelu" => true,
            _ => throw new ArgumentException($"{layer}: activation must be \"relu\" or \"gelu\", got \"{activation}\""),
        };
    }

    // The stacks' layers, named 0, 1, … as in PyTorch's ModuleList. The stack runs them itself, with
    // its masks (and, for a decoder, the memory), so the list does not run on its own.
    public sealed class LayerList : Module
    {
        private readonly string _owner;
        public LayerList(Module[] layers, string owner)
        {
            _owner = owner;
            for (int i = 0; i < layers.Length; i++) RegisterModule(i.ToString(System.Globalization.CultureInfo.InvariantCulture), layers[i]);
        }
        protected override Tensor ForwardImpl(Tensor x) =>
            throw new InvalidOperationException($"{_owner}.layers only holds the layers; run the {_owner}, which passes them its masks");
    }

    // linear1 → activation → dropout → linear2 → the residual branch's dropout. The ReLU is fused into
    // linear1's GEMM (the same bits) unless a hook must see linear1's own output.
    public static Tensor FeedForward(Tensor x, Linear linear1, bool gelu, Dropout dropout, Linear linear2, Dropout branchDropout)
    {
        var hidden = gelu || linear1.HasForwardHooks ? linear1.Forward(x) : Tensor.LinearRelu(x, linear1.Weight, linear1.Bias);
        hidden = gelu ? hidden.Gelu() : linear1.HasForwardHooks ? hidden.Relu() : hidden;
        return branchDropout.Forward(linear2.Forward(dropout.Forward(hidden)));
    }
}
