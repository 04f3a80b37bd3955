using MiniDeep.Attacks;
using MiniDeep.Data;
using MiniDeep.Nn;
using MiniDeep.Optim;
using Xunit;

namespace MiniDeep.Tests.AttackTests;

public class GradientAttackTests
{
    // A small classifier trained for a few epochs on 2,000 SynthDigits images (pixels in [0, 1]).
    private static readonly Lazy<(Module Model, Tensor X, Tensor Y)> Trained = new(() =>
    {
        var data = SynthDigits.Load(5, 2000, 500);
        var g = new Generator(2);
        var model = new Sequential(new Flatten(), new Linear(784, 64, generator: g), Activations.ReLU(), new Linear(64, 10, generator: g));
        Trainer.Fit(model, new Adam(model.Parameters(), 3e-3), new DataLoader(data.Train, 64, shuffle: true, seed: 2), 6);
        return (model, data.Test.X.Narrow(0, 0, 200), data.Test.Y.Narrow(0, 0, 200));
    });

    private static double Loss(Module m, Tensor x, Tensor y) { using var _ = Autograd.NoGrad(); m.Eval(); return Losses.CrossEntropy(m.Forward(x), y).Item(); }
    private static double Error(Module m, Tensor x, Tensor y) { using var _ = Autograd.NoGrad(); m.Eval(); return 1 - (m.Forward(x).ArgMax(1) == y).Float().Mean().Item(); }

    [Fact]
    public void Fgsm_StaysInTheBallAndTheBox_RaisesLossAndError_AndLeavesParameterGradientsAlone()
    {
        var (model, x, y) = Trained.Value;
        model.ZeroGrad();
        var adv = GradientAttacks.Fgsm(model, x, y, 0.1);
        Assert.True((adv - x).Abs().Max().Item() <= 0.1 + 1e-6);
        Assert.InRange(adv.Min().Item(), 0, 1);
        Assert.InRange(adv.Max().Item(), 0, 1);
        Assert.True(Loss(model, adv, y) > Loss(model, x, y) + 0.5, $"loss {Loss(model, x, y):F3} -> {Loss(model, adv, y):F3}");
        Assert.True(Error(model, adv, y) > Error(model, x, y) + 0.2, $"error {Error(model, x, y):P1} -> {Error(model, adv, y):P1}");
        Assert.All(model.Parameters(), p => Assert.Null(p.Grad));
    }

    [Fact]
    public void PgdLinf_IsAtLeastAsStrongAsFgsm_WithinTheSameBall()
    {
        var (model, x, y) = Trained.Value;
        var fgsm = GradientAttacks.Fgsm(model, x, y, 0.05);
        var pgd = GradientAttacks.PgdLinf(model, x, y, 0.05, steps: 10, stepSize: 0.01, randomStart: new Generator(1));
        Assert.True((pgd - x).Abs().Max().Item() <= 0.05 + 1e-6);
        Assert.True(Loss(model, pgd, y) >= Loss(model, fgsm, y), $"pgd {Loss(model, pgd, y):F3} vs fgsm {Loss(model, fgsm, y):F3}");
    }

    [Fact]
    public void PgdL2_StaysWithinTheL2BallOfEachExample()
    {
        var (model, x, y) = Trained.Value;
        var adv = GradientAttacks.PgdL2(model, x, y, 1.5, steps: 10, stepSize: 0.5);
        var norms = GradientAttacks.PerExampleNorm(adv - x).ToDoubleArray();
        Assert.All(norms, n => Assert.True(n <= 1.5 + 1e-4, $"L2 distance {n}"));
        Assert.True(Loss(model, adv, y) > Loss(model, x, y));
    }
}

public class RandomizerTests
{
    private static TensorDataset Data() => SynthDigits.Generate(3, 0, 400);

