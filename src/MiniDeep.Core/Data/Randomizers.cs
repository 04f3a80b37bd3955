namespace MiniDeep.Data;

/// <summary>
/// The corruptions of Zhang et al. 2017 ("Understanding deep learning requires rethinking
/// generalization"), applied to a whole data set with a seed: label noise, one fixed pixel
/// permutation, a fresh permutation per image, and Gaussian images with the data's statistics.
/// </summary>
public static class Randomizers
{
    /// <summary>Each label replaced, with probability <paramref name="p"/>, by a class drawn uniformly from all
    /// classes (so about p/classes of the replaced labels stay correct, as in the paper).</summary>
    public static TensorDataset CorruptLabels(TensorDataset d, double p, int classes, Generator g)
    {
        if (!(p >= 0 && p <= 1)) throw new ArgumentOutOfRangeException(nameof(p), $"CorruptLabels: p must lie in [0, 1], got {p}");
        if (classes < 1) throw new ArgumentOutOfRangeException(nameof(classes), $"CorruptLabels: at least one class, got {classes}");
        if (d.Y.DType != DType.Int32) throw new ArgumentException($"CorruptLabels: class labels must be int32, got {d.Y.DType.Name()}");
        // Checked before drawing, so that a bad call leaves the generator where it was.
        var y = d.Y.ToArray<int>();
        foreach (int label in y)
            if ((uint)label >= (uint)classes)
                throw new ArgumentOutOfRangeException(nameof(classes), $"CorruptLabels: label {label} lies outside the {classes} classes [0, {classes})");
        var replace = Tensor.Bernoulli(d.Y.Shape, p, g, DType.Bool);
        var random = Tensor.Randint(0, classes, d.Y.Shape, g);
        var r = random.ToArray<int>();
        var m = replace.ToArray<bool>();
        for (int i = 0; i < y.Length; i++) if (m[i]) y[i] = r[i];
        return new TensorDataset(d.X, Tensor.FromArray(y, d.Y.Shape.ToArray()));
    }

    /// <summary>One random permutation of the pixels, the same for every image (and for the test set
    /// when it is given the same generator seed): the spatial structure is gone, the content is not.</summary>
    public static TensorDataset ShufflePixels(TensorDataset d, int[] permutation)
    {
        int features = d.X.Numel / Math.Max(d.Count, 1);
        if (permutation.Length != features)
            throw new ArgumentException($"ShufflePixels: a permutation of {permutation.Length} for images of {features} pixels");
        var seen = new bool[features];
        foreach (int i in permutation)
        {
            if ((uint)i >= (uint)features) throw new ArgumentException($"ShufflePixels: pixel {i} in the permutation lies outside [0, {features})");
            if (seen[i]) throw new ArgumentException($"ShufflePixels: pixel {i} appears twice in the permutation (a duplicate drops another pixel)");
            seen[i] = true;
        }
        var flat = d.X.Reshape(d.Count, features);
        var shuffled = flat.IndexSelect(1, Tensor.FromArray(permutation));
        return new TensorDataset(shuffled.Reshape(d.X.Shape.ToArray()), d.Y);
    }

    /// <summary>A fresh random permutation of the pixels for every image.</summary>
    public static TensorDataset RandomPixels(TensorDataset d, Generator g)
    {
        int n = d.Count, features = d.X.Numel / Math.Max(n, 1);
        var src = d.X.Reshape(n, features).ToArray<float>();
        var dst = new float[src.Length];
        for (int i = 0; i < n; i++)
        {
            var perm = Tensor.RandPerm(features, g).ToArray<int>();
            for (int k = 0; k < features; k++) dst[i * features + k] = src[i * features + perm[k]];
        }
        return new TensorDataset(Tensor.FromArray(dst, d.X.Shape.ToArray()), d.Y);
    }

    /// <summary>Gaussian images with the per-pixel mean and standard deviation of <paramref name="statistics"/>
    /// (by default the data itself), one independent draw per image.</summary>
    public static TensorDataset GaussianInputs(TensorDataset d, Generator g, TensorDataset? statistics = null)
    {
        var s = (statistics ?? d).X;
        var mean = s.Mean(0, keepDim: true);
        var std = s.Std(0, keepDim: true, correction: 0);
        var noise = Tensor.Randn(d.X.Shape, g, dtype: d.X.DType, device: d.X.Device);
        using var _ = Autograd.NoGrad();
        return new TensorDataset(noise * std + mean, d.Y);
    }
}
