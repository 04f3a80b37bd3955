namespace MiniDeep;

// Elementwise arithmetic with NumPy broadcasting. Each op's derivative is the comment above it, in
// the notation of docs/derivatives.md: g is the incoming gradient, y the op's result. Gradients of
// broadcast operands are summed back to the operand's shape (SumTo).
public sealed partial class Tensor
{
    private static DType FloatingType(string op, Tensor a, Tensor b)
    {
        if (a.Device != b.Device) throw DeviceMismatch(op, a, b);
        var t = DTypes.Promote(a.DType, b.DType);
        if (!t.IsFloating())
            throw new InvalidOperationException($"{op}: arithmetic needs floating tensors, got {a.DType.Name()} and {b.DType.Name()}; convert with .Float()");
        return t;
    }

    internal static Tensor BinaryKernel<TOp>(string op, Tensor a, Tensor b) where TOp : IBinaryOp
    {
        // Same shape, no broadcasting: the operands' own layouts serve (the common case, and the one
        // whose bookkeeping shows in the per-op overhead of small tensors).
        if (a.Dims.AsSpan().SequenceEqual(b.Dims))
            return new Tensor(a.Backend.Binary<TOp>(a.AsView, b.AsView, a.Dims), a.Dims);
        var shape = Shapes.Broadcast(op, a.Dims, b.Dims);
        var sa = a.Layout.BroadcastTo(shape);
        var sb = b.Layout.BroadcastTo(shape);
        return new Tensor(a.Backend.Binary<TOp>(new View(a.Storage, sa), new View(b.Storage, sb), shape), shape);
    }

    private static (Tensor, Tensor) Promoted(string op, Tensor a, Tensor b)
    {
        var t = FloatingType(op, a, b);
        return (a.To(t), b.To(t));
    }

    /// <summary>a + b.</summary>
    // y = a + b   da = g   db = g
    public static Tensor Add(Tensor a, Tensor b)
    {
        (a, b) = Promoted("add", a, b);
        var y = BinaryKernel<AddOp>("add", a, b);
        return Autograd.Record(y, "add", [a, b], g => [
            Autograd.Needs(a) ? g.SumTo(a.Dims) : null,
            Autograd.Needs(b) ? g.SumTo(b.Dims) : null]);
    }

    /// <summary>a - b.</summary>
    // y = a - b   da = g   db = -g
    public static Tensor Sub(Tensor a, Tensor b)
    {
        (a, b) = Promoted("sub", a, b);
        var y = BinaryKernel<SubOp>("sub", a, b);
        return Autograd.Record(y, "sub", [a, b], g => [
            Autograd.Needs(a) ? g.SumTo(a.Dims) : null,
            Autograd.Needs(b) ? (-g).SumTo(b.Dims) : null]);
    }

    /// <summary>a * b, elementwise.</summary>
    // y = a * b   da = g * b   db = g * a
    public static Tensor Mul(Tensor a, Tensor b)
    {
        (a, b) = Promoted("mul", a, b);
        var y = BinaryKernel<MulOp>("mul", a, b);
        return Autograd.Record(y, "mul", [a, b], g => [
            Autograd.Needs(a) ? (g * b).SumTo(a.Dims) : null,
            Autograd.Needs(b) ? (g * a).SumTo(b.Dims) : null]);
    }

    /// <summary>a / b, elementwise.</summary>
    // y = a / b   da = g / b   db = -g * a / b²
    public static Tensor Div(Tensor a, Tensor b)
    {
        (a, b) = Promoted("div", a, b);
        var y = BinaryKernel<DivOp>("div", a, b);
        return Autograd.Record(y, "div", [a, b], g => [
            Autograd.Needs(a) ? (g / b).SumTo(a.Dims) : null,
            Autograd.Needs(b) ? (-g * a / (b * b)).SumTo(b.Dims) : null]);
    }

