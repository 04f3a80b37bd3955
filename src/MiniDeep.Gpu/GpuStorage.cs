using ILGPU;
using ILGPU.Runtime;

namespace MiniDeep.Gpu;

/// <summary>
/// A tensor's elements in device memory. Every dtype is kept as raw bytes (bool as one byte per
/// element) and viewed as float, double or int by the kernels, so one caching allocator serves all.
/// </summary>
/// <remarks>
/// Device memory is scarce and the garbage collector does not see it, so a storage gives its buffer
/// back as soon as it can: at <see cref="Dispose"/> (called by a <see cref="GpuScope"/> or by hand),
/// or from its finalizer when the tensor is collected. Either way the buffer goes to the allocator's
/// cache, not to the driver: the next tensor of a similar size reuses it (see <see cref="GpuAllocator"/>).
/// </remarks>
public sealed class GpuStorage : Storage, IDisposable
{
    private readonly GpuBackend _backend;
    private MemoryBuffer1D<byte, Stride1D.Dense>? _buffer;

    internal GpuStorage(GpuBackend backend, DType dtype, int length) : base(dtype, length)
    {
        _backend = backend;
        _buffer = backend.Allocator.Rent(Math.Max(1L, (long)length * dtype.SizeOf()));
        GpuScope.Track(this);
    }

    /// <inheritdoc/>
    public override Device Device => _backend.Device;

    /// <summary>Whether the buffer has been given back.</summary>
    public bool IsDisposed => _buffer is null;

    internal ArrayView<byte> Bytes => (_buffer ?? throw Disposed()).View.SubView(0, (long)Length * DType.SizeOf());

    internal ArrayView<float> F32 => Typed<float>(DType.Float32);
    internal ArrayView<double> F64 => Typed<double>(DType.Float64);
    internal ArrayView<int> I32 => Typed<int>(DType.Int32);
    internal ArrayView<byte> U8 => Typed<byte>(DType.Bool);

    private ArrayView<T> Typed<T>(DType expected) where T : unmanaged =>
        DType == expected ? Bytes.Cast<T>() : throw new InvalidOperationException($"gpu storage holds {DType.Name()}, a kernel asked for {expected.Name()}");

    private ObjectDisposedException Disposed() => new(nameof(GpuStorage),
        $"this {DType.Name()} tensor's device buffer ({Length} elements on {Device}) was disposed, by a GpuScope that ended or by Dispose; " +
        "keep tensors that must outlive a scope with GpuScope.Keep");

    /// <summary>Gives the device buffer back to the allocator's cache now.</summary>
    public void Dispose()
    {
        var b = Interlocked.Exchange(ref _buffer, null);
        if (b is null) return;
        _backend.Allocator.Return(b, fromFinalizer: false);
        GC.SuppressFinalize(this);
    }

    /// <summary>The collector found no tensor using this storage: its buffer goes back to the cache.</summary>
    ~GpuStorage()
    {
        var b = Interlocked.Exchange(ref _buffer, null);
        if (b is not null) _backend.Allocator.Return(b, fromFinalizer: true);
    }

    internal override bool IsRecyclable => true;
    internal override void Recycle() => Dispose();
}

/// <summary>
/// The caching allocator: device buffers are rented in size classes (powers of two from 256 bytes, then
/// multiples of 1 MiB) and returned to per-class free lists instead of the driver, because a CUDA
/// allocation synchronizes the device and costs far more than a kernel. <see cref="Trim"/> frees the cache.
/// </summary>
public sealed class GpuAllocator
{
    private readonly Accelerator _accelerator;
    private readonly Lock _gate = new();
    private readonly Dictionary<long, Stack<MemoryBuffer1D<byte, Stride1D.Dense>>> _free = [];
    // Finalizers run on the finalizer thread, where a CUDA context need not be current: their buffers
    // wait here until the next Rent on a thread that owns the device.
    private readonly System.Collections.Concurrent.ConcurrentQueue<MemoryBuffer1D<byte, Stride1D.Dense>> _returned = new();
    // Every rented buffer stays reachable from here. An ILGPU buffer has its own finalizer that frees
    // the device memory; were a storage its only root, the two finalizers could run in either order
    // and the storage would hand a freed buffer back to the cache.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<MemoryBuffer1D<byte, Stride1D.Dense>, byte> _rented = new();
    private long _liveBytes, _cachedBytes, _allocated, _reused;

    internal GpuAllocator(Accelerator accelerator) => _accelerator = accelerator;

    /// <summary>Buffers rented and not yet returned: the device tensors alive now.</summary>
    public long LiveBuffers => _rented.Count;
    /// <summary>Bytes of the live buffers (size classes, so at least the tensors' sizes).</summary>
    public long LiveBytes => Interlocked.Read(ref _liveBytes);
    /// <summary>Bytes held in the cache for reuse.</summary>
    public long CachedBytes { get { lock (_gate) { Drain(); return _cachedBytes; } } }
    /// <summary>Buffers the driver allocated, over the allocator's life.</summary>
    public long DriverAllocations => Interlocked.Read(ref _allocated);
    /// <summary>Rents served from the cache, over the allocator's life.</summary>
    public long CacheHits => Interlocked.Read(ref _reused);

    internal static long SizeClass(long bytes)
    {
        const long MiB = 1 << 20;
        if (bytes <= 256) return 256;
        if (bytes <= MiB) return 1L << (64 - System.Numerics.BitOperations.LeadingZeroCount((ulong)(bytes - 1)));
        return (bytes + MiB - 1) / MiB * MiB;
    }

    internal MemoryBuffer1D<byte, Stride1D.Dense> Rent(long bytes)
    {
        long size = SizeClass(bytes);
        MemoryBuffer1D<byte, Stride1D.Dense>? buffer = null;
        lock (_gate)
        {
            Drain();
            if (_free.TryGetValue(size, out var stack) && stack.Count > 0)
            {
                buffer = stack.Pop();
                _cachedBytes -= size;
                _reused++;
            }
        }
        if (buffer is null)
        {
            try { buffer = _accelerator.Allocate1D<byte>(size); }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                Trim();
                try { buffer = _accelerator.Allocate1D<byte>(size); }
                catch (Exception again)
                {
                    throw new InvalidOperationException(
                        $"gpu: cannot allocate {size:N0} bytes on {_accelerator.Name} ({LiveBytes:N0} bytes live in {LiveBuffers:N0} buffers): {again.Message}", again);
                }
            }
            Interlocked.Increment(ref _allocated);
        }
        _rented[buffer] = 0;
        Interlocked.Add(ref _liveBytes, size);
        return buffer;
    }

    internal void Return(MemoryBuffer1D<byte, Stride1D.Dense> buffer, bool fromFinalizer)
    {
        _rented.TryRemove(buffer, out _);
        Interlocked.Add(ref _liveBytes, -buffer.Length);
        if (fromFinalizer) { _returned.Enqueue(buffer); return; }
        lock (_gate) Cache(buffer);
    }

    private void Drain()
    {
        while (_returned.TryDequeue(out var b)) Cache(b);
    }

    private void Cache(MemoryBuffer1D<byte, Stride1D.Dense> buffer)
    {
        if (!_free.TryGetValue(buffer.Length, out var stack)) _free[buffer.Length] = stack = new();
        stack.Push(buffer);
        _cachedBytes += buffer.Length;
    }

    /// <summary>Frees every cached buffer (the live ones stay).</summary>
    public void Trim()
    {
        lock (_gate)
        {
            Drain();
            foreach (var stack in _free.Values)
                while (stack.Count > 0) stack.Pop().Dispose();
            _cachedBytes = 0;
        }
    }
}
