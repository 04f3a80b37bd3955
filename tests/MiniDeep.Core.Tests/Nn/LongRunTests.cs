using MiniDeep.Cpu;
using MiniDeep.Nn;
using MiniDeep.Optim;
using Xunit;

namespace MiniDeep.Tests.NnTests;

/// <summary>What a long-running service or training job relies on: memory that stops growing, and a model
/// that many threads can run at once.</summary>
[Collection("threads")]
public class LongRunTests
{
    [Fact]
    public void TenThousandTrainingSteps_DoNotGrowMemory()
    {
        var g = new Generator(1);
        var model = new Sequential(new Linear(32, 64, generator: g), Activations.ReLU(), new Dropout(0.1, g.Fork()), new Linear(64, 10, generator: g));
        var x = Tensor.Randn(new Shape(64, 32), g);
        var y = Tensor.Randint(0, 10, new Shape(64), g);
        var opt = new Adam(model.Parameters(), 1e-3);
        void Train(int steps)
        {
            for (int s = 0; s < steps; s++)
            {
                opt.ZeroGrad();
                Losses.CrossEntropy(model.Forward(x), y).Backward();
                opt.Step();
            }
        }
        static long Settled()
        {
            for (int i = 0; i < 3; i++) { GC.Collect(); GC.WaitForPendingFinalizers(); }
            return GC.GetTotalMemory(forceFullCollection: true);
        }
        Train(1_000);                                  // warm-up: pools and caches fill
        // Settle first, then read the pool: collecting runs the finalizers of other tests' garbage, whose
        // arrays go back to the process-wide pool.
        long before = Settled(), pooledBefore = BufferPool.PooledBytes;
        Train(9_000);
        long after = Settled();
        // Reachable managed memory and pooled buffers after 9,000 more steps: no growth beyond noise.
        Assert.True(after - before < 256 * 1024, $"managed memory grew by {(after - before) / 1024.0:F0} KB over 9,000 steps");
        Assert.True(BufferPool.PooledBytes - pooledBefore < 1 << 20, $"the buffer pool grew by {(BufferPool.PooledBytes - pooledBefore) / 1024.0:F0} KB");
    }

    [Fact]
    public void SixteenThreads_RunningOneSharedModel_GetTheSequentialResults()
    {
        var g = new Generator(2);
        var model = new Sequential(
            new Conv2d(1, 4, 3, padding: 1, generator: g), Activations.ReLU(), new MaxPool2d(2),
            new Flatten(), new Linear(4 * 8 * 8, 32, generator: g), Activations.ReLU(), new Dropout(0.5, g.Fork()), new Linear(32, 10, generator: g));
        model.Eval();
        var inputs = Enumerable.Range(0, 16).Select(i => Tensor.Randn(new Shape(5, 1, 16, 16), new Generator((ulong)(100 + i)))).ToArray();
        float[] Run(Tensor x) { using (Autograd.NoGrad()) return model.Forward(x).ToArray<float>(); }
        var sequential = inputs.Select(Run).ToArray();
        var parallel = new float[16][];
        var errors = new List<Exception>();
        using var start = new Barrier(16);
        var threads = Enumerable.Range(0, 16).Select(i => new Thread(() =>
        {
            try
            {
                start.SignalAndWait();
                for (int rep = 0; rep < 20; rep++)
                {
                    var r = Run(inputs[i]);
                    if (rep == 0) parallel[i] = r;
                    else if (!r.SequenceEqual(parallel[i])) throw new InvalidOperationException($"thread {i}: repetition {rep} differs");
                }
            }
            catch (Exception e) { lock (errors) errors.Add(e); }
        })).ToList();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) t.Join();
        Assert.Empty(errors);
        for (int i = 0; i < 16; i++) Assert.Equal(sequential[i], parallel[i]);
    }
}
