using MiniDeep.Optim;

namespace MiniDeep.Compression;

/// <summary>
/// Magnitude pruning (Han, Pool, Tran &amp; Dally 2015): a 0/1 mask per weight tensor that keeps its
/// largest-magnitude entries. Masks are built per layer (each tensor keeps its own fraction) or
/// globally (one magnitude threshold across all of them), and are monotone when built from a previous
/// set: a weight pruned once stays pruned, so an iterative schedule only ever removes more.
/// </summary>
/// <remarks>
/// Retraining with a mask needs two things, both done by <see cref="Attach"/>: the pruned weights'
/// gradients are zeroed (a hook on each weight, so optimizer state such as momentum never sees them),
/// and the mask is re-applied after every step (Adam's update m/√v and weight decay would otherwise move
/// a zero weight whose running averages are not yet zero).
/// </remarks>
public sealed class PruningMasks
{
    private readonly Dictionary<Tensor, Tensor> _masks = new(ReferenceEqualityComparer.Instance);
    private readonly List<Tensor> _weights = [];

    private PruningMasks() { }

    /// <summary>The pruned tensors, in the order given.</summary>
    public IReadOnlyList<Tensor> Weights => _weights;

    /// <summary>The 0/1 mask of <paramref name="weight"/> (its dtype and shape).</summary>
    public Tensor MaskOf(Tensor weight) =>
        _masks.TryGetValue(weight, out var m) ? m : throw new ArgumentException($"PruningMasks: no mask for a tensor of shape {weight.Shape}");

    /// <summary>Entries of <paramref name="weight"/> the mask keeps.</summary>
    public long KeptOf(Tensor weight) => (long)MaskOf(weight).Sum().Item();

    /// <summary>Fraction of <paramref name="weight"/>'s entries the mask keeps.</summary>
    public double DensityOf(Tensor weight) => KeptOf(weight) / (double)weight.Numel;

    /// <summary>Fraction of all masked entries that are kept.</summary>
    public double Density => _weights.Sum(KeptOf) / (double)_weights.Sum(w => (long)w.Numel);

    /// <summary>
    /// Per-layer pruning: each tensor keeps the round(keep × size) entries of largest magnitude (ties
    /// broken by position, so the mask is deterministic). With <paramref name="previous"/>, entries it
    /// pruned stay pruned.
    /// </summary>
    public static PruningMasks PerLayer(IEnumerable<(Tensor Weight, double Keep)> layers, PruningMasks? previous = null)
    {
        var masks = new PruningMasks();
        foreach (var (w, keep) in layers)
        {
            CheckKeep("PerLayer", keep);
            var magnitude = Magnitudes(w, previous);
            masks.Add(w, KeepLargest(magnitude, (long)Math.Round(keep * magnitude.Length)), previous);
        }
        return masks;
    }

    /// <summary>
    /// Global pruning: one ranking of magnitudes across all tensors keeps round(keep × total) entries,
    /// so layers with larger weights keep more of theirs. With <paramref name="previous"/>, entries it
    /// pruned stay pruned.
    /// </summary>
    public static PruningMasks Global(IReadOnlyList<Tensor> weights, double keep, PruningMasks? previous = null)
    {
        CheckKeep("Global", keep);
        if (weights.Count == 0) throw new ArgumentException("PruningMasks.Global: no weights given");
        var all = weights.Select(w => Magnitudes(w, previous)).ToArray();
        var joined = all.SelectMany(a => a).ToArray();
        var keptJoined = KeepLargest(joined, (long)Math.Round(keep * joined.Length));
        var masks = new PruningMasks();
        int offset = 0;
        for (int i = 0; i < weights.Count; i++)
        {
            masks.Add(weights[i], keptJoined.AsSpan(offset, all[i].Length).ToArray(), previous);
            offset += all[i].Length;
        }
        return masks;
    }

    /// <summary>Zeroes the pruned entries of every weight, in place.</summary>
    public void Apply()
    {
        using var _ = Autograd.NoGrad();
        foreach (var w in _weights) w.MulInPlace(_masks[w]);
    }

    /// <summary>
    /// Applies the masks now and keeps them through training with <paramref name="optimizer"/>: pruned
    /// weights get zero gradients and are zeroed again after every step. Dispose to detach.
    /// </summary>
    public IDisposable Attach(Optimizer optimizer)
    {
        Apply();
        var handles = new List<IDisposable>();
        foreach (var w in _weights)
        {
            var mask = _masks[w];
            if (w.RequiresGrad) handles.Add(w.RegisterHook(g => g * mask));
        }
        handles.Add(optimizer.RegisterStepHook(Apply));
        return new Handles(handles);
    }

