using MiniDeep.Cpu;

namespace MiniDeep;

/// <summary>
/// Captures one run of a step (forward, loss, backward) as the list of CPU kernels it called, with the
/// buffers they wrote; <see cref="CapturedStep.Replay"/> runs those kernels again on the same buffers.
/// The idea of CUDA graphs and torch.cuda.graphs, on the CPU: the define-by-run bookkeeping (tensor
/// objects, autograd nodes, closures) happens once; every replay is only the arithmetic, with no
/// managed allocation of its own.
/// </summary>
/// <remarks>
/// <para>What a replay can and cannot see, as with CUDA graphs:</para>
/// <list type="bullet">
/// <item>Inputs are the tensors the step read that were made before the capture. Put each new batch
/// into them in place (<c>x.CopyFrom(batch)</c>) and replay; tensors made inside the step are its
/// own buffers, refreshed by every replay (the loss it returned, the gradients).</item>
/// <item>Control flow and shapes are frozen: a replay runs the kernels the capture ran. Values read to
/// the host during the capture (<c>Item</c>, <c>ToArray</c>) are not read again, which is why
/// <c>Sort</c>, <c>TopK</c> and <c>ArgSort</c>, whose order is found on the host, are refused inside a capture.</item>
/// <item>Random draws (dropout masks) take the next stream of their generator on every replay, so a
/// replayed step draws what the eager step would have.</item>
/// <item>CPU tensors only. The optimizer step stays outside: it is cheap, and its learning rate and
/// bias corrections change every step.</item>
/// </list>
/// <para>The buffers of every tensor the step made stay allocated while the <see cref="CapturedStep"/>
/// lives (reported by <see cref="CapturedStep.Bytes"/>).</para>
/// </remarks>
public static class StepCapture
{
    [ThreadStatic] private static CapturingBackend? t_backend;

    /// <summary>Whether a capture is running on this thread.</summary>
    internal static bool IsCapturing => t_backend is not null;

    /// <summary>The recording backend of a capture running on this thread, or null.</summary>
    internal static IBackend? Intercept(Device device, IBackend backend)
    {
        var capture = t_backend;
        if (capture is null) return null;
        if (!ReferenceEquals(backend, capture.Inner))
            throw new NotSupportedException($"StepCapture: only CPU tensors can be captured; the step used a tensor on '{device}'");
        return capture;
    }

    /// <summary>
    /// Runs <paramref name="step"/> once, recording its kernels, and returns the capture. The gradients of
    /// <paramref name="parameters"/> are cleared first, so that the step's backward writes them rather
    /// than adding to them; each replay then leaves this step's gradient in them again.
    /// </summary>
    /// <param name="parameters">The tensors whose gradients the step computes (typically <c>model.Parameters()</c>).</param>
    /// <param name="step">The step: forward, loss, <c>Backward</c>; returns the tensor to read after each replay (the loss).</param>
    public static CapturedStep Capture(IEnumerable<Tensor> parameters, Func<Tensor> step)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(step);
        if (t_backend is not null) throw new InvalidOperationException("StepCapture: captures do not nest");
        var ps = parameters.ToArray();
        foreach (var p in ps) p.Grad = null;
        var backend = new CapturingBackend((CpuBackend)Device.Cpu.Backend);
        t_backend = backend;
        Tensor output;
        try
        {
            output = step();
        }
        finally
        {
            t_backend = null;
        }
        if (output.Device != Device.Cpu) throw new NotSupportedException($"StepCapture: the step returned a tensor on '{output.Device}'");
        var grads = ps.Where(p => p.Grad is not null).Select(p => (p, p.Grad!)).ToArray();
        // Parameters were given but the step left every gradient empty: replays would compute the loss and
        // an optimizer stepping after them would do nothing.
        if (ps.Length > 0 && grads.Length == 0)
            throw new InvalidOperationException($"StepCapture: the step computed no gradient for any of the {ps.Length} parameters given (did it call Backward?); capture a step without one with no parameters");
        return new CapturedStep(backend.Entries.ToArray(), backend.Tape, output, grads);
    }
}

/// <summary>A captured step: <see cref="Replay"/> runs its kernels again. See <see cref="StepCapture"/>.</summary>
public sealed class CapturedStep
{
    private readonly CapturedKernel[] _kernels;
    private readonly CaptureTape _tape;
    private readonly (Tensor Parameter, Tensor Grad)[] _grads;

    internal CapturedStep(CapturedKernel[] kernels, CaptureTape tape, Tensor output, (Tensor, Tensor)[] grads)
    {
        _kernels = kernels;
        _tape = tape;
        Output = output;
        _grads = grads;
    }

    /// <summary>The tensor the step returned; each replay writes its new value into it.</summary>
    public Tensor Output { get; }

    /// <summary>Kernels run by each replay.</summary>
    public int Kernels => _kernels.Length;

