using System.Globalization;
using AssemblyInformationalVersionAttribute = System.Reflection.AssemblyInformationalVersionAttribute;
using static System.Reflection.CustomAttributeExtensions;
using MiniDeep.Nn;

namespace MiniDeep.IO;

/// <summary>A model that cannot be written as ONNX: the message names the module (by its path in
/// the model), its type, and what would be needed.</summary>
public sealed class OnnxExportException(string message) : Exception(message);

/// <summary>Choices for <see cref="Onnx.Export"/>.</summary>
public sealed record OnnxExportOptions
{
    /// <summary>The graph input's name.</summary>
    public string InputName { get; init; } = "input";
    /// <summary>The graph output's name.</summary>
    public string OutputName { get; init; } = "output";
    /// <summary>Leave the batch axis (and every output axis that follows it) symbolic, so the exported
    /// model takes any batch size; false fixes every axis to the example shape.</summary>
    public bool DynamicBatch { get; init; } = true;
    /// <summary>The graph's name.</summary>
    public string GraphName { get; init; } = "minideep";
}

/// <summary>
/// Export to ONNX (opset 17, IR version 8): the model's inference graph, as it computes in evaluation
/// mode (dropout off, batch norm on its running statistics), with its parameters as initializers named
/// by their state-dict keys. Supported: <see cref="Sequential"/>, <see cref="Linear"/>,
/// <see cref="Conv1d"/>, <see cref="Conv2d"/>, <see cref="ConvTranspose1d"/>, <see cref="ConvTranspose2d"/>, <see cref="MaxPool1d"/>, <see cref="AvgPool1d"/>, <see cref="MaxPool2d"/>, <see cref="AvgPool2d"/>, <see cref="AdaptiveAvgPool2d"/> (global, or dividing its input evenly), <see cref="Upsample"/>, <see cref="Flatten"/>,
/// <see cref="Dropout"/>, <see cref="BatchNorm1d"/>, <see cref="BatchNorm2d"/>, <see cref="LayerNorm"/>, <see cref="GroupNorm"/>, <see cref="Lstm"/>, <see cref="Gru"/>,
/// <see cref="Standardize"/>, <see cref="Residual"/>, <see cref="Ensemble"/> and the built-in
/// <see cref="Activations"/> (Softmax included). Anything else is refused with
/// <see cref="OnnxExportException"/> naming the module.
/// </summary>
/// <remarks>
/// The exporter traces: it runs each module on an example input of the given shape and writes the
/// ONNX nodes that compute the same thing, so every node's input rank and shape are known (a Linear on
/// a matrix is a Gemm; on a higher-rank tensor, a MatMul and an Add). The protobuf is written by
/// <see cref="ProtoWriter"/> from the field numbers of onnx.proto; no generated code and no package.
/// </remarks>
public static class Onnx
{
    /// <summary>The operator set the exported graphs use.</summary>
    public const int Opset = 17;
    /// <summary>The IR version that goes with <see cref="Opset"/>.</summary>
    public const int IrVersion = 8;

    /// <summary>Writes <paramref name="model"/> for inputs of <paramref name="inputShape"/> (batch axis
    /// first) to <paramref name="path"/>, atomically.</summary>
    public static void Export(Module model, Shape inputShape, string path, OnnxExportOptions? options = null) =>
        AtomicFile.WriteAllBytes(path, ExportBytes(model, inputShape, options));

