using System.Diagnostics;
using MiniDeep.Data;
using MiniDeep.Optim;

namespace MiniDeep.Nn;

/// <summary>What one epoch of training measured.</summary>
public sealed record EpochStats(int Epoch, double TrainLoss, double TrainAccuracy, double? TestLoss, double? TestAccuracy,
    double Seconds, double SamplesPerSecond, double LearningRate);

/// <summary>Receives progress from <see cref="Trainer.Fit"/>: a progress bar, log lines, or nothing.</summary>
public interface ITrainingReporter
{
    /// <summary>An epoch begins.</summary>
    void EpochStarted(int epoch, int epochs, int batches);
    /// <summary>A batch finished with this loss.</summary>
    void BatchDone(int batch, double loss);
    /// <summary>An epoch finished (after evaluation).</summary>
    void EpochDone(EpochStats stats, int epochs);
}

/// <summary>One plain line per epoch, for logs and redirected output.</summary>
public sealed class LineReporter(TextWriter output) : ITrainingReporter
{
    /// <inheritdoc/>
    public void EpochStarted(int epoch, int epochs, int batches) { }
    /// <inheritdoc/>
    public void BatchDone(int batch, double loss) { }
    /// <inheritdoc/>
    public void EpochDone(EpochStats s, int epochs) =>
        output.WriteLine(
            $"epoch {s.Epoch}/{epochs}  loss {s.TrainLoss:F4}  train acc {s.TrainAccuracy:P2}" +
            (s.TestAccuracy is { } ta ? $"  test loss {s.TestLoss:F4}  test acc {ta:P2}" : "") +
            $"  {s.Seconds:F1} s  {s.SamplesPerSecond:F0} samples/s");
}

/// <summary>
/// Remembers the parameters and buffers of a model at the epoch with the lowest validation loss offered
/// so far, and puts them back on request (early stopping with restored weights).
/// </summary>
/// <example><code>
/// var best = new BestEpoch(model);
/// Trainer.Fit(model, optimizer, loader, epochs: 20, test: validation, keepBest: best);   // ends at the best epoch
/// Console.WriteLine($"kept epoch {best.Epoch}, validation loss {best.Loss:F4}");
/// </code></example>
public sealed class BestEpoch(Module model)
{
    private Dictionary<string, Tensor>? _state;

    /// <summary>The model watched.</summary>
    public Module Model { get; } = model;
    /// <summary>The best epoch so far (as numbered by whoever offers them); 0 before any.</summary>
    public int Epoch { get; private set; }
    /// <summary>Its loss; +∞ before any.</summary>
    public double Loss { get; private set; } = double.PositiveInfinity;

    /// <summary>Offers the model's current state after <paramref name="epoch"/> with this validation loss; a copy is
    /// kept when the loss is strictly lower than every one before (of equal losses the earlier epoch stays; a NaN
    /// loss is never the best). Returns whether it was kept.</summary>
    public bool Offer(int epoch, double loss)
    {
        if (!(loss < Loss)) return false;
        (Epoch, Loss, _state) = (epoch, loss, Model.StateDict());
        return true;
    }

    /// <summary>Puts the best state back into the model (nothing happens before an offer was kept).</summary>
    public void Restore()
    {
        if (_state is not null) Model.LoadStateDict(_state);
    }
}

/// <summary>
/// A thin training loop for classifiers: forward, loss, backward, optimizer step, per-epoch metrics.
/// It is a convenience, not a framework; experiments that need something else write their own loop
/// with the same three calls (<c>loss.Backward()</c>, <c>optimizer.Step()</c>, <c>optimizer.ZeroGrad()</c>).
/// </summary>
public static class Trainer
{
    /// <summary>Cross-entropy of logits against int32 labels: the default loss.</summary>
    public static Tensor CrossEntropy(Tensor logits, Tensor labels) => Losses.CrossEntropy(logits, labels);

