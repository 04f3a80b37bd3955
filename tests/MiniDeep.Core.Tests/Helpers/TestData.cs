using FsCheck;
using FsCheck.Fluent;

namespace MiniDeep.Tests;

/// <summary>Where test values come from: a domain keeps each op away from its kinks and poles so a
/// finite difference with eps 1e-6 measures the derivative, not a jump.</summary>
public enum Domain
{
    /// <summary>Standard normal.</summary>
    Any,
    /// <summary>Uniform on [0.5, 2]: log, sqrt, pow bases.</summary>
    Positive,
    /// <summary>±[0.2, 1.5]: abs, relu, division.</summary>
    AwayFromZero,
    /// <summary>Distinct values at least 0.05 apart: max, min, pooling (no ties).</summary>
    Distinct,
    /// <summary>Uniform on [0.05, 0.95]: probabilities.</summary>
    Unit,
}

public static class TestData
{
    /// <summary>A float64 tensor of the given shape, filled deterministically from a seed.</summary>
    public static Tensor Values(int[] shape, int seed, Domain domain = Domain.Any, Device? device = null)
    {
        var g = new Generator((ulong)seed);
        int n = Shapes.Numel(shape);
        Tensor t = domain switch
        {
            Domain.Any => Tensor.Randn(shape, g, dtype: DType.Float64),
            Domain.Positive => Tensor.Rand(shape, g, 0.5, 2, DType.Float64),
            Domain.Unit => Tensor.Rand(shape, g, 0.05, 0.95, DType.Float64),
            Domain.AwayFromZero => AwayFromZero(shape, g),
            _ => Distinct(shape, n, g),
        };
        return device is null ? t : t.To(device);
    }

    private static Tensor AwayFromZero(int[] shape, Generator g)
    {
        var mag = Tensor.Rand(shape, g, 0.2, 1.5, DType.Float64);
        var sign = Tensor.Bernoulli(shape, 0.5, g, DType.Float64) * 2 - 1;
        return mag * sign;
    }

    private static Tensor Distinct(int[] shape, int n, Generator g)
    {
        var perm = Tensor.RandPerm(n, g).ToArray<int>();
        var v = perm.Select(p => (p - n / 2.0) * 0.11 + 0.013).ToArray();
        return Tensor.FromArray(v, shape);
    }

    /// <summary>Random int32 indices in [0, high).</summary>
    public static Tensor Indices(int[] shape, int high, int seed) =>
        high <= 0 ? Tensor.Zeros(shape, DType.Int32) : Tensor.Randint(0, high, shape, new Generator((ulong)seed + 77));

    /// <summary>A random bool mask.</summary>
    public static Tensor Mask(int[] shape, int seed) => Tensor.Bernoulli(shape, 0.5, new Generator((ulong)seed + 99), DType.Bool);
}

/// <summary>FsCheck generators of shapes.</summary>
public static class Gens
{
    /// <summary>A dimension size: 0 is rarer than 1..max, so most cases have elements.</summary>
    public static Gen<int> Dim(int max = 3, int min = 0) =>
        min > 0 ? Gen.Choose(min, max) : Gen.Frequency((1, Gen.Constant(0)), (9, Gen.Choose(1, max)));

    /// <summary>A shape of rank 0..maxRank.</summary>
    public static Gen<int[]> Shape(int maxRank = 4, int maxDim = 3, int minDim = 0) =>
        Gen.Choose(0, maxRank).SelectMany(r => Dim(maxDim, minDim).ArrayOf(r));

    /// <summary>Two shapes that broadcast together: one is the other with dims set to 1 and/or leading dims dropped.</summary>
    public static Gen<(int[] A, int[] B)> BroadcastPair(int maxRank = 4, int maxDim = 3) =>
        from full in Shape(maxRank, maxDim)
        from drop in Gen.Choose(0, full.Length)
        from ones in Gen.Elements(true, false).ArrayOf(full.Length)
        from swap in Gen.Elements(true, false)
        let small = full.Skip(drop).Select((d, i) => ones[i + drop] ? 1 : d).ToArray()
        select swap ? (small, full) : (full, small);

    /// <summary>A seed for values.</summary>
    public static Gen<int> Seed => Gen.Choose(0, int.MaxValue);

    /// <summary>A subset of axes of a rank (null means all), as a reduction takes.</summary>
    public static Gen<int[]?> Axes(int rank) =>
        Gen.Frequency(
            (1, Gen.Constant<int[]?>(null)),
            (3, Gen.Elements(true, false).ArrayOf(rank).Select(f => (int[]?)Enumerable.Range(0, rank).Where(i => f[i]).Select(i => i % 2 == 0 ? i : i - rank).ToArray())));
}

public static class Fmt
{
    public static string S(int[]? s) => s is null ? "all" : Shapes.Format(s);
}
