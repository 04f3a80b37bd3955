using MiniDeep.Continual;
using MiniDeep.Data;
using MiniDeep.Nn;
using MiniDeep.Optim;
using Xunit;

namespace MiniDeep.Tests.ContinualTests;

public class TaskSequenceTests
{
    private static readonly ImageClassification Data = SynthDigits.Load(1, trainCount: 600, testCount: 200);

    [Fact]
    public void Permuted_FirstTaskIsTheData_OthersPermuteEveryImageAlike()
    {
        var tasks = TaskSequences.Permuted(Data, 3, 100, new Generator(2));
        Assert.Equal(3, tasks.Count);
        Assert.Equal(Data.Test.X.ToFloatArray(), tasks[0].Test.X.ToFloatArray());
        var plain = Data.Test.X.Reshape(200, 784).ToFloatArray();
        var permuted = tasks[1].Test.X.Reshape(200, 784).ToFloatArray();
        Assert.NotEqual(plain, permuted);
        // The same pixels, moved: each image keeps its multiset of values, and one permutation serves all images.
        for (int i = 0; i < 3; i++)
            Assert.Equal(plain.AsSpan(i * 784, 784).ToArray().Order(), permuted.AsSpan(i * 784, 784).ToArray().Order());
        Assert.Equal(Data.Test.Y.ToArray<int>(), tasks[1].Test.Y.ToArray<int>());
        Assert.Equal(100, tasks[2].Train.Count);
        Assert.Equal([100, 1, 28, 28], tasks[2].Train.X.Shape.ToArray());
    }

    [Fact]
    public void Split_RelabelsEachGroupFromZero()
    {
        var tasks = TaskSequences.Split(Data, [[0, 1], [7, 3]]);
        Assert.Equal(2, tasks.Count);
        var original = Data.Train.Y.ToArray<int>();
        Assert.Equal(original.Count(l => l is 7 or 3), tasks[1].Train.Count);
        Assert.Equal(original.Count(l => l == 7), tasks[1].Train.Y.ToArray<int>().Count(l => l == 0));
        Assert.All(tasks[0].Test.Y.ToArray<int>(), l => Assert.InRange(l, 0, 1));
        Assert.Throws<ArgumentException>(() => TaskSequences.Split(Data, [[0, 1], [1, 2]]));
    }

