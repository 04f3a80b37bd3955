namespace MiniDeep;

/// <summary>Element type of a tensor. Float32 is the compute type; Float64 exists so gradient checks
/// run at double precision; Int32 holds indices and labels; Bool holds masks and comparison results.</summary>
public enum DType
{
    /// <summary>Boolean (one byte per element).</summary>
    Bool,
    /// <summary>32-bit signed integer: indices, labels, counts.</summary>
    Int32,
    /// <summary>32-bit IEEE float, the compute type.</summary>
    Float32,
    /// <summary>64-bit IEEE float, for gradient checks and precise experiments.</summary>
    Float64,
}

/// <summary>Facts about each <see cref="DType"/>.</summary>
public static partial class DTypes
{
    /// <summary>True for Float32 and Float64.</summary>
    public static bool IsFloating(this DType t) => t is DType.Float32 or DType.Float64;

    /// <summary>Bytes per element.</summary>
    public static int SizeOf(this DType t) => t switch
    {
        DType.Bool => 1,
        DType.Int32 => 4,
        DType.Float32 => 4,
        DType.Float64 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(t), t, "unknown dtype"),
    };

    /// <summary>The lower-case name used in messages and ToString, as in PyTorch.</summary>
    public static string Name(this DType t) => t switch
    {
        DType.Bool => "bool",
        DType.Int32 => "int32",
        DType.Float32 => "float32",
        DType.Float64 => "float64",
        _ => t.ToString(),
    };

    /// <summary>The dtype two operands are computed in: the wider of the two (bool &lt; int32 &lt; float32 &lt; float64).</summary>
    public static DType Promote(DType a, DType b) => (DType)Math.Max((int)a, (int)b);

    internal static DType Of<T>()
    {
        if (typeof(T) == typeof(float)) return DType.Float32;
        if (typeof(T) == typeof(double)) return DType.Float64;
        if (typeof(T) == typeof(int)) return DType.Int32;
        if (typeof(T) == typeof(bool)) return DType.Bool;
        throw new NotSupportedException($"MiniDeep has no dtype for {typeof(T).Name}");
    }
}