    /// <summary>The ONNX ModelProto bytes of <paramref name="model"/> for inputs of <paramref name="inputShape"/>.
    /// The model is traced in evaluation mode and put back in the modes it had.</summary>
    public static byte[] ExportBytes(Module model, Shape inputShape, OnnxExportOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        options ??= new OnnxExportOptions();
        if (inputShape.Rank == 0 || inputShape.ToArray().Any(d => d <= 0))
            throw new ArgumentException($"Onnx.Export: the example input shape must have a batch axis and positive sizes, got {inputShape}");
        var first = model.NamedParameters().Concat(model.NamedBuffers()).Select(p => p.Tensor)
            .FirstOrDefault(t => t.DType is DType.Float32 or DType.Float64);
        var dtype = first?.DType ?? DType.Float32;
        var device = first?.Device;

        var modes = model.NamedModules().Select(m => (m.Module, m.Module.IsTraining)).ToList();
        model.Eval();
        try
        {
            using var _ = Autograd.NoGrad();
            var graph = new GraphBuilder(model, dtype, options);
            var sample = Tensor.Zeros(inputShape, dtype, device);
            var (output, result) = graph.Emit(model, "", options.InputName, sample);
            graph.NameOutput(output, options.OutputName);

            // Which output axes follow the batch: trace the whole model at a second batch size.
            var inDims = inputShape.ToArray();
            var outDims = result.Shape.ToArray();
            var symbolic = new bool[outDims.Length];
            if (options.DynamicBatch)
            {
                var other = (int[])inDims.Clone();
                other[0] += 1;
                var moved = model.Forward(Tensor.Zeros(other, dtype, device)).Shape.ToArray();
                for (int i = 0; i < outDims.Length; i++) symbolic[i] = i >= moved.Length || moved[i] != outDims[i];
            }
            var inSymbolic = new bool[inDims.Length];
            inSymbolic[0] = options.DynamicBatch;
            return graph.Model(options, ValueInfo(options.InputName, dtype, inDims, inSymbolic),
                ValueInfo(options.OutputName, result.DType, outDims, symbolic), model.ToString());
        }
        finally
        {
            // Parents first, so a child set apart from its parent gets its own mode back last.
            foreach (var (m, training) in modes) m.Train(training);
        }
    }

    // ValueInfoProto { name = 1; type = 2 } → TypeProto { tensor_type = 1 } → Tensor { elem_type = 1; shape = 2 }
    // → TensorShapeProto { dim = 1 } → Dimension { dim_value = 1 | dim_param = 2 }.
    private static ProtoWriter ValueInfo(string name, DType dtype, int[] dims, bool[] symbolic)
    {
        var shape = new ProtoWriter();
        for (int i = 0; i < dims.Length; i++)
            shape.Message(1, symbolic[i]
                ? new ProtoWriter().String(2, i == 0 ? "batch" : $"{name}_dim{i}")
                : new ProtoWriter().Int(1, dims[i]));
        var tensorType = new ProtoWriter().Int(1, ElementType(dtype)).Message(2, shape);
        return new ProtoWriter().String(1, name).Message(2, new ProtoWriter().Message(1, tensorType));
    }

    // TensorProto.DataType.
    private static int ElementType(DType dtype) => dtype switch
    {
        DType.Float32 => 1,
        DType.Int32 => 6,
        DType.Bool => 9,
        DType.Float64 => 11,
        _ => throw new OnnxExportException($"Onnx.Export: no ONNX element type for {dtype}"),
    };
    private const int Int64Type = 7;

    /// <summary>Nodes and initializers in the order they are made; names unique in the graph.</summary>
    private sealed class GraphBuilder
    {
        private sealed record Node(string Op, string Name, string[] Inputs, string[] Outputs, ProtoWriter[] Attributes);

        private readonly DType _dtype;
        private readonly List<Node> _nodes = [];
        private readonly List<ProtoWriter> _initializers = [];
        private readonly HashSet<string> _names = [];
        private readonly Dictionary<Tensor, string> _stateNames = new(ReferenceEqualityComparer.Instance);
        private readonly Dictionary<Tensor, string> _written = new(ReferenceEqualityComparer.Instance);

        public GraphBuilder(Module model, DType dtype, OnnxExportOptions options)
        {
            _dtype = dtype;
            if (options.InputName == options.OutputName || options.InputName.Length == 0 || options.OutputName.Length == 0)
                throw new ArgumentException($"Onnx.Export: input and output names must be distinct and non-empty, got '{options.InputName}' and '{options.OutputName}'");
            _names.Add(options.InputName);
            _names.Add(options.OutputName);   // reserved: the result is renamed to it at the end
            foreach (var (name, t) in model.NamedParameters().Concat(model.NamedBuffers())) _stateNames.TryAdd(t, name);
        }