    private sealed class Handles(List<IDisposable> handles) : IDisposable
    {
        public void Dispose() { foreach (var h in handles) h.Dispose(); }
    }

    private void Add(Tensor w, bool[] keep, PruningMasks? previous)
    {
        if (_masks.ContainsKey(w)) throw new ArgumentException($"PruningMasks: the tensor of shape {w.Shape} is given twice");
        var data = new float[keep.Length];
        for (int i = 0; i < keep.Length; i++) data[i] = keep[i] ? 1 : 0;
        _masks[w] = Tensor.FromArray(data, w.Shape.ToArray()).To(w.DType).To(w.Device);
        _weights.Add(w);
    }

    // |w|, with entries a previous mask pruned set to −1 so that they rank below every live weight
    // (including live zeros) and are never kept again.
    private static double[] Magnitudes(Tensor w, PruningMasks? previous)
    {
        var values = w.ToDoubleArray();
        var m = new double[values.Length];
        float[]? prior = previous is not null && previous._masks.TryGetValue(w, out var pm) ? pm.ToFloatArray() : null;
        for (int i = 0; i < m.Length; i++) m[i] = prior is not null && prior[i] == 0 ? -1 : Math.Abs(values[i]);
        return m;
    }

    private static bool[] KeepLargest(double[] magnitude, long count)
    {
        var order = Enumerable.Range(0, magnitude.Length).ToArray();
        // Largest first; equal magnitudes by position, so the result never depends on the sort's stability.
        Array.Sort(order, (a, b) => magnitude[a] != magnitude[b] ? magnitude[b].CompareTo(magnitude[a]) : a.CompareTo(b));
        var keep = new bool[magnitude.Length];
        for (long i = 0; i < count; i++)
            if (magnitude[order[i]] >= 0) keep[order[i]] = true;
        return keep;
    }

    private static void CheckKeep(string op, double keep)
    {
        if (!(keep >= 0 && keep <= 1)) throw new ArgumentOutOfRangeException(nameof(keep), $"PruningMasks.{op}: the fraction kept must lie in [0, 1], got {keep}");
    }
}

/// <summary>
/// Iterative prune-and-retrain (Han et al. 2015): several rounds, each pruning a little more and then
/// retraining with the mask in place, which loses far less accuracy than pruning once to the end.
/// </summary>
public static class IterativePruning
{
    /// <summary>
    /// The fraction kept after each of <paramref name="rounds"/> rounds, falling geometrically from 1 to
    /// <paramref name="finalKeep"/> (each round removes the same share of what is left).
    /// </summary>
    public static double[] GeometricSchedule(double finalKeep, int rounds)
    {
        if (rounds < 1) throw new ArgumentOutOfRangeException(nameof(rounds), $"IterativePruning: at least one round, got {rounds}");
        if (!(finalKeep > 0 && finalKeep <= 1)) throw new ArgumentOutOfRangeException(nameof(finalKeep), $"IterativePruning: the final fraction kept must lie in (0, 1], got {finalKeep}");
        return Enumerable.Range(1, rounds).Select(r => r == rounds ? finalKeep : Math.Pow(finalKeep, r / (double)rounds)).ToArray();
    }

    /// <summary>
    /// Prunes each tensor per layer to its final fraction over <paramref name="rounds"/> geometric
    /// rounds; after each round's masks are built and applied, <paramref name="retrain"/> gets them
    /// (to <see cref="PruningMasks.Attach"/> to its optimizer) and the round number (1-based). Returns
    /// the final masks.
    /// </summary>
    public static PruningMasks PerLayer(IReadOnlyList<(Tensor Weight, double FinalKeep)> layers, int rounds, Action<PruningMasks, int> retrain)
    {
        var schedules = layers.Select(l => GeometricSchedule(l.FinalKeep, rounds)).ToArray();
        PruningMasks? masks = null;
        for (int r = 0; r < rounds; r++)
        {
            masks = PruningMasks.PerLayer(layers.Select((l, i) => (l.Weight, schedules[i][r])), masks);
            masks.Apply();
            retrain(masks, r + 1);
        }
        return masks!;
    }
}
