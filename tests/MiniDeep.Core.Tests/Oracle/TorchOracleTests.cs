using System.Diagnostics;
using System.Text.Json.Nodes;
using MiniDeep.Geometry;
using MiniDeep.Nn;
using MiniDeep.Optim;
using Xunit;

namespace MiniDeep.Tests.OracleTests;

/// <summary>
/// PyTorch as an oracle for what an op, a loss, a layer, an optimizer or a schedule computes. The
/// gradient checks prove that each backward matches its own forward; they cannot see a forward that
/// computes the wrong thing (a variance with the wrong divisor, ε in the wrong place, padding counted
/// or not). Each case runs in MiniDeep (float32) and, on the same values, in PyTorch in float64
/// (<c>tests/oracle/torch_oracle.py</c>, one process for all cases), and the output and the gradients of
/// Σ out·u for a random u must agree to float32 accuracy. PyTorch comes from Debian's python3-torch,
/// which CI installs; elsewhere the cases are skipped when it is missing.
/// </summary>
public class TorchOracleTests
{
    // float32 against float64: a few ulps per op, compounded over a conv's taps or five optimizer steps.
    private const double Rtol = 1e-4, Atol = 1e-5;

    // Torch: Python that assigns `out` from the inputs (same names). Grad: the inputs whose gradients are
    // compared. MiniDeep: the same computation; a module case puts its own parameters into the
    // dictionary under the inputs' names, so their gradients are the ones read. Upstream = false: the
    // output (an optimizer's trajectory, a schedule) is compared but not differentiated.
    private sealed record Case(string Id, string Torch, Dictionary<string, Tensor> Inputs, string[] Grad,
        Func<Dictionary<string, Tensor>, Tensor> MiniDeep, bool Upstream = true);

    private static Tensor N(Generator g, params int[] shape) => Tensor.Randn(new Shape(shape), g);
    private static Tensor U(Generator g, double lo, double hi, params int[] shape) => Tensor.Rand(new Shape(shape), g, lo, hi);
    private static Tensor Labels(Generator g, int classes, int n) => Tensor.Randint(0, classes, new Shape(n), g);
    private static Tensor Probs(Generator g, int n, int c) => (N(g, n, c) * 2).Softmax(1);

    private static Case Unary(string id, string torch, Func<Tensor, Tensor> f, Tensor x) =>
        new(id, $"out = {torch}", new() { ["x"] = x }, ["x"], d => f(d["x"]));

