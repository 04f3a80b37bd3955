using System.Runtime.InteropServices;

namespace MiniDeep;

/// <summary>
/// Reverse-mode automatic differentiation over the define-by-run tape. Every op that receives a
/// tensor requiring grad records a <see cref="Node"/> on its output; Backward sorts the recorded graph
/// topologically (iteratively: a chain of 10,000 ops must not overflow the stack) and walks it in
/// reverse, handing each node the sum of the gradients of its output.
/// </summary>
public static class Autograd
{
    private static readonly AsyncLocal<bool> Disabled = new();

    /// <summary>False inside a <see cref="NoGrad"/> scope: ops record nothing.</summary>
    public static bool IsGradEnabled => !Disabled.Value;

    /// <summary>A scope in which ops record nothing (evaluation, optimizer updates). It follows async
    /// code because the flag is an AsyncLocal: an awaited continuation sees the scope it started in.</summary>
    public static IDisposable NoGrad() => new GradModeScope(enabled: false);

    /// <summary>A scope that re-enables recording inside a NoGrad scope.</summary>
    public static IDisposable EnableGrad() => new GradModeScope(enabled: true);

    private sealed class GradModeScope : IDisposable
    {
        private readonly bool _previous;
        private bool _disposed;
        // An AsyncLocal write allocates (a new value map for the execution context): written only on a change.
        public GradModeScope(bool enabled) { _previous = Disabled.Value; if (_previous != !enabled) Disabled.Value = !enabled; }
        public void Dispose()
        {
            if (_disposed) return;
            _disposed = true;
            if (Disabled.Value != _previous) Disabled.Value = _previous;
        }
    }

    /// <summary>Records <paramref name="backward"/> on <paramref name="result"/> when grad mode is on and any input requires grad.</summary>
    internal static Tensor Record(Tensor result, string op, Tensor[] inputs, Func<Tensor, Tensor?[]> backward, bool custom = false)
    {
        if (!IsGradEnabled) return result;
        foreach (var x in inputs)
        {
            if (x.RequiresGrad)
            {
                result.SetComputed(new Node(op, inputs, backward, result) { IsCustom = custom });
                return result;
            }
        }
        return result;
    }

    /// <summary>
    /// A user-defined op with its own backward rule, like torch.autograd.Function: <paramref name="forward"/>
    /// runs without recording; <paramref name="backward"/> receives the upstream gradient, the inputs and
    /// the output and returns one gradient per input (null for none). Write backward with tensor ops
    /// to keep second derivatives, and check it with <see cref="GradCheck"/>.
    /// </summary>
    public static Tensor CustomOp(string name, Tensor[] inputs, Func<Tensor[], Tensor> forward, Func<Tensor, Tensor[], Tensor, Tensor?[]> backward)
    {
        Tensor y;
        using (NoGrad()) y = forward(inputs.Select(x => x.Detach()).ToArray());
        // A fresh tensor: the forward may have returned a view of an input.
        y = new Tensor(y.Storage, y.Layout);
        var output = y;
        return Record(y, name, inputs, g => backward(g, inputs, output), custom: true);
    }

    /// <summary>
    /// For a <see cref="CustomOp"/>'s backward rule: true when the pass running now wants a gradient for
    /// <paramref name="input"/>. Return null for the others and skip their work, as the built-in rules do:
    /// the gradient of a loss with respect to an image, for one, needs no weight gradients.
    /// </summary>
    public static bool NeedsGrad(Tensor input) => Needs(input);

    /// <summary>
    /// True when a recorded input needs a gradient; backward rules skip work for the others. In a
    /// <see cref="Grad(Tensor[], Tensor[], Tensor?[], bool?, bool, bool)"/> pass that is only an input
    /// on a path to the tensors asked for: the gradient of a loss with respect to an image needs no
    /// weight gradients (like PyTorch's needs_input_grad).
    /// </summary>
    internal static bool Needs(Tensor x) => x.RequiresGrad && (t_needed is not { } needed || needed.Contains(x));

    // The tensors the running Grad pass propagates to (null in a Backward pass: every tensor that
    // requires grad leads to a leaf that wants one). Thread-static, set around each rule: a rule may
    // run a Grad pass of its own (batch norm's double backward does).
    [ThreadStatic] private static HashSet<Tensor>? t_needed;

