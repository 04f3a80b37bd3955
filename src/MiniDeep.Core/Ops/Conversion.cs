namespace MiniDeep;

// Copies, casts, device moves and the few in-place updates optimizers need.
public sealed partial class Tensor
{
    /// <summary>This tensor converted to <paramref name="dtype"/> (itself when already of that type).
    /// Differentiable between floating types.</summary>
    // y = cast(x)   dx = cast(g) back to x's dtype
    public Tensor To(DType dtype)
    {
        if (dtype == DType) return this;
        var y = new Tensor(Backend.Copy(AsView, dtype), (int[])Dims.Clone());
        if (!dtype.IsFloating() || !DType.IsFloating()) return y;
        var from = DType;
        return Autograd.Record(y, "to_" + dtype.Name(), [this], g => [g.To(from)]);
    }

    /// <summary>This tensor on <paramref name="device"/> (itself when already there). Differentiable.</summary>
    // y = move(x)   dx = move(g) back
    public Tensor To(Device device)
    {
        if (device == Device) return this;
        var data = Backend.ToArray(AsView);
        var y = new Tensor(device.Backend.FromArray(data), (int[])Dims.Clone());
        var from = Device;
        return Autograd.Record(y, "to_" + device, [this], g => [g.To(from)]);
    }

    /// <summary>Moves this leaf tensor's elements (and its gradient) to <paramref name="device"/> in place: the
    /// same object, so modules and optimizers that hold it keep working. Used by <see cref="Nn.Module.To(Device)"/>.</summary>
    internal void MoveTo(Device device)
    {
        if (!IsLeaf) throw new InvalidOperationException($"MoveTo: only a leaf tensor (a parameter or buffer) moves in place; this one was computed by {GradFn}");
        Grad?.MoveTo(device);
        if (device == Device) return;
        var data = Backend.ToArray(AsView);
        Storage = device.Backend.FromArray(data);
        Layout = Layout.Contiguous((int[])Dims.Clone());
    }

    /// <summary>Converts this leaf tensor's elements (and its gradient) to <paramref name="dtype"/> in place: the
    /// same object, as <see cref="MoveTo"/>. Used by <see cref="Nn.Module.To(DType)"/>.</summary>
    internal void ConvertTo(DType dtype)
    {
        if (!IsLeaf) throw new InvalidOperationException($"ConvertTo: only a leaf tensor (a parameter or buffer) changes type in place; this one was computed by {GradFn}");
        Grad?.ConvertTo(dtype);
        if (dtype == DType) return;
        Storage = Backend.Copy(AsView, dtype);
        Layout = Layout.Contiguous((int[])Dims.Clone());
    }

    /// <summary>A contiguous copy with its own storage. Differentiable.</summary>
    // y = x   dx = g
    public Tensor Clone()
    {
        var y = new Tensor(Backend.Copy(AsView, DType), (int[])Dims.Clone());
        return Autograd.Record(y, "clone", [this], g => [g]);
    }

    /// <summary>Itself when contiguous, else a contiguous copy. Differentiable.</summary>
    public Tensor Contiguous() => IsContiguous ? this : Clone();

    /// <summary>Float32 shorthand for To(DType.Float32).</summary>
    public Tensor Float() => To(DType.Float32);
    /// <summary>Float64 shorthand.</summary>
    public Tensor Double() => To(DType.Float64);

    // ----- in place (not recorded; used under NoGrad by optimizers and by Backward) -----

    private void CheckInPlace(string op)
    {
        if (Autograd.IsGradEnabled && RequiresGrad)
            throw new InvalidOperationException(
                $"{op}: in-place update of a tensor that requires grad while recording; wrap it in Autograd.NoGrad() (as optimizers do)");
        // An expanded view has elements that share one memory location (stride 0): a write through it
        // lands there more than once (AddInPlace adds twice), or the last copy wins. PyTorch refuses too.
        var strides = Layout.Strides;
        for (int d = 0; d < strides.Length; d++)
            if (strides[d] == 0 && Dims[d] > 1)
                throw new InvalidOperationException(
                    $"{op}: the tensor of shape {Shape} is an expanded view (strides ({string.Join(", ", strides)})): several of its elements share one memory location; write into Contiguous() or Clone() instead");
    }

