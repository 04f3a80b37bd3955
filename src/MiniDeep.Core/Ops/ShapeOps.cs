namespace MiniDeep;

// Views and shape changes. Most are free (a new Layout over the same storage); their backward
// rules undo the shape change on the gradient.
public sealed partial class Tensor
{
    private Tensor ViewOf(Layout layout) => new(Storage, layout);

    private int[] ResolveShape(string op, int[] shape)
    {
        var s = (int[])shape.Clone();
        int infer = -1, known = 1;
        for (int i = 0; i < s.Length; i++)
        {
            if (s[i] == -1)
            {
                if (infer >= 0) throw new ShapeMismatchException(op, $"{op}: only one dimension can be -1 in {Shapes.Format(shape)}");
                infer = i;
            }
            else if (s[i] < 0) throw new ShapeMismatchException(op, $"{op}: invalid size {s[i]} in {Shapes.Format(shape)}");
            else known *= s[i];
        }
        if (infer >= 0)
        {
            if (known == 0 || Numel % known != 0)
                throw new ShapeMismatchException(op, $"{op}: cannot reshape tensor of shape {Shape} ({Numel} elements) into {Shapes.Format(shape)}");
            s[infer] = Numel / known;
        }
        if (Shapes.Numel(s) != Numel)
            throw new ShapeMismatchException(op, $"{op}: cannot reshape tensor of shape {Shape} ({Numel} elements) into {Shapes.Format(shape)} ({Shapes.Numel(s)} elements)");
        return s;
    }

    /// <summary>Same elements, new shape (one size may be -1). A view when the layout allows, else a copy.</summary>
    // y = reshape(x)   dx = reshape(g, shape(x))
    public Tensor Reshape(params int[] shape)
    {
        var s = ResolveShape("Reshape", shape);
        var layout = Layout.TryView(s);
        var y = layout is not null ? ViewOf(layout) : new Tensor(Backend.Copy(AsView, DType), s);
        var inShape = Dims;
        return Autograd.Record(y, "reshape", [this], g => [g.Reshape(inShape)]);
    }

    /// <summary>Like <see cref="Reshape"/> but never copies: throws when the layout cannot be viewed with the new shape.</summary>
    public Tensor View(params int[] shape)
    {
        var s = ResolveShape("View", shape);
        if (Layout.TryView(s) is null)
            throw new InvalidOperationException($"View: tensor of shape {Shape} with strides {Shapes.Format(Layout.Strides)} is not contiguous; use Reshape (which copies) or Contiguous() first");
        return Reshape(s);
    }

    /// <summary>Merges dimensions startAxis..endAxis into one.</summary>
    public Tensor Flatten(int startAxis = 0, int endAxis = -1)
    {
        if (Rank == 0) return Reshape(1);
        int s = Shapes.NormalizeAxis(startAxis, Rank, "Flatten"), e = Shapes.NormalizeAxis(endAxis, Rank, "Flatten");
        if (s > e) throw new ArgumentException($"Flatten: start axis {startAxis} comes after end axis {endAxis} for shape {Shape}");
        var dims = new List<int>();
        for (int i = 0; i < s; i++) dims.Add(Dims[i]);
        int m = 1;
        for (int i = s; i <= e; i++) m *= Dims[i];
        dims.Add(m);
        for (int i = e + 1; i < Rank; i++) dims.Add(Dims[i]);
        return Reshape([.. dims]);
    }

    /// <summary>Removes size-1 dimensions (all of them, or just <paramref name="axis"/>).</summary>
    public Tensor Squeeze(int? axis = null)
    {
        if (axis is { } a)
        {
            int ax = Shapes.NormalizeAxis(a, Rank, "Squeeze");
            if (Dims[ax] != 1) return this;
            return Reshape([.. Dims.Where((_, i) => i != ax)]);
        }
        return Reshape([.. Dims.Where(d => d != 1)]);
    }

    /// <summary>Inserts a size-1 dimension at <paramref name="axis"/> (from -(rank+1) to rank).</summary>
    public Tensor Unsqueeze(int axis)
    {
        int ax = axis < 0 ? axis + Rank + 1 : axis;
        if (ax < 0 || ax > Rank) throw new ArgumentOutOfRangeException(nameof(axis), $"Unsqueeze: axis {axis} is out of range for a tensor of rank {Rank}");
        var d = Dims.ToList();
        d.Insert(ax, 1);
        return Reshape([.. d]);
    }

