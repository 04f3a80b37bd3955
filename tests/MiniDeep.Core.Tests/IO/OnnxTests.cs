using MiniDeep.IO;
using MiniDeep.Nn;
using Microsoft.ML.OnnxRuntime;
using Xunit;
using static MiniDeep.Nn.Activations;

namespace MiniDeep.Tests.IO;

/// <summary>
/// Exported models run in ONNX Runtime (the oracle: tests only) and give MiniDeep's outputs within
/// 1e-5, at a batch size other than the one traced.
/// </summary>
public class OnnxTests(ITestOutputHelper output)
{
    private const double Tolerance = 1e-5;

    // Runs the model in MiniDeep (eval mode) and in ONNX Runtime on the same input; the largest
    // absolute difference.
    private double MaxDifference(Module model, Shape traced, Shape run, ulong seed = 1, bool uniform = false)
    {
        var bytes = Onnx.ExportBytes(model, traced);
        var g = new Generator(seed);
        var dtype = model.Parameters().FirstOrDefault()?.DType ?? DType.Float32;
        var x = (uniform ? Tensor.Rand(run, g) : Tensor.Randn(run, g)).To(dtype);
        model.Eval();
        Tensor expected;
        using (Autograd.NoGrad()) expected = model.Forward(x);

        using var session = new InferenceSession(bytes);
        long[] dims = [.. run.ToArray().Select(d => (long)d)];
        using var input = dtype == DType.Float64
            ? OrtValue.CreateTensorValueFromMemory(x.ToArray<double>(), dims)
            : OrtValue.CreateTensorValueFromMemory(x.ToArray<float>(), dims);
        using var runOptions = new RunOptions();
        using var results = session.Run(runOptions, ["input"], [input], ["output"]);
        var shape = results[0].GetTensorTypeAndShape().Shape;
        Assert.Equal(expected.Shape.ToArray().Select(d => (long)d), shape);
        double[] actual = dtype == DType.Float64
            ? results[0].GetTensorDataAsSpan<double>().ToArray()
            : [.. results[0].GetTensorDataAsSpan<float>().ToArray().Select(v => (double)v)];
        var want = expected.ToDoubleArray();
        double worst = 0;
        for (int i = 0; i < want.Length; i++) worst = Math.Max(worst, Math.Abs(want[i] - actual[i]));
        output.WriteLine($"{model.GetType().Name} {run}: max |MiniDeep − ONNX Runtime| = {worst:E2} (outputs up to {want.Max(Math.Abs):G3})");
        return worst;
    }

    // A few training-mode passes so that batch norm's running statistics are not the identity's.
    private static void WarmBatchNorm(Module model, Shape shape, ulong seed)
    {
        var g = new Generator(seed);
        model.Train();
        using (Autograd.NoGrad())
            for (int i = 0; i < 3; i++) model.Forward(Tensor.Randn(shape, g) * 2 + 0.5);
    }

    [Fact]
    public void TheLabsMlpAndCnn_MatchOnnxRuntime()
    {
        var g = new Generator(3);
        var mlp = new Sequential(new Flatten(),
            new Linear(784, 256, generator: g), ReLU(), new Linear(256, 128, generator: g), ReLU(), new Linear(128, 10, generator: g));
        Assert.True(MaxDifference(mlp, new Shape(2, 1, 28, 28), new Shape(5, 1, 28, 28), uniform: true) <= Tolerance);

        var cnn = new Sequential(
            new Conv2d(1, 32, 3, padding: 1, generator: g), ReLU(), new MaxPool2d(2),
            new Conv2d(32, 64, 3, padding: 1, generator: g), ReLU(), new MaxPool2d(2),
            new Flatten(), new Dropout(0.3, g),
            new Linear(64 * 7 * 7, 128, generator: g), ReLU(), new Linear(128, 10, generator: g));
        Assert.True(MaxDifference(cnn, new Shape(1, 1, 28, 28), new Shape(3, 1, 28, 28), uniform: true) <= Tolerance);
    }

