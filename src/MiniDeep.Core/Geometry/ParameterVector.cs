namespace MiniDeep.Geometry;

/// <summary>
/// A model's parameters seen as one point θ of a flat space: the loss-landscape tools move along
/// lines and planes of that space and measure its curvature. The order is the order of the list given
/// (for a module, <see cref="Nn.Module.Parameters"/>); every function checks the sizes.
/// </summary>
/// <example>
/// <code>
/// var ps = model.Parameters();
/// var start = ParameterVector.Flatten(ps);          // a copy of θ
/// trainer.Fit(...);
/// var end = ParameterVector.Flatten(ps);
/// ParameterVector.Assign(ps, ParameterVector.Lerp(start, end, 0.5));   // the midpoint, in place
/// </code>
/// </example>
public static class ParameterVector
{
    /// <summary>Number of scalars in the parameters.</summary>
    public static int Count(IReadOnlyList<Tensor> parameters)
    {
        long n = 0;
        foreach (var p in parameters) n += p.Numel;
        if (n > int.MaxValue) throw new ArgumentException($"ParameterVector: {n} parameters do not fit one tensor");
        return (int)n;
    }

    internal static void RequireAny(IReadOnlyList<Tensor> parameters, string op)
    {
        if (parameters.Count == 0) throw new ArgumentException($"{op}: no parameters");
    }

    /// <summary>A copy of the parameters as one 1-D tensor (their dtype and device; not recorded).</summary>
    public static Tensor Flatten(IReadOnlyList<Tensor> parameters)
    {
        RequireAny(parameters, "ParameterVector.Flatten");
        using var _ = Autograd.NoGrad();
        return Tensor.Concat(parameters.Select(p => p.Detach().Contiguous().Reshape(p.Numel)).ToList()).Contiguous();
    }

    /// <summary>Pieces of a flat vector shaped like <paramref name="like"/>: views, so that a recorded
    /// <paramref name="flat"/> stays differentiable through them.</summary>
    public static Tensor[] Unflatten(Tensor flat, IReadOnlyList<Tensor> like) => Unflatten(flat, like, "ParameterVector.Unflatten");

    // The same, with the public op that called it named in the error.
    internal static Tensor[] Unflatten(Tensor flat, IReadOnlyList<Tensor> like, string op)
    {
        int n = Count(like);
        if (flat.Rank != 1 || flat.Numel != n)
            throw new ShapeMismatchException(op, $"{op}: a vector of {n} elements (the {like.Count} parameters, flattened) was expected, got {flat.Shape}");
        var parts = new Tensor[like.Count];
        int offset = 0;
        for (int i = 0; i < like.Count; i++)
        {
            int size = like[i].Numel;
            parts[i] = flat.Narrow(0, offset, size).Reshape(like[i].Shape.ToArray());
            offset += size;
        }
        return parts;
    }

    /// <summary>Writes <paramref name="flat"/> into the parameters, in place (their version counters move,
    /// so a graph recorded before cannot be back-propagated through by mistake).</summary>
    public static void Assign(IReadOnlyList<Tensor> parameters, Tensor flat)
    {
        var parts = Unflatten(flat, parameters, "ParameterVector.Assign");
        using var _ = Autograd.NoGrad();
        for (int i = 0; i < parameters.Count; i++) parameters[i].CopyFrom(parts[i]);
    }

    /// <summary>(1 − α)·a + α·b: α = 0 gives a, α = 1 gives b, other values extrapolate.</summary>
    public static Tensor Lerp(Tensor a, Tensor b, double alpha)
    {
        if (a.Shape != b.Shape) throw new ShapeMismatchException("lerp", $"lerp: endpoints {a.Shape} and {b.Shape} differ");
        using var _ = Autograd.NoGrad();
        return a * (1 - alpha) + b * alpha;
    }

    /// <summary>Σ aᵢbᵢ in float64.</summary>
    public static double Dot(Tensor a, Tensor b)
    {
        if (a.Shape != b.Shape) throw new ShapeMismatchException("dot", $"dot: {a.Shape} and {b.Shape} differ");
        using var _ = Autograd.NoGrad();
        return (a.Double() * b.Double()).Sum().Item();
    }

    /// <summary>Cosine of the angle between two parameter vectors.</summary>
    public static double Cosine(Tensor a, Tensor b) => Dot(a, b) / Math.Sqrt(Dot(a, a) * Dot(b, b));
}
