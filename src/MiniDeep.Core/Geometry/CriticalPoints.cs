using System.Numerics.Tensors;

namespace MiniDeep.Geometry;

/// <summary>How <see cref="CriticalPoints.MinimizeGradientNorm"/> descends ½‖∇L‖².</summary>
public enum CriticalPointMethod
{
    /// <summary>
    /// Levenberg–Marquardt on the residual r(θ) = ∇L(θ), whose Jacobian is the Hessian: each step
    /// solves (H² + λI)·δ = −H·∇L with the full Hessian, raising λ when a step fails and lowering it
    /// when one succeeds. Converges to the nearest critical point whatever its index (Newton's method
    /// on ∇L = 0 does too, but may jump far); needs n² memory, so small models only.
    /// </summary>
    LevenbergMarquardt,

    /// <summary>Adam on ½‖∇L‖², whose gradient H·∇L is one Hessian-vector product: any model size,
    /// slower convergence.</summary>
    Adam,
}

/// <summary>The outcome of a critical-point search.</summary>
/// <param name="StartGradientNorm">‖∇L‖ where the search started.</param>
/// <param name="GradientNorm">‖∇L‖ where it stopped.</param>
/// <param name="Loss">L where it stopped.</param>
/// <param name="Steps">Steps taken.</param>
/// <param name="History">‖∇L‖ at each step taken (after it for Levenberg–Marquardt, before it for Adam).</param>
public sealed record CriticalPointResult(double StartGradientNorm, double GradientNorm, double Loss, int Steps, IReadOnlyList<double> History)
{
    /// <summary>‖∇L‖ at the end relative to the start.</summary>
    public double Reduction => GradientNorm / StartGradientNorm;
}

/// <summary>
/// Finding critical points of a loss (where ∇L = 0), of any index, by minimizing ‖∇L‖² with exact
/// second derivatives (Dauphin et al. 2014; Pennington &amp; Bahri 2017). Minimizing L only finds minima;
/// minimizing the gradient's norm also stops at saddles and maxima, so the index of the Hessian there
/// (<see cref="Hessian.Index"/>) can be compared with the loss. In floating point ‖∇L‖ is not driven to
/// zero: callers keep the points where it fell by a stated factor.
/// </summary>
public static class CriticalPoints
{
    /// <summary>
    /// Moves the parameters (in place) towards a critical point of <paramref name="loss"/> and returns
    /// the gradient norms along the way. Stops after <paramref name="maxSteps"/>, or when ‖∇L‖ has
    /// fallen below <paramref name="relativeTolerance"/> times its starting value.
    /// </summary>
    /// <example><code>
    /// var ps = tiny.Parameters();                 // a float64 model of a few hundred parameters
    /// var r = CriticalPoints.MinimizeGradientNorm(() => Losses.CrossEntropy(tiny.Forward(x), y), ps, maxSteps: 200);
    /// var eig = Hessian.SymmetricEigenvalues(Hessian.Full(() => Losses.CrossEntropy(tiny.Forward(x), y), ps));
    /// double index = Hessian.Index(eig, tolerance: 1e-6 * eig.Max(Math.Abs));
    /// </code></example>
    public static CriticalPointResult MinimizeGradientNorm(Func<Tensor> loss, IReadOnlyList<Tensor> parameters, int maxSteps,
        CriticalPointMethod method = CriticalPointMethod.LevenbergMarquardt, double relativeTolerance = 1e-8, double learningRate = 1e-3)
    {
        if (maxSteps < 0) throw new ArgumentOutOfRangeException(nameof(maxSteps), "MinimizeGradientNorm: maxSteps must be non-negative");
        var (start, _) = GradientNormAndLoss(loss, parameters);
        var history = new List<double>();
        int steps = method == CriticalPointMethod.LevenbergMarquardt
            ? LevenbergMarquardt(loss, parameters, maxSteps, start * relativeTolerance, history)
            : AdamOnGradientNorm(loss, parameters, maxSteps, start * relativeTolerance, learningRate, history);
        var (final, l) = GradientNormAndLoss(loss, parameters);
        return new CriticalPointResult(start, final, l, steps, history);
    }

