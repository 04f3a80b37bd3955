using MiniDeep.Geometry;
using MiniDeep.Nn;
using Xunit;

namespace MiniDeep.Tests.GeometryTests;

public class GeometryTests
{
    // A float64 tanh MLP small enough for its full Hessian, and a fixed batch.
    private static (Sequential Model, Func<Tensor> Loss) Tiny(ulong seed, int inputs = 5, int hidden = 4, int classes = 3, int batch = 12)
    {
        var g = new Generator(seed);
        var model = new Sequential(new Linear(inputs, hidden, generator: g, dtype: DType.Float64), Activations.Tanh(),
            new Linear(hidden, classes, generator: g, dtype: DType.Float64));
        var x = Tensor.Randn(new Shape(batch, inputs), g, dtype: DType.Float64);
        var y = Tensor.Randint(0, classes, new Shape(batch), g);
        return (model, () => Losses.CrossEntropy(model.Forward(x), y));
    }

    private static double[] Grad(Func<Tensor> loss, IReadOnlyList<Tensor> ps) =>
        ParameterVector.Flatten(Autograd.Grad([loss()], ps.ToArray())!.Select(t => t!).ToArray()).ToDoubleArray();

    [Fact]
    public void FlattenAssignUnflatten_RoundTrip_AndAssignRefusesAWrongLength()
    {
        var (model, _) = Tiny(1);
        var ps = model.Parameters();
        var theta = ParameterVector.Flatten(ps);
        Assert.Equal(ParameterVector.Count(ps), theta.Numel);
        Assert.Equal(5 * 4 + 4 + 4 * 3 + 3, theta.Numel);
        var parts = ParameterVector.Unflatten(theta, ps);
        for (int i = 0; i < ps.Count; i++) Assert.Equal(ps[i].ToArray<double>(), parts[i].ToArray<double>());

        var shifted = theta + 1.0;
        ParameterVector.Assign(ps, shifted);
        Assert.Equal(shifted.ToArray<double>(), ParameterVector.Flatten(ps).ToArray<double>());
        Assert.Equal(ParameterVector.Lerp(theta, shifted, 0.25).ToArray<double>(), (theta + 0.25).ToArray<double>());
        var e = Assert.Throws<ShapeMismatchException>(() => ParameterVector.Assign(ps, Tensor.Zeros(new Shape(theta.Numel - 1), dtype: DType.Float64)));
        Assert.Contains($"{theta.Numel} elements", e.Message);
    }

    // The double-backward product against central differences of the exact gradient.
    [Fact]
    public void HessianVectorProduct_MatchesFiniteDifferencesOfTheGradient()
    {
        var (model, loss) = Tiny(2);
        var ps = model.Parameters();
        var theta = ParameterVector.Flatten(ps);
        var v = Tensor.Randn(theta.Shape, new Generator(3), dtype: DType.Float64);
        var hv = Hessian.VectorProduct(loss, ps, v).ToDoubleArray();
        const double h = 1e-5;
        ParameterVector.Assign(ps, theta + v * h);
        var gPlus = Grad(loss, ps);
        ParameterVector.Assign(ps, theta - v * h);
        var gMinus = Grad(loss, ps);
        ParameterVector.Assign(ps, theta);
        for (int i = 0; i < hv.Length; i++)
        {
            double fd = (gPlus[i] - gMinus[i]) / (2 * h);
            Assert.True(Math.Abs(fd - hv[i]) <= 1e-6 * (1 + Math.Abs(fd)), $"component {i}: Hv {hv[i]:G10}, finite differences {fd:G10}");
        }
        Assert.Equal(theta.ToArray<double>(), ParameterVector.Flatten(ps).ToArray<double>());   // nothing moved
    }

    [Fact]
    public void FullHessian_IsSymmetric_AndItsColumnsAreHessianVectorProducts()
    {
        var (model, loss) = Tiny(4);
        var ps = model.Parameters();
        int n = ParameterVector.Count(ps);
        var h = Hessian.Full(loss, ps);
        for (int j = 0; j < n; j += 7)
        {
            var e = new double[n];
            e[j] = 1;
            var col = Hessian.VectorProduct(loss, ps, Tensor.FromArray(e)).ToDoubleArray();
            for (int i = 0; i < n; i++)
            {
                Assert.Equal(h[i, j], h[j, i]);
                Assert.True(Math.Abs(col[i] - h[i, j]) <= 1e-10 * (1 + Math.Abs(col[i])), $"H[{i},{j}] = {h[i, j]}, Hv = {col[i]}");
            }
        }
    }