    /// <summary>Bytes of the buffers the capture owns (every tensor the step made).</summary>
    public long Bytes => _tape.Bytes;

    /// <summary>
    /// Each kernel's name, with the seconds it took and the bytes it allocated on the calling thread,
    /// averaged over <paramref name="replays"/> replays (diagnostics: where a step's time goes without
    /// the eager step's bookkeeping in between; a replay should allocate nothing).
    /// </summary>
    public KernelProfile[] Profile(int replays = 10)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(replays, 1);
        var seconds = new double[_kernels.Length];
        var bytes = new long[_kernels.Length];
        for (int r = 0; r < replays; r++)
            using (_tape.Replaying())
                for (int i = 0; i < _kernels.Length; i++)
                {
                    long before = GC.GetAllocatedBytesForCurrentThread(), start = System.Diagnostics.Stopwatch.GetTimestamp();
                    _kernels[i].Replay(_tape);
                    seconds[i] += System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalSeconds;
                    bytes[i] += GC.GetAllocatedBytesForCurrentThread() - before;
                }
        foreach (var (p, g) in _grads) p.Grad = g;
        return [.. _kernels.Select((k, i) => new KernelProfile(k.Name, seconds[i] / replays, bytes[i] / replays))];
    }

    /// <summary>Runs the step's kernels again on the inputs' current values; the parameters' gradients
    /// are this step's afterwards (even if something set them to null in between).</summary>
    public Tensor Replay()
    {
        using (_tape.Replaying())
            foreach (var k in _kernels) k.Replay(_tape);
        foreach (var (p, g) in _grads) p.Grad = g;
        return Output;
    }
}

/// <summary>One kernel of a captured step, as <see cref="CapturedStep.Profile"/> measured it: seconds and
/// bytes allocated per replay.</summary>
public readonly record struct KernelProfile(string Kernel, double Seconds, long BytesAllocated);

/// <summary>One recorded kernel call: how to call it again, and what it produced the first time.</summary>
internal sealed class CapturedKernel(string name, Func<Storage?> call, Storage? result, (int, int) tapeEnd)
{
    public string Name => name;

    public void Replay(CaptureTape tape)
    {
        var r = call();
        if (tape.Position != tapeEnd)
            throw new InvalidOperationException($"StepCapture: the replay of kernel '{name}' took other buffers than its capture");
        // A kernel whose result did not come through the tape (one the CPU backend inherits from the
        // reference backend allocates its own) is copied into the captured buffer.
        if (result is not null && !ReferenceEquals(r, result)) CopyBack(r!, result);
    }

    internal static void CopyBack(Storage from, Storage to)
    {
        using (CaptureTape.Suspend())
            Device.Cpu.Backend.CopyInto(new View(from, Layout.Contiguous([from.Length])), to, Layout.Contiguous([to.Length]));
    }
}

/// <summary>The CPU backend seen through a capture: every call runs and is recorded.</summary>
internal sealed class CapturingBackend(CpuBackend inner) : IBackend
{
    public CpuBackend Inner => inner;
    public List<CapturedKernel> Entries { get; } = [];
    public CaptureTape Tape { get; } = new();

    public Device Device => inner.Device;

    private Storage Run(string name, Func<Storage> call)
    {
        Storage result;
        using (Tape.Recording()) result = call();
        Entries.Add(new CapturedKernel(name, call, result, Tape.Position));
        return result;
    }

    private void Run(string name, Action call)
    {
        using (Tape.Recording()) call();
        Entries.Add(new CapturedKernel(name, () => { call(); return null; }, null, Tape.Position));
    }

    // A constant: its storage wraps the host array itself, so a replay has nothing to recompute.
    public Storage FromArray(Array data) => inner.FromArray(data);

    // A read to the host: not part of the replay (its value is the capture's).
    public Array ToArray(View x)
    {
        using (CaptureTape.Suspend()) return inner.ToArray(x);
    }

