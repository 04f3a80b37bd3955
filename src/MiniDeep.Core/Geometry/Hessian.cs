namespace MiniDeep.Geometry;

/// <summary>
/// Second derivatives of a loss with respect to parameters, exactly, by differentiating the gradient
/// (double backward): H·v = ∇θ(∇θL · v), one extra backward pass per product and no finite
/// differences. On top of that: the full Hessian of a small model, its eigenvalues, the extreme
/// eigenvalues of a large one by Lanczos iteration, and the index of a critical point.
/// </summary>
/// <remarks>The loss is a callback that computes L from the parameters as they stand, recording
/// (not under NoGrad): each product records a fresh graph.</remarks>
public static class Hessian
{
    /// <summary>H·v for a flat <paramref name="v"/> (see <see cref="ParameterVector"/>); the result is flat too.</summary>
    /// <example><code>
    /// var v = Tensor.Randn(new Shape(ParameterVector.Count(ps)), g, DType.Float64);
    /// var hv = Hessian.VectorProduct(() => Losses.CrossEntropy(model.Forward(x), y), ps, v);
    /// double curvature = ParameterVector.Dot(v, hv);   // vᵀHv
    /// </code></example>
    // Hv = ∇θ (∇θL · v): the gradient is recorded (createGraph), dotted with the constant v, and
    // differentiated again.
    public static Tensor VectorProduct(Func<Tensor> loss, IReadOnlyList<Tensor> parameters, Tensor v)
    {
        ParameterVector.RequireAny(parameters, "Hessian.VectorProduct");
        var vs = ParameterVector.Unflatten(v.Detach(), parameters, "Hessian.VectorProduct");
        var grads = Gradient(loss(), parameters, createGraph: true);
        Tensor? dot = null;
        for (int i = 0; i < grads.Length; i++)
        {
            if (!grads[i].RequiresGrad) continue;   // a parameter the gradient does not depend on
            var term = (grads[i] * vs[i].To(grads[i].DType)).Sum();
            dot = dot is null ? term : dot + term;
        }
        if (dot is null) return Tensor.ZerosLike(v.Detach());
        var hv = Gradient(dot, parameters, createGraph: false);
        return ParameterVector.Flatten(hv);
    }

    /// <summary>
    /// The full Hessian (n × n, float64) of a small model: the gradient is recorded once and each row
    /// is the gradient of one of its components (n backward passes). Symmetrized, (H + Hᵀ)/2, so that
    /// round-off does not make it asymmetric. Memory and time grow as n²: meant for models of a few
    /// thousand parameters at most.
    /// </summary>
    public static double[,] Full(Func<Tensor> loss, IReadOnlyList<Tensor> parameters)
    {
        ParameterVector.RequireAny(parameters, "Hessian.Full");
        int n = ParameterVector.Count(parameters);
        var grads = Gradient(loss(), parameters, createGraph: true);
        var flat = Tensor.Concat(grads.Select(g => g.Reshape(g.Numel)).ToList());
        var h = new double[n, n];
        if (flat.RequiresGrad)
            for (int i = 0; i < n; i++)
            {
                var row = ParameterVector.Flatten(Gradient(flat.Narrow(0, i, 1).Sum(), parameters, createGraph: false, retainGraph: true)).ToDoubleArray();
                for (int j = 0; j < n; j++) h[i, j] = row[j];
            }
        for (int i = 0; i < n; i++)
            for (int j = i + 1; j < n; j++)
                h[i, j] = h[j, i] = 0.5 * (h[i, j] + h[j, i]);
        return h;
    }

    /// <summary>Fraction of eigenvalues below −<paramref name="tolerance"/>: 0 at a minimum, 1 at a
    /// maximum, in between at a saddle (Dauphin et al. 2014). Eigenvalues within ±tolerance count as
    /// flat directions, neither up nor down: a trained network has many.</summary>
    public static double Index(IReadOnlyList<double> eigenvalues, double tolerance)
    {
        if (eigenvalues.Count == 0) throw new ArgumentException("Hessian.Index: no eigenvalues");
        if (!(tolerance >= 0)) throw new ArgumentOutOfRangeException(nameof(tolerance), "Hessian.Index: the tolerance must be non-negative");
        // A NaN compares false with everything, so it would silently count as a flat direction.
        for (int i = 0; i < eigenvalues.Count; i++)
            if (double.IsNaN(eigenvalues[i])) throw new ArgumentException($"Hessian.Index: eigenvalue {i} is NaN");
        return eigenvalues.Count(l => l < -tolerance) / (double)eigenvalues.Count;
    }

