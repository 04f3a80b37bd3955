namespace MiniDeep.Compression;

/// <summary>
/// Weight sharing by k-means (Han, Mao &amp; Dally 2016): the live (unpruned) weights of one tensor are
/// clustered into k shared values, so each weight is stored as a log2(k)-bit code into a codebook of k
/// floats. Centroids start evenly spaced between the smallest and the largest weight ("linear"
/// initialization: unlike density-based starts it keeps centroids for the few large weights, which
/// matter most), then Lloyd iterations refine them.
/// </summary>
/// <remarks>
/// Fine-tuning the shared values: a centroid stands for every weight coded to it, so its gradient is the
/// sum of theirs, ∂L/∂c_k = Σ_{i: code(i)=k} ∂L/∂w_i (Han et al., Fig. 3). <see cref="StepCentroids"/>
/// applies one SGD step with it and writes the centroids back into the weight tensor.
/// </remarks>
public sealed class SharedWeights
{
    /// <summary>The tensor whose entries are shared (it always holds <see cref="Centroids"/>[code], or 0 where pruned).</summary>
    public Tensor Weight { get; }

    /// <summary>The codebook: the k shared values.</summary>
    public float[] Centroids { get; }

    /// <summary>Per entry of <see cref="Weight"/> (row-major): its centroid's index, or −1 where the entry is pruned.</summary>
    public int[] Codes { get; }

    /// <summary>Bits per code: ⌈log2 k⌉.</summary>
    public int CodeBits => Math.Max(1, (int)Math.Ceiling(Math.Log2(Centroids.Length)));

    private SharedWeights(Tensor weight, float[] centroids, int[] codes)
    {
        Weight = weight;
        Centroids = centroids;
        Codes = codes;
    }

    /// <summary>
    /// Clusters the entries of <paramref name="weight"/> that are not pruned (mask 1, or non-zero when
    /// no mask is given) into <paramref name="clusters"/> shared values and writes them back in place.
    /// </summary>
    public static SharedWeights Cluster(Tensor weight, int clusters, Tensor? mask = null, int iterations = 30)
    {
        if (clusters < 1 || clusters > 65_536) throw new ArgumentOutOfRangeException(nameof(clusters), $"SharedWeights.Cluster: clusters must lie in [1, 65536], got {clusters}");
        if (mask is not null && mask.Shape != weight.Shape)
            throw new ArgumentException($"SharedWeights.Cluster: mask shape {mask.Shape} differs from the weight's {weight.Shape}");
        if (!weight.DType.IsFloating())
            throw new ArgumentException($"SharedWeights.Cluster: the weight must be floating point, got {weight.DType.Name()} (the shared values would be truncated on write-back)");
        if (iterations < 0) throw new ArgumentOutOfRangeException(nameof(iterations), $"SharedWeights.Cluster: iterations must be non-negative, got {iterations}");
        var w = weight.ToFloatArray();
        var live = mask is null ? w.Select(v => v != 0).ToArray() : mask.ToFloatArray().Select(m => m != 0).ToArray();
        // One NaN or infinity among the live weights becomes an endpoint of the linear start and drags
        // every centroid to it: the whole layer would be written back as NaN or ±∞.
        for (int i = 0; i < w.Length; i++)
            if (live[i] && !float.IsFinite(w[i]))
                throw new ArgumentException($"SharedWeights.Cluster: the weight of shape {weight.Shape} holds {w[i]} at flat index {i}");
        var values = w.Where((_, i) => live[i]).ToArray();
        if (values.Length == 0) throw new ArgumentException($"SharedWeights.Cluster: every entry of the weight of shape {weight.Shape} is pruned");

        // Lloyd's algorithm in one dimension: with the values sorted, every cluster is a contiguous run,
        // and the boundaries are the midpoints between neighbouring centroids.
        var sorted = (float[])values.Clone();
        Array.Sort(sorted);
        int k = Math.Min(clusters, sorted.Length);
        var c = new double[k];
        double lo = sorted[0], hi = sorted[^1];
        for (int j = 0; j < k; j++) c[j] = k == 1 ? (lo + hi) / 2 : lo + (hi - lo) * j / (k - 1);
        for (int it = 0; it < iterations; it++)
        {
            var sum = new double[k];
            var count = new int[k];
            int j = 0;
            foreach (float v in sorted)
            {
                while (j + 1 < k && v > (c[j] + c[j + 1]) / 2) j++;
                sum[j] += v; count[j]++;
            }
            bool moved = false;
            for (int q = 0; q < k; q++)
                if (count[q] > 0)
                {
                    double next = sum[q] / count[q];
                    moved |= next != c[q];
                    c[q] = next;
                }
            // An empty cluster keeps its place; the centroids stay sorted either way, since each mean lies within its run.
            if (!moved) break;
        }

        var centroids = c.Select(x => (float)x).ToArray();
        Array.Sort(centroids);   // float rounding must not break the order Nearest's binary search needs
        var codes = new int[w.Length];
        for (int i = 0; i < w.Length; i++) codes[i] = live[i] ? Nearest(centroids, w[i]) : -1;
        var shared = new SharedWeights(weight, centroids, codes);
        shared.WriteBack();
        return shared;
    }

    /// <summary>Writes centroid[code] into every live entry of <see cref="Weight"/> and 0 into pruned ones, in place.</summary>
    public void WriteBack()
    {
        var data = new float[Codes.Length];
        for (int i = 0; i < data.Length; i++) data[i] = Codes[i] < 0 ? 0 : Centroids[Codes[i]];
        using var _ = Autograd.NoGrad();
        Weight.CopyFrom(Tensor.FromArray(data, Weight.Shape.ToArray()).To(Weight.DType));
    }

    /// <summary>The gradient of each centroid: the sum of the gradients of the entries coded to it.</summary>
    public double[] CentroidGradients()
    {
        var grad = Weight.Grad?.ToFloatArray() ?? throw new InvalidOperationException("SharedWeights.CentroidGradients: the weight has no gradient (call Backward first)");
        var g = new double[Centroids.Length];
        for (int i = 0; i < Codes.Length; i++)
            if (Codes[i] >= 0) g[Codes[i]] += grad[i];
        return g;
    }

    /// <summary>One SGD step on the centroids, c ← c − lr·∂L/∂c, written back into the weight.</summary>
    public void StepCentroids(double lr)
    {
        Checks.NonNegative(lr, "learning rate", "SharedWeights.StepCentroids");
        var g = CentroidGradients();
        for (int k = 0; k < Centroids.Length; k++) Centroids[k] = (float)(Centroids[k] - lr * g[k]);
        WriteBack();
    }

    /// <summary>Live entries of each centroid (how often each code occurs).</summary>
    public long[] CodeCounts()
    {
        var counts = new long[Centroids.Length];
        foreach (int code in Codes) if (code >= 0) counts[code]++;
        return counts;
    }

    private static int Nearest(float[] sortedCentroids, float v)
    {
        int idx = Array.BinarySearch(sortedCentroids, v);
        if (idx >= 0) return idx;
        idx = ~idx;
        if (idx == 0) return 0;
        if (idx == sortedCentroids.Length) return idx - 1;
        return v - sortedCentroids[idx - 1] <= sortedCentroids[idx] - v ? idx - 1 : idx;
    }
}
