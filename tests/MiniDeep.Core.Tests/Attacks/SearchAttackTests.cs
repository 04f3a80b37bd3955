using MiniDeep.Attacks;
using MiniDeep.Data;
using MiniDeep.Nn;
using MiniDeep.Optim;
using Xunit;

namespace MiniDeep.Tests.AttackTests;

/// <summary>A fixed linear two-class model, logits (0, w·x + b): its decision boundary is a known hyperplane.</summary>
internal sealed class Hyperplane : Module
{
    public Tensor W { get; }
    public double B { get; }

    public Hyperplane(int features, ulong seed)
    {
        W = Tensor.Randn(new Shape(features, 1), new Generator(seed));
        B = 0.3;
    }

    protected override Tensor ForwardImpl(Tensor x)
    {
        var z = x.Reshape(x.Size(0), -1).MatMul(W) + B;
        return Tensor.Concat([Tensor.ZerosLike(z), z], 1);
    }
}

public class MinimalPerturbationTests
{
    [Fact]
    public void Untargeted_OnALinearModel_FindsNearlyTheDistanceToTheHyperplane()
    {
        // For logits (0, w·x + b) the smallest L2 step that changes the class is |w·x + b| / ‖w‖,
        // as long as the box does not get in the way (points near the middle of [0, 1]).
        var model = new Hyperplane(16, 1);
        var x = Tensor.Rand(new Shape(20, 16), new Generator(2), 0.4, 0.6);
        var z = (x.MatMul(model.W) + model.B).ToDoubleArray();
        var labels = z.Select(v => v > 0 ? 1 : 0).ToArray();
        double wNorm = Math.Sqrt(model.W.Square().Sum().Item());
        var result = MinimalPerturbation.Untargeted(model, x, labels, new MinimalPerturbationOptions { SearchSteps = 10, Iterations = 150, LearningRate = 0.005 });
        Assert.Equal(1.0, result.SuccessRate);
        for (int i = 0; i < 20; i++)
        {
            double exact = Math.Abs(z[i]) / wNorm;
            double found = result.Rms[i] * Math.Sqrt(16);
            if (exact > 0.6) continue; // the box [0, 1] may force a longer path
            Assert.True(found >= exact - 1e-4, $"image {i}: found {found:F4} below the exact minimum {exact:F4}");
            Assert.True(found <= exact * 1.25 + 0.01, $"image {i}: found {found:F4}, exact minimum {exact:F4}");
            Assert.NotEqual(labels[i], result.Predicted[i]);
        }
        Assert.InRange(result.Adversarial.Min().Item(), 0, 1);
        Assert.InRange(result.Adversarial.Max().Item(), 0, 1);
    }

    [Fact]
    public void Targeted_ReachesTheTargetClass_WithSmallerDistortionThanFgsmNeeds()
    {
        var data = SynthDigits.Load(5, 2000, 200);
        var g = new Generator(3);
        var model = new Sequential(new Flatten(), new Linear(784, 32, generator: g), Activations.ReLU(), new Linear(32, 10, generator: g));
        Trainer.Fit(model, new Adam(model.Parameters(), 3e-3), new DataLoader(data.Train, 64, shuffle: true, seed: 3), 4);
        var x = data.Test.X.Narrow(0, 0, 40).Contiguous();
        var y = data.Test.Y.Narrow(0, 0, 40).ToArray<int>();
        var targets = y.Select(v => (v + 3) % 10).ToArray();
        model.ZeroGrad();
        var result = MinimalPerturbation.Targeted(model, x, targets, new MinimalPerturbationOptions { SearchSteps = 5, Iterations = 40 });
        Assert.True(result.SuccessRate >= 0.95, $"success {result.SuccessRate:P0}");
        for (int i = 0; i < 40; i++)
            if (result.Success[i]) Assert.Equal(targets[i], result.Predicted[i]);
        // Every pixel moved by ε = 0.1 is an RMS of 0.1; a minimal perturbation should be far smaller.
        Assert.True(result.MeanRms < 0.1, $"mean RMS {result.MeanRms:F3}");
        Assert.InRange(result.Adversarial.Min().Item(), 0, 1);
        Assert.All(model.Parameters(), p => Assert.Null(p.Grad));   // only the input was differentiated
    }