    /// <summary>a ^ b, elementwise.</summary>
    // y = a^b   da = g * b * a^(b-1)   db = g * y * log(a)
    // with PyTorch's two limits: da = 0 where b = 0 (else 0 · a^(-1) = 0 · inf = NaN at a = 0), and
    // db = 0 where a = 0 and b ≥ 0 (else 0 · log 0 = NaN).
    public static Tensor Pow(Tensor a, Tensor b)
    {
        (a, b) = Promoted("pow", a, b);
        var y = BinaryKernel<PowOp>("pow", a, b);
        return Autograd.Record(y, "pow", [a, b], g => [
            Autograd.Needs(a) ? Where(b == 0, ScalarLike(g, 0), g * b * Pow(a, b - 1)).SumTo(a.Dims) : null,
            Autograd.Needs(b) ? Where(LogicalAnd(a == 0, b >= 0), ScalarLike(g, 0), g * Pow(a, b) * a.Log()).SumTo(b.Dims) : null]);
    }

    /// <summary>x ^ p for a constant exponent.</summary>
    // y = x^p   dx = g * p * x^(p-1), and 0 for p = 0
    // The tensor form's masks reduce to one test of the constant, made once here rather than as a
    // compare and a select over every element of each backward (x.Pow(2) in a penalty is common).
    public Tensor Pow(double p)
    {
        var (a, b) = Promoted("pow", this, ScalarLike(this, p));
        var y = BinaryKernel<PowOp>("pow", a, b);
        return Autograd.Record(y, "pow", [a], g => [p == 0 ? ZerosLike(g) : g * b * Pow(a, b - 1)]);
    }

    /// <summary>Elementwise maximum. At ties the gradient is split equally, as in PyTorch.</summary>
    // y = max(a, b)   da = g * ([a > b] + ½[a = b])   db = g * ([b > a] + ½[a = b])
    public static Tensor Maximum(Tensor a, Tensor b) => MinMax<MaximumOp>("maximum", a, b, max: true);

    /// <summary>Elementwise minimum. At ties the gradient is split equally.</summary>
    // y = min(a, b)   da = g * ([a < b] + ½[a = b])   db = g * ([b < a] + ½[a = b])
    public static Tensor Minimum(Tensor a, Tensor b) => MinMax<MinimumOp>("minimum", a, b, max: false);

    private static Tensor MinMax<TOp>(string op, Tensor a, Tensor b, bool max) where TOp : IBinaryOp
    {
        (a, b) = Promoted(op, a, b);
        var y = BinaryKernel<TOp>(op, a, b);
        return Autograd.Record(y, op, [a, b], g =>
        {
            var half = (a == b).To(g.DType) * 0.5;
            var wa = (max ? a > b : a < b).To(g.DType) + half;
            var wb = (max ? b > a : b < a).To(g.DType) + half;
            return [Autograd.Needs(a) ? (g * wa).SumTo(a.Dims) : null,
                    Autograd.Needs(b) ? (g * wb).SumTo(b.Dims) : null];
        });
    }

    /// <summary>-x.</summary>
    // y = -x   dx = -g
    public Tensor Neg()
    {
        var y = Unary<NegOp>("neg");
        return Autograd.Record(y, "neg", [this], g => [-g]);
    }

    /// <summary>Operator forms. Scalars take the tensor's dtype and device.</summary>
    public static Tensor operator +(Tensor a, Tensor b) => Add(a, b);
    /// <inheritdoc cref="op_Addition(Tensor, Tensor)"/>
    public static Tensor operator -(Tensor a, Tensor b) => Sub(a, b);
    /// <inheritdoc cref="op_Addition(Tensor, Tensor)"/>
    public static Tensor operator *(Tensor a, Tensor b) => Mul(a, b);
    /// <inheritdoc cref="op_Addition(Tensor, Tensor)"/>
    public static Tensor operator /(Tensor a, Tensor b) => Div(a, b);
    /// <inheritdoc cref="op_Addition(Tensor, Tensor)"/>
    public static Tensor operator -(Tensor a) => a.Neg();
    /// <inheritdoc cref="op_Addition(Tensor, Tensor)"/>
    public static Tensor operator +(Tensor a, double b) => Add(a, ScalarLike(a, b));
    /// <inheritdoc cref="op_Addition(Tensor, Tensor)"/>
    public static Tensor operator +(double a, Tensor b) => Add(ScalarLike(b, a), b);
    /// <inheritdoc cref="op_Addition(Tensor, Tensor)"/>
    public static Tensor operator -(Tensor a, double b) => Sub(a, ScalarLike(a, b));
    /// <inheritdoc cref="op_Addition(Tensor, Tensor)"/>
    public static Tensor operator -(double a, Tensor b) => Sub(ScalarLike(b, a), b);
    /// <inheritdoc cref="op_Addition(Tensor, Tensor)"/>
    public static Tensor operator *(Tensor a, double b) => Mul(a, ScalarLike(a, b));
    /// <inheritdoc cref="op_Addition(Tensor, Tensor)"/>
    public static Tensor operator *(double a, Tensor b) => Mul(ScalarLike(b, a), b);
    /// <inheritdoc cref="op_Addition(Tensor, Tensor)"/>
    public static Tensor operator /(Tensor a, double b) => Div(a, ScalarLike(a, b));
    /// <inheritdoc cref="op_Addition(Tensor, Tensor)"/>
    public static Tensor operator /(double a, Tensor b) => Div(ScalarLike(b, a), b);