        /// <summary>The nodes of <paramref name="m"/> (at <paramref name="path"/>) applied to the value
        /// <paramref name="x"/>, whose example is <paramref name="sample"/>: the output value's name and example.</summary>
        public (string Name, Tensor Sample) Emit(Module m, string path, string x, Tensor sample)
        {
            switch (m)
            {
                case Sequential seq:
                    foreach (var (name, child) in seq.NamedChildren())
                        (x, sample) = Emit(child, Join(path, name), x, sample);
                    return (x, sample);

                case Residual res:
                {
                    var (body, bodySample) = Emit(res.Body, Join(path, "body"), x, sample);
                    var (skip, skipSample) = res.Shortcut is null ? (x, sample) : Emit(res.Shortcut, Join(path, "shortcut"), x, sample);
                    if (bodySample.Shape != skipSample.Shape)
                        throw new OnnxExportException($"Onnx.Export: {Where(path, m)}: body output {bodySample.Shape} and shortcut {skipSample.Shape} differ");
                    return (Op("Add", path, [body, skip]), bodySample + skipSample);
                }

                case Ensemble ens:
                {
                    string? sum = null;
                    Tensor? total = null;
                    for (int i = 0; i < ens.Members.Count; i++)
                    {
                        var (y, ySample) = Emit(ens.Members[i], Join(path, $"member{i}"), x, sample);
                        if (total is not null && ySample.Shape != total.Shape)
                            throw new OnnxExportException($"Onnx.Export: {Where(path, m)}: member {i} outputs {ySample.Shape}, member 0 {total.Shape}");
                        sum = sum is null ? y : Op("Add", path, [sum, y]);
                        total = total is null ? ySample : total + ySample;
                    }
                    return (Op("Div", path, [sum!, Scalar(path + ".count", ens.Members.Count)]), total! / ens.Members.Count);
                }
            }

            var leaf = Leaf(m, path, x, sample);   // first, so that a module without a mapping is refused before it runs
            return (leaf, m.Forward(sample));
        }

