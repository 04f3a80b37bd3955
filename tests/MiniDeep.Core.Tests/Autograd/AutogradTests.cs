using Xunit;
using MiniDeep.Nn;

namespace MiniDeep.Tests.Autodiff;

public class AutogradTests
{
    private static Tensor Param(params float[] v) => Tensor.FromArray(v).RequiresGrad_();

    [Fact]
    public void Backward_AccumulatesAcrossCalls()
    {
        var x = Param(1, 2, 3);
        (x * x).Sum().Backward();
        (x * x).Sum().Backward();
        // d/dx Σx² = 2x, twice
        Assert.Equal(new float[] { 4, 8, 12 }, x.Grad!.ToArray<float>());
    }

    [Fact]
    public void Backward_DiamondGraph_SumsBothPaths()
    {
        var x = Param(3);
        var a = x * 2;
        var b = x.Exp();
        (a * b).Sum().Backward();
        // y = 2x·eˣ, dy/dx = 2eˣ + 2x·eˣ = 2eˣ(1 + x) = 8e³
        Assert.Equal(8 * Math.Exp(3), x.Grad!.Item(), 3);
    }

    [Fact]
    public void Backward_ChainOfTenThousandOps_DoesNotOverflowTheStack()
    {
        var x = Param(1);
        var y = x;
        for (int i = 0; i < 10_000; i++) y = y * 1.0001f;
        y.Sum().Backward();
        Assert.Equal(Math.Pow(1.0001, 10_000), x.Grad!.Item(), 2);
    }

    [Fact]
    public void Backward_OnNonScalarWithoutGradient_SaysWhatToDo()
    {
        var y = Param(1, 2) * 2;
        var e = Assert.Throws<InvalidOperationException>(() => y.Backward());
        Assert.Contains("(2,)", e.Message);
        Assert.Contains(".Sum()", e.Message);
    }

    [Fact]
    public void Backward_WithExplicitUpstreamGradient_UsesIt()
    {
        var x = Param(1, 2);
        (x * 3).Backward(Tensor.FromArray(new float[] { 1, 10 }));
        Assert.Equal(new float[] { 3, 30 }, x.Grad!.ToArray<float>());
    }

    [Fact]
    public void Backward_OnTensorNotRequiringGrad_SaysWhy()
    {
        var y = Tensor.FromArray(new float[] { 1, 2 }).Sum();
        var e = Assert.Throws<InvalidOperationException>(() => y.Backward());
        Assert.Contains("does not require grad", e.Message);
        Assert.Contains("RequiresGrad = true", e.Message);
    }

    [Fact]
    public void Backward_SecondTimeThroughFreedGraph_Throws_UnlessRetained()
    {
        var x = Param(2);
        var y = (x * x).Sum();
        y.Backward();
        var e = Assert.Throws<InvalidOperationException>(() => y.Backward());
        Assert.Contains("retainGraph: true", e.Message);

        var x2 = Param(2);
        var y2 = (x2 * x2).Sum();
        y2.Backward(retainGraph: true);
        y2.Backward();
        Assert.Equal(8f, x2.Grad!.Item<float>());

        // Refused before anything runs: the new part's leaf gets no gradient from the failed pass.
        var h = x * x;
        h.Sum().Backward();
        var w = Param(3);
        Assert.Throws<InvalidOperationException>(() => (h * w).Sum().Backward());
        Assert.Null(w.Grad);
    }

    [Fact]
    public async Task NoGrad_RecordsNothing_AndFollowsAsyncCode()
    {
        var x = Param(1);
        Tensor? inside = null;
        async Task Work()
        {
            using (Autograd.NoGrad())
            {
                await Task.Yield();               // continue on another thread
                inside = x * 2;
                await Task.Delay(1);
                Assert.False(Autograd.IsGradEnabled);
            }
            Assert.True(Autograd.IsGradEnabled);
        }
        await Work();
        Assert.False(inside!.RequiresGrad);
        Assert.True((x * 2).RequiresGrad);
    }

    [Fact]
    public async Task NoGrad_InOneTask_DoesNotLeakIntoAnother()
    {
        var x = Param(1);
        using var started = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var t = Task.Run(() =>
        {
            using (Autograd.NoGrad()) { started.Set(); release.Wait(); }
        });
        started.Wait();
        bool recorded = (x * 2).RequiresGrad;
        release.Set();
        await t;
        Assert.True(recorded);
    }

