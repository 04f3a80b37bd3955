using Xunit;

namespace MiniDeep.Tests.BackendTests;

[CollectionDefinition("threads", DisableParallelization = true)]
public class ThreadsCollection;

/// <summary>The same seed gives the same bits: in two runs, and on 1 and 2 threads.</summary>
[Collection("threads")]
public class DeterminismTests
{
    // A training-step-sized computation that takes every parallel path: a GEMM above the threading
    // threshold, elementwise ops and reductions over more than one chunk, a fused loss and backward.
    private static (float[] Loss, float[] W1Grad, float[] W2Grad, float[] Big) Step(ulong seed)
    {
        var g = new Generator(seed);
        var x = Tensor.Randn(new Shape(256, 784), g);
        var w1 = (Tensor.Randn(new Shape(784, 512), g) * 0.05).RequiresGrad_();
        var w2 = (Tensor.Randn(new Shape(512, 10), g) * 0.05).RequiresGrad_();
        var y = Tensor.Randint(0, 10, new Shape(256), g);
        var h = Tensor.MatMul(x, w1).Relu().Dropout(0.2, generator: g);
        var loss = Losses.CrossEntropy(Tensor.MatMul(h, w2), y);
        loss.Backward();
        // The fused linear layer, the convolution kernels (images in parallel; the weight gradient's
        // fixed groups) and the fused Adam step.
        var lw = (Tensor.Randn(new Shape(300, 784), g) * 0.05).RequiresGrad_();
        var cw = (Tensor.Randn(new Shape(16, 3, 3, 3), g) * 0.2).RequiresGrad_();
        var images = Tensor.Randn(new Shape(13, 3, 10, 10), g).RequiresGrad_();   // grouped 5 + 5 + 3 images per GEMM
        var conv = Tensor.Conv2d(images, cw, padding: (1, 1)).Relu().Sum() + Tensor.Conv2d(images.Narrow(0, 0, 1), cw, stride: (2, 2)).Sum();
        (Tensor.Linear(x, lw).Tanh().Sum() + conv).Backward();
        new Optim.Adam([lw, cw], 1e-2).Step();
        var big = (Tensor.Randn(new Shape(300_000), g).Exp().Sum() + Tensor.Randn(new Shape(600, 700), g).Sum(0).Sum()).Reshape(1);
        float[] fused = [.. lw.ToArray<float>(), .. cw.ToArray<float>(), .. images.Grad!.ToArray<float>()];
        return (loss.Reshape(1).ToArray<float>(), w1.Grad!.ToArray<float>(), w2.Grad!.ToArray<float>(), [.. big.ToArray<float>(), .. fused]);
    }

    [Fact]
    public void SameSeed_GivesBitIdenticalValuesAndGradients_InTwoRuns()
    {
        var a = Step(11);
        var b = Step(11);
        Assert.Equal(a.Loss, b.Loss);
        Assert.Equal(a.W1Grad, b.W1Grad);
        Assert.Equal(a.W2Grad, b.W2Grad);
        Assert.Equal(a.Big, b.Big);
        Assert.NotEqual(a.Loss, Step(12).Loss);
    }

    [Fact]
    public void OneThread_AndTwoThreads_GiveBitIdenticalResults()
    {
        int saved = Parallelism.MaxThreads;
        try
        {
            Parallelism.MaxThreads = 1;
            var one = Step(21);
            Parallelism.MaxThreads = 2;
            var two = Step(21);
            Assert.Equal(one.Loss, two.Loss);
            Assert.Equal(one.W1Grad, two.W1Grad);
            Assert.Equal(one.W2Grad, two.W2Grad);
            Assert.Equal(one.Big, two.Big);
        }
        finally
        {
            Parallelism.MaxThreads = saved;
        }
    }

    [Fact]
    public void AModelTrainedAsTheTailOfAParallelJob_GetsHelpAndTheSameBits()
    {
        int saved = Parallelism.MaxThreads;
        try
        {
            Parallelism.MaxThreads = 1;
            var alone = Step(31);
            Parallelism.MaxThreads = 2;
            long before = Parallelism.AssistedKernels;
            var results = new (float[] Loss, float[] W1Grad, float[] W2Grad, float[] Big)[3];
            // Two light chunks and a heavy one: whichever thread finishes its light chunk while the
            // other runs the heavy one is idle and helps with its kernels.
            Parallelism.For(3, i => { if (i == 2) results[i] = Step(31); else results[i] = (new float[1], [], [], []); });
            Assert.True(Parallelism.AssistedKernels > before, "no kernel of the heavy chunk was helped");
            Assert.Equal(alone.Loss, results[2].Loss);
            Assert.Equal(alone.W1Grad, results[2].W1Grad);
            Assert.Equal(alone.W2Grad, results[2].W2Grad);
            Assert.Equal(alone.Big, results[2].Big);
        }
        finally
        {
            Parallelism.MaxThreads = saved;
        }
    }
}
