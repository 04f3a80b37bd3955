using System.Numerics.Tensors;

namespace MiniDeep.Geometry;

/// <summary>Dense symmetric positive definite systems in float64, for the small matrices of the
/// geometry tools (damped Newton steps, least-squares optima): one factorization, any number of
/// right-hand sides.</summary>
public static class Cholesky
{
    /// <summary>X = (A + shift·I)⁻¹·B for a symmetric A (only its lower triangle is read) that is positive
    /// definite once shifted; B is n × m. Throws, naming the pivot, when it is not.</summary>
    public static double[,] Solve(double[,] a, double[,] b, double shift = 0)
    {
        int n = a.GetLength(0), m = b.GetLength(1);
        if (a.GetLength(1) != n || b.GetLength(0) != n)
            throw new ArgumentException($"Cholesky.Solve: A is {n}×{a.GetLength(1)} and B {b.GetLength(0)}×{m}; A must be square with as many rows as B");
        var l = new double[n, n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j <= i; j++)
            {
                double s = a[i, j] + (i == j ? shift : 0);
                s -= TensorPrimitives.Dot<double>(Row(l, i, j), Row(l, j, j));   // Σ_{k<j} L[i,k]·L[j,k]: two row prefixes
                if (i == j)
                {
                    if (!(s > 0)) throw new InvalidOperationException($"Cholesky.Solve: the matrix is not positive definite (pivot {s:G3} at row {i})");
                    l[i, i] = Math.Sqrt(s);
                }
                else l[i, j] = s / l[j, j];
            }
        var x = new double[n, m];
        var y = new double[n];
        for (int col = 0; col < m; col++)
        {
            for (int i = 0; i < n; i++)                      // L y = b
            {
                double s = b[i, col];
                for (int k = 0; k < i; k++) s -= l[i, k] * y[k];
                y[i] = s / l[i, i];
            }
            for (int i = n - 1; i >= 0; i--)                 // Lᵀ x = y
            {
                double s = y[i];
                for (int k = i + 1; k < n; k++) s -= l[k, i] * x[k, col];
                x[i, col] = s / l[i, i];
            }
        }
        return x;
    }

    /// <summary>The first <paramref name="length"/> elements of row <paramref name="i"/>: a rectangular
    /// array is stored row by row, so a row is contiguous and a column strides by the row length.</summary>
    internal static ReadOnlySpan<double> Row(double[,] m, int i, int length) =>
        System.Runtime.InteropServices.MemoryMarshal.CreateReadOnlySpan(ref m[i, 0], length);

    /// <summary>(A + shift·I)⁻¹·b for one right-hand side.</summary>
    public static double[] Solve(double[,] a, double[] b, double shift = 0)
    {
        var bm = new double[b.Length, 1];
        for (int i = 0; i < b.Length; i++) bm[i, 0] = b[i];
        var x = Solve(a, bm, shift);
        var result = new double[b.Length];
        for (int i = 0; i < b.Length; i++) result[i] = x[i, 0];
        return result;
    }
}