    // ----- comparisons (not differentiable; bool results) -----

    private static Tensor CompareKernel<TOp>(string op, Tensor a, Tensor b) where TOp : ICompareOp
    {
        if (a.Device != b.Device) throw DeviceMismatch(op, a, b);
        var t = DTypes.Promote(a.DType, b.DType);
        if (t == DType.Bool) t = DType.Int32;
        a = a.Detach().To(t);
        b = b.Detach().To(t);
        var shape = Shapes.Broadcast(op, a.Dims, b.Dims);
        return new Tensor(a.Backend.Compare<TOp>(new View(a.Storage, a.Layout.BroadcastTo(shape)), new View(b.Storage, b.Layout.BroadcastTo(shape)), shape), shape);
    }

    /// <summary>a == b elementwise (bool).</summary>
    public static Tensor Eq(Tensor a, Tensor b) => CompareKernel<EqOp>("eq", a, b);
    /// <summary>a != b elementwise (bool).</summary>
    public static Tensor Ne(Tensor a, Tensor b) => CompareKernel<NeOp>("ne", a, b);
    /// <summary>a &lt; b elementwise (bool).</summary>
    public static Tensor Lt(Tensor a, Tensor b) => CompareKernel<LtOp>("lt", a, b);
    /// <summary>a &lt;= b elementwise (bool).</summary>
    public static Tensor Le(Tensor a, Tensor b) => CompareKernel<LeOp>("le", a, b);
    /// <summary>a &gt; b elementwise (bool).</summary>
    public static Tensor Gt(Tensor a, Tensor b) => CompareKernel<GtOp>("gt", a, b);
    /// <summary>a &gt;= b elementwise (bool).</summary>
    public static Tensor Ge(Tensor a, Tensor b) => CompareKernel<GeOp>("ge", a, b);

    /// <summary>Elementwise comparison operators (bool results). Note that == on tensors compares elements, not references.</summary>
    public static Tensor operator ==(Tensor a, Tensor b) => Eq(a, b);
    /// <inheritdoc cref="op_Equality(Tensor, Tensor)"/>
    public static Tensor operator !=(Tensor a, Tensor b) => Ne(a, b);
    /// <inheritdoc cref="op_Equality(Tensor, Tensor)"/>
    public static Tensor operator <(Tensor a, Tensor b) => Lt(a, b);
    /// <inheritdoc cref="op_Equality(Tensor, Tensor)"/>
    public static Tensor operator <=(Tensor a, Tensor b) => Le(a, b);
    /// <inheritdoc cref="op_Equality(Tensor, Tensor)"/>
    public static Tensor operator >(Tensor a, Tensor b) => Gt(a, b);
    /// <inheritdoc cref="op_Equality(Tensor, Tensor)"/>
    public static Tensor operator >=(Tensor a, Tensor b) => Ge(a, b);
    /// <inheritdoc cref="op_Equality(Tensor, Tensor)"/>
    public static Tensor operator ==(Tensor a, double b) => Eq(a, ScalarLike(a, b));
    /// <inheritdoc cref="op_Equality(Tensor, Tensor)"/>
    public static Tensor operator !=(Tensor a, double b) => Ne(a, ScalarLike(a, b));
    /// <inheritdoc cref="op_Equality(Tensor, Tensor)"/>
    public static Tensor operator <(Tensor a, double b) => Lt(a, ScalarLike(a, b));
    /// <inheritdoc cref="op_Equality(Tensor, Tensor)"/>
    public static Tensor operator <=(Tensor a, double b) => Le(a, ScalarLike(a, b));
    /// <inheritdoc cref="op_Equality(Tensor, Tensor)"/>
    public static Tensor operator >(Tensor a, double b) => Gt(a, ScalarLike(a, b));
    /// <inheritdoc cref="op_Equality(Tensor, Tensor)"/>
    public static Tensor operator >=(Tensor a, double b) => Ge(a, ScalarLike(a, b));

