using System.Reflection;
using ILGPU;
using ILGPU.Runtime;
using MiniDeep.Gpu.Kernels;

namespace MiniDeep.Gpu;

/// <summary>
/// The backend of one ILGPU accelerator: a CUDA GPU, or ILGPU's CPU accelerator (which runs the same
/// kernels on host threads, as tests do where there is no GPU). Each <see cref="IBackend"/> method
/// launches the kernels in <see cref="Kernels"/>; nothing falls back to the CPU backend, and every
/// launch is counted (<see cref="KernelsLaunched"/>), so a test can tell that the device did the work.
/// </summary>
/// <remarks>
/// Kernels are launched on the accelerator's default stream in call order, so a result is ready for
/// the next kernel without a wait; only reading values back (ToArray, an index check) synchronizes.
/// One lock serializes the backend's calls: the lab trains models on several threads, and an ILGPU
/// accelerator is not meant to be driven from two at once.
/// </remarks>
public sealed partial class GpuBackend : IBackend, IDisposable
{
    private readonly object _gate = new();
    private readonly Dictionary<MethodInfo, object> _kernels = [];
    private long _launched;

    internal GpuBackend(Device device, Accelerator accelerator, KernelCompiler compiler)
    {
        Device = device;
        Accelerator = accelerator;
        Compiler = compiler;
        Allocator = new GpuAllocator(accelerator);
    }

    /// <inheritdoc/>
    public Device Device { get; }

    /// <summary>The ILGPU accelerator the kernels run on.</summary>
    public Accelerator Accelerator { get; }

    /// <summary>The caching allocator of this device's buffers (live-buffer counters for leak tests).</summary>
    public GpuAllocator Allocator { get; }

    internal KernelCompiler Compiler { get; }

    /// <summary>Kernel launches since the backend was created.</summary>
    public long KernelsLaunched => Interlocked.Read(ref _launched);

    /// <summary>Distinct kernels (each generic instantiation counts) loaded so far.</summary>
    public int KernelsLoaded { get { lock (_gate) return _kernels.Count; } }

    private void Launched() => Interlocked.Increment(ref _launched);

    // A kernel is compiled once per instantiation. It is first compiled to PTX in the compiler's own
    // scratch context: a kernel ILGPU cannot compile leaves an ILGPU context unusable, and this way the
    // broken one is the scratch context (recreated), never the one that holds the device's buffers.
    private object Load(MethodInfo method, bool grouped, Func<object> load)
    {
        lock (_gate)
        {
            if (_kernels.TryGetValue(method, out var k)) return k;
            Compiler.Check(method, grouped);
            k = load();
            _kernels[method] = k;
            return k;
        }
    }

