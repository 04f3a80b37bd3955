namespace MiniDeep.Cpu;

/// <summary>
/// The memory side of <see cref="StepCapture"/>: while a captured kernel runs for the first time it
/// writes down, in order, every array the CPU backend rents for it and every storage it wraps them in;
/// when the kernel is replayed, the same rents and wraps hand back those same arrays and storage
/// objects. So a replayed kernel writes into the buffers its first run wrote, allocates nothing, and
/// every later kernel that reads those buffers sees the new values.
/// </summary>
/// <remarks>
/// Only rents made by the capturing thread outside parallel chunks are taped: which thread runs a
/// chunk can change from run to run, so a rent inside one is left to the pool both times.
/// </remarks>
internal sealed class CaptureTape
{
    [ThreadStatic] private static CaptureTape? t_current;

    /// <summary>The tape of a kernel being captured or replayed on this thread, or null.</summary>
    public static CaptureTape? Current => t_current;

    private readonly List<Array> _arrays = [];
    private readonly List<HostStorage> _storages = [];
    private int _arrayCursor, _storageCursor;
    private bool _replaying;

    /// <summary>Arrays the captured kernels own.</summary>
    public int ArrayCount => _arrays.Count;

    /// <summary>Bytes of the arrays the captured kernels own (they stay allocated while the capture lives).</summary>
    public long Bytes => _arrays.Sum(a => (long)Buffer.ByteLength(a));

    /// <summary>Positions in the tape, to check that a replayed kernel took exactly what it took the first time.</summary>
    public (int Arrays, int Storages) Position => _replaying ? (_arrayCursor, _storageCursor) : (_arrays.Count, _storages.Count);

    /// <summary>Tapes the kernels run on this thread until the scope ends.</summary>
    public Scope Recording() { _replaying = false; return Enter(); }

    /// <summary>Plays the tape back from the start for the kernels run on this thread until the scope ends.</summary>
    public Scope Replaying()
    {
        _replaying = true;
        _arrayCursor = _storageCursor = 0;
        return Enter();
    }

    private Scope Enter()
    {
        if (t_current is not null) throw new InvalidOperationException("StepCapture: a capture or replay is already running on this thread");
        t_current = this;
        return new Scope();
    }

    /// <summary>Ends taping (a struct: entering and leaving allocates nothing).</summary>
    public readonly struct Scope : IDisposable
    {
        /// <inheritdoc/>
        public void Dispose() => t_current = null;
    }

    /// <summary>Suspends taping on this thread (host reads inside a capture): restores it on dispose.</summary>
    public static Suspension Suspend()
    {
        var s = new Suspension(t_current);
        t_current = null;
        return s;
    }

    /// <summary>A suspended tape.</summary>
    public readonly struct Suspension(CaptureTape? tape) : IDisposable
    {
        /// <inheritdoc/>
        public void Dispose() => t_current = tape;
    }

    /// <summary>Whether a rent of the current thread goes through the tape.</summary>
    public static bool Active => t_current is not null && !Parallelism.InBody;

    /// <summary>A rent: taped when capturing, the taped array when replaying.</summary>
    public T[] Rent<T>(int length, bool clear, Func<int, bool, T[]> rent) where T : unmanaged
    {
        if (!_replaying)
        {
            var fresh = rent(length, clear);
            _arrays.Add(fresh);
            return fresh;
        }
        if (_arrayCursor >= _arrays.Count || _arrays[_arrayCursor] is not T[] taped || taped.Length != length)
            throw Diverged($"a rent of {length} {typeof(T).Name}");
        _arrayCursor++;
        if (clear) Array.Clear(taped);
        return taped;
    }

    /// <summary>A result storage around a rented array: taped (and kept from recycling) when
    /// capturing; the taped storage object when replaying.</summary>
    public HostStorage Wrap(Array a, Func<Array, HostStorage> wrap)
    {
        if (!_replaying)
        {
            var s = wrap(a);
            if (s is PooledHostStorage p) p.Captured = true;
            _storages.Add(s);
            return s;
        }
        if (_storageCursor >= _storages.Count) throw Diverged("a result storage");
        var taped = _storages[_storageCursor];
        if (!ReferenceEquals(taped.Data, a))
        {
            // A result array the kernel made without renting it (a one-element sum): its values go
            // into the captured buffer.
            if (taped.Data.GetType() != a.GetType() || taped.Length != a.Length) throw Diverged("a result storage");
            Array.Copy(a, taped.Data, a.Length);
        }
        _storageCursor++;
        return taped;
    }

    private static InvalidOperationException Diverged(string what) => new(
        $"StepCapture: the replay asked for {what} that the capture did not take at this point; the step's kernels " +
        "must be the same on every replay (same shapes, no data-dependent control flow)");
}