    /// <summary>Reference equality (the == operator compares elements).</summary>
    public override bool Equals(object? obj) => ReferenceEquals(this, obj);
    /// <summary>Reference hash.</summary>
    public override int GetHashCode() => System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(this);

    /// <summary>Elementwise logical and of bool tensors.</summary>
    public static Tensor LogicalAnd(Tensor a, Tensor b) => Where(a, b.To(DType.Bool), ScalarLike(a, 0).To(DType.Bool));
    /// <summary>Elementwise logical or of bool tensors.</summary>
    public static Tensor LogicalOr(Tensor a, Tensor b) => Where(a, Full(new Shape(), 1, DType.Bool, a.Device), b.To(DType.Bool));
    /// <summary>Elementwise logical not of a bool tensor.</summary>
    public Tensor LogicalNot() => Where(this, Full(new Shape(), 0, DType.Bool, Device), Full(new Shape(), 1, DType.Bool, Device));

    /// <summary>True when every element of a (bool) tensor is true.</summary>
    public bool All() => To(DType.Bool).ToArray<bool>().All(v => v);
    /// <summary>True when some element of a (bool) tensor is true.</summary>
    public bool Any() => To(DType.Bool).ToArray<bool>().Any(v => v);

    // ----- selection -----

    /// <summary>cond ? a : b elementwise, with broadcasting. cond must be bool.</summary>
    // y = where(c, a, b)   da = where(c, g, 0)   db = where(c, 0, g)
    public static Tensor Where(Tensor cond, Tensor a, Tensor b)
    {
        if (cond.DType != DType.Bool)
            throw new InvalidOperationException($"Where: the condition must be a bool tensor, got {cond.DType.Name()}");
        if (a.Device != b.Device) throw DeviceMismatch("where", a, b);
        if (cond.Device != a.Device) throw DeviceMismatch("where", cond, a);
        var t = DTypes.Promote(a.DType, b.DType);
        a = a.To(t);
        b = b.To(t);
        var shape = Shapes.Broadcast("where", Shapes.Broadcast("where", cond.Dims, a.Dims), b.Dims);
        var y = new Tensor(a.Backend.Where(
            new View(cond.Storage, cond.Layout.BroadcastTo(shape)),
            new View(a.Storage, a.Layout.BroadcastTo(shape)),
            new View(b.Storage, b.Layout.BroadcastTo(shape)), shape), shape);
        if (!t.IsFloating()) return y;
        return Autograd.Record(y, "where", [a, b], g =>
        {
            var zero = ScalarLike(g, 0);
            return [Autograd.Needs(a) ? Where(cond, g, zero).SumTo(a.Dims) : null,
                    Autograd.Needs(b) ? Where(cond, zero, g).SumTo(b.Dims) : null];
        });
    }

    /// <summary>x with <paramref name="value"/> wherever mask is true.</summary>
    public Tensor MaskedFill(Tensor mask, double value) => Where(mask, ScalarLike(this, value), this);

    /// <summary>Limits elements to [min, max]. The gradient passes where min ≤ x ≤ max (inclusive, as in PyTorch).</summary>
    // y = clamp(x, lo, hi)   dx = g * [lo ≤ x ≤ hi]
    public Tensor Clamp(double? min = null, double? max = null)
    {
        if (!DType.IsFloating()) throw new InvalidOperationException($"Clamp: needs a floating tensor, got {DType.Name()}");
        Tensor y;
        using (Autograd.NoGrad())
        {
            y = Detach();
            if (min is { } lo) y = Maximum(y, ScalarLike(this, lo));
            if (max is { } hi) y = Minimum(y, ScalarLike(this, hi));
        }
        var x = this;
        return Autograd.Record(y, "clamp", [this], g =>
        {
            var inside = OnesLike(x).To(DType.Bool);
            if (min is { } lo) inside = LogicalAnd(inside, x >= lo);
            if (max is { } hi) inside = LogicalAnd(inside, x <= hi);
            return [g * inside.To(g.DType)];
        });
    }
}
