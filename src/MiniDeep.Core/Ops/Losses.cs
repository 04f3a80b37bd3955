namespace MiniDeep;

/// <summary>How a loss combines its per-element terms.</summary>
public enum Reduction
{
    /// <summary>Average over the batch (the default).</summary>
    Mean,
    /// <summary>Sum over the batch.</summary>
    Sum,
    /// <summary>One loss per example.</summary>
    None,
}

/// <summary>
/// Loss functions. Every loss checks its operands' shapes exactly and refuses to broadcast: a
/// (N, 1) prediction against (N) targets silently broadcast to (N, N) is one of the most common bugs
/// in training code.
/// </summary>
public static class Losses
{
    private static void SameShape(string op, Tensor a, Tensor b)
    {
        if (a.Shape != b.Shape)
            throw new ShapeMismatchException(op,
                $"{op}: input {a.Shape} and target {b.Shape} must have the same shape (losses do not broadcast; reshape one explicitly)");
    }

    private static Tensor Reduce(Tensor perExample, Reduction reduction) => reduction switch
    {
        Reduction.Mean => perExample.Mean(),
        Reduction.Sum => perExample.Sum(),
        _ => perExample,
    };

    /// <summary>
    /// Cross-entropy of logits (N, C) against int32 class targets (N), fused: the forward pass is one
    /// max-shifted kernel (exact for logits of 1e8), the backward is softmax(x) - onehot(t). Float
    /// targets (N, C) are class probabilities (<see cref="SoftCrossEntropy"/>). With
    /// <paramref name="labelSmoothing"/> ε the target is (1 − ε)·onehot(t) + ε/C, as in PyTorch.
    /// <paramref name="weight"/> (C) scales each class's term and <paramref name="ignoreIndex"/> drops
    /// the rows whose target it is, as PyTorch's weight and ignore_index do: the mean is then
    /// Σ w_t ℓ / Σ w_t over the rows kept (NaN, 0/0, when none is), an ignored row's loss is 0, and so
    /// is its gradient when its logits are finite. Neither has a default: a target of −100 is an error
    /// unless asked for.
    /// </summary>
    // ℓ = logsumexp(x) - x_t   dx = g * (softmax(x) - onehot(t))
    public static Tensor CrossEntropy(Tensor logits, Tensor targets, Reduction reduction = Reduction.Mean, double labelSmoothing = 0,
        Tensor? weight = null, int? ignoreIndex = null)
    {
        if (logits.Rank != 2)
            throw new ShapeMismatchException("cross_entropy", $"cross_entropy: logits must be (N, C), got {logits.Shape}");
        CheckSmoothing("cross_entropy", labelSmoothing);
        if (targets.DType.IsFloating())
        {
            if (targets.Rank == 1)
                throw new ShapeMismatchException("cross_entropy",
                    $"cross_entropy: targets {targets.Shape} are {targets.DType.Name()}: class indices must be int32 (convert with .To(DType.Int32)); float targets are class probabilities of shape (N, C) = {logits.Shape}");
            if (ignoreIndex is not null)
                throw new ArgumentException($"cross_entropy: ignoreIndex applies to class-index targets; targets {targets.Shape} are probabilities", nameof(ignoreIndex));
            return SoftCrossEntropy(logits, targets, reduction, labelSmoothing, weight);
        }
        if (targets.DType != DType.Int32)
            throw new InvalidOperationException($"cross_entropy: class targets must be int32, got {targets.DType.Name()}");
        if (targets.Rank != 1 || targets.Dims[0] != logits.Dims[0])
            throw new ShapeMismatchException("cross_entropy",
                $"cross_entropy: targets {targets.Shape} must be (N) = ({logits.Dims[0]},) for logits {logits.Shape}");
        if (!logits.DType.IsFloating()) throw new InvalidOperationException($"cross_entropy: logits must be floating, got {logits.DType.Name()}");
        if (targets.Device != logits.Device) throw Tensor.DeviceMismatch("cross_entropy", logits, targets);
        int numClasses = logits.Dims[1];
        weight = CheckClassWeight("cross_entropy", weight, logits);
        var keep = IgnoredRows(ref targets, ignoreIndex);
        var perRow = new Tensor(logits.Backend.CrossEntropyRows(logits.AsView, targets.AsView), [logits.Dims[0]]);
        var y = Autograd.Record(perRow, "cross_entropy", [logits], g => [CrossEntropyGrad(logits, targets, g, numClasses)]);
        if (weight is null)
        {
            // Against (1 − ε)·onehot(t) + ε/C the loss is (1 − ε)ℓ + ε·(logsumexp(x) − mean_c x_c)
            // = ℓ + ε·(x_t − mean_c x_c): the fused row's logsumexp serves both terms.
            if (labelSmoothing > 0)
                y = y + (logits.Gather(1, targets.Unsqueeze(1)).Squeeze(1) - logits.Mean(1)) * labelSmoothing;
            return ReduceRows(y, null, keep, reduction);
        }
        // Weighted, the smoothed loss is (1 − ε)·w_t·ℓ + (ε/C)·Σ_c w_c (logsumexp(x) − x_c), and the
        // mean divides by Σ w_t alone (PyTorch's convention; the ε term does not enter the divisor).
        var wt = weight.Gather(0, targets, "cross_entropy");
        var weighted = y * wt;
        if (labelSmoothing > 0)
        {
            var logSumExp = y + logits.Gather(1, targets.Unsqueeze(1)).Squeeze(1);
            var smooth = logSumExp * weight.Sum() - (logits * weight).Sum(1);
            weighted = weighted * (1 - labelSmoothing) + smooth * (labelSmoothing / numClasses);
        }
        return ReduceRows(weighted, wt, keep, reduction);
    }