    /// <summary>Reorders dimensions: result dim i is input dim perm[i]. A view.</summary>
    // y = permute(x, p)   dx = permute(g, p⁻¹)
    public Tensor Permute(params int[] perm)
    {
        if (perm.Length != Rank)
            throw new ShapeMismatchException("Permute", $"Permute: {perm.Length} axes given for a tensor of shape {Shape}");
        var p = perm.Select(a => Shapes.NormalizeAxis(a, Rank, "Permute")).ToArray();
        if (p.Distinct().Count() != p.Length)
            throw new ArgumentException($"Permute: axes ({string.Join(", ", perm)}) repeat a dimension");
        var inverse = new int[p.Length];
        for (int i = 0; i < p.Length; i++) inverse[p[i]] = i;
        var y = ViewOf(Layout.Permute(p));
        return Autograd.Record(y, "permute", [this], g => [g.Permute(inverse)]);
    }

    /// <summary>Swaps two dimensions. A view.</summary>
    public Tensor Transpose(int axis0, int axis1)
    {
        if (Rank == 0) return this;
        int a = Shapes.NormalizeAxis(axis0, Rank, "Transpose"), b = Shapes.NormalizeAxis(axis1, Rank, "Transpose");
        var p = Enumerable.Range(0, Rank).ToArray();
        (p[a], p[b]) = (p[b], p[a]);
        return Permute(p);
    }

    /// <summary>Transpose of a matrix (rank ≤ 2).</summary>
    public Tensor T => Rank < 2 ? this : Rank == 2 ? Transpose(0, 1)
        : throw new InvalidOperationException($"T: defined for rank ≤ 2, got shape {Shape}; use mT or Permute");

    /// <summary>Swaps the last two dimensions (batched matrix transpose).</summary>
    public Tensor mT => Rank < 2
        ? throw new InvalidOperationException($"mT: needs rank ≥ 2, got shape {Shape}")
        : Transpose(-2, -1);

    /// <summary>Broadcasts to <paramref name="shape"/> without copying (expanded dims have stride 0).</summary>
    // y = expand(x)   dx = sum of g over the expanded dims
    public Tensor Expand(params int[] shape)
    {
        if (shape.Length < Rank)
            throw new ShapeMismatchException("Expand", $"Expand: cannot expand shape {Shape} to fewer dimensions {Shapes.Format(shape)}");
        var target = (int[])shape.Clone();
        int off = shape.Length - Rank;
        for (int i = 0; i < shape.Length; i++)
        {
            int own = i >= off ? Dims[i - off] : 1;
            if (target[i] == -1) target[i] = own;
            if (own != target[i] && own != 1)
                throw new ShapeMismatchException("Expand", $"Expand: cannot expand shape {Shape} to {Shapes.Format(shape)} (dimension {i}: {own} vs {target[i]})");
        }
        if (Shapes.SameShape(target, Dims)) return this;
        var inShape = Dims;
        var y = ViewOf(Layout.BroadcastTo(target));
        return Autograd.Record(y, "expand", [this], g => [g.SumTo(inShape)]);
    }

    /// <summary>Tiles the tensor: dimension i is repeated repeats[i] times (PyTorch's Tensor.repeat).
    /// A composite of expand and reshape, so its gradient sums the copies.</summary>
    public Tensor Repeat(params int[] repeats)
    {
        if (repeats.Length < Rank)
            throw new ShapeMismatchException("Repeat", $"Repeat: {repeats.Length} repeat counts for a tensor of shape {Shape}; give at least {Rank}");
        if (repeats.Any(r => r < 0)) throw new ArgumentException($"Repeat: negative count in ({string.Join(", ", repeats)})");
        var dims = Enumerable.Repeat(1, repeats.Length - Rank).Concat(Dims).ToArray();
        var interleaved = dims.SelectMany(d => new[] { 1, d }).ToArray();
        var expanded = dims.SelectMany((d, i) => new[] { repeats[i], d }).ToArray();
        return Reshape(interleaved).Expand(expanded).Reshape(dims.Select((d, i) => d * repeats[i]).ToArray());
    }

    /// <summary>Same as <see cref="Expand"/>.</summary>
    public Tensor BroadcastTo(Shape shape) => Expand(shape.ToArray());

    /// <summary>Sums a broadcast gradient back to <paramref name="shape"/>: the adjoint of broadcasting.</summary>
    public Tensor SumTo(int[] shape)
    {
        if (Shapes.SameShape(shape, Dims)) return this;
        int lead = Rank - shape.Length;
        if (lead < 0) throw new ShapeMismatchException("SumTo", $"SumTo: cannot reduce shape {Shape} to larger rank {Shapes.Format(shape)}");
        var axes = new List<int>();
        for (int i = 0; i < Rank; i++)
        {
            if (i < lead) axes.Add(i);
            else if (shape[i - lead] == 1 && Dims[i] != 1) axes.Add(i);
            else if (shape[i - lead] != Dims[i])
                throw new ShapeMismatchException("SumTo", $"SumTo: shape {Shape} does not broadcast from {Shapes.Format(shape)}");
        }
        var s = Sum(axes.ToArray(), keepDim: true);
        return s.Reshape(shape);
    }