        private string Leaf(Module m, string path, string x, Tensor sample)
        {
            switch (m)
            {
                case Linear lin:
                    // Gemm computes A·Bᵀ + C with transB; on more than two axes, MatMul broadcasts over the
                    // leading ones but has no transpose, so it gets Wᵀ stored.
                    if (sample.Rank == 2)
                        return Op("Gemm", path, lin.Bias is null ? [x, State(lin.Weight)] : [x, State(lin.Weight), State(lin.Bias)], AttrInt("transB", 1));
                    var product = Op("MatMul", path, [x, Initializer(Join(path, "weight_t"), lin.Weight.T.Contiguous())]);
                    return lin.Bias is null ? product : Op("Add", path, [product, State(lin.Bias)]);

                case Conv2d conv:
                    return Op("Conv", path, conv.Bias is null ? [x, State(conv.Weight)] : [x, State(conv.Weight), State(conv.Bias)],
                        ConvAttributes([conv.KernelSize.H, conv.KernelSize.W], [conv.Stride.H, conv.Stride.W], [conv.Padding.H, conv.Padding.W],
                            [conv.Dilation.H, conv.Dilation.W], conv.Groups));

                case Conv1d conv:
                    return Op("Conv", path, conv.Bias is null ? [x, State(conv.Weight)] : [x, State(conv.Weight), State(conv.Bias)],
                        ConvAttributes([conv.KernelSize], [conv.Stride], [conv.Padding], [conv.Dilation], conv.Groups));

                case ConvTranspose2d deconv:
                    return Op("ConvTranspose", path, deconv.Bias is null ? [x, State(deconv.Weight)] : [x, State(deconv.Weight), State(deconv.Bias)],
                        [.. ConvAttributes([deconv.KernelSize.H, deconv.KernelSize.W], [deconv.Stride.H, deconv.Stride.W], [deconv.Padding.H, deconv.Padding.W],
                            [deconv.Dilation.H, deconv.Dilation.W], deconv.Groups),
                         AttrInts("output_padding", deconv.OutputPadding.H, deconv.OutputPadding.W)]);

                case ConvTranspose1d deconv:
                    return Op("ConvTranspose", path, deconv.Bias is null ? [x, State(deconv.Weight)] : [x, State(deconv.Weight), State(deconv.Bias)],
                        [.. ConvAttributes([deconv.KernelSize], [deconv.Stride], [deconv.Padding], [deconv.Dilation], deconv.Groups),
                         AttrInts("output_padding", deconv.OutputPadding)]);

                case MaxPool1d pool:
                    return Op("MaxPool", path, [x], AttrInts("kernel_shape", pool.Kernel), AttrInts("strides", pool.Stride), AttrInts("pads", pool.Padding, pool.Padding));

                case AvgPool1d pool:
                    return Op("AveragePool", path, [x], AttrInts("kernel_shape", pool.Kernel), AttrInts("strides", pool.Stride),
                        AttrInts("pads", pool.Padding, pool.Padding), AttrInt("count_include_pad", 1));

                case MaxPool2d pool:
                    return Op("MaxPool", path, [x],
                        AttrInts("kernel_shape", pool.Kernel.H, pool.Kernel.W),
                        AttrInts("strides", pool.Stride.H, pool.Stride.W),
                        AttrInts("pads", pool.Padding.H, pool.Padding.W, pool.Padding.H, pool.Padding.W));

                case AvgPool2d pool:
                    // MiniDeep counts the zero padding in the average (PyTorch's default); ONNX does not unless told.
                    return Op("AveragePool", path, [x],
                        AttrInts("kernel_shape", pool.Kernel.H, pool.Kernel.W),
                        AttrInts("strides", pool.Stride.H, pool.Stride.W),
                        AttrInts("pads", pool.Padding.H, pool.Padding.W, pool.Padding.H, pool.Padding.W),
                        AttrInt("count_include_pad", 1));

                case AdaptiveAvgPool2d adaptive:
                {
                    // ONNX has no adaptive pooling: global pooling is its own op, and an output that divides
                    // the input evenly is a plain average pool whose windows neither overlap nor differ.
                    if (adaptive.Output == (1, 1)) return Op("GlobalAveragePool", path, [x]);
                    int h = sample.Size(2), w = sample.Size(3);
                    var (oh, ow) = adaptive.Output;
                    if (h % oh != 0 || w % ow != 0)
                        throw new OnnxExportException($"Onnx.Export: {Where(path, m)}: an input of {h}×{w} pooled to {oh}×{ow} has windows of unequal size, which no ONNX operator computes; "
                            + "choose an output that divides the input, or (1, 1)");
                    return Op("AveragePool", path, [x], AttrInts("kernel_shape", h / oh, w / ow), AttrInts("strides", h / oh, w / ow));
                }

                case Upsample up:
                {
                    // Resize with sizes, not scales: from a scale ONNX computes ⌊H·scale⌋, which a float ratio
                    // can put one row short. The sizes keep the batch and channels of the input as it comes
                    // (Shape, sliced), so a dynamic batch stays dynamic. The coordinate modes are PyTorch's:
                    // nearest is ⌊i·H/h⌋ (asymmetric, floor); bilinear without aligned corners is (i + ½)·H/h − ½
                    // clamped at 0 (pytorch_half_pixel), except that ONNX samples a one-pixel output at 0 where
                    // PyTorch and MiniDeep sample the input's centre, and aligned corners divide by h − 1 = 0.
                    int h = sample.Size(2), w = sample.Size(3);
                    var (oh, ow) = up.OutputSize(h, w);
                    if (up.Mode == UpsampleMode.Bilinear && ((oh == 1 && h > 1) || (ow == 1 && w > 1)))
                        throw new OnnxExportException($"Onnx.Export: {Where(path, m)}: a bilinear resize of {h}×{w} to {oh}×{ow} has a one-pixel side, "
                            + "which ONNX's Resize samples at the first pixel and MiniDeep (as PyTorch) at the centre; resize to at least 2 pixels per side");
                    var batchAndChannels = Op("Slice", path, [Op("Shape", path, [x]), Int64s(Join(path, "starts"), [0]), Int64s(Join(path, "ends"), [2])]);
                    var sizes = Op("Concat", path, [batchAndChannels, Int64s(Join(path, "size"), [oh, ow])], AttrInt("axis", 0));
                    return up.Mode == UpsampleMode.Nearest
                        ? Op("Resize", path, [x, "", "", sizes], AttrString("mode", "nearest"),
                            AttrString("coordinate_transformation_mode", "asymmetric"), AttrString("nearest_mode", "floor"))
                        : Op("Resize", path, [x, "", "", sizes], AttrString("mode", "linear"),
                            AttrString("coordinate_transformation_mode", up.AlignCorners ? "align_corners" : "pytorch_half_pixel"));
                }

                case Flatten flat:
                {
                    int rank = sample.Rank;
                    int start = Shapes.NormalizeAxis(flat.StartAxis, Math.Max(rank, 1), "Flatten");
                    int end = Shapes.NormalizeAxis(flat.EndAxis, Math.Max(rank, 1), "Flatten");
                    // ONNX Flatten always makes a matrix, which is ours only for start = 1 up to the last
                    // axis; otherwise a Reshape: 0 copies an axis before the merge (the batch among them),
                    // -1 is the merged one, the axes after it keep their sizes.
                    if (start == 1 && end == rank - 1) return Op("Flatten", path, [x], AttrInt("axis", 1));
                    var target = new List<long>();
                    for (int i = 0; i < start; i++) target.Add(0);
                    target.Add(-1);
                    for (int i = end + 1; i < rank; i++) target.Add(sample.Size(i));
                    return Op("Reshape", path, [x, Int64s(Join(path, "shape"), [.. target])]);
                }

                case Standardize std:
                    return Op("Div", path, [Op("Sub", path, [x, StateAs(std.Mean)]), StateAs(std.Std)]);

                case Dropout:
                    return x;   // the identity in evaluation mode

                case BatchNorm bn when bn is BatchNorm1d or BatchNorm2d:
                    return Op("BatchNormalization", path,
                        [x, State(bn.Weight), State(bn.Bias), State(bn.RunningMean), State(bn.RunningVar)],
                        AttrFloat("epsilon", bn.Eps));

                case GroupNorm gn:
                {
                    // ONNX has GroupNormalization only from opset 18. As (N, G, C/G·H·W), each group is one
                    // channel of an InstanceNormalization (scale 1, shift 0); then back to x's shape, and
                    // the per-channel γ and β, unsqueezed to (C, 1, ..., 1) to broadcast against (N, C, ...).
                    var grouped = Op("Reshape", path, [x, Int64s(Join(path, "group_shape"), [0, gn.Groups, -1])]);
                    var normalized = Op("InstanceNormalization", path,
                        [grouped, Initializer(Join(path, "group_scale"), Tensor.Ones(gn.Groups).To(_dtype)), Initializer(Join(path, "group_shift"), Tensor.Zeros(gn.Groups).To(_dtype))],
                        AttrFloat("epsilon", gn.Eps));
                    var y = Op("Reshape", path, [normalized, Op("Shape", path, [x])]);
                    if (gn.Weight is null) return y;
                    long[] trailing = [.. Enumerable.Range(1, sample.Rank - 2).Select(a => (long)a)];
                    string PerChannel(Tensor t) => trailing.Length == 0 ? State(t) : Op("Unsqueeze", path, [State(t), Int64s(Join(path, "axes"), trailing)]);
                    return Op("Add", path, [Op("Mul", path, [y, PerChannel(gn.Weight)]), PerChannel(gn.Bias!)]);
                }

                case Recurrent rnn:
                {
                    // ONNX's LSTM and GRU run one layer, both directions at once, sequence first, with the gates
                    // in another order: LSTM i, o, f, c for PyTorch's i, f, g, o; GRU z, r, h for r, z, n, with
                    // linear_before_reset = 1 for the reset gate inside W_hn h + b_hn. Each layer's weights are
                    // reordered and stacked over the directions (initializers <path>.W_l0 and so on), and a
                    // batch-first or unbatched input is made sequence-first and back.
                    bool lstm = rnn is Lstm;
                    int[] order = lstm ? [0, 3, 1, 2] : [1, 0, 2];
                    int hidden = rnn.HiddenSize, directions = rnn.Bidirectional ? 2 : 1;
                    Tensor Reordered(Tensor w) => Tensor.Concat([.. order.Select(k => w.Narrow(0, k * hidden, hidden))]);
                    string seq = sample.Rank == 2 ? Op("Unsqueeze", path, [x, Int64s(Join(path, "batch_axis"), [1])])
                        : rnn.BatchFirst ? Op("Transpose", path, [x], AttrInts("perm", 1, 0, 2)) : x;
                    for (int layer = 0; layer < rnn.NumLayers; layer++)
                    {
                        Tensor Stacked(int which) => Tensor.Stack([.. Enumerable.Range(0, directions).Select(d => Reordered(rnn.Weights(layer, d)[which]))]).To(_dtype);
                        var inputs = new List<string> { seq, Initializer(Join(path, $"W_l{layer}"), Stacked(0)), Initializer(Join(path, $"R_l{layer}"), Stacked(1)) };
                        if (rnn.HasBias) inputs.Add(Initializer(Join(path, $"B_l{layer}"), Tensor.Concat([Stacked(2), Stacked(3)], 1)));
                        ProtoWriter[] attributes = lstm
                            ? [AttrInt("hidden_size", hidden), AttrString("direction", directions == 2 ? "bidirectional" : "forward")]
                            : [AttrInt("hidden_size", hidden), AttrString("direction", directions == 2 ? "bidirectional" : "forward"), AttrInt("linear_before_reset", 1)];
                        var y = Op(lstm ? "LSTM" : "GRU", path, [.. inputs], attributes);                       // (T, D, N, H)
                        seq = Op("Reshape", path, [Op("Transpose", path, [y], AttrInts("perm", 0, 2, 1, 3)), Int64s(Join(path, "merge"), [0, 0, -1])]);
                    }
                    return sample.Rank == 2 ? Op("Squeeze", path, [seq, Int64s(Join(path, "batch_axis"), [1])])
                        : rnn.BatchFirst ? Op("Transpose", path, [seq], AttrInts("perm", 1, 0, 2)) : seq;
                }

                case LayerNorm ln:
                    return Op("LayerNormalization", path, [x, State(ln.Weight), State(ln.Bias)],
                        AttrInt("axis", -ln.NormalizedShape.Count), AttrFloat("epsilon", ln.Eps));

                case Activation act:
                    return act.Kind switch
                    {
                        ActivationKind.ReLU => Op("Relu", path, [x]),
                        ActivationKind.LeakyReLU => Op("LeakyRelu", path, [x], AttrFloat("alpha", act.Argument)),
                        ActivationKind.Sigmoid => Op("Sigmoid", path, [x]),
                        ActivationKind.Tanh => Op("Tanh", path, [x]),
                        ActivationKind.Softplus => Op("Softplus", path, [x]),
                        ActivationKind.Identity => x,
                        ActivationKind.Softmax => Op("Softmax", path, [x], AttrInt("axis", (long)act.Argument)),
                        ActivationKind.GELU => Gelu(path, x),
                        _ => throw new OnnxExportException(
                            $"Onnx.Export: {Where(path, m)} is an activation given as a delegate; ONNX cannot know what it computes. " +
                            "Use one of Activations' built-ins, or export the model without it"),
                    };

                case MultiheadAttention mha:
                    return SelfAttention(mha, path, x, sample.Rank);

                case TransformerEncoderLayer layer:
                    return EncoderLayer(layer, path, x, sample);

                case TransformerEncoder encoder:
                {
                    var y = x;
                    for (int i = 0; i < encoder.Layers.Count; i++) y = EncoderLayer(encoder.Layers[i], Join(path, $"layers.{i}"), y, sample);
                    return encoder.Norm is null ? y : Leaf(encoder.Norm, Join(path, "norm"), y, sample);
                }

                default:
                    throw new OnnxExportException(
                        $"Onnx.Export: {Where(path, m)} has no ONNX mapping. Supported: Sequential, Residual, Ensemble, Linear, Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d, " +
                        "MaxPool1d, AvgPool1d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, Upsample, Flatten, Dropout, BatchNorm1d, BatchNorm2d, LayerNorm, GroupNorm, Lstm, Gru, " +
                        "MultiheadAttention (self-attention, as its Forward), TransformerEncoderLayer, TransformerEncoder, Standardize and the built-in Activations");
            }
        }