    [Fact]
    public void Detach_CutsTheGraph()
    {
        var x = Param(3);
        var y = x.Detach() * x;
        y.Sum().Backward();
        // only the second factor is differentiated: d(c·x)/dx = c = 3
        Assert.Equal(3f, x.Grad!.Item<float>());
    }

    [Fact]
    public void Grad_ReturnsGradientsWithoutTouchingDotGrad()
    {
        var x = Param(1, 2);
        var y = (x * x * x).Sum();
        var g = Autograd.Grad(y, x);
        // d/dx Σx³ = 3x²
        Assert.Equal(new float[] { 3, 12 }, g.ToArray<float>());
        Assert.Null(x.Grad);
    }

    [Fact]
    public void Grad_WithRespectToAnIntermediate_Works()
    {
        var x = Param(1, 2);
        var h = x * 3;
        var y = (h * h).Sum();
        var g = Autograd.Grad(y, h);
        Assert.Equal(new float[] { 6, 12 }, g.ToArray<float>());   // 2h
    }

    // An identity whose backward rule counts its runs.
    private static Tensor Counted(Tensor x, int[] runs) => Autograd.CustomOp("counted", [x], xs => xs[0] * 1, (g, _, _) => { runs[0]++; return [g]; });

    [Fact]
    public void Grad_WithRespectToAnIntermediate_RunsNoRuleBelowIt_AndLeavesThatPartOfTheGraph()
    {
        var runs = new int[1];
        var x = Param(1, 2);
        var h = Counted(x, runs) * 3;
        var y = (h * h).Sum();
        var other = h.Sum();
        Assert.Equal(new float[] { 6, 12 }, Autograd.Grad(y, h).ToArray<float>());
        Assert.Equal(0, runs[0]);
        // What lies below h was not run, so it was not freed either: another pass can still go through it.
        other.Backward();
        Assert.Equal(1, runs[0]);
        Assert.Equal(new float[] { 3, 3 }, x.Grad!.ToArray<float>());
    }

    [Fact]
    public void Grad_WithRespectToOneInput_TellsRulesTheOtherNeedsNoGradient()
    {
        var asked = new List<(bool X, bool W)>();
        Tensor Mul(Tensor a, Tensor b) => Autograd.CustomOp("mul", [a, b], xs => xs[0] * xs[1], (g, xs, _) =>
        {
            asked.Add((Autograd.NeedsGrad(xs[0]), Autograd.NeedsGrad(xs[1])));
            return [Autograd.NeedsGrad(xs[0]) ? g * xs[1] : null, Autograd.NeedsGrad(xs[1]) ? g * xs[0] : null];
        });
        var x = Param(1, 2);
        var w = Param(3, 4);
        Assert.Equal(new float[] { 3, 4 }, Autograd.Grad([Mul(x, w).Sum()], [x])[0]!.ToArray<float>());
        Mul(x, w).Sum().Backward();
        Assert.Equal([(true, false), (true, true)], asked);
        Assert.Equal(new float[] { 1, 2 }, w.Grad!.ToArray<float>());
    }

    [Fact]
    public void DoubleBackward_ThroughADeepStackOfBatchNorms_RunsEachLayerOncePerPass()
    {
        // Batch norm's backward, when recorded, differentiates its definition with a Grad pass of its own.
        // That pass must stop at the layer's input: if it ran on down the network, every layer would rerun
        // all the layers below it, 2^depth runs in all.
        const int depth = 12;
        var runs = new int[1];
        var g = new Generator(3);
        var w = Tensor.Randn(new Shape(8, 8), g).RequiresGrad_();
        var h = Tensor.Randn(new Shape(16, 8), g);
        var bns = Enumerable.Range(0, depth).Select(_ => new BatchNorm1d(8)).ToArray();
        for (int i = 0; i < depth; i++) h = Counted(bns[i].Forward(h.MatMul(w)).Tanh(), runs);
        var loss = h.Square().Sum();
        var grad = Autograd.Grad([loss], [w], createGraph: true)[0]!;
        Assert.Equal(depth, runs[0]);
        var v = Tensor.Randn(new Shape(8, 8), g);
        var hv = Autograd.Grad([(grad * v).Sum()], [w])[0]!;
        Assert.Equal(2 * depth, runs[0]);
        Assert.True(hv.Abs().Sum().Item() > 0);
    }