    [Fact]
    public void CorruptLabels_ReplacesAboutPWithUniformClasses()
    {
        var d = Data();
        Assert.Equal(d.Y.ToArray<int>(), Randomizers.CorruptLabels(d, 0, 10, new Generator(1)).Y.ToArray<int>());
        var all = Randomizers.CorruptLabels(d, 1, 10, new Generator(1)).Y.ToArray<int>();
        double agree = all.Zip(d.Y.ToArray<int>()).Count(p => p.First == p.Second) / 400.0;
        Assert.InRange(agree, 0.03, 0.2);   // about 1 in 10 by chance
        var half = Randomizers.CorruptLabels(d, 0.5, 10, new Generator(1)).Y.ToArray<int>();
        double kept = half.Zip(d.Y.ToArray<int>()).Count(p => p.First == p.Second) / 400.0;
        Assert.InRange(kept, 0.45, 0.65);   // 0.5 kept + 0.05 replaced by the same class
    }

    [Fact]
    public void ShuffledAndRandomPixels_KeepEachImagesValues_InADifferentPlace()
    {
        var d = Data();
        var perm = Tensor.RandPerm(784, new Generator(4)).ToArray<int>();
        var shuffled = Randomizers.ShufflePixels(d, perm);
        var x = d.X.Reshape(400, 784).ToArray<float>();
        var s = shuffled.X.Reshape(400, 784).ToArray<float>();
        Assert.Equal(x[perm[10]], s[10]);                                 // pixel 10 of image 0 comes from pixel perm[10]
        Assert.Equal(x[784 + perm[500]], s[784 + 500]);
        var random = Randomizers.RandomPixels(d, new Generator(5)).X.Reshape(400, 784);
        for (int i = 0; i < 3; i++)
            Assert.Equal(d.X.Reshape(400, 784).Select(0, i).ToArray<float>().Order(), random.Select(0, i).ToArray<float>().Order());
        Assert.NotEqual(d.X.ToArray<float>(), random.ToArray<float>());
    }

    [Fact]
    public void GaussianInputs_MatchThePerPixelStatistics()
    {
        var d = SynthDigits.Generate(3, 0, 4000);
        var gauss = Randomizers.GaussianInputs(d, new Generator(6));
        double m1 = d.X.Mean().Item(), m2 = gauss.X.Mean().Item();
        Assert.Equal(m1, m2, 2);
        var s1 = d.X.Std(0).Mean().Item();
        var s2 = gauss.X.Std(0).Mean().Item();
        Assert.InRange(s2, s1 * 0.95, s1 * 1.05);
    }
}

public class ProbeTests
{
    [Fact]
    public void GradientNormsAndActivationStatistics_AreRecordedPerLayer()
    {
        var g = new Generator(1);
        var model = new Sequential(new Linear(20, 16, generator: g), Activations.ReLU(), new Linear(16, 3, generator: g));
        var x = Tensor.Randn(new Shape(32, 20), g);
        using var recorder = Probes.RecordActivations(model);
        Losses.CrossEntropy(model.Forward(x), Tensor.Randint(0, 3, new Shape(32), g)).Backward();
        var norms = Probes.GradientNorms(model);
        Assert.Equal(new[] { "0.weight", "0.bias", "2.weight", "2.bias" }, norms.Keys);
        Assert.All(norms.Values, v => Assert.True(v > 0));
        Assert.Equal(Math.Sqrt(((Linear)model[0]).Weight.Grad!.Double().Square().Sum().Item()), norms["0.weight"], 12);
        Assert.Equal(new[] { "0", "1", "2" }, recorder.Latest.Keys.Order());
        Assert.InRange(recorder.Latest["1"].FractionZero, 0.2, 0.8);      // ReLU zeroes about half
        Assert.True(recorder.Latest["1"].Min >= 0);
    }
}

public class AttackInputCheckTests
{
    private static (Module Model, Tensor X, Tensor Y) Setup()
    {
        var g = new Generator(4);
        var model = new Sequential(new Flatten(), new Linear(4, 3, generator: g));
        return (model, Tensor.Rand(new Shape(2, 1, 2, 2), g), Tensor.FromArray(new[] { 0, 2 }));
    }

