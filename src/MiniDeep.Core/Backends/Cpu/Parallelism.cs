namespace MiniDeep;

/// <summary>
/// How many threads CPU kernels may use. Kernels split work into chunks whose boundaries do not
/// depend on this number, and each output element is computed by exactly one chunk in a fixed
/// order, so 1 thread and 2 threads give bit-identical results.
/// </summary>
public static class Parallelism
{
    private static int _maxThreads = Environment.ProcessorCount;

    /// <summary>Upper bound on threads per kernel (default: the number of cores).</summary>
    public static int MaxThreads
    {
        get => _maxThreads;
        set => _maxThreads = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(value), "MaxThreads must be at least 1");
    }

    /// <summary>Runs body(chunk) for chunk in [0, chunks), on up to MaxThreads threads.</summary>
    public static void For(int chunks, Action<int> body)
    {
        if (chunks <= 0) return;
        int threads = Math.Min(_maxThreads, chunks);
        if (threads <= 1)
        {
            for (int i = 0; i < chunks; i++) body(i);
            return;
        }
        try
        {
            System.Threading.Tasks.Parallel.For(0, chunks, new ParallelOptions { MaxDegreeOfParallelism = threads }, body);
        }
        catch (AggregateException e) when (e.InnerExceptions.Count == 1)
        {
            // Surface a kernel's own error (an index out of range, say) as itself, as on one thread.
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
        }
    }

    /// <summary>Splits [0, n) into fixed chunks of <paramref name="grain"/> and runs body(start, end) on each.</summary>
    public static void ForRange(int n, int grain, Action<int, int> body)
    {
        if (n <= 0) return;
        int chunks = (n + grain - 1) / grain;
        if (chunks == 1) { body(0, n); return; }
        For(chunks, c => body(c * grain, Math.Min(n, (c + 1) * grain)));
    }
}