    /// <summary>Trains <paramref name="model"/> for <paramref name="epochs"/> epochs and returns the per-epoch history.</summary>
    /// <param name="model">The model; left in eval mode at the end.</param>
    /// <param name="optimizer">The optimizer over the model's parameters.</param>
    /// <param name="train">Batches of the training set.</param>
    /// <param name="epochs">Passes over the training set.</param>
    /// <param name="test">Evaluated after each epoch when given.</param>
    /// <param name="loss">Loss of (output, target); cross-entropy by default.</param>
    /// <param name="scheduler">Stepped once per batch when given.</param>
    /// <param name="reporter">Progress display.</param>
    /// <param name="capture">Capture the step (forward, loss, backward) on the first batch and replay it
    /// for every later batch of the same shape (<see cref="StepCapture"/>; CPU only): the same numbers,
    /// bit for bit, without building tensors and graph nodes each step. Forward hooks then run on
    /// the first batch only; a batch of another shape (a short last one) runs eagerly.</param>
    /// <param name="keepBest">With <paramref name="test"/> (then a validation set, not the test set you report):
    /// each epoch's loss on it is offered to this <see cref="BestEpoch"/> of <paramref name="model"/>, and at
    /// the end the best epoch's parameters and buffers are put back, as early stopping with restored
    /// weights does (the optimizer's state is not put back); <see cref="BestEpoch.Epoch"/> says which
    /// epoch that was. The history still lists every epoch.</param>
    public static List<EpochStats> Fit(Module model, Optimizer optimizer, DataLoader train, int epochs, IDataset? test = null,
        Func<Tensor, Tensor, Tensor>? loss = null, LrScheduler? scheduler = null, ITrainingReporter? reporter = null, bool capture = false,
        BestEpoch? keepBest = null)
    {
        if (keepBest is not null && test is null) throw new ArgumentException("Trainer.Fit: keepBest needs a validation set to choose the epoch by (test)", nameof(keepBest));
        if (keepBest is not null && keepBest.Model != model) throw new ArgumentException("Trainer.Fit: keepBest watches another model than the one trained", nameof(keepBest));
        if (epochs < 0) throw new ArgumentOutOfRangeException(nameof(epochs), $"Trainer.Fit: epochs must be non-negative, got {epochs}");
        if (epochs > 0 && train.BatchesPerEpoch == 0)
            throw new ArgumentException($"Trainer.Fit: the loader yields no batch ({train.Dataset.Count} examples, batch size {train.BatchSize}{(train.DropLast ? ", the short last batch dropped" : "")}); every epoch would report a loss of 0", nameof(train));
        // An optimizer made for another model steps nothing this model computes: the epochs would run,
        // and report, without the model learning anything.
        var owned = new HashSet<Tensor>(model.Parameters(), ReferenceEqualityComparer.Instance);
        if (!optimizer.Groups.SelectMany(g => g.Params).Any(owned.Contains))
            throw new ArgumentException("Trainer.Fit: the optimizer updates none of the model's parameters (was it made for another model?)", nameof(optimizer));
        loss ??= CrossEntropy;
        var history = new List<EpochStats>();
        CapturedStep? step = null;
        Tensor? stepX = null, stepY = null, stepOutput = null;
        for (int e = 1; e <= epochs; e++)
        {
            model.Train();
            var clock = Stopwatch.StartNew();
            reporter?.EpochStarted(e, epochs, train.BatchesPerEpoch);
            double lossSum = 0;
            long correct = 0, seen = 0;
            int batchIndex = 0;
            foreach (var batch in train.NextEpoch())
            {
                Tensor output, l;
                if (capture && step is null && batch.X.Device == Device.Cpu && batch.Y.Device == Device.Cpu)
                {
                    // The captured inputs: each later batch is copied into them before a replay.
                    stepX = batch.X.Detach().Clone();
                    stepY = batch.Y.Detach().Clone();
                    step = StepCapture.Capture(model.Parameters(), () =>
                    {
                        stepOutput = model.Forward(stepX);
                        var captured = loss(stepOutput, stepY);
                        captured.Backward();
                        return captured;
                    });
                    (output, l) = (stepOutput!, step.Output);
                }
                else if (step is not null && batch.X.Shape == stepX!.Shape && batch.Y.Shape == stepY!.Shape)
                {
                    stepX.CopyFrom(batch.X);
                    stepY.CopyFrom(batch.Y);
                    l = step.Replay();
                    output = stepOutput!;
                }
                else
                {
                    output = model.Forward(batch.X);
                    l = loss(output, batch.Y);
                    optimizer.ZeroGrad();
                    l.Backward();
                }
                optimizer.Step();
                scheduler?.Step();
                double lv = l.Item();
                int n = batch.X.Size(0);
                lossSum += lv * n;
                seen += n;
                if (output.Rank == 2 && batch.Y.DType == DType.Int32) correct += Correct(output, batch.Y);
                reporter?.BatchDone(++batchIndex, lv);
            }
            double trainSeconds = clock.Elapsed.TotalSeconds;
            (double Loss, double Accuracy)? eval = test is null ? null : Evaluate(model, test, batchSize: 250, loss: loss);
            var stats = new EpochStats(e, lossSum / Math.Max(seen, 1), (double)correct / Math.Max(seen, 1), eval?.Loss, eval?.Accuracy,
                trainSeconds, seen / Math.Max(trainSeconds, 1e-9), optimizer.Groups[0].Lr);
            history.Add(stats);
            reporter?.EpochDone(stats, epochs);
            keepBest?.Offer(e, eval!.Value.Loss);
        }
        keepBest?.Restore();
        model.Eval();
        return history;
    }

