using MiniDeep.Optim;
using Xunit;

namespace MiniDeep.Tests.OptimTests;

/// <summary>Two steps of each optimizer on f(w) = ½ Σ w² (so the gradient is w itself), worked by hand.</summary>
public class OptimizerTests
{
    private static Tensor W(params double[] v) => Tensor.FromArray(v).RequiresGrad_();

    private static void Step(Optimizer opt, Tensor w)
    {
        opt.ZeroGrad();
        ((w * w).Sum() * 0.5).Backward();
        opt.Step();
    }

    private static void Close(double[] expected, Tensor t) =>
        Assert.Equal(expected, t.ToDoubleArray(), (a, b) => Math.Abs(a - b) < 1e-12);

    [Fact]
    public void Sgd_Plain() { var w = W(1, -2); var o = new Sgd([w], 0.1); Step(o, w); Close([0.9, -1.8], w); Step(o, w); Close([0.81, -1.62], w); }

    [Fact]
    public void Sgd_Momentum()
    {
        // v1 = g1 = 1; w1 = 1 - 0.1 = 0.9;  v2 = 0.9·1 + 0.9 = 1.8; w2 = 0.9 - 0.18 = 0.72
        var w = W(1); var o = new Sgd([w], 0.1, momentum: 0.9);
        Step(o, w); Close([0.9], w);
        Step(o, w); Close([0.72], w);
    }

    [Fact]
    public void Sgd_Nesterov()
    {
        // v1 = 1; step g + μv = 1.9 → w1 = 0.81;  v2 = 0.9 + 0.81 = 1.71; step 0.81 + 0.9·1.71 = 2.349 → w2 = 0.81 - 0.2349
        var w = W(1); var o = new Sgd([w], 0.1, momentum: 0.9, nesterov: true);
        Step(o, w); Close([0.81], w);
        Step(o, w); Close([0.81 - 0.2349], w);
    }

    [Fact]
    public void Sgd_WeightDecay()
    {
        // g = w + 0.5 w = 1.5 w → w1 = 1 - 0.15 = 0.85; w2 = 0.85·0.85
        var w = W(1); var o = new Sgd([w], 0.1, weightDecay: 0.5);
        Step(o, w); Close([0.85], w);
        Step(o, w); Close([0.85 * 0.85], w);
    }

    [Fact]
    public void Adam_WithBiasCorrection()
    {
        // step 1: m = 0.1 g, v = 0.001 g²; m̂ = g, v̂ = g² → update lr·g/(|g| + ε) ≈ lr·sign(g)
        var w = W(1, -2); var o = new Adam([w], lr: 0.1, eps: 1e-8);
        Step(o, w);
        Close([1 - 0.1 * 1 / (1 + 1e-8), -2 + 0.1 * 2 / (2 + 1e-8)], w);
        // step 2 (first coordinate): g = w1 = 0.9 - δ, with the running moments
        double w1 = 1 - 0.1 / (1 + 1e-8), g2 = w1;
        double m = 0.9 * 0.1 * 1 + 0.1 * g2, v = 0.999 * 0.001 * 1 + 0.001 * g2 * g2;
        double mhat = m / (1 - 0.81), vhat = v / (1 - 0.999 * 0.999);
        Step(o, w);
        Assert.Equal(w1 - 0.1 * mhat / (Math.Sqrt(vhat) + 1e-8), w.ToDoubleArray()[0], 12);
    }

    [Fact]
    public void AdamW_DecouplesWeightDecay()
    {
        // p ← p(1 - lr·λ) first, then the Adam step on the undecayed gradient
        var w = W(1); var o = new AdamW([w], lr: 0.1, weightDecay: 0.5);
        Step(o, w);
        Close([1 * (1 - 0.05) - 0.1 * 1 / (1 + 1e-8)], w);
        var a = W(1); var coupled = new Adam([a], lr: 0.1, weightDecay: 0.5);
        Step(coupled, a);
        Close([1 - 0.1 * 1.5 / (1.5 + 1e-8)], a);   // coupled: the decay is part of g, so Adam normalizes it away
    }

    [Fact]
    public void RmsProp_TwoSteps()
    {
        // v1 = 0.01 g², w1 = 1 - 0.01·1/(0.1 + ε);  v2 = 0.99 v1 + 0.01 w1²
        var w = W(1); var o = new RmsProp([w], lr: 0.01, alpha: 0.99, eps: 1e-8);
        Step(o, w);
        double w1 = 1 - 0.01 / (Math.Sqrt(0.01) + 1e-8);
        Close([w1], w);
        Step(o, w);
        double v2 = 0.99 * 0.01 + 0.01 * w1 * w1;
        Close([w1 - 0.01 * w1 / (Math.Sqrt(v2) + 1e-8)], w);
    }