    [Fact]
    public void ValidationSets_AreHeldOutTrainingImages_AndLeaveTheTrainingDrawAlone()
    {
        // Images are told apart by the sum of their sorted pixel values (SynthDigits draws distinct images),
        // which a permutation of the pixels leaves unchanged to the bit.
        static HashSet<double> Keys(TensorDataset d)
        {
            var x = d.X.Reshape(d.Count, -1).ToFloatArray();
            int p = x.Length / d.Count;
            return [.. Enumerable.Range(0, d.Count).Select(i => x.AsSpan(i * p, p).ToArray().Order().Sum(v => (double)v))];
        }

        var plain = TaskSequences.Permuted(Data, 2, 100, new Generator(2));
        var held = TaskSequences.Permuted(Data, 2, 100, new Generator(2), validationPerTask: 50);
        for (int t = 0; t < 2; t++)
        {
            Assert.Null(plain[t].Validation);
            Assert.Equal(plain[t].Train.X.ToFloatArray(), held[t].Train.X.ToFloatArray());
            Assert.Equal(50, held[t].Validation!.Count);
            Assert.Empty(Keys(held[t].Train).Intersect(Keys(held[t].Validation!)));
        }
        // Task 2's validation images are permuted like its training images: the same multiset of pixel values as some training image of the data.
        var all = Keys(Data.Train);
        Assert.All(Keys(held[1].Validation!), k => Assert.Contains(k, all));

        var splitPlain = TaskSequences.Split(Data, [[0, 1], [2, 3]], 40, new Generator(5));
        var split = TaskSequences.Split(Data, [[0, 1], [2, 3]], 40, new Generator(5), validationPerTask: 20);
        for (int t = 0; t < 2; t++)
        {
            Assert.Equal(splitPlain[t].Train.X.ToFloatArray(), split[t].Train.X.ToFloatArray());
            Assert.Equal(20, split[t].Validation!.Count);
            Assert.All(split[t].Validation!.Y.ToArray<int>(), l => Assert.InRange(l, 0, 1));
            Assert.Empty(Keys(split[t].Train).Intersect(Keys(split[t].Validation!)));
        }
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => TaskSequences.Split(Data, [[0, 1]], 100, new Generator(5), validationPerTask: 100));
        Assert.Contains("classes 0/1", ex.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => TaskSequences.Split(Data, [[0, 1]], validationPerTask: 10));
        Assert.Throws<ArgumentOutOfRangeException>(() => TaskSequences.Permuted(Data, 2, 590, new Generator(2), validationPerTask: 20));
    }

    [Fact]
    public void MultiHead_UsesTheActiveHead()
    {
        var g = new Generator(3);
        var model = new MultiHead(new Linear(4, 5, generator: g), new Linear(5, 2, generator: g), new Linear(5, 3, generator: g));
        Assert.Equal(6, model.Parameters().Count);
        var x = Tensor.Randn(new Shape(2, 4), g);
        Assert.Equal([2, 2], model.Forward(x).Shape.ToArray());
        ((ITaskConditioned)model).ActiveTask = 1;
        Assert.Equal([2, 3], model.Forward(x).Shape.ToArray());
        Assert.Equal(2, model.Tasks);
        Assert.Throws<ArgumentOutOfRangeException>(() => model.ActiveTask = 2);
    }

    [Fact]
    public void ReplayBuffer_KeepsPerTaskExamples_AndSamplesOnlyThose()
    {
        var buffer = new ReplayBuffer(10, new Generator(4));
        Assert.Null(buffer.Sample(5));
        var a = new TensorDataset(Tensor.Full(new Shape(50, 3), 1), Tensor.FromArray(Enumerable.Repeat(1, 50).ToArray()));
        var b = new TensorDataset(Tensor.Full(new Shape(4, 3), 2), Tensor.FromArray(Enumerable.Repeat(2, 4).ToArray()));
        buffer.Add(0, a);
        buffer.Add(1, b);
        Assert.Equal(14, buffer.Count);
        var (x, y, tasks) = buffer.Sample(200)!.Value;
        Assert.Equal(200, tasks.Length);
        var labels = y.ToArray<int>();
        var firstColumn = x.Narrow(1, 0, 1).ToFloatArray();
        for (int i = 0; i < 200; i++) Assert.Equal(labels[i], (int)firstColumn[i]);
        Assert.All(Enumerable.Range(0, 200), i => Assert.Equal(labels[i] - 1, tasks[i]));
        // Both tasks are drawn, in proportion to what is stored (10 : 4).
        Assert.InRange(tasks.Count(t => t == 1), 30, 90);
    }
}

public class ConsolidationTests
{
    [Fact]
    public void ProximalStep_IsTheClosedForm_AndStaysStableWhereAGradientPenaltyDiverges()
    {
        var theta = Tensor.FromArray([3.0], 1).RequiresGrad_();
        var anchors = new QuadraticAnchors([theta]);
        using (Autograd.NoGrad()) theta.CopyFrom(Tensor.FromArray([1.0], 1));
        anchors.Consolidate([Tensor.FromArray([50.0], 1)]);      // θ* = 1, F = 50
        using (Autograd.NoGrad()) theta.CopyFrom(Tensor.FromArray([2.0], 1));
        var opt = new Sgd([theta], 0.1);
        const double lambda = 4;                                  // ηλF = 20: a gradient step would multiply θ − θ* by −19
        using (anchors.Attach(opt, lambda))
        {
            theta.Grad = Tensor.FromArray([0.0], 1);              // no task loss: only the anchor acts
            opt.Step();
        }
        // θ = (2 + 0.1·4·50·1) / (1 + 0.1·4·50) = 22 / 21: pulled towards θ* = 1, not past it.
        Assert.Equal(22.0 / 21, theta.ToDoubleArray()[0], 12);
        Assert.Equal(50 * Math.Pow(22.0 / 21 - 1, 2) / 2, anchors.Penalty(), 10);
    }