    public Storage Full(DType dtype, int length, double value) => Run("full", () => inner.Full(dtype, length, value));
    public Storage Copy(View x, DType dtype) => Run("copy", () => inner.Copy(x, dtype));
    public void CopyInto(View src, Storage dst, Layout dstLayout) => Run("copy_into", () => inner.CopyInto(src, dst, dstLayout));
    public Storage Unary<TOp>(View x) where TOp : IUnaryOp => Run(typeof(TOp).Name, () => inner.Unary<TOp>(x));
    public Storage Binary<TOp>(View a, View b, int[] shape) where TOp : IBinaryOp => Run(typeof(TOp).Name, () => inner.Binary<TOp>(a, b, shape));
    public Storage Compare<TOp>(View a, View b, int[] shape) where TOp : ICompareOp => Run(typeof(TOp).Name, () => inner.Compare<TOp>(a, b, shape));
    public Storage Where(View cond, View a, View b, int[] shape) => Run("where", () => inner.Where(cond, a, b, shape));
    public Storage Reduce(ReduceKind kind, View x, bool[] reduceAxes) => Run($"reduce_{kind}", () => inner.Reduce(kind, x, reduceAxes));
    public Storage ArgReduce(View x, int axis, bool max) => Run("arg_reduce", () => inner.ArgReduce(x, axis, max));
    public Storage MatMul(View a, View b, int[] batch) => Run("matmul", () => inner.MatMul(a, b, batch));
    public Storage Linear(View x, View w, View? bias, bool relu) => Run(relu ? "linear_relu" : "linear", () => inner.Linear(x, w, bias, relu));
    public Storage Conv2d(View x, View w, View? bias, WindowGeometry g, bool relu) => Run("conv2d", () => inner.Conv2d(x, w, bias, g, relu));
    public Storage Conv2dInputGrad(View gy, View w, WindowGeometry g) => Run("conv2d_input_grad", () => inner.Conv2dInputGrad(gy, w, g));
    public Storage Conv2dWeightGrad(View gy, View x, WindowGeometry g) => Run("conv2d_weight_grad", () => inner.Conv2dWeightGrad(gy, x, g));
    public Storage Unfold(View x, WindowGeometry g) => Run("unfold", () => inner.Unfold(x, g));
    public Storage Fold(View cols, WindowGeometry g) => Run("fold", () => inner.Fold(cols, g));

    // A kernel with two results: the entry checks the first, and a replay copies the second back into
    // the capture's storage when the tape did not hand it the same one.
    private (Storage, Storage) Run2(string name, Func<(Storage, Storage)> call)
    {
        (Storage, Storage) result;
        using (Tape.Recording()) result = call();
        var (first, second) = result;
        Entries.Add(new CapturedKernel(name, () =>
        {
            var (a, b) = call();
            if (!ReferenceEquals(b, second)) CapturedKernel.CopyBack(b, second);
            return a;
        }, first, Tape.Position));
        return result;
    }

    public (Storage Values, Storage Indices) MaxPool2d(View x, WindowGeometry g) => Run2("max_pool2d", () => inner.MaxPool2d(x, g));
    public (Storage Y, Storage Stats) LayerNormRows(View x, View? weight, View? bias, int cols, double eps) =>
        Run2("layer_norm", () => inner.LayerNormRows(x, weight, bias, cols, eps));
    public (Storage Dx, Storage GXhat) LayerNormRowsBackward(View x, View? weight, View stats, View grad, int cols) =>
        Run2("layer_norm_backward", () => inner.LayerNormRowsBackward(x, weight, stats, grad, cols));

    public Storage MaxPool2dBackward(View grad, View indices, WindowGeometry g) => Run("max_pool2d_backward", () => inner.MaxPool2dBackward(grad, indices, g));
    public Storage Gather(View x, int axis, View index, string op = "gather") => Run("gather", () => inner.Gather(x, axis, index, op));
    public Storage ScatterAdd(int[] shape, int axis, View index, View src) => Run("scatter_add", () => inner.ScatterAdd(shape, axis, index, src));

    // A draw with a fixed seed and stream would repeat on every replay: refused. Tensor-level draws
    // (dropout masks, Tensor.Rand) come through the overload below with their generator.
    public Storage Random(RandomKind kind, DType dtype, int length, ulong seed, ulong stream, double a, double b) =>
        throw new NotSupportedException(
            $"StepCapture: a random fill with a fixed seed and stream ({kind}, {length} values) would repeat the same numbers on every replay; " +
            "draw through a Generator (Tensor.Rand, Dropout) instead");

    /// <summary>A draw from <paramref name="g"/>: each replay takes the generator's next stream, so a
    /// replayed step draws what the eager step would have drawn at that point.</summary>
    public Storage Random(RandomKind kind, DType dtype, int length, Generator g, double a, double b) =>
        Run($"random_{kind}", () => inner.Random(kind, dtype, length, g.Seed, g.NextStream(), a, b));

    public void BinaryInPlace<TOp>(View a, View b) where TOp : IBinaryOp => Run(typeof(TOp).Name + "_", () => inner.BinaryInPlace<TOp>(a, b));
    public void Axpy(View y, double alpha, View x) => Run("axpy", () => inner.Axpy(y, alpha, x));
    public void AdamStep(View p, View grad, View m, View v, AdamHyper h) => Run("adam_step", () => inner.AdamStep(p, grad, m, v, h));
    public void SgdStep(View p, View grad, View momentum, SgdHyper h) => Run("sgd_step", () => inner.SgdStep(p, grad, momentum, h));
    public Storage CrossEntropyRows(View logits, View targets) => Run("cross_entropy_rows", () => inner.CrossEntropyRows(logits, targets));
    public Storage CrossEntropyRowsBackward(View logits, View targets, View grad) => Run("cross_entropy_rows_backward", () => inner.CrossEntropyRowsBackward(logits, targets, grad));
}
