using MiniDeep.Data;
using MiniDeep.Nn;
using MiniDeep.Optim;

namespace MiniDeep.Experiments.Lab;

/// <summary>
/// Models and training loops the claims share. Every model takes raw pixels in [0, 1] and starts with
/// a <see cref="Standardize"/> layer fitted on its own training set, so attacks and their ε live in
/// pixel space, as in the papers.
/// </summary>
public static class LabModels
{
    /// <summary>A fully connected ReLU network: Standardize, Flatten, then Linear layers of the given widths.</summary>
    public static Sequential Mlp(Tensor trainX, Generator g, params int[] widths)
    {
        var layers = new List<Module> { Standardize.Fit(trainX), new Flatten() };
        for (int i = 0; i + 1 < widths.Length; i++)
        {
            layers.Add(new Linear(widths[i], widths[i + 1], generator: g));
            if (i + 2 < widths.Length) layers.Add(Activations.ReLU());
        }
        return new Sequential([.. layers]);
    }

    /// <summary>Trains with Adam and a cosine decay to 0 over all steps; the model ends in eval mode.</summary>
    public static List<EpochStats> Fit(Module model, IDataset train, int epochs, int batchSize, double lr, ulong seed,
        IDataset? test = null, double weightDecay = 0, bool cosine = true)
    {
        var optimizer = new Adam(model.Parameters(), lr, weightDecay: weightDecay);
        var loader = new DataLoader(train, batchSize, shuffle: true, seed: seed);
        LrScheduler? schedule = cosine ? new CosineLr(optimizer, epochs * loader.BatchesPerEpoch) : null;
        return Trainer.Fit(model, optimizer, loader, epochs, test, scheduler: schedule);
    }

    /// <summary>Fraction of <paramref name="x"/> the model misclassifies.</summary>
    public static double Error(Module model, Tensor x, Tensor y) => 1 - Accuracy(model, x, y);

    /// <summary>Fraction of <paramref name="x"/> the model classifies correctly.</summary>
    public static double Accuracy(Module model, Tensor x, Tensor y) => Trainer.Evaluate(model, new TensorDataset(x, y)).Accuracy;

    /// <summary>Predicted classes.</summary>
    public static int[] Predict(Module model, Tensor x) => Trainer.Predict(model, new TensorDataset(x, Tensor.Zeros(new Shape(x.Size(0)), DType.Int32)));

    /// <summary>FGSM examples for a whole set, crafted in batches.</summary>
    public static Tensor FgsmAll(Module model, Tensor x, Tensor y, double epsilon, int batch = 250) =>
        Batched(x, y, batch, (xb, yb) => Attacks.GradientAttacks.Fgsm(model, xb, yb, epsilon));

    /// <summary>Applies <paramref name="f"/> to batches of (x, y) and concatenates the results.</summary>
    public static Tensor Batched(Tensor x, Tensor y, int batch, Func<Tensor, Tensor, Tensor> f)
    {
        var parts = new List<Tensor>();
        for (int s = 0; s < x.Size(0); s += batch)
        {
            int len = Math.Min(batch, x.Size(0) - s);
            parts.Add(f(x.Narrow(0, s, len).Contiguous(), y.Narrow(0, s, len).Contiguous()));
        }
        return Tensor.Concat(parts);
    }

    /// <summary>Median of a few values (the lab reports medians of seeds).</summary>
    public static double Median(IEnumerable<double> values)
    {
        var v = values.OrderBy(x => x).ToArray();
        if (v.Length == 0) return double.NaN;
        return v.Length % 2 == 1 ? v[v.Length / 2] : (v[v.Length / 2 - 1] + v[v.Length / 2]) / 2;
    }

    /// <summary><paramref name="count"/> examples of a set drawn without replacement (a fixed subset for a seed).</summary>
    public static TensorDataset RandomSubset(TensorDataset d, int count, Generator g)
    {
        var pick = Tensor.RandPerm(d.Count, g).Narrow(0, 0, Math.Min(count, d.Count));
        return new TensorDataset(d.X.IndexSelect(0, pick), d.Y.IndexSelect(0, pick));
    }

    /// <summary>The first <paramref name="count"/> images of a set, as one (x, y) pair.</summary>
    public static (Tensor X, Tensor Y) Head(TensorDataset d, int count)
    {
        int n = Math.Min(count, d.Count);
        return (d.X.Narrow(0, 0, n).Contiguous(), d.Y.Narrow(0, 0, n).Contiguous());
    }

    /// <summary>The pixels of image <paramref name="i"/> of a batch (for image grids).</summary>
    public static float[] Pixels(Tensor x, int i) => x.Narrow(0, i, 1).Contiguous().ToArray<float>();
}
