using System.Globalization;
using System.Text;

namespace MiniDeep;

/// <summary>
/// An n-dimensional array on a device, and a node of the autograd tape. A tensor is a
/// <see cref="Storage"/> seen through a <see cref="Layout"/>; views (transpose, slice, expand) share
/// storage. When it was computed from tensors that require gradients, <see cref="GradFn"/> records
/// the op and how to send a gradient back to its inputs (see Autograd/Autograd.cs).
/// </summary>
public sealed partial class Tensor
{
    // Not readonly for one reason: Module.To moves a parameter to another device in place (MoveTo),
    // so that the modules and optimizers holding it keep working.
    internal Storage Storage;
    internal Layout Layout;
    private bool _requiresGrad;

    internal Tensor(Storage storage, Layout layout)
    {
        Storage = storage;
        Layout = layout;
    }

    internal Tensor(Storage storage, int[] shape) : this(storage, Layout.Contiguous(shape)) { }

    /// <summary>Element type.</summary>
    public DType DType => Storage.DType;
    /// <summary>Where the data lives.</summary>
    public Device Device => Storage.Device;
    /// <summary>Dimension sizes.</summary>
    public Shape Shape => Shape.Wrap(Layout.Shape);
    /// <summary>Number of dimensions.</summary>
    public int Rank => Layout.Rank;
    /// <summary>Number of elements.</summary>
    public int Numel => Layout.Numel;
    /// <summary>Size of one dimension (negative counts from the end).</summary>
    public int Size(int axis) => Layout.Shape[Shapes.NormalizeAxis(axis, Rank, "Size")];
    /// <summary>An optional name, shown in graph dumps and errors.</summary>
    public string? Name { get; set; }
    /// <summary>True when the elements are dense and row-major (not a transposed, sliced or expanded view).</summary>
    public bool IsContiguous => Layout.IsContiguous;

    internal int[] Dims => Layout.Shape;
    internal View AsView => new(Storage, Layout);
    internal IBackend Backend => Storage.Device.Backend;

    // ----- autograd state -----

    /// <summary>The op that produced this tensor and its backward rule; null for leaves.</summary>
    public Node? GradFn { get; internal set; }

    /// <summary>A leaf was created by the user (not computed from tensors that require grad).</summary>
    public bool IsLeaf => GradFn is null;

    /// <summary>Accumulated gradient of a leaf (or of a non-leaf after <see cref="RetainGrad"/>). One of another
    /// shape or device is refused when assigned, not later inside an optimizer's step.</summary>
    public Tensor? Grad
    {
        get => _grad;
        set
        {
            if (value is not null && (!Shapes.SameShape(value.Dims, Dims) || value.Device != Device))
                throw new ShapeMismatchException("grad", $"Grad: a gradient of shape {value.Shape} on '{value.Device}' assigned to a tensor of shape {Shape} on '{Device}'; they must match");
            _grad = value;
        }
    }
    private Tensor? _grad;

    internal bool RetainsGrad { get; private set; }
    internal List<Func<Tensor, Tensor?>>? Hooks;

    /// <summary>Whether gradients flow to this tensor. Only leaves may be switched, and only floating tensors may require grad.</summary>
    public bool RequiresGrad
    {
        get => _requiresGrad;
        set
        {
            if (!IsLeaf)
                throw new InvalidOperationException(
                    $"RequiresGrad can only be changed on leaf tensors; this tensor was computed by '{GradFn!.Op}'. Use Detach() for a leaf copy.");
            if (value && !DType.IsFloating())
                throw new InvalidOperationException($"only floating tensors can require gradients; this one is {DType.Name()}");
            _requiresGrad = value;
        }
    }

    internal void SetComputed(Node node)
    {
        GradFn = node;
        _requiresGrad = true;
    }

    /// <summary>Sets <see cref="RequiresGrad"/> and returns this tensor, for fluent construction of parameters.</summary>
    public Tensor RequiresGrad_(bool requiresGrad = true)
    {
        RequiresGrad = requiresGrad;
        return this;
    }

    /// <summary>Keep the gradient of this non-leaf tensor in <see cref="Grad"/> after Backward.</summary>
    public Tensor RetainGrad()
    {
        RetainsGrad = true;
        return this;
    }

    /// <summary>
    /// Registers a hook called with this tensor's gradient during Backward, before it is used. The hook
    /// may return a replacement gradient (same shape) or null to keep it. Dispose the result to remove it.
    /// </summary>
    public IDisposable RegisterHook(Func<Tensor, Tensor?> hook)
    {
        if (!RequiresGrad)
            throw new InvalidOperationException("cannot register a hook on a tensor that does not require grad");
        Hooks ??= [];
        Hooks.Add(hook);
        return new HookHandle(this, hook);
    }

    private sealed class HookHandle(Tensor owner, Func<Tensor, Tensor?> hook) : IDisposable
    {
        public void Dispose() => owner.Hooks?.Remove(hook);
    }

    /// <summary>Backpropagates from this scalar (or with an explicit upstream gradient) into every leaf's <see cref="Grad"/>.</summary>
    /// <param name="grad">Upstream gradient with this tensor's shape; required unless this tensor has one element.</param>
    /// <param name="retainGraph">Keep the saved tensors so that Backward can run through this graph again.</param>
    /// <param name="createGraph">Record the backward pass itself, so the gradients can be differentiated again (Hessian-vector products).</param>
    public void Backward(Tensor? grad = null, bool retainGraph = false, bool createGraph = false) =>
        Autograd.Backward(this, grad, retainGraph || createGraph, createGraph);

