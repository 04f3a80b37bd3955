using System.Diagnostics;
using System.Runtime.ExceptionServices;

namespace MiniDeep;

/// <summary>
/// How many threads CPU kernels may use. Kernels split work into chunks whose boundaries do not
/// depend on this number, and each output element is computed by exactly one chunk in a fixed
/// order, so 1 thread and 2 threads give bit-identical results.
/// </summary>
/// <remarks>
/// A training step runs thousands of small parallel kernels. Handing each to the thread pool
/// (Parallel.For) put a worker to sleep and woke it again for every one: about 75,000 context
/// switches a second and a third of the run in the kernel, measured with `perf stat` on a CNN step.
/// So the kernels share a few dedicated workers that spin briefly between jobs (a training step's
/// kernels come microseconds apart) and only then sleep. A kernel called while another thread's
/// kernel holds the workers runs its chunks serially: same chunks, same order within each, same bits.
///
/// Whole models are also trained side by side, one per job chunk (the lab's seeds). Their kernels are
/// then called from inside a job, and with three seeds on two cores the last one would run alone on one
/// core while the other idled. So a thread that has run out of chunks of the outer job offers itself as
/// a helper, and a kernel called from inside a job while a helper waits posts its chunks for it
/// (<c>TryAssist</c>): the tail of an uneven job runs on both cores. Which thread runs a chunk never
/// changes the chunk, so the bits stay the same.
/// </remarks>
public static class Parallelism
{
    private static int _maxThreads = Environment.ProcessorCount;

