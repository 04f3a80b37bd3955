namespace MiniDeep.Gpu;

/// <summary>
/// Disposes the device buffers of every GPU tensor created inside it when it ends, except the ones
/// kept: a deterministic alternative to waiting for the garbage collector, which does not see device
/// memory. Scopes nest, and they follow async code (the current scope is an <see cref="AsyncLocal{T}"/>),
/// so an awaited continuation on another thread still allocates into the scope that was open.
/// </summary>
/// <example>
/// <code>
/// using (var scope = new GpuScope())
/// {
///     var logits = model.Forward(x);            // temporaries land in the scope
///     accuracy = (logits.ArgMax(1) == y).To(DType.Float32).Mean().Item();
/// }                                             // ... and their buffers go back to the cache here
/// </code>
/// Tensors that must outlive the scope (new parameters, optimizer state made inside it, a result)
/// are passed to <see cref="Keep(Tensor[])"/>; they move to the enclosing scope, if any.
/// </example>
public sealed class GpuScope : IDisposable
{
    private static readonly AsyncLocal<GpuScope?> s_current = new();
    private readonly GpuScope? _outer;
    private readonly List<WeakReference<GpuStorage>> _owned = [];
    private readonly Lock _gate = new();
    private bool _ended;

    /// <summary>Opens a scope; it becomes the current one until it is disposed.</summary>
    public GpuScope()
    {
        _outer = s_current.Value;
        s_current.Value = this;
    }

    /// <summary>The innermost open scope of this async flow, or null.</summary>
    public static GpuScope? Current => s_current.Value;

    /// <summary>Storages created in this scope and not yet kept or collected.</summary>
    public int Count { get { lock (_gate) return _owned.Count(w => w.TryGetTarget(out var s) && !s.IsDisposed); } }

    internal static void Track(GpuStorage storage)
    {
        var scope = s_current.Value;
        while (scope is not null && scope._ended) scope = scope._outer;
        if (scope is null) return;
        lock (scope._gate) scope._owned.Add(new WeakReference<GpuStorage>(storage));
    }

    /// <summary>Moves these tensors' buffers out of this scope (to the enclosing one, or to the collector).</summary>
    public void Keep(params Tensor[] tensors) => Keep((IEnumerable<Tensor>)tensors);

    /// <summary>Moves these tensors' buffers out of this scope (to the enclosing one, or to the collector).</summary>
    public void Keep(IEnumerable<Tensor> tensors)
    {
        foreach (var t in tensors)
        {
            if (t.Storage is not GpuStorage s) continue;
            bool removed;
            lock (_gate) removed = _owned.RemoveAll(w => w.TryGetTarget(out var o) && ReferenceEquals(o, s)) > 0;
            if (removed && _outer is not null)
                lock (_outer._gate) _outer._owned.Add(new WeakReference<GpuStorage>(s));
        }
    }

    /// <summary>Ends the scope: every buffer created in it and not kept goes back to the allocator's cache.</summary>
    public void Dispose()
    {
        if (_ended) return;
        _ended = true;
        if (ReferenceEquals(s_current.Value, this)) s_current.Value = _outer;
        List<WeakReference<GpuStorage>> owned;
        lock (_gate) { owned = [.. _owned]; _owned.Clear(); }
        foreach (var w in owned)
            if (w.TryGetTarget(out var s)) s.Dispose();
    }
}