    [Fact]
    public void GradientAttacks_RefuseInputsOutsideTheBox_AnEmptyBox_AndBadSteps()
    {
        var (model, x, y) = Setup();
        var standardized = x * 4 - 2;
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => GradientAttacks.Fgsm(model, standardized, y, 0.1));
        Assert.Contains("Fgsm: inputs lie in", e.Message);
        Assert.Contains("outside the box [0, 1]", e.Message);
        // With the data's range given, the same inputs are attacked (and stay within it).
        var adv = GradientAttacks.Fgsm(model, standardized, y, 0.1, lo: -2, hi: 2);
        // Each of the 4 pixels moves by at most ε = 0.1, so an image moves by at most 0.2 in L2.
        Assert.InRange(GradientAttacks.PerExampleNorm(adv - standardized).Max().Item(), 0.01, 0.2 + 1e-6);
        Assert.Contains("is empty", Assert.Throws<ArgumentException>(() => GradientAttacks.Fgsm(model, x, y, 0.1, lo: 1, hi: 0)).Message);
        Assert.Contains("steps", Assert.Throws<ArgumentOutOfRangeException>(() => GradientAttacks.PgdLinf(model, x, y, 0.1, -1, 0.01)).Message);
        Assert.Contains("step size", Assert.Throws<ArgumentOutOfRangeException>(() => GradientAttacks.PgdL2(model, x, y, 0.1, 3, -0.01)).Message);
        Assert.Contains("PgdLinf: epsilon", Assert.Throws<ArgumentOutOfRangeException>(() => GradientAttacks.PgdLinf(model, x, y, double.NaN, 3, 0.01)).Message);
    }

    [Fact]
    public void MinimalPerturbation_RefusesAClassTheModelDoesNotHave_AndImagesOutsideTheBox()
    {
        var (model, x, _) = Setup();
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => MinimalPerturbation.Targeted(model, x, [1, 9]));
        Assert.Contains("class 9 of image 1 lies outside the model's 3 classes", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => MinimalPerturbation.Untargeted(model, x * 3, [0, 1]));
        Assert.Throws<ArgumentException>(() => MinimalPerturbation.Targeted(model, x, [1, 0], new MinimalPerturbationOptions { Lo = 1, Hi = 0 }));
    }

    [Fact]
    public void FoolingSearches_RefuseATargetOutsideTheClasses_AndAGoalNoProbabilityReaches()
    {
        var (model, x, _) = Setup();
        var start = x.Narrow(0, 0, 1);
        var oracle = new QueryOracle(model, labelsOnly: false, budget: 1_000);
        Assert.Contains("target 5 of image 0 lies outside the model's 3 classes",
            Assert.Throws<ArgumentOutOfRangeException>(() => FoolingImages.Nes(oracle, start, 5, new Generator(1))).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => FoolingImages.OnePlusLambda(oracle, start, -1, new Generator(1)));
        long spent = oracle.Queries;
        Assert.Contains("goal is a probability", Assert.Throws<ArgumentOutOfRangeException>(() =>
            FoolingImages.Nes(oracle, start, 1, new Generator(1), new NesOptions { Goal = 2 })).Message);
        Assert.Equal(spent, oracle.Queries);   // refused before asking the oracle anything
        Assert.Contains("target 4", Assert.Throws<ArgumentOutOfRangeException>(() => FoolingImages.GradientAscent(model, x, [1, 4], 3, 0.1)).Message);
    }

    [Fact]
    public void SubstituteTraining_RefusesBadOptions_BeforeTheFirstQuery()
    {
        var (model, x, _) = Setup();
        var oracle = new QueryOracle(model, labelsOnly: true);
        var substitute = new Sequential(new Flatten(), new Linear(4, 3, generator: new Generator(5)));
        foreach (var o in new[] { new SubstituteOptions { Tau = 0 }, new SubstituteOptions { Lambda = double.NaN }, new SubstituteOptions { BatchSize = 0 } })
            Assert.Throws<ArgumentException>(() => SubstituteTraining.Train(oracle, x, substitute, new Generator(6), o));
        Assert.Contains("SubstituteTraining: seeds lie in", Assert.Throws<ArgumentOutOfRangeException>(() => SubstituteTraining.Train(oracle, x * 3, substitute, new Generator(6))).Message);
        Assert.Equal(0, oracle.Queries);
    }
}