    [Fact]
    public void Grad_OfUnusedInput_ThrowsUnlessAllowed()
    {
        var x = Param(1);
        var z = Param(1);
        var y = (x * 2).Sum();
        Assert.Throws<InvalidOperationException>(() => Autograd.Grad([y], [z], retainGraph: true));
        Assert.Null(Autograd.Grad([y], [z], allowUnused: true)[0]);
    }

    [Fact]
    public void Hook_CanInspectAndReplaceTheGradient()
    {
        var x = Param(1, 2, 3);
        var h = x * 2;
        Tensor? seen = null;
        h.RegisterHook(g => { seen = g; return g * Tensor.FromArray(new float[] { 1, 0, 1 }); });
        h.Sum().Backward();
        Assert.Equal(new float[] { 1, 1, 1 }, seen!.ToArray<float>());
        Assert.Equal(new float[] { 2, 0, 2 }, x.Grad!.ToArray<float>());
    }

    [Fact]
    public void Hook_OnLeaf_MasksItsGradient_AndDisposeRemovesIt()
    {
        var w = Param(1, 1);
        var handle = w.RegisterHook(g => g * 0);
        (w * 5).Sum().Backward();
        Assert.Equal(new float[] { 0, 0 }, w.Grad!.ToArray<float>());
        handle.Dispose();
        (w * 5).Sum().Backward();
        Assert.Equal(new float[] { 5, 5 }, w.Grad!.ToArray<float>());
    }

    [Fact]
    public void RetainGrad_KeepsAnIntermediateGradient()
    {
        var x = Param(2);
        var h = (x * 3).RetainGrad();
        (h * h).Sum().Backward();
        Assert.Equal(12f, h.Grad!.Item<float>());  // 2h = 12
    }

    [Fact]
    public void InPlaceUpdate_OfParameterWhileRecording_IsRefused()
    {
        var w = Param(1);
        Assert.Throws<InvalidOperationException>(() => w.AddInPlace(Tensor.Ones(1)));
        using (Autograd.NoGrad()) w.AddInPlace(Tensor.Ones(1), -0.5);
        Assert.Equal(0.5f, w.Item<float>());
    }

    [Fact]
    public void Backward_RefusesWhenAnInputWasModifiedInPlaceAfterUse()
    {
        var w = Param(1, 2);
        var x = Tensor.FromArray(new float[] { 3, 4 });
        var y = (w * x).Sum();                  // mul saved x to compute dw = g * x
        x.AddInPlace(Tensor.Ones(2));           // ... and x changes before Backward
        var e = Assert.Throws<InvalidOperationException>(() => y.Backward());
        Assert.Contains("'mul'", e.Message);
        Assert.Contains("modified in place", e.Message);

        // updating parameters after Backward, as optimizers do, is fine
        var w2 = Param(1, 2);
        var y2 = (w2 * x).Sum();
        y2.Backward();
        using (Autograd.NoGrad()) w2.AddInPlace(w2.Grad!, -0.1);
        (w2 * x).Sum().Backward();
        Assert.Equal(new float[] { 8, 10 }, w2.Grad!.ToArray<float>());
    }

    [Fact]
    public void Backward_RefusesWhenAnOutputWasModifiedInPlaceAfterTheOp()
    {
        // sigmoid's rule reads its output y (dy/dx = y(1 − y)); a detached alias shares y's storage and
        // may be written to. Unchecked, the gradient came out as 3·(1 − 3) = −6 per element.
        // The ops after the write see the new values, so only sigmoid's own check can tell.
        var w = Param(0, 0);
        var y = w.Sigmoid();
        y.Detach().Fill(3);
        var loss = (y * 1).Sum();
        var e = Assert.Throws<InvalidOperationException>(() => loss.Backward());
        Assert.Contains("'sigmoid': its output was modified in place", e.Message);
        Assert.Null(w.Grad);

        // The same under NoGrad, for exp (dy/dx = y).
        var w2 = Param(0, 0);
        var z = w2.Exp();
        using (Autograd.NoGrad()) z.MulInPlace(2);
        Assert.Contains("'exp': its output", Assert.Throws<InvalidOperationException>(() => z.Sum().Backward()).Message);
    }