    [Fact]
    public void BatchNormPoolingStandardizeAndSoftmax_MatchOnnxRuntime()
    {
        var g = new Generator(4);
        var model = new Sequential(
            new Standardize(0.3, 0.4),
            new Conv2d(1, 6, 5, padding: 2, generator: g), new BatchNorm2d(6), Tanh(), new AvgPool2d((3, 3), (2, 2), (1, 1)),
            new Conv2d(6, 8, 3, generator: g), new BatchNorm2d(8), Sigmoid(), new MaxPool2d((3, 2), (2, 1), (1, 0)),
            new Flatten(), new Linear(8 * 3 * 5, 32, generator: g), new BatchNorm1d(32), LeakyReLU(0.2), new Dropout(0.5, g),
            new Linear(32, 10, generator: g), Softmax());
        WarmBatchNorm(model, new Shape(8, 1, 16, 16), 5);
        Assert.True(MaxDifference(model, new Shape(2, 1, 16, 16), new Shape(4, 1, 16, 16), uniform: true) <= Tolerance);
    }

    [Fact]
    public void AdaptiveAveragePooling_GlobalAndEvenlyDividing_MatchOnnxRuntime()
    {
        var g = new Generator(9);
        var global = new Sequential(new Conv2d(1, 4, 3, padding: 1, generator: g), ReLU(), new AdaptiveAvgPool2d(1), new Flatten(), new Linear(4, 3, generator: g));
        Assert.True(MaxDifference(global, new Shape(2, 1, 9, 7), new Shape(3, 1, 9, 7)) <= Tolerance);
        var even = new Sequential(new AdaptiveAvgPool2d((3, 2)), new Flatten());
        Assert.True(MaxDifference(even, new Shape(1, 2, 12, 8), new Shape(2, 2, 12, 8)) <= Tolerance);
        // 7×5 to 3×2 has windows of unequal size, which no ONNX operator computes.
        var e = Assert.Throws<OnnxExportException>(() => Onnx.ExportBytes(new Sequential(new AdaptiveAvgPool2d((3, 2))), new Shape(1, 1, 7, 5)));
        Assert.Contains("module '0' (AdaptiveAvgPool2d(output=(3, 2)))", e.Message);
        Assert.Contains("7×5 pooled to 3×2", e.Message);
    }

    [Fact]
    public void DecoderLayers_TransposedConvolutionsAndResizing_MatchOnnxRuntime()
    {
        var g = new Generator(10);
        // Transposed convolutions: output padding, dilation, groups, no bias; then every resize mode,
        // up and down, by a scale and to a size.
        var decoder = new Sequential(
            new ConvTranspose2d(4, 6, (3, 2), stride: (2, 1), padding: (1, 0), outputPadding: (1, 0), dilation: (1, 2), generator: g), ReLU(),
            new ConvTranspose2d(6, 4, (2, 2), stride: (2, 2), groups: 2, bias: false, generator: g), Tanh(),
            new Upsample(2), new Upsample((11, 13), UpsampleMode.Bilinear), new Upsample((20, 7), UpsampleMode.Bilinear, alignCorners: true),
            new Upsample((9, 9)), new Upsample((4, 5), UpsampleMode.Bilinear));
        Assert.True(MaxDifference(decoder, new Shape(1, 4, 3, 4), new Shape(2, 4, 3, 4)) <= Tolerance);
        // A bilinear one-pixel side is where ONNX's pytorch_half_pixel and PyTorch part ways.
        var e = Assert.Throws<OnnxExportException>(() => Onnx.ExportBytes(new Sequential(new Upsample((1, 4), UpsampleMode.Bilinear)), new Shape(1, 1, 3, 3)));
        Assert.Contains("module '0' (Upsample(size=(1, 4), mode=bilinear))", e.Message);
        Assert.Contains("3×3 to 1×4", e.Message);
    }

    [Fact]
    public void GroupNorm_OnImagesAndOnFeatureVectors_WithAndWithoutAffine_MatchesOnnxRuntime()
    {
        var g = new Generator(11);
        var images = new GroupNorm(3, 6, eps: 0.5);
        var vectors = new GroupNorm(2, 8);
        using (Autograd.NoGrad())
            foreach (var p in images.Parameters().Concat(vectors.Parameters())) p.CopyFrom(Tensor.Randn(p.Shape, g));
        var model = new Sequential(new Conv2d(2, 6, 3, padding: 1, generator: g), images, ReLU(), new GroupNorm(6, 6, affine: false),
            new Flatten(), new Linear(6 * 5 * 4, 8, generator: g), vectors, Tanh());
        Assert.True(MaxDifference(model, new Shape(1, 2, 5, 4), new Shape(3, 2, 5, 4)) <= Tolerance);
    }

