using MiniDeep;
using MiniDeep.Data;
using MiniDeep.IO;
using MiniDeep.Nn;
using MiniDeep.Optim;

// `save-loop PATH FIRST`: saves a checkpoint of a 1.1M-parameter model over PATH again and again, with
//   steps FIRST, FIRST + 1, ..., until killed.
// `train STEPS [--save-at K PATH] [--resume PATH]`: runs the test's training run, printing each step's
//   loss as the hex of its bits, saving after step K or starting from a checkpoint.
if (args.Length == 3 && args[0] == "save-loop")
{
    var model = new Sequential(new Linear(1024, 1024), Activations.ReLU(), new Linear(1024, 64));
    var state = new TrainingState(model);
    Console.WriteLine("ready");   // the parent times its kill from here, not from the process start
    Console.Out.Flush();
    for (long step = long.Parse(args[2]); ; step++)
    {
        Checkpoint.Save(args[1], state, step, 0);
        Console.WriteLine($"saved {step}");
        Console.Out.Flush();
    }
}
if (args.Length >= 2 && args[0] == "train")
{
    int steps = int.Parse(args[1]);
    int saveAt = -1; string? savePath = null, resumePath = null;
    for (int i = 2; i < args.Length; i++)
    {
        if (args[i] == "--save-at") { saveAt = int.Parse(args[++i]); savePath = args[++i]; }
        else if (args[i] == "--resume") resumePath = args[++i];
    }
    var run = new CheckpointRun(resumePath is null ? 1UL : 77UL);
    int start = 0;
    if (resumePath is not null) start = (int)Checkpoint.Load(resumePath, run.State).Step;
    for (int s = start; s < steps; s++)
    {
        Console.WriteLine($"{s} {BitConverter.SingleToInt32Bits(run.Step()):X8}");
        if (s + 1 == saveAt) { Checkpoint.Save(savePath!, run.State, saveAt, run.Loader.Epoch); return 0; }
    }
    Console.WriteLine($"params {string.Join("", run.Parameters().Select(p => BitConverter.SingleToInt32Bits(p).ToString("X8")))}");
    return 0;
}
Console.Error.WriteLine("usage: save-loop PATH FIRST | train STEPS [--save-at K PATH] [--resume PATH]");
return 2;

/// <summary>
/// A run whose every source of state matters: dropout with its own generator, Adam's moments, a cosine
/// schedule, a shuffling loader stopped mid-epoch, and a generator the loop draws from.
/// </summary>
public sealed class CheckpointRun
{
    public readonly Sequential Model;
    public readonly Adam Optimizer;
    public readonly CosineLr Scheduler;
    public readonly DataLoader Loader;
    public readonly Generator Noise;
    private readonly IEnumerator<Batch> _batches;

    public CheckpointRun(ulong initSeed)
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
