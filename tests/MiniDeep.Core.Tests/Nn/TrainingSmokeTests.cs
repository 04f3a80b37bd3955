using MiniDeep.Data;
using MiniDeep.Nn;
using MiniDeep.Optim;
using Xunit;

namespace MiniDeep.Tests.NnTests;

/// <summary>Training end to end on 2,000 standardized images: the MLP of `train mlp`, Adam, eight epochs
/// (seconds). With so few images the MLP overfits (training accuracy reaches 90-99%), so the test
/// lines are modest: measured 66.0% on SynthDigits with seed 1.</summary>
public class TrainingSmokeTests
{
    private static double TrainMlp(ImageClassification data, ulong seed)
    {
        data = (data with { Train = Subset(data.Train, 2000), Test = Subset(data.Test, 1000) }).Standardized();
        var g = new Generator(seed);
        var model = new Sequential(new Flatten(), new Linear(784, 256, generator: g), Activations.ReLU(),
            new Linear(256, 128, generator: g), Activations.ReLU(), new Linear(128, 10, generator: g));
        var loader = new DataLoader(data.Train, 64, shuffle: true, seed: seed);
        var history = Trainer.Fit(model, new Adam(model.Parameters(), 1e-3), loader, 8, data.Test);
        Assert.True(history[^1].TrainLoss < history[0].TrainLoss / 2, $"training loss {history[0].TrainLoss:F3} -> {history[^1].TrainLoss:F3}");
        Assert.True(history[^1].TrainAccuracy > 0.85, $"training accuracy {history[^1].TrainAccuracy:P2}");
        return history[^1].TestAccuracy!.Value;
    }

    private static TensorDataset Subset(TensorDataset d, int n) => new(d.X.Narrow(0, 0, Math.Min(n, d.Count)), d.Y.Narrow(0, 0, Math.Min(n, d.Count)));

    [Fact]
    public void Mlp_OnTwoThousandSynthDigits_ReachesSixtyPercent()
    {
        double acc = TrainMlp(SynthDigits.Load(0, 2000, 1000), 1);
        Assert.True(acc >= 0.60, $"test accuracy {acc:P2}");
    }

    [Fact]
    public void Mlp_OnTwoThousandFashionMnistImages_ReachesSeventyFivePercent()
    {
        // CI installs dataset-fashion-mnist, so there this must run; elsewhere it is reported as skipped.
        if (MnistFormat.Locate(null, out var searched) is null)
        {
            if (Environment.GetEnvironmentVariable("CI") == "true")
                Assert.Fail($"CI must have Fashion-MNIST installed; looked in {string.Join(", ", searched)}");
            Assert.Skip($"Fashion-MNIST is not installed (looked in {string.Join(", ", searched)})");
        }
        double acc = TrainMlp(MnistFormat.LoadFashionMnist(), 1);
        Assert.True(acc >= 0.75, $"test accuracy {acc:P2}");
    }

    [Fact]
    public void ConvolutionalAutoencoder_WithTransposedConvolutionGroupNormAndUpsampling_LearnsToReconstruct()
    {
        // The decoder layers end to end: 28 → 14 → 7 by strided convolutions, back by a transposed
        // convolution (7 → 14) and a bilinear upsampling (14 → 28), GroupNorm between. The line: after six
        // epochs on 1,024 SynthDigits, the held-out reconstruction error is under a third of the error of
        // predicting the mean training image (the best a decoder that ignores its input can do). Measured:
        // 0.0090 against 0.0401, the same to three digits with the AVX-512, AVX2 and Vector128 kernels.
        var data = SynthDigits.Load(3, 1024, 256);
        var g = new Generator(5);
        var model = new Sequential(
            new Conv2d(1, 8, (3, 3), stride: (2, 2), padding: (1, 1), generator: g), new GroupNorm(2, 8), Activations.ReLU(),
            new Conv2d(8, 16, (3, 3), stride: (2, 2), padding: (1, 1), generator: g), Activations.ReLU(),
            new ConvTranspose2d(16, 8, 4, stride: 2, padding: 1, generator: g), new GroupNorm(2, 8), Activations.ReLU(),
            new Upsample(2, UpsampleMode.Bilinear), new Conv2d(8, 1, 3, padding: 1, generator: g), Activations.Sigmoid());
        var opt = new Adam(model.Parameters(), 3e-3);
        var loader = new DataLoader(data.Train, 32, shuffle: true, seed: 6);
        for (int epoch = 0; epoch < 6; epoch++)
            foreach (var batch in loader.NextEpoch())
            {
                opt.ZeroGrad();
                Losses.Mse(model.Forward(batch.X), batch.X).Backward();
                opt.Step();
            }
        model.Eval();
        double error, baseline;
        using (Autograd.NoGrad())
        {
            error = Losses.Mse(model.Forward(data.Test.X), data.Test.X).Item();
            baseline = Losses.Mse(data.Train.X.Mean(0, keepDim: true).Expand(data.Test.X.Shape.ToArray()), data.Test.X).Item();
        }
        Assert.True(error < baseline / 3, $"reconstruction error {error:F4}, mean image {baseline:F4}");
    }