    [Fact]
    public void AGradientOfAnotherShape_IsRefusedWhenAssigned()
    {
        var w = Param(1, 2, 3);
        var e = Assert.Throws<ShapeMismatchException>(() => w.Grad = Tensor.Ones(4));
        Assert.Contains("shape (4,)", e.Message);
        Assert.Contains("shape (3,)", e.Message);
        Assert.Null(w.Grad);
        w.Grad = Tensor.Ones(3);
        Assert.Equal(new float[] { 1, 1, 1 }, w.Grad.ToArray<float>());
    }

    [Fact]
    public void DoubleBackward_GivesExactHessianVectorProduct()
    {
        // f(x) = Σ xᵢ³ + x₀x₁ ;  ∇f = 3x² + (x₁, x₀, 0) ;  H = diag(6x) + [[0,1,0],[1,0,0],[0,0,0]]
        var x = Tensor.FromArray(new double[] { 1, -2, 0.5 }).RequiresGrad_();
        var v = Tensor.FromArray(new double[] { 0.3, 1, -1 });
        var f = (x * x * x).Sum() + x.Narrow(0, 0, 1).Sum() * x.Narrow(0, 1, 1).Sum();
        var g = Autograd.Grad(f, x, createGraph: true);
        var hv = Autograd.Grad((g * v).Sum(), x);
        var expected = new[] { 6 * 1 * 0.3 + 1, 6 * -2 * 1 + 0.3, 6 * 0.5 * -1 };
        Assert.Equal(expected, hv.ToArray<double>(), (a, b) => Math.Abs(a - b) < 1e-12);

        // and it agrees with a central difference of gradients, (∇f(x+εv) - ∇f(x-εv)) / 2ε
        double eps = 1e-5;
        double[] Grad(double[] at)
        {
            var xx = Tensor.FromArray(at).RequiresGrad_();
            var ff = (xx * xx * xx).Sum() + xx.Narrow(0, 0, 1).Sum() * xx.Narrow(0, 1, 1).Sum();
            return Autograd.Grad(ff, xx).ToArray<double>();
        }
        var xs = x.ToArray<double>();
        var vs = v.ToArray<double>();
        var gp = Grad(xs.Select((a, i) => a + eps * vs[i]).ToArray());
        var gm = Grad(xs.Select((a, i) => a - eps * vs[i]).ToArray());
        var fd = gp.Select((a, i) => (a - gm[i]) / (2 * eps)).ToArray();
        Assert.Equal(fd, hv.ToArray<double>(), (a, b) => Math.Abs(a - b) < 1e-6);
    }

    [Fact]
    public void CreateGraph_MakesDotGradDifferentiable()
    {
        var x = Tensor.FromArray(new double[] { 2 }).RequiresGrad_();
        (x * x * x).Sum().Backward(createGraph: true);
        var g = x.Grad!;             // 3x² = 12, with a graph
        Assert.True(g.RequiresGrad);
        var gg = Autograd.Grad(g.Sum(), x);
        Assert.Equal(12.0, gg.Item(), 12); // 6x
    }

    [Fact]
    public void RequiresGrad_OnIntegerTensor_IsRefused()
    {
        var i = Tensor.FromArray(new[] { 1, 2 });
        Assert.Throws<InvalidOperationException>(() => i.RequiresGrad = true);
    }

    [Fact]
    public void CustomOp_WithCorrectBackward_PassesGradCheck_AndWrongOneFails()
    {
        // cube(x) = x³ with dx = 3x²·g
        Tensor Cube(Tensor x, double factor) => Autograd.CustomOp("cube", [x],
            xs => xs[0] * xs[0] * xs[0],
            (g, xs, y) => [g * xs[0] * xs[0] * factor]);
        var input = TestData.Values([2, 3], 11);
        Assert.True(GradCheck.Check(xs => Cube(xs[0], 3), [input]).Passed);
        var bad = GradCheck.Check(xs => Cube(xs[0], 2.9), [input]);
        Assert.False(bad.Passed);
        Assert.Contains("analytic", bad.Failure);
    }