    // Q·diag(λ)·Qᵀ with a random orthogonal Q (a product of reflections) has eigenvalues λ.
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(9)]
    [InlineData(60)]
    public void SymmetricEigenvalues_RecoverTheSpectrumOfARotatedDiagonal(int n)
    {
        var rnd = new Random(n);
        var lambda = Enumerable.Range(0, n).Select(i => rnd.NextDouble() * 10 - 5).ToArray();
        if (n > 3) { lambda[1] = lambda[0]; lambda[2] = 0; }          // a repeated and a zero eigenvalue
        var a = new double[n, n];
        for (int i = 0; i < n; i++) a[i, i] = lambda[i];
        for (int r = 0; r < 3; r++)
        {
            var u = Enumerable.Range(0, n).Select(_ => rnd.NextDouble() - 0.5).ToArray();
            double norm = Math.Sqrt(u.Sum(x => x * x));
            for (int i = 0; i < n; i++) u[i] /= norm;
            // a ← (I − 2uuᵀ) a (I − 2uuᵀ)
            var au = new double[n];
            for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) au[i] += a[i, j] * u[j];
            double k = 0;
            for (int i = 0; i < n; i++) k += u[i] * au[i];
            for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) a[i, j] += -2 * u[i] * au[j] - 2 * au[i] * u[j] + 4 * k * u[i] * u[j];
        }
        var got = Hessian.SymmetricEigenvalues(a);
        var expected = lambda.OrderBy(x => x).ToArray();
        for (int i = 0; i < n; i++) Assert.True(Math.Abs(got[i] - expected[i]) <= 1e-10 * (1 + Math.Abs(expected[i])), $"eigenvalue {i}: {got[i]} vs {expected[i]}");
    }

    [Fact]
    public void Lanczos_FindsTheExtremeEigenvalues_InFewerStepsThanTheDimension()
    {
        var (model, loss) = Tiny(5, inputs: 10, hidden: 8, classes: 4, batch: 30);
        var ps = model.Parameters();
        var exact = Hessian.SymmetricEigenvalues(Hessian.Full(loss, ps));
        Assert.Equal(ParameterVector.Count(ps), exact.Length);
        var ritz = Hessian.Lanczos(loss, ps, steps: 40, new Generator(6));
        Assert.True(ritz.Length <= 40);
        double scale = Math.Max(Math.Abs(exact[0]), Math.Abs(exact[^1]));
        Assert.True(Math.Abs(ritz[^1] - exact[^1]) <= 1e-6 * scale, $"λmax: Lanczos {ritz[^1]}, exact {exact[^1]}");
        Assert.True(Math.Abs(ritz[0] - exact[0]) <= 1e-6 * scale, $"λmin: Lanczos {ritz[0]}, exact {exact[0]}");
        Assert.True(exact[0] < 0, "a tanh network away from a minimum has negative curvature somewhere");
    }

    // L(x, y) = x² − y² + y⁴/2 (through a one-parameter-pair "model") has a saddle at 0 and minima at
    // (0, ±1). Minimizing ‖∇L‖² from near the saddle stops at the saddle, which gradient descent on L
    // would leave; the index there is ½.
    [Theory]
    [InlineData(CriticalPointMethod.LevenbergMarquardt)]
    [InlineData(CriticalPointMethod.Adam)]
    public void GradientNormSearch_StopsAtASaddle_WhoseIndexIsOneHalf(CriticalPointMethod method)
    {
        var p = Tensor.FromArray(new[] { 0.3, 0.2 }).RequiresGrad_();
        Tensor Loss()
        {
            var x = p.Narrow(0, 0, 1).Sum();
            var y = p.Narrow(0, 1, 1).Sum();
            return x * x - y * y + y.Square().Square() * 0.5;
        }
        var result = CriticalPoints.MinimizeGradientNorm(Loss, [p], maxSteps: method == CriticalPointMethod.Adam ? 3000 : 100,
            method: method, learningRate: 1e-2, relativeTolerance: 1e-6);
        Assert.True(result.Reduction < 1e-3, $"‖∇L‖ fell only to {result.Reduction:G3} of its start");
        var at = p.ToArray<double>();
        Assert.True(Math.Abs(at[0]) < 1e-3 && Math.Abs(at[1]) < 1e-3, $"stopped at ({at[0]}, {at[1]}), not at the saddle (0, 0)");
        var eig = Hessian.SymmetricEigenvalues(Hessian.Full(Loss, [p]));
        Assert.Equal(0.5, Hessian.Index(eig, tolerance: 1e-6));
        Assert.Equal(-2, eig[0], 3);
        Assert.Equal(2, eig[1], 3);
    }

    // A dense Hessian: L(θ) = Σᵢ sᵢuᵢ²/2 + Σᵢ uᵢ⁴/4 with u = Qθ for a random rotation Q has a critical point at
    // θ = 0 whose Hessian is Qᵀdiag(s)Q, index = the share of negative sᵢ. With 20 parameters the
    // Levenberg–Marquardt step's H² and H·∇L (dot products of Hessian rows) run over whole vectors and a
    // remainder, where the two-parameter saddle above runs over a remainder only.
    [Fact]
    public void LevenbergMarquardt_FindsTheSaddleOfARotatedQuartic_WithTheIndexItsSignsGive()
    {
        const int n = 20;
        var rnd = new Random(5);
        var q = new double[n, n];                                   // Gram–Schmidt on a random matrix
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < n; j++) q[i, j] = rnd.NextDouble() - 0.5;
            for (int k = 0; k < i; k++)
            {
                double d = 0;
                for (int j = 0; j < n; j++) d += q[i, j] * q[k, j];
                for (int j = 0; j < n; j++) q[i, j] -= d * q[k, j];
            }
            double norm = Math.Sqrt(Enumerable.Range(0, n).Sum(j => q[i, j] * q[i, j]));
            for (int j = 0; j < n; j++) q[i, j] /= norm;
        }
        var s = Enumerable.Range(0, n).Select(i => i % 4 == 0 ? -1.0 - 0.1 * i : 1.0 + 0.1 * i).ToArray();   // 5 of 20 negative
        var qt = Tensor.FromArray(Enumerable.Range(0, n * n).Select(k => q[k / n, k % n]).ToArray(), n, n);
        var halfS = Tensor.FromArray(s.Select(v => v / 2).ToArray());
        var p = Tensor.FromArray(Enumerable.Range(0, n).Select(_ => 0.05 * (rnd.NextDouble() - 0.5)).ToArray()).RequiresGrad_();
        Tensor Loss()
        {
            var u = Tensor.MatMul(qt, p.Reshape(n, 1)).Reshape(n);
            return (u.Square() * halfS).Sum() + u.Square().Square().Sum() * 0.25;
        }
        var result = CriticalPoints.MinimizeGradientNorm(Loss, [p], maxSteps: 50, relativeTolerance: 1e-8);
        Assert.True(result.Reduction < 1e-6, $"‖∇L‖ fell only to {result.Reduction:G3} of its start in {result.Steps} steps");
        // With H² exact the damped step turns into Newton's as λ shrinks, and from this close a
        // non-degenerate critical point is reached in 2 steps; an H² off by 1% in some entries took 5.
        Assert.True(result.Steps <= 3, $"{result.Steps} steps: quadratic convergence lost, so the step's H² is not the Hessian's square");
        Assert.All(p.ToArray<double>(), v => Assert.True(Math.Abs(v) < 1e-6, $"stopped at a coordinate {v}, not at the critical point 0"));
        var eig = Hessian.SymmetricEigenvalues(Hessian.Full(Loss, [p]));
        Assert.Equal(5.0 / n, Hessian.Index(eig, tolerance: 1e-6));
        var sorted = s.OrderBy(v => v).ToArray();
        for (int i = 0; i < n; i++) Assert.Equal(sorted[i], eig[i], 6);
    }

    [Fact]
    public void FilterNormalizedDirection_GivesEveryFilterItsWeightsNorm_AndZeroBiases()
    {
        var g = new Generator(7);
        var model = new Sequential(new Conv2d(2, 3, 3, generator: g), new Flatten(), new Linear(3 * 4 * 4, 5, generator: g));
        var ps = model.Parameters();
        var d = Directions.FilterNormalized(ps, new Generator(8));
        var parts = ParameterVector.Unflatten(d, ps);
        for (int i = 0; i < ps.Count; i++)
        {
            if (ps[i].Rank < 2) { Assert.All(parts[i].ToArray<float>(), v => Assert.Equal(0f, v)); continue; }
            var w = ps[i].Detach().Reshape(ps[i].Dims[0], -1).Double();
            var dw = parts[i].Reshape(ps[i].Dims[0], -1).Double();
            var wn = w.Square().Sum(1).Sqrt().ToArray<double>();
            var dn = dw.Square().Sum(1).Sqrt().ToArray<double>();
            for (int f = 0; f < wn.Length; f++) Assert.Equal(wn[f], dn[f], 5);
        }
        var other = Directions.FilterNormalized(ps, new Generator(9));
        Assert.True(Math.Abs(ParameterVector.Cosine(d, other)) < 0.5, "two seeds gave nearly the same direction");
        var withBiases = Directions.FilterNormalized(ps, new Generator(8), includeVectors: true);
        var bias = ParameterVector.Unflatten(withBiases, ps)[1];
        Assert.Equal(ps[1].Double().Square().Sum().Sqrt().Item(), bias.Double().Square().Sum().Sqrt().Item(), 5);
    }

    [Fact]
    public void LossSurfaces_PassThroughTheEndpoints_AndPutTheParametersBack()
    {
        var (model, loss) = Tiny(10);
        var ps = model.Parameters();
        double Eval() { using (Autograd.NoGrad()) return loss().Item(); }
        var theta0 = ParameterVector.Flatten(ps);
        var theta1 = theta0 + Tensor.Randn(theta0.Shape, new Generator(11), std: 0.5, dtype: DType.Float64);
        double l0 = Eval();
        ParameterVector.Assign(ps, theta1);
        double l1 = Eval();
        ParameterVector.Assign(ps, theta0);

        var curve = LossSurface.Interpolation(ps, theta0, theta1, [0, 0.5, 1], Eval);
        Assert.Equal(l0, curve[0], 12);
        Assert.Equal(l1, curve[2], 12);
        Assert.Equal(theta0.ToArray<double>(), ParameterVector.Flatten(ps).ToArray<double>());

        var d = theta1 - theta0;
        var line = LossSurface.Line(ps, d, [0, 1], Eval);
        Assert.Equal(l0, line[0], 12);
        Assert.Equal(l1, line[1], 12);

        var plane = LossSurface.Plane(ps, d, Directions.FilterNormalized(ps, new Generator(12)), [0, 1], [0, 0.5], Eval);
        Assert.Equal(l0, plane[0, 0], 12);
        Assert.Equal(l1, plane[1, 0], 12);
        Assert.Equal(theta0.ToArray<double>(), ParameterVector.Flatten(ps).ToArray<double>());

        // A callback that throws still leaves the parameters where they were.
        int calls = 0;
        Assert.Throws<InvalidOperationException>(() => LossSurface.Line(ps, d, [0.5, 1], () => ++calls == 2 ? throw new InvalidOperationException("boom") : Eval()));
        Assert.Equal(theta0.ToArray<double>(), ParameterVector.Flatten(ps).ToArray<double>());
    }
}