    private static int LevenbergMarquardt(Func<Tensor> loss, IReadOnlyList<Tensor> parameters, int maxSteps, double target, List<double> history)
    {
        int n = ParameterVector.Count(parameters);
        var theta = ParameterVector.Flatten(parameters).ToDoubleArray();
        var (g, norm) = FlatGradient(loss, parameters);
        double lambda = -1;
        int steps = 0;
        while (steps < maxSteps && norm > target)
        {
            var h = Hessian.Full(loss, parameters);
            // Normal equations of the residual g with Jacobian H: (H² + λI) δ = −H g. H is symmetric
            // (Hessian.Full symmetrizes it), so (H²)ᵢⱼ is the dot product of rows i and j: contiguous
            // memory, where walking column j crossed the whole matrix (a megabyte at 346 parameters)
            // for every entry.
            var hh = new double[n, n];
            var hg = new double[n];
            for (int i = 0; i < n; i++)
            {
                var rowI = Cholesky.Row(h, i, n);
                hg[i] = TensorPrimitives.Dot<double>(rowI, g);
                for (int j = 0; j <= i; j++) hh[i, j] = hh[j, i] = TensorPrimitives.Dot<double>(rowI, Cholesky.Row(h, j, n));
            }
            if (lambda < 0)
            {
                double maxDiag = 0;
                for (int i = 0; i < n; i++) maxDiag = Math.Max(maxDiag, hh[i, i]);
                lambda = 1e-4 * Math.Max(maxDiag, 1e-300);
            }
            bool accepted = false;
            for (int attempt = 0; attempt < 30 && !accepted; attempt++)
            {
                var delta = Cholesky.Solve(hh, hg, lambda);
                var trial = new double[n];
                for (int i = 0; i < n; i++) trial[i] = theta[i] - delta[i];
                Assign(parameters, trial);
                var (gt, nt) = FlatGradient(loss, parameters);
                if (nt < norm)
                {
                    theta = trial; g = gt; norm = nt;
                    lambda = Math.Max(lambda / 10, 1e-300);   // towards Newton's step while it works
                    accepted = true;
                }
                else lambda *= 10;
            }
            if (!accepted) { Assign(parameters, theta); break; }   // no descent from here at any damping
            steps++;
            history.Add(norm);
        }
        Assign(parameters, theta);
        return steps;
    }

    private static int AdamOnGradientNorm(Func<Tensor> loss, IReadOnlyList<Tensor> parameters, int maxSteps, double target, double lr, List<double> history)
    {
        int n = ParameterVector.Count(parameters);
        var theta = ParameterVector.Flatten(parameters).ToDoubleArray();
        var m = new double[n];
        var v = new double[n];
        int steps = 0;
        while (steps < maxSteps)
        {
            // ∇(½‖g‖²) = H g: one Hessian-vector product with the gradient itself.
            var grads = Hessian.Gradient(loss(), parameters, createGraph: true);
            var flat = Tensor.Concat(grads.Select(t => t.Reshape(t.Numel)).ToList());
            var gd = flat.Detach().ToDoubleArray();
            double norm = Math.Sqrt(gd.Sum(x => x * x));
            if (norm <= target || !flat.RequiresGrad) break;
            var hg = ParameterVector.Flatten(Hessian.Gradient((flat * flat.Detach()).Sum(), parameters, createGraph: false)).ToDoubleArray();
            steps++;
            double c1 = 1 - Math.Pow(0.9, steps), c2 = 1 - Math.Pow(0.999, steps);
            for (int i = 0; i < n; i++)
            {
                m[i] = 0.9 * m[i] + 0.1 * hg[i];
                v[i] = 0.999 * v[i] + 0.001 * hg[i] * hg[i];
                theta[i] -= lr * (m[i] / c1) / (Math.Sqrt(v[i] / c2) + 1e-12);
            }
            Assign(parameters, theta);
            history.Add(norm);
        }
        return steps;
    }

    private static (double[] G, double Norm) FlatGradient(Func<Tensor> loss, IReadOnlyList<Tensor> parameters)
    {
        var g = ParameterVector.Flatten(Hessian.Gradient(loss(), parameters, createGraph: false)).ToDoubleArray();
        return (g, Math.Sqrt(g.Sum(x => x * x)));
    }

    private static (double Norm, double Loss) GradientNormAndLoss(Func<Tensor> loss, IReadOnlyList<Tensor> parameters)
    {
        var l = loss();
        var g = ParameterVector.Flatten(Hessian.Gradient(l, parameters, createGraph: false)).ToDoubleArray();
        return (Math.Sqrt(g.Sum(x => x * x)), l.Item());
    }

    private static void Assign(IReadOnlyList<Tensor> parameters, double[] theta) =>
        ParameterVector.Assign(parameters, Tensor.FromArray(theta).To(parameters[0].DType).To(parameters[0].Device));
}
