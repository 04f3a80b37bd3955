namespace MiniDeep;

/// <summary>A flat buffer of elements on one device. Tensors view storages through a <see cref="Layout"/>;
/// several tensors may share one storage.</summary>
public abstract class Storage
{
    /// <summary>Element type.</summary>
    public DType DType { get; }
    /// <summary>Number of elements.</summary>
    public int Length { get; }
    /// <summary>Where the buffer lives.</summary>
    public abstract Device Device { get; }

    private int _version;
    private static long s_serials;

    /// <summary>Order of creation: storages made after a point have larger serials. Backward uses it
    /// to recognise gradient buffers it created itself (and may therefore hand over without a copy).</summary>
    internal long Serial { get; } = Interlocked.Increment(ref s_serials);

    /// <summary>The serial the next storage will get.</summary>
    internal static long NextSerial => Interlocked.Read(ref s_serials) + 1;

    /// <summary>Counts in-place writes. Autograd records it for every input of an op and refuses to run
    /// that op's backward if an input was modified in place afterwards (its gradient would be wrong).</summary>
    public int Version => Volatile.Read(ref _version);

    internal void BumpVersion() => Interlocked.Increment(ref _version);

    /// <summary>Gives the buffer back for reuse now, when its owner knows that no tensor will read it
    /// again (backward does this for the gradients it created). Default: nothing (the collector frees it).</summary>
    internal virtual void Recycle() { }

    /// <summary>Whether <see cref="Recycle"/> does anything for this storage.</summary>
    internal virtual bool IsRecyclable => false;

    /// <summary>Set by <see cref="Nn.Sequential"/> on the activations passed between its layers, which
    /// nothing outside the recorded graph can see: when Backward frees the graph, it recycles them
    /// instead of leaving them to the garbage collector.</summary>
    internal bool ReleaseWithGraph { get; set; }

    /// <summary>Base constructor.</summary>
    protected Storage(DType dtype, int length) { DType = dtype; Length = length; }
}

/// <summary>Storage in managed memory, used by the reference and CPU backends. The array is valid for
/// as long as the storage (or a tensor viewing it) is reachable; do not keep it beyond that.</summary>
public class HostStorage : Storage
{
    /// <summary>The backing array: float[], double[], int[] or bool[].</summary>
    /// <exception cref="InvalidOperationException">The buffer was recycled (see <see cref="Storage.Recycle"/>).</exception>
    public Array Data => _released ? throw Recycled() : _data;
    private readonly Array _data;
    private readonly Device _device;
    private volatile bool _released;

    /// <summary>Marks the buffer as given back: any later read or write through this storage throws
    /// instead of touching an array that now belongs to another tensor.</summary>
    private protected void MarkReleased() => _released = true;

    private static InvalidOperationException Recycled() => new(
        "this tensor's buffer was recycled: it was an intermediate activation of a Sequential, given back when Backward " +
        "freed the graph (or at once under NoGrad). To keep an intermediate, capture it with a forward hook, or pass " +
        "retainGraph: true to Backward.");

    /// <inheritdoc/>
    public override Device Device => _device;

    internal HostStorage(Array data, Device device) : base(DTypes.Of(data), data.Length)
    {
        _data = data; _device = device;
    }

    /// <summary>Typed view of the whole buffer.</summary>
    public Span<T> Span<T>() => (T[])Data;

    internal T[] As<T>() => (T[])Data;

    /// <summary>The array, handed over for good: the storage will not recycle it.</summary>
    internal virtual Array TakeOwnership() => Data;
}

/// <summary>Host storage whose array goes back to <see cref="Cpu.BufferPool"/> when the storage is collected.</summary>
internal sealed class PooledHostStorage(Array data, Device device) : HostStorage(data, device)
{
    private int _owned;

    /// <summary>Owned by a captured step (<see cref="StepCapture"/>), whose replays write into it:
    /// never recycled while the storage lives.</summary>
    internal bool Captured { get; set; }

    internal override Array TakeOwnership()
    {
        if (Captured) return (Array)Data.Clone();
        Interlocked.Exchange(ref _owned, 1);
        GC.SuppressFinalize(this);
        return Data;
    }

    internal override bool IsRecyclable => !Captured;

    internal override void Recycle()
    {
        if (Captured) return;
        if (Interlocked.Exchange(ref _owned, 1) != 0) return;
        GC.SuppressFinalize(this);
        var data = Data;
        MarkReleased();
        Cpu.BufferPool.Return(data);
    }

    ~PooledHostStorage()
    {
        if (_owned == 0) Cpu.BufferPool.Return(Data);
    }
}


public static partial class DTypes
{
    internal static DType Of(Array a) => a switch
    {
        float[] => DType.Float32,
        double[] => DType.Float64,
        int[] => DType.Int32,
        bool[] => DType.Bool,
        _ => throw new NotSupportedException($"MiniDeep has no dtype for arrays of {a.GetType().GetElementType()?.Name}"),
    };

    internal static Array NewArray(DType t, int length) => t switch
    {
        DType.Bool => new bool[length],
        DType.Int32 => new int[length],
        DType.Float32 => new float[length],
        DType.Float64 => new double[length],
        _ => throw new ArgumentOutOfRangeException(nameof(t)),
    };
}
