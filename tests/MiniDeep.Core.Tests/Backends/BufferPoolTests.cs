using MiniDeep.Cpu;
using Xunit;

namespace MiniDeep.Tests.BackendTests;

public class BufferPoolTests
{
    // A private pool: the shared one also receives arrays from other tests' finalizers at any moment,
    // which made exact byte counts on it flaky under CI.
    [Fact]
    public void AFullPool_DropsTheLeastRecentlyUsedSizes_DownToThreeQuarters()
    {
        const int old = 300_001, recent = 300_003;            // 1.2 MB each
        long bytes = old * 4L;
        var pool = new SizedArrayPool(4 * bytes);
        for (int i = 0; i < 3; i++) pool.Return(new float[old]);
        Assert.Equal(3 * bytes, pool.PooledBytes);

        // A fourth array fits; a fifth makes the pool evict the older size until it holds at most 3
        // of the 4 allowed arrays.
        pool.Return(new float[recent]);
        pool.Return(new float[recent]);
        Assert.Equal(2, pool.Evicted);
        Assert.Equal(bytes + 2 * recent * 4L, pool.PooledBytes);   // one old array and the two recent ones

        Assert.True(pool.TryPop(recent, clear: false, out float[]? a));
        Assert.True(pool.TryPop(recent, clear: false, out float[]? b));
        Assert.Equal(recent, a.Length);
        Assert.NotSame(a, b);
        Assert.Equal(2, pool.Hits);                                // the recent size stayed
        Assert.True(pool.TryPop(old, clear: false, out float[]? _));
        Assert.False(pool.TryPop(old, clear: false, out float[]? _));
    }

    [Fact]
    public void TheSharedPool_HandsBackAReturnedArray_Cleared()
    {
        // The shared pool may hand out any idle array of this size; whatever it hands out must be zeroed.
        var a = new float[BufferPool.MinPooledBytes / sizeof(float) + 7];
        Array.Fill(a, 3f);
        BufferPool.Return(a);
        var r = BufferPool.Rent<float>(a.Length, clear: true);
        Assert.Equal(a.Length, r.Length);
        Assert.All(r, v => Assert.Equal(0f, v));
    }
}
