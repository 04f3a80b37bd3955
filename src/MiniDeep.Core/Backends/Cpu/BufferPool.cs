using System.Collections.Concurrent;

namespace MiniDeep.Cpu;

/// <summary>
/// Recycles the large arrays behind CPU tensors. A training step allocates the same buffer sizes
/// every step; without recycling each one is fresh memory that the runtime must map (page faults)
/// and later collect. A pooled storage gives its array back when the garbage collector finds the
/// storage unreachable (its finalizer runs), so tensors need no explicit disposal; kernels keep their
/// input storages reachable (GC.KeepAlive) until they have finished reading them.
/// Arrays come from the pinned object heap: the collector never moves them.
/// </summary>
public static class BufferPool
{
    /// <summary>Arrays smaller than this many bytes are ordinary garbage-collected arrays: the young
    /// generation handles them well. It is in bytes, not elements, and below the runtime's 85,000-byte
    /// large-object threshold: a 16,000-element float64 array (128 KB) left to the collector went to
    /// the large-object heap, freshly mapped and zeroed each time and reclaimed only by full
    /// collections (a third of a small model's Hessian computation was the kernel mapping pages).</summary>
    public const int MinPooledBytes = 64 * 1024;

    /// <summary>Whether an array of <paramref name="length"/> elements of <typeparamref name="T"/> is pooled.</summary>
    public static bool IsPooledSize<T>(int length) where T : unmanaged => (long)length * System.Runtime.CompilerServices.Unsafe.SizeOf<T>() >= MinPooledBytes;

    // The process-wide pool. Its bookkeeping lives in an instance class so that tests can exercise
    // eviction on a private pool: the shared one also receives arrays from finalizers of other
    // tests' tensors at any moment.
    internal static readonly SizedArrayPool Shared = new(2L << 30);
    private static long _missBytesSinceCollect, _collections;

    /// <summary>Bytes of fresh allocations after which the pool asks for a collection to get storages' arrays back.</summary>
    public static long CollectAfterMissBytes { get; set; } =
        long.TryParse(Environment.GetEnvironmentVariable("MINIDEEP_POOL_COLLECT_BYTES"), out var b) ? b : 4L << 20;

    /// <summary>Collections the pool asked for.</summary>
    public static long Collections => Interlocked.Read(ref _collections);

    /// <summary>Upper bound on the bytes kept idle in the pool; arrays beyond it are left to the collector.</summary>
    public static long CapacityBytes { get => Shared.CapacityBytes; set => Shared.CapacityBytes = value; }
    /// <summary>Bytes currently idle in the pool.</summary>
    public static long PooledBytes => Shared.PooledBytes;
    /// <summary>Rents served from the pool.</summary>
    public static long Hits => Shared.Hits;
    /// <summary>Rents that had to allocate.</summary>
    public static long Misses => Shared.Misses;
    /// <summary>Idle arrays dropped to make room for more recently used sizes.</summary>
    public static long Evicted => Shared.Evicted;

    /// <summary>An array of exactly <paramref name="length"/> elements, zeroed when <paramref name="clear"/>.</summary>
    public static T[] Rent<T>(int length, bool clear) where T : unmanaged =>
        CaptureTape.Active ? CaptureTape.Current!.Rent(length, clear, static (n, c) => RentCore<T>(n, c)) : RentCore<T>(length, clear);

    private static T[] RentCore<T>(int length, bool clear) where T : unmanaged
    {
        if (!IsPooledSize<T>(length))
            return clear ? new T[length] : GC.AllocateUninitializedArray<T>(length);
        if (Shared.TryPop(length, clear, out T[]? pooled)) return pooled;
        // Storages only give their arrays back when a collection finds them unreachable and their
        // finalizers have run. Fresh memory is expensive here (page faults cost ~40 ms for 14 MB,
        // measured; each 4 KB page's first touch costs ~17 µs in a VM), a young-generation collection
        // a millisecond or so: so after 4 MB of misses (64 MB let a CNN step fault in 1 GB per 300
        // steps; 4 MB cut the faults 4.5× and the run by a quarter, measured with `perf stat`),
        // collect, let the finalizers return what is dead, and look again.
        long bytes = (long)length * System.Runtime.CompilerServices.Unsafe.SizeOf<T>();
        if (Interlocked.Add(ref _missBytesSinceCollect, bytes) > CollectAfterMissBytes)
        {
            Interlocked.Exchange(ref _missBytesSinceCollect, 0);
            GC.Collect(2, GCCollectionMode.Forced, blocking: true);
            GC.WaitForPendingFinalizers();
            Interlocked.Increment(ref _collections);
            if (Shared.TryPop(length, clear, out pooled)) return pooled;
        }
        return Shared.Allocate<T>(length, clear);
    }