        // ONNX has Gelu only from opset 20: x · ½(1 + erf(x/√2)), which is x Φ(x).
        private string Gelu(string path, string x) =>
            Op("Mul", path, [x, Op("Mul", path, [Scalar(Join(path, "half"), 0.5),
                Op("Add", path, [Scalar(Join(path, "one"), 1), Op("Erf", path, [Op("Div", path, [x, Scalar(Join(path, "sqrt2"), Math.Sqrt(2))])])])])]);

        // Self-attention with no mask, what the module's Forward computes. ONNX has no attention operator
        // before opset 23, so the heads are written out: one MatMul for the packed projection (the
        // weight stored transposed), three Slices of its output, each reshaped to (N, L, H, E/H) and
        // transposed to (N, H, L, E/H) (keys to (N, H, E/H, L)), the scaled scores, Softmax, MatMul with
        // the values, the heads merged back to (N, L, E), and out_proj. The input is made batch first
        // (Reshape's 0 copies a dimension, so the batch and the sequence stay dynamic), and the output
        // is put back in its layout.
        private string SelfAttention(MultiheadAttention a, string path, string x, int rank)
        {
            if (a.InProjWeight is null)
                throw new OnnxExportException($"Onnx.Export: {Where(path, a)}: self-attention needs keys and values of the queries' width; this layer has kdim {a.KDim} and vdim {a.VDim}");
            int e = a.EmbedDim, h = a.NumHeads, d = e / h;
            string batchFirst = rank == 2 ? Op("Unsqueeze", path, [x, Int64s(Join(path, "batch_axis"), [0])])
                : a.BatchFirst ? x : Op("Transpose", path, [x], AttrInts("perm", 1, 0, 2));
            string Project(string input, Tensor weight, Tensor? bias, string name)
            {
                var product = Op("MatMul", path, [input, Initializer(Join(path, name), weight.T.Contiguous())]);
                return bias is null ? product : Op("Add", path, [product, State(bias)]);
            }
            var qkv = Project(batchFirst, a.InProjWeight, a.InProjBias, "in_proj_weight_t");
            var headsShape = Int64s(Join(path, "heads_shape"), [0, 0, h, d]);
            var axis = Int64s(Join(path, "feature_axis"), [2]);
            string Heads(int part, params long[] perm) => Op("Transpose", path,
                [Op("Reshape", path, [Op("Slice", path, [qkv, Int64s(Join(path, "start"), [part * e]), Int64s(Join(path, "end"), [(part + 1) * e]), axis]), headsShape])],
                AttrInts("perm", perm));
            var scores = Op("Mul", path, [Op("MatMul", path, [Heads(0, 0, 2, 1, 3), Heads(1, 0, 2, 3, 1)]), Scalar(Join(path, "scale"), 1 / Math.Sqrt(d))]);
            var attended = Op("MatMul", path, [Op("Softmax", path, [scores], AttrInt("axis", -1)), Heads(2, 0, 2, 1, 3)]);
            var merged = Op("Reshape", path, [Op("Transpose", path, [attended], AttrInts("perm", 0, 2, 1, 3)), Int64s(Join(path, "merged_shape"), [0, 0, e])]);
            var y = Project(merged, a.OutProj.Weight, a.OutProj.Bias, "out_proj.weight_t");
            return rank == 2 ? Op("Squeeze", path, [y, Int64s(Join(path, "batch_axis"), [0])])
                : a.BatchFirst ? y : Op("Transpose", path, [y], AttrInts("perm", 1, 0, 2));
        }

