using MiniDeep.Cpu;
using Xunit;

namespace MiniDeep.Tests.BackendTests;

[CollectionDefinition("buffer pool", DisableParallelization = true)]
public sealed class BufferPoolCollection;

[Collection("buffer pool")]
public class BufferPoolTests
{
    [Fact]
    public void AFullPool_DropsTheLeastRecentlyUsedSizes_DownToThreeQuarters()
    {
        long saved = BufferPool.CapacityBytes;
        try
        {
            BufferPool.Trim();
            const int old = 300_001, recent = 300_003;            // 1.2 MB each, lengths no kernel uses
            long bytes = old * 4L;
            BufferPool.CapacityBytes = 4 * bytes;
            for (int i = 0; i < 3; i++) BufferPool.Return(new float[old]);
            Assert.Equal(3 * bytes, BufferPool.PooledBytes);
            long evicted = BufferPool.Evicted;

            // A fourth array would exceed nothing yet; a fifth makes the pool evict the older size
            // until it holds at most 3 of the 4 allowed arrays.
            BufferPool.Return(new float[recent]);
            BufferPool.Return(new float[recent]);
            Assert.Equal(evicted + 2, BufferPool.Evicted);
            Assert.Equal(bytes + 2 * recent * 4L, BufferPool.PooledBytes);   // one old array and the two recent ones

            long hits = BufferPool.Hits;
            Assert.Equal(recent, BufferPool.Rent<float>(recent, clear: false).Length);
            Assert.Equal(recent, BufferPool.Rent<float>(recent, clear: false).Length);
            Assert.Equal(hits + 2, BufferPool.Hits);              // the recent size stayed
        }
        finally
        {
            BufferPool.CapacityBytes = saved;
            BufferPool.Trim();
        }
    }
}