    [Fact]
    public void RejectsMismatchedShapes()
    {
        var model = new Hyperplane(4, 1);
        var ex = Assert.Throws<ShapeMismatchException>(() => MinimalPerturbation.Targeted(model, Tensor.Zeros(3, 4), [1, 0]));
        Assert.Contains("MinimalPerturbation", ex.Message);
    }
}

public class QueryOracleTests
{
    [Fact]
    public void CountsEveryImage_RefusesProbabilitiesWhenLabelOnly_AndEnforcesTheBudget()
    {
        var model = new Hyperplane(4, 1);
        var x = Tensor.Rand(new Shape(5, 4), new Generator(1));
        var oracle = new QueryOracle(model, labelsOnly: true, budget: 12);
        Assert.Equal(5, oracle.Labels(x).Length);
        Assert.Equal(5, oracle.Queries);
        Assert.Throws<InvalidOperationException>(() => oracle.Probabilities(x));
        oracle.Labels(x);
        Assert.Equal(10, oracle.Queries);
        Assert.Throws<QueryBudgetExceededException>(() => oracle.Labels(x));
        Assert.Equal(10, oracle.Queries);

        var scores = new QueryOracle(model, labelsOnly: false);
        var p = scores.Probabilities(x);
        Assert.Equal([5, 2], p.Shape.ToArray());
        Assert.All(p.Sum(1).ToDoubleArray(), s => Assert.Equal(1, s, 5));
    }
}

public class FoolingImageTests
{
    [Fact]
    public void GradientAscent_RaisesEveryTargetProbability_AndStaysInTheBox()
    {
        var model = new Hyperplane(16, 2);
        var start = Tensor.Rand(new Shape(2, 16), new Generator(3));
        var result = FoolingImages.GradientAscent(model, start, [0, 1], steps: 100, stepSize: 0.5, goal: 0.99);
        // The best the box allows: every pixel at the end of [0, 1] that pushes the logit the target's way.
        var w = model.W.ToDoubleArray();
        double zMin = model.B + w.Sum(v => Math.Min(v, 0)), zMax = model.B + w.Sum(v => Math.Max(v, 0));
        double[] best = [1 / (1 + Math.Exp(zMin)), 1 / (1 + Math.Exp(-zMax))];
        for (int c = 0; c < 2; c++)
            if (best[c] > 0.995) Assert.True(result.Reached[c], $"class {c}: p = {result.Confidence[c]:F4}, attainable {best[c]:F4}");
            else Assert.True(result.Confidence[c] > 0.9 * best[c], $"class {c}: p = {result.Confidence[c]:F4}, attainable {best[c]:F4}");
        Assert.InRange(result.Images.Min().Item(), 0, 1);
        Assert.InRange(result.Images.Max().Item(), 0, 1);
        Assert.All(result.Cost, c => Assert.InRange(c, 0, 100));
    }

    [Fact]
    public void Nes_ReachesTheGoal_FromProbabilitiesAlone_WithinItsQueryBudget()
    {
        var model = new Hyperplane(16, 4);
        var oracle = new QueryOracle(model, labelsOnly: false);
        var start = Tensor.Full(new Shape(1, 16), 0.5);
        var z = (start.MatMul(model.W) + model.B).Item();
        int target = z > 0 ? 0 : 1;   // the class the start is not
        var result = FoolingImages.Nes(oracle, start, target, new Generator(5), new NesOptions { Pairs = 10, StepSize = 0.05, Goal = 0.95, MaxQueries = 5000 });
        Assert.True(result.Reached[0], $"p = {result.Confidence[0]:F3}");
        Assert.Equal(oracle.Queries, result.Cost[0]);
        Assert.True(result.Cost[0] <= 5000);
    }

