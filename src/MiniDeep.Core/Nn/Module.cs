namespace MiniDeep.Nn;

/// <summary>
/// A building block of a model: it owns named parameters (tensors that require grad and are
/// trained), named buffers (state that is saved but not trained, such as BatchNorm's running mean)
/// and named child modules. Subclasses register what they own in their constructor and implement
/// <see cref="ForwardImpl"/>; callers call <see cref="Forward"/>, which also runs forward hooks.
/// </summary>
public abstract class Module
{
    private readonly List<(string Name, Tensor Tensor)> _parameters = [];
    private readonly List<(string Name, Tensor Tensor)> _buffers = [];
    private readonly List<(string Name, Module Module)> _children = [];
    private readonly List<Action<Module, Tensor, Tensor>> _forwardHooks = [];

    /// <summary>True in training mode (the default); dropout and batch norm behave differently in eval mode.</summary>
    public bool IsTraining { get; private set; } = true;

    /// <summary>A short name for messages, e.g. "Linear(784, 256)".</summary>
    public virtual string Describe() => GetType().Name;

    /// <summary>Runs the module on <paramref name="input"/>, then every forward hook.</summary>
    public Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var output = ForwardImpl(input);
        foreach (var hook in _forwardHooks) hook(this, input, output);
        return output;
    }

    /// <summary>The computation of this module.</summary>
    protected abstract Tensor ForwardImpl(Tensor input);

    /// <summary>False when this module's forward pass, with recording off, keeps no reference to its
    /// input once it returns (every built-in layer): <see cref="Sequential"/> may then give the input's
    /// buffer back for reuse as soon as the next layer is done with it. A module of unknown behaviour is
    /// assumed to keep it.</summary>
    protected internal virtual bool MayKeepInput => true;

    internal bool HasForwardHooks => _forwardHooks.Count > 0;

    /// <summary>This module's forward pass followed by a ReLU, as one fused op, for <see cref="Sequential"/>;
    /// null where the module has no fused form (the ReLU then runs on its own).</summary>
    internal virtual Tensor? ForwardWithRelu(Tensor input) => null;

    /// <summary>Registers a hook called after every forward pass with (module, input, output): probes
    /// use it to record activation statistics. Dispose the result to remove it.</summary>
    public IDisposable RegisterForwardHook(Action<Module, Tensor, Tensor> hook)
    {
        _forwardHooks.Add(hook);
        return new Unregister(() => _forwardHooks.Remove(hook));
    }

    private sealed class Unregister(Action remove) : IDisposable
    {
        public void Dispose() => remove();
    }

    /// <summary>Registers a trainable tensor; it is made to require grad.</summary>
    protected Tensor RegisterParameter(string name, Tensor tensor)
    {
        CheckName(name);
        if (!tensor.IsLeaf) tensor = tensor.Detach();
        tensor.RequiresGrad = true;
        _parameters.Add((name, tensor));
        return tensor;
    }

    /// <summary>Registers state that is saved in the state dict but not trained.</summary>
    protected Tensor RegisterBuffer(string name, Tensor tensor)
    {
        CheckName(name);
        _buffers.Add((name, tensor));
        return tensor;
    }

    /// <summary>Registers a child module.</summary>
    protected T RegisterModule<T>(string name, T module) where T : Module
    {
        CheckName(name);
        _children.Add((name, module));
        return module;
    }

    private void CheckName(string name)
    {
        if (string.IsNullOrEmpty(name) || name.Contains('.'))
            throw new ArgumentException($"{Describe()}: invalid name '{name}' (non-empty, no dots)");
        if (_parameters.Any(p => p.Name == name) || _buffers.Any(b => b.Name == name) || _children.Any(c => c.Name == name))
            throw new ArgumentException($"{Describe()}: name '{name}' is already registered");
    }

    /// <summary>
    /// Moves every parameter and buffer (and their gradients) to <paramref name="device"/> in place and
    /// returns this module: the same parameter objects, now computed on the device, as PyTorch's
    /// module.to(device). Move a model before building its optimizer: optimizer state made earlier stays
    /// where it was made, and the first step then fails naming both devices.
    /// </summary>
    public Module To(Device device)
    {
        foreach (var (_, p) in NamedParameters()) p.MoveTo(device);
        foreach (var (_, b) in NamedBuffers()) b.MoveTo(device);
        return this;
    }

    /// <summary>
    /// Converts every floating-point parameter and buffer (and their gradients) to the floating
    /// <paramref name="dtype"/> in place and returns this module, as PyTorch's module.to(dtype) and
    /// module.double(): float64 for gradient checks and second-order work on layers that take no dtype
    /// (Conv2d, BatchNorm). Other buffers keep their type. Convert before building the optimizer, whose
    /// state keeps the type it was made with.
    /// </summary>
    public Module To(DType dtype)
    {
        if (!dtype.IsFloating()) throw new ArgumentException($"{Describe()}.To: parameters convert to a floating dtype only, got {dtype.Name()}");
        foreach (var (_, p) in NamedParameters()) if (p.DType.IsFloating()) p.ConvertTo(dtype);
        foreach (var (_, b) in NamedBuffers()) if (b.DType.IsFloating()) b.ConvertTo(dtype);
        return this;
    }

    /// <summary>Direct children, in registration order.</summary>
    public IEnumerable<(string Name, Module Module)> NamedChildren() => _children;

    /// <summary>This module and every descendant, with dotted names ("" for this one).</summary>
    public IEnumerable<(string Name, Module Module)> NamedModules(string prefix = "")
    {
        yield return (prefix, this);
        foreach (var (name, child) in _children)
            foreach (var m in child.NamedModules(Join(prefix, name))) yield return m;
    }

    /// <summary>
    /// Every parameter of this module and its descendants, with dotted names such as "0.weight". A
    /// parameter shared by two places (a module used twice, tied weights) comes once, under its first
    /// name, as in PyTorch: an optimizer given it twice would step it twice.
    /// </summary>
    public IEnumerable<(string Name, Tensor Tensor)> NamedParameters(string prefix = "") =>
        FirstOfEach(AllNamed(prefix, m => m._parameters));

    /// <summary>Every buffer, with dotted names (a shared one once, under its first name).</summary>
    public IEnumerable<(string Name, Tensor Tensor)> NamedBuffers(string prefix = "") =>
        FirstOfEach(AllNamed(prefix, m => m._buffers));

    // Every (name, tensor) pair, a shared tensor under each of its names: what a state dict holds.
    private IEnumerable<(string Name, Tensor Tensor)> AllNamed(string prefix, Func<Module, List<(string, Tensor)>> own)
    {
        foreach (var (name, t) in own(this)) yield return (Join(prefix, name), t);
        foreach (var (name, child) in _children)
            foreach (var x in child.AllNamed(Join(prefix, name), own)) yield return x;
    }

    private static IEnumerable<(string Name, Tensor Tensor)> FirstOfEach(IEnumerable<(string Name, Tensor Tensor)> named)
    {
        var seen = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        foreach (var x in named)
            if (seen.Add(x.Tensor)) yield return x;
    }

    /// <summary>Every parameter, in a fixed order (registration order, depth first).</summary>
    public IReadOnlyList<Tensor> Parameters() => NamedParameters().Select(p => p.Tensor).ToList();

    /// <summary>Number of trainable elements (or of all parameter elements, frozen ones included).</summary>
    public long ParameterCount(bool trainableOnly = false) =>
        NamedParameters().Where(p => !trainableOnly || p.Tensor.RequiresGrad).Sum(p => (long)p.Tensor.Numel);

    private static string Join(string prefix, string name) => prefix.Length == 0 ? name : prefix + "." + name;

    /// <summary>Switches this module and its descendants to training (true) or evaluation (false) mode.</summary>
    public Module Train(bool training = true)
    {
        foreach (var (_, m) in NamedModules()) m.IsTraining = training;
        return this;
    }

    /// <summary>Evaluation mode: dropout off, batch norm uses its running statistics.</summary>
    public Module Eval() => Train(false);

    /// <summary>Stops (or resumes) training of every parameter: they stop requiring grad.</summary>
    public Module Freeze(bool frozen = true)
    {
        foreach (var (_, p) in NamedParameters()) p.RequiresGrad = !frozen;
        return this;
    }

    /// <summary>Clears every parameter's gradient.</summary>
    public void ZeroGrad()
    {
        foreach (var (_, p) in NamedParameters()) p.Grad = null;
    }

    /// <summary>Parameters and buffers by dotted name, as copies detached from the graph.</summary>
    public Dictionary<string, Tensor> StateDict()
    {
        var d = new Dictionary<string, Tensor>();
        using (Autograd.NoGrad())
        {
            // Every name, a shared tensor under each of its own (as PyTorch's state_dict), so that a model
            // built the same way finds all of its entries.
            foreach (var (n, p) in AllNamed("", m => m._parameters)) d[n] = p.Detach().Clone();
            foreach (var (n, b) in AllNamed("", m => m._buffers)) d[n] = b.Detach().Clone();
        }
        return d;
    }

    /// <summary>
    /// Copies values into the parameters and buffers in place (so optimizers keep their references).
    /// With <paramref name="strict"/>, a missing, unexpected or mis-shaped entry is an error naming it.
    /// </summary>
    public void LoadStateDict(IReadOnlyDictionary<string, Tensor> state, bool strict = true)
    {
        var own = AllNamed("", m => m._parameters).Concat(AllNamed("", m => m._buffers)).ToDictionary(x => x.Name, x => x.Tensor);
        var problems = new List<string>();
        foreach (var name in own.Keys.Where(k => !state.ContainsKey(k))) problems.Add($"missing entry '{name}'");
        foreach (var name in state.Keys.Where(k => !own.ContainsKey(k))) problems.Add($"unexpected entry '{name}'");
        foreach (var (name, t) in own)
            if (state.TryGetValue(name, out var v) && v.Shape != t.Shape)
                problems.Add($"entry '{name}' has shape {v.Shape}, the model expects {t.Shape}");
        if (strict && problems.Count > 0)
            throw new ArgumentException($"LoadStateDict into {Describe()}: " + string.Join("; ", problems));
        using (Autograd.NoGrad())
            foreach (var (name, t) in own)
                if (state.TryGetValue(name, out var v) && v.Shape == t.Shape)
                    t.CopyFrom(v.To(t.Device).To(t.DType));
    }

    /// <summary>A readable tree of the module and its children.</summary>
    public override string ToString()
    {
        var sb = new System.Text.StringBuilder();
        Print(sb, "", 0);
        return sb.ToString().TrimEnd();
    }

    private void Print(System.Text.StringBuilder sb, string name, int depth)
    {
        sb.Append(' ', depth * 2);
        if (name.Length > 0) sb.Append('(').Append(name).Append("): ");
        sb.AppendLine(Describe());
        foreach (var (n, c) in _children) c.Print(sb, n, depth + 1);
    }
}
