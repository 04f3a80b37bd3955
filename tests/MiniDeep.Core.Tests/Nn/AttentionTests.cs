using MiniDeep.Nn;
using MiniDeep.Optim;
using Xunit;

namespace MiniDeep.Tests.NnTests;

public class AttentionTests(ITestOutputHelper output)
{
    // A pre-norm Transformer encoder (2 layers, 4 heads, width 32) trained with Adam to sort 8 random
    // digits: the output at position i is the i-th smallest. Returns the share of digits and of whole
    // sequences it gets right on 1,000 new sequences.
    private (double Digits, double Sequences) TrainToSort(bool eachPositionSeesOnlyItself, int steps)
    {
        const int len = 8, vocab = 10, d = 32;
        var g = new Generator(5);
        var embed = new Embedding(vocab, d, generator: g);
        var position = (Tensor.Randn(new Shape(len, d), g) * 0.1).RequiresGrad_();
        var encoder = new TransformerEncoder(() => new TransformerEncoderLayer(d, 4, dimFeedforward: 64, dropout: 0, batchFirst: true, normFirst: true, generator: g),
            2, new LayerNorm(d));
        var head = new Linear(d, vocab, generator: g);
        // The control masks every key but the query's own (bool true: masked out), which leaves a
        // network that transforms each position on its own.
        Tensor? mask = eachPositionSeesOnlyItself ? Tensor.Eye(len).To(DType.Bool).LogicalNot() : null;
        Tensor Logits(Tensor digits) => head.Forward(encoder.Run(embed.Forward(digits) + position, mask));
        (Tensor X, Tensor Y) Batch(int n)
        {
            var x = Tensor.Randint(0, vocab, new Shape(n, len), g);
            return (x, x.Sort(1).Values);
        }
        var opt = new Adam([.. embed.Parameters(), position, .. encoder.Parameters(), .. head.Parameters()], 3e-3);
        for (int step = 0; step < steps; step++)
        {
            var (x, y) = Batch(64);
            opt.ZeroGrad();
            Losses.CrossEntropy(Logits(x).Reshape(-1, vocab), y.Reshape(-1)).Backward();
            opt.Step();
        }
        var (tx, ty) = Batch(1000);
        using (Autograd.NoGrad())
        {
            var right = (Logits(tx).ArgMax(2) == ty).To(DType.Float64);
            return (right.Mean().Item(), right.Min(1).Mean().Item());
        }
    }

    [Fact]
    public void ATransformerEncoder_LearnsToSortDigits_WhichNoPositionCanAlone()
    {
        // Sorting needs every position to compare its digit with all the others: what attention does.
        // Measured after 400 steps (at the review of 2026-12-01): 100% of digits and 99.8% of sequences
        // on the AVX-512 and AVX2 paths, 99.9% and 99.5% on Vector128; the control, whose attention sees
        // only the position itself, 38.0% of digits (it learns which digits each position tends to
        // hold) and 0.1% of sequences on all three.
        var (digits, sequences) = TrainToSort(eachPositionSeesOnlyItself: false, steps: 400);
        var (aloneDigits, aloneSequences) = TrainToSort(eachPositionSeesOnlyItself: true, steps: 400);
        output.WriteLine($"attention: {digits:P1} of digits, {sequences:P1} of sequences; each position alone: {aloneDigits:P1}, {aloneSequences:P1}");
        Assert.True(digits >= 0.95, $"digits {digits:P1}");
        Assert.True(sequences >= 0.8, $"sequences {sequences:P1}");
        Assert.True(aloneDigits <= 0.5, $"the control sorted {aloneDigits:P1} of digits");
    }

