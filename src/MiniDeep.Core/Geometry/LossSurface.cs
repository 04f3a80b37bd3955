namespace MiniDeep.Geometry;

/// <summary>
/// Random directions for loss-surface plots, scaled as Li, Xu, Taylor, Studer &amp; Goldstein (2018)
/// do: a plot along an unscaled random direction mostly shows how large the weights are (a network
/// whose weights are twice as large looks twice as flat), so each filter of the direction gets the
/// norm of the matching filter of the weights.
/// </summary>
public static class Directions
{
    /// <summary>
    /// A Gaussian direction (flat, like <see cref="ParameterVector.Flatten"/>) in which every filter has
    /// the norm of the same filter of <paramref name="parameters"/>. A filter is one slice along the
    /// first axis of a parameter of rank 2 or more: a row of a linear layer's weight (one output unit),
    /// one output channel of a convolution. Parameters of rank 0 or 1 (biases, normalization scales)
    /// get zeros, as in the paper, unless <paramref name="includeVectors"/>, which scales each of them
    /// as one filter.
    /// </summary>
    /// <example><code>
    /// var d1 = Directions.FilterNormalized(model.Parameters(), new Generator(1));
    /// var d2 = Directions.FilterNormalized(model.Parameters(), new Generator(2));
    /// var grid = LossSurface.Plane(model.Parameters(), d1, d2, xs, ys, () => EvalLoss(model));
    /// </code></example>
    public static Tensor FilterNormalized(IReadOnlyList<Tensor> parameters, Generator generator, bool includeVectors = false)
    {
        ParameterVector.RequireAny(parameters, "Directions.FilterNormalized");
        using var _ = Autograd.NoGrad();
        var parts = new List<Tensor>(parameters.Count);
        foreach (var p in parameters)
        {
            var w = p.Detach();
            if (w.Rank < 2 && !includeVectors) { parts.Add(Tensor.ZerosLike(w).Reshape(w.Numel)); continue; }
            var d = Tensor.Randn(w.Shape, generator, dtype: w.DType, device: w.Device);
            var filters = w.Rank < 2 ? w.Reshape(1, w.Numel) : w.Reshape(w.Dims[0], -1);
            var df = d.Reshape(filters.Shape.ToArray());
            var scale = filters.Square().Sum(1, keepDim: true).Sqrt() / (df.Square().Sum(1, keepDim: true).Sqrt() + 1e-10);
            parts.Add((df * scale).Reshape(w.Numel));
        }
        return Tensor.Concat(parts).Contiguous();
    }
}

/// <summary>
/// The loss along lines and planes through parameter space. The loss is a callback that evaluates the
/// model as it stands (under NoGrad, on a fixed data set); these functions move the parameters, call it,
/// and put the parameters back afterwards, also when the callback throws.
/// </summary>
public static class LossSurface
{
    /// <summary>L(θ₀ + α·d) for each α, θ₀ being the parameters now.</summary>
    /// <example><code>
    /// var alphas = Enumerable.Range(-20, 41).Select(i => i * 0.05).ToArray();
    /// double[] curve = LossSurface.Line(model.Parameters(), direction, alphas, () => EvalLoss(model));
    /// </code></example>
    public static double[] Line(IReadOnlyList<Tensor> parameters, Tensor direction, IReadOnlyList<double> alphas, Func<double> loss)
    {
        var origin = ParameterVector.Flatten(parameters);
        CheckDirection("Line", origin, direction);
        return Restoring(parameters, origin, () =>
        {
            var result = new double[alphas.Count];
            for (int i = 0; i < alphas.Count; i++)
            {
                using (Autograd.NoGrad()) ParameterVector.Assign(parameters, origin + direction * alphas[i]);
                result[i] = loss();
            }
            return result;
        });
    }

    /// <summary>L((1 − α)·θa + α·θb) for each α (Goodfellow, Vinyals &amp; Saxe 2015): α in [0, 1] walks
    /// the segment from θa to θb; values outside extrapolate past its ends.</summary>
    public static double[] Interpolation(IReadOnlyList<Tensor> parameters, Tensor from, Tensor to, IReadOnlyList<double> alphas, Func<double> loss)
    {
        var origin = ParameterVector.Flatten(parameters);
        CheckDirection("Interpolation", origin, from);
        CheckDirection("Interpolation", origin, to);
        return Restoring(parameters, origin, () =>
        {
            var result = new double[alphas.Count];
            for (int i = 0; i < alphas.Count; i++)
            {
                ParameterVector.Assign(parameters, ParameterVector.Lerp(from, to, alphas[i]));
                result[i] = loss();
            }
            return result;
        });
    }

    /// <summary>L(θ₀ + x·d₁ + y·d₂) on the grid xs × ys: result[i, j] is at (xs[i], ys[j]).</summary>
    public static double[,] Plane(IReadOnlyList<Tensor> parameters, Tensor d1, Tensor d2, IReadOnlyList<double> xs, IReadOnlyList<double> ys, Func<double> loss)
    {
        var origin = ParameterVector.Flatten(parameters);
        CheckDirection("Plane", origin, d1);
        CheckDirection("Plane", origin, d2);
        return Restoring(parameters, origin, () =>
        {
            var result = new double[xs.Count, ys.Count];
            for (int i = 0; i < xs.Count; i++)
                for (int j = 0; j < ys.Count; j++)
                {
                    using (Autograd.NoGrad()) ParameterVector.Assign(parameters, origin + d1 * xs[i] + d2 * ys[j]);
                    result[i, j] = loss();
                }
            return result;
        });
    }

    private static void CheckDirection(string op, Tensor origin, Tensor d)
    {
        if (d.Shape != origin.Shape)
            throw new ShapeMismatchException(op, $"LossSurface.{op}: a vector of {origin.Numel} elements (the parameters, flattened) was expected, got {d.Shape}");
    }

    private static T Restoring<T>(IReadOnlyList<Tensor> parameters, Tensor origin, Func<T> body)
    {
        try { return body(); }
        finally { ParameterVector.Assign(parameters, origin); }
    }
}
