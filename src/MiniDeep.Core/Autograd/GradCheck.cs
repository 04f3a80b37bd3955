using System.Globalization;

namespace MiniDeep;

/// <summary>The outcome of a gradient check.</summary>
/// <param name="Passed">True when every Jacobian entry agreed.</param>
/// <param name="MaxAbsError">Largest |analytic - numeric| over all entries.</param>
/// <param name="Failure">For a failure: which input, which entry, both values.</param>
/// <param name="Entries">Number of Jacobian entries compared.</param>
public sealed record GradCheckResult(bool Passed, double MaxAbsError, string? Failure, int Entries);

/// <summary>
/// Checks a function's analytic gradients against central finite differences, in float64, with the
/// tolerances of PyTorch's gradcheck (eps 1e-6, atol 1e-5, rtol 1e-3): the full Jacobian, one
/// output element at a time. Users check their own composite ops with it; the test suite checks
/// every MiniDeep op with it.
/// </summary>
public static class GradCheck
{
    /// <summary>
    /// Compares ∂f/∂x from Backward with (f(x + eps) - f(x - eps)) / 2eps for every element of every
    /// floating input. Inputs are copied to float64 leaves first; integer and bool inputs are passed
    /// through unchanged and not differentiated.
    /// </summary>
    public static GradCheckResult Check(Func<Tensor[], Tensor> f, Tensor[] inputs,
        double eps = 1e-6, double atol = 1e-5, double rtol = 1e-3)
    {
        var values = inputs.Select(x => x.DType.IsFloating() ? x.ToDoubleArray() : null).ToArray();
        Tensor[] Build(bool requiresGrad) => inputs.Select((x, i) => values[i] is { } v
            ? Tensor.FromArray(v, x.Shape.ToArray(), x.Device).RequiresGrad_(requiresGrad)
            : x).ToArray();

        // Analytic Jacobian, row by row: one backward per output element with a one-hot upstream gradient.
        var leaves = Build(true);
        var output = f(leaves);
        if (output.DType != DType.Float64)
            return new(false, double.NaN, $"the function returned {output.DType.Name()} for float64 inputs: some op does not keep the float64 path", 0);
        int outN = output.Numel;
        var diff = Enumerable.Range(0, inputs.Length).Where(i => values[i] is not null).ToArray();
        var analytic = diff.Select(i => new double[outN, values[i]!.Length]).ToArray();
        if (output.RequiresGrad)
        {
            for (int o = 0; o < outN; o++)
            {
                var seed = new double[outN];
                seed[o] = 1;
                var grads = Autograd.Grad([output], diff.Select(i => leaves[i]).ToArray(),
                    [Tensor.FromArray(seed, output.Shape.ToArray(), output.Device)], retainGraph: true, allowUnused: true);
                for (int k = 0; k < diff.Length; k++)
                {
                    if (grads[k] is not { } g) continue;
                    var gv = g.ToDoubleArray();
                    for (int j = 0; j < gv.Length; j++) analytic[k][o, j] = gv[j];
                }
            }
        }

        // Numeric Jacobian, column by column, and the comparison.
        double maxErr = 0;
        int entries = 0;
        for (int k = 0; k < diff.Length; k++)
        {
            var v = values[diff[k]]!;
            for (int j = 0; j < v.Length; j++)
            {
                double orig = v[j];
                v[j] = orig + eps;
                double[] plus;
                using (Autograd.NoGrad()) plus = f(Build(false)).ToDoubleArray();
                v[j] = orig - eps;
                double[] minus;
                using (Autograd.NoGrad()) minus = f(Build(false)).ToDoubleArray();
                v[j] = orig;
                for (int o = 0; o < outN; o++)
                {
                    double num = (plus[o] - minus[o]) / (2 * eps);
                    double ana = analytic[k][o, j];
                    double err = Math.Abs(ana - num);
                    entries++;
                    if (double.IsNaN(err) && double.IsNaN(ana) == double.IsNaN(num)) continue;
                    maxErr = Math.Max(maxErr, double.IsNaN(err) ? double.PositiveInfinity : err);
                    if (!(err <= atol + rtol * Math.Abs(num)))
                        return new(false, maxErr, string.Create(CultureInfo.InvariantCulture,
                            $"input {diff[k]} (shape {inputs[diff[k]].Shape}), element {j}, output element {o}: analytic {ana:G10} vs numeric {num:G10}"), entries);
                }
            }
        }
        return new(true, maxErr, null, entries);
    }

    /// <summary>
    /// Second-order check: the gradient map (x, v) ↦ vᵀ ∂f/∂x, computed by Backward with
    /// createGraph: true, must itself pass <see cref="Check"/> against finite differences. This fails
    /// when a backward rule is not built from differentiable ops.
    /// </summary>
    public static GradCheckResult CheckSecondOrder(Func<Tensor[], Tensor> f, Tensor[] inputs, Generator? generator = null,
        double eps = 1e-6, double atol = 1e-5, double rtol = 1e-3)
    {
        var gen = generator ?? new Generator(1234);
        Tensor probe;
        using (Autograd.NoGrad()) probe = f(inputs.Select(x => x.DType.IsFloating() ? x.Double() : x).ToArray());
        var v = Tensor.Randn(probe.Shape, gen, dtype: DType.Float64, device: probe.Device);
        var floating = Enumerable.Range(0, inputs.Length).Where(i => inputs[i].DType.IsFloating()).ToArray();

        Tensor GradMap(Tensor[] args)
        {
            // The finite-difference passes run under NoGrad with plain inputs; the gradient map must
            // still differentiate f there, so it records on fresh leaves when the inputs are not leaves of ours.
            using var recording = Autograd.EnableGrad();
            var xs = args[..^1].Select(x => x.DType.IsFloating() && !x.RequiresGrad ? x.Detach().RequiresGrad_() : x).ToArray();
            var upstream = args[^1];
            var y = f(xs);
            var targets = floating.Select(i => xs[i]).ToArray();
            var grads = y.RequiresGrad
                ? Autograd.Grad([y], targets, [upstream], createGraph: true, allowUnused: true)
                : new Tensor?[targets.Length];
            var parts = grads.Select((g, k) => (g ?? Tensor.ZerosLike(targets[k])).Reshape(-1)).ToArray();
            return parts.Length == 0 ? Tensor.Zeros(new Shape(0), DType.Float64, y.Device) : Tensor.Concat(parts);
        }

        return Check(GradMap, [.. inputs, v], eps, atol, rtol);
    }
}