    [Fact]
    public void AnEncoderDecoderTransformer_LearnsToReverseSequences_AndDecodesThemGreedily()
    {
        // Sequence to sequence: 6 random digits in, the same digits reversed out. Trained with teacher
        // forcing (the decoder reads the true previous digits behind a causal mask), then decoded one
        // digit at a time from a start token, each step feeding its own previous outputs back. Measured:
        // 100% of sequences after 300 steps. (Trained without the causal mask it still decodes 96.2%:
        // the source holds the answer here, so this test checks the encoder-decoder path end to end,
        // not the mask, which the PyTorch cases check.)
        const int len = 6, vocab = 10, start = 10, d = 32;
        var g = new Generator(8);
        var model = new Transformer(d, 4, 2, 2, dimFeedforward: 64, dropout: 0, batchFirst: true, normFirst: true, generator: g);
        var srcEmbed = new Embedding(vocab, d, generator: g);
        var tgtEmbed = new Embedding(vocab + 1, d, generator: g);
        var position = (Tensor.Randn(new Shape(len, d), g) * 0.1).RequiresGrad_();
        var head = new Linear(d, vocab, generator: g);
        Tensor Logits(Tensor src, Tensor tgtIn)
        {
            int t = tgtIn.Size(1);
            return head.Forward(model.Run(srcEmbed.Forward(src) + position, tgtEmbed.Forward(tgtIn) + position.Narrow(0, 0, t), tgtIsCausal: true));
        }
        Tensor Reversed(Tensor x) => x.IndexSelect(1, Tensor.FromArray(Enumerable.Range(0, len).Reverse().ToArray(), [len]));
        Tensor StartThen(Tensor y) => Tensor.Concat([Tensor.Full(new Shape(y.Size(0), 1), start, DType.Int32), y.Narrow(1, 0, len - 1)], 1);
        var opt = new Adam([.. model.Parameters(), .. srcEmbed.Parameters(), .. tgtEmbed.Parameters(), position, .. head.Parameters()], 3e-3);
        for (int step = 0; step < 300; step++)
        {
            var src = Tensor.Randint(0, vocab, new Shape(64, len), g);
            var y = Reversed(src);
            opt.ZeroGrad();
            Losses.CrossEntropy(Logits(src, StartThen(y)).Reshape(-1, vocab), y.Reshape(-1)).Backward();
            opt.Step();
        }
        model.Eval();
        var test = Tensor.Randint(0, vocab, new Shape(500, len), g);
        var decoded = Tensor.Full(new Shape(500, 1), start, DType.Int32);
        using (Autograd.NoGrad())
            for (int i = 0; i < len; i++)
            {
                var next = Logits(test, decoded).Select(1, i).ArgMax(1).Reshape(500, 1);
                decoded = Tensor.Concat([decoded, next], 1);
            }
        var right = (decoded.Narrow(1, 1, len) == Reversed(test)).To(DType.Float64);
        double digits = right.Mean().Item(), sequences = right.Min(1).Mean().Item();
        output.WriteLine($"greedy decoding: {digits:P1} of digits, {sequences:P1} of sequences");
        Assert.True(sequences >= 0.9, $"sequences {sequences:P1}");
    }

    [Fact]
    public void DecoderModules_RefuseForward_AndNameRun()
    {
        var layer = new TransformerDecoderLayer(4, 2, dimFeedforward: 8);
        Assert.Contains("call Run(tgt, memory", Assert.Throws<InvalidOperationException>(() => layer.Forward(Tensor.Zeros(3, 2, 4))).Message);
        var transformer = new Transformer(4, 2, 1, 1, dimFeedforward: 8);
        Assert.Contains("call Run(src, tgt", Assert.Throws<InvalidOperationException>(() => transformer.Forward(Tensor.Zeros(3, 2, 4))).Message);
        var mask = Transformer.GenerateSquareSubsequentMask(3).ToArray<float>();
        Assert.Equal([0f, float.NegativeInfinity, float.NegativeInfinity, 0f, 0f, float.NegativeInfinity, 0f, 0f, 0f], mask);
        Assert.Equal(["encoder.layers.0.self_attn.in_proj_weight", "decoder.layers.0.multihead_attn.out_proj.bias", "decoder.norm.weight"],
            transformer.NamedParameters().Select(p => p.Name).Where(n => n is "encoder.layers.0.self_attn.in_proj_weight" or "decoder.layers.0.multihead_attn.out_proj.bias" or "decoder.norm.weight"));
    }