    [Fact]
    public void GradGradCheck_DetectsABackwardThatIsNotDifferentiable()
    {
        // A backward computed on detached values has the right first derivative but no second.
        Tensor Square(Tensor x) => Autograd.CustomOp("square_detached", [x],
            xs => xs[0] * xs[0],
            (g, xs, y) => [g * xs[0].Detach() * 2]);
        var input = TestData.Values([3], 5);
        Assert.True(GradCheck.Check(xs => Square(xs[0]), [input]).Passed);
        Assert.False(GradCheck.CheckSecondOrder(xs => Square(xs[0]), [input]).Passed);
    }
}

/// <summary>Backward recycles the gradient buffers it made once nothing holds them: whatever a caller
/// can still see must keep its values through later passes that reuse pooled buffers.</summary>
[Collection("threads")]
public class GradientRecyclingTests
{
    private const int N = 20_000;   // above the buffer pool's minimum length, so storages are pooled

    private static Tensor Leaf(ulong seed) => Tensor.Randn(new Shape(N), new Generator(seed)).RequiresGrad_();

    // Runs a few unrelated backward passes of the same size, so that recycled buffers get reused.
    private static void Churn()
    {
        for (int i = 0; i < 5; i++)
        {
            var a = Leaf(100 + (ulong)i);
            ((a * 3).Exp() * a + a.Square()).Sum().Backward();
        }
    }

    [Fact]
    public void AGradientSeenByAHook_KeepsItsValues()
    {
        var x = Leaf(1);
        var h = x * 2;
        Tensor? seen = null;
        using var _ = h.RegisterHook(g => { seen = g; return null; });
        (h.Square() * 0.5).Sum().Backward();
        var copy = seen!.ToArray<float>();
        Churn();
        Assert.Equal(copy, seen.ToArray<float>());
        Assert.Equal((x * 4).Detach().ToArray<float>(), x.Grad!.ToArray<float>());   // d/dx ½(2x)² = 4x
    }

    [Fact]
    public void GradientsReturnedByGrad_KeepTheirValues()
    {
        var x = Leaf(2);
        var y = ((x * x).Exp() * 0.1 + x).Sum();
        var gx = Autograd.Grad(y, x);
        var copy = gx.ToArray<float>();
        Churn();
        Assert.Equal(copy, gx.ToArray<float>());
    }

    [Fact]
    public void TwoLeavesGivenOneGradient_GetSeparateBuffers()
    {
        var a = Leaf(3);
        var b = Leaf(4);
        (a + b).Square().Sum().Backward();          // add hands the same gradient to a and b
        Assert.Equal(a.Grad!.ToArray<float>(), b.Grad!.ToArray<float>());
        using (Autograd.NoGrad()) a.Grad!.MulInPlace(0);
        Assert.NotEqual(0f, b.Grad!.ToArray<float>().Select(Math.Abs).Max());
        Churn();
        var expected = ((a + b) * 2).Detach().ToArray<float>();
        Assert.Equal(expected, b.Grad!.ToArray<float>());
    }

    [Fact]
    public void AUsedTwiceInput_GetsTheSumOfBothPaths()
    {
        var x = Leaf(5);
        (x * x + x).Sum().Backward();               // x feeds mul twice and add once
        var expected = (x * 2 + 1).Detach().ToArray<float>();
        var actual = x.Grad!.ToArray<float>();
        for (int i = 0; i < N; i++) Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-5f * (1 + Math.Abs(expected[i])), $"element {i}: {expected[i]} vs {actual[i]}");
    }
}

public class HookAndCaptureCheckTests
{
    [Fact]
    public void AHookReturningAnotherDtype_IsRefused()
    {
        var w = Tensor.Ones(2).RequiresGrad_();
        using var _ = w.RegisterHook(_ => Tensor.FromArray(new[] { 1, 2 }));
        Assert.Contains("int32", Assert.Throws<InvalidOperationException>(() => (w * 3).Sum().Backward()).Message);
    }

    [Fact]
    public void CapturingAStepThatComputesNoGradient_IsRefused()
    {
        var lin = new Linear(3, 2, generator: new Generator(1));
        var x = Tensor.Rand(new Shape(4, 3), new Generator(2));
        var e = Assert.Throws<InvalidOperationException>(() => StepCapture.Capture(lin.Parameters(), () => lin.Forward(x).Sum()));
        Assert.Contains("did it call Backward?", e.Message);
        // Without parameters a forward-only step is a legitimate capture.
        Assert.Equal(lin.Forward(x).Sum().Item(), StepCapture.Capture([], () => lin.Forward(x).Sum()).Replay().Item());
    }
}
