using Xunit;
using FsCheck;
using FsCheck.Fluent;
using static MiniDeep.Tests.TestData;

namespace MiniDeep.Tests;

/// <summary>One generated test case: inputs, the function under test, and a description FsCheck prints on failure.</summary>
public sealed record OpCase(string Description, Tensor[] Inputs, Func<Tensor[], Tensor> F)
{
    public override string ToString() => Description;
}

/// <summary>A differentiable op and a generator of its cases. <c>Cases(maxDim)</c> scales the shapes:
/// first-order checks use 3, second-order checks 2 (their cost grows with the square of the size).</summary>
public sealed record OpSpec(string Name, Func<int, Gen<OpCase>> Cases)
{
    public override string ToString() => Name;
}

/// <summary>Every differentiable op of MiniDeep, with case generators over random shapes
/// (ranks 0–4, sizes 0–3, broadcast pairs) and values in each op's smooth domain.</summary>
public static class OpSpecs
{
    private static OpSpec Unary(string name, Domain domain, Func<Tensor, Tensor> f) => new(name, max =>
        from shape in Gens.Shape(4, max)
        from seed in Gens.Seed
        select new OpCase($"{name} x{Fmt.S(shape)} seed {seed}", [Values(shape, seed, domain)], x => f(x[0])));

    private static OpSpec Binary(string name, Domain da, Domain db, Func<Tensor, Tensor, Tensor> f) => new(name, max =>
        from pair in Gens.BroadcastPair(4, max)
        from seed in Gens.Seed
        select new OpCase($"{name} a{Fmt.S(pair.A)} b{Fmt.S(pair.B)} seed {seed}",
            [Values(pair.A, seed, da), Values(pair.B, seed + 1, db)], x => f(x[0], x[1])));

    private static OpSpec Reduce(string name, Domain domain, Func<Tensor, int[]?, bool, Tensor> f, int minReduced = 0, int minDim = 0) => new(name, max =>
        (from shape in Gens.Shape(4, max, minDim)
         from axes in Gens.Axes(shape.Length)
         from keep in Gen.Elements(true, false)
         from seed in Gens.Seed
         select (shape, axes, keep, seed))
        .Where(c => Reduced(c.shape, c.axes) >= minReduced)
        .Select(c => new OpCase($"{name} x{Fmt.S(c.shape)} axes {Fmt.S(c.axes)} keepDim {c.keep} seed {c.seed}",
            [Values(c.shape, c.seed, domain)], x => f(x[0], c.axes, c.keep))));

    private static int Reduced(int[] shape, int[]? axes) =>
        axes is null ? shape.Aggregate(1, (a, b) => a * b) : axes.Aggregate(1, (a, ax) => a * shape[ax < 0 ? ax + shape.Length : ax]);

    private static OpSpec AlongAxis(string name, Domain domain, Func<Tensor, int, Tensor> f, int minDim = 0) => new(name, max =>
        from shape in Gens.Shape(4, max, minDim).Where(s => s.Length > 0)
        from axis in Gen.Choose(-shape.Length, shape.Length - 1)
        from seed in Gens.Seed
        select new OpCase($"{name} x{Fmt.S(shape)} axis {axis} seed {seed}", [Values(shape, seed, domain)], x => f(x[0], axis)));

    // Convolution cases (grouped, strided, padded, dilated, with and without bias) for one conv op.
    private static OpSpec Conv(string name, Func<Tensor, Tensor, Tensor?, (int, int), (int, int), (int, int), int, Tensor> conv) => new(name, max =>
            (from n in Gen.Choose(1, 2)
             from groups in Gen.Choose(1, 2)
             from cg in Gen.Choose(1, 2)
             from og in Gen.Choose(1, 2)
             from h in Gen.Choose(1, max + 2)
             from w in Gen.Choose(1, max + 2)
             from kh in Gen.Choose(1, 3)
             from kw in Gen.Choose(1, 2)
             from stride in Gen.Choose(1, 2)
             from pad in Gen.Choose(0, 1)
             from dil in Gen.Choose(1, 2)
             from bias in Gen.Elements(true, false)
             from seed in Gens.Seed
             select (n, groups, cg, og, h, w, kh, kw, stride, pad, dil, bias, seed))
            .Where(c => c.h + 2 * c.pad >= c.dil * (c.kh - 1) + 1 && c.w + 2 * c.pad >= c.dil * (c.kw - 1) + 1)
            .Select(c => new OpCase(
                $"{name} x({c.n}, {c.groups * c.cg}, {c.h}, {c.w}) w({c.groups * c.og}, {c.cg}, {c.kh}, {c.kw}) stride {c.stride} pad {c.pad} dil {c.dil} groups {c.groups} bias {c.bias} seed {c.seed}",
                [Values([c.n, c.groups * c.cg, c.h, c.w], c.seed), Values([c.groups * c.og, c.cg, c.kh, c.kw], c.seed + 1), Values([c.groups * c.og], c.seed + 2)],
                x => conv(x[0], x[1], c.bias ? x[2] : null, (c.stride, 1), (c.pad, c.pad), (c.dil, 1), c.groups))));