    [Fact]
    public void BadArguments_AreRefused_NamingTheLayerAndTheShapes()
    {
        var e = Assert.Throws<ArgumentException>(() => new MultiheadAttention(10, 3));
        Assert.Contains("embed_dim 10 must be divisible by num_heads 3", e.Message);
        var m = new MultiheadAttention(4, 2, batchFirst: true);
        var x = Tensor.Randn(new Shape(2, 3, 4), new Generator(1));
        Assert.Contains("must end in 4, 4 and 4 features", Assert.Throws<ShapeMismatchException>(() => m.Run(x, x, Tensor.Zeros(2, 3, 5))).Message);
        Assert.Contains("key_padding_mask (3, 2) must be (N, S) = (2, 3)",
            Assert.Throws<ShapeMismatchException>(() => m.Run(x, x, x, Tensor.Zeros(3, 2).To(DType.Bool))).Message);
        Assert.Contains("attn_mask (3, 4) must be (L, S) = (3, 3) or (N·H, L, S) = (4, 3, 3)",
            Assert.Throws<ShapeMismatchException>(() => m.Run(x, x, x, attnMask: Tensor.Zeros(3, 4))).Message);
        Assert.Contains("either attn_mask or is_causal", Assert.Throws<ArgumentException>(() => m.Run(x, x, x, attnMask: Tensor.Zeros(3, 3), isCausal: true)).Message);
        Assert.Contains("bool or floating point", Assert.Throws<ArgumentException>(() => m.Run(x, x, x, attnMask: Tensor.Zeros(new Shape(3, 3), DType.Int32))).Message);
        Assert.Contains("activation must be", Assert.Throws<ArgumentException>(() => new TransformerEncoderLayer(4, 2, activation: "tanh")).Message);
        var q = Tensor.Randn(new Shape(2, 5, 4), new Generator(2));
        Assert.Contains("mask (5, 5) must broadcast to the scores' shape (2, 5, 6)",
            Assert.Throws<ShapeMismatchException>(() => Tensor.ScaledDotProductAttention(q, Tensor.Zeros(2, 6, 4), Tensor.Zeros(2, 6, 3), Tensor.Zeros(5, 5))).Message);
        Assert.Contains("same number of features", Assert.Throws<ShapeMismatchException>(() => Tensor.ScaledDotProductAttention(q, Tensor.Zeros(2, 6, 3), Tensor.Zeros(2, 6, 3))).Message);
    }

    [Fact]
    public void AttentionDropout_IsSeededByItsGenerator_AndOffInEvaluation()
    {
        TransformerEncoderLayer Make(double dropout, ulong maskSeed) =>
            new(8, 2, dimFeedforward: 16, dropout: dropout, batchFirst: true, generator: new Generator(1), dropoutGenerator: new Generator(maskSeed));
        var x = Tensor.Randn(new Shape(3, 5, 8), new Generator(2));
        var (a, b, other, plain) = (Make(0.3, 7), Make(0.3, 7), Make(0.3, 8), Make(0, 7));
        Assert.Equal(a.Forward(x).ToArray<float>(), b.Forward(x).ToArray<float>());
        Assert.NotEqual(a.Forward(x).ToArray<float>(), other.Forward(x).ToArray<float>());
        Assert.NotEqual(a.Forward(x).ToArray<float>(), plain.Forward(x).ToArray<float>());
        a.Eval();
        Assert.Equal(plain.Forward(x).ToArray<float>(), a.Forward(x).ToArray<float>());

        // The weights returned in training mode are those the values were averaged with: after dropout,
        // as PyTorch returns them. Each is 0 or the evaluation weight scaled by 1/(1 − p) = 2, and
        // evaluation's rows sum to 1.
        var attention = new MultiheadAttention(8, 2, dropout: 0.5, batchFirst: true, generator: new Generator(1), dropoutGenerator: new Generator(3));
        var dropped = attention.Run(x, x, x, averageAttnWeights: false).Weights!.ToArray<float>();
        attention.Eval();
        var evaluated = attention.Run(x, x, x, averageAttnWeights: false).Weights!;
        var kept = evaluated.ToArray<float>();
        int zeros = 0;
        for (int i = 0; i < dropped.Length; i++)
            if (dropped[i] == 0) zeros++;
            else Assert.Equal(2 * kept[i], dropped[i], 1e-6f);
        Assert.InRange(zeros, dropped.Length / 4, 3 * dropped.Length / 4);
        Assert.All(evaluated.Sum(-1).ToArray<float>(), r => Assert.Equal(1f, r, 1e-5f));
    }

    [Fact]
    public void AQueryWithNoKeyToAttendTo_GetsNaN_AsInPyTorch()
    {
        var m = new MultiheadAttention(4, 2, batchFirst: true, generator: new Generator(1));
        var x = Tensor.Randn(new Shape(1, 2, 4), new Generator(2));
        var allPadding = Tensor.Ones(new Shape(1, 2)).To(DType.Bool);
        Assert.All(m.Run(x, x, x, allPadding).Output.ToArray<float>(), v => Assert.True(float.IsNaN(v)));
    }
}