public class PcaTests
{
    // Data with variances 9, 4, 1 along three orthonormal directions (and a little noise elsewhere):
    // the components must be those directions, in that order, with those variances.
    [Fact]
    public void Pca_FindsTheDirectionsAndVariancesOfAnisotropicData()
    {
        var g = new Generator(1);
        int n = 4000, d = 6;
        var q = Tensor.Randn(new Shape(d, d), g, dtype: DType.Float64);
        var basis = Data.Pca.Fit(q, d, new Generator(2)).Components;            // a random orthonormal basis (rows)
        var coeffs = Tensor.Randn(new Shape(n, d), g, dtype: DType.Float64) * Tensor.FromArray(new[] { 3.0, 2.0, 1.0, 0.1, 0.1, 0.1 });
        var x = Tensor.MatMul(coeffs, basis) + 5.0;
        var pca = Data.Pca.Fit(x, 3, new Generator(3));
        double[] expected = [9, 4, 1];
        for (int k = 0; k < 3; k++)
        {
            Assert.True(Math.Abs(pca.Variances[k] - expected[k]) < 0.1 * expected[k], $"variance {k}: {pca.Variances[k]} vs {expected[k]}");
            double align = Math.Abs((pca.Components.Narrow(0, k, 1) * basis.Narrow(0, k, 1)).Sum().Item());
            Assert.True(align > 0.99, $"component {k} is at {Math.Acos(align) * 180 / Math.PI:F1}° from the true direction");
        }
        var z = pca.Transform(x, standardize: true);
        var std = z.Std(0).ToArray<double>();
        Assert.All(std, s => Assert.Equal(1, s, 6));
        Assert.Throws<ArgumentOutOfRangeException>(() => Data.Pca.Fit(x, 7, new Generator(4)));
    }
}