    private static List<Case> Cases()
    {
        var g = new Generator(seed: 2026);
        var cases = new List<Case>
        {
            // Elementwise and activations.
            Unary("exp", "x.exp()", x => x.Exp(), N(g, 3, 5)),
            Unary("log", "x.log()", x => x.Log(), U(g, 0.2, 3, 3, 5)),
            Unary("sqrt", "x.sqrt()", x => x.Sqrt(), U(g, 0.2, 3, 3, 5)),
            Unary("sin", "x.sin()", x => x.Sin(), N(g, 3, 5)),
            Unary("cos", "x.cos()", x => x.Cos(), N(g, 3, 5)),
            Unary("abs", "x.abs()", x => x.Abs(), N(g, 3, 5)),
            Unary("pow 2.5", "x.pow(2.5)", x => x.Pow(2.5), U(g, 0.2, 3, 3, 5)),
            Unary("tanh", "x.tanh()", x => x.Tanh(), N(g, 3, 5)),
            Unary("sigmoid", "x.sigmoid()", x => x.Sigmoid(), N(g, 3, 5) * 3),
            Unary("relu", "F.relu(x)", x => x.Relu(), N(g, 3, 5)),
            Unary("leaky_relu 0.2", "F.leaky_relu(x, 0.2)", x => x.LeakyRelu(0.2), N(g, 3, 5)),
            Unary("softplus", "F.softplus(x)", x => x.Softplus(), N(g, 3, 5) * 3),
            Unary("gelu (erf)", "F.gelu(x)", x => x.Gelu(), N(g, 3, 5) * 2),
            Unary("softmax axis 1", "x.softmax(1)", x => x.Softmax(1), N(g, 4, 6) * 3),
            Unary("log_softmax axis 0", "x.log_softmax(0)", x => x.LogSoftmax(0), N(g, 4, 6) * 3),
            Unary("logsumexp axis 1", "x.logsumexp(1)", x => x.LogSumExp(1), N(g, 4, 6) * 3),

            // Kinks and ties, where the derivative is a convention: PyTorch's is taken at every kink.
            Unary("abs, relu, leaky_relu, clamp and sign at their kinks", "torch.cat([x.abs(), F.relu(x), F.leaky_relu(x, 0.1), x.clamp(-1, 1), x.sign()])",
                x => Tensor.Concat([x.Abs(), x.Relu(), x.LeakyRelu(0.1), x.Clamp(-1, 1), x.Sign()]), Tensor.FromArray(new[] { 0f, -1f, 1f, 2f, -0.5f })),
            new("maximum and minimum with ties", "out = torch.cat([torch.maximum(a, b), torch.minimum(a, b)])",
                new() { ["a"] = Tensor.FromArray(new[] { 1f, 2f, 3f, -1f }), ["b"] = Tensor.FromArray(new[] { 1f, 0f, 3f, 2f }) }, ["a", "b"],
                d => Tensor.Concat([Tensor.Maximum(d["a"], d["b"]), Tensor.Minimum(d["a"], d["b"])])),
            Unary("max over all elements with a tie (amax)", "x.amax()", x => x.Max(), Tensor.FromArray(new[] { 1f, 3f, 2f, 3f })),

            // Reductions.
            Unary("sum axes 0,2", "x.sum((0, 2))", x => x.Sum([0, 2]), N(g, 2, 3, 4)),
            Unary("mean axis 1 keepdim", "x.mean(1, keepdim=True)", x => x.Mean(1, keepDim: true), N(g, 2, 3, 4)),
            Unary("var axis 1 (unbiased)", "x.var(1)", x => x.Var(1), N(g, 3, 7)),
            Unary("var axis 1 correction 0", "x.var(1, unbiased=False)", x => x.Var(1, correction: 0), N(g, 3, 7)),
            Unary("std axis 0", "x.std(0)", x => x.Std(0), N(g, 5, 4)),
            Unary("max axis 1", "x.max(1).values", x => x.Max(1), N(g, 4, 6)),
            Unary("min all", "x.min()", x => x.Min(), N(g, 4, 6)),

            // Products.
            new("matmul, batched with broadcast", "out = a @ b", new() { ["a"] = N(g, 2, 3, 4), ["b"] = N(g, 4, 5) }, ["a", "b"],
                d => Tensor.MatMul(d["a"], d["b"])),
            new("linear", "out = F.linear(x, w, b)", new() { ["x"] = N(g, 6, 5), ["w"] = N(g, 3, 5), ["b"] = N(g, 3) }, ["x", "w", "b"],
                d => Tensor.Linear(d["x"], d["w"], d["b"])),
            new("conv2d: stride, padding, dilation, groups", "out = F.conv2d(x, w, b, stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2)",
                new() { ["x"] = N(g, 2, 4, 7, 6), ["w"] = N(g, 6, 2, 3, 2), ["b"] = N(g, 6) }, ["x", "w", "b"],
                d => Tensor.Conv2d(d["x"], d["w"], d["b"], stride: (2, 1), padding: (1, 2), dilation: (1, 2), groups: 2)),
            new("conv2d: one channel, padding 1", "out = F.conv2d(x, w, b, padding=1)",
                new() { ["x"] = N(g, 2, 1, 6, 6), ["w"] = N(g, 3, 1, 3, 3), ["b"] = N(g, 3) }, ["x", "w", "b"],
                d => Tensor.Conv2d(d["x"], d["w"], d["b"], padding: (1, 1))),
            new("conv1d: stride 2, padding 1, dilation 2, groups 2", "out = F.conv1d(x, w, b, stride=2, padding=1, dilation=2, groups=2)",
                new() { ["x"] = N(g, 2, 4, 11), ["w"] = N(g, 6, 2, 3), ["b"] = N(g, 6) }, ["x", "w", "b"],
                d => Tensor.Conv1d(d["x"], d["w"], d["b"], stride: 2, padding: 1, dilation: 2, groups: 2)),
            new("conv1d + relu, fused, padding 2", "out = F.relu(F.conv1d(x, w, b, padding=2))",
                new() { ["x"] = N(g, 3, 2, 8), ["w"] = N(g, 4, 2, 5), ["b"] = N(g, 4) }, ["x", "w", "b"],
                d => Tensor.Conv1dRelu(d["x"], d["w"], d["b"], padding: 2)),
            new("conv_transpose1d: stride 3, padding 1, output_padding 2", "out = F.conv_transpose1d(x, w, b, stride=3, padding=1, output_padding=2)",
                new() { ["x"] = N(g, 2, 3, 5), ["w"] = N(g, 3, 2, 4), ["b"] = N(g, 2) }, ["x", "w", "b"],
                d => Tensor.ConvTranspose1d(d["x"], d["w"], d["b"], stride: 3, padding: 1, outputPadding: 2)),
            Unary("max_pool1d: kernel 3, stride 2, padding 1", "F.max_pool1d(x, 3, 2, 1)", x => Tensor.MaxPool1d(x, 3, 2, 1), N(g, 2, 3, 9)),
            Unary("avg_pool1d: kernel 3, stride 2, padding 1 (counted)", "F.avg_pool1d(x, 3, 2, 1)", x => Tensor.AvgPool1d(x, 3, 2, 1), N(g, 2, 3, 9)),
            Unary("max_pool2d: kernel (3, 2), stride (2, 1), padding (1, 1)", "F.max_pool2d(x, (3, 2), (2, 1), (1, 1))",
                x => Tensor.MaxPool2d(x, (3, 2), (2, 1), (1, 1)), N(g, 2, 3, 7, 5)),
            Unary("max_pool2d: dilation 2", "F.max_pool2d(x, 2, 1, 0, dilation=2)",
                x => Tensor.MaxPool2d(x, (2, 2), (1, 1), (0, 0), (2, 2)), N(g, 1, 2, 6, 6)),
            Unary("avg_pool2d: padding counted", "F.avg_pool2d(x, 3, 2, 1)",
                x => Tensor.AvgPool2d(x, (3, 3), (2, 2), (1, 1)), N(g, 2, 3, 7, 6)),
            Unary("adaptive_avg_pool2d: 7×5 to 3×2, overlapping windows of unequal size", "F.adaptive_avg_pool2d(x, (3, 2))",
                x => Tensor.AdaptiveAvgPool2d(x, (3, 2)), N(g, 2, 3, 7, 5)),
            Unary("adaptive_avg_pool2d: 4×6 to 5×6, windows smaller than the output", "F.adaptive_avg_pool2d(x, (5, 6))",
                x => Tensor.AdaptiveAvgPool2d(x, (5, 6)), N(g, 1, 2, 4, 6)),
            Unary("adaptive_avg_pool2d: global", "F.adaptive_avg_pool2d(x, 1)",
                x => Tensor.AdaptiveAvgPool2d(x, (1, 1)), N(g, 2, 3, 5, 4)),
            new("conv_transpose2d: stride (2, 1), padding (1, 0), output_padding (1, 0), dilation (1, 2)",
                "out = F.conv_transpose2d(x, w, b, stride=(2, 1), padding=(1, 0), output_padding=(1, 0), dilation=(1, 2))",
                new() { ["x"] = N(g, 2, 3, 4, 5), ["w"] = N(g, 3, 2, 3, 2), ["b"] = N(g, 2) }, ["x", "w", "b"],
                d => Tensor.ConvTranspose2d(d["x"], d["w"], d["b"], (2, 1), (1, 0), (1, 0), (1, 2))),
            new("conv_transpose2d: groups 2, stride 2, padding 1", "out = F.conv_transpose2d(x, w, b, stride=2, padding=1, groups=2)",
                new() { ["x"] = N(g, 2, 4, 3, 3), ["w"] = N(g, 4, 3, 2, 3), ["b"] = N(g, 6) }, ["x", "w", "b"],
                d => Tensor.ConvTranspose2d(d["x"], d["w"], d["b"], (2, 2), (1, 1), groups: 2)),
            new("conv_transpose2d: output_padding 1 at stride 1, below the dilation 2", "out = F.conv_transpose2d(x, w, stride=1, output_padding=1, dilation=2)",
                new() { ["x"] = N(g, 1, 2, 4, 4), ["w"] = N(g, 2, 3, 3, 3) }, ["x", "w"],
                d => Tensor.ConvTranspose2d(d["x"], d["w"], null, (1, 1), (0, 0), (1, 1), (2, 2))),
            Unary("interpolate: nearest, scale_factor 2", "F.interpolate(x, scale_factor=2, mode='nearest')",
                x => Tensor.Interpolate(x, 2), N(g, 1, 2, 3, 4)),
            Unary("interpolate: nearest, 3×5 to 7×3", "F.interpolate(x, size=(7, 3), mode='nearest')",
                x => Tensor.Interpolate(x, (7, 3)), N(g, 2, 2, 3, 5)),
            Unary("interpolate: bilinear, 3×5 to 6×7, centres aligned", "F.interpolate(x, size=(6, 7), mode='bilinear', align_corners=False)",
                x => Tensor.Interpolate(x, (6, 7), UpsampleMode.Bilinear), N(g, 2, 2, 3, 5)),
            Unary("interpolate: bilinear, 5×7 down to 2×3, centres aligned", "F.interpolate(x, size=(2, 3), mode='bilinear', align_corners=False)",
                x => Tensor.Interpolate(x, (2, 3), UpsampleMode.Bilinear), N(g, 1, 2, 5, 7)),
            Unary("interpolate: bilinear, 3×4 to 5×9, corners aligned", "F.interpolate(x, size=(5, 9), mode='bilinear', align_corners=True)",
                x => Tensor.Interpolate(x, (5, 9), UpsampleMode.Bilinear, alignCorners: true), N(g, 1, 3, 3, 4)),
            Unary("unfold (im2col): kernel (2, 3), stride (2, 1), padding (1, 0), dilation (1, 2)", "F.unfold(x, (2, 3), dilation=(1, 2), padding=(1, 0), stride=(2, 1))",
                x => Tensor.Unfold(x, new WindowGeometry(3, 5, 7, 2, 3, 2, 1, 1, 0, 1, 2)), N(g, 2, 3, 5, 7)),
            Unary("fold (col2im), overlapping windows summed", "F.fold(x, (5, 6), (3, 2), stride=(1, 2), padding=(1, 0))",
                x => Tensor.Fold(x, new WindowGeometry(2, 5, 6, 3, 2, 1, 2, 1, 0, 1, 1)), N(g, 2, 2 * 3 * 2, 5 * 3)),
            new("gather along axis 1", "out = torch.gather(x, 1, i)", new() { ["x"] = N(g, 3, 4), ["i"] = Tensor.FromArray(new[] { 0, 3, 3, 1, 2, 0 }, 3, 2) }, ["x"],
                d => d["x"].Gather(1, d["i"])),
            Unary("sort along axis 1, descending (values)", "torch.sort(x, dim=1, descending=True, stable=True).values",
                x => x.Sort(1, descending: true).Values, N(g, 3, 6)),
            new("sort along axis 0 (indices)", "out = torch.sort(x, dim=0, stable=True).indices.double()", new() { ["x"] = N(g, 5, 3) }, [],
                d => d["x"].Sort(0).Indices, Upstream: false),
            Unary("topk 3 along axis 1 (values)", "torch.topk(x, 3, dim=1).values", x => x.TopK(3, 1).Values, N(g, 4, 7)),
            new("topk 2 smallest along axis 0 (indices)", "out = torch.topk(x, 2, dim=0, largest=False).indices.double()", new() { ["x"] = N(g, 6, 3) }, [],
                d => d["x"].TopK(2, 0, largest: false).Indices, Upstream: false),
            new("where(a > b, a, b²)", "out = torch.where(a > b, a, b * b)", new() { ["a"] = N(g, 3, 4), ["b"] = N(g, 3, 4) }, ["a", "b"],
                d => Tensor.Where(d["a"] > d["b"], d["a"], d["b"] * d["b"])),
            new("pow with a tensor exponent", "out = torch.pow(a, b)", new() { ["a"] = U(g, 0.3, 2, 3, 4), ["b"] = N(g, 3, 4) }, ["a", "b"],
                d => Tensor.Pow(d["a"], d["b"])),
            new("embedding", "out = F.embedding(i, w)", new() { ["i"] = Tensor.FromArray(new[] { 3, 0, 3, 5, 1, 2 }, 2, 3), ["w"] = N(g, 6, 4) }, ["w"],
                d => Tensor.Embedding(d["i"], d["w"])),

            // Losses.
            new("cross_entropy, mean", "out = F.cross_entropy(x, t)", new() { ["x"] = N(g, 6, 5) * 2, ["t"] = Labels(g, 5, 6) }, ["x"],
                d => Losses.CrossEntropy(d["x"], d["t"])),
            new("cross_entropy, sum, label_smoothing 0.1", "out = F.cross_entropy(x, t, reduction='sum', label_smoothing=0.1)",
                new() { ["x"] = N(g, 6, 5) * 2, ["t"] = Labels(g, 5, 6) }, ["x"],
                d => Losses.CrossEntropy(d["x"], d["t"], Reduction.Sum, labelSmoothing: 0.1)),
            new("cross_entropy, none", "out = F.cross_entropy(x, t, reduction='none')", new() { ["x"] = N(g, 6, 5) * 2, ["t"] = Labels(g, 5, 6) }, ["x"],
                d => Losses.CrossEntropy(d["x"], d["t"], Reduction.None)),
            new("cross_entropy, probability targets, label_smoothing 0.2", "out = F.cross_entropy(x, p, label_smoothing=0.2)",
                new() { ["x"] = N(g, 6, 5) * 2, ["p"] = Probs(g, 6, 5) }, ["x"],
                d => Losses.SoftCrossEntropy(d["x"], d["p"], labelSmoothing: 0.2)),
            new("cross_entropy, class weights", "out = F.cross_entropy(x, t, weight=w)",
                new() { ["x"] = N(g, 6, 5) * 2, ["t"] = Labels(g, 5, 6), ["w"] = U(g, 0.2, 3, 5) }, ["x"],
                d => Losses.CrossEntropy(d["x"], d["t"], weight: d["w"])),
            new("cross_entropy, ignore_index -100, label_smoothing 0.1", "out = F.cross_entropy(x, t, ignore_index=-100, label_smoothing=0.1)",
                new() { ["x"] = N(g, 6, 5) * 2, ["t"] = Tensor.FromArray(new[] { 3, -100, 0, 4, -100, 1 }) }, ["x"],
                d => Losses.CrossEntropy(d["x"], d["t"], labelSmoothing: 0.1, ignoreIndex: -100)),
            new("cross_entropy, weights, ignore_index and label_smoothing 0.2", "out = F.cross_entropy(x, t, weight=w, ignore_index=-1, label_smoothing=0.2)",
                new() { ["x"] = N(g, 6, 5) * 2, ["t"] = Tensor.FromArray(new[] { 2, 0, -1, 4, 4, 1 }), ["w"] = U(g, 0.2, 3, 5) }, ["x"],
                d => Losses.CrossEntropy(d["x"], d["t"], labelSmoothing: 0.2, weight: d["w"], ignoreIndex: -1)),
            new("cross_entropy, none, weights, a valid class ignored", "out = F.cross_entropy(x, t, weight=w, ignore_index=2, reduction='none', label_smoothing=0.3)",
                new() { ["x"] = N(g, 6, 5) * 2, ["t"] = Tensor.FromArray(new[] { 2, 0, 3, 2, 4, 1 }), ["w"] = U(g, 0.2, 3, 5) }, ["x"],
                d => Losses.CrossEntropy(d["x"], d["t"], Reduction.None, 0.3, d["w"], ignoreIndex: 2)),
            new("cross_entropy, probability targets, weights, label_smoothing 0.1", "out = F.cross_entropy(x, p, weight=w, label_smoothing=0.1)",
                new() { ["x"] = N(g, 6, 5) * 2, ["p"] = Probs(g, 6, 5), ["w"] = U(g, 0.2, 3, 5) }, ["x"],
                d => Losses.CrossEntropy(d["x"], d["p"], labelSmoothing: 0.1, weight: d["w"])),
            new("nll_loss, weights and ignore_index, sum", "out = F.nll_loss(x, t, weight=w, ignore_index=-100, reduction='sum')",
                new() { ["x"] = N(g, 6, 5).LogSoftmax(1), ["t"] = Tensor.FromArray(new[] { 1, -100, 4, 0, 0, -100 }), ["w"] = U(g, 0.2, 3, 5) }, ["x"],
                d => Losses.Nll(d["x"], d["t"], Reduction.Sum, d["w"], ignoreIndex: -100)),
            new("nll_loss, weights and ignore_index, mean", "out = F.nll_loss(x, t, weight=w, ignore_index=-100)",
                new() { ["x"] = N(g, 6, 5).LogSoftmax(1), ["t"] = Tensor.FromArray(new[] { 1, -100, 4, 0, 0, 3 }), ["w"] = U(g, 0.2, 3, 5) }, ["x"],
                d => Losses.Nll(d["x"], d["t"], weight: d["w"], ignoreIndex: -100)),
            new("nll_loss", "out = F.nll_loss(x, t)", new() { ["x"] = N(g, 6, 5).LogSoftmax(1), ["t"] = Labels(g, 5, 6) }, ["x"],
                d => Losses.Nll(d["x"], d["t"])),
            new("mse_loss", "out = F.mse_loss(x, y)", new() { ["x"] = N(g, 4, 3), ["y"] = N(g, 4, 3) }, ["x", "y"],
                d => Losses.Mse(d["x"], d["y"])),
            new("l1_loss, sum", "out = F.l1_loss(x, y, reduction='sum')", new() { ["x"] = N(g, 4, 3), ["y"] = N(g, 4, 3) }, ["x", "y"],
                d => Losses.L1(d["x"], d["y"], Reduction.Sum)),
            new("smooth_l1_loss, beta 0.5 (both sides of it)", "out = F.smooth_l1_loss(x, y, beta=0.5)", new() { ["x"] = N(g, 5, 4), ["y"] = N(g, 5, 4) }, ["x", "y"],
                d => Losses.SmoothL1(d["x"], d["y"], beta: 0.5)),
            new("smooth_l1_loss, beta 0 is l1, none", "out = F.smooth_l1_loss(x, y, beta=0.0, reduction='none')", new() { ["x"] = N(g, 3, 4), ["y"] = N(g, 3, 4) }, ["x", "y"],
                d => Losses.SmoothL1(d["x"], d["y"], Reduction.None, beta: 0)),
            new("huber_loss, delta 0.7", "out = F.huber_loss(x, y, delta=0.7)", new() { ["x"] = N(g, 5, 4), ["y"] = N(g, 5, 4) }, ["x", "y"],
                d => Losses.Huber(d["x"], d["y"], delta: 0.7)),
            new("binary_cross_entropy_with_logits", "out = F.binary_cross_entropy_with_logits(x, y)",
                new() { ["x"] = N(g, 4, 3) * 3, ["y"] = U(g, 0, 1, 4, 3) }, ["x", "y"],
                d => Losses.BceWithLogits(d["x"], d["y"])),
            new("binary_cross_entropy_with_logits, pos_weight, large logits", "out = F.binary_cross_entropy_with_logits(x, y, pos_weight=w)",
                new() { ["x"] = N(g, 4, 3) * 30, ["y"] = U(g, 0, 1, 4, 3), ["w"] = U(g, 0.5, 4, 3) }, ["x", "y"],
                d => Losses.BceWithLogits(d["x"], d["y"], posWeight: d["w"])),
            new("kl_div, batchmean", "out = F.kl_div(q, p, reduction='batchmean')",
                new() { ["q"] = N(g, 5, 4).LogSoftmax(1), ["p"] = Probs(g, 5, 4) }, ["q", "p"],
                d => Losses.KlDiv(d["q"], d["p"])),
            new("distillation: α T² KL + (1 − α) CE, T = 4", """
                T, a = 4.0, 0.3
                kl = F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction='batchmean')
                out = a * T * T * kl + (1 - a) * F.cross_entropy(s, y)
                """,
                new() { ["s"] = N(g, 6, 5) * 2, ["t"] = N(g, 6, 5) * 2, ["y"] = Labels(g, 5, 6) }, ["s"],
                d => Losses.Distillation(d["s"], d["t"], d["y"], temperature: 4, alpha: 0.3)),

            // Layers.
            new("layer_norm", "out = F.layer_norm(x, (6,), w, b, 1e-5)", new() { ["x"] = N(g, 4, 6) * 2 + 1, ["w"] = N(g, 6), ["b"] = N(g, 6) }, ["x", "w", "b"],
                d => WithParameters(new LayerNorm(6), d, m => (m.Weight, m.Bias)).Forward(d["x"])),
            new("group_norm: 2 groups of 2 channels, affine", "out = F.group_norm(x, 2, w, b, 1e-5)",
                new() { ["x"] = N(g, 3, 4, 3, 2) * 2 + 1, ["w"] = N(g, 4), ["b"] = N(g, 4) }, ["x", "w", "b"],
                d => WithParameters(new GroupNorm(2, 4), d, m => (m.Weight!, m.Bias!)).Forward(d["x"])),
            new("group_norm: (N, C, L), 3 groups of 2 channels, no affine, eps 0.1", "out = F.group_norm(x, 3, eps=0.1)",
                new() { ["x"] = N(g, 2, 6, 5) }, ["x"],
                d => Tensor.GroupNorm(d["x"], 3, eps: 0.1)),
            new("batch_norm1d on (N, C, L), training, and its running statistics", """
                rm, rv = torch.zeros(3), torch.ones(3)
                y = F.batch_norm(x, rm, rv, w, b, training=True)
                out = torch.cat([y.reshape(-1), rm, rv])
                """,
                new() { ["x"] = N(g, 4, 3, 5) * 2 + 1, ["w"] = N(g, 3), ["b"] = N(g, 3) }, ["x", "w", "b"],
                d =>
                {
                    var bn = WithParameters(new BatchNorm1d(3), d, m => (m.Weight, m.Bias));
                    var y = bn.Forward(d["x"]);
                    return Tensor.Concat([y.Reshape(-1), bn.RunningMean, bn.RunningVar]);
                }),
            new("batch_norm2d, training", "out = F.batch_norm(x, torch.zeros(3), torch.ones(3), w, b, training=True)",
                new() { ["x"] = N(g, 4, 3, 3, 2) * 2 + 1, ["w"] = N(g, 3), ["b"] = N(g, 3) }, ["x", "w", "b"],
                d => WithParameters(new BatchNorm2d(3), d, m => (m.Weight, m.Bias)).Forward(d["x"])),
            new("batch_norm2d: running statistics after two batches (unbiased variance, momentum 0.1)", """
                rm, rv = torch.zeros(3), torch.ones(3)
                F.batch_norm(x1, rm, rv, training=True)
                F.batch_norm(x2, rm, rv, training=True)
                out = torch.cat([rm, rv])
                """,
                new() { ["x1"] = N(g, 4, 3, 2, 2) * 2 + 1, ["x2"] = N(g, 4, 3, 2, 2) - 1 }, [],
                d =>
                {
                    var bn = new BatchNorm2d(3);
                    bn.Forward(d["x1"]); bn.Forward(d["x2"]);
                    return Tensor.Concat([bn.RunningMean, bn.RunningVar]);
                }, Upstream: false),
            new("batch_norm2d, evaluation with running statistics", "out = F.batch_norm(x, rm, rv, w, b, training=False)",
                new() { ["x"] = N(g, 2, 3, 2, 2), ["rm"] = N(g, 3), ["rv"] = U(g, 0.5, 2, 3), ["w"] = N(g, 3), ["b"] = N(g, 3) }, ["x", "w", "b"],
                d =>
                {
                    var bn = WithParameters(new BatchNorm2d(3), d, m => (m.Weight, m.Bias));
                    using (Autograd.NoGrad()) { bn.RunningMean.CopyFrom(d["rm"]); bn.RunningVar.CopyFrom(d["rv"]); }
                    bn.Eval();
                    return bn.Forward(d["x"]);
                }),
        };

        // Recurrent layers: PyTorch's own module running on the case's weights (its _flat_weights, the list
        // its forward reads; torch 1.13's functional_call does not reach them), so that the gradients of
        // every weight, the input and the initial state are compared.
        Case Recurrent(string id, string torchModule, string torchCall, Func<Module> make, Dictionary<string, Tensor> inputs,
            Func<Module, Dictionary<string, Tensor>, Tensor> run)
        {
            foreach (var (name, p) in make().NamedParameters()) inputs[name] = N(g, p.Shape.ToArray()) * 0.5;
            return new(id, $$"""
                m = {{torchModule}}
                m._flat_weights = [globals()[n] for n in m._flat_weights_names]
                {{torchCall}}
                """, inputs, [.. inputs.Keys], d => run(WithAllParameters(make(), d), d));
        }
        cases.Add(Recurrent("lstm: 2 layers, bidirectional, batch_first, initial state", "nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True)",
            "y, (hn, cn) = m(x, (h0, c0))\nout = torch.cat([y.reshape(-1), hn.reshape(-1), cn.reshape(-1)])",
            () => new Lstm(3, 4, numLayers: 2, batchFirst: true, bidirectional: true),
            new() { ["x"] = N(g, 2, 5, 3), ["h0"] = N(g, 4, 2, 4) * 0.5, ["c0"] = N(g, 4, 2, 4) * 0.5 },
            (m, d) =>
            {
                var (y, (hn, cn)) = ((Lstm)m).Run(d["x"], (d["h0"], d["c0"]));
                return Tensor.Concat([y.Reshape(-1), hn.Reshape(-1), cn.Reshape(-1)]);
            }));
        cases.Add(Recurrent("gru: no bias, sequence first, zero initial state", "nn.GRU(3, 5, bias=False)",
            "y, hn = m(x)\nout = torch.cat([y.reshape(-1), hn.reshape(-1)])",
            () => new Gru(3, 5, bias: false), new() { ["x"] = N(g, 6, 2, 3) },
            (m, d) =>
            {
                var (y, hn) = ((Gru)m).Run(d["x"]);
                return Tensor.Concat([y.Reshape(-1), hn.Reshape(-1)]);
            }));
        cases.Add(Recurrent("gru: 2 layers, bidirectional, unbatched, initial state", "nn.GRU(2, 3, num_layers=2, bidirectional=True)",
            "y, hn = m(x, h0)\nout = torch.cat([y.reshape(-1), hn.reshape(-1)])",
            () => new Gru(2, 3, numLayers: 2, bidirectional: true), new() { ["x"] = N(g, 4, 2), ["h0"] = N(g, 4, 3) * 0.5 },
            (m, d) =>
            {
                var (y, hn) = ((Gru)m).Run(d["x"], d["h0"]);
                return Tensor.Concat([y.Reshape(-1), hn.Reshape(-1)]);
            }));

        // Attention and Transformer layers: PyTorch's module run through functional_call on the case's
        // parameters (named as the module names them, dots as underscores), so that the gradients of
        // every parameter and input are compared. Bool masks travel as 0/1 floats. Dropout is 0, so
        // training mode computes what evaluation would.
        static string Py(string name) => name.Replace('.', '_');
        Case Attention(string id, string torchModule, string torchCall, Func<Module> make, Dictionary<string, Tensor> inputs, string[] inputGrads,
            Func<Module, Dictionary<string, Tensor>, Tensor> run)
        {
            var names = make().NamedParameters().Select(np => Py(np.Name)).ToArray();
            foreach (var (name, p) in make().NamedParameters()) inputs[Py(name)] = N(g, p.Shape.ToArray()) * 0.5;
            return new(id, $$"""
                m = {{torchModule}}
                p = {n: globals()[n.replace('.', '_')] for n, _ in m.named_parameters()}
                f = lambda *a, **k: torch.nn.utils.stateless.functional_call(m, p, a, k)
                {{torchCall}}
                """, inputs, [.. inputGrads, .. names], d =>
                {
                    var m = make();
                    foreach (var (name, p) in m.NamedParameters())
                    {
                        using (Autograd.NoGrad()) p.CopyFrom(d[Py(name)]);
                        d[Py(name)] = p;
                    }
                    return run(m, d);
                });
        }
        static Tensor Flat(params Tensor[] ts) => Tensor.Concat([.. ts.Select(t => t.Reshape(-1))]);
        var padding = Tensor.FromArray(new float[] { 0, 0, 0, 0, 0, 0, 1, 1 }, [2, 4]);   // the second sequence's last two keys are padding
        cases.Add(Attention("multi-head attention: self-attention, batch_first, key padding, averaged weights",
            "nn.MultiheadAttention(6, 2, batch_first=True)",
            "y, w = f(x, x, x, key_padding_mask=kpm.bool())\nout = torch.cat([y.reshape(-1), w.reshape(-1)])",
            () => new MultiheadAttention(6, 2, batchFirst: true), new() { ["x"] = N(g, 2, 4, 6), ["kpm"] = padding }, ["x"],
            (m, d) =>
            {
                var (y, w) = ((MultiheadAttention)m).Run(d["x"], d["x"], d["x"], d["kpm"].To(DType.Bool));
                return Flat(y, w!);
            }));
        cases.Add(Attention("multi-head attention: cross-attention, kdim and vdim, no bias, float mask, weights per head",
            "nn.MultiheadAttention(4, 2, bias=False, kdim=3, vdim=5)",
            "y, w = f(q, k, v, attn_mask=am, average_attn_weights=False)\nout = torch.cat([y.reshape(-1), w.reshape(-1)])",
            () => new MultiheadAttention(4, 2, bias: false, kdim: 3, vdim: 5),
            new() { ["q"] = N(g, 3, 2, 4), ["k"] = N(g, 5, 2, 3), ["v"] = N(g, 5, 2, 5), ["am"] = N(g, 3, 5) }, ["q", "k", "v", "am"],
            (m, d) =>
            {
                var (y, w) = ((MultiheadAttention)m).Run(d["q"], d["k"], d["v"], attnMask: d["am"], averageAttnWeights: false);
                return Flat(y, w!);
            }));
        cases.Add(Attention("multi-head attention: unbatched, causal, four heads of one feature",
            "nn.MultiheadAttention(4, 4)",
            "y, w = f(x, x, x, attn_mask=torch.ones(5, 5).triu(1).bool())\nout = torch.cat([y.reshape(-1), w.reshape(-1)])",
            () => new MultiheadAttention(4, 4), new() { ["x"] = N(g, 5, 4) }, ["x"],
            (m, d) =>
            {
                var (y, w) = ((MultiheadAttention)m).Run(d["x"], d["x"], d["x"], isCausal: true);
                return Flat(y, w!);
            }));
        cases.Add(Attention("multi-head attention: a mask per batch and head (N·H, L, S) with key padding",
            "nn.MultiheadAttention(6, 3, batch_first=True)",
            "y, w = f(q, kv, kv, key_padding_mask=kpm.bool(), attn_mask=am)\nout = torch.cat([y.reshape(-1), w.reshape(-1)])",
            () => new MultiheadAttention(6, 3, batchFirst: true),
            new() { ["q"] = N(g, 2, 3, 6), ["kv"] = N(g, 2, 4, 6), ["kpm"] = padding, ["am"] = N(g, 6, 3, 4) }, ["q", "kv", "am"],
            (m, d) =>
            {
                var (y, w) = ((MultiheadAttention)m).Run(d["q"], d["kv"], d["kv"], d["kpm"].To(DType.Bool), attnMask: d["am"]);
                return Flat(y, w!);
            }));
        cases.Add(Attention("transformer encoder layer: post-norm, ReLU, sequence first, key padding",
            "nn.TransformerEncoderLayer(6, 3, dim_feedforward=8, dropout=0.0)",
            "out = f(x, src_key_padding_mask=kpm.bool())",
            () => new TransformerEncoderLayer(6, 3, dimFeedforward: 8, dropout: 0), new() { ["x"] = N(g, 4, 2, 6), ["kpm"] = padding }, ["x"],
            (m, d) => ((TransformerEncoderLayer)m).Run(d["x"], srcKeyPaddingMask: d["kpm"].To(DType.Bool))));
        cases.Add(Attention("transformer encoder layer: pre-norm, GELU, batch_first, float mask",
            "nn.TransformerEncoderLayer(6, 2, dim_feedforward=10, dropout=0.0, activation='gelu', batch_first=True, norm_first=True, layer_norm_eps=1e-3)",
            "out = f(x, src_mask=am)",
            () => new TransformerEncoderLayer(6, 2, dimFeedforward: 10, dropout: 0, activation: "gelu", batchFirst: true, normFirst: true, layerNormEps: 1e-3),
            new() { ["x"] = N(g, 2, 5, 6), ["am"] = N(g, 5, 5) }, ["x", "am"],
            (m, d) => ((TransformerEncoderLayer)m).Run(d["x"], d["am"])));
        cases.Add(Attention("transformer encoder: two pre-norm layers and a final norm, causal",
            "nn.TransformerEncoder(nn.TransformerEncoderLayer(4, 2, dim_feedforward=6, dropout=0.0, batch_first=True, norm_first=True), 2, norm=nn.LayerNorm(4), enable_nested_tensor=False)",
            "out = f(x, mask=torch.ones(3, 3).triu(1).bool())",
            () => new TransformerEncoder(() => new TransformerEncoderLayer(4, 2, dimFeedforward: 6, dropout: 0, batchFirst: true, normFirst: true), 2, new LayerNorm(4)),
            new() { ["x"] = N(g, 2, 3, 4) }, ["x"],
            (m, d) => ((TransformerEncoder)m).Run(d["x"], isCausal: true)));
        cases.Add(Attention("transformer decoder layer: post-norm, causal target, memory key padding",
            "nn.TransformerDecoderLayer(6, 2, dim_feedforward=8, dropout=0.0)",
            "out = f(t, mem, tgt_mask=torch.ones(3, 3).triu(1).bool(), memory_key_padding_mask=kpm.bool())",
            () => new TransformerDecoderLayer(6, 2, dimFeedforward: 8, dropout: 0),
            new() { ["t"] = N(g, 3, 2, 6), ["mem"] = N(g, 4, 2, 6), ["kpm"] = padding }, ["t", "mem"],
            (m, d) => ((TransformerDecoderLayer)m).Run(d["t"], d["mem"], memoryKeyPaddingMask: d["kpm"].To(DType.Bool), tgtIsCausal: true)));
        cases.Add(Attention("transformer decoder layer: pre-norm, GELU, batch_first, float memory mask",
            "nn.TransformerDecoderLayer(4, 2, dim_feedforward=6, dropout=0.0, activation='gelu', batch_first=True, norm_first=True)",
            "out = f(t, mem, memory_mask=mm)",
            () => new TransformerDecoderLayer(4, 2, dimFeedforward: 6, dropout: 0, activation: "gelu", batchFirst: true, normFirst: true),
            new() { ["t"] = N(g, 2, 3, 4), ["mem"] = N(g, 2, 5, 4), ["mm"] = N(g, 3, 5) }, ["t", "mem", "mm"],
            (m, d) => ((TransformerDecoderLayer)m).Run(d["t"], d["mem"], memoryMask: d["mm"])));
        cases.Add(Attention("transformer: 2 encoder and 2 decoder layers, batch_first, square subsequent mask, source padding",
            "nn.Transformer(4, 2, num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=6, dropout=0.0, batch_first=True)",
            "out = f(src, tgt, tgt_mask=nn.Transformer.generate_square_subsequent_mask(3), src_key_padding_mask=kpm.bool(), memory_key_padding_mask=kpm.bool())",
            () => new Transformer(4, 2, 2, 2, dimFeedforward: 6, dropout: 0, batchFirst: true),
            new() { ["src"] = N(g, 2, 4, 4), ["tgt"] = N(g, 2, 3, 4), ["kpm"] = padding }, ["src", "tgt"],
            (m, d) => ((Transformer)m).Run(d["src"], d["tgt"], tgtMask: Transformer.GenerateSquareSubsequentMask(3),
                srcKeyPaddingMask: d["kpm"].To(DType.Bool), memoryKeyPaddingMask: d["kpm"].To(DType.Bool))));
        cases.Add(new("scaled dot-product attention: batched heads, bool mask, scale 0.3",
            "out = (((q @ k.transpose(-2, -1)) * 0.3).masked_fill(~keep.bool(), float('-inf')).softmax(-1)) @ v",
            new() { ["q"] = N(g, 2, 3, 4, 5), ["k"] = N(g, 2, 3, 6, 5), ["v"] = N(g, 2, 3, 6, 2),
                ["keep"] = Tensor.FromArray(new float[] { 1, 1, 0, 1, 1, 1, 1, 0, 1, 1, 0, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1 }, [4, 6]) },
            ["q", "k", "v"], d => Tensor.ScaledDotProductAttention(d["q"], d["k"], d["v"], d["keep"].To(DType.Bool), scale: 0.3)));

        // Optimizers: five steps on L(p) = Σ c·p² + Σ sin p from the same start. A large ε (0.1) in
        // Adam and RMSprop makes where ε sits in the update visible.
        const string Loss = "(c * p * p).sum() + p.sin().sum()";
        Tensor MiniLoss(Tensor p, Tensor c) => (c * p * p).Sum() + p.Sin().Sum();
        Case Optimizer(string id, string torchCtor, Func<Tensor, Optimizer> make)
        {
            return new(id, $"""
                p = p0.clone().requires_grad_()
                opt = {torchCtor}
                for _ in range(5):
                    opt.zero_grad()
                    ({Loss}).backward()
                    opt.step()
                out = p.detach()
                """, new() { ["p0"] = N(g, 7), ["c"] = U(g, 0.1, 2, 7) }, [],
                d =>
                {
                    var p = d["p0"].Clone().RequiresGrad_();
                    var opt = make(p);
                    for (int s = 0; s < 5; s++)
                    {
                        opt.ZeroGrad();
                        MiniLoss(p, d["c"]).Backward();
                        opt.Step();
                    }
                    return p.Detach();
                }, Upstream: false);
        }
        cases.Add(Optimizer("sgd", "torch.optim.SGD([p], lr=0.1)", p => new Sgd([p], lr: 0.1)));
        cases.Add(Optimizer("sgd: momentum 0.9, weight decay 0.05", "torch.optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.05)",
            p => new Sgd([p], lr: 0.1, momentum: 0.9, weightDecay: 0.05)));
        cases.Add(Optimizer("sgd: Nesterov", "torch.optim.SGD([p], lr=0.1, momentum=0.9, nesterov=True)",
            p => new Sgd([p], lr: 0.1, momentum: 0.9, nesterov: true)));
        cases.Add(Optimizer("adam: eps 0.1, weight decay 0.05", "torch.optim.Adam([p], lr=0.05, betas=(0.8, 0.9), eps=0.1, weight_decay=0.05)",
            p => new Adam([p], lr: 0.05, betas: (0.8, 0.9), eps: 0.1, weightDecay: 0.05)));
        cases.Add(Optimizer("adamw: decoupled weight decay 0.1", "torch.optim.AdamW([p], lr=0.05, weight_decay=0.1)",
            p => new AdamW([p], lr: 0.05, weightDecay: 0.1)));
        cases.Add(Optimizer("rmsprop: eps 0.1, momentum 0.5, weight decay 0.05", "torch.optim.RMSprop([p], lr=0.01, alpha=0.9, eps=0.1, momentum=0.5, weight_decay=0.05)",
            p => new RmsProp([p], lr: 0.01, alpha: 0.9, eps: 0.1, momentum: 0.5, weightDecay: 0.05)));

        // Schedules: the learning rate after each of 12 steps, from a base rate of 1.
        Case Schedule(string id, string torchCtor, Func<Optimizer, LrScheduler> make)
        {
            return new(id, $"""
                opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
                s = {torchCtor}
                lrs = [opt.param_groups[0]['lr']]
                for _ in range(12):
                    opt.step()
                    s.step()
                    lrs.append(opt.param_groups[0]['lr'])
                out = torch.tensor(lrs)
                """, new(), [],
                _ =>
                {
                    var opt = new Sgd([Tensor.Zeros(1).RequiresGrad_()], lr: 1.0);
                    var s = make(opt);
                    var lrs = new List<double> { opt.Groups[0].Lr };
                    for (int t = 0; t < 12; t++) { s.Step(); lrs.Add(opt.Groups[0].Lr); }
                    return Tensor.FromArray(lrs.ToArray());
                }, Upstream: false);
        }
        cases.Add(Schedule("StepLR: 3 steps, γ 0.5", "torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)", o => new StepLr(o, 3, 0.5)));
        cases.Add(Schedule("ExponentialLR: γ 0.8", "torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.8)", o => new ExponentialLr(o, 0.8)));
        cases.Add(Schedule("CosineAnnealingLR: T_max 12, floor 0.1", "torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=12, eta_min=0.1)",
            o => new CosineLr(o, 12, minFactor: 0.1)));
        cases.Add(Schedule("LinearLR warm-up: 4 steps from 0.25", "torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.25, total_iters=4)",
            o => new LinearWarmup(o, 4, startFactor: 0.25)));
        // 13 steps, so that the 12 taken by the case end on the last one (PyTorch overshoots one step later).
        cases.Add(Schedule("OneCycleLR: 13 steps, cosine", "torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=13, cycle_momentum=False)",
            o => new OneCycleLr(o, 13)));
        cases.Add(Schedule("OneCycleLR: 13 steps, linear, peak at 0.5, divisors 10 and 100",
            "torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=13, pct_start=0.5, div_factor=10, final_div_factor=100, anneal_strategy='linear', cycle_momentum=False)",
            o => new OneCycleLr(o, 13, pctStart: 0.5, divFactor: 10, finalDivFactor: 100, linear: true)));
        // The plateau rule: the rate after each reported metric.
        Case Plateau(string id, string torchArgs, double[] metrics, Func<Optimizer, ReduceLrOnPlateau> make) => new(id, $"""
            opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
            s = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, {torchArgs})
            lrs = []
            for m in [{string.Join(", ", metrics.Select(m => m.ToString("R", System.Globalization.CultureInfo.InvariantCulture)))}]:
                s.step(m)
                lrs.append(opt.param_groups[0]['lr'])
            out = torch.tensor(lrs)
            """, new(), [],
            _ =>
            {
                var opt = new Sgd([Tensor.Zeros(1).RequiresGrad_()], lr: 1.0);
                var s = make(opt);
                return Tensor.FromArray(metrics.Select(m => { s.Step(m); return opt.Groups[0].Lr; }).ToArray());
            }, Upstream: false);
        cases.Add(Plateau("ReduceLROnPlateau: min, relative threshold 0.05, patience 2, cooldown 1, floor 0.1",
            "mode='min', factor=0.5, patience=2, threshold=0.05, cooldown=1, min_lr=0.1",
            [10, 9.7, 9.2, 9.0, 8.9, 8.8, 5, 5, 4.9, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5], o => new ReduceLrOnPlateau(o, factor: 0.5, patience: 2, threshold: 0.05, cooldown: 1, minLr: 0.1)));
        cases.Add(Plateau("ReduceLROnPlateau: max, absolute threshold 0.01, patience 1",
            "mode='max', factor=0.3, patience=1, threshold=0.01, threshold_mode='abs'",
            [0.5, 0.6, 0.605, 0.61, 0.7, 0.69, 0.7, 0.715, 0.72, 0.72, 0.8, 0.79, 0.79], o => new ReduceLrOnPlateau(o, PlateauMode.Max, factor: 0.3, patience: 1, threshold: 0.01, absoluteThreshold: true)));

        // Clipping: the norm before clipping, then the clipped gradients.
        cases.Add(new("clip_grad_norm_: max norm 1", """
            a, b = a0.clone().requires_grad_(), b0.clone().requires_grad_()
            ((a * a).sum() * 3 + (b.sin() * 2).sum()).backward()
            n = torch.nn.utils.clip_grad_norm_([a, b], 1.0)
            out = torch.cat([n.reshape(1), a.grad.reshape(-1), b.grad])
            """, new() { ["a0"] = N(g, 2, 3), ["b0"] = N(g, 4) }, [],
            d =>
            {
                var a = d["a0"].Clone().RequiresGrad_();
                var b = d["b0"].Clone().RequiresGrad_();
                ((a * a).Sum() * 3 + (b.Sin() * 2).Sum()).Backward();
                double norm = GradClip.ClipGradNorm([a, b], 1.0);
                return Tensor.Concat([Tensor.FromArray(new[] { (float)norm }), a.Grad!.Reshape(-1), b.Grad!]);
            }, Upstream: false));
        // Second order: Hessian-vector products (double backward) of a cross-entropy, against PyTorch's
        // own double backward; the flat vector lists the parameters in order, each row-major.
        Case Hvp(string id, string torchLoss, Func<Dictionary<string, Tensor>, Tensor> loss, string[] parameters, Dictionary<string, Tensor> inputs)
        {
            int n = parameters.Sum(p => inputs[p].Numel);
            inputs["v"] = N(g, n);
            return new(id, $"""
                ps = [{string.Join(", ", parameters)}]
                for q in ps:
                    q.requires_grad_()
                grads = torch.autograd.grad({torchLoss}, ps, create_graph=True)
                flat = torch.cat([t.reshape(-1) for t in grads])
                out = torch.cat([t.reshape(-1) for t in torch.autograd.grad((flat * v).sum(), ps)])
                """, inputs, [],
                d =>
                {
                    var local = d.ToDictionary(kv => kv.Key, kv => parameters.Contains(kv.Key) ? kv.Value.Clone().RequiresGrad_() : kv.Value);
                    return Hessian.VectorProduct(() => loss(local), parameters.Select(p => local[p]).ToList(), d["v"]);
                }, Upstream: false);
        }
        cases.Add(Hvp("Hessian-vector product: tanh MLP, cross-entropy",
            "F.cross_entropy(F.linear(torch.tanh(F.linear(x, w1, b1)), w2, b2), y)",
            d => Losses.CrossEntropy(Tensor.Linear(Tensor.Linear(d["x"], d["w1"], d["b1"]).Tanh(), d["w2"], d["b2"]), d["y"]),
            ["w1", "b1", "w2", "b2"],
            new() { ["x"] = N(g, 6, 4), ["y"] = Labels(g, 3, 6), ["w1"] = N(g, 5, 4), ["b1"] = N(g, 5), ["w2"] = N(g, 3, 5), ["b2"] = N(g, 3) }));
        cases.Add(Hvp("Hessian-vector product: conv, softplus, max-pool, linear, cross-entropy",
            "F.cross_entropy(F.linear(F.max_pool2d(F.softplus(F.conv2d(x, w, b, padding=1)), 2).flatten(1), f), y)",
            d => Losses.CrossEntropy(Tensor.Linear(Tensor.MaxPool2d(Tensor.Conv2d(d["x"], d["w"], d["b"], padding: (1, 1)).Softplus(), (2, 2)).Flatten(1), d["f"]), d["y"]),
            ["w", "b", "f"],
            new() { ["x"] = N(g, 3, 1, 5, 5), ["y"] = Labels(g, 3, 3), ["w"] = N(g, 2, 1, 3, 3), ["b"] = N(g, 2), ["f"] = N(g, 3, 8) }));
        return cases;
    }

