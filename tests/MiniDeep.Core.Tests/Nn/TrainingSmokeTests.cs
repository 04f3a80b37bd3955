using MiniDeep.Data;
using MiniDeep.Nn;
using MiniDeep.Optim;
using Xunit;

namespace MiniDeep.Tests.NnTests;

/// <summary>Training end to end on 2,000 images: the MLP of `train mlp`, Adam, eight epochs (a few seconds).</summary>
public class TrainingSmokeTests
{
    private static double TrainMlp(ImageClassification data, ulong seed)
    {
        var g = new Generator(seed);
        var model = new Sequential(new Flatten(), new Linear(784, 256, generator: g), Activations.ReLU(),
            new Linear(256, 128, generator: g), Activations.ReLU(), new Linear(128, 10, generator: g));
        var loader = new DataLoader(Dataset.Take(data.Train, 2000), 64, shuffle: true, seed: seed);
        var history = Trainer.Fit(model, new Adam(model.Parameters(), 1e-3), loader, 8, Dataset.Take(data.Test, 1000));
        Assert.True(history[^1].TrainLoss < history[0].TrainLoss);
        return history[^1].TestAccuracy!.Value;
    }

    [Fact]
    public void Mlp_OnTwoThousandSynthDigits_ReachesEightyPercent()
    {
        double acc = TrainMlp(SynthDigits.Load(0, 2000, 1000), 1);
        Assert.True(acc >= 0.80, $"test accuracy {acc:P2}");
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