    /// <summary>See <see cref="Tensor.Backward"/>.</summary>
    public static void Backward(Tensor root, Tensor? grad = null, bool retainGraph = false, bool createGraph = false)
    {
        var g = SeedGradient("Backward", root, grad);
        Run([root], [g], retainGraph, createGraph, capture: null);
    }

    /// <summary>
    /// Gradients of <paramref name="outputs"/> with respect to <paramref name="inputs"/>, returned rather
    /// than accumulated into <see cref="Tensor.Grad"/> (the attack and Hessian code need this).
    /// </summary>
    /// <param name="outputs">Tensors to differentiate (scalars unless <paramref name="gradOutputs"/> is given).</param>
    /// <param name="inputs">Tensors to differentiate with respect to (leaves or intermediate results).</param>
    /// <param name="gradOutputs">Upstream gradient for each output (null entries mean ones for scalars).</param>
    /// <param name="retainGraph">Keep the graph for another backward pass; defaults to <paramref name="createGraph"/>.</param>
    /// <param name="createGraph">Record the backward pass so that the results can be differentiated again.</param>
    /// <param name="allowUnused">Return null for an input the outputs do not depend on, instead of throwing.</param>
    public static Tensor?[] Grad(Tensor[] outputs, Tensor[] inputs, Tensor?[]? gradOutputs = null,
        bool? retainGraph = null, bool createGraph = false, bool allowUnused = false)
    {
        var seeds = new Tensor[outputs.Length];
        for (int i = 0; i < outputs.Length; i++)
            seeds[i] = SeedGradient("Grad", outputs[i], gradOutputs?[i]);
        foreach (var x in inputs)
            if (!x.RequiresGrad)
                throw new InvalidOperationException($"Grad: an input of shape {x.Shape} does not require grad; set RequiresGrad = true before computing the outputs");
        var capture = new Dictionary<Tensor, Tensor?>(ReferenceEqualityComparer.Instance);
        foreach (var x in inputs) capture[x] = null;
        Run(outputs, seeds, retainGraph ?? createGraph, createGraph, capture);
        var result = new Tensor?[inputs.Length];
        for (int i = 0; i < inputs.Length; i++)
        {
            result[i] = capture[inputs[i]];
            if (result[i] is null && !allowUnused)
                throw new InvalidOperationException(
                    $"Grad: input {i} (shape {inputs[i].Shape}) was not used to compute the outputs; pass allowUnused: true if that is expected");
        }
        return result;
    }

    /// <summary>Convenience for one scalar output.</summary>
    public static Tensor Grad(Tensor output, Tensor input, bool createGraph = false) =>
        Grad([output], [input], createGraph: createGraph)[0]!;

    private static Tensor SeedGradient(string what, Tensor root, Tensor? grad)
    {
        if (!root.RequiresGrad)
            throw new InvalidOperationException(
                $"{what}: this tensor (shape {root.Shape}) does not require grad and has no grad_fn. " +
                "Set RequiresGrad = true on the leaf tensors before computing it, and do not compute it inside NoGrad().");
        if (grad is null)
        {
            if (root.Numel != 1)
                throw new InvalidOperationException(
                    $"{what}: a gradient can only be created implicitly for a one-element output, but this one has shape {root.Shape}. " +
                    "Reduce it to a scalar first (e.g. .Sum() or .Mean()), or pass the upstream gradient explicitly.");
            return Tensor.OnesLike(root);
        }
        if (grad.Shape != root.Shape)
            throw new ShapeMismatchException(what, $"{what}: upstream gradient shape {grad.Shape} does not match the output shape {root.Shape}");
        return grad;
    }