    [Fact]
    public void OnePlusLambda_NeverGetsWorse_AndStopsAtItsBudget()
    {
        var model = new Hyperplane(16, 6);
        var oracle = new QueryOracle(model, labelsOnly: false);
        var start = Tensor.Full(new Shape(1, 16), 0.5);
        double before = oracle.Probabilities(start).Select(1, 1).Item();
        var result = FoolingImages.OnePlusLambda(oracle, start, 1, new Generator(7), new EvolutionOptions { Children = 8, MaxQueries = 400, Goal = 1 });
        Assert.True(result.Confidence[0] >= before);
        Assert.False(result.Reached[0]);   // p stays below 1 here (the hyperplane's softmax does not saturate in 400 queries): the budget stops it
        Assert.InRange(result.Cost[0], 390, 401);
    }
}

public class SubstituteTrainingTests
{
    [Fact]
    public void LearnsTheOraclesLabels_FromFewSeeds_WithinTheQueryBudget()
    {
        var data = SynthDigits.Load(7, 3000, 600);
        var g = new Generator(4);
        var oracleModel = new Sequential(new Flatten(), new Linear(784, 64, generator: g), Activations.ReLU(), new Linear(64, 10, generator: g));
        Trainer.Fit(oracleModel, new Adam(oracleModel.Parameters(), 3e-3), new DataLoader(data.Train, 64, shuffle: true, seed: 4), 5);
        var oracle = new QueryOracle(oracleModel, labelsOnly: true, budget: 1000);
        var seeds = data.Test.X.Narrow(0, 0, 60).Contiguous();
        var substitute = new Sequential(new Flatten(), new Linear(784, 64, generator: g), Activations.ReLU(), new Linear(64, 10, generator: g));
        var result = SubstituteTraining.Train(oracle, seeds, substitute, new Generator(5),
            new SubstituteOptions { Augmentations = 4, MaxQueries = 1000, EpochsPerRound = 5 });
        Assert.Equal(960, result.TrainingSetSize);   // 60 · 2⁴
        Assert.Equal(960, result.Queries);
        Assert.Equal(5, result.Rounds);
        // Agreement with the oracle on held-out images: far above the 10% of chance.
        // Jacobian augmentation must pay: the same substitute trained as long on the 60 seeds alone agrees less.
        var plain = new Sequential(new Flatten(), new Linear(784, 64, generator: new Generator(4)), Activations.ReLU(), new Linear(64, 10, generator: new Generator(4)));
        SubstituteTraining.Train(new QueryOracle(oracleModel, labelsOnly: true), seeds, plain, new Generator(5),
            new SubstituteOptions { Augmentations = 0, EpochsPerRound = 25 });
        var held = data.Test.X.Narrow(0, 100, 400);
        using var _ = Autograd.NoGrad();
        var truth = oracleModel.Forward(held).ArgMax(1);
        var agree = (substitute.Forward(held).ArgMax(1) == truth).Float().Mean().Item();
        var agreePlain = (plain.Forward(held).ArgMax(1) == truth).Float().Mean().Item();
        Assert.True(agree > agreePlain && agree > 0.2, $"agreement {agree:P1} with augmentation, {agreePlain:P1} without");
    }

    [Fact]
    public void StopsAugmentingBeforeTheBudgetIsExceeded()
    {
        var model = new Hyperplane(16, 1);
        var oracle = new QueryOracle(model, labelsOnly: true, budget: 100);
        var seeds = Tensor.Rand(new Shape(20, 16), new Generator(1));
        var substitute = new Sequential(new Linear(16, 2, generator: new Generator(2)));
        var result = SubstituteTraining.Train(oracle, seeds, substitute, new Generator(3), new SubstituteOptions { Augmentations = 6, MaxQueries = 100, EpochsPerRound = 1 });
        Assert.Equal(80, result.TrainingSetSize);   // 20 → 40 → 80; 160 would need 80 more labels
        Assert.True(result.Queries <= 100);
    }
}