    /// <summary>Upper bound on threads per kernel (default: the number of cores).</summary>
    public static int MaxThreads
    {
        get => _maxThreads;
        set => _maxThreads = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(value), "MaxThreads must be at least 1");
    }

    // Depth of chunk bodies running on this thread, whichever path ran them (a worker, the caller, the
    // serial fallback): a captured step tapes only the buffers rented outside them (CaptureTape).
    [ThreadStatic] private static int t_bodyDepth;

    /// <summary>Whether this thread is running a chunk of a parallel loop.</summary>
    internal static bool InBody => t_bodyDepth > 0;

    /// <summary>Kernels called from inside a job that idle participants of the job helped with (for tests and diagnostics).</summary>
    internal static long AssistedKernels => Interlocked.Read(ref WorkerPool.Assisted);

    /// <summary>Runs body(chunk) for chunk in [0, chunks), on up to MaxThreads threads.</summary>
    public static void For(int chunks, Action<int> body)
    {
        if (chunks <= 0) return;
        int threads = Math.Min(_maxThreads, chunks);
        bool ran = threads > 1 && (WorkerPool.InJob
            ? WorkerPool.Shared.TryAssist(chunks, body, threads)
            : WorkerPool.Shared.TryRun(chunks, body, threads));
        if (!ran)
        {
            t_bodyDepth++;
            try { for (int i = 0; i < chunks; i++) body(i); }
            finally { t_bodyDepth--; }
        }
    }

    /// <summary>
    /// <see cref="ForRange(int, int, Action{int, int})"/> with the body's state passed explicitly, so
    /// that a kernel called every step allocates nothing: give a <c>static</c> lambda (its delegate is
    /// cached) and a struct state; the chunk dispatcher is a per-thread object reused from call to call.
    /// </summary>
    public static void ForRange<TState>(int n, int grain, in TState state, Action<TState, int, int> body)
    {
        if (n <= 0) return;
        int chunks = (n + grain - 1) / grain;
        if (chunks == 1)
        {
            t_bodyDepth++;
            try { body(state, 0, n); }
            finally { t_bodyDepth--; }
            return;
        }
        var runner = RangeRunner<TState>.Take();
        runner.Set(state, body, n, grain);
        try { For(chunks, runner.Chunk); }
        finally { runner.Release(); }
    }

    // The chunk dispatcher of ForRange<TState>: one per thread and state type, reused unless a body
    // calls a kernel of the same state type on its own thread (then a fresh one serves that call).
    private sealed class RangeRunner<TState>
    {
        [ThreadStatic] private static RangeRunner<TState>? t_cached;
        private TState _state = default!;
        private Action<TState, int, int> _body = null!;
        private int _n, _grain;
        public readonly Action<int> Chunk;

        private RangeRunner() => Chunk = c => _body(_state, c * _grain, Math.Min(_n, (c + 1) * _grain));

        public static RangeRunner<TState> Take()
        {
            var r = t_cached;
            if (r is null) return new RangeRunner<TState>();
            t_cached = null;
            return r;
        }

        public void Set(in TState state, Action<TState, int, int> body, int n, int grain) { _state = state; _body = body; _n = n; _grain = grain; }

        public void Release()
        {
            _state = default!;   // drop references to the kernel's arrays
            t_cached = this;
        }
    }

    /// <summary>Splits [0, n) into fixed chunks of <paramref name="grain"/> and runs body(start, end) on each.</summary>
    public static void ForRange(int n, int grain, Action<int, int> body) =>
        ForRange(n, grain, body, static (b, s, e) => b(s, e));

    /// <summary>Dedicated background workers that claim chunks of the current job with an atomic counter.</summary>
    private sealed class WorkerPool
    {
        public static readonly WorkerPool Shared = new();

        [ThreadStatic] private static bool _inJob;
        public static bool InJob => _inJob;

        // How long an idle worker spins for the next job before it sleeps.
        private static readonly long SpinTicks = Stopwatch.Frequency / 5000; // 200 µs

        private readonly object _gate = new();
        private readonly List<Thread> _workers = [];
        private readonly SemaphoreSlim _wake = new(0);
        private Job? _job;
        private long _generation;
        private int _sleepers;
        // A kernel called from inside a job, open to the participants that ran out of the job's chunks.
        private Job? _assist;
        private int _idleHelpers;
        internal static long Assisted;

        private sealed class Job
        {
            public Action<int> Body = null!;
            public int Chunks;
            public int Next;
            public int Done;
            public int Helpers;     // workers that may still join
            public ExceptionDispatchInfo? Error;
            // Workers between reading the job and leaving it: the job is reused for the next kernel
            // only when none is (a worker that read it counts itself in, then checks it is still the
            // current job, so none can slip into a job that is being reset).
            public int Entered;

            public Job Reset(Action<int> body, int chunks, int helpers)
            {
                Body = body; Chunks = chunks; Next = 0; Done = 0; Helpers = helpers; Error = null;
                return this;
            }
        }

        // The job object of the last TryRun, reused by the next one once no worker is inside it.
        private Job? _spare;

        /// <summary>Runs the job with the caller and up to threads − 1 workers; false when another thread holds the pool.</summary>
        public bool TryRun(int chunks, Action<int> body, int threads)
        {
            if (!Monitor.TryEnter(_gate)) return false;
            try
            {
                while (_workers.Count < threads - 1)
                {
                    var t = new Thread(WorkerLoop) { IsBackground = true, Name = $"MiniDeep worker {_workers.Count + 1}" };
                    _workers.Add(t);
                    t.Start();
                }
                var job = _spare ?? new Job();
                _spare = null;
                var wait = new SpinWait();
                while (Volatile.Read(ref job.Entered) != 0) wait.SpinOnce(sleep1Threshold: -1);
                job.Reset(body, chunks, threads - 1);
                Volatile.Write(ref _job, job);
                Interlocked.Increment(ref _generation);            // full fence: the job is visible before sleepers are read
                int sleeping = Volatile.Read(ref _sleepers);
                if (sleeping > 0) _wake.Release(sleeping);
                Work(job);
                HelpUntilDone(job);
                Interlocked.Exchange(ref _job, null);   // a full fence: a worker that counts itself in later sees it is gone
                var error = job.Error;
                job.Body = null!;
                _spare = job;
                error?.Throw();
                return true;
            }
            finally
            {
                Monitor.Exit(_gate);
            }
        }

        /// <summary>
        /// Runs a kernel called from inside a job with the job's idle participants; false when none is
        /// idle or another kernel already holds the slot (the caller then runs the chunks itself).
        /// </summary>
        public bool TryAssist(int chunks, Action<int> body, int threads)
        {
            if (Volatile.Read(ref _idleHelpers) == 0) return false;
            var job = new Job().Reset(body, chunks, threads - 1);
            if (Interlocked.CompareExchange(ref _assist, job, null) is not null) return false;
            Work(job);
            var spin = new SpinWait();
            while (Volatile.Read(ref job.Done) < chunks) spin.SpinOnce(sleep1Threshold: -1);
            Volatile.Write(ref _assist, null);
            if (job.Helpers < threads - 1) Interlocked.Increment(ref Assisted);
            job.Error?.Throw();
            return true;
        }

        // Waits for the job's other chunks to finish, running chunks of kernels posted for assistance meanwhile.
        private void HelpUntilDone(Job job)
        {
            if (Volatile.Read(ref job.Done) >= job.Chunks) return;
            Interlocked.Increment(ref _idleHelpers);
            try
            {
                var spin = new SpinWait();
                while (Volatile.Read(ref job.Done) < job.Chunks)
                {
                    var assist = Volatile.Read(ref _assist);
                    if (assist is not null && Volatile.Read(ref assist.Next) < assist.Chunks && Interlocked.Decrement(ref assist.Helpers) >= 0)
                    {
                        Work(assist);
                        spin = new SpinWait();
                    }
                    else spin.SpinOnce(sleep1Threshold: -1);
                }
            }
            finally
            {
                Interlocked.Decrement(ref _idleHelpers);
            }
        }

        private static void Work(Job job)
        {
            bool outer = _inJob;
            _inJob = true;
            t_bodyDepth++;
            try
            {
                int i;
                while ((i = Interlocked.Increment(ref job.Next) - 1) < job.Chunks)
                {
                    try
                    {
                        job.Body(i);
                    }
                    catch (Exception e)
                    {
                        Interlocked.CompareExchange(ref job.Error, ExceptionDispatchInfo.Capture(e), null);
                    }
                    finally
                    {
                        Interlocked.Increment(ref job.Done);
                    }
                }
            }
            finally
            {
                _inJob = outer;
                t_bodyDepth--;
            }
        }

        private void WorkerLoop()
        {
            long seen = Volatile.Read(ref _generation);
            while (true)
            {
                long start = Stopwatch.GetTimestamp();
                var spinner = new SpinWait();
                while (Volatile.Read(ref _generation) == seen)
                {
                    if (Stopwatch.GetTimestamp() - start < SpinTicks)
                    {
                        // SpinOnce yields now and then: a thread in a tight managed loop would make
                        // every garbage collection wait to suspend it.
                        spinner.SpinOnce(sleep1Threshold: -1);
                        continue;
                    }
                    Interlocked.Increment(ref _sleepers);            // full fence: then the generation is read again
                    if (Volatile.Read(ref _generation) == seen) _wake.Wait();
                    Interlocked.Decrement(ref _sleepers);
                    start = Stopwatch.GetTimestamp();
                }
                seen = Volatile.Read(ref _generation);
                var job = Volatile.Read(ref _job);
                if (job is null) continue;
                Interlocked.Increment(ref job.Entered);       // full fence: then the job is read again
                try
                {
                    if (ReferenceEquals(Volatile.Read(ref _job), job) && Interlocked.Decrement(ref job.Helpers) >= 0)
                    {
                        Work(job);
                        HelpUntilDone(job);
                    }
                }
                finally
                {
                    Interlocked.Decrement(ref job.Entered);
                }
            }
        }
    }
}