    /// <summary>this = src (broadcast to this shape), in place.</summary>
    public Tensor CopyFrom(Tensor src)
    {
        CheckInPlace("CopyFrom");
        if (src.Device != Device) throw DeviceMismatch("CopyFrom", this, src);
        if (src.DType == DType && Shapes.SameShape(src.Dims, Dims))
        {
            // Same shape and type (a new batch into a captured input): no broadcast layout to build.
            Backend.CopyInto(src.AsView, Storage, Layout);
            Storage.BumpVersion();
            return this;
        }
        Shapes.Broadcast("CopyFrom", src.Dims, Dims);
        var s = src.DType == DType ? src : src.Detach().To(DType);
        if (!Shapes.SameShape(Shapes.Broadcast("CopyFrom", s.Dims, Dims), Dims))
            throw new ShapeMismatchException("CopyFrom", $"CopyFrom: source shape {src.Shape} cannot be written into shape {Shape}");
        Backend.CopyInto(new View(s.Storage, s.Layout.BroadcastTo(Dims)), Storage, Layout);
        Storage.BumpVersion();
        return this;
    }

    // As out of place: an int32 tensor += 0.6 left it unchanged (the kernel truncated), with no error.
    private void CheckFloating(string op)
    {
        if (!DType.IsFloating())
            throw new InvalidOperationException($"{op}: in-place arithmetic needs a floating tensor, got {DType.Name()}; convert with .Float()");
    }

    /// <summary>this += alpha * other, in place (other broadcast to this shape).</summary>
    public Tensor AddInPlace(Tensor other, double alpha = 1)
    {
        CheckInPlace("AddInPlace");
        CheckFloating("AddInPlace");
        if (other.Device != Device) throw DeviceMismatch("AddInPlace", this, other);
        var src = InPlaceOperand("AddInPlace", other);
        Backend.Axpy(AsView, alpha, src);
        Storage.BumpVersion();
        return this;
    }

    /// <summary>this *= factor, in place.</summary>
    public Tensor MulInPlace(double factor)
    {
        CheckInPlace("MulInPlace");
        CheckFloating("MulInPlace");
        Backend.BinaryInPlace<MulOp>(AsView, InPlaceOperand("MulInPlace", ScalarLike(this, factor)));
        Storage.BumpVersion();
        return this;
    }

    /// <summary>this *= other elementwise, in place (other broadcast to this shape): masks, gates.</summary>
    public Tensor MulInPlace(Tensor other) => BinaryInPlace<MulOp>("MulInPlace", other);

    /// <summary>this = this ∘ other elementwise, in place (other broadcast to this shape).</summary>
    internal Tensor BinaryInPlace<TOp>(string op, Tensor other) where TOp : IBinaryOp
    {
        CheckInPlace(op);
        CheckFloating(op);
        if (other.Device != Device) throw DeviceMismatch(op, this, other);
        Backend.BinaryInPlace<TOp>(AsView, InPlaceOperand(op, other));
        Storage.BumpVersion();
        return this;
    }

    // other in this tensor's dtype, viewed with this tensor's shape (it must broadcast to it, not beyond).
    private View InPlaceOperand(string op, Tensor other)
    {
        var o = other.DType == DType ? other : other.Detach().To(DType);
        if (!Shapes.SameShape(Shapes.Broadcast(op, o.Dims, Dims), Dims))
            throw new ShapeMismatchException(op, $"{op}: operand shape {other.Shape} cannot be broadcast into shape {Shape}");
        return new View(o.Storage, o.Layout.BroadcastTo(Dims));
    }

    /// <summary>Sets every element to <paramref name="value"/>, in place.</summary>
    public Tensor Fill(double value)
    {
        CheckInPlace("Fill");
        CheckRepresentable("Fill", value, DType);
        return CopyFrom(ScalarLike(this, value));
    }

    /// <summary>Sets every element to zero, in place.</summary>
    public Tensor Zero() => Fill(0);

    internal static InvalidOperationException DeviceMismatch(string op, Tensor a, Tensor b) =>
        new($"{op}: tensors are on different devices, '{a.Device}' and '{b.Device}'; move one with To(device)");
}