    private static void Run(Tensor[] roots, Tensor[] seeds, bool retainGraph, bool createGraph, Dictionary<Tensor, Tensor?>? capture)
    {
        var order = TopologicalOrder(roots);
        // A Grad pass runs only the rules on a path from the roots to the tensors asked for. Without this
        // pruning, the gradient with respect to an intermediate tensor would run backward through all of
        // its history, and a rule that calls Grad inside (batch norm's, when differentiated twice) would
        // make every such layer rerun all the layers below it: time exponential in depth.
        var needed = capture is null ? null : Needed(order, capture);
        // Whether this pass runs t's rule: a Backward runs every one, a Grad pass those on a path.
        bool Runs(Tensor t) => t.GradFn is { } n && (needed is null || (needed.Contains(t) && AnyNeeded(n, needed)));
        // Refused before anything runs, so that a failed pass leaves no .Grad half accumulated.
        foreach (var t in order)
            if (Runs(t) && t.GradFn!.IsFreed)
                throw new InvalidOperationException(
                    $"Backward through '{t.GradFn.Op}' a second time, but its saved tensors were freed after the first Backward. " +
                    "Pass retainGraph: true to the first Backward if you need to run backward through the graph twice.");
        var grads = new Dictionary<Tensor, Tensor>(ReferenceEqualityComparer.Instance);
        // With createGraph the gradients are part of a recorded graph and must live on; without it
        // this pass knows exactly who holds each gradient buffer it made, and recycles the dead ones.
        var ownership = new GradOwnership(Storage.NextSerial, recycle: !createGraph);
        for (int i = 0; i < roots.Length; i++) Accumulate(grads, roots[i], seeds[i], ownership);

        // Without createGraph the backward rules must not record: their results are plain values.
        using var mode = createGraph ? EnableGrad() : NoGrad();
        for (int i = order.Count - 1; i >= 0; i--)
        {
            var t = order[i];
            if (!grads.Remove(t, out var g)) continue;
            if (needed is not null && !needed.Contains(t)) { ownership.Drop(g); continue; }
            if (t.Hooks is { Count: > 0 })
            {
                foreach (var hook in t.Hooks.ToArray())
                {
                    ownership.Expose(g);
                    var replaced = hook(g);
                    if (replaced is null) continue;
                    if (replaced.Shape != g.Shape)
                        throw new ShapeMismatchException("hook", $"hook: replacement gradient has shape {replaced.Shape}, expected {g.Shape}");
                    // Another dtype or device would become .Grad as it is and fail, or round, in the optimizer.
                    if (replaced.DType != g.DType || replaced.Device != g.Device)
                        throw new InvalidOperationException($"hook: replacement gradient is {replaced.DType.Name()} on {replaced.Device}, expected {g.DType.Name()} on {g.Device}");
                    g = replaced;
                    ownership.Expose(g);
                }
            }
            if (capture is not null)
            {
                if (capture.ContainsKey(t))
                {
                    ownership.Expose(g);               // returned to the caller
                    capture[t] = capture[t] is { } prev ? prev + g : g;
                }
            }
            else if (t.IsLeaf || t.RetainsGrad)
            {
                AccumulateIntoGrad(t, g, createGraph, ownership);
            }
            if (!Runs(t)) { ownership.Drop(g); continue; }
            var node = t.GradFn!;
            if (node.IsCustom) ownership.Expose(g);   // a user's rule may keep what it is given
            var outer = t_needed;
            t_needed = needed;
            Tensor?[] inputGrads;
            try { inputGrads = node.Apply(g); }
            finally { t_needed = outer; }
            for (int k = 0; k < inputGrads.Length; k++)
            {
                var x = node.Inputs[k];
                var gx = inputGrads[k];
                if (gx is null || !x.RequiresGrad) continue;
                if (gx.Shape != x.Shape)
                    throw new InvalidOperationException($"backward of '{node.Op}' produced a gradient of shape {gx.Shape} for input {k} of shape {x.Shape}");
                Accumulate(grads, x, gx, ownership);
            }
            ownership.Drop(g);
        }
        if (!retainGraph)
            foreach (var t in order)
            {
                // A rule this pass did not run stays, with what it saved, for another pass.
                if (needed is not null && !Runs(t)) continue;
                t.GradFn?.Free();
                // An activation only the graph could reach (Storage.ReleaseWithGraph) is dead now.
                if (t.Storage.ReleaseWithGraph) { t.Storage.ReleaseWithGraph = false; t.Storage.Recycle(); }
            }
    }

    private static void Accumulate(Dictionary<Tensor, Tensor> grads, Tensor t, Tensor g, GradOwnership ownership)
    {
        ref var slot = ref CollectionsMarshal.GetValueRefOrAddDefault(grads, t, out bool exists);
        ownership.Hold(g);
        if (!exists) { slot = g; return; }
        var old = slot!;
        slot = old + g;
        ownership.Hold(slot);
        ownership.Drop(old);
        ownership.Drop(g);
    }