    // Rows whose target is ignoreIndex: their target becomes 0 (any in-range class, so the fused kernel
    // and the gathers read a valid column) and the returned mask (true where kept) selects the rest.
    private static Tensor? IgnoredRows(ref Tensor targets, int? ignoreIndex)
    {
        if (ignoreIndex is not int ignored) return null;
        var kept = targets != ignored;
        targets = Tensor.Where(kept, targets, Tensor.ScalarLike(targets, 0));
        return kept;
    }

    private static Tensor? CheckClassWeight(string op, Tensor? weight, Tensor input)
    {
        if (weight is null) return null;
        int classes = input.Size(-1);
        if (weight.Rank != 1 || weight.Dims[0] != classes)
            throw new ShapeMismatchException(op, $"{op}: class weight {weight.Shape} must be (C) = ({classes},) for input {input.Shape}");
        if (!weight.DType.IsFloating()) throw new InvalidOperationException($"{op}: class weight must be floating, got {weight.DType.Name()}");
        if (weight.Device != input.Device) throw Tensor.DeviceMismatch(op, input, weight);
        return weight.DType == input.DType ? weight : weight.To(input.DType);
    }

    // Rows already multiplied by their class weights w_t (or null: unweighted), minus the ignored ones:
    // the mean is Σ ℓ / Σ w over the rows kept, Sum and None need no divisor. Without weights or ignored
    // rows it is the plain reduction, op for op. An ignored row goes through a where, not a product with
    // the mask: a padding position whose classes are all masked to −∞ has a NaN loss, and NaN·0 is NaN.
    private static Tensor ReduceRows(Tensor perRow, Tensor? rowWeight, Tensor? kept, Reduction reduction)
    {
        if (kept is not null)
        {
            var zero = Tensor.ScalarLike(perRow, 0);
            perRow = Tensor.Where(kept, perRow, zero);
            rowWeight = rowWeight is null ? kept.To(perRow.DType) : Tensor.Where(kept, rowWeight, zero);
        }
        if (rowWeight is null) return Reduce(perRow, reduction);
        return reduction switch
        {
            Reduction.Mean => perRow.Sum() / rowWeight.Sum(),
            Reduction.Sum => perRow.Sum(),
            _ => perRow,
        };
    }

    private static void CheckSmoothing(string op, double labelSmoothing)
    {
        if (!(labelSmoothing >= 0 && labelSmoothing <= 1))
            throw new ArgumentOutOfRangeException(nameof(labelSmoothing), $"{op}: label smoothing must lie in [0, 1], got {labelSmoothing}");
    }

    // One kernel when the backward is not itself recorded; written with tensor ops when it is
    // (createGraph), so that its own gradient (second derivatives through the loss) follows.
    private static Tensor CrossEntropyGrad(Tensor logits, Tensor targets, Tensor g, int numClasses)
    {
        if (Autograd.IsGradEnabled && (logits.RequiresGrad || g.RequiresGrad))
            return (logits.Softmax(1) - Tensor.OneHot(targets, numClasses, g.DType)) * g.Unsqueeze(1);
        return new Tensor(logits.Backend.CrossEntropyRowsBackward(logits.AsView, targets.AsView, g.AsView), [logits.Dims[0], numClasses]);
    }