        // An encoder layer in evaluation mode (its dropouts are the identity), post- or pre-norm.
        private string EncoderLayer(TransformerEncoderLayer layer, string path, string x, Tensor sample)
        {
            string Sa(string v) => SelfAttention(layer.SelfAttn, Join(path, "self_attn"), v, sample.Rank);
            string Ff(string v)
            {
                var hidden = Leaf(layer.Linear1, Join(path, "linear1"), v, sample);
                hidden = layer.Activation == "gelu" ? Gelu(path, hidden) : Op("Relu", path, [hidden]);
                return Leaf(layer.Linear2, Join(path, "linear2"), hidden, sample);
            }
            string Norm(LayerNorm norm, string name, string v) => Leaf(norm, Join(path, name), v, sample);
            if (layer.NormFirst)
            {
                var y = Op("Add", path, [x, Sa(Norm(layer.Norm1, "norm1", x))]);
                return Op("Add", path, [y, Ff(Norm(layer.Norm2, "norm2", y))]);
            }
            var z = Norm(layer.Norm1, "norm1", Op("Add", path, [x, Sa(x)]));
            return Norm(layer.Norm2, "norm2", Op("Add", path, [z, Ff(z)]));
        }

        private static string Where(string path, Module m) => path.Length == 0 ? $"the model ({m.Describe()})" : $"module '{path}' ({m.Describe()})";
        private static string Join(string path, string name) => path.Length == 0 ? name : path + "." + name;