    // Every parameter of the module takes the case's value of the same name, and the case reads its gradients there.
    private static Module WithAllParameters(Module m, Dictionary<string, Tensor> d)
    {
        foreach (var (name, p) in m.NamedParameters())
        {
            using (Autograd.NoGrad()) p.CopyFrom(d[name]);
            d[name] = p;
        }
        return m;
    }

    // A module's parameters take the case's values, and the case reads their gradients.
    private static TModule WithParameters<TModule>(TModule m, Dictionary<string, Tensor> d, Func<TModule, (Tensor W, Tensor B)> pick) where TModule : Module
    {
        var (w, b) = pick(m);
        using (Autograd.NoGrad()) { w.CopyFrom(d["w"]); b.CopyFrom(d["b"]); }
        d["w"] = w;
        d["b"] = b;
        return m;
    }

    public static TheoryData<string> Ids() => new(Cases().Select(c => c.Id));

    [Theory]
    [MemberData(nameof(Ids))]
    public void AgreesWithPyTorch(string id)
    {
        var reference = Reference.Value;
        if (reference.Problem is not null)
        {
            if (Environment.GetEnvironmentVariable("CI") == "true")
                Assert.Fail($"CI must have PyTorch (apt-get install python3-torch): {reference.Problem}");
            Assert.Skip($"PyTorch is not available: {reference.Problem}");
        }
        var c = reference.Cases.Single(x => x.Id == id);
        var r = reference.Results![id]!.AsObject();
        Assert.True(r["error"] is null, $"{id}: PyTorch failed: {r["error"]}");

        var inputs = c.Inputs.ToDictionary(kv => kv.Key, kv => c.Grad.Contains(kv.Key) ? kv.Value.Clone().RequiresGrad_() : kv.Value);
        var outT = c.MiniDeep(inputs);
        Assert.Equal(r["shape"]!.AsArray().Select(v => (int)v!).ToArray(), outT.Dims);
        Compare(id, "output", outT, r["out"]!.AsArray());
        if (!c.Upstream) return;
        // The random weights u of Σ out·u come from the oracle, so both sides differentiate the same sum.
        var upstream = r["upstream"]!.AsArray().Select(v => (float)(double)v!).ToArray();
        outT.Backward(Tensor.FromArray(upstream, outT.Dims, device: null));   // this overload keeps a rank-0 shape
        foreach (var name in c.Grad)
        {
            var expected = r["grads"]![name];
            Assert.True(expected is not null, $"{id}: PyTorch computed no gradient for {name}");
            Assert.True(inputs[name].Grad is not null, $"{id}: MiniDeep computed no gradient for {name}");
            Compare(id, $"gradient of {name}", inputs[name].Grad!, expected!.AsArray());
        }
    }