    /// <summary>Cross-entropy against target probabilities (N, C): -Σ p log softmax(x); with
    /// <paramref name="labelSmoothing"/> ε, against (1 − ε)·p + ε/C; with <paramref name="weight"/> (C),
    /// -Σ w_c p_c log softmax(x)_c, averaged over the N rows (PyTorch's convention for probability targets).</summary>
    public static Tensor SoftCrossEntropy(Tensor logits, Tensor targetProbs, Reduction reduction = Reduction.Mean, double labelSmoothing = 0,
        Tensor? weight = null)
    {
        SameShape("soft_cross_entropy", logits, targetProbs);
        CheckSmoothing("soft_cross_entropy", labelSmoothing);
        weight = CheckClassWeight("soft_cross_entropy", weight, logits);
        if (labelSmoothing > 0) targetProbs = targetProbs * (1 - labelSmoothing) + labelSmoothing / logits.Size(-1);
        if (weight is not null) targetProbs = targetProbs * weight;
        return Reduce(-(targetProbs * logits.LogSoftmax(-1)).Sum(-1), reduction);
    }

    /// <summary>Negative log-likelihood of log-probabilities (N, C) at int32 targets (N); <paramref name="weight"/>
    /// and <paramref name="ignoreIndex"/> as in <see cref="CrossEntropy"/> (the mean is Σ w_t ℓ / Σ w_t over the rows kept).</summary>
    // ℓ = -w_t logp[t]   dlogp = -g w_t at t, 0 elsewhere
    public static Tensor Nll(Tensor logProbs, Tensor targets, Reduction reduction = Reduction.Mean, Tensor? weight = null, int? ignoreIndex = null)
    {
        if (logProbs.Rank != 2)
            throw new ShapeMismatchException("nll", $"nll: log-probabilities must be (N, C), got {logProbs.Shape}");
        if (targets.DType != DType.Int32 || targets.Rank != 1 || targets.Dims[0] != logProbs.Dims[0])
            throw new ShapeMismatchException("nll", $"nll: targets {targets.Shape} ({targets.DType.Name()}) must be int32 (N) = ({logProbs.Dims[0]},) for input {logProbs.Shape}");
        weight = CheckClassWeight("nll", weight, logProbs);
        var keep = IgnoredRows(ref targets, ignoreIndex);
        var loss = -logProbs.Gather(1, targets.Unsqueeze(1), "nll").Squeeze(1);
        var wt = weight?.Gather(0, targets, "nll");
        return ReduceRows(wt is null ? loss : loss * wt, wt, keep, reduction);
    }

    /// <summary>Mean squared error. Shapes must match exactly.</summary>
    // ℓ = (p - t)²   dp = 2 g (p - t)
    public static Tensor Mse(Tensor prediction, Tensor target, Reduction reduction = Reduction.Mean)
    {
        SameShape("mse", prediction, target);
        var d = prediction - target;
        return Reduce(d * d, reduction);
    }

    /// <summary>Mean absolute error (PyTorch's l1_loss). Shapes must match exactly.</summary>
    // ℓ = |p - t|   dp = g sign(p - t)   (0 at p = t)
    public static Tensor L1(Tensor prediction, Tensor target, Reduction reduction = Reduction.Mean)
    {
        SameShape("l1", prediction, target);
        return Reduce((prediction - target).Abs(), reduction);
    }

    /// <summary>
    /// Smooth L1 (Girshick 2015; PyTorch's smooth_l1_loss): quadratic within <paramref name="beta"/>
    /// of the target, linear beyond, so one outlier pulls with a bounded force. β = 0 is the L1 loss.
    /// Shapes must match exactly.
    /// </summary>
    // ℓ = d²/(2β) if |d| < β else |d| - β/2   dp = g d/β inside, g sign(d) outside   (d = p - t)
    public static Tensor SmoothL1(Tensor prediction, Tensor target, Reduction reduction = Reduction.Mean, double beta = 1.0)
    {
        SameShape("smooth_l1", prediction, target);
        if (!(beta >= 0) || double.IsInfinity(beta)) throw new ArgumentOutOfRangeException(nameof(beta), $"smooth_l1: beta must be finite and at least 0, got {beta}");
        var d = prediction - target;
        if (beta == 0) return Reduce(d.Abs(), reduction);
        var a = d.Abs();
        return Reduce(Tensor.Where(a < beta, d * d * (0.5 / beta), a - 0.5 * beta), reduction);
    }

    /// <summary>
    /// Huber loss (Huber 1964; PyTorch's huber_loss): ½d² within <paramref name="delta"/> of the target,
    /// δ·(|d| − δ/2) beyond. It is δ times <see cref="SmoothL1"/> with β = δ: the same shape, with the
    /// gradient outside bounded by δ instead of 1. Shapes must match exactly.
    /// </summary>
    // ℓ = d²/2 if |d| < δ else δ(|d| - δ/2)   dp = g d inside, g δ sign(d) outside   (d = p - t)
    public static Tensor Huber(Tensor prediction, Tensor target, Reduction reduction = Reduction.Mean, double delta = 1.0)
    {
        SameShape("huber", prediction, target);
        if (!(delta > 0) || double.IsInfinity(delta)) throw new ArgumentOutOfRangeException(nameof(delta), $"huber: delta must be finite and positive, got {delta}");
        var d = prediction - target;
        var a = d.Abs();
        return Reduce(Tensor.Where(a < delta, d * d * 0.5, (a - 0.5 * delta) * delta), reduction);
    }