    /// <summary>Gives an array back. Only arrays that nothing else references may be returned.</summary>
    internal static void Return(Array a)
    {
        if (Buffer.ByteLength(a) >= MinPooledBytes) Shared.Return(a);
    }

    /// <summary>Drops every idle array (they become ordinary garbage).</summary>
    public static void Trim() => Shared.Trim();
}

/// <summary>
/// Idle arrays by (element type, exact length), with least-recently-used eviction under a byte
/// capacity. Thread-safe: finalizers return arrays from their own thread.
/// </summary>
internal sealed class SizedArrayPool(long capacityBytes)
{
    // One bucket per (element type, exact length), stamped with the last time it was used so that a
    // full pool makes room by dropping the arrays of sizes nobody has asked for lately (a lab run moves
    // from model to model; without eviction the pool filled with the old models' sizes and every
    // new size missed, costing page faults and a forced collection every few megabytes).
    private sealed class Bucket
    {
        public readonly ConcurrentStack<Array> Arrays = new();
        public long LastUse;
    }

    private readonly ConcurrentDictionary<(Type, int), Bucket> _buckets = new();
    private readonly Lock _evictionLock = new();
    private long _pooledBytes, _hits, _misses, _clock, _evicted;

    public long CapacityBytes { get; set; } = capacityBytes;
    public long PooledBytes => Interlocked.Read(ref _pooledBytes);
    public long Hits => Interlocked.Read(ref _hits);
    public long Misses => Interlocked.Read(ref _misses);
    public long Evicted => Interlocked.Read(ref _evicted);

    public bool TryPop<T>(int length, bool clear, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out T[]? array)
    {
        array = null;
        var bucket = _buckets.GetOrAdd((typeof(T), length), _ => new Bucket());
        bucket.LastUse = Interlocked.Increment(ref _clock);
        if (!bucket.Arrays.TryPop(out var a)) return false;
        Interlocked.Add(ref _pooledBytes, -SizeOf(a));
        Interlocked.Increment(ref _hits);
        array = (T[])a;
        if (clear) Array.Clear(array);
        return true;
    }

    /// <summary>A fresh pinned array, counted as a miss.</summary>
    public T[] Allocate<T>(int length, bool clear) where T : unmanaged
    {
        Interlocked.Increment(ref _misses);
        var fresh = GC.AllocateUninitializedArray<T>(length, pinned: true);
        if (clear) Array.Clear(fresh);
        return fresh;
    }

    public void Return(Array a)
    {
        long size = SizeOf(a);
        if (size > CapacityBytes) return;
        var bucket = _buckets.GetOrAdd((a.GetType().GetElementType()!, a.Length), _ => new Bucket());
        if (Interlocked.Read(ref _pooledBytes) + size > CapacityBytes && !Evict(size, bucket)) return;
        bucket.Arrays.Push(a);
        Interlocked.Add(ref _pooledBytes, size);
    }

    // Drops idle arrays of the least recently used sizes (never the size being returned) down to
    // three quarters of the capacity, so that a full pool sorts its buckets once per quarter of
    // churn rather than on every return; false when `size` still does not fit.
    private bool Evict(long size, Bucket keep)
    {
        lock (_evictionLock)
        {
            long target = CapacityBytes / 4 * 3;
            foreach (var bucket in _buckets.Values.Where(b => b != keep && !b.Arrays.IsEmpty).OrderBy(b => b.LastUse).ToList())
            {
                while (Interlocked.Read(ref _pooledBytes) + size > target && bucket.Arrays.TryPop(out var old))
                {
                    Interlocked.Add(ref _pooledBytes, -SizeOf(old));
                    Interlocked.Increment(ref _evicted);
                }
                if (Interlocked.Read(ref _pooledBytes) + size <= target) return true;
            }
            return Interlocked.Read(ref _pooledBytes) + size <= CapacityBytes;
        }
    }

    public void Trim()
    {
        _buckets.Clear();
        Interlocked.Exchange(ref _pooledBytes, 0);
    }

    private static long SizeOf(Array a) => Buffer.ByteLength(a);
}