    /// <summary>Waits until every launched kernel has finished, then throws the error of the first
    /// device-side check that failed since the last synchronization, if any (see <see cref="CheckEachLaunch"/>).</summary>
    public void Synchronize()
    {
        lock (_gate)
        {
            Accelerator.Synchronize();
            ThrowPendingErrors();
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        lock (_gate)
        {
            _pendingChecks.Clear();
            _errorSlots?.Dispose();
            Allocator.Trim();
            Accelerator.Dispose();
        }
    }

    // ----- storage -----

    private GpuStorage New(DType dtype, int length) => new(this, dtype, length);

    private GpuStorage Own(Storage s, string op) => s is GpuStorage g && g.Device == Device
        ? g
        : throw new InvalidOperationException($"{op}: a tensor on {s.Device} was passed to the {Device} backend; move it with .To({Device}) first");

    /// <inheritdoc/>
    public Storage FromArray(Array data)
    {
        lock (_gate)
        {
            var dtype = data switch
            {
                float[] => DType.Float32,
                double[] => DType.Float64,
                int[] => DType.Int32,
                bool[] => DType.Bool,
                _ => throw new ArgumentException($"gpu: cannot hold a {data.GetType().Name}; MiniDeep's dtypes are float32, float64, int32 and bool"),
            };
            var s = New(dtype, data.Length);
            switch (data)
            {
                case float[] f: s.F32.CopyFromCPU(f); break;
                case double[] d: s.F64.CopyFromCPU(d); break;
                case int[] i: s.I32.CopyFromCPU(i); break;
                case bool[] b: s.U8.CopyFromCPU(b.Select(v => v ? (byte)1 : (byte)0).ToArray()); break;
            }
            return s;
        }
    }

    /// <inheritdoc/>
    public Array ToArray(View x)
    {
        lock (_gate)
        {
            var c = (GpuStorage)Copy(x, x.DType);
            Accelerator.Synchronize();
            try { ThrowPendingErrors(); }
            catch { c.Dispose(); throw; }   // the copy is not returned, so give its buffer back
            Array result = x.DType switch
            {
                DType.Float32 => c.F32.GetAsArray(),
                DType.Float64 => c.F64.GetAsArray(),
                DType.Int32 => c.I32.GetAsArray(),
                _ => c.U8.GetAsArray().Select(v => v != 0).ToArray(),
            };
            c.Dispose();
            GC.KeepAlive(x.Storage);
            return result;
        }
    }

    /// <inheritdoc/>
    public Storage Full(DType dtype, int length, double value)
    {
        lock (_gate)
        {
            var s = New(dtype, length);
            switch (dtype)
            {
                case DType.Float32: Run(Elementwise.Fill, length, s.F32, (float)value); break;
                case DType.Float64: Run(Elementwise.Fill, length, s.F64, value); break;
                case DType.Int32: Run(Elementwise.Fill, length, s.I32, I32.Put(value)); break;
                default: Run(Elementwise.Fill, length, s.U8, U8.Put(value)); break;
            }
            return s;
        }
    }

    /// <inheritdoc/>
    public Storage Copy(View x, DType dtype)
    {
        lock (_gate)
        {
            var y = New(dtype, x.Layout.Numel);
            ConvertInto(x, y, Layout.Contiguous(x.Shape), "copy");
            return y;
        }
    }

    /// <inheritdoc/>
    public void CopyInto(View src, Storage dst, Layout dstLayout)
    {
        lock (_gate) ConvertInto(src, Own(dst, "copy_into"), dstLayout, "copy_into");
    }

    // dst[dstLayout(i)] = convert(src[i]) for every element, any dtype to any dtype.
    private void ConvertInto(View src, GpuStorage dst, Layout dstLayout, string op)
    {
        var s = Own(src.Storage, op);
        var sl = Strided.Of(src.Layout);
        var dl = Strided.Of(dstLayout);
        int n = src.Layout.Numel;
        if (s.DType == dst.DType)
        {
            switch (s.DType)
            {
                case DType.Float32: Run(Elementwise.Copy, n, s.F32, sl, dst.F32, dl); break;
                case DType.Float64: Run(Elementwise.Copy, n, s.F64, sl, dst.F64, dl); break;
                case DType.Int32: Run(Elementwise.Copy, n, s.I32, sl, dst.I32, dl); break;
                default: Run(Elementwise.Copy, n, s.U8, sl, dst.U8, dl); break;
            }
            return;
        }
        switch (s.DType, dst.DType)
        {
            case (DType.Float32, DType.Float64): Run(Elementwise.Convert<float, double, F32, F64>, n, s.F32, sl, dst.F64, dl); break;
            case (DType.Float32, DType.Int32): Run(Elementwise.Convert<float, int, F32, I32>, n, s.F32, sl, dst.I32, dl); break;
            case (DType.Float32, DType.Bool): Run(Elementwise.Convert<float, byte, F32, U8>, n, s.F32, sl, dst.U8, dl); break;
            case (DType.Float64, DType.Float32): Run(Elementwise.Convert<double, float, F64, F32>, n, s.F64, sl, dst.F32, dl); break;
            case (DType.Float64, DType.Int32): Run(Elementwise.Convert<double, int, F64, I32>, n, s.F64, sl, dst.I32, dl); break;
            case (DType.Float64, DType.Bool): Run(Elementwise.Convert<double, byte, F64, U8>, n, s.F64, sl, dst.U8, dl); break;
            case (DType.Int32, DType.Float32): Run(Elementwise.Convert<int, float, I32, F32>, n, s.I32, sl, dst.F32, dl); break;
            case (DType.Int32, DType.Float64): Run(Elementwise.Convert<int, double, I32, F64>, n, s.I32, sl, dst.F64, dl); break;
            case (DType.Int32, DType.Bool): Run(Elementwise.Convert<int, byte, I32, U8>, n, s.I32, sl, dst.U8, dl); break;
            case (DType.Bool, DType.Float32): Run(Elementwise.Convert<byte, float, U8, F32>, n, s.U8, sl, dst.F32, dl); break;
            case (DType.Bool, DType.Float64): Run(Elementwise.Convert<byte, double, U8, F64>, n, s.U8, sl, dst.F64, dl); break;
            case (DType.Bool, DType.Int32): Run(Elementwise.Convert<byte, int, U8, I32>, n, s.U8, sl, dst.I32, dl); break;
        }
    }

    // ----- elementwise -----

    private static InvalidOperationException NotFloating(string op, DType t) => new($"{op}: needs a floating dtype (float32 or float64), got {t.Name()}");

    /// <inheritdoc/>
    public Storage Unary<TOp>(View x) where TOp : IUnaryOp
    {
        lock (_gate)
        {
            var s = Own(x.Storage, "unary");
            int n = x.Layout.Numel;
            var y = New(x.DType, n);
            var xl = Strided.Of(x.Layout);
            switch (x.DType)
            {
                case DType.Float32: Run(Elementwise.UnaryF32<TOp>, n, s.F32, xl, y.F32); break;
                case DType.Float64: Run(Elementwise.UnaryF64<TOp>, n, s.F64, xl, y.F64); break;
                default: throw NotFloating(typeof(TOp).Name, x.DType);
            }
            return y;
        }
    }

    /// <inheritdoc/>
    public Storage Binary<TOp>(View a, View b, int[] shape) where TOp : IBinaryOp
    {
        lock (_gate)
        {
            var sa = Own(a.Storage, "binary"); var sb = Own(b.Storage, "binary");
            int n = Shapes.Numel(shape);
            var y = New(a.DType, n);
            var al = Strided.Of(a.Layout); var bl = Strided.Of(b.Layout);
            switch (a.DType)
            {
                case DType.Float32: Run(Elementwise.BinaryF32<TOp>, n, sa.F32, al, sb.F32, bl, y.F32); break;
                case DType.Float64: Run(Elementwise.BinaryF64<TOp>, n, sa.F64, al, sb.F64, bl, y.F64); break;
                default: throw NotFloating(typeof(TOp).Name, a.DType);
            }
            return y;
        }
    }

    /// <inheritdoc/>
    public Storage Compare<TOp>(View a, View b, int[] shape) where TOp : ICompareOp
    {
        lock (_gate)
        {
            var sa = Own(a.Storage, "compare"); var sb = Own(b.Storage, "compare");
            int n = Shapes.Numel(shape);
            var y = New(DType.Bool, n);
            var al = Strided.Of(a.Layout); var bl = Strided.Of(b.Layout);
            switch (a.DType)
            {
                case DType.Float32: Run(Elementwise.Compare<float, TOp>, n, sa.F32, al, sb.F32, bl, y.U8); break;
                case DType.Float64: Run(Elementwise.Compare<double, TOp>, n, sa.F64, al, sb.F64, bl, y.U8); break;
                case DType.Int32: Run(Elementwise.Compare<int, TOp>, n, sa.I32, al, sb.I32, bl, y.U8); break;
                default: Run(Elementwise.Compare<byte, TOp>, n, sa.U8, al, sb.U8, bl, y.U8); break;
            }
            return y;
        }
    }

    /// <inheritdoc/>
    public Storage Where(View cond, View a, View b, int[] shape)
    {
        lock (_gate)
        {
            var sc = Own(cond.Storage, "where"); var sa = Own(a.Storage, "where"); var sb = Own(b.Storage, "where");
            int n = Shapes.Numel(shape);
            var y = New(a.DType, n);
            var cl = Strided.Of(cond.Layout); var al = Strided.Of(a.Layout); var bl = Strided.Of(b.Layout);
            switch (a.DType)
            {
                case DType.Float32: Run(Elementwise.Where, n, sc.U8, cl, sa.F32, al, sb.F32, bl, y.F32); break;
                case DType.Float64: Run(Elementwise.Where, n, sc.U8, cl, sa.F64, al, sb.F64, bl, y.F64); break;
                case DType.Int32: Run(Elementwise.Where, n, sc.U8, cl, sa.I32, al, sb.I32, bl, y.I32); break;
                default: Run(Elementwise.Where, n, sc.U8, cl, sa.U8, al, sb.U8, bl, y.U8); break;
            }
            return y;
        }
    }

    /// <inheritdoc/>
    public void BinaryInPlace<TOp>(View a, View b) where TOp : IBinaryOp
    {
        lock (_gate)
        {
            var sa = Own(a.Storage, "binary_in_place"); var sb = Own(b.Storage, "binary_in_place");
            int n = a.Layout.Numel;
            var al = Strided.Of(a.Layout); var bl = Strided.Of(b.Layout);
            switch (a.DType)
            {
                case DType.Float32: Run(Elementwise.BinaryInPlaceF32<TOp>, n, sa.F32, al, sb.F32, bl); break;
                case DType.Float64: Run(Elementwise.BinaryInPlaceF64<TOp>, n, sa.F64, al, sb.F64, bl); break;
                default: throw NotFloating(typeof(TOp).Name, a.DType);
            }
        }
    }

    /// <inheritdoc/>
    public void Axpy(View y, double alpha, View x)
    {
        lock (_gate)
        {
            var sy = Own(y.Storage, "axpy"); var sx = Own(x.Storage, "axpy");
            int n = y.Layout.Numel;
            var yl = Strided.Of(y.Layout); var xl = Strided.Of(x.Layout);
            switch (y.DType)
            {
                case DType.Float32: Run(Elementwise.Axpy<float, F32>, n, sy.F32, yl, sx.F32, xl, alpha); break;
                case DType.Float64: Run(Elementwise.Axpy<double, F64>, n, sy.F64, yl, sx.F64, xl, alpha); break;
                default: throw NotFloating("axpy", y.DType);
            }
        }
    }

    /// <inheritdoc/>
    public void AdamStep(View p, View grad, View m, View v, AdamHyper h)
    {
        lock (_gate)
        {
            var sp = Own(p.Storage, "adam"); var sg = Own(grad.Storage, "adam"); var sm = Own(m.Storage, "adam"); var sv = Own(v.Storage, "adam");
            int n = p.Layout.Numel;
            var (pl, gl, ml, vl) = (Strided.Of(p.Layout), Strided.Of(grad.Layout), Strided.Of(m.Layout), Strided.Of(v.Layout));
            switch (p.DType)
            {
                case DType.Float32: Run(Elementwise.AdamStep<float, F32>, n, sp.F32, pl, sg.F32, gl, sm.F32, ml, sv.F32, vl, Elementwise.AdamArgs.Of(h)); break;
                case DType.Float64: Run(Elementwise.AdamStep<double, F64>, n, sp.F64, pl, sg.F64, gl, sm.F64, ml, sv.F64, vl, Elementwise.AdamArgs.Of(h)); break;
                default: throw NotFloating("adam", p.DType);
            }
        }
    }

    /// <inheritdoc/>
    public void SgdStep(View p, View grad, View momentum, SgdHyper h)
    {
        lock (_gate)
        {
            var sp = Own(p.Storage, "sgd"); var sg = Own(grad.Storage, "sgd"); var sv = Own(momentum.Storage, "sgd");
            int n = p.Layout.Numel;
            var (pl, gl, vl) = (Strided.Of(p.Layout), Strided.Of(grad.Layout), Strided.Of(momentum.Layout));
            switch (p.DType)
            {
                case DType.Float32: Run(Elementwise.SgdStep<float, F32>, n, sp.F32, pl, sg.F32, gl, sv.F32, vl, Elementwise.SgdArgs.Of(h)); break;
                case DType.Float64: Run(Elementwise.SgdStep<double, F64>, n, sp.F64, pl, sg.F64, gl, sv.F64, vl, Elementwise.SgdArgs.Of(h)); break;
                default: throw NotFloating("sgd", p.DType);
            }
        }
    }

    // ----- reductions -----

    /// <inheritdoc/>
    public Storage Reduce(ReduceKind kind, View x, bool[] reduceAxes)
    {
        lock (_gate)
        {
            var s = Own(x.Storage, "reduce");
            var shape = x.Shape; var strides = x.Layout.Strides;
            var keptShape = shape.Select((d, i) => reduceAxes[i] ? 1 : d).ToArray();
            var redShape = shape.Select((d, i) => reduceAxes[i] ? d : 1).ToArray();
            var kept = Strided.Of(keptShape, strides, x.Layout.Offset, "reduce");
            var reduced = Strided.Of(redShape, strides, 0, "reduce");
            int outs = Shapes.Numel(keptShape), count = Shapes.Numel(redShape), k = (int)kind;
            var y = New(x.DType, outs);
            // Long reductions get a group each (a fixed tree); short ones a thread each.
            bool grouped = UseGroupKernels && count >= 4 * Reductions.GroupSize && outs < 4096;
            var config = new KernelConfig(outs, Reductions.GroupSize);
            switch (x.DType)
            {
                case DType.Float32:
                    if (grouped) RunGrouped(Reductions.PerGroup<float, F32>, config, s.F32, kept, reduced, count, k, y.F32);
                    else Run(Reductions.PerThread<float, F32>, outs, s.F32, kept, reduced, count, k, y.F32);
                    break;
                case DType.Float64:
                    if (grouped) RunGrouped(Reductions.PerGroup<double, F64>, config, s.F64, kept, reduced, count, k, y.F64);
                    else Run(Reductions.PerThread<double, F64>, outs, s.F64, kept, reduced, count, k, y.F64);
                    break;
                case DType.Int32:
                    if (grouped) RunGrouped(Reductions.PerGroup<int, I32>, config, s.I32, kept, reduced, count, k, y.I32);
                    else Run(Reductions.PerThread<int, I32>, outs, s.I32, kept, reduced, count, k, y.I32);
                    break;
                default:
                    if (grouped) RunGrouped(Reductions.PerGroup<byte, U8>, config, s.U8, kept, reduced, count, k, y.U8);
                    else Run(Reductions.PerThread<byte, U8>, outs, s.U8, kept, reduced, count, k, y.U8);
                    break;
            }
            return y;
        }
    }

    /// <inheritdoc/>
    public Storage ArgReduce(View x, int axis, bool max)
    {
        lock (_gate)
        {
            var s = Own(x.Storage, "argmax");
            var outShape = (int[])x.Shape.Clone();
            outShape[axis] = 1;
            var kept = Strided.Of(outShape, x.Layout.Strides, x.Layout.Offset, "argmax");
            int outs = Shapes.Numel(outShape), size = x.Shape[axis], stride = x.Layout.Strides[axis], m = max ? 1 : 0;
            var y = New(DType.Int32, outs);
            switch (x.DType)
            {
                case DType.Float32: Run(Reductions.ArgReduce<float, F32>, outs, s.F32, kept, size, stride, m, y.I32); break;
                case DType.Float64: Run(Reductions.ArgReduce<double, F64>, outs, s.F64, kept, size, stride, m, y.I32); break;
                case DType.Int32: Run(Reductions.ArgReduce<int, I32>, outs, s.I32, kept, size, stride, m, y.I32); break;
                default: Run(Reductions.ArgReduce<byte, U8>, outs, s.U8, kept, size, stride, m, y.I32); break;
            }
            return y;
        }
    }

    // ----- indexing -----

    // Device-side checks. A kernel that can meet a bad index (gather, scatter-add, cross-entropy's
    // targets, a pooling window in the padding) writes (flag, value, element) into its slot of one device
    // buffer the backend keeps (no scope frees it; it stays zero where no check failed). Reading a slot
    // right after its launch would synchronize the device after every such op, so the slots wait, with
    // the error each would raise, until the next synchronization (a read back or Synchronize): one copy
    // of the used slots, and the first failed check throws the CPU backend's error for its op, as CUDA
    // frameworks report device-side asserts. On an H200 this saved about 0.1 ms of an MLP training step
    // (docs/gpu.md). CheckEachLaunch restores the immediate check.
    private const int MaxPendingChecks = 256;
    private MemoryBuffer1D<int, Stride1D.Dense>? _errorSlots;
    private readonly List<Func<int[], Exception>> _pendingChecks = [];

    /// <summary>
    /// Whether a kernel's device-side check (a bad index, a bad target) is read back right after its
    /// launch, so that the op itself throws. False (the default): the checks are read at the next
    /// synchronization (reading a tensor back, <see cref="Synchronize"/>), which throws the first failed
    /// check's error, naming its op; no device synchronization is added per op. Set it to find which call
    /// passed a bad index.
    /// </summary>
    public bool CheckEachLaunch { get; set; }

    /// <summary>Device-side checks launched and not read yet.</summary>
    public int PendingChecks { get { lock (_gate) return _pendingChecks.Count; } }

    // The slot of the next check: pass it to the kernel, then register the check with Check.
    private ArrayView<int> ErrorSlot()
    {
        if (_errorSlots is null)
        {
            _errorSlots = Accelerator.Allocate1D<int>(MaxPendingChecks * 3);
            Run(Elementwise.Fill, MaxPendingChecks * 3, _errorSlots.View.AsContiguous(), 0);
        }
        return _errorSlots.View.AsContiguous().SubView(_pendingChecks.Count * 3, 3);
    }

    // Registers the check whose slot ErrorSlot gave last; reads them all now when asked to or when the
    // slots are used up, so that a loop that never reads back keeps working.
    private void Check(Func<int[], Exception> error)
    {
        _pendingChecks.Add(error);
        if (CheckEachLaunch || _pendingChecks.Count == MaxPendingChecks)
        {
            Accelerator.Synchronize();
            ThrowPendingErrors();
        }
    }

    // After a synchronization: the used slots are read in one copy; the first failed check throws, and
    // the slots it and any later failures wrote are zeroed again.
    private void ThrowPendingErrors()
    {
        if (_pendingChecks.Count == 0) return;
        var used = _errorSlots!.View.AsContiguous().SubView(0, _pendingChecks.Count * 3);
        var e = used.GetAsArray();
        Exception? first = null;
        for (int k = 0; k < _pendingChecks.Count; k++)
            if (e[3 * k] != 0) { first ??= _pendingChecks[k](e[(3 * k)..(3 * k + 3)]); }
        _pendingChecks.Clear();
        if (first is not null)
        {
            Run(Elementwise.Fill, used.IntLength, used, 0);
            throw first;
        }
    }

    /// <inheritdoc/>
    public Storage Gather(View x, int axis, View index, string op = "gather")
    {
        lock (_gate)
        {
            var s = Own(x.Storage, op); var si = Own(index.Storage, op);
            var outShape = index.Shape;
            int n = Shapes.Numel(outShape);
            var strides = (int[])x.Layout.Strides.Clone();
            int axisStride = strides[axis];
            strides[axis] = 0;
            var xAt = Strided.Of(outShape, strides, x.Layout.Offset, "gather");
            var il = Strided.Of(index.Layout);
            var y = New(x.DType, n);
            var err = ErrorSlot();
            int size = x.Shape[axis];
            switch (x.DType)
            {
                case DType.Float32: Run(Indexing.Gather, n, s.F32, xAt, axisStride, size, si.I32, il, y.F32, err); break;
                case DType.Float64: Run(Indexing.Gather, n, s.F64, xAt, axisStride, size, si.I32, il, y.F64, err); break;
                case DType.Int32: Run(Indexing.Gather, n, s.I32, xAt, axisStride, size, si.I32, il, y.I32, err); break;
                default: Run(Indexing.Gather, n, s.U8, xAt, axisStride, size, si.I32, il, y.U8, err); break;
            }
            Check(e => new IndexOutOfRangeException($"{op}: index {e[1]} is out of range for axis {axis} of size {size}"));
            return y;
        }
    }

    /// <inheritdoc/>
    public Storage ScatterAdd(int[] shape, int axis, View index, View src)
    {
        lock (_gate)
        {
            var ss = Own(src.Storage, "scatter_add"); var si = Own(index.Storage, "scatter_add");
            int n = Shapes.Numel(shape);
            var y = New(src.DType, n);
            var outShape = (GpuStorage)FromArray(shape);
            var srcShape = (GpuStorage)FromArray(src.Shape);
            var sl = Strided.Of(src.Layout); var il = Strided.Of(index.Layout);
            var err = ErrorSlot();
            int rank = shape.Length, srcAxis = src.Shape[axis];
            switch (src.DType)
            {
                case DType.Float32: Run(Indexing.ScatterAddPerOutput<float, F32>, n, shape[axis], outShape.I32, srcShape.I32, rank, axis, ss.F32, sl, si.I32, il, srcAxis, y.F32, err); break;
                case DType.Float64: Run(Indexing.ScatterAddPerOutput<double, F64>, n, shape[axis], outShape.I32, srcShape.I32, rank, axis, ss.F64, sl, si.I32, il, srcAxis, y.F64, err); break;
                default: throw NotFloating("scatter_add", src.DType);
            }
            outShape.Dispose(); srcShape.Dispose();   // the launch is queued before any later use of these buffers
            int axisSize = shape[axis];
            Check(e => new IndexOutOfRangeException($"scatter_add: index {e[1]} is out of range for axis {axis} of size {axisSize}"));
            return y;
        }
    }

    // ----- random -----

    /// <inheritdoc/>
    public Storage Random(RandomKind kind, DType dtype, int length, ulong seed, ulong stream, double a, double b)
    {
        lock (_gate)
        {
            var y = New(dtype, length);
            int k = (int)kind, f64 = dtype == DType.Float64 ? 1 : 0;
            switch (dtype)
            {
                case DType.Float32: Run(RandomFill.Fill<float, F32>, length, y.F32, seed, stream, k, f64, a, b); break;
                case DType.Float64: Run(RandomFill.Fill<double, F64>, length, y.F64, seed, stream, k, f64, a, b); break;
                case DType.Int32: Run(RandomFill.Fill<int, I32>, length, y.I32, seed, stream, k, f64, a, b); break;
                default: Run(RandomFill.Fill<byte, U8>, length, y.U8, seed, stream, k, f64, a, b); break;
            }
            return y;
        }
    }

    // ----- normalization -----

    /// <inheritdoc/>
    public (Storage Y, Storage Stats) LayerNormRows(View x, View? weight, View? bias, int cols, double eps)
    {
        lock (_gate)
        {
            var sx = Own(x.Storage, "layer_norm");
            int rows = cols == 0 ? 0 : x.Layout.Numel / cols;
            var y = New(x.DType, rows * cols);
            var stats = New(x.DType, rows * 2);
            // An absent weight or bias is stood in for by x itself and switched off by the flags.
            var (sw, wl) = weight is View w ? (Own(w.Storage, "layer_norm"), Strided.Of(w.Layout)) : (sx, Strided.Of(x.Layout));
            var (sb, bl) = bias is View b ? (Own(b.Storage, "layer_norm"), Strided.Of(b.Layout)) : (sx, Strided.Of(x.Layout));
            int flags = (weight is null ? 0 : 1) | (bias is null ? 0 : 2);
            var xl = Strided.Of(x.Layout);
            switch (x.DType)
            {
                case DType.Float32: Run(Normalization.LayerNormRows<float, F32>, rows, sx.F32, xl, cols, sw.F32, wl, sb.F32, bl, flags, eps, y.F32, stats.F32); break;
                case DType.Float64: Run(Normalization.LayerNormRows<double, F64>, rows, sx.F64, xl, cols, sw.F64, wl, sb.F64, bl, flags, eps, y.F64, stats.F64); break;
                default: throw NotFloating("layer_norm", x.DType);
            }
            return (y, stats);
        }
    }

    /// <inheritdoc/>
    public (Storage Dx, Storage GXhat) LayerNormRowsBackward(View x, View? weight, View stats, View grad, int cols)
    {
        lock (_gate)
        {
            var sx = Own(x.Storage, "layer_norm"); var ss = Own(stats.Storage, "layer_norm"); var sg = Own(grad.Storage, "layer_norm");
            int rows = cols == 0 ? 0 : x.Layout.Numel / cols;
            var dx = New(x.DType, rows * cols);
            var gxh = New(x.DType, rows * cols);
            var (sw, wl) = weight is View w ? (Own(w.Storage, "layer_norm"), Strided.Of(w.Layout)) : (sx, Strided.Of(x.Layout));
            int hasWeight = weight is null ? 0 : 1;
            var (xl, sl, gl) = (Strided.Of(x.Layout), Strided.Of(stats.Layout), Strided.Of(grad.Layout));
            switch (x.DType)
            {
                case DType.Float32: Run(Normalization.LayerNormRowsBackward<float, F32>, rows, sx.F32, xl, cols, sw.F32, wl, hasWeight, ss.F32, sl, sg.F32, gl, dx.F32, gxh.F32); break;
                case DType.Float64: Run(Normalization.LayerNormRowsBackward<double, F64>, rows, sx.F64, xl, cols, sw.F64, wl, hasWeight, ss.F64, sl, sg.F64, gl, dx.F64, gxh.F64); break;
                default: throw NotFloating("layer_norm", x.DType);
            }
            return (dx, gxh);
        }
    }

    // ----- losses -----

    /// <inheritdoc/>
    public Storage CrossEntropyRows(View logits, View targets)
    {
        lock (_gate)
        {
            var sx = Own(logits.Storage, "cross_entropy"); var st = Own(targets.Storage, "cross_entropy");
            int n = logits.Shape[0], c = logits.Shape[1];
            var y = New(logits.DType, n);
            var err = ErrorSlot();
            var (xl, tl) = (Strided.Of(logits.Layout), Strided.Of(targets.Layout));
            switch (logits.DType)
            {
                case DType.Float32: Run(Loss.CrossEntropyRows<float, F32>, n, sx.F32, xl, c, st.I32, tl, y.F32, err); break;
                case DType.Float64: Run(Loss.CrossEntropyRows<double, F64>, n, sx.F64, xl, c, st.I32, tl, y.F64, err); break;
                default: throw NotFloating("cross_entropy", logits.DType);
            }
            Check(e => new ArgumentOutOfRangeException(nameof(targets), $"cross_entropy: target {e[1]} at row {e[2]} is outside [0, {c})"));
            return y;
        }
    }

    /// <inheritdoc/>
    public Storage CrossEntropyRowsBackward(View logits, View targets, View grad)
    {
        lock (_gate)
        {
            var sx = Own(logits.Storage, "cross_entropy"); var st = Own(targets.Storage, "cross_entropy"); var sg = Own(grad.Storage, "cross_entropy");
            int n = logits.Shape[0], c = logits.Shape[1];
            var y = New(logits.DType, n * c);
            var err = ErrorSlot();
            var (xl, tl, gl) = (Strided.Of(logits.Layout), Strided.Of(targets.Layout), Strided.Of(grad.Layout));
            switch (logits.DType)
            {
                case DType.Float32: Run(Loss.CrossEntropyRowsBackward<float, F32>, n * c, sx.F32, xl, c, st.I32, tl, sg.F32, gl, y.F32, err); break;
                case DType.Float64: Run(Loss.CrossEntropyRowsBackward<double, F64>, n * c, sx.F64, xl, c, st.I32, tl, sg.F64, gl, y.F64, err); break;
                default: throw NotFloating("cross_entropy", logits.DType);
            }
            Check(e => new ArgumentOutOfRangeException(nameof(targets), $"cross_entropy: target {e[1]} at row {e[2]} is outside [0, {c})"));
            return y;
        }
    }
}