    [Fact]
    public void OneDimensionalLayers_ConvolutionsAndPooling_MatchOnnxRuntime()
    {
        var g = new Generator(12);
        // (N, 3, 32) signals: a fused Conv1d + ReLU, max pooling with padding, BatchNorm1d over (N, C, L)
        // with trained running statistics, a grouped dilated Conv1d, average pooling whose padding counts,
        // a transposed Conv1d with output padding, then a classifier.
        var model = new Sequential(
            new Conv1d(3, 8, 5, padding: 2, generator: g), ReLU(), new MaxPool1d(3, 2, 1), new BatchNorm1d(8),
            new Conv1d(8, 8, 3, stride: 2, dilation: 2, groups: 4, bias: false, generator: g), Tanh(), new AvgPool1d(3, 1, 1),
            new ConvTranspose1d(8, 4, 4, stride: 2, padding: 1, outputPadding: 1, generator: g),
            new Flatten(), new Linear(4 * 13, 5, generator: g));
        WarmBatchNorm(model, new Shape(16, 3, 32), 13);
        Assert.True(MaxDifference(model, new Shape(1, 3, 32), new Shape(4, 3, 32)) <= Tolerance);
    }

    [Fact]
    public void RecurrentLayers_LstmAndGru_MatchOnnxRuntime()
    {
        var g = new Generator(14);
        // Batch first, two bidirectional LSTM layers, then a linear head on every step.
        var lstm = new Sequential(new Lstm(3, 5, numLayers: 2, batchFirst: true, bidirectional: true, generator: g), new Linear(10, 2, generator: g));
        Assert.True(MaxDifference(lstm, new Shape(1, 6, 3), new Shape(3, 6, 3)) <= Tolerance);
        // Sequence first (the dynamic first axis is then the time axis), a GRU without biases, and one with two layers.
        var gru = new Sequential(new Gru(3, 4, bias: false, generator: g), new Gru(4, 4, numLayers: 2, generator: g));
        Assert.True(MaxDifference(gru, new Shape(5, 2, 3), new Shape(8, 2, 3)) <= Tolerance);
    }

    [Fact]
    public void TransformerLayers_AttentionPostAndPreNorm_MatchOnnxRuntime()
    {
        var g = new Generator(15);
        // Batch first: a projection, two post-norm ReLU layers and a final norm, then a head on every position.
        var encoder = new Sequential(new Linear(5, 8, generator: g),
            new TransformerEncoder(() => new TransformerEncoderLayer(8, 2, dimFeedforward: 16, batchFirst: true, generator: g), 2, new LayerNorm(8)),
            new Linear(8, 3, generator: g));
        Assert.True(MaxDifference(encoder, new Shape(1, 6, 5), new Shape(3, 6, 5)) <= Tolerance);
        // Sequence first (the dynamic axis is then the time axis): a pre-norm GELU layer.
        var preNorm = new Sequential(new TransformerEncoderLayer(8, 4, dimFeedforward: 12, activation: "gelu", normFirst: true, generator: g));
        Assert.True(MaxDifference(preNorm, new Shape(6, 2, 8), new Shape(9, 2, 8)) <= Tolerance);
        // Attention alone on an unbatched sequence, without biases.
        var attention = new Sequential(new MultiheadAttention(8, 2, bias: false, generator: g));
        Assert.True(MaxDifference(attention, new Shape(5, 8), new Shape(7, 8)) <= Tolerance);
    }

    [Fact]
    public void ConvolutionGeometry_StridePaddingDilationGroups_MatchOnnxRuntime()
    {
        var g = new Generator(6);
        var model = new Sequential(
            new Conv2d(4, 6, (3, 2), stride: (2, 1), padding: (1, 2), dilation: (2, 1), groups: 2, generator: g), GELU(),
            new Conv2d(6, 3, (1, 3), bias: false, generator: g), Softplus(),
            new Flatten(2), Softmax(axis: 1));
        Assert.True(MaxDifference(model, new Shape(1, 4, 9, 7), new Shape(2, 4, 9, 7)) <= Tolerance);
    }

    [Fact]
    public void SequenceModels_LinearOnThreeAxes_LayerNormResidualEnsemble_MatchOnnxRuntime()
    {
        var g = new Generator(7);
        // (N, T, 12): Linear on three axes is MatMul + Add; LayerNorm over the last axis; a residual
        // block with a projection and one without; Flatten of the two trailing axes; an ensemble head.
        var model = new Sequential(
            new Linear(12, 16, generator: g), new LayerNorm(16), GELU(),
            new Residual(new Sequential(new Linear(16, 16, generator: g), ReLU(), new Linear(16, 16, bias: false, generator: g))),
            new Residual(new Linear(16, 8, generator: g), new Linear(16, 8, generator: g)), Identity(),
            new Flatten(1, 2),
            new Ensemble(new Linear(40, 3, generator: g), new Sequential(new Linear(40, 6, generator: g), Tanh(), new Linear(6, 3, generator: g))));
        Assert.True(MaxDifference(model, new Shape(2, 5, 12), new Shape(7, 5, 12)) <= Tolerance);
    }

