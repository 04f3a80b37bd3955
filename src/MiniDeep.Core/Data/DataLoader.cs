namespace MiniDeep.Data;

/// <summary>Decides the order in which a loader visits examples, epoch by epoch.</summary>
public interface ISampler
{
    /// <summary>The example indices for <paramref name="epoch"/> (0-based), in visiting order.</summary>
    int[] Order(int epoch, int count);
}

/// <summary>Examples in their stored order.</summary>
public sealed class SequentialSampler : ISampler
{
    /// <inheritdoc/>
    public int[] Order(int epoch, int count) => Enumerable.Range(0, count).ToArray();
}

/// <summary>
/// A fresh random permutation each epoch, a pure function of (seed, epoch): the order of epoch 7 is
/// the same whether or not epochs 0–6 ran in this process, which is what resuming from a checkpoint needs.
/// </summary>
public sealed class ShuffleSampler(ulong seed) : ISampler
{
    /// <summary>The seed.</summary>
    public ulong Seed { get; } = seed;

    /// <inheritdoc/>
    public int[] Order(int epoch, int count)
    {
        var keys = new ulong[count];
        var idx = new int[count];
        for (int i = 0; i < count; i++)
        {
            var (a, b, _, _) = Philox.Block(Seed, (ulong)epoch, (ulong)i);
            keys[i] = ((ulong)a << 32) | b;
            idx[i] = i;
        }
        Array.Sort(keys, idx);
        return idx;
    }
}

/// <summary>The same caller-given order every epoch (experiments that vary example order on purpose).</summary>
public sealed class FixedOrderSampler(int[] order) : ISampler
{
    /// <inheritdoc/>
    public int[] Order(int epoch, int count)
    {
        if (order.Length > count || order.Any(i => (uint)i >= (uint)count))
            throw new ArgumentException($"FixedOrderSampler: the order names examples outside a dataset of {count}");
        return (int[])order.Clone();
    }
}

/// <summary>
/// Batches a dataset. The visiting order comes from a sampler: sequential, a seeded shuffle, or a
/// caller-given permutation. <see cref="Epoch"/> and <see cref="Position"/> say where the loader is, so
/// a checkpoint can resume mid-epoch.
/// </summary>
public sealed class DataLoader
{
    /// <summary>A loader over <paramref name="dataset"/>.</summary>
    /// <param name="dataset">The examples.</param>
    /// <param name="batchSize">Examples per batch.</param>
    /// <param name="shuffle">Shuffle each epoch with <paramref name="seed"/> (ignored when a sampler is given).</param>
    /// <param name="seed">Seed of the shuffle.</param>
    /// <param name="dropLast">Skip a last batch smaller than <paramref name="batchSize"/>.</param>
    /// <param name="sampler">Explicit order control; overrides <paramref name="shuffle"/>.</param>
    public DataLoader(IDataset dataset, int batchSize, bool shuffle = false, ulong seed = 0, bool dropLast = false, ISampler? sampler = null)
    {
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), $"DataLoader: batch size must be positive, got {batchSize}");
        Dataset = dataset;
        BatchSize = batchSize;
        DropLast = dropLast;
        Sampler = sampler ?? (shuffle ? new ShuffleSampler(seed) : new SequentialSampler());
    }

    /// <summary>The dataset.</summary>
    public IDataset Dataset { get; }
    /// <summary>Examples per batch.</summary>
    public int BatchSize { get; }
    /// <summary>Whether a short last batch is skipped.</summary>
    public bool DropLast { get; }
    /// <summary>The order policy.</summary>
    public ISampler Sampler { get; }
    /// <summary>The epoch the next batch belongs to.</summary>
    public int Epoch
    {
        get;
        set => field = value >= 0 ? value : throw new ArgumentOutOfRangeException(nameof(Epoch), $"DataLoader.Epoch: must be non-negative, got {value}");
    }
    /// <summary>Batches of the current epoch already handed out.</summary>
    public int Position
    {
        get;
        set => field = value >= 0 ? value : throw new ArgumentOutOfRangeException(nameof(Position), $"DataLoader.Position: must be non-negative, got {value}");
    }

    /// <summary>Batches per epoch.</summary>
    public int BatchesPerEpoch => DropLast ? Dataset.Count / BatchSize : (Dataset.Count + BatchSize - 1) / BatchSize;

    /// <summary>The batches of the current epoch from <see cref="Position"/> on; finishing advances <see cref="Epoch"/>.</summary>
    public IEnumerable<Batch> NextEpoch()
    {
        var order = Sampler.Order(Epoch, Dataset.Count);
        int batches = DropLast ? order.Length / BatchSize : (order.Length + BatchSize - 1) / BatchSize;
        // A position past the end would hand out nothing and still count the epoch as done: a resumed run
        // that silently skips an epoch.
        if (Position > batches)
            throw new InvalidOperationException($"DataLoader: position {Position} is past the {batches} batches of epoch {Epoch} (a checkpoint from another dataset or batch size?)");
        while (Position < batches)
        {
            int start = Position * BatchSize;
            var idx = order.AsSpan(start, Math.Min(BatchSize, order.Length - start)).ToArray();
            Position++;
            yield return Dataset.Get(idx);
        }
        Epoch++;
        Position = 0;
    }
}