    [Fact]
    public void Lstm_CarriesTheFirstStepOfASequenceToItsLast()
    {
        // Sequences of 12 random ±1 steps; the label is the sign of the first step, read from the last
        // step's output, so the network must carry one bit through 11 steps of noise. Chance is 50%;
        // measured 100% after 300 steps of Adam with the AVX-512, AVX2 and Vector128 kernels alike.
        var g = new Generator(21);
        Tensor Steps(int n) => Tensor.Bernoulli(new Shape(12, n, 1), 0.5, g) * 2 - 1;
        Tensor Labels(Tensor x) => (x.Select(0, 0).Reshape(-1) > 0).To(DType.Int32);
        var lstm = new Lstm(1, 16, generator: g);
        var head = new Linear(16, 2, generator: g);
        var opt = new Adam([.. lstm.Parameters(), .. head.Parameters()], 1e-2);
        for (int step = 0; step < 300; step++)
        {
            var x = Steps(32);
            opt.ZeroGrad();
            Losses.CrossEntropy(head.Forward(lstm.Forward(x).Select(0, 11)), Labels(x)).Backward();
            opt.Step();
        }
        var test = Steps(1000);
        double accuracy;
        using (Autograd.NoGrad())
            accuracy = (head.Forward(lstm.Forward(test).Select(0, 11)).ArgMax(1) == Labels(test)).To(DType.Float64).Mean().Item();
        Assert.True(accuracy >= 0.95, $"accuracy {accuracy:P1}");
    }

    [Fact]
    public void KeepBest_PutsBackTheEpochWithTheLowestValidationLoss()
    {
        var data = SynthDigits.Load(0, 512, 128);
        // Validation labels shifted by one class: the better the network learns, the worse it does on them,
        // so the lowest validation loss comes early and keeping it must undo the later epochs.
        var shifted = new TensorDataset(data.Test.X, Tensor.FromArray(data.Test.Y.ToArray<int>().Select(l => (l + 1) % 10).ToArray()));
        (Sequential Model, List<EpochStats> History, BestEpoch Best) Run(int epochs)
        {
            var g = new Generator(4);
            var model = new Sequential(new Flatten(), new Linear(784, 32, generator: g), Activations.ReLU(), new Linear(32, 10, generator: g));
            var best = new BestEpoch(model);
            var h = Trainer.Fit(model, new Sgd(model.Parameters(), 0.1, momentum: 0.9), new DataLoader(data.Train, 32, shuffle: true, seed: 4), epochs, shifted, keepBest: best);
            return (model, h, best);
        }
        var (kept, history, keptBest) = Run(4);
        Assert.Equal(4, history.Count);
        var losses = history.Select(e => e.TestLoss!.Value).ToArray();
        int best = Array.IndexOf(losses, losses.Min()) + 1;
        Assert.Equal(best, keptBest.Epoch);
        Assert.Equal(losses.Min(), keptBest.Loss);
        Assert.True(best < 4, $"validation losses {string.Join(", ", losses)}: the last epoch is the best, nothing to put back");
        // A run cut short at the best epoch (its own best is then its last) holds the same parameters.
        var (reference, _, _) = Run(best);
        foreach (var (name, t) in reference.StateDict()) Assert.Equal(t.ToFloatArray(), kept.StateDict()[name].ToFloatArray());
        Assert.False(kept.IsTraining);
        Assert.Throws<ArgumentException>(() => Trainer.Fit(kept, new Sgd(kept.Parameters(), 0.1), new DataLoader(data.Train, 32), 1, keepBest: new BestEpoch(kept)));
        Assert.Throws<ArgumentException>(() => Trainer.Fit(kept, new Sgd(kept.Parameters(), 0.1), new DataLoader(data.Train, 32), 1, shifted, keepBest: new BestEpoch(reference)));
    }

    [Fact]
    public void Training_IsBitIdentical_ForTheSameSeed()
    {
        var data = SynthDigits.Load(0, 512, 128);
        double Run()
        {
            var g = new Generator(4);
            var model = new Sequential(new Flatten(), new Linear(784, 32, generator: g), Activations.ReLU(), new Dropout(0.2, g), new Linear(32, 10, generator: g));
            var h = Trainer.Fit(model, new Sgd(model.Parameters(), 0.1, momentum: 0.9), new DataLoader(data.Train, 32, shuffle: true, seed: 4), 2, data.Test);
            return h[^1].TrainLoss;
        }
        Assert.Equal(Run(), Run());
    }
}