    [Fact]
    public void Float64Models_ExportAsDouble()
    {
        var g = new Generator(8);
        var model = new Sequential(new Linear(10, 16, generator: g, dtype: DType.Float64), Tanh(), new Linear(16, 10, generator: g, dtype: DType.Float64));
        Assert.True(MaxDifference(model, new Shape(1, 10), new Shape(6, 10)) <= 1e-12);
    }

    [Fact]
    public void FlattenAcrossTheBatch_AndModelsWithoutNodes_Export()
    {
        // Flatten(0) merges the batch into one axis: the output's only axis is symbolic, not the batch.
        Assert.True(MaxDifference(new Sequential(new Flatten(0), Sigmoid()), new Shape(2, 3, 4), new Shape(5, 3, 4)) <= Tolerance);
        // Dropout alone makes no node: the output is an Identity of the input.
        Assert.Equal(0, MaxDifference(new Sequential(new Dropout(0.5)), new Shape(2, 3), new Shape(4, 3)));
    }

    [Fact]
    public void TheBatchAxisIsSymbolic_AndFixedWhenAsked()
    {
        var model = new Sequential(new Flatten(), new Linear(12, 4, generator: new Generator(9)));
        using (var dynamic = new InferenceSession(Onnx.ExportBytes(model, new Shape(2, 3, 4))))
        {
            Assert.Equal(["batch", "", ""], dynamic.InputMetadata["input"].SymbolicDimensions);
            Assert.Equal([-1, 3, 4], dynamic.InputMetadata["input"].Dimensions);
            Assert.Equal([-1, 4], dynamic.OutputMetadata["output"].Dimensions);
        }
        using var fixedBatch = new InferenceSession(Onnx.ExportBytes(model, new Shape(2, 3, 4), new OnnxExportOptions { DynamicBatch = false }));
        Assert.Equal([2, 3, 4], fixedBatch.InputMetadata["input"].Dimensions);
        Assert.Equal([2, 4], fixedBatch.OutputMetadata["output"].Dimensions);
    }

    [Fact]
    public void InitializersKeepStateDictNames_ExportIsDeterministic_ModesAreRestored()
    {
        var g = new Generator(10);
        var inner = new Sequential(new Linear(4, 4, generator: g), new Dropout(0.5, g));
        var model = new Sequential(new Linear(6, 4, generator: g), new BatchNorm1d(4), inner);
        model.Train();
        inner.Eval();
        var a = Onnx.ExportBytes(model, new Shape(3, 6));
        var b = Onnx.ExportBytes(model, new Shape(3, 6));
        Assert.Equal(a, b);
        Assert.True(model.IsTraining);
        Assert.False(inner.IsTraining);
        Assert.False(inner[1].IsTraining);
        Assert.True(model[1].IsTraining);

        // Read back with a wire-format walker independent of the writer: graph = 7, initializer = 5 and
        // its name = 8, node = 1 and its op_type = 4.
        var graph = Fields(a).Single(f => f.Number == 7).Bytes!;
        var initializers = Fields(graph).Where(f => f.Number == 5).Select(f => Text(Fields(f.Bytes!).Single(t => t.Number == 8))).ToList();
        Assert.Equal(model.StateDict().Keys.Order(), initializers.Order());
        var ops = Fields(graph).Where(f => f.Number == 1).Select(f => Text(Fields(f.Bytes!).Single(t => t.Number == 4)));
        Assert.Equal(["Gemm", "BatchNormalization", "Gemm"], ops);   // dropout is no node
        var opset = Fields(Fields(a).Single(f => f.Number == 8).Bytes!).Single(f => f.Number == 2).Value;
        Assert.Equal(Onnx.Opset, (int)opset);
        using var session = new InferenceSession(a);
    }

    private sealed record Field(int Number, ulong Value, byte[]? Bytes);

    private static string Text(Field f) => System.Text.Encoding.UTF8.GetString(f.Bytes!);

