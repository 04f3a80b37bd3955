using MiniDeep.Data;
using MiniDeep.IO;
using MiniDeep.Nn;
using MiniDeep.Optim;
using System.Diagnostics;
using Xunit;

namespace MiniDeep.Tests.IO;

public class CheckpointTests : IDisposable
{
    // One file per test (xunit makes a new instance for each), deleted after it.
    private readonly string _path = Path.Combine(Path.GetTempPath(), $"minideep-ckpt-{Guid.NewGuid():N}.ckpt");

    public void Dispose() => File.Delete(_path);

    [Fact]
    public void Resuming_GivesTheSameBits_AsNeverStopping()
    {
        const int total = 20, stop = 11;   // 8 batches an epoch: the stop is mid-epoch 2
        var straight = new CheckpointRun(1);
        var losses = Enumerable.Range(0, total).Select(_ => straight.Step()).ToArray();

        var first = new CheckpointRun(1);
        for (int s = 0; s < stop; s++) Assert.Equal(losses[s], first.Step());
        Checkpoint.Save(_path, first.State, step: stop, epoch: first.Loader.Epoch, extra: new Dictionary<string, string> { ["note"] = "mid-epoch" });

        // Fresh objects, built from another seed: everything they need comes from the file.
        var resumed = new CheckpointRun(77);
        var (step, epoch, extra) = Checkpoint.Load(_path, resumed.State);
        Assert.Equal(stop, step);
        Assert.Equal(1, epoch);
        Assert.Equal("mid-epoch", extra["note"]);
        for (int s = stop; s < total; s++) Assert.Equal(losses[s], resumed.Step());
        Assert.Equal(straight.Parameters(), resumed.Parameters());
        Assert.Equal(straight.OptimizerState(), resumed.OptimizerState());
        Assert.Equal(straight.Noise.Offset, resumed.Noise.Offset);
    }

    [Fact]
    public void ADamagedOrMismatchedCheckpoint_IsRefused_AndChangesNothing()
    {
        var run = new CheckpointRun(1);
        run.Step();
        Checkpoint.Save(_path, run.State, 1, 0);
        var bytes = File.ReadAllBytes(_path);
        // One flipped bit in the data buffer: still a valid safetensors file, caught by the checksum.
        bytes[^3] ^= 0x10;
        File.WriteAllBytes(_path, bytes);
        var target = new CheckpointRun(5);
        var before = target.Parameters();
        var e = Assert.Throws<CheckpointException>(() => Checkpoint.Load(_path, target.State));
        Assert.Contains("checksum", e.Message);
        Assert.Equal(before, target.Parameters());
        // Truncated: not a valid file at all.
        File.WriteAllBytes(_path, bytes[..(bytes.Length / 2)]);
        Assert.Throws<CheckpointException>(() => Checkpoint.Load(_path, target.State));
        // Another model's checkpoint.
        var other = new TrainingState(new Sequential(new Linear(8, 4), Activations.ReLU(), new Linear(4, 3)));
        Checkpoint.Save(_path, other, 0, 0);
        Assert.Throws<CheckpointException>(() => Checkpoint.Load(_path, new TrainingState(run.Model)));
    }