    /// <summary>Elements start, start+step, ... (length of them) along <paramref name="axis"/>. A view.</summary>
    // y = x[..., start : start+len*step : step, ...]   dx = zeros(shape(x)) with g placed at those positions
    public Tensor Narrow(int axis, int start, int length, int step = 1)
    {
        int ax = Shapes.NormalizeAxis(axis, Rank, "Narrow");
        int size = Dims[ax];
        if (step < 1) throw new ArgumentException($"Narrow: step must be positive, got {step}");
        if (length < 0 || start < 0 || (length > 0 && start + (length - 1) * step >= size) || start > size)
            throw new ArgumentOutOfRangeException(nameof(start),
                $"Narrow: elements {start}..{start + (length - 1) * step} (step {step}) are out of range for axis {axis} of size {size} (shape {Shape})");
        var y = ViewOf(Layout.Narrow(ax, start, length, step));
        var inShape = Dims;
        return Autograd.Record(y, "narrow", [this], g => [g.EmbedInto(inShape, ax, start, step, 0)]);
    }

    /// <summary>Python-style slice [start:end:step] along an axis; negative indices count from the end, bounds are clamped.</summary>
    public Tensor Slice(int axis, int? start = null, int? end = null, int step = 1)
    {
        int ax = Shapes.NormalizeAxis(axis, Rank, "Slice");
        if (step < 1) throw new ArgumentException($"Slice: step must be positive, got {step}");
        int size = Dims[ax];
        int s = start ?? 0, e = end ?? size;
        if (s < 0) s += size;
        if (e < 0) e += size;
        s = Math.Clamp(s, 0, size);
        e = Math.Clamp(e, 0, size);
        int len = e <= s ? 0 : (e - s + step - 1) / step;
        return Narrow(ax, Math.Min(s, size), len, step);
    }

    /// <summary>Selects index <paramref name="index"/> along <paramref name="axis"/> and drops that axis.</summary>
    public Tensor Select(int axis, int index)
    {
        int ax = Shapes.NormalizeAxis(axis, Rank, "Select");
        int i = index < 0 ? index + Dims[ax] : index;
        if (i < 0 || i >= Dims[ax])
            throw new ArgumentOutOfRangeException(nameof(index), $"Select: index {index} is out of range for axis {axis} of size {Dims[ax]} (shape {Shape})");
        return Narrow(ax, i, 1).Squeeze(ax);
    }

    // The adjoint of Narrow: a tensor of `shape` filled with `fill`, with this tensor written at the
    // narrowed positions. Its own adjoint is Narrow again, so second derivatives come for free.
    // y = embed(x)   dx = narrow(g)
    internal Tensor EmbedInto(int[] shape, int axis, int start, int step, double fill)
    {
        var outLayout = Layout.Contiguous(shape);
        var storage = Backend.Full(DType, outLayout.Numel, fill);
        Backend.CopyInto(AsView, storage, outLayout.Narrow(axis, start, Dims[axis], step));
        var y = new Tensor(storage, outLayout);
        int len = Dims[axis];
        return Autograd.Record(y, "embed", [this], g => [g.Narrow(axis, start, len, step)]);
    }

    /// <summary>Pads with a constant. <paramref name="pads"/> holds (before, after) pairs starting from the last dimension, as in PyTorch's F.pad.</summary>
    public Tensor Pad(int[] pads, double value = 0)
    {
        if (pads.Length % 2 != 0 || pads.Length / 2 > Rank)
            throw new ArgumentException($"Pad: {pads.Length} padding values for a tensor of shape {Shape}; give (before, after) pairs for at most {Rank} dims");
        var y = this;
        for (int k = 0; k < pads.Length / 2; k++)
        {
            int axis = Rank - 1 - k, before = pads[2 * k], after = pads[2 * k + 1];
            if (before < 0 || after < 0) throw new ArgumentException($"Pad: negative padding ({before}, {after}) on axis {axis}");
            if (before == 0 && after == 0) continue;
            var shape = (int[])y.Dims.Clone();
            shape[axis] += before + after;
            y = y.EmbedInto(shape, axis, before, 1, value);
        }
        return y;
    }