    // The top-level fields of a protobuf message (varint, fixed32/64 and length-delimited only).
    private static List<Field> Fields(byte[] message)
    {
        var fields = new List<Field>();
        int pos = 0;
        ulong Varint()
        {
            ulong v = 0;
            for (int shift = 0; ; shift += 7)
            {
                byte b = message[pos++];
                v |= (ulong)(b & 0x7F) << shift;
                if (b < 0x80) return v;
            }
        }
        while (pos < message.Length)
        {
            var key = Varint();
            int number = (int)(key >> 3);
            switch (key & 7)
            {
                case 0: fields.Add(new Field(number, Varint(), null)); break;
                case 1: fields.Add(new Field(number, BitConverter.ToUInt64(message, pos), null)); pos += 8; break;
                case 5: fields.Add(new Field(number, BitConverter.ToUInt32(message, pos), null)); pos += 4; break;
                case 2:
                    int length = (int)Varint();
                    fields.Add(new Field(number, 0, message[pos..(pos + length)]));
                    pos += length;
                    break;
                default: throw new InvalidDataException($"wire type {key & 7}");
            }
        }
        return fields;
    }

    [Fact]
    public void Export_WritesTheFileAtomically()
    {
        var dir = Directory.CreateTempSubdirectory("minideep-onnx-");
        try
        {
            var path = Path.Combine(dir.FullName, "model.onnx");
            var model = new Sequential(new Linear(3, 2, generator: new Generator(11)), ReLU());
            Onnx.Export(model, new Shape(1, 3), path);
            Assert.Equal(Onnx.ExportBytes(model, new Shape(1, 3)), File.ReadAllBytes(path));
            Assert.Equal(["model.onnx"], dir.GetFiles().Select(f => f.Name));   // no temporary left behind
            using var session = new InferenceSession(path);
            Assert.Equal(["input"], session.InputNames);
        }
        finally { dir.Delete(recursive: true); }
    }

    [Fact]
    public void UnsupportedModules_AreRefused_NamingTheModule()
    {
        var custom = new Sequential(new Linear(3, 3), new Activation("Swish", x => x * x.Sigmoid()));
        var e = Assert.Throws<OnnxExportException>(() => Onnx.ExportBytes(custom, new Shape(2, 3)));
        Assert.Contains("module '1' (Swish)", e.Message);
        Assert.Contains("delegate", e.Message);

        var embedding = new Sequential(new Sequential(new Embedding(10, 4)));
        e = Assert.Throws<OnnxExportException>(() => Onnx.ExportBytes(embedding, new Shape(2, 3)));
        Assert.Contains("module '0.0' (Embedding(10, 4))", e.Message);

        // A decoder needs the encoder's output as a second input; the export has one.
        e = Assert.Throws<OnnxExportException>(() => Onnx.ExportBytes(new Sequential(new TransformerDecoderLayer(4, 2, dimFeedforward: 8)), new Shape(3, 2, 4)));
        Assert.Contains("module '0' (TransformerDecoderLayer(4, 2, dim_feedforward=8, dropout=0.1)) has no ONNX mapping", e.Message);

        Assert.Throws<ArgumentException>(() => Onnx.ExportBytes(new Sequential(), new Shape(0, 3)));
        Assert.Throws<ArgumentException>(() => Onnx.ExportBytes(new Sequential(), new Shape(2), new OnnxExportOptions { OutputName = "input" }));
    }

    [Fact]
    public void ProtoWriter_EncodesTheWireFormatOfTheSpecification()
    {
        // The examples of protobuf.dev's encoding guide: field 1 = 150 is 08 96 01; field 2 = "testing"
        // is 12 07 followed by the bytes; a negative int64 is ten bytes; a nested message is length-prefixed.
        Assert.Equal([0x08, 0x96, 0x01], new ProtoWriter().Int(1, 150).ToArray());
        Assert.Equal([0x12, 0x07, .. "testing"u8], new ProtoWriter().String(2, "testing").ToArray());
        Assert.Equal([0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], new ProtoWriter().Int(1, -1).ToArray());
        Assert.Equal([0x1A, 0x03, 0x08, 0x96, 0x01], new ProtoWriter().Message(3, new ProtoWriter().Int(1, 150)).ToArray());
        Assert.Equal([0x15, 0x00, 0x00, 0x80, 0x3F], new ProtoWriter().Float(2, 1f).ToArray());
        Assert.Equal([0xA0, 0x01, 0x07], new ProtoWriter().Int(20, 7).ToArray());   // field 20: a two-byte key
    }
}