    [Fact]
    public void PenaltyTerm_IsTheDifferentiablePenalty_SummedOverTasks()
    {
        var theta = Tensor.FromArray([1.0, 2.0], 2).RequiresGrad_();
        var anchors = new QuadraticAnchors([theta]);
        anchors.Consolidate([Tensor.FromArray([2.0, 3.0], 2)]);   // θ*₁ = (1, 2)
        using (Autograd.NoGrad()) theta.CopyFrom(Tensor.FromArray([0.0, 4.0], 2));
        anchors.Consolidate([Tensor.FromArray([1.0, 0.5], 2)]);   // θ*₂ = (0, 4)
        using (Autograd.NoGrad()) theta.CopyFrom(Tensor.FromArray([3.0, 1.0], 2));
        const double lambda = 6;
        var term = anchors.PenaltyTerm(lambda);
        Assert.Equal(lambda * anchors.Penalty(), term.Item(), 10);
        term.Backward();
        // ∂/∂θ_i of (λ/2) Σ_t F_t,i (θ_i − θ*_t,i)² = λ Σ_t F_t,i (θ_i − θ*_t,i)
        double[] expected = [lambda * (2 * (3 - 1) + 1 * (3 - 0)), lambda * (3 * (1 - 2) + 0.5 * (1 - 4))];
        Assert.Equal(expected[0], theta.Grad!.ToDoubleArray()[0], 10);
        Assert.Equal(expected[1], theta.Grad!.ToDoubleArray()[1], 10);
        Assert.Throws<ArgumentOutOfRangeException>(() => anchors.PenaltyTerm(-1));
    }

    [Fact]
    public void PenaltyInTheLoss_DivergesWhereTheProximalStepHolds()
    {
        // θ* = 1, F = 50, η = 0.1, λ = 4: ηλF = 20, so each SGD step on the penalty multiplies θ − θ* by
        // 1 − 20 = −19, while the proximal step divides it by 1 + 20.
        (double Plain, double Proximal) After(int steps)
        {
            double[] ends = new double[2];
            for (int k = 0; k < 2; k++)
            {
                var theta = Tensor.FromArray([1.0], 1).RequiresGrad_();
                var anchors = new QuadraticAnchors([theta]);
                anchors.Consolidate([Tensor.FromArray([50.0], 1)]);
                using (Autograd.NoGrad()) theta.CopyFrom(Tensor.FromArray([2.0], 1));
                var opt = new Sgd([theta], 0.1);
                using (k == 1 ? anchors.Attach(opt, 4) : null)
                    for (int s = 0; s < steps; s++)
                    {
                        opt.ZeroGrad();
                        if (k == 0) anchors.PenaltyTerm(4).Backward(); else theta.Grad = Tensor.FromArray([0.0], 1);
                        opt.Step();
                    }
                ends[k] = theta.ToDoubleArray()[0] - 1;
            }
            return (ends[0], ends[1]);
        }
        var (plain, proximal) = After(3);
        Assert.Equal(-19.0 * -19 * -19, plain, 6);
        Assert.Equal(1 / (21.0 * 21 * 21), proximal, 12);
    }

    [Fact]
    public void ProximalStep_FollowsTheLearningRate_AndNewAnchors()
    {
        var theta = Tensor.FromArray([1.0], 1).RequiresGrad_();
        var anchors = new QuadraticAnchors([theta]);
        anchors.Consolidate([Tensor.FromArray([2.0], 1)]);       // θ* = 1, F = 2
        using (Autograd.NoGrad()) theta.CopyFrom(Tensor.FromArray([3.0], 1));
        var opt = new Sgd([theta], 0.5);
        using var attached = anchors.Attach(opt, 1);
        void Step() { theta.Grad = Tensor.FromArray([0.0], 1); opt.Step(); }
        Step();                                                   // c = 0.5: (3 + 0.5·2·1) / (1 + 0.5·2) = 2
        Assert.Equal(2.0, theta.ToDoubleArray()[0], 12);
        opt.Groups[0].Lr = 1.5;                                   // a scheduler's change: c = 1.5
        Step();                                                   // (2 + 3) / (1 + 3) = 1.25
        Assert.Equal(1.25, theta.ToDoubleArray()[0], 12);
        anchors.Consolidate([Tensor.FromArray([1.0], 1)]);       // a second anchor at 1.25, F = 1
        using (Autograd.NoGrad()) theta.CopyFrom(Tensor.FromArray([3.0], 1));
        Step();                                                   // (3 + 1.5·(2·1 + 1·1.25)) / (1 + 1.5·3)
        Assert.Equal((3 + 1.5 * 3.25) / 5.5, theta.ToDoubleArray()[0], 12);
    }

    [Fact]
    public void Penalty_SumsOverTasks_AndTheL2AnchorWeighsAllEntriesAlike()
    {
        var theta = Tensor.FromArray([1.0, 2.0], 2).RequiresGrad_();
        var anchors = new QuadraticAnchors([theta]);
        Assert.Equal(0, anchors.Penalty());
        anchors.Consolidate();                                    // θ* = (1, 2), F = 1
        using (Autograd.NoGrad()) theta.CopyFrom(Tensor.FromArray([0.0, 0.0], 2));
        anchors.Consolidate([Tensor.FromArray([2.0, 3.0], 2)]);   // θ* = (0, 0)
        using (Autograd.NoGrad()) theta.CopyFrom(Tensor.FromArray([1.0, 1.0], 2));
        double expected = (1 * 0 + 1 * 1 + 2 * 1 + 3 * 1) / 2.0;
        Assert.Equal(expected, anchors.Penalty(), 10);
        Assert.Equal(2, anchors.Tasks);
    }

