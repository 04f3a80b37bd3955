namespace MiniDeep;

/// <summary>
/// One recorded op on the tape: its inputs and a backward rule that maps the gradient of the op's
/// output to gradients of its inputs (null where an input needs none). The rule is written with
/// tensor ops, so running it while recording makes a graph of the backward pass, whose own backward
/// gives exact second derivatives.
/// </summary>
public sealed class Node
{
    private Func<Tensor, Tensor?[]>? _backward;

    // Storage versions when the op ran, of its inputs and of its output (rules such as sigmoid's and
    // exp's read the output): a change by Backward's time means the rule would read other values.
    private readonly int[] _versions;
    private readonly Storage _output;
    private readonly int _outputVersion;

    internal Node(string op, Tensor[] inputs, Func<Tensor, Tensor?[]> backward, Tensor output)
    {
        Op = op;
        Inputs = inputs;
        _backward = backward;
        _versions = new int[inputs.Length];
        for (int i = 0; i < inputs.Length; i++) _versions[i] = inputs[i].Storage.Version;
        _output = output.Storage;
        _outputVersion = _output.Version;
    }

    /// <summary>Name of the op, e.g. "mul".</summary>
    public string Op { get; }

    /// <summary>The op's inputs, in order.</summary>
    public IReadOnlyList<Tensor> Inputs { get; }

    /// <summary>Recorded by <see cref="Autograd.CustomOp"/>: a user's rule, which may keep the gradient it is given.</summary>
    internal bool IsCustom { get; init; }

    /// <summary>True once Backward ran through this node without retainGraph: its saved tensors are gone.</summary>
    public bool IsFreed => _backward is null;

    internal Tensor?[] Apply(Tensor grad)
    {
        var rule = _backward ?? throw new InvalidOperationException(
            $"Backward through '{Op}' a second time, but its saved tensors were freed after the first Backward. " +
            "Pass retainGraph: true to the first Backward if you need to run backward through the graph twice.");
        for (int i = 0; i < Inputs.Count; i++)
            if (Inputs[i].Storage.Version != _versions[i])
                throw new InvalidOperationException(
                    $"Backward through '{Op}': its input {i} (shape {Inputs[i].Shape}) was modified in place after '{Op}' used it, " +
                    "so the gradient would be computed from the wrong values. Update a copy (Clone()) instead, or update after Backward.");
        if (_output.Version != _outputVersion)
            throw new InvalidOperationException(
                $"Backward through '{Op}': its output was modified in place after '{Op}' computed it (through a Detach() or a view of it, or under NoGrad), " +
                "so the gradient would be computed from the wrong values. Update a copy (Clone()) instead, or update after Backward.");
        var grads = rule(grad);
        if (grads.Length != Inputs.Count)
            throw new InvalidOperationException($"backward of '{Op}' returned {grads.Length} gradients for {Inputs.Count} inputs");
        return grads;
    }

    internal void Free() => _backward = null;

    /// <inheritdoc/>
    public override string ToString() => Op;
}