    /// <summary>
    /// Ritz values of the Hessian after <paramref name="steps"/> Lanczos iterations (ascending): the
    /// first and last converge to the smallest and largest eigenvalues first, in far fewer steps than
    /// the dimension. Full reorthogonalization keeps the basis orthogonal in floating point (without
    /// it, converged eigenvalues reappear as ghost copies).
    /// </summary>
    /// <example><code>
    /// var ritz = Hessian.Lanczos(() => Losses.CrossEntropy(model.Forward(x), y), model.Parameters(), 30, new Generator(0));
    /// double lambdaMin = ritz[0], lambdaMax = ritz[^1];
    /// </code></example>
    public static double[] Lanczos(Func<Tensor> loss, IReadOnlyList<Tensor> parameters, int steps, Generator generator)
    {
        ParameterVector.RequireAny(parameters, "Hessian.Lanczos");
        var like = parameters[0];
        int n = ParameterVector.Count(parameters);
        return Lanczos(v =>
        {
            var hv = VectorProduct(loss, parameters, Tensor.FromArray(v).To(like.DType).To(like.Device));
            return hv.ToDoubleArray();
        }, n, steps, generator);
    }

    /// <summary>Lanczos on any symmetric linear map of dimension <paramref name="n"/> (see the other overload).</summary>
    public static double[] Lanczos(Func<double[], double[]> apply, int n, int steps, Generator generator)
    {
        if (n < 1) throw new ArgumentOutOfRangeException(nameof(n), "Lanczos: the dimension must be positive");
        if (steps < 1) throw new ArgumentOutOfRangeException(nameof(steps), "Lanczos: at least one step");
        steps = Math.Min(steps, n);
        var basis = new List<double[]>();
        var alpha = new List<double>();
        var beta = new List<double>();
        var q = Tensor.Randn(new Shape(n), generator, dtype: DType.Float64).ToArray<double>();
        Scale(q, 1 / Norm(q));
        for (int j = 0; j < steps; j++)
        {
            basis.Add(q);
            var w = apply(q);
            if (w.Length != n) throw new InvalidOperationException($"Lanczos: the map returned {w.Length} elements for dimension {n}");
            double a = DotD(q, w);
            alpha.Add(a);
            // Orthogonalize against the whole basis, twice ("twice is enough", Parlett): this subsumes
            // the three-term recurrence's subtraction of a·q and b·q_prev.
            for (int pass = 0; pass < 2; pass++)
                foreach (var b in basis) Axpy(w, -DotD(w, b), b);
            double norm = Norm(w);
            if (j == steps - 1 || norm <= 1e-12 * Math.Max(1, Math.Abs(a))) break;   // invariant subspace found
            beta.Add(norm);
            Scale(w, 1 / norm);
            q = w;
        }
        return TridiagonalEigenvalues([.. alpha], [.. beta]);
    }

    /// <summary>All eigenvalues of a symmetric matrix, ascending: Householder reduction to tridiagonal
    /// form, then the implicit symmetric QR iteration with Wilkinson shifts. Only the lower triangle is read.</summary>
    public static double[] SymmetricEigenvalues(double[,] matrix)
    {
        int n = matrix.GetLength(0);
        if (matrix.GetLength(1) != n) throw new ArgumentException($"SymmetricEigenvalues: the matrix is {n}×{matrix.GetLength(1)}, not square");
        var a = new double[n, n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j <= i; j++)
            {
                if (!double.IsFinite(matrix[i, j])) throw new ArgumentException($"SymmetricEigenvalues: element ({i}, {j}) is {matrix[i, j]}");
                a[i, j] = a[j, i] = matrix[i, j];
            }
        var d = new double[n];
        var e = new double[Math.Max(0, n - 1)];
        // Reduce column k below the subdiagonal to zero with a reflection H = I − 2uuᵀ applied on both
        // sides of the trailing block B: B ← B − 2(u qᵀ + q uᵀ), with p = Bu, K = uᵀp, q = p − K·u.
        var u = new double[n];
        var p = new double[n];
        for (int k = 0; k < n - 1; k++)
        {
            d[k] = a[k, k];
            int m = n - k - 1;
            double norm = 0;
            for (int i = k + 1; i < n; i++) norm += a[i, k] * a[i, k];
            norm = Math.Sqrt(norm);
            if (m == 1 || norm == 0) { e[k] = a[k + 1, k]; continue; }
            double x0 = a[k + 1, k];
            double alphaK = x0 >= 0 ? -norm : norm;   // the sign that avoids cancellation in x0 − α
            for (int i = k + 1; i < n; i++) u[i] = a[i, k];
            u[k + 1] -= alphaK;
            double un = 0;
            for (int i = k + 1; i < n; i++) un += u[i] * u[i];
            un = Math.Sqrt(un);
            for (int i = k + 1; i < n; i++) u[i] /= un;
            double kk = 0;
            for (int i = k + 1; i < n; i++)
            {
                double s = 0;
                for (int j = k + 1; j < n; j++) s += a[i, j] * u[j];
                p[i] = s;
                kk += u[i] * s;
            }
            for (int i = k + 1; i < n; i++) p[i] -= kk * u[i];
            for (int i = k + 1; i < n; i++)
                for (int j = k + 1; j < n; j++)
                    a[i, j] -= 2 * (u[i] * p[j] + p[i] * u[j]);
            e[k] = alphaK;
        }
        if (n > 0) d[n - 1] = a[n - 1, n - 1];
        return TridiagonalEigenvalues(d, e);
    }