    [Fact]
    public void Training_WithALargeLambda_KeepsTheParametersAtTheAnchor()
    {
        var g = new Generator(5);
        var model = new Linear(6, 3, generator: g, dtype: DType.Float64);
        var ps = model.Parameters();
        var anchors = new QuadraticAnchors(ps);
        var start = ps.Select(p => p.ToDoubleArray()).ToArray();
        anchors.Consolidate();
        var x = Tensor.Randn(new Shape(32, 6), g, dtype: DType.Float64);
        var y = Tensor.FromArray(Enumerable.Range(0, 32).Select(i => i % 3).ToArray());
        var opt = new Sgd(ps, 0.5);
        using (anchors.Attach(opt, 1e6))
            for (int s = 0; s < 50; s++) { opt.ZeroGrad(); Losses.CrossEntropy(model.Forward(x), y).Backward(); opt.Step(); }
        for (int k = 0; k < ps.Count; k++)
            Assert.All(ps[k].ToDoubleArray().Zip(start[k]), p => Assert.Equal(p.Second, p.First, 4));
        // λ = 0 lets it learn.
        using (anchors.Attach(opt, 0))
            for (int s = 0; s < 5; s++) { opt.ZeroGrad(); Losses.CrossEntropy(model.Forward(x), y).Backward(); opt.Step(); }
        Assert.True(anchors.Penalty() > 1e-3);
    }

    [Fact]
    public void FisherDiagonal_MatchesTheSoftmaxRegressionFormula()
    {
        // For logits Wx + b, E_y~p[(∂ log p_y/∂W_ck)²] = p_c(1 − p_c)·x_k².
        var g = new Generator(6);
        var model = new Linear(3, 4, generator: g, dtype: DType.Float64);
        var x1 = Tensor.FromArray([0.5, -1.0, 2.0], 1, 3);
        var x = Tensor.Concat(Enumerable.Repeat(x1, 4000).ToList());
        var fisher = Fisher.Diagonal(model.Forward, model.Parameters(), x, new Generator(7));
        double[] p;
        using (Autograd.NoGrad()) p = model.Forward(x1).Softmax(-1).ToDoubleArray();
        var w = fisher[0].ToDoubleArray();
        var xs = x1.ToDoubleArray();
        for (int c = 0; c < 4; c++)
            for (int k = 0; k < 3; k++)
            {
                double expected = p[c] * (1 - p[c]) * xs[k] * xs[k];
                Assert.InRange(w[c * 3 + k], 0.85 * expected, 1.15 * expected);
            }
        var b = fisher[1].ToDoubleArray();
        for (int c = 0; c < 4; c++) Assert.InRange(b[c], 0.85 * p[c] * (1 - p[c]), 1.15 * p[c] * (1 - p[c]));
    }
}

public class AccuracyMatrixTests
{
    [Fact]
    public void Summaries_FollowTheirDefinitions()
    {
        var r = new AccuracyMatrix(3);
        double[,] values = { { 0.9, 0.1, 0.1 }, { 0.6, 0.95, 0.1 }, { 0.5, 0.7, 0.92 } };
        for (int i = 0; i < 3; i++) for (int j = 0; j < 3; j++) r[i, j] = values[i, j];
        Assert.Equal((0.5 + 0.7 + 0.92) / 3, r.AverageAccuracy, 12);
        Assert.Equal(((0.5 - 0.9) + (0.7 - 0.95)) / 2, r.BackwardTransfer, 12);
        Assert.Equal(0.4, r.Forgetting(0), 12);
        double[] joint = [0.9, 0.9, 0.9], random = [0.5, 0.5, 0.5];
        double rho = ((0.5 - 0.5) / 0.4 - 1 + (0.7 - 0.5) / 0.4 - 1 + (0.92 - 0.5) / 0.4 - 1) / 3;
        Assert.Equal(rho, r.ForgettingRatio(joint, random), 12);
        Assert.Equal(rho, AccuracyMatrix.ForgettingRatio([0.5, 0.7, 0.92], joint, random), 12);
        Assert.Throws<ArgumentException>(() => AccuracyMatrix.ForgettingRatio([0.5, 0.7], joint, random));
        Assert.Equal(0.5, AccuracyMatrix.RandomStratified([0, 1, 0, 1]), 12);
        Assert.Equal(0.625, AccuracyMatrix.RandomStratified([0, 0, 0, 1]), 12);
    }
}