        /// <summary>Adds a node; its output (and the node) is named after the module path and the op.</summary>
        private string Op(string op, string path, string[] inputs, params ProtoWriter[] attributes)
        {
            var output = Fresh(path.Length == 0 ? op : $"{path}/{op}");
            _nodes.Add(new Node(op, output, inputs, [output], attributes));
            return output;
        }

        private string Fresh(string hint)
        {
            var name = hint;
            for (int i = 1; !_names.Add(name); i++) name = $"{hint}_{i}";
            return name;
        }

        /// <summary>A parameter or buffer, under its state-dict name, written once however often used.</summary>
        private string State(Tensor t)
        {
            if (_written.TryGetValue(t, out var name)) return name;
            name = Initializer(_stateNames.GetValueOrDefault(t, "const"), t);
            _written[t] = name;
            return name;
        }

        /// <summary>A buffer converted to the graph's element type (ONNX arithmetic does not mix types).</summary>
        private string StateAs(Tensor t) => t.DType == _dtype ? State(t) : Initializer(_stateNames.GetValueOrDefault(t, "const"), t.To(_dtype));

        private string Scalar(string name, double value) => Initializer(name, Tensor.Scalar(value).To(_dtype));

        // TensorProto { dims = 1 (repeated int64); data_type = 2; name = 8; raw_data = 9 (little-endian) }.
        private string Initializer(string hint, Tensor t)
        {
            var name = Fresh(hint);
            var proto = new ProtoWriter();
            foreach (int d in t.Shape.ToArray()) proto.Int(1, d);
            proto.Int(2, ElementType(t.DType)).String(8, name).Bytes(9, ElementBytes.Encode(t.Backend.ToArray(t.AsView)));
            _initializers.Add(proto);
            return name;
        }