    // Pooling cases: (N, C, H, W) with a k×k window, stride and padding (at most half the window).
    private static OpSpec Pool(string name, Domain domain, Func<Tensor, int, int, int, Tensor> f) => new(name, max =>
        (from n in Gen.Choose(1, 2)
         from ch in Gen.Choose(1, 2)
         from h in Gen.Choose(1, max + 2)
         from w in Gen.Choose(1, max + 2)
         from k in Gen.Choose(1, 3)
         from stride in Gen.Choose(1, 2)
         from pad in Gen.Choose(0, 1)
         from seed in Gens.Seed
         select (n, ch, h, w, k, stride, pad, seed))
        .Where(c => c.pad * 2 <= c.k && c.h + 2 * c.pad >= c.k && c.w + 2 * c.pad >= c.k)
        .Select(c => new OpCase($"{name} x({c.n}, {c.ch}, {c.h}, {c.w}) k {c.k} stride {c.stride} pad {c.pad} seed {c.seed}",
            [Values([c.n, c.ch, c.h, c.w], c.seed, domain)], x => f(x[0], c.k, c.stride, c.pad))));

    public static readonly OpSpec[] All =
    [
        // ----- elementwise, one input -----
        Unary("neg", Domain.Any, x => -x),
        Unary("exp", Domain.Any, x => x.Exp()),
        Unary("sin", Domain.Any, x => x.Sin()),
        Unary("cos", Domain.Any, x => x.Cos()),
        Unary("log", Domain.Positive, x => x.Log()),
        Unary("sqrt", Domain.Positive, x => x.Sqrt()),
        Unary("abs", Domain.AwayFromZero, x => x.Abs()),
        Unary("relu", Domain.AwayFromZero, x => x.Relu()),
        Unary("leaky_relu", Domain.AwayFromZero, x => x.LeakyRelu(0.1)),
        Unary("sigmoid", Domain.Any, x => x.Sigmoid()),
        Unary("tanh", Domain.Any, x => x.Tanh()),
        Unary("gelu", Domain.Any, x => x.Gelu()),
        Unary("softplus", Domain.Any, x => x.Softplus()),
        Unary("normcdf", Domain.Any, x => x.NormCdf()),
        Unary("pow_scalar", Domain.Positive, x => x.Pow(2.5)),
        Unary("square", Domain.Any, x => x.Square()),
        Unary("clamp", Domain.Distinct, x => x.Clamp(-0.2, 0.3)),
        Unary("clone", Domain.Any, x => x.Clone() * 2),
        Unary("scalar_ops", Domain.AwayFromZero, x => 3 - 2 / x + x * 0.5 - 1),

        // ----- elementwise, two inputs with broadcasting -----
        Binary("add", Domain.Any, Domain.Any, (a, b) => a + b),
        Binary("sub", Domain.Any, Domain.Any, (a, b) => a - b),
        Binary("mul", Domain.Any, Domain.Any, (a, b) => a * b),
        Binary("div", Domain.Any, Domain.AwayFromZero, (a, b) => a / b),
        Binary("pow", Domain.Positive, Domain.Any, Tensor.Pow),
        Binary("maximum", Domain.Distinct, Domain.Any, Tensor.Maximum),
        Binary("minimum", Domain.Distinct, Domain.Any, Tensor.Minimum),
        new("where", max =>
            from pair in Gens.BroadcastPair(4, max)
            from condShape in Gen.Elements(pair.A, pair.B)
            from seed in Gens.Seed
            select new OpCase($"where cond{Fmt.S(condShape)} a{Fmt.S(pair.A)} b{Fmt.S(pair.B)} seed {seed}",
                [Values(pair.A, seed), Values(pair.B, seed + 1)], x => Tensor.Where(Mask(condShape, seed), x[0], x[1]))),
        Unary("masked_fill", Domain.Any, x => x.MaskedFill(Mask(x.Shape.ToArray(), 5), 0.7) * x),

        // ----- reductions -----
        Reduce("sum", Domain.Any, (x, a, k) => x.Sum(a, k)),
        Reduce("mean", Domain.Any, (x, a, k) => x.Mean(a, k), minReduced: 1),
        Reduce("max", Domain.Distinct, (x, a, k) => x.Max(a, k), minDim: 1),
        Reduce("min", Domain.Distinct, (x, a, k) => x.Min(a, k), minDim: 1),
        Reduce("var", Domain.Any, (x, a, k) => x.Var(a, k), minReduced: 2),
        Reduce("std", Domain.Any, (x, a, k) => x.Std(a, k), minReduced: 2),
        Reduce("logsumexp", Domain.Any, (x, a, k) => x.LogSumExp(a, k)),
        AlongAxis("softmax", Domain.Any, (x, a) => x.Softmax(a)),
        AlongAxis("log_softmax", Domain.Any, (x, a) => x.LogSoftmax(a)),

        // ----- shape ops -----
        new("reshape", max =>
            from shape in Gens.Shape(4, max)
            from seed in Gens.Seed
            let target = shape.Reverse().ToArray()
            select new OpCase($"reshape x{Fmt.S(shape)} -> {Fmt.S(target)} seed {seed}", [Values(shape, seed)],
                x => x[0].Reshape(target) * Values(target, 3))),
        new("permute", max =>
            from shape in Gens.Shape(4, max)
            from perm in Gen.Shuffle(Enumerable.Range(0, shape.Length).ToArray())
            from seed in Gens.Seed
            select new OpCase($"permute x{Fmt.S(shape)} perm {Fmt.S(perm)} seed {seed}", [Values(shape, seed)],
                x => x[0].Permute(perm) * Values(perm.Select(p => shape[p]).ToArray(), 3))),
        new("expand", max =>
            from pair in Gens.BroadcastPair(4, max)
            from seed in Gens.Seed
            let small = pair.A.Length <= pair.B.Length ? pair.A : pair.B
            let big = Shapes.Broadcast("t", pair.A, pair.B)
            select new OpCase($"expand x{Fmt.S(small)} -> {Fmt.S(big)} seed {seed}", [Values(small, seed)],
                x => x[0].Expand(big) * Values(big, 3))),
        new("narrow", max =>
            from shape in Gens.Shape(4, max + 1).Where(s => s.Length > 0 && s.Max() > 0)
            from axis in Gen.Choose(0, shape.Length - 1)
            from start in Gen.Choose(0, shape[axis])
            from step in Gen.Choose(1, 2)
            from len in Gen.Choose(0, start >= shape[axis] ? 0 : (shape[axis] - 1 - start) / step + 1)
            from seed in Gens.Seed
            select new OpCase($"narrow x{Fmt.S(shape)} axis {axis} start {start} len {len} step {step} seed {seed}", [Values(shape, seed)],
                x => x[0].Narrow(axis, start, len, step).Exp())),
        Unary("squeeze_unsqueeze", Domain.Any, x => x.Unsqueeze(0).Unsqueeze(-1).Squeeze().Exp()),
        Unary("flatten", Domain.Any, x => x.Flatten().Sigmoid()),
        Unary("repeat", Domain.Any, x => x.Repeat([.. Enumerable.Repeat(1, Math.Max(0, 3 - x.Rank)), .. Enumerable.Range(0, x.Rank).Select(i => i % 2 + 1)]).Exp()),
        new("transpose", max =>
            from shape in Gens.Shape(4, max).Where(s => s.Length >= 2)
            from seed in Gens.Seed
            select new OpCase($"transpose x{Fmt.S(shape)} seed {seed}", [Values(shape, seed)],
                x => x[0].mT.Contiguous().Tanh())),
        new("pad", max =>
            from shape in Gens.Shape(4, max).Where(s => s.Length > 0)
            from pads in Gen.Choose(0, 2).ArrayOf(2 * Math.Min(2, shape.Length))
            from seed in Gens.Seed
            select new OpCase($"pad x{Fmt.S(shape)} pads {Fmt.S(pads)} seed {seed}", [Values(shape, seed)],
                x => x[0].Pad(pads, 0.5).Exp())),
        new("concat", max =>
            from shape in Gens.Shape(4, max).Where(s => s.Length > 0)
            from axis in Gen.Choose(0, shape.Length - 1)
            from other in Gens.Dim(max)
            from seed in Gens.Seed
            let shape2 = shape.Select((d, i) => i == axis ? other : d).ToArray()
            select new OpCase($"concat a{Fmt.S(shape)} b{Fmt.S(shape2)} axis {axis} seed {seed}", [Values(shape, seed), Values(shape2, seed + 1)],
                x => Tensor.Concat([x[0], x[1] * 2], axis).Exp())),
        new("stack", max =>
            from shape in Gens.Shape(3, max)
            from axis in Gen.Choose(0, shape.Length)
            from seed in Gens.Seed
            select new OpCase($"stack x{Fmt.S(shape)} axis {axis} seed {seed}", [Values(shape, seed), Values(shape, seed + 1)],
                x => Tensor.Stack([x[0], x[1].Exp()], axis))),
        new("split", max =>
            from shape in Gens.Shape(4, max + 1).Where(s => s.Length > 0)
            from axis in Gen.Choose(0, shape.Length - 1)
            from size in Gen.Choose(1, 3)
            from seed in Gens.Seed
            select new OpCase($"split x{Fmt.S(shape)} size {size} axis {axis} seed {seed}", [Values(shape, seed)],
                x => x[0].Split(size, axis) is { Length: > 0 } parts
                    ? Tensor.Concat(parts.Select((p, i) => p * (i + 1.0)).ToArray(), axis)
                    : x[0] * 1.0)),
        Unary("select", Domain.Any, x => x.Rank > 0 && x.Size(0) > 0 ? x.Select(0, -1).Exp() : x.Exp()),

        // ----- indexing -----
        new("gather", max =>
            from shape in Gens.Shape(4, max, 1).Where(s => s.Length > 0)
            from axis in Gen.Choose(0, shape.Length - 1)
            from idxShape in Gen.CollectToArray(shape.Select((d, i) => i == axis ? Gen.Choose(0, 4) : Gen.Choose(0, d)), g => g)
            from seed in Gens.Seed
            let ix = idxShape.ToArray()
            select new OpCase($"gather x{Fmt.S(shape)} axis {axis} index{Fmt.S(ix)} seed {seed}", [Values(shape, seed)],
                x => x[0].Gather(axis, Indices(ix, shape[axis], seed)).Exp())),
        new("scatter_add", max =>
            from shape in Gens.Shape(3, max, 1).Where(s => s.Length > 0)
            from axis in Gen.Choose(0, shape.Length - 1)
            from seed in Gens.Seed
            select new OpCase($"scatter_add out{Fmt.S(shape)} axis {axis} seed {seed}", [Values(shape, seed)],
                x => Tensor.ScatterAdd(shape, axis, Indices(shape, shape[axis], seed), x[0]).Exp())),
        new("index_select", max =>
            from shape in Gens.Shape(4, max, 1).Where(s => s.Length > 0)
            from axis in Gen.Choose(0, shape.Length - 1)
            from n in Gen.Choose(0, 4)
            from seed in Gens.Seed
            select new OpCase($"index_select x{Fmt.S(shape)} axis {axis} n {n} seed {seed}", [Values(shape, seed)],
                x => x[0].IndexSelect(axis, Indices([n], shape[axis], seed)).Tanh())),
        new("embedding", max =>
            from vocab in Gen.Choose(1, 5)
            from dim in Gen.Choose(0, max)
            from idxShape in Gens.Shape(2, max)
            from seed in Gens.Seed
            select new OpCase($"embedding weight({vocab}, {dim}) indices{Fmt.S(idxShape)} seed {seed}", [Values([vocab, dim], seed)],
                x => Tensor.Embedding(Indices(idxShape, vocab, seed), x[0]).Exp())),

        // ----- matrix products -----
        new("matmul", max =>
            from kind in Gen.Choose(0, 3)
            from m in Gens.Dim(max)
            from k in Gens.Dim(max)
            from n in Gens.Dim(max)
            from batch in Gens.BroadcastPair(2, 2)
            from seed in Gens.Seed
            let a = kind is 0 or 1 ? new[] { k } : [.. batch.A, m, k]
            let b = kind is 0 or 2 ? new[] { k } : [.. batch.B, k, n]
            select new OpCase($"matmul a{Fmt.S(a)} b{Fmt.S(b)} seed {seed}", [Values(a, seed), Values(b, seed + 1)],
                x => Tensor.MatMul(x[0], x[1]))),
        new("linear", max =>
            from batch in Gens.Shape(2, max)
            from inF in Gens.Dim(max)
            from outF in Gens.Dim(max)
            from seed in Gens.Seed
            select new OpCase($"linear x{Fmt.S([.. batch, inF])} w({outF}, {inF}) seed {seed}",
                [Values([.. batch, inF], seed), Values([outF, inF], seed + 1), Values([outF], seed + 2)],
                x => Tensor.Linear(x[0], x[1], x[2]))),
        new("linear_relu", max =>
            from batch in Gens.Dim(max)
            from inF in Gens.Dim(max)
            from outF in Gens.Dim(max)
            from seed in Gens.Seed
            select new OpCase($"linear_relu x({batch}, {inF}) w({outF}, {inF}) seed {seed}",
                [Values([batch, inF], seed), Values([outF, inF], seed + 1), Values([outF], seed + 2)],
                x => Tensor.LinearRelu(x[0], x[1], x[2]))),

        // ----- convolution and pooling -----
        Conv("conv2d", (x, w, b, s, p, d, g) => Tensor.Conv2d(x, w, b, s, p, d, g)),
        Conv("conv2d_relu", (x, w, b, s, p, d, g) => Tensor.Conv2dRelu(x, w, b, s, p, d, g)),
        new("conv_transpose2d", max =>
            (from n in Gen.Choose(1, 2)
             from groups in Gen.Choose(1, 2)
             from cg in Gen.Choose(1, 2)
             from og in Gen.Choose(1, 2)
             from h in Gen.Choose(1, max)
             from w in Gen.Choose(1, max)
             from kh in Gen.Choose(1, 3)
             from kw in Gen.Choose(1, 2)
             from stride in Gen.Choose(1, 2)
             from pad in Gen.Choose(0, 1)
             from dil in Gen.Choose(1, 2)
             from outPad in Gen.Choose(0, 1)
             from bias in Gen.Elements(true, false)
             from seed in Gens.Seed
             select (n, groups, cg, og, h, w, kh, kw, stride, pad, dil, outPad, bias, seed))
            .Where(c => c.outPad < Math.Max(c.stride, c.dil)
                && (c.h - 1) * c.stride - 2 * c.pad + c.dil * (c.kh - 1) + c.outPad + 1 > 0
                && (c.w - 1) - 2 * c.pad + (c.kw - 1) + 1 > 0)
            .Select(c => new OpCase(
                $"conv_transpose2d x({c.n}, {c.groups * c.cg}, {c.h}, {c.w}) w({c.groups * c.cg}, {c.og}, {c.kh}, {c.kw}) stride {c.stride} pad {c.pad} dil {c.dil} output pad {c.outPad} groups {c.groups} bias {c.bias} seed {c.seed}",
                [Values([c.n, c.groups * c.cg, c.h, c.w], c.seed), Values([c.groups * c.cg, c.og, c.kh, c.kw], c.seed + 1), Values([c.groups * c.og], c.seed + 2)],
                x => Tensor.ConvTranspose2d(x[0], x[1], c.bias ? x[2] : null, (c.stride, 1), (c.pad, c.pad), (c.outPad, 0), (c.dil, 1), c.groups)))),
        new("conv1d", max =>
            (from n in Gen.Choose(1, 2)
             from groups in Gen.Choose(1, 2)
             from cg in Gen.Choose(1, 2)
             from og in Gen.Choose(1, 2)
             from l in Gen.Choose(1, max + 3)
             from k in Gen.Choose(1, 3)
             from stride in Gen.Choose(1, 2)
             from pad in Gen.Choose(0, 1)
             from dil in Gen.Choose(1, 2)
             from transposed in Gen.Elements(false, true)
             from seed in Gens.Seed
             select (n, groups, cg, og, l, k, stride, pad, dil, transposed, seed))
            .Where(c => c.transposed ? (c.l - 1) * c.stride - 2 * c.pad + c.dil * (c.k - 1) + 1 > 0 : c.l + 2 * c.pad >= c.dil * (c.k - 1) + 1)
            .Select(c => new OpCase($"conv{(c.transposed ? "_transpose" : "")}1d x({c.n}, {c.groups * c.cg}, {c.l}) k {c.k} stride {c.stride} pad {c.pad} dil {c.dil} groups {c.groups} seed {c.seed}",
                c.transposed
                    ? [Values([c.n, c.groups * c.cg, c.l], c.seed), Values([c.groups * c.cg, c.og, c.k], c.seed + 1), Values([c.groups * c.og], c.seed + 2)]
                    : [Values([c.n, c.groups * c.cg, c.l], c.seed), Values([c.groups * c.og, c.cg, c.k], c.seed + 1), Values([c.groups * c.og], c.seed + 2)],
                x => c.transposed
                    ? Tensor.ConvTranspose1d(x[0], x[1], x[2], c.stride, c.pad, 0, c.dil, c.groups)
                    : Tensor.Conv1d(x[0], x[1], x[2], c.stride, c.pad, c.dil, c.groups)))),
        new("pool1d", max =>
            (from n in Gen.Choose(1, 2)
             from l in Gen.Choose(1, max + 3)
             from k in Gen.Choose(1, 3)
             from stride in Gen.Choose(1, 2)
             from pad in Gen.Choose(0, 1)
             from average in Gen.Elements(false, true)
             from seed in Gens.Seed
             select (n, l, k, stride, pad, average, seed))
            .Where(c => c.pad * 2 <= c.k && c.l + 2 * c.pad >= c.k)
            .Select(c => new OpCase($"{(c.average ? "avg" : "max")}_pool1d x({c.n}, 2, {c.l}) k {c.k} stride {c.stride} pad {c.pad} seed {c.seed}",
                [Values([c.n, 2, c.l], c.seed, Domain.Distinct)],
                x => c.average ? Tensor.AvgPool1d(x[0], c.k, c.stride, c.pad) : Tensor.MaxPool1d(x[0], c.k, c.stride, c.pad)))),
        new("adaptive_avg_pool2d", max =>
            from n in Gen.Choose(1, 2)
            from ch in Gen.Choose(1, 2)
            from h in Gen.Choose(1, max + 2)
            from w in Gen.Choose(1, max + 2)
            from oh in Gen.Choose(1, max + 2)
            from ow in Gen.Choose(1, max + 2)
            from seed in Gens.Seed
            select new OpCase($"adaptive_avg_pool2d x({n}, {ch}, {h}, {w}) to ({oh}, {ow}) seed {seed}",
                [Values([n, ch, h, w], seed)], x => Tensor.AdaptiveAvgPool2d(x[0], (oh, ow)))),
        // Distinct values, and at least two of them a group, keep each group's variance away from 0.
        new("group_norm", max =>
            (from n in Gen.Choose(0, 2)
             from groups in Gen.Choose(1, 2)
             from cg in Gen.Choose(1, 2)
             from spatial in Gens.Shape(2, max)
             from affine in Gen.Elements(true, false)
             from seed in Gens.Seed
             select (n, groups, cg, spatial, affine, seed))
            .Where(c => c.cg * c.spatial.Aggregate(1, (a, d) => a * d) >= 2)
            .Select(c => new OpCase($"group_norm x({c.n}, {c.groups * c.cg}{string.Concat(c.spatial.Select(d => $", {d}"))}) groups {c.groups} affine {c.affine} seed {c.seed}",
                [Values([c.n, c.groups * c.cg, .. c.spatial], c.seed, Domain.Distinct), Values([c.groups * c.cg], c.seed + 1), Values([c.groups * c.cg], c.seed + 2)],
                x => Tensor.GroupNorm(x[0], c.groups, c.affine ? x[1] : null, c.affine ? x[2] : null)))),
        // Distinct values, at least two of them in each normalized slice, keep its variance away from 0.
        new("layer_norm", max =>
            (from lead in Gens.Shape(2, max)
             from normalized in Gens.Shape(2, max, minDim: 1)
             from affine in Gen.Elements(0, 1, 2)
             from seed in Gens.Seed
             select (lead, normalized, affine, seed))
            .Where(c => c.normalized.Aggregate(1, (a, d) => a * d) >= 2)
            .Select(c => new OpCase($"layer_norm x{Fmt.S([.. c.lead, .. c.normalized])} normalized {Fmt.S(c.normalized)} affine {c.affine} seed {c.seed}",
                [Values([.. c.lead, .. c.normalized], c.seed, Domain.Distinct), Values(c.normalized, c.seed + 1), Values(c.normalized, c.seed + 2)],
                x => Tensor.LayerNorm(x[0], c.normalized, c.affine >= 1 ? x[1] : null, c.affine == 2 ? x[2] : null, eps: 1e-3)))),
        AlongAxis("sort", Domain.Distinct, (x, axis) => x.Sort(axis, descending: axis % 2 == 0).Values, minDim: 0),
        AlongAxis("topk", Domain.Distinct, (x, axis) => x.TopK(Math.Min(2, x.Size(axis)), axis).Values, minDim: 0),
        new("interpolate", max =>
            from n in Gen.Choose(1, 2)
            from h in Gen.Choose(1, max + 1)
            from w in Gen.Choose(1, max + 1)
            from oh in Gen.Choose(1, 2 * max + 2)
            from ow in Gen.Choose(1, 2 * max + 2)
            from mode in Gen.Elements((UpsampleMode.Nearest, false), (UpsampleMode.Bilinear, false), (UpsampleMode.Bilinear, true))
            from seed in Gens.Seed
            select new OpCase($"interpolate x({n}, 2, {h}, {w}) to ({oh}, {ow}) {mode.Item1} align corners {mode.Item2} seed {seed}",
                [Values([n, 2, h, w], seed)], x => Tensor.Interpolate(x[0], (oh, ow), mode.Item1, mode.Item2))),
        Pool("max_pool2d", Domain.Distinct, (x, k, s, p) => Tensor.MaxPool2d(x, (k, k), (s, s), (p, p))),
        Pool("avg_pool2d", Domain.Any, (x, k, s, p) => Tensor.AvgPool2d(x, (k, k), (s, s), (p, p))),
        new("unfold_fold", max =>
            (from ch in Gen.Choose(1, 2)
             from h in Gen.Choose(1, max + 2)
             from w in Gen.Choose(1, max + 2)
             from k in Gen.Choose(1, 3)
             from stride in Gen.Choose(1, 2)
             from pad in Gen.Choose(0, 1)
             from seed in Gens.Seed
             select (ch, h, w, k, stride, pad, seed))
            .Where(c => c.h + 2 * c.pad >= c.k && c.w + 2 * c.pad >= c.k)
            .Select(c =>
            {
                var g = new WindowGeometry(c.ch, c.h, c.w, c.k, c.k, c.stride, c.stride, c.pad, c.pad, 1, 1);
                return new OpCase($"unfold/fold x(1, {c.ch}, {c.h}, {c.w}) k {c.k} stride {c.stride} pad {c.pad} seed {c.seed}",
                    [Values([1, c.ch, c.h, c.w], c.seed)], x => Tensor.Fold(Tensor.Unfold(x[0], g).Exp(), g));
            })),
        Unary("dropout", Domain.Any, x => x.Dropout(0.4, training: true, generator: new Generator(7)).Exp()),
        // Attention with no mask, a causal one, a bool mask (each row keeps key 0, so no row is empty), or
        // a float mask that is itself differentiated; dropout on the weights from a fixed seed.
        new("scaled_dot_product_attention", max =>
            from b in Gen.Choose(1, 2)
            from l in Gen.Choose(1, max + 1)
            from s in Gen.Choose(1, max + 1)
            from e in Gen.Choose(1, max)
            from ev in Gen.Choose(1, max)
            from mask in Gen.Elements("none", "causal", "bool", "float", "dropout")
            from seed in Gens.Seed
            select new OpCase($"scaled_dot_product_attention q({b}, {l}, {e}) k({b}, {s}, {e}) v({b}, {s}, {ev}) mask {mask} seed {seed}",
                [Values([b, l, e], seed), Values([b, s, e], seed + 1), Values([b, s, ev], seed + 2), Values([l, s], seed + 3)],
                x => mask switch
                {
                    "causal" => Tensor.ScaledDotProductAttention(x[0], x[1], x[2], isCausal: true),
                    "bool" => Tensor.ScaledDotProductAttention(x[0], x[1], x[2],
                        Tensor.FromArray(Enumerable.Range(0, l * s).Select(i => i % s == 0 || (i + seed % 3) % 3 != 0 ? 1f : 0f).ToArray(), [l, s]).To(DType.Bool)),
                    "float" => Tensor.ScaledDotProductAttention(x[0], x[1], x[2], x[3]),
                    "dropout" => Tensor.ScaledDotProductAttention(x[0], x[1], x[2], dropoutP: 0.3, generator: new Generator(7)),
                    _ => Tensor.ScaledDotProductAttention(x[0], x[1], x[2]),
                })),

        // ----- losses -----
        new("cross_entropy", max =>
            from n in Gens.Dim(max + 1)
            from c in Gen.Choose(1, max + 1)
            from red in Gen.Elements(MiniDeep.Reduction.Mean, MiniDeep.Reduction.Sum, MiniDeep.Reduction.None)
            from seed in Gens.Seed
            where !(n == 0 && red == MiniDeep.Reduction.Mean)
            select new OpCase($"cross_entropy logits({n}, {c}) {red} seed {seed}", [Values([n, c], seed)],
                x => Losses.CrossEntropy(x[0], Indices([n], c, seed), red))),
        new("soft_cross_entropy", max =>
            from n in Gen.Choose(1, max + 1)
            from c in Gen.Choose(1, max + 1)
            from seed in Gens.Seed
            select new OpCase($"soft_cross_entropy logits({n}, {c}) seed {seed}", [Values([n, c], seed), Values([n, c], seed + 1)],
                x => Losses.SoftCrossEntropy(x[0], x[1].Softmax(-1)))),
        new("nll", max =>
            from n in Gen.Choose(1, max + 1)
            from c in Gen.Choose(1, max + 1)
            from seed in Gens.Seed
            select new OpCase($"nll logp({n}, {c}) seed {seed}", [Values([n, c], seed)],
                x => Losses.Nll(x[0].LogSoftmax(-1), Indices([n], c, seed)))),
        new("mse", max =>
            from shape in Gens.Shape(4, max).Where(s => s.Aggregate(1, (a, b) => a * b) > 0)
            from seed in Gens.Seed
            select new OpCase($"mse x{Fmt.S(shape)} seed {seed}", [Values(shape, seed), Values(shape, seed + 1)],
                x => Losses.Mse(x[0], x[1]))),
        new("bce_with_logits", max =>
            from shape in Gens.Shape(4, max).Where(s => s.Aggregate(1, (a, b) => a * b) > 0)
            from seed in Gens.Seed
            select new OpCase($"bce_with_logits x{Fmt.S(shape)} seed {seed}", [Values(shape, seed), Values(shape, seed + 1, Domain.Unit)],
                x => Losses.BceWithLogits(x[0], x[1]))),
        new("kl_div", max =>
            from n in Gen.Choose(1, max + 1)
            from c in Gen.Choose(1, max + 1)
            from seed in Gens.Seed
            select new OpCase($"kl_div ({n}, {c}) seed {seed}", [Values([n, c], seed), Values([n, c], seed + 1)],
                x => Losses.KlDiv(x[0].LogSoftmax(-1), x[1].Softmax(-1)))),
        new("distillation_kl", max =>
            from n in Gen.Choose(1, max + 1)
            from c in Gen.Choose(1, max + 1)
            from t in Gen.Elements(1.0, 2.0, 4.0)
            from seed in Gens.Seed
            select new OpCase($"distillation_kl ({n}, {c}) T {t} seed {seed}", [Values([n, c], seed), Values([n, c], seed + 1)],
                x => Losses.DistillationKl(x[0], x[1], t))),
    ];

    public static TheoryData<string> Names => new(All.Select(s => s.Name));
    public static OpSpec Get(string name) => All.Single(s => s.Name == name);
}