    /// <summary>Eigenvalues (ascending) of the symmetric tridiagonal matrix with diagonal
    /// <paramref name="diagonal"/> and sub-diagonal <paramref name="off"/> (one shorter).</summary>
    public static double[] TridiagonalEigenvalues(double[] diagonal, double[] off)
    {
        int n = diagonal.Length;
        if (off.Length != Math.Max(0, n - 1)) throw new ArgumentException($"TridiagonalEigenvalues: {off.Length} off-diagonal elements for a diagonal of {n}");
        if (!diagonal.All(double.IsFinite) || !off.All(double.IsFinite))
            throw new ArgumentException("TridiagonalEigenvalues: the matrix has non-finite elements (a diverged loss or Hessian-vector product?)");
        var d = (double[])diagonal.Clone();
        var e = (double[])off.Clone();
        int hi = n - 1, iterations = 0;
        while (hi > 0)
        {
            // Deflate: a negligible off-diagonal element splits the matrix; the bottom block shrinks.
            for (int i = 0; i < hi; i++)
                if (Math.Abs(e[i]) <= 1e-15 * (Math.Abs(d[i]) + Math.Abs(d[i + 1]))) e[i] = 0;
            if (e[hi - 1] == 0) { hi--; continue; }
            int lo = hi - 1;
            while (lo > 0 && e[lo - 1] != 0) lo--;
            if (++iterations > 60 * n) throw new InvalidOperationException("TridiagonalEigenvalues: the QR iteration did not converge");
            QrStep(d, e, lo, hi);
        }
        Array.Sort(d);
        return d;
    }

    // One implicit QR step with a Wilkinson shift on the unreduced block lo..hi: a rotation of rows and
    // columns (lo, lo+1) chosen from the shifted first column starts a bulge below the sub-diagonal,
    // and the following rotations chase it down and out of the block (Golub & Van Loan, §8.3).
    private static void QrStep(double[] d, double[] e, int lo, int hi)
    {
        double delta = (d[hi - 1] - d[hi]) / 2, b2 = e[hi - 1] * e[hi - 1];
        double shift = d[hi] - b2 / (delta + (delta >= 0 ? 1 : -1) * Math.Sqrt(delta * delta + b2));
        double x = d[lo] - shift, z = e[lo];
        for (int k = lo; k < hi; k++)
        {
            double r = Math.Sqrt(x * x + z * z);
            double c = r == 0 ? 1 : x / r, s = r == 0 ? 0 : -z / r;
            if (k > lo) e[k - 1] = r;
            double a = d[k], b = e[k], dd = d[k + 1];
            // Gᵀ·[[a, b], [b, dd]]·G with G = [[c, s], [-s, c]]
            d[k] = c * c * a - 2 * c * s * b + s * s * dd;
            d[k + 1] = s * s * a + 2 * c * s * b + c * c * dd;
            e[k] = c * s * (a - dd) + (c * c - s * s) * b;
            if (k + 1 < hi)
            {
                x = e[k];
                z = -s * e[k + 1];          // the bulge, two places below the diagonal
                e[k + 1] *= c;
            }
        }
    }

    internal static Tensor[] Gradient(Tensor loss, IReadOnlyList<Tensor> parameters, bool createGraph, bool retainGraph = false)
    {
        if (loss.Numel != 1) throw new ShapeMismatchException("hessian", $"Hessian: the loss must be a scalar, got {loss.Shape}");
        var grads = Autograd.Grad([loss], parameters.ToArray(), retainGraph: retainGraph || createGraph, createGraph: createGraph, allowUnused: true);
        var result = new Tensor[grads.Length];
        for (int i = 0; i < grads.Length; i++) result[i] = grads[i] ?? Tensor.ZerosLike(parameters[i].Detach());
        return result;
    }

    private static double DotD(double[] a, double[] b) => System.Numerics.Tensors.TensorPrimitives.Dot(a, b);
    private static double Norm(double[] a) => Math.Sqrt(DotD(a, a));
    private static void Scale(double[] a, double s) => System.Numerics.Tensors.TensorPrimitives.Multiply(a, s, a);
    private static void Axpy(double[] y, double alpha, double[] x) => System.Numerics.Tensors.TensorPrimitives.MultiplyAdd(x, alpha, y, y);
}
