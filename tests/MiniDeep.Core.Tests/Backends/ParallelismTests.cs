using Xunit;

namespace MiniDeep.Tests.BackendTests;

public class ParallelismTests
{
    [Fact]
    public void For_RunsEveryChunkExactlyOnce_FromManyCallersAtOnce()
    {
        // Four threads call For concurrently (one holds the workers, the others run serially) and
        // each chunk body nests another For, which must run inline.
        var counts = new int[4][];
        Parallel.For(0, 4, t =>
        {
            var c = new int[500];
            for (int rep = 0; rep < 20; rep++)
                Parallelism.For(c.Length, i =>
                {
                    int inner = 0;
                    Parallelism.For(3, _ => Interlocked.Increment(ref inner));
                    Assert.Equal(3, inner);
                    Interlocked.Increment(ref c[i]);
                });
            counts[t] = c;
        });
        Assert.All(counts, c => Assert.All(c, v => Assert.Equal(20, v)));
    }

    [Fact]
    public void For_SurfacesAKernelsOwnException()
    {
        var ex = Assert.Throws<IndexOutOfRangeException>(() =>
            Parallelism.For(64, i => { if (i == 37) throw new IndexOutOfRangeException("chunk 37"); }));
        Assert.Equal("chunk 37", ex.Message);
        // The workers survive it.
        int sum = 0;
        Parallelism.For(100, i => Interlocked.Add(ref sum, i));
        Assert.Equal(4950, sum);
    }

    [Fact]
    public void ForRange_CoversTheRangeWithFixedChunks()
    {
        var seen = new int[1003];
        var bounds = new System.Collections.Concurrent.ConcurrentBag<(int, int)>();
        Parallelism.ForRange(seen.Length, 100, (s, e) => { bounds.Add((s, e)); for (int i = s; i < e; i++) seen[i]++; });
        Assert.All(seen, v => Assert.Equal(1, v));
        Assert.Equal(Enumerable.Range(0, 11).Select(c => (c * 100, Math.Min(1003, c * 100 + 100))), bounds.OrderBy(b => b.Item1));
    }

    [Fact]
    public void ForRangeWithState_ReusesItsJob_WithoutLosingOrRepeatingAChunk()
    {
        // 20,000 back-to-back kernels of 2 to 9 chunks, as a training step's small kernels come: the
        // pool's job object is reused for each, so a worker still leaving one must never take or skip a
        // chunk of the next. Every chunk adds its kernel's number to its own slot exactly once.
        var slots = new long[9];
        long expected = 0;
        for (int k = 1; k <= 20_000; k++)
        {
            int chunks = 2 + k % 8;
            Parallelism.ForRange(chunks, 1, (Slots: slots, K: k), static (st, s, e) =>
            {
                for (int c = s; c < e; c++) Interlocked.Add(ref st.Slots[c], st.K);
            });
            expected += k;
            Assert.Equal(expected, Interlocked.Read(ref slots[0]));
        }
        for (int c = 0; c < 9; c++)
            Assert.Equal(Enumerable.Range(1, 20_000).Where(k => 2 + k % 8 > c).Sum(k => (long)k), slots[c]);
    }

    [Fact]
    public void ForRangeWithState_AllocatesNothingOnceWarm()
    {
        var data = new float[1 << 18];
        void Run() => Parallelism.ForRange(data.Length, 1 << 14, (Data: data, V: 1f), static (st, s, e) => st.Data.AsSpan(s, e - s).Fill(st.V));
        for (int i = 0; i < 200; i++) Run();
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++) Run();
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