    /// <summary>A tensor sharing this one's storage, cut from the graph (no grad).</summary>
    public Tensor Detach() => new(Storage, Layout);

    // ----- reading values -----

    /// <summary>The elements, row-major, as a new array of the element type.</summary>
    public T[] ToArray<T>()
    {
        if (DTypes.Of<T>() != DType)
            throw new InvalidOperationException($"ToArray<{typeof(T).Name}>: tensor dtype is {DType.Name()}; convert with To(DType) first");
        return (T[])Backend.ToArray(AsView);
    }

    /// <summary>The elements converted to float32, row-major.</summary>
    public float[] ToFloatArray() => DType == DType.Float32 ? ToArray<float>() : To(DType.Float32).ToArray<float>();

    /// <summary>The elements converted to float64, row-major.</summary>
    public double[] ToDoubleArray() => DType == DType.Float64 ? ToArray<double>() : To(DType.Float64).ToArray<double>();

    /// <summary>The single value of a one-element tensor, as a double.</summary>
    public double Item()
    {
        if (Numel != 1)
            throw new InvalidOperationException($"Item: only one-element tensors can be read as a scalar; this one has shape {Shape}");
        return ToDoubleArray()[0];
    }

    /// <summary>The single value of a one-element tensor, in its own element type.</summary>
    public T Item<T>()
    {
        if (Numel != 1)
            throw new InvalidOperationException($"Item: only one-element tensors can be read as a scalar; this one has shape {Shape}");
        return ToArray<T>()[0];
    }

    /// <summary>The element at the given indices (one per dimension), as a double.</summary>
    [System.Runtime.CompilerServices.IndexerName("At")]
    public double this[params int[] index]
    {
        get
        {
            if (index.Length != Rank)
                throw new ArgumentException($"indexer: {index.Length} indices for a tensor of rank {Rank} (shape {Shape})");
            var t = this;
            for (int d = index.Length - 1; d >= 0; d--)
            {
                int i = index[d] < 0 ? index[d] + Dims[d] : index[d];
                if (i < 0 || i >= Dims[d])
                    throw new IndexOutOfRangeException($"indexer: index {index[d]} is out of range for dimension {d} of size {Dims[d]} (shape {Shape})");
                t = t.Narrow(d, i, 1);
            }
            return t.Detach().Item();
        }
    }

    /// <summary>PyTorch-style text: values (summarized when large), shape, dtype, device and grad state.</summary>
    public override string ToString() => TensorFormatter.Format(this);
}

internal static class TensorFormatter
{
    private const int Edge = 3;       // elements shown at each end of a long dimension
    private const int Threshold = 1000; // above this many elements, summarize

    public static string Format(Tensor t)
    {
        var values = t.DType switch
        {
            DType.Float32 or DType.Float64 => t.ToDoubleArray().Select(v => (object)v).ToArray(),
            DType.Int32 => t.ToArray<int>().Select(v => (object)v).ToArray(),
            _ => t.ToArray<bool>().Select(v => (object)v).ToArray(),
        };
        bool summarize = t.Numel > Threshold;
        var text = values.Select(v => v switch
        {
            double d => FormatDouble(d),
            bool b => b ? "True" : "False",
            _ => Convert.ToString(v, CultureInfo.InvariantCulture)!,
        }).ToArray();
        int width = text.Length == 0 ? 0 : text.Max(s => s.Length);
        var sb = new StringBuilder("tensor(");
        if (t.Rank == 0) sb.Append(text[0]);
        else Append(sb, t.Dims, Shapes.ContiguousStrides(t.Dims), 0, 0, text, width, summarize, "tensor(".Length);
        sb.Append($", shape={t.Shape}, dtype={t.DType.Name()}");
        if (t.Device != Device.Cpu) sb.Append($", device={t.Device}");
        if (t.GradFn is not null) sb.Append($", grad_fn={t.GradFn.Op}");
        else if (t.RequiresGrad) sb.Append(", requires_grad=True");
        sb.Append(')');
        return sb.ToString();
    }

    private static string FormatDouble(double d)
    {
        if (double.IsNaN(d)) return "nan";
        if (double.IsPositiveInfinity(d)) return "inf";
        if (double.IsNegativeInfinity(d)) return "-inf";
        double a = Math.Abs(d);
        return a != 0 && (a >= 1e5 || a < 1e-4)
            ? d.ToString("0.0000e+00", CultureInfo.InvariantCulture)
            : d.ToString("0.0000", CultureInfo.InvariantCulture);
    }

    private static void Append(StringBuilder sb, int[] dims, int[] strides, int dim, int offset, string[] text, int width, bool summarize, int indent)
    {
        sb.Append('[');
        int n = dims[dim];
        for (int i = 0; i < n; i++)
        {
            if (summarize && n > 2 * Edge && i == Edge)
            {
                sb.Append(dim == dims.Length - 1 ? "..., " : "...,\n" + new string(' ', indent + 1));
                i = n - Edge - 1;
                continue;
            }
            if (dim == dims.Length - 1) sb.Append(text[offset + i * strides[dim]].PadLeft(width));
            else Append(sb, dims, strides, dim + 1, offset + i * strides[dim], text, width, summarize, indent + 1);
            if (i < n - 1)
            {
                sb.Append(',');
                if (dim == dims.Length - 1) sb.Append(' ');
                else sb.Append('\n', dims.Length - 1 - dim).Append(' ', indent + 1);
            }
        }
        sb.Append(']');
    }
}
