using MiniDeep.Data;
using MiniDeep.IO;
using MiniDeep.Nn;
using MiniDeep.Optim;
using Xunit;

namespace MiniDeep.Tests.IO;

public class CheckpointTests
{
    private sealed class Run
    {
        public readonly Sequential Model;
        public readonly Adam Optimizer;
        public readonly CosineLr Scheduler;
        public readonly DataLoader Loader;
        public readonly Generator Noise;
        private readonly IEnumerator<Batch> _batches;

        // A run whose every source of state matters: dropout with its own generator, Adam's moments,
        // a cosine schedule, a shuffling loader stopped mid-epoch, and a generator the loop draws from.
        public Run(ulong initSeed)
        {
            var g = new Generator(initSeed);
            Model = new Sequential(new Linear(8, 16, generator: g), Activations.ReLU(), new Dropout(0.3, g.Fork()), new Linear(16, 3, generator: g));
            var data = new Generator(99);
            var x = Tensor.Randn(new Shape(64, 8), data);
            var y = Tensor.Randint(0, 3, new Shape(64), data);
            Loader = new DataLoader(new TensorDataset(x, y), 8, shuffle: true, seed: 5);
            Optimizer = new Adam(Model.Parameters(), 1e-2);
            Scheduler = new CosineLr(Optimizer, 40);
            Noise = new Generator(initSeed + 1000);
            _batches = Batches().GetEnumerator();
        }

        private IEnumerable<Batch> Batches() { while (true) foreach (var b in Loader.NextEpoch()) yield return b; }

        public TrainingState State => new(Model, Optimizer, Scheduler, Loader, new Dictionary<string, Generator> { ["noise"] = Noise });

        public float Step()
        {
            _batches.MoveNext();
            var (x, y) = (_batches.Current.X, _batches.Current.Y);
            x = x + Tensor.Randn(x.Shape, Noise) * 0.01;
            Optimizer.ZeroGrad();
            var loss = Losses.CrossEntropy(Model.Forward(x), y);
            loss.Backward();
            Optimizer.Step();
            Scheduler.Step();
            return (float)loss.Item();
        }

        public float[] Parameters() => [.. Model.Parameters().SelectMany(p => p.ToArray<float>())];
        public float[] OptimizerState() => [.. Optimizer.StateDict().OrderBy(p => p.Key).SelectMany(p => p.Value.To(DType.Float64).ToArray<double>().Select(v => (float)v))];
    }

    [Fact]
    public void Resuming_GivesTheSameBits_AsNeverStopping()
    {
        const int total = 20, stop = 11;   // 8 batches an epoch: the stop is mid-epoch 2
        var straight = new Run(1);
        var losses = Enumerable.Range(0, total).Select(_ => straight.Step()).ToArray();

        var path = Path.Combine(Path.GetTempPath(), $"minideep-ckpt-{Guid.NewGuid():N}.ckpt");
        try
        {
            var first = new Run(1);
            for (int s = 0; s < stop; s++) Assert.Equal(losses[s], first.Step());
            Checkpoint.Save(path, first.State, step: stop, epoch: first.Loader.Epoch, extra: new Dictionary<string, string> { ["note"] = "mid-epoch" });

            // Fresh objects, built from another seed: everything they need comes from the file.
            var resumed = new Run(77);
            var (step, epoch, extra) = Checkpoint.Load(path, resumed.State);
            Assert.Equal(stop, step);
            Assert.Equal(1, epoch);
            Assert.Equal("mid-epoch", extra["note"]);
            for (int s = stop; s < total; s++) Assert.Equal(losses[s], resumed.Step());
            Assert.Equal(straight.Parameters(), resumed.Parameters());
            Assert.Equal(straight.OptimizerState(), resumed.OptimizerState());
            Assert.Equal(straight.Noise.Offset, resumed.Noise.Offset);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void ADamagedOrMismatchedCheckpoint_IsRefused_AndChangesNothing()
    {
        var path = Path.Combine(Path.GetTempPath(), $"minideep-ckpt-{Guid.NewGuid():N}.ckpt");
        try
        {
            var run = new Run(1);
            run.Step();
            Checkpoint.Save(path, run.State, 1, 0);
            var bytes = File.ReadAllBytes(path);
            // One flipped bit in the data buffer: still a valid safetensors file, caught by the checksum.
            bytes[^3] ^= 0x10;
            File.WriteAllBytes(path, bytes);
            var target = new Run(5);
            var before = target.Parameters();
            var e = Assert.Throws<CheckpointException>(() => Checkpoint.Load(path, target.State));
            Assert.Contains("checksum", e.Message);
            Assert.Equal(before, target.Parameters());
            // Truncated: not a valid file at all.
            File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
            Assert.Throws<CheckpointException>(() => Checkpoint.Load(path, target.State));
            // Another model's checkpoint.
            var other = new TrainingState(new Sequential(new Linear(8, 4), Activations.ReLU(), new Linear(4, 3)));
            Checkpoint.Save(path, other, 0, 0);
            Assert.Throws<CheckpointException>(() => Checkpoint.Load(path, new TrainingState(run.Model)));
        }
        finally { File.Delete(path); }
    }
}