    /// <summary>Joins tensors along an existing axis.</summary>
    // y = [x0; x1; ...]   dxi = narrow(g, offset_i, len_i)
    public static Tensor Concat(IReadOnlyList<Tensor> tensors, int axis = 0)
    {
        if (tensors.Count == 0) throw new ArgumentException("Concat: no tensors given");
        var first = tensors[0];
        int ax = Shapes.NormalizeAxis(axis, first.Rank, "Concat");
        var dtype = tensors.Select(t => t.DType).Aggregate(DTypes.Promote);
        int total = 0;
        foreach (var t in tensors)
        {
            if (t.Device != first.Device) throw DeviceMismatch("Concat", first, t);
            bool ok = t.Rank == first.Rank;
            for (int i = 0; ok && i < t.Rank; i++) ok = i == ax || t.Dims[i] == first.Dims[i];
            if (!ok)
                throw new ShapeMismatchException("Concat", $"Concat: shapes {first.Shape} and {t.Shape} differ outside axis {axis}");
            total += t.Dims[ax];
        }
        var shape = (int[])first.Dims.Clone();
        shape[ax] = total;
        var outLayout = Layout.Contiguous(shape);
        var storage = first.Backend.Full(dtype, outLayout.Numel, 0);
        var offsets = new int[tensors.Count];
        int off = 0;
        for (int i = 0; i < tensors.Count; i++)
        {
            var t = tensors[i].To(dtype);
            offsets[i] = off;
            first.Backend.CopyInto(t.AsView, storage, outLayout.Narrow(ax, off, t.Dims[ax], 1));
            off += t.Dims[ax];
        }
        var inputs = tensors.Select(t => t.To(dtype)).ToArray();
        var y = new Tensor(storage, outLayout);
        return Autograd.Record(y, "concat", inputs, g =>
        {
            var r = new Tensor?[inputs.Length];
            for (int i = 0; i < inputs.Length; i++)
                if (Autograd.Needs(inputs[i])) r[i] = g.Narrow(ax, offsets[i], inputs[i].Dims[ax]);
            return r;
        });
    }

    /// <summary>Joins tensors of equal shape along a new axis.</summary>
    public static Tensor Stack(IReadOnlyList<Tensor> tensors, int axis = 0)
    {
        if (tensors.Count == 0) throw new ArgumentException("Stack: no tensors given");
        foreach (var t in tensors)
            if (t.Shape != tensors[0].Shape)
                throw new ShapeMismatchException("Stack", $"Stack: shapes {tensors[0].Shape} and {t.Shape} differ; all must be equal");
        int ax = axis < 0 ? axis + tensors[0].Rank + 1 : axis;
        return Concat(tensors.Select(t => t.Unsqueeze(ax)).ToArray(), ax);
    }

    /// <summary>Splits into pieces of <paramref name="size"/> along an axis (the last may be smaller). Views.</summary>
    public Tensor[] Split(int size, int axis = 0)
    {
        if (size <= 0) throw new ArgumentException($"Split: size must be positive, got {size}");
        int ax = Shapes.NormalizeAxis(axis, Rank, "Split");
        var parts = new List<Tensor>();
        for (int s = 0; s < Dims[ax]; s += size) parts.Add(Narrow(ax, s, Math.Min(size, Dims[ax] - s)));
        return [.. parts];
    }

    /// <summary>Splits into pieces with the given sizes along an axis. Views.</summary>
    public Tensor[] Split(int[] sizes, int axis = 0)
    {
        int ax = Shapes.NormalizeAxis(axis, Rank, "Split");
        if (sizes.Sum() != Dims[ax])
            throw new ShapeMismatchException("Split", $"Split: sizes ({string.Join(", ", sizes)}) sum to {sizes.Sum()}, not to axis {axis} of shape {Shape}");
        var parts = new Tensor[sizes.Length];
        int s = 0;
        for (int i = 0; i < sizes.Length; i++) { parts[i] = Narrow(ax, s, sizes[i]); s += sizes[i]; }
        return parts;
    }

    /// <summary>Splits into <paramref name="chunks"/> nearly equal pieces along an axis.</summary>
    public Tensor[] Chunk(int chunks, int axis = 0)
    {
        int ax = Shapes.NormalizeAxis(axis, Rank, "Chunk");
        if (chunks < 1) throw new ArgumentOutOfRangeException(nameof(chunks), $"Chunk: the number of chunks must be at least 1, got {chunks}");
        return Split(Math.Max(1, (Dims[ax] + chunks - 1) / chunks), ax);
    }
}
