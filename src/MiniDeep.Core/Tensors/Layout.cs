namespace MiniDeep;

/// <summary>How a tensor's elements sit in its storage: shape, strides (in elements) and an offset.
/// Kept apart from the buffer (candle's layout.rs) so that transpose, expand, slice and
/// squeeze are views that cost nothing; kernels take a layout and handle any strides.</summary>
public sealed class Layout
{
    /// <summary>Dimension sizes.</summary>
    public int[] Shape { get; }
    /// <summary>Element step per dimension; 0 marks a broadcast (expanded) dimension.</summary>
    public int[] Strides { get; }
    /// <summary>Index of element [0,...,0] in the storage.</summary>
    public int Offset { get; }
    /// <summary>Number of elements.</summary>
    public int Numel { get; }

    internal Layout(int[] shape, int[] strides, int offset)
    {
        Shape = shape; Strides = strides; Offset = offset; Numel = Shapes.Numel(shape);
    }

    /// <summary>A dense row-major layout.</summary>
    public static Layout Contiguous(int[] shape) => new(shape, Shapes.ContiguousStrides(shape), 0);

    /// <summary>Rank.</summary>
    public int Rank => Shape.Length;

    /// <summary>True when elements are dense and row-major from <see cref="Offset"/> (size-1 dims may have any stride).</summary>
    public bool IsContiguous
    {
        get
        {
            int expected = 1;
            for (int i = Shape.Length - 1; i >= 0; i--)
            {
                if (Shape[i] == 1) continue;
                if (Strides[i] != expected) return false;
                expected *= Shape[i];
            }
            return true;
        }
    }

    /// <summary>Storage index of the element at a flat row-major position.</summary>
    public int IndexOf(int flat)
    {
        int idx = Offset;
        for (int d = Shape.Length - 1; d >= 0; d--)
        {
            int size = Shape[d];
            if (size == 0) return Offset;
            idx += flat % size * Strides[d];
            flat /= size;
        }
        return idx;
    }

    internal Layout Permute(int[] perm)
    {
        var sh = new int[perm.Length];
        var st = new int[perm.Length];
        for (int i = 0; i < perm.Length; i++) { sh[i] = Shape[perm[i]]; st[i] = Strides[perm[i]]; }
        return new Layout(sh, st, Offset);
    }

    /// <summary>Broadcast to <paramref name="target"/> (already checked compatible): new leading and size-1 dims get stride 0.</summary>
    internal Layout BroadcastTo(int[] target)
    {
        int r = target.Length, off = r - Shape.Length;
        var st = new int[r];
        for (int i = 0; i < r; i++)
        {
            int j = i - off;
            st[i] = j < 0 || (Shape[j] == 1 && target[i] != 1) ? 0 : Strides[j];
        }
        return new Layout((int[])target.Clone(), st, Offset);
    }

    internal Layout Narrow(int axis, int start, int length, int step)
    {
        var sh = (int[])Shape.Clone();
        var st = (int[])Strides.Clone();
        sh[axis] = length;
        st[axis] = Strides[axis] * step;
        return new Layout(sh, st, length == 0 ? Offset : Offset + start * Strides[axis]);
    }

    /// <summary>A view with a new shape when the elements can be addressed without a copy, else null.</summary>
    /// <remarks>
    /// Beyond contiguous layouts (PyTorch's computeStride): the old dimensions fall into chunks, runs in
    /// which each dimension steps over exactly the next one (stride[d] = shape[d + 1]·stride[d + 1]);
    /// within a chunk the elements are evenly spaced, so the new dimensions may split and merge it
    /// freely, as long as each chunk is covered by whole new dimensions. Squeezing, unsqueezing or
    /// splitting the last axis of a transposed or narrowed view is then still a view (attention's
    /// heads: a (N, L, 3, H, D) slice of the packed projection selected and transposed).
    /// </remarks>
    internal Layout? TryView(int[] newShape)
    {
        if (IsContiguous || Numel == 0) return new Layout(newShape, Shapes.ContiguousStrides(newShape), Offset);
        var oldShape = Shape;
        var newStrides = new int[newShape.Length];
        int viewD = newShape.Length - 1;
        long chunkBase = Strides[^1], tensorNumel = 1, viewNumel = 1;
        for (int d = oldShape.Length - 1; d >= 0; d--)
        {
            tensorNumel *= oldShape[d];
            // The end of a chunk: the dimension before this one does not step over exactly this run.
            if (d == 0 || (oldShape[d - 1] != 1 && Strides[d - 1] != tensorNumel * chunkBase))
            {
                while (viewD >= 0 && (viewNumel < tensorNumel || newShape[viewD] == 1))
                {
                    newStrides[viewD] = (int)(viewNumel * chunkBase);
                    viewNumel *= newShape[viewD];
                    viewD--;
                }
                if (viewNumel != tensorNumel) return null;
                if (d > 0)
                {
                    chunkBase = Strides[d - 1];
                    tensorNumel = 1;
                    viewNumel = 1;
                }
            }
        }
        return viewD == -1 ? new Layout(newShape, newStrides, Offset) : null;
    }

    /// <inheritdoc/>
    public override string ToString() =>
        $"Layout(shape={Shapes.Format(Shape)}, strides={Shapes.Format(Strides)}, offset={Offset})";
}