    /// <summary>
    /// Binary cross-entropy on logits, stable for any logit: softplus(x) - x·y. Shapes must match.
    /// <paramref name="posWeight"/> (one per class, the last axis) multiplies the positive term, as
    /// PyTorch's pos_weight does: −[p·y·log σ(x) + (1 − y)·log(1 − σ(x))], so that p = negatives ÷
    /// positives weighs a rare class's few positives as much as its many negatives.
    /// </summary>
    // ℓ = softplus(x) - x y   dx = g (σ(x) - y)
    public static Tensor BceWithLogits(Tensor logits, Tensor targets, Reduction reduction = Reduction.Mean, Tensor? posWeight = null)
    {
        SameShape("bce_with_logits", logits, targets);
        if (posWeight is null) return Reduce(logits.Softplus() - logits * targets, reduction);
        if (logits.Rank == 0 || posWeight.Rank != 1 || posWeight.Dims[0] != logits.Size(-1))
            throw new ShapeMismatchException("bce_with_logits",
                $"bce_with_logits: pos_weight {posWeight.Shape} must be one weight per class, ({(logits.Rank == 0 ? "C" : logits.Size(-1).ToString())},), for input {logits.Shape}");
        if (!posWeight.DType.IsFloating()) throw new InvalidOperationException($"bce_with_logits: pos_weight must be floating, got {posWeight.DType.Name()}");
        if (posWeight.Device != logits.Device) throw Tensor.DeviceMismatch("bce_with_logits", logits, posWeight);
        // −log σ(x) = softplus(−x) and −log(1 − σ(x)) = x + softplus(−x), so the loss is
        // (1 − y)·x + (1 + (p − 1)·y)·softplus(−x): finite for every logit.
        var p = posWeight.DType == logits.DType ? posWeight : posWeight.To(logits.DType);
        return Reduce((1 - targets) * logits + (1 + (p - 1) * targets) * (-logits).Softplus(), reduction);
    }

    /// <summary>KL(p ‖ q) = Σ p (log p - log q) with q given as log-probabilities and p as probabilities,
    /// summed over classes and averaged over the batch (PyTorch's reduction='batchmean'). 0·log 0 = 0.</summary>
    public static Tensor KlDiv(Tensor logQ, Tensor p)
    {
        SameShape("kl_div", logQ, p);
        if (logQ.Rank == 0) throw new ShapeMismatchException("kl_div", "kl_div: inputs need a batch dimension");
        var zero = Tensor.ScalarLike(p, 0);
        var pos = p > 0;
        var plogp = Tensor.Where(pos, p * Tensor.Where(pos, p, Tensor.ScalarLike(p, 1)).Log(), zero);
        return (plogp - p * logQ).Sum() / logQ.Dims[0];
    }

    /// <summary>
    /// Knowledge-distillation loss (Hinton, Vinyals &amp; Dean 2015): KL between the teacher's and the
    /// student's softmax at temperature T, times T² so that its gradients keep their scale as T changes.
    /// </summary>
    public static Tensor DistillationKl(Tensor studentLogits, Tensor teacherLogits, double temperature)
    {
        SameShape("distillation_kl", studentLogits, teacherLogits);
        if (!(temperature > 0)) throw new ArgumentOutOfRangeException(nameof(temperature), $"distillation_kl: temperature must be positive, got {temperature}");
        var p = (teacherLogits / temperature).Softmax(-1);
        var logQ = (studentLogits / temperature).LogSoftmax(-1);
        return KlDiv(logQ, p) * (temperature * temperature);
    }

    /// <summary>
    /// The distillation objective of Hinton et al.: α·T²·KL(teacher_T ‖ student_T) + (1 − α)·CE(student, labels),
    /// soft targets from the teacher at temperature T mixed with the hard labels.
    /// </summary>
    public static Tensor Distillation(Tensor studentLogits, Tensor teacherLogits, Tensor labels, double temperature, double alpha)
    {
        if (!(alpha >= 0 && alpha <= 1)) throw new ArgumentOutOfRangeException(nameof(alpha), $"distillation: alpha must lie in [0, 1], got {alpha}");
        var soft = DistillationKl(studentLogits, teacherLogits, temperature);
        if (alpha == 1) return soft;
        var hard = CrossEntropy(studentLogits, labels);
        return alpha == 0 ? hard : soft * alpha + hard * (1 - alpha);
    }
}
