namespace MiniDeep.Data;

/// <summary>
/// Principal components of a data set (rows are examples): the top directions of its covariance,
/// found by orthogonal (subspace) iteration in float64, and the projection onto them.
/// </summary>
/// <example><code>
/// var pca = Pca.Fit(images.Reshape(n, 784), components: 10, new Generator(0));
/// Tensor z = pca.Transform(images.Reshape(n, 784), standardize: true);   // (n, 10), unit variance each
/// </code></example>
public sealed class Pca
{
    private Pca(Tensor mean, Tensor components, double[] variances)
    {
        Mean = mean;
        Components = components;
        Variances = variances;
    }

    /// <summary>The data mean (d), float64.</summary>
    public Tensor Mean { get; }

    /// <summary>The principal directions as rows (k × d), orthonormal, float64, largest variance first.</summary>
    public Tensor Components { get; }

    /// <summary>The variance of the data along each component.</summary>
    public IReadOnlyList<double> Variances { get; }

    /// <summary>
    /// The top <paramref name="components"/> principal components of the rows of <paramref name="x"/> (n × d).
    /// Orthogonal iteration: Q ← orth(C·Q) from a random start until the subspace stops moving (or 500
    /// iterations); its convergence rate is the ratio of the (k+1)-th to the k-th eigenvalue.
    /// </summary>
    public static Pca Fit(Tensor x, int components, Generator generator)
    {
        if (x.Rank != 2) throw new ShapeMismatchException("pca", $"pca: data must be (n, d), got {x.Shape}");
        int n = x.Dims[0], d = x.Dims[1];
        if (components < 1 || components > Math.Min(n, d))
            throw new ArgumentOutOfRangeException(nameof(components), $"pca: {components} components of {n} examples in {d} dimensions");
        using var _ = Autograd.NoGrad();
        var xd = x.Detach().Double();
        // One NaN would turn every component into NaN with no error (the covariance mixes all the rows).
        var values = xd.ToArray<double>();
        for (int i = 0; i < values.Length; i++)
            if (!double.IsFinite(values[i]))
                throw new ArgumentException($"pca: the data hold {values[i]} at row {i / d}, column {i % d}");
        var mean = xd.Mean(0);
        var centered = xd - mean;
        var cov = Tensor.MatMul(centered.mT, centered) / Math.Max(1, n - 1);          // (d, d)
        var q = Orthonormalize(Tensor.Randn(new Shape(d, components), generator, dtype: DType.Float64));
        for (int it = 0; it < 500; it++)
        {
            var next = Orthonormalize(Tensor.MatMul(cov, q));
            // Converged when the new basis spans the old one: ‖Qᵀ·Q_next‖² = k up to round-off.
            double overlap = Tensor.MatMul(q.mT, next).Square().Sum().Item();
            q = next;
            if (components - overlap < 1e-12 * components) break;
        }
        var cq = Tensor.MatMul(cov, q);
        var variances = (q * cq).Sum(0).ToArray<double>();
        // Largest variance first (the iteration does not order the basis by itself).
        var order = Enumerable.Range(0, components).OrderByDescending(i => variances[i]).ToArray();
        var sorted = q.IndexSelect(1, Tensor.FromArray(order));
        return new Pca(mean, sorted.mT.Contiguous(), order.Select(i => variances[i]).ToArray());
    }

    /// <summary>The coordinates of the rows of <paramref name="x"/> along the components (n × k, float64);
    /// with <paramref name="standardize"/>, each divided by its standard deviation.</summary>
    public Tensor Transform(Tensor x, bool standardize = false)
    {
        if (x.Rank != 2 || x.Dims[1] != Mean.Numel)
            throw new ShapeMismatchException("pca", $"pca: data must be (n, {Mean.Numel}), got {x.Shape}");
        using var _ = Autograd.NoGrad();
        var z = Tensor.MatMul(x.Detach().Double() - Mean, Components.mT);
        return standardize ? z / Tensor.FromArray(Variances.Select(Math.Sqrt).ToArray()) : z;
    }

    // Modified Gram-Schmidt on the columns, twice for orthogonality to round-off.
    private static Tensor Orthonormalize(Tensor a)
    {
        int d = a.Dims[0], k = a.Dims[1];
        var cols = new double[k][];
        var src = a.Contiguous().ToArray<double>();
        for (int j = 0; j < k; j++)
        {
            var v = new double[d];
            for (int i = 0; i < d; i++) v[i] = src[i * k + j];
            for (int pass = 0; pass < 2; pass++)
                for (int p = 0; p < j; p++)
                {
                    double dot = System.Numerics.Tensors.TensorPrimitives.Dot<double>(v, cols[p]);
                    System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(cols[p], -dot, v, v);
                }
            double norm = Math.Sqrt(System.Numerics.Tensors.TensorPrimitives.Dot<double>(v, v));
            if (norm == 0) throw new InvalidOperationException("pca: the data has fewer independent directions than components asked for");
            System.Numerics.Tensors.TensorPrimitives.Multiply(v, 1 / norm, v);
            cols[j] = v;
        }
        var dst = new double[d * k];
        for (int j = 0; j < k; j++)
            for (int i = 0; i < d; i++) dst[i * k + j] = cols[j][i];
        return Tensor.FromArray(dst, d, k);
    }
}