    private static void Compare(string id, string what, Tensor actual, JsonArray expected)
    {
        var a = actual.Double().ToArray<double>();
        Assert.Equal(expected.Count, a.Length);
        for (int i = 0; i < a.Length; i++)
        {
            double e = (double)expected[i]!;
            Assert.True(Math.Abs(a[i] - e) <= Atol + Rtol * Math.Abs(e),
                $"{id}, {what}, element {i}: MiniDeep {a[i]:R}, PyTorch {e:R} (tolerance {Atol} + {Rtol}·|PyTorch|)");
        }
    }

    private sealed record Run(List<Case> Cases, JsonObject? Results, string? Problem);

    // One Python process for every case: importing torch takes seconds.
    private static readonly Lazy<Run> Reference = new(() =>
    {
        var cases = Cases();
        var request = new JsonArray();
        foreach (var c in cases)
        {
            var inputs = new JsonObject();
            foreach (var (name, t) in c.Inputs)
                inputs[name] = new JsonObject
                {
                    ["data"] = t.DType == DType.Int32
                        ? new JsonArray(t.ToArray<int>().Select(v => (JsonNode)v).ToArray())
                        : new JsonArray(t.Double().ToArray<double>().Select(v => (JsonNode)v).ToArray()),
                    ["shape"] = new JsonArray(t.Dims.Select(v => (JsonNode)v).ToArray()),
                    ["dtype"] = t.DType == DType.Int32 ? "int" : "float",
                    ["grad"] = c.Grad.Contains(name),
                };
            request.Add(new JsonObject { ["id"] = c.Id, ["code"] = c.Torch, ["inputs"] = inputs, ["upstream"] = c.Upstream });
        }
        string python = Environment.GetEnvironmentVariable("MINIDEEP_TORCH_PYTHON") ?? (File.Exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3");
        string script = Path.Combine(RepoRoot.Path, "tests", "oracle", "torch_oracle.py");
        try
        {
            using var p = Process.Start(new ProcessStartInfo(python, [script])
            {
                RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            })!;
            var stderr = p.StandardError.ReadToEndAsync();
            var stdout = p.StandardOutput.ReadToEndAsync();
            try
            {
                p.StandardInput.Write(request.ToJsonString());
                p.StandardInput.Close();
            }
            catch (IOException) { }   // the interpreter quit before reading (torch failed to import): its exit says why
            p.WaitForExit();
            if (p.ExitCode != 0)
                return new Run(cases, null, $"{python} {script} exited with {p.ExitCode}: {stderr.Result.Trim().Split('\n').LastOrDefault()}");
            return new Run(cases, JsonNode.Parse(stdout.Result)!["results"]!.AsObject(), null);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return new Run(cases, null, $"{python} could not be started: {e.Message}");
        }
    });
}
