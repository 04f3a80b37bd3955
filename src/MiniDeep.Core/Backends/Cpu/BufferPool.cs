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
    /// <summary>Arrays shorter than this are ordinary garbage-collected arrays: the young generation handles them well.</summary>
    public const int MinPooledLength = 16 * 1024;

    // One bucket per (element type, exact length), stamped with the last time it was used so that a
    // full pool makes room by dropping the arrays of sizes nobody has asked for lately (a lab run moves
    // from model to model; without eviction the pool filled with the old models' sizes and every
    // new size missed, costing page faults and a forced collection every few megabytes).
    private sealed class Bucket
    {
        public readonly ConcurrentStack<Array> Arrays = new();
        public long LastUse;
    }

    private static readonly ConcurrentDictionary<(Type, int), Bucket> Buckets = new();
    private static readonly Lock EvictionLock = new();
    private static long _pooledBytes, _hits, _misses, _missBytesSinceCollect, _collections, _clock, _evicted;

    /// <summary>Bytes of fresh allocations after which the pool asks for a collection to get storages' arrays back.</summary>
    public static long CollectAfterMissBytes { get; set; } =
        long.TryParse(Environment.GetEnvironmentVariable("MINIDEEP_POOL_COLLECT_BYTES"), out var b) ? b : 4L << 20;

    /// <summary>Collections the pool asked for.</summary>
    public static long Collections => Interlocked.Read(ref _collections);

    /// <summary>Upper bound on the bytes kept idle in the pool; arrays beyond it are left to the collector.</summary>
    public static long CapacityBytes { get; set; } = 2L << 30;

    /// <summary>Bytes currently idle in the pool.</summary>
    public static long PooledBytes => Interlocked.Read(ref _pooledBytes);
    /// <summary>Rents served from the pool.</summary>
    public static long Hits => Interlocked.Read(ref _hits);
    /// <summary>Rents that had to allocate.</summary>
    public static long Misses => Interlocked.Read(ref _misses);
    /// <summary>Idle arrays dropped to make room for more recently used sizes.</summary>
    public static long Evicted => Interlocked.Read(ref _evicted);

    /// <summary>An array of exactly <paramref name="length"/> elements, zeroed when <paramref name="clear"/>.</summary>
    public static T[] Rent<T>(int length, bool clear) where T : unmanaged
    {
        if (length < MinPooledLength)
            return clear ? new T[length] : GC.AllocateUninitializedArray<T>(length);
        if (TryPop(length, clear, out T[]? pooled)) return pooled;
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
            GC.Collect(1, GCCollectionMode.Forced, blocking: true);
            GC.WaitForPendingFinalizers();
            Interlocked.Increment(ref _collections);
            if (TryPop(length, clear, out pooled)) return pooled;
        }
        Interlocked.Increment(ref _misses);
        var fresh = GC.AllocateUninitializedArray<T>(length, pinned: true);
        if (clear) Array.Clear(fresh);
        return fresh;
    }

    private static bool TryPop<T>(int length, bool clear, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out T[]? array)
    {
        array = null;
        var bucket = Buckets.GetOrAdd((typeof(T), length), _ => new Bucket());
        bucket.LastUse = Interlocked.Increment(ref _clock);
        if (!bucket.Arrays.TryPop(out var a)) return false;
        Interlocked.Add(ref _pooledBytes, -SizeOf(a));
        Interlocked.Increment(ref _hits);
        array = (T[])a;
        if (clear) Array.Clear(array);
        return true;
    }

    /// <summary>Gives an array back. Only arrays that nothing else references may be returned.</summary>
    internal static void Return(Array a)
    {
        long size = SizeOf(a);
        if (a.Length < MinPooledLength || size > CapacityBytes) return;
        var bucket = Buckets.GetOrAdd((a.GetType().GetElementType()!, a.Length), _ => new Bucket());
        if (Interlocked.Read(ref _pooledBytes) + size > CapacityBytes && !Evict(size, bucket)) return;
        bucket.Arrays.Push(a);
        Interlocked.Add(ref _pooledBytes, size);
    }

    // Drops idle arrays of the least recently used sizes (never the size being returned) down to
    // three quarters of the capacity, so that a full pool sorts its buckets once per quarter of
    // churn rather than on every return; false when `size` still does not fit.
    private static bool Evict(long size, Bucket keep)
    {
        lock (EvictionLock)
        {
            long target = CapacityBytes / 4 * 3;
            foreach (var bucket in Buckets.Values.Where(b => b != keep && !b.Arrays.IsEmpty).OrderBy(b => b.LastUse).ToList())
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

    /// <summary>Drops every idle array (they become ordinary garbage).</summary>
    public static void Trim()
    {
        Buckets.Clear();
        Interlocked.Exchange(ref _pooledBytes, 0);
    }

    private static long SizeOf(Array a) => Buffer.ByteLength(a);
}
