namespace MiniDeep;

/// <summary>An immutable list of dimension sizes, row-major. Prints as <c>(2, 3)</c> so that error
/// messages read like PyTorch's.</summary>
public readonly struct Shape : IEquatable<Shape>
{
    private readonly int[]? _dims;

    /// <summary>A shape with the given sizes (copied).</summary>
    public Shape(params ReadOnlySpan<int> dims)
    {
        foreach (var d in dims)
            if (d < 0) throw new ArgumentException($"Shape: negative dimension {d} in ({string.Join(", ", dims.ToArray())})");
        _dims = dims.ToArray();
    }

    internal static Shape Wrap(int[] dims) => new(dims, wrap: true);
    private Shape(int[] dims, bool wrap) { _ = wrap; _dims = dims; }

    internal int[] Dims => _dims ?? [];

    /// <summary>Number of dimensions.</summary>
    public int Rank => Dims.Length;

    /// <summary>Size of dimension <paramref name="axis"/> (negative counts from the end).</summary>
    public int this[int axis] => Dims[Shapes.NormalizeAxis(axis, Rank, "Shape[]")];

    /// <summary>Number of elements (1 for rank 0).</summary>
    public int Numel => Shapes.Numel(Dims);

    /// <summary>The sizes as a new array.</summary>
    public int[] ToArray() => (int[])Dims.Clone();

    /// <inheritdoc/>
    public bool Equals(Shape other) => Dims.AsSpan().SequenceEqual(other.Dims);
    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is Shape s && Equals(s);
    /// <inheritdoc/>
    public override int GetHashCode()
    {
        var h = new HashCode();
        foreach (var d in Dims) h.Add(d);
        return h.ToHashCode();
    }
    /// <summary>Equality of sizes.</summary>
    public static bool operator ==(Shape a, Shape b) => a.Equals(b);
    /// <summary>Inequality of sizes.</summary>
    public static bool operator !=(Shape a, Shape b) => !a.Equals(b);
    /// <summary>Shape from an int array.</summary>
    public static implicit operator Shape(int[] dims) => new(dims);

    /// <summary><c>(2, 3)</c>; rank 0 prints as <c>()</c>.</summary>
    public override string ToString() => Shapes.Format(Dims);
}

internal static class Shapes
{
    public static string Format(ReadOnlySpan<int> dims) =>
        dims.Length == 1 ? $"({dims[0]},)" : "(" + string.Join(", ", dims.ToArray()) + ")";

    public static int Numel(ReadOnlySpan<int> dims)
    {
        long n = 1;
        foreach (var d in dims)
        {
            n *= d;
            if (n > Array.MaxLength) throw new ArgumentException($"shape {Format(dims)} has more elements than an array can hold");
        }
        return (int)n;
    }

    public static int NormalizeAxis(int axis, int rank, string op)
    {
        if (rank == 0 && axis is 0 or -1) return 0;   // NumPy lets a scalar be addressed as axis 0 / -1
        int a = axis < 0 ? axis + rank : axis;
        if (a < 0 || a >= rank)
            throw new ArgumentOutOfRangeException(nameof(axis), $"{op}: axis {axis} is out of range for a tensor of rank {rank}");
        return a;
    }

    /// <summary>NumPy broadcasting: align from the right; sizes must match or one must be 1.</summary>
    public static int[] Broadcast(string op, int[] a, int[] b)
    {
        int r = Math.Max(a.Length, b.Length);
        var o = new int[r];
        for (int i = 0; i < r; i++)
        {
            int da = i - (r - a.Length) >= 0 ? a[i - (r - a.Length)] : 1;
            int db = i - (r - b.Length) >= 0 ? b[i - (r - b.Length)] : 1;
            if (da != db && da != 1 && db != 1)
                throw new ShapeMismatchException(op, $"{op}: shapes {Format(a)} and {Format(b)} cannot be broadcast together (dimension {i}: {da} vs {db})");
            o[i] = da == 1 ? db : da;
        }
        return o;
    }

    public static bool SameShape(ReadOnlySpan<int> a, ReadOnlySpan<int> b) => a.SequenceEqual(b);

    public static int[] ContiguousStrides(ReadOnlySpan<int> shape)
    {
        var s = new int[shape.Length];
        int acc = 1;
        for (int i = shape.Length - 1; i >= 0; i--) { s[i] = acc; acc *= Math.Max(shape[i], 1); }
        return s;
    }
}

/// <summary>Raised when operands' shapes do not fit an op. The message names the op and the shapes.</summary>
public sealed class ShapeMismatchException : ArgumentException
{
    /// <summary>The op that refused its inputs.</summary>
    public string Op { get; }
    /// <summary>Creates the exception with a message that already names the op and shapes.</summary>
    public ShapeMismatchException(string op, string message) : base(message) { Op = op; }
}