    [Fact]
    public void ParameterGroups_HaveTheirOwnLearningRates()
    {
        var a = W(1); var b = W(1);
        var o = new Sgd([new ParamGroup([a], lr: 0.1), new ParamGroup([b], lr: 0.01)]);
        (((a * a).Sum() + (b * b).Sum()) * 0.5).Backward();
        o.Step();
        Assert.Equal(0.9, a.ToDoubleArray()[0], 12);
        Assert.Equal(0.99, b.ToDoubleArray()[0], 12);
        Assert.Throws<ArgumentException>(() => new Sgd([new ParamGroup([a], 0.1), new ParamGroup([a], 0.2)]));
    }

    [Fact]
    public void StateDict_RestoresTheOptimizerExactly()
    {
        var w = W(1, 2); var o = new Adam([w], lr: 0.1);
        Step(o, w);
        var saved = o.StateDict();
        var wCopy = W(w.ToDoubleArray());
        var o2 = new Adam([wCopy], lr: 0.1);
        o2.LoadStateDict(saved);
        Assert.Contains("0.0.exp_avg", saved.Keys);
        Step(o, w); Step(o2, wCopy);
        Assert.Equal(w.ToDoubleArray(), wCopy.ToDoubleArray());
    }

    [Fact]
    public void LoadStateDict_RefusesStateOfAnotherOptimizerOrShape_AndChangesNothing()
    {
        var w = W(1, 2);
        var sgd = new Sgd([w], lr: 0.1, momentum: 0.9);
        Step(sgd, w);
        var momentum = sgd.State[w]["momentum_buffer"].ToDoubleArray();
        var v = W(1, 2);
        var adam = new Adam([v], lr: 0.1);
        Step(adam, v);
        var adamState = adam.StateDict();

        // Adam's moments are not SGD's momentum: refused, where they used to be dropped and the momentum restarted.
        var e = Assert.Throws<ArgumentException>(() => sgd.LoadStateDict(adamState));
        Assert.Contains("Sgd keeps no state", e.Message);
        Assert.Contains("momentum_buffer", e.Message);
        Assert.Equal(momentum, sgd.State[w]["momentum_buffer"].ToDoubleArray());

        // A buffer of another shape (the state of another model), even one with a valid entry before it.
        var wrong = new Dictionary<string, Tensor>(adamState) { ["0.0.exp_avg_sq"] = Tensor.Zeros(new Shape(3), DType.Float64) };
        var before = adam.StateDict();
        var s = Assert.Throws<ShapeMismatchException>(() => adam.LoadStateDict(wrong));
        Assert.Contains("'0.0.exp_avg_sq' has shape (3,)", s.Message);
        Assert.Equal(before.Keys.Order(), adam.StateDict().Keys.Order());
        foreach (var (k, t) in before) Assert.Equal(t.ToDoubleArray(), adam.StateDict()[k].ToDoubleArray());

        // A step count that is not a count, and a group's learning rate missing.
        Assert.Throws<ArgumentException>(() => adam.LoadStateDict(new Dictionary<string, Tensor>(adamState) { ["0.0.step"] = Tensor.Scalar(1.5, DType.Float64) }));
        var noLr = new Dictionary<string, Tensor>(adamState);
        noLr.Remove("0.lr");
        Assert.Contains("'0.lr' is missing", Assert.Throws<ArgumentException>(() => adam.LoadStateDict(noLr)).Message);

        // Buffers of another floating dtype are converted to the parameter's, and training goes on as from the original.
        var f = Tensor.FromArray(new float[] { 1, 2 }).RequiresGrad_();
        var reference = new Adam([f], lr: 0.1);
        Step(reference, f);
        var asDouble = reference.StateDict().ToDictionary(p => p.Key, p => p.Value.Double());
        var g = Tensor.FromArray(f.ToArray<float>()).RequiresGrad_();
        var restored = new Adam([g], lr: 0.1);
        restored.LoadStateDict(asDouble);
        Assert.Equal(DType.Float32, restored.State[g]["exp_avg"].DType);
        Step(reference, f); Step(restored, g);
        Assert.Equal(f.ToArray<float>(), g.ToArray<float>());
    }