public class HatTests
{
    // Two hidden layers of 3 units; task 0's gates set by hand to (1, 0, 1) and (1, 1, 0).
    private static HatMlp WithTaskZeroHeld()
    {
        var net = new HatMlp(4, [3, 3], [2, 2], new Generator(11));
        var embeddings = net.Embeddings;
        using (Autograd.NoGrad())
        {
            embeddings[0].CopyFrom(Tensor.FromArray(new float[] { 6, -6, 6, 0, 0, 0 }, 2, 3));
            embeddings[1].CopyFrom(Tensor.FromArray(new float[] { 6, 6, -6, 0, 0, 0 }, 2, 3));
        }
        net.ActiveTask = 0;
        net.EndTask();
        return net;
    }

    [Fact]
    public void ConditionGradients_FreezesWeightsBetweenHeldUnits_AndLeavesTheRest()
    {
        var net = WithTaskZeroHeld();
        Assert.Equal([2.0 / 3, 2.0 / 3], net.UnitsInUse());
        net.ActiveTask = 1;
        var x = Tensor.Randn(new Shape(5, 4), new Generator(12));
        Losses.CrossEntropy(net.Forward(x), Tensor.FromArray([0, 1, 0, 1, 1])).Backward();
        var fc1 = net.NamedModules().Select(m => m.Module).OfType<Linear>().Take(2).ToList();   // the hidden layers, not the heads
        var before = fc1.Select(l => l.Weight.Grad!.ToFloatArray()).ToList();
        var biasBefore = fc1[0].Bias!.Grad!.ToFloatArray();
        net.ConditionGradients();
        var w1 = fc1[0].Weight.Grad!.ToFloatArray();     // (3, 4): rows 0 and 2 feed held units
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 4; j++)
                Assert.Equal(i == 1 ? before[0][i * 4 + j] : 0f, w1[i * 4 + j], 6);
        var w2 = fc1[1].Weight.Grad!.ToFloatArray();     // (3, 3): held where out ∈ {0, 1} and in ∈ {0, 2}
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++)
            {
                bool held = i is 0 or 1 && j is 0 or 2;
                Assert.Equal(held ? 0f : before[1][i * 3 + j], w2[i * 3 + j], 6);
            }
        var b1 = fc1[0].Bias!.Grad!.ToFloatArray();
        Assert.Equal([0f, biasBefore[1], 0f], b1);
    }

    [Fact]
    public void EmbeddingGradient_IsCompensatedForTheScale()
    {
        var net = new HatMlp(4, [3], [2], new Generator(13), sMax: 400);
        var e = net.Embeddings[0];
        net.Scale = 100;
        var x = Tensor.Randn(new Shape(5, 4), new Generator(14));
        Losses.CrossEntropy(net.Forward(x), Tensor.FromArray([0, 1, 0, 1, 1])).Backward();
        var raw = e.Grad!.ToDoubleArray();
        var values = e.ToDoubleArray();
        net.ConditionGradients();
        var compensated = e.Grad!.ToDoubleArray();
        for (int i = 0; i < values.Length; i++)
        {
            double factor = 400.0 / 100 * (Math.Cosh(Math.Clamp(100 * values[i], -50, 50)) + 1) / (Math.Cosh(values[i]) + 1);
            Assert.Equal(raw[i] * factor, compensated[i], Math.Abs(raw[i] * factor) * 1e-4 + 1e-9);
        }
    }

    [Fact]
    public void Regularizer_CountsTheNewTasksGatesOnFreeUnits()
    {
        var net = WithTaskZeroHeld();
        net.ActiveTask = 1;
        using var _ = Autograd.NoGrad();
        var gates = net.Gates().Select(g => g.ToDoubleArray()).ToArray();
        // Free units: layer 1 unit 1, layer 2 unit 2.
        Assert.Equal((gates[0][1] + gates[1][2]) / 2, net.Regularizer().Item(), 5);
    }

    // 200 random 8-dimensional inputs and a linear two-class task on them (the class of the larger of two projections).
    private static (Tensor X, Tensor Scores) LinearTask()
    {
        var g = new Generator(15);
        var x = Tensor.Randn(new Shape(200, 8), g);
        return (x, x.MatMul(Tensor.Randn(new Shape(8, 2), g)));
    }

    [Fact]
    public void LearningASecondTask_LeavesTheFirstTasksOutputs()
    {
        var (x, scores) = LinearTask();
        var labelsA = scores.ArgMax(1).To(DType.Int32);
        var labelsB = (scores * -1).ArgMax(1).To(DType.Int32);   // the opposite task
        var net = new HatMlp(8, [32, 32], [2, 2], new Generator(16));
        var watched = new List<(int Epoch, double Scale, bool Training)>();
        net.TrainTask(0, new DataLoader(new TensorDataset(x, labelsA), 20, shuffle: true, seed: 1), epochs: 20, lr: 0.2, c: 0.1,
            afterEpoch: e => watched.Add((e, net.Scale, net.IsTraining)));
        Assert.Equal(Enumerable.Range(0, 20), watched.Select(w => w.Epoch));
        Assert.All(watched, w => { Assert.Equal(net.SMax, w.Scale); Assert.False(w.Training); });
        net.ActiveTask = 0;
        Tensor before;
        using (Autograd.NoGrad()) before = net.Forward(x);
        net.TrainTask(1, new DataLoader(new TensorDataset(x, labelsB), 20, shuffle: true, seed: 2), epochs: 20, lr: 0.2, c: 0.1);
        net.ActiveTask = 0;
        using (Autograd.NoGrad())
        {
            var after = net.Forward(x);
            double change = (after - before).Abs().Max().Item(), scale = before.Abs().Max().Item();
            Assert.True(change < 1e-3 * scale, $"task 0's outputs moved by {change} (scale {scale})");
            double accA = (after.ArgMax(1).To(DType.Int32) == labelsA).To(DType.Float32).Mean().Item();
            Assert.True(accA > 0.9, $"task 0 accuracy {accA}");
            net.ActiveTask = 1;
            double accB = (net.Forward(x).ArgMax(1).To(DType.Int32) == labelsB).To(DType.Float32).Mean().Item();
            Assert.True(accB > 0.9, $"task 1 accuracy {accB}");
        }
    }

    [Fact]
    public void KeepBestOn_KeepsTheEpochWithTheLowestValidationLoss_AndFoldsItsGates()
    {
        var (x, scores) = LinearTask();
        var labels = scores.ArgMax(1).To(DType.Int32);
        // Validation with the labels swapped: learning the task makes it worse there, so an early epoch is kept.
        var swapped = new TensorDataset(x, Tensor.FromArray(labels.ToArray<int>().Select(l => 1 - l).ToArray()));
        (HatMlp Net, HatTaskResult Result) Train(int epochs, IDataset? keepBestOn, List<(double, double)>? watched = null)
        {
            var net = new HatMlp(8, [16, 16], [2, 2], new Generator(16));
            var result = net.TrainTask(0, new DataLoader(new TensorDataset(x, labels), 20, shuffle: true, seed: 1), epochs, lr: 0.2, c: 0.1,
                afterEpoch: watched is null ? null : _ => watched.Add(Trainer.Evaluate(net, swapped)), keepBestOn: keepBestOn);
            return (net, result);
        }
        var watched = new List<(double Loss, double Accuracy)>();
        var (kept, result) = Train(6, swapped, watched);
        // The history it returns is the evaluation a caller would have made after each epoch.
        Assert.Equal(watched, result.Validation);
        var losses = watched.Select(w => w.Loss).ToList();
        int best = losses.IndexOf(losses.Min()) + 1;
        int keptEpoch = result.KeptEpoch;
        Assert.Equal(best, keptEpoch);
        Assert.True(best < 6, $"validation losses {string.Join(", ", losses)}: the last epoch is the best, nothing to put back");
        // Each epoch anneals s the same way however many follow, so training for `best` epochs reaches the kept network.
        var (reference, referenceResult) = Train(best, null);
        Assert.Equal(best, referenceResult.KeptEpoch);   // without keepBestOn the last epoch is the one kept
        Assert.Empty(referenceResult.Validation);
        foreach (var (name, t) in reference.StateDict()) Assert.Equal(t.ToFloatArray(), kept.StateDict()[name].ToFloatArray());
        Assert.Equal(reference.UnitsInUse(), kept.UnitsInUse());
    }
}