    /// <summary>Mean loss and accuracy of a classifier over a dataset, in eval mode and without recording.
    /// Batches of 250 by default: a CNN's activations for 1,000 images run to ~100 MB per layer, fresh
    /// memory each time (page faults cost ~17 µs each on the reference machine), while 250 stay within
    /// sizes the buffer pool recycles.</summary>
    public static (double Loss, double Accuracy) Evaluate(Module model, IDataset data, int batchSize = 250, Func<Tensor, Tensor, Tensor>? loss = null)
    {
        // With no examples there is no mean: (0, 0) would read as a perfect loss and a zero accuracy.
        if (data.Count == 0) throw new ArgumentException("Trainer.Evaluate: the dataset is empty", nameof(data));
        loss ??= CrossEntropy;
        bool wasTraining = model.IsTraining;
        model.Eval();
        try
        {
            using var _ = Autograd.NoGrad();
            double lossSum = 0;
            long correct = 0;
            var loader = new DataLoader(data, batchSize);
            foreach (var batch in loader.NextEpoch())
            {
                var output = model.Forward(batch.X);
                lossSum += loss(output, batch.Y).Item() * batch.X.Size(0);
                correct += Correct(output, batch.Y);
            }
            return (lossSum / Math.Max(data.Count, 1), (double)correct / Math.Max(data.Count, 1));
        }
        finally
        {
            model.Train(wasTraining);
        }
    }

    /// <summary>Predicted classes (argmax of the outputs) of a whole dataset.</summary>
    public static int[] Predict(Module model, IDataset data, int batchSize = 250)
    {
        bool wasTraining = model.IsTraining;
        model.Eval();
        try
        {
            using var _ = Autograd.NoGrad();
            var result = new List<int>(data.Count);
            foreach (var batch in new DataLoader(data, batchSize).NextEpoch())
                result.AddRange(model.Forward(batch.X).ArgMax(1).ToArray<int>());
            return [.. result];
        }
        finally
        {
            model.Train(wasTraining);
        }
    }

    private static long Correct(Tensor logits, Tensor labels)
    {
        using var _ = Autograd.NoGrad();
        var pred = logits.ArgMax(1).ToArray<int>();
        var y = labels.ToArray<int>();
        long c = 0;
        for (int i = 0; i < pred.Length; i++) if (pred[i] == y[i]) c++;
        return c;
    }
}
