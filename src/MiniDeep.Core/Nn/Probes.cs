namespace MiniDeep.Nn;

/// <summary>Summary statistics of a tensor.</summary>
public sealed record TensorStats(double Mean, double Std, double Min, double Max, double FractionZero)
{
    /// <summary>The statistics of <paramref name="t"/>, computed without recording.</summary>
    public static TensorStats Of(Tensor t)
    {
        if (t.Numel == 0) throw new ArgumentException($"TensorStats.Of: the tensor {t.Shape} is empty; it has no statistics");
        using var _ = Autograd.NoGrad();
        var x = t.Detach().Double();
        return new(x.Mean().Item(), x.Numel > 1 ? x.Std(correction: 0).Item() : 0, x.Min().Item(), x.Max().Item(),
            (x == 0).Double().Mean().Item());
    }
}

/// <summary>
/// Looking inside a network while it trains: the L2 norm of each parameter's gradient (vanishing
/// gradients show up as a ratio across depth), and the statistics of every layer's output, recorded
/// through forward hooks.
/// </summary>
public static class Probes
{
    /// <summary>‖∂loss/∂p‖₂ for every parameter that has a gradient, by dotted name.</summary>
    public static Dictionary<string, double> GradientNorms(Module model)
    {
        using var _ = Autograd.NoGrad();
        return model.NamedParameters()
            .Where(p => p.Tensor.Grad is not null)
            .ToDictionary(p => p.Name, p => Math.Sqrt(p.Tensor.Grad!.Double().Square().Sum().Item()));
    }

    /// <summary>Records the output statistics of every descendant module on each forward pass until disposed.</summary>
    public static ActivationRecorder RecordActivations(Module model) => new(model);
}

/// <summary>Activation statistics per module, collected by forward hooks; dispose to remove the hooks.</summary>
public sealed class ActivationRecorder : IDisposable
{
    private readonly List<IDisposable> _hooks = [];

    internal ActivationRecorder(Module model)
    {
        foreach (var (name, module) in model.NamedModules().Where(m => m.Name.Length > 0))
            _hooks.Add(module.RegisterForwardHook((_, _, output) => Latest[name] = TensorStats.Of(output)));
    }

    /// <summary>The statistics of each module's most recent output, by dotted name.</summary>
    public Dictionary<string, TensorStats> Latest { get; } = [];

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var h in _hooks) h.Dispose();
        _hooks.Clear();
    }
}