    /// <summary>
    /// Who holds the gradient buffers this backward pass creates. A buffer may become a tensor's .Grad
    /// without a copy (the optimizer later writes .Grad in place, so it must belong to nobody else) when
    /// it was created by this pass (not the caller's seed, not a forward tensor a rule handed back), fills
    /// its whole storage, was never shown to a hook or a custom rule, and is not already another tensor's
    /// .Grad (an add hands the same gradient to both operands). And a buffer whose last holder is done
    /// (counted per storage: pending gradients and the one being processed) goes back to the buffer
    /// pool at once instead of waiting for the garbage collector: half a training step's memory traffic
    /// is gradients, and the collector only finds them dead many steps later.
    /// </summary>
    private sealed class GradOwnership(long firstSerial, bool recycle)
    {
        // Allocated on first use: a small graph (per-op overhead matters there) may need neither.
        private Dictionary<Storage, int>? _holders;
        private List<Storage>? _kept;

        private bool Ours(Storage s) => s.Serial >= firstSerial;

        // Only buffers that can go back to a pool are counted; the rest are left to the collector.
        private bool Counted(Storage s) => recycle && s.IsRecyclable && Ours(s);

        private bool Kept(Storage s) => _kept is not null && _kept.Exists(k => ReferenceEquals(k, s));

        /// <summary>Someone outside this pass may keep <paramref name="g"/>: never recycle or hand it over.</summary>
        public void Expose(Tensor g) { if (!Kept(g.Storage)) (_kept ??= []).Add(g.Storage); }

        public void Hold(Tensor g)
        {
            if (!Counted(g.Storage)) return;
            CollectionsMarshal.GetValueRefOrAddDefault(_holders ??= new(ReferenceEqualityComparer.Instance), g.Storage, out _)++;
        }

        public void Drop(Tensor g)
        {
            if (!Counted(g.Storage) || _holders is null) return;
            ref int n = ref CollectionsMarshal.GetValueRefOrNullRef(_holders, g.Storage);
            if (System.Runtime.CompilerServices.Unsafe.IsNullRef(ref n)) return;
            if (--n > 0) return;
            _holders.Remove(g.Storage);
            if (!Kept(g.Storage)) g.Storage.Recycle();
        }

        public bool TryTake(Tensor g)
        {
            if (!Ours(g.Storage) || !g.Layout.IsContiguous || g.Layout.Offset != 0 || g.Numel != g.Storage.Length || Kept(g.Storage))
                return false;
            (_kept ??= []).Add(g.Storage);
            return true;
        }
    }

    private static void AccumulateIntoGrad(Tensor t, Tensor g, bool createGraph, GradOwnership ownership)
    {
        if (createGraph)
        {
            // Keep the graph: .Grad itself becomes differentiable (grad of grad).
            t.Grad = t.Grad is null ? g : t.Grad + g;
            return;
        }
        if (t.Grad is null)
        {
            // A copy unless this pass owns g outright: g may be shared with other tensors' gradients
            // (add passes it on unchanged), and the optimizer will later modify .Grad in place.
            t.Grad = ownership.TryTake(g) ? g.Detach() : g.Detach().Clone();
        }
        else
        {
            t.Grad.AddInPlace(g.Detach());
        }
    }

    /// <summary>The tensors of <paramref name="order"/> (inputs before outputs) from which a captured one is reachable, themselves included.</summary>
    private static HashSet<Tensor> Needed(List<Tensor> order, Dictionary<Tensor, Tensor?> capture)
    {
        var needed = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        foreach (var t in order)
            if (capture.ContainsKey(t) || (t.GradFn is { } node && AnyNeeded(node, needed)))
                needed.Add(t);
        return needed;
    }

    private static bool AnyNeeded(Node node, HashSet<Tensor> needed)
    {
        foreach (var x in node.Inputs)
            if (needed.Contains(x)) return true;
        return false;
    }

    /// <summary>Tensors that require grad and are reachable from the roots, inputs before outputs.
    /// Iterative depth-first post-order with an explicit stack.</summary>
    private static List<Tensor> TopologicalOrder(Tensor[] roots)
    {
        var order = new List<Tensor>();
        var visited = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        var stack = new Stack<(Tensor T, int Next)>();
        foreach (var root in roots)
        {
            if (!root.RequiresGrad || !visited.Add(root)) continue;
            stack.Push((root, 0));
            while (stack.Count > 0)
            {
                var (t, next) = stack.Pop();
                // A freed node is refused by Run, not here: a Grad pass may walk past one it never runs.
                var inputs = t.GradFn?.Inputs;
                if (inputs is not null && next < inputs.Count)
                {
                    stack.Push((t, next + 1));
                    var x = inputs[next];
                    if (x.RequiresGrad && visited.Add(x)) stack.Push((x, 0));
                    continue;
                }
                order.Add(t);
            }
        }
        return order;
    }
}