public class VaeTests
{
    [Fact]
    public void Loss_IsReconstructionPlusKl_WithTheReparameterizedCode()
    {
        var vae = new Vae([1, 4, 4], 8, 3, new Generator(20));
        var x = Tensor.Rand(new Shape(5, 1, 4, 4), new Generator(21));
        double loss = vae.Loss(x, new Generator(22)).Item();
        // The same computation by hand, with the same noise draw.
        var (mu, logVar) = vae.Encode(x);
        var eps = Tensor.Randn(mu.Shape, new Generator(22));
        var z = mu + (logVar * 0.5).Exp() * eps;
        var p = vae.DecodeLogits(z).Sigmoid().ToDoubleArray();
        var xs = x.ToDoubleArray();
        double bce = -xs.Zip(p).Sum(t => t.First * Math.Log(t.Second) + (1 - t.First) * Math.Log(1 - t.Second)) / 5;
        var m = mu.ToDoubleArray();
        var lv = logVar.ToDoubleArray();
        double kl = -0.5 * m.Zip(lv).Sum(t => 1 + t.Second - t.First * t.First - Math.Exp(t.Second)) / 5;
        Assert.Equal(bce + kl, loss, 3);
    }

    [Fact]
    public void Training_LowersTheLoss_AndSamplesArePixelProbabilities()
    {
        var data = SynthDigits.Load(2, trainCount: 256, testCount: 10);
        var vae = new Vae([1, 28, 28], 64, 8, new Generator(23));
        var opt = new Adam(vae.Parameters(), 3e-3);
        var g = new Generator(24);
        double first = vae.Loss(data.Train.X, g).Item();
        for (int step = 0; step < 150; step++)
        {
            opt.ZeroGrad();
            vae.Loss(data.Train.X.Narrow(0, step * 32 % 256, 32), g).Backward();
            opt.Step();
        }
        double last = vae.Loss(data.Train.X, g).Item();
        Assert.True(last < 0.6 * first, $"VAE loss {first} → {last}");
        var samples = vae.Sample(7, new Generator(25));
        Assert.Equal([7, 1, 28, 28], samples.Shape.ToArray());
        Assert.True(samples.Min().Item() >= 0 && samples.Max().Item() <= 1);
    }

