namespace MiniDeep.Data;

/// <summary>A batch of inputs and targets.</summary>
public sealed record Batch(Tensor X, Tensor Y);

/// <summary>An indexable collection of examples that can be fetched a batch at a time.</summary>
public interface IDataset
{
    /// <summary>Number of examples.</summary>
    int Count { get; }

    /// <summary>The examples at <paramref name="indices"/>, stacked along a new first axis, in that order.</summary>
    Batch Get(int[] indices);
}

/// <summary>Examples held as two tensors whose first axis indexes examples.</summary>
public sealed class TensorDataset : IDataset
{
    /// <summary>Inputs (N, ...).</summary>
    public Tensor X { get; }
    /// <summary>Targets (N, ...).</summary>
    public Tensor Y { get; }

    /// <summary>Pairs inputs with targets; both must have the same number of examples.</summary>
    public TensorDataset(Tensor x, Tensor y)
    {
        if (x.Rank == 0 || y.Rank == 0 || x.Size(0) != y.Size(0))
            throw new ShapeMismatchException("TensorDataset", $"TensorDataset: inputs {x.Shape} and targets {y.Shape} must have the same number of examples on axis 0");
        X = x;
        Y = y;
    }

    /// <inheritdoc/>
    public int Count => X.Size(0);

    /// <inheritdoc/>
    public Batch Get(int[] indices)
    {
        var idx = Tensor.FromArray(indices, [indices.Length], X.Device);
        return new Batch(X.IndexSelect(0, idx), Y.IndexSelect(0, idx));
    }

    /// <summary>Everything as one batch.</summary>
    public Batch All() => new(X, Y);
}

/// <summary>Datasets built from other datasets.</summary>
public static class Dataset
{
    /// <summary>The examples of <paramref name="source"/> at <paramref name="indices"/>, in that order.</summary>
    public static IDataset Subset(IDataset source, int[] indices)
    {
        foreach (var i in indices)
            if ((uint)i >= (uint)source.Count)
                throw new ArgumentOutOfRangeException(nameof(indices), $"Subset: index {i} is outside a dataset of {source.Count} examples");
        return new SubsetDataset(source, (int[])indices.Clone());
    }

    /// <summary>The first <paramref name="count"/> examples.</summary>
    public static IDataset Take(IDataset source, int count) =>
        count < 0 ? throw new ArgumentOutOfRangeException(nameof(count), $"Take: count must be non-negative, got {count}") : Subset(source, Enumerable.Range(0, Math.Min(count, source.Count)).ToArray());

    /// <summary>The datasets one after another.</summary>
    public static IDataset Concat(params IDataset[] parts) => new ConcatDataset(parts);

    /// <summary>A dataset whose batches pass through <paramref name="transform"/> (normalize, flatten, shift, corrupt labels...).</summary>
    public static IDataset Transform(IDataset source, Func<Batch, Batch> transform) => new TransformDataset(source, transform);

    /// <summary>All examples of a dataset as one batch.</summary>
    public static Batch Materialize(IDataset source) => source.Get(Enumerable.Range(0, source.Count).ToArray());

    private sealed class SubsetDataset(IDataset source, int[] map) : IDataset
    {
        public int Count => map.Length;
        public Batch Get(int[] indices) => source.Get(indices.Select(i => map[i]).ToArray());
    }

    private sealed class TransformDataset(IDataset source, Func<Batch, Batch> transform) : IDataset
    {
        public int Count => source.Count;
        public Batch Get(int[] indices) => transform(source.Get(indices));
    }

    private sealed class ConcatDataset : IDataset
    {
        private readonly IDataset[] _parts;
        private readonly int[] _starts;
        public ConcatDataset(IDataset[] parts)
        {
            if (parts.Length == 0) throw new ArgumentException("Concat: no datasets given");
            _parts = parts;
            _starts = new int[parts.Length + 1];
            for (int i = 0; i < parts.Length; i++) _starts[i + 1] = _starts[i] + parts[i].Count;
        }
        public int Count => _starts[^1];
        public Batch Get(int[] indices)
        {
            // Fetch from each part in one call, then put the examples back in the requested order.
            var owner = indices.Select(i => Array.FindLastIndex(_starts, s => s <= i && s < _starts[^1])).ToArray();
            var xs = new List<Tensor>(); var ys = new List<Tensor>();
            var order = new List<int>();
            for (int p = 0; p < _parts.Length; p++)
            {
                var mine = Enumerable.Range(0, indices.Length).Where(k => owner[k] == p).ToArray();
                if (mine.Length == 0) continue;
                var b = _parts[p].Get(mine.Select(k => indices[k] - _starts[p]).ToArray());
                xs.Add(b.X); ys.Add(b.Y);
                order.AddRange(mine);
            }
            var x = Tensor.Concat(xs);
            var y = Tensor.Concat(ys);
            var inverse = new int[order.Count];
            for (int k = 0; k < order.Count; k++) inverse[order[k]] = k;
            var idx = Tensor.FromArray(inverse);
            return new Batch(x.IndexSelect(0, idx), y.IndexSelect(0, idx));
        }
    }
}