public class CholeskyTests
{
    // 7 and 40 rows: the factorization's inner products are vector dot products over row prefixes, so
    // sizes below, across and well past one vector (4 or 8 doubles) all run.
    [Theory]
    [InlineData(7)]
    [InlineData(40)]
    public void Solve_InvertsAShiftedSymmetricSystem_AndNamesAnIndefinitePivot(int n)
    {
        var rnd = new Random(3);
        int m = 3;
        var q = new double[n, n];
        for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) q[i, j] = rnd.NextDouble() - 0.5;
        var a = new double[n, n];                                 // QᵀQ: positive semi-definite
        for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) for (int k = 0; k < n; k++) a[i, j] += q[k, i] * q[k, j];
        var b = new double[n, m];
        for (int i = 0; i < n; i++) for (int j = 0; j < m; j++) b[i, j] = rnd.NextDouble();
        var x = Cholesky.Solve(a, b, shift: 0.1);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < m; j++)
            {
                double r = 0.1 * x[i, j];
                for (int k = 0; k < n; k++) r += a[i, k] * x[k, j];
                Assert.Equal(b[i, j], r, 10);
            }
        var single = Cholesky.Solve(a, Enumerable.Range(0, n).Select(i => b[i, 1]).ToArray(), 0.1);
        for (int i = 0; i < n; i++) Assert.Equal(x[i, 1], single[i], 12);
        var indefinite = new double[,] { { 1, 2 }, { 2, 1 } };
        Assert.Contains("not positive definite", Assert.Throws<InvalidOperationException>(() => Cholesky.Solve(indefinite, new double[] { 1, 1 })).Message);
    }
}