    [Fact]
    public void Dreams_AreLabelledByTheSolver()
    {
        var vae = new Vae([1, 4, 4], 8, 3, new Generator(26));
        var solver = new Sequential(new Flatten(), new Linear(16, 3, generator: new Generator(27)));
        var (x, y) = Vae.Dreams(vae, solver, 9, new Generator(28));
        using var _ = Autograd.NoGrad();
        Assert.Equal(solver.Forward(x).ArgMax(1).To(DType.Int32).ToArray<int>(), y.ToArray<int>());
        Assert.True(solver.IsTraining);
    }
}

public class ContinualInputCheckTests
{
    private static readonly ImageClassification Data = SynthDigits.Load(1, trainCount: 200, testCount: 100);

    [Fact]
    public void AccuracyMatrix_RefusesPercentagesAndNaN_AndTheRatioWithNoGapOverChance()
    {
        var r = new AccuracyMatrix(2);
        Assert.Contains("fraction in [0, 1], got 98.5", Assert.Throws<ArgumentOutOfRangeException>(() => r[1, 0] = 98.5).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => r[1, 0] = double.NaN);
        r[1, 0] = 1; r[1, 1] = 0;   // the ends of the range are accuracies
        Assert.Contains("joint accuracy 0.5 does not exceed", Assert.Throws<ArgumentException>(() => AccuracyMatrix.ForgettingRatio([0.6], [0.5], [0.5])).Message);
        Assert.Contains("the joint accuracy of task 0", Assert.Throws<ArgumentOutOfRangeException>(() => AccuracyMatrix.ForgettingRatio([0.6], [90.0], [0.5])).Message);
    }

    [Fact]
    public void ReplayBuffer_RefusesATaskTwice_ANegativeTask_AndExamplesOfAnotherShape_WhenAdded()
    {
        var buffer = new ReplayBuffer(5, new Generator(1));
        var a = new TensorDataset(Tensor.Ones(8, 3), Tensor.Zeros(new Shape(8), dtype: DType.Int32));
        buffer.Add(0, a);
        Assert.Contains("already stored", Assert.Throws<ArgumentException>(() => buffer.Add(0, a)).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => buffer.Add(-1, a));
        var wide = new TensorDataset(Tensor.Ones(8, 7), Tensor.Zeros(new Shape(8), dtype: DType.Int32));
        Assert.Contains("task 1's examples (8, 7)", Assert.Throws<ShapeMismatchException>(() => buffer.Add(1, wide)).Message);
        Assert.Equal(5, buffer.Count);   // nothing was added by the refused calls
        Assert.Contains("Sample", Assert.Throws<ArgumentOutOfRangeException>(() => buffer.Sample(-1)).Message);
    }