        private string Int64s(string hint, long[] values)
        {
            var name = Fresh(hint);
            _initializers.Add(new ProtoWriter().Int(1, values.Length).Int(2, Int64Type).String(8, name).Bytes(9, ElementBytes.Encode(values)));
            return name;
        }

        // AttributeProto { name = 1; f = 2; i = 3; s = 4; ints = 8 (repeated, unpacked in proto2); type = 20 }
        // with type FLOAT = 1, INT = 2, STRING = 3, INTS = 7.
        private static ProtoWriter AttrInt(string name, long value) => new ProtoWriter().String(1, name).Int(3, value).Int(20, 2);
        private static ProtoWriter AttrFloat(string name, double value) => new ProtoWriter().String(1, name).Float(2, (float)value).Int(20, 1);
        // The window attributes Conv and ConvTranspose share, one value per spatial axis (1-D or 2-D);
        // the padding is the same at both ends of each axis.
        private static ProtoWriter[] ConvAttributes(long[] kernel, long[] stride, long[] padding, long[] dilation, int groups) =>
        [
            AttrInts("kernel_shape", kernel),
            AttrInts("strides", stride),
            AttrInts("pads", [.. padding, .. padding]),
            AttrInts("dilations", dilation),
            AttrInt("group", groups),
        ];
        private static ProtoWriter AttrString(string name, string value) => new ProtoWriter().String(1, name).String(4, value).Int(20, 3);
        private static ProtoWriter AttrInts(string name, params long[] values)
        {
            var a = new ProtoWriter().String(1, name);
            foreach (var v in values) a.Int(8, v);
            return a.Int(20, 7);
        }

        /// <summary>Gives the graph's result the output name: renames the node that makes it, or adds an
        /// Identity when the result is the input or a stored tensor (a model of dropouts alone).</summary>
        public void NameOutput(string value, string outputName)
        {
            int producer = _nodes.FindLastIndex(n => n.Outputs.Contains(value));
            if (producer < 0)
            {
                _nodes.Add(new Node("Identity", outputName, [value], [outputName], []));
                return;
            }
            for (int i = 0; i < _nodes.Count; i++)
            {
                var n = _nodes[i];
                _nodes[i] = n with
                {
                    Inputs = [.. n.Inputs.Select(s => s == value ? outputName : s)],
                    Outputs = [.. n.Outputs.Select(s => s == value ? outputName : s)],
                };
            }
        }

        // ModelProto { ir_version = 1; producer_name = 2; producer_version = 3; doc_string = 6; graph = 7; opset_import = 8 }
        // GraphProto { node = 1; name = 2; initializer = 5; input = 11; output = 12 }
        // NodeProto { input = 1; output = 2; name = 3; op_type = 4; attribute = 5 }
        public byte[] Model(OnnxExportOptions options, ProtoWriter input, ProtoWriter output, string description)
        {
            var graph = new ProtoWriter();
            foreach (var n in _nodes)
            {
                var node = new ProtoWriter();
                foreach (var i in n.Inputs) node.String(1, i);
                foreach (var o in n.Outputs) node.String(2, o);
                node.String(3, n.Name).String(4, n.Op);
                foreach (var a in n.Attributes) node.Message(5, a);
                graph.Message(1, node);
            }
            graph.String(2, options.GraphName);
            foreach (var t in _initializers) graph.Message(5, t);
            graph.Message(11, input).Message(12, output);

            var version = typeof(Onnx).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0";
            return new ProtoWriter()
                .Int(1, IrVersion)
                .String(2, "MiniDeep")
                .String(3, version.Split('+')[0])
                .String(6, description)
                .Message(7, graph)
                .Message(8, new ProtoWriter().String(1, "").Int(2, Opset))
                .ToArray();
        }
    }
}