public class GeometryInputCheckTests
{
    [Fact]
    public void NoParameters_IsRefusedByTheToolThatWasCalled()
    {
        var p = Tensor.Ones(3).RequiresGrad_();
        Func<Tensor> loss = () => (p * p).Sum();
        Assert.Contains("Hessian.Full: no parameters", Assert.Throws<ArgumentException>(() => Hessian.Full(loss, [])).Message);
        Assert.Contains("Hessian.VectorProduct: no parameters", Assert.Throws<ArgumentException>(() => Hessian.VectorProduct(loss, [], Tensor.Ones(3))).Message);
        Assert.Contains("Hessian.Lanczos: no parameters", Assert.Throws<ArgumentException>(() => Hessian.Lanczos(loss, [], 2, new Generator(0))).Message);
        Assert.Contains("Directions.FilterNormalized: no parameters", Assert.Throws<ArgumentException>(() => Directions.FilterNormalized([], new Generator(0))).Message);
    }

    [Fact]
    public void VectorProduct_NamesItselfForAVectorOfTheWrongLength_AndIndexRefusesNaN()
    {
        var p = Tensor.Ones(3).RequiresGrad_();
        var e = Assert.Throws<ShapeMismatchException>(() => Hessian.VectorProduct(() => (p * p).Sum(), [p], Tensor.Ones(5)));
        Assert.StartsWith("Hessian.VectorProduct: a vector of 3 elements", e.Message);
        Assert.Contains("eigenvalue 1 is NaN", Assert.Throws<ArgumentException>(() => Hessian.Index([-1.0, double.NaN, 2.0], 1e-6)).Message);
    }
}