    [Fact]
    public void Split_RefusesAnEmptyGroup_AndSaysWhetherAClassIsOutOfRangeOrRepeated()
    {
        Assert.Contains("group 1 has no classes", Assert.Throws<ArgumentException>(() => TaskSequences.Split(Data, [[0, 1], []])).Message);
        Assert.Contains("lies outside the data's 10 classes", Assert.Throws<ArgumentException>(() => TaskSequences.Split(Data, [[0, 12]])).Message);
        Assert.Contains("class 1 appears twice", Assert.Throws<ArgumentException>(() => TaskSequences.Split(Data, [[1, 1]])).Message);
    }

    [Fact]
    public void Hat_RefusesEmptyLayers_ABadScaleOrLimit_AndTrainingForNoEpochs()
    {
        var g = new Generator(2);
        Assert.Contains("hidden layer 2", Assert.Throws<ArgumentOutOfRangeException>(() => new HatMlp(4, [3, 0], [2], g)).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new HatMlp(4, [3], [0], g));
        var hat = new HatMlp(4, [3], [2], g);
        Assert.Contains("Scale", Assert.Throws<ArgumentOutOfRangeException>(() => hat.Scale = double.NaN).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => hat.Scale = 0);
        Assert.Throws<ArgumentOutOfRangeException>(() => hat.ClampEmbeddings(-1));
        var loader = new DataLoader(new TensorDataset(Tensor.Ones(4, 4), Tensor.Zeros(new Shape(4), dtype: DType.Int32)), 2);
        var gatesBefore = hat.UnitsInUse();
        Assert.Contains("at least one epoch", Assert.Throws<ArgumentOutOfRangeException>(() => hat.TrainTask(0, loader, 0, 0.1)).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => hat.TrainTask(0, loader, 1, 0.1, c: -1));
        Assert.Equal(gatesBefore, hat.UnitsInUse());   // no untrained gates were folded in
    }

    [Fact]
    public void Anchors_RefuseNegativeOrNaNImportance_BeforeChangingAnything_AndAnInfiniteLambda()
    {
        var p = Tensor.FromArray(new float[] { 1, 2, 3 }).RequiresGrad_();
        var q = Tensor.FromArray(new float[] { 4, 5 }).RequiresGrad_();
        var anchors = new QuadraticAnchors([p, q]);
        var bad = Tensor.FromArray(new float[] { 1, float.NaN });
        Assert.Contains("importance 1 holds NaN", Assert.Throws<ArgumentOutOfRangeException>(() => anchors.Consolidate([Tensor.Ones(3), bad])).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => anchors.Consolidate([-Tensor.Ones(3), Tensor.Ones(2)]));
        Assert.Equal(0, anchors.Tasks);
        // Nothing was half-consolidated: anchoring now and moving p gives exactly the penalty of one task.
        anchors.Consolidate();
        using (Autograd.NoGrad()) p.AddInPlace(Tensor.Ones(3));
        Assert.Equal(1.5, anchors.Penalty(), 12);
        Assert.Throws<ArgumentOutOfRangeException>(() => anchors.PenaltyTerm(double.PositiveInfinity));
        Assert.Throws<ArgumentException>(() => new QuadraticAnchors([]));
    }

    [Fact]
    public void Vae_RefusesAnEmptyCode_ImagesOfAnotherShape_AndPixelsOutsideTheUnitRange()
    {
        var g = new Generator(3);
        Assert.Throws<ArgumentOutOfRangeException>(() => new Vae([1, 2, 2], 4, 0, g));
        var vae = new Vae([1, 2, 2], 4, 2, g);
        Assert.Contains("(n, 1, 2, 2)", Assert.Throws<ShapeMismatchException>(() => vae.Loss(Tensor.Rand(new Shape(3, 4), g), g)).Message);
        var standardized = Tensor.Randn(new Shape(3, 1, 2, 2), g);
        Assert.Contains("[0, 1]", Assert.Throws<ArgumentOutOfRangeException>(() => vae.Loss(standardized, g)).Message);
        Assert.True(double.IsFinite(vae.Loss(Tensor.Rand(new Shape(3, 1, 2, 2), g), g).Item()));
        Assert.Throws<ArgumentOutOfRangeException>(() => vae.Sample(-1, g));
    }
}