    [Fact]
    public void Hyperparameters_OutOfRange_AreRefused_NamingTheValue()
    {
        var w = W(1);
        Assert.Contains("learning rate", Assert.Throws<ArgumentOutOfRangeException>(() => new Sgd([w], lr: -0.1)).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new Adam([w], lr: double.NaN));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Sgd([w], 0.1, weightDecay: -1e-4));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Sgd([w], 0.1, momentum: -0.9));
        Assert.Contains("betas", Assert.Throws<ArgumentOutOfRangeException>(() => new Adam([w], betas: (1.0, 0.999))).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new AdamW([w], betas: (0.9, -0.1)));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Adam([w], eps: -1e-8));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RmsProp([w], alpha: 1.5));
        Assert.Contains("no parameters", Assert.Throws<ArgumentException>(() => new Adam(Array.Empty<Tensor>())).Message);
        var o = new Sgd([w], 0.1);
        Assert.Throws<ArgumentOutOfRangeException>(() => o.Groups[0].Lr = double.PositiveInfinity);
        Assert.Equal(0.1, o.Groups[0].Lr);
        // Schedules check their arguments before they set a rate: a zero period divided by zero, a zero length set NaN.
        Assert.Contains("stepSize", Assert.Throws<ArgumentOutOfRangeException>(() => new StepLr(o, 0)).Message);
        Assert.Contains("tMax", Assert.Throws<ArgumentOutOfRangeException>(() => new CosineLr(o, 0)).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new ExponentialLr(o, -0.5));
        Assert.Throws<ArgumentOutOfRangeException>(() => new LinearWarmup(o, -1));
        Assert.Contains("pctStart·totalSteps > 1", Assert.Throws<ArgumentOutOfRangeException>(() => new OneCycleLr(o, 3)).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new OneCycleLr(o, 100, pctStart: 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new OneCycleLr(o, 100, divFactor: 0));
        Assert.Contains("factor must lie in (0, 1)", Assert.Throws<ArgumentOutOfRangeException>(() => new ReduceLrOnPlateau(o, factor: 1)).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new ReduceLrOnPlateau(o, patience: -1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ReduceLrOnPlateau(o, minLr: double.NaN));
        Assert.Contains("NaN", Assert.Throws<ArgumentException>(() => new ReduceLrOnPlateau(o).Step(double.NaN)).Message);
        Assert.Equal(0.1, o.Groups[0].Lr);
    }

    [Fact]
    public void Schedules_GiveTheDocumentedFactors()
    {
        var w = W(1);
        var o = new Sgd([w], lr: 1);
        var step = new StepLr(o, stepSize: 2, gamma: 0.5);
        Assert.Equal(new[] { 1, 1, 0.5, 0.5, 0.25 }, Enumerable.Range(0, 5).Select(step.Factor));
        Assert.Equal(new[] { 1, 0.9, 0.81 }, Enumerable.Range(0, 3).Select(new ExponentialLr(o, 0.9).Factor), (x, y) => Math.Abs(x - y) < 1e-12);
        var cos = new CosineLr(o, tMax: 4, minFactor: 0.1);
        Assert.Equal(new[] { 1, 0.1 + 0.9 * (1 + Math.Cos(Math.PI / 4)) / 2, 0.55, 0.1 + 0.9 * (1 + Math.Cos(3 * Math.PI / 4)) / 2, 0.1, 0.1 },
            Enumerable.Range(0, 6).Select(cos.Factor), (x, y) => Math.Abs(x - y) < 1e-12);
        var warm = new LinearWarmup(o, warmupSteps: 4, after: t => Math.Pow(0.5, t));
        Assert.Equal(new[] { 0, 0.25, 0.5, 0.75, 1, 0.5, 0.25 }, Enumerable.Range(0, 7).Select(warm.Factor));
        // One cycle of 10 steps, peak at 0.3·10 − 1 = 2: up from 1/25 along half a cosine, down to 1/25/1e4 at step 9,
        // held one step more; a further step means the length was counted wrong.
        var cycle = new OneCycleLr(o, totalSteps: 10);
        double start = 1.0 / 25, end = start / 1e4;
        double Cos(double from, double to, double pct) => to + (from - to) * (1 + Math.Cos(Math.PI * pct)) / 2;
        Assert.Equal(new[] { start, Cos(start, 1, 0.5), 1, Cos(1, end, 1.0 / 7), Cos(1, end, 3.0 / 7), end, end },
            new[] { 0, 1, 2, 3, 5, 9, 10 }.Select(cycle.Factor), (x, y) => Math.Abs(x - y) < 1e-12);
        Assert.Contains("past the schedule's 10 steps", Assert.Throws<InvalidOperationException>(() => cycle.Factor(11)).Message);
        Assert.Equal(new[] { 0.1, 0.55, 1 }, Enumerable.Range(0, 3).Select(new OneCycleLr(o, 10, divFactor: 10, linear: true).Factor), (x, y) => Math.Abs(x - y) < 1e-12);
        // Step updates the group's learning rate
        var o2 = new Sgd([W(1)], lr: 0.2);
        var s2 = new StepLr(o2, 1, 0.5);
        s2.Step();
        Assert.Equal(0.1, o2.Groups[0].Lr, 12);
    }

    [Fact]
    public void GradClip_ByNormAndByValue()
    {
        var a = W(3); var b = W(4);
        a.Grad = Tensor.FromArray(new double[] { 3 });
        b.Grad = Tensor.FromArray(new double[] { 4 });
        double norm = GradClip.ClipGradNorm([a, b], 1);
        Assert.Equal(5, norm, 12);
        Assert.Equal(0.6, a.Grad!.Item(), 5);
        Assert.Equal(0.8, b.Grad!.Item(), 5);
        b.Grad = Tensor.FromArray(new double[] { -4 });
        GradClip.ClipGradValue([b], 0.5);
        Assert.Equal(-0.5, b.Grad!.Item());
    }
}