    [Fact]
    public void ACheckpointOfAnotherSetup_IsRefused_BeforeAnythingChanges()
    {
        var target = new CheckpointRun(5);
        target.Step();
        float[] parameters = target.Parameters(), optimizerState = target.OptimizerState();
        ulong noise = target.Noise.Offset;
        int schedulerStep = target.Scheduler.StepCount;
        void Unchanged()
        {
            Assert.Equal(parameters, target.Parameters());
            Assert.Equal(optimizerState, target.OptimizerState());
            Assert.Equal(noise, target.Noise.Offset);
            Assert.Equal(schedulerStep, target.Scheduler.StepCount);
        }

        // The same model trained with SGD: its momentum is not Adam's moments.
        var sgdRun = new CheckpointRun(1);
        var sgd = new Sgd(sgdRun.Model.Parameters(), 0.1, momentum: 0.9);
        sgdRun.Step();
        sgdRun.Model.Forward(Tensor.Ones(new Shape(2, 8))).Sum().Backward();
        sgd.Step();
        Checkpoint.Save(_path, sgdRun.State with { Optimizer = sgd }, 1, 0);
        var e = Assert.Throws<CheckpointException>(() => Checkpoint.Load(_path, target.State));
        Assert.Contains("momentum_buffer", e.Message);
        Unchanged();

        // Saved without a schedule: the schedule's step count is not in the file.
        var run = new CheckpointRun(1);
        run.Step();
        Checkpoint.Save(_path, run.State with { Scheduler = null }, 1, 0);
        Assert.Contains("scheduler.step", Assert.Throws<CheckpointException>(() => Checkpoint.Load(_path, target.State)).Message);
        Unchanged();

        // Saved without an optimizer.
        Checkpoint.Save(_path, run.State with { Optimizer = null }, 1, 0);
        Assert.Contains("no optimizer state", Assert.Throws<CheckpointException>(() => Checkpoint.Load(_path, target.State)).Message);
        Unchanged();
    }

    [Fact]
    public void APlateauRule_ResumesWhereItStopped()
    {
        // A loss that stalls at 0.9: the rule halves the rate after three epochs without improvement
        // (epoch 4), waits out its cooldown, and halves it again (epoch 8). The stop falls in the cooldown:
        // resumed without it, the second cut would come an epoch early.
        double[] metrics = [1.0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9];
        const int stop = 5;
        (Sgd, ReduceLrOnPlateau) Fresh()
        {
            var opt = new Sgd([Tensor.Zeros(1).RequiresGrad_()], lr: 1.0);
            return (opt, new ReduceLrOnPlateau(opt, factor: 0.5, patience: 2, cooldown: 1));
        }
        var (o1, straight) = Fresh();
        var expected = metrics.Select(m => { straight.Step(m); return o1.Groups[0].Lr; }).ToArray();
        Assert.Equal([1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25], expected);

        var (o2, first) = Fresh();
        var model = new Linear(2, 1);
        for (int i = 0; i < stop; i++) first.Step(metrics[i]);
        Checkpoint.Save(_path, new TrainingState(model, o2, Plateau: first), stop, stop);
        var (o3, resumed) = Fresh();
        Checkpoint.Load(_path, new TrainingState(model, o3, Plateau: resumed));
        Assert.Equal((0.9, 0, 1), (resumed.Best, resumed.BadEpochs, resumed.CooldownLeft));
        Assert.Equal(expected[stop..], metrics[stop..].Select(m => { resumed.Step(m); return o3.Groups[0].Lr; }));

        // Saved before its first metric, the best is +∞ (−∞ for Max): it must come back as that, not as a parse error.
        var (o5, unused) = Fresh();
        Checkpoint.Save(_path, new TrainingState(model, o5, Plateau: unused), 0, 0);
        Checkpoint.Load(_path, new TrainingState(model, o3, Plateau: resumed));
        Assert.Equal((double.PositiveInfinity, 0, 0), (resumed.Best, resumed.BadEpochs, resumed.CooldownLeft));

        // A file saved without the rule is refused, naming the field, before anything changes.
        Checkpoint.Save(_path, new TrainingState(model, o2), stop, stop);
        var (o4, target) = Fresh();
        Assert.Contains("plateau.best", Assert.Throws<CheckpointException>(() => Checkpoint.Load(_path, new TrainingState(model, o4, Plateau: target))).Message);
        Assert.Equal(double.PositiveInfinity, target.Best);
    }

    // ----- across processes -----

    // The helper process's build: same configuration, beside this test assembly's project.
    private static string Child()
    {
        var here = typeof(CheckpointTests).Assembly.Location;
        var path = here.Replace("MiniDeep.Core.Tests", "MiniDeep.CheckpointChild");
        Assert.True(File.Exists(path), $"the helper process is not built at {path}");
        return path;
    }

