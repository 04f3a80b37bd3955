namespace MiniDeep;

// Elementwise functions of one tensor. Where the derivative is a function of the result (exp,
// sqrt, sigmoid, tanh), backward reuses y instead of recomputing it.
public sealed partial class Tensor
{
    internal Tensor Unary<TOp>(string op) where TOp : IUnaryOp
    {
        if (!DType.IsFloating())
            throw new InvalidOperationException($"{op}: needs a floating tensor, got {DType.Name()}; convert with .Float()");
        return new Tensor(Backend.Unary<TOp>(AsView), (int[])Dims.Clone());
    }

    /// <summary>e^x.</summary>
    // y = exp(x)   dx = g * y
    public Tensor Exp()
    {
        var y = Unary<ExpOp>("exp");
        return Autograd.Record(y, "exp", [this], g => [g * y]);
    }

    /// <summary>Natural logarithm.</summary>
    // y = log(x)   dx = g / x
    public Tensor Log()
    {
        var x = this;
        var y = Unary<LogOp>("log");
        return Autograd.Record(y, "log", [this], g => [g / x]);
    }

    /// <summary>Square root.</summary>
    // y = sqrt(x)   dx = g / (2y)
    public Tensor Sqrt()
    {
        var y = Unary<SqrtOp>("sqrt");
        return Autograd.Record(y, "sqrt", [this], g => [g / (2 * y)]);
    }

    /// <summary>Sine.</summary>
    // y = sin(x)   dx = g * cos(x)
    public Tensor Sin()
    {
        var x = this;
        var y = Unary<SinOp>("sin");
        return Autograd.Record(y, "sin", [this], g => [g * x.Cos()]);
    }

    /// <summary>Cosine.</summary>
    // y = cos(x)   dx = -g * sin(x)
    public Tensor Cos()
    {
        var x = this;
        var y = Unary<CosOp>("cos");
        return Autograd.Record(y, "cos", [this], g => [-g * x.Sin()]);
    }

    /// <summary>|x|. The derivative at 0 is taken as 0 (sign(0) = 0), as in PyTorch.</summary>
    // y = |x|   dx = g * sign(x)
    public Tensor Abs()
    {
        var x = this;
        var y = Unary<AbsOp>("abs");
        return Autograd.Record(y, "abs", [this], g => [g * x.Sign()]);
    }

    /// <summary>sign(x) in {-1, 0, 1}. Not differentiable (zero almost everywhere): recorded with no gradient.</summary>
    public Tensor Sign() => Detach().Unary<SignOp>("sign");

    /// <summary>x², a convenience for x * x.</summary>
    public Tensor Square() => this * this;

    /// <summary>max(x, 0). relu'(0) is taken as 0 (the subgradient PyTorch uses).</summary>
    // y = relu(x)   dx = g * [x > 0]
    public Tensor Relu()
    {
        var x = this;
        var y = Unary<ReluOp>("relu");
        return Autograd.Record(y, "relu", [this], g => [ReluMask(g, x)]);
    }

    // The backward of an op with a ReLU fused into it: its own rule applied to the masked gradient. The
    // masked gradient is this rule's temporary (no rule returns it as is), so with recording off it
    // goes back to the buffer pool at once; left to the collector, a CNN step's 6 MB of it forced a
    // full collection every step.
    internal static Tensor?[] WithReluMask(Tensor g, Tensor output, Func<Tensor, Tensor?[]> rule)
    {
        var masked = ReluMask(g, output);
        var grads = rule(masked);
        if (!Autograd.IsGradEnabled) masked.Storage.Recycle();
        return grads;
    }

    // The ReLU backward as its own op: one vectorized pass instead of a comparison and a select.
    // It is linear in g with the mask fixed, so its own backward is itself (and nothing for x).
    // y = g * [x > 0]   dg = g' * [x > 0]   dx = 0
    internal static Tensor ReluMask(Tensor g, Tensor x)
    {
        var y = BinaryKernel<ReluMaskOp>("relu_mask", g, x.Detach());
        return Autograd.Record(y, "relu_mask", [g], gg => [ReluMask(gg, x)]);
    }

    /// <summary>x for x &gt; 0, slope·x otherwise. Composite of where, so its gradient comes for free.</summary>
    // y = x > 0 ? x : s·x   dx = g * (x > 0 ? 1 : s)
    public Tensor LeakyRelu(double negativeSlope = 0.01) => Where(this > 0, this, this * negativeSlope);

    /// <summary>1 / (1 + e^-x).</summary>
    // y = σ(x)   dx = g * y * (1 - y)
    public Tensor Sigmoid()
    {
        var y = Unary<SigmoidOp>("sigmoid");
        return Autograd.Record(y, "sigmoid", [this], g => [g * y * (1 - y)]);
    }

    /// <summary>Hyperbolic tangent.</summary>
    // y = tanh(x)   dx = g * (1 - y²)
    public Tensor Tanh()
    {
        var y = Unary<TanhOp>("tanh");
        return Autograd.Record(y, "tanh", [this], g => [g * (1 - y * y)]);
    }

    /// <summary>log(1 + e^x), computed stably.</summary>
    // y = softplus(x)   dx = g * σ(x)
    public Tensor Softplus()
    {
        var x = this;
        var y = Unary<SoftplusOp>("softplus");
        return Autograd.Record(y, "softplus", [this], g => [g * x.Sigmoid()]);
    }

    /// <summary>Φ(x), the standard normal CDF.</summary>
    // y = Φ(x)   dx = g * φ(x) = g * exp(-x²/2) / √(2π)
    public Tensor NormCdf()
    {
        var x = this;
        var y = Unary<NormCdfOp>("normcdf");
        return Autograd.Record(y, "normcdf", [this], g => [g * (x * x * -0.5).Exp() * (1 / Math.Sqrt(2 * Math.PI))]);
    }

    /// <summary>GELU, exact form x·Φ(x) (Hendrycks &amp; Gimpel 2016; PyTorch's default). Composite.</summary>
    // y = x Φ(x)   dx = g * (Φ(x) + x φ(x))
    public Tensor Gelu() => this * NormCdf();

    /// <summary>True where the element is NaN.</summary>
    public Tensor IsNaN() => this != Detach();   // NaN is the only value unequal to itself
}