    private static Process Start(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Child());
        foreach (var a in args) psi.ArgumentList.Add(a);
        return Process.Start(psi)!;
    }

    private static string[] Lines(params string[] args)
    {
        using var p = Start(args);
        var output = p.StandardOutput.ReadToEnd();
        var error = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"helper {string.Join(' ', args)} exited {p.ExitCode}: {error}");
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    // A layer's own dropout generator: after a resume its masks must continue where they stopped, like
    // a Dropout layer's. The resumed model starts from another mask seed, so only the checkpoint can
    // make the next pass agree.
    private void DropoutGeneratorResumes(Func<ulong, Module> make, Shape input)
    {
        var x = Tensor.Randn(input, new Generator(2));
        var run = make(7);
        for (int i = 0; i < 3; i++) run.Forward(x);
        Checkpoint.Save(_path, new TrainingState(run), step: 3, epoch: 0);
        var next = run.Forward(x).ToArray<float>();
        var resumed = make(99);
        Checkpoint.Load(_path, new TrainingState(resumed));
        Assert.Equal(next, resumed.Forward(x).ToArray<float>());
    }

    [Fact]
    public void ARecurrentLayersDropoutGenerator_IsSavedAndRestored() => DropoutGeneratorResumes(
        seed => new Sequential(new Gru(3, 4, numLayers: 2, dropout: 0.5, dropoutGenerator: new Generator(seed), generator: new Generator(1))), new Shape(5, 2, 3));

    [Fact]
    public void AnAttentionLayersDropoutGenerator_IsSavedAndRestored() => DropoutGeneratorResumes(
        seed => new Sequential(new MultiheadAttention(4, 2, dropout: 0.5, dropoutGenerator: new Generator(seed), generator: new Generator(1))), new Shape(5, 2, 4));

    [Fact]
    public void Resuming_InANewProcess_GivesTheSameBits()
    {
        var straight = Lines("train", "20");
        var first = Lines("train", "20", "--save-at", "11", _path);
        var second = Lines("train", "20", "--resume", _path);
        Assert.Equal(straight[..11], first);
        Assert.Equal(straight[11..], second);   // steps 11–19 and the final parameters, bit for bit
        Assert.StartsWith("params ", second[^1]);
    }

    [Fact]
    public void AProcessKilledDuringASave_AlwaysLeavesACheckpointThatLoads_200Trials()
    {
        var dir = Path.Combine(Path.GetTempPath(), $"minideep-crash-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, "run.ckpt");
        var model = new Sequential(new Linear(1024, 1024), Activations.ReLU(), new Linear(1024, 64));
        var state = new TrainingState(model);
        try
        {
            Checkpoint.Save(path, state, -1, 0);
            var rng = new Random(3);
            int advanced = 0;
            const long PerTrial = 1_000_000;
            for (int trial = 0; trial < 200; trial++)
            {
                using (var p = Start("save-loop", path, (trial * PerTrial).ToString()))
                {
                    // Kill at a random moment once the child is saving: after 0 to 2 complete saves, at a
                    // random point of the next one (a save of this 4.4 MB model takes a few tens of ms).
                    Assert.Equal("ready", p.StandardOutput.ReadLine());
                    for (int saves = rng.Next(0, 3); saves > 0; saves--) Assert.StartsWith("saved", p.StandardOutput.ReadLine());
                    Thread.Sleep(rng.Next(0, 60));
                    p.Kill(entireProcessTree: true);   // SIGKILL on Linux: no cleanup runs
                    p.WaitForExit();
                }
                var (step, _, _) = Checkpoint.Load(path, state);   // throws if damaged (checksum) or half-written
                if (step >= trial * PerTrial) advanced++;   // this trial's child finished at least one save
            }
            // Two thirds of the trials waited for at least one save; the others may have killed before any.
            Assert.True(advanced >= 120, $"only {advanced} of 200 trials got a new checkpoint written: the kills came too early to test much");
        }
        finally { Directory.Delete(dir, true); }
    }
}
