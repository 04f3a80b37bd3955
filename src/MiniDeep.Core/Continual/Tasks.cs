using MiniDeep.Data;
using MiniDeep.Nn;

namespace MiniDeep.Continual;

/// <summary>One task of a sequence: its training, test and (optional) validation sets, and the classes it holds.</summary>
/// <param name="Name">How reports name it.</param>
/// <param name="Train">Training examples; labels are 0..Classes−1 within the task for split tasks.</param>
/// <param name="Test">Test examples, labelled the same way.</param>
/// <param name="Classes">Number of classes (the size of its head in a multi-head model).</param>
/// <param name="Validation">Held-out training images of the task, disjoint from <paramref name="Train"/>, for choosing
/// hyperparameters (e.g. EWC's λ) without looking at <paramref name="Test"/>; null when none were asked for.</param>
public sealed record ContinualTask(string Name, TensorDataset Train, TensorDataset Test, int Classes, TensorDataset? Validation = null);

/// <summary>The two standard ways to make a sequence of tasks from one image data set.</summary>
public static class TaskSequences
{
    /// <summary>
    /// Permuted tasks (Goodfellow et al. 2014; Kirkpatrick et al. 2017): each task applies its own fixed
    /// permutation to the pixels of the same images, so the tasks share their labels and differ in their
    /// inputs. With <paramref name="firstUnpermuted"/>, task 1 is the data as it is. Each task draws its own
    /// <paramref name="trainPerTask"/> training images; the test sets are the whole test set, permuted.
    /// With <paramref name="validationPerTask"/> &gt; 0, each task also holds out that many other training
    /// images (permuted alike) as its validation set; the training images drawn are the same either way.
    /// </summary>
    public static List<ContinualTask> Permuted(ImageClassification data, int tasks, int trainPerTask, Generator generator, bool firstUnpermuted = true, int validationPerTask = 0)
    {
        if (tasks < 1) throw new ArgumentOutOfRangeException(nameof(tasks), $"TaskSequences.Permuted: at least one task, got {tasks}");
        if (trainPerTask < 1 || validationPerTask < 0 || trainPerTask + validationPerTask > data.Train.Count)
            throw new ArgumentOutOfRangeException(nameof(trainPerTask),
                $"TaskSequences.Permuted: {trainPerTask} training and {validationPerTask} validation images per task, of {data.Train.Count}");
        int pixels = data.Train.X.Numel / data.Train.Count;
        var result = new List<ContinualTask>();
        for (int t = 0; t < tasks; t++)
        {
            var permutation = t == 0 && firstUnpermuted ? null : Tensor.RandPerm(pixels, generator);
            var order = Tensor.RandPerm(data.Train.Count, generator);
            TensorDataset Take(int start, int count) => Permute(Pick(data.Train, order, start, count), permutation);
            var test = Permute(data.Test, permutation);
            result.Add(new ContinualTask(permutation is null ? "task 1 (unpermuted)" : $"task {t + 1} (permuted)", Take(0, trainPerTask), test, data.Classes,
                validationPerTask > 0 ? Take(trainPerTask, validationPerTask) : null));
        }
        return result;
    }

    /// <summary>
    /// Split tasks (Zenke et al. 2017): task k holds the classes of group k, relabelled 0..|group|−1 in the
    /// order given, for a multi-head model with one head per task. With <paramref name="validationPerTask"/>
    /// &gt; 0, each task also holds out that many of its classes' other training images as its validation
    /// set (then <paramref name="trainPerTask"/> and a generator are needed); the training images drawn are
    /// the same either way.
    /// </summary>
    public static List<ContinualTask> Split(ImageClassification data, IReadOnlyList<int[]> classGroups, int? trainPerTask = null, Generator? generator = null, int validationPerTask = 0)
    {
        if (validationPerTask < 0 || (validationPerTask > 0 && trainPerTask is null))
            throw new ArgumentOutOfRangeException(nameof(validationPerTask), $"TaskSequences.Split: {validationPerTask} validation images per task need a trainPerTask");
        var seen = new HashSet<int>();
        if (classGroups.Count == 0) throw new ArgumentException("TaskSequences.Split: no class groups");
        for (int t = 0; t < classGroups.Count; t++)
        {
            if (classGroups[t].Length == 0) throw new ArgumentException($"TaskSequences.Split: group {t} has no classes");
            foreach (var c in classGroups[t])
            {
                if (c < 0 || c >= data.Classes) throw new ArgumentException($"TaskSequences.Split: class {c} in group {t} lies outside the data's {data.Classes} classes");
                if (!seen.Add(c)) throw new ArgumentException($"TaskSequences.Split: class {c} appears twice (second time in group {t}); each class belongs to one task");
            }
        }
        var result = new List<ContinualTask>();
        foreach (var group in classGroups)
        {
            var pool = Select(data.Train, group);
            var (train, validation) = (pool, (TensorDataset?)null);
            if (trainPerTask is int n && (n < pool.Count || validationPerTask > 0))
            {
                if (n + validationPerTask > pool.Count)
                    throw new ArgumentOutOfRangeException(nameof(trainPerTask),
                        $"TaskSequences.Split: {n} training and {validationPerTask} validation images for classes {string.Join("/", group)}, which have {pool.Count}");
                var order = Tensor.RandPerm(pool.Count, generator ?? throw new ArgumentNullException(nameof(generator), "TaskSequences.Split: a generator is needed to subsample"));
                train = Pick(pool, order, 0, n);
                if (validationPerTask > 0) validation = Pick(pool, order, n, validationPerTask);
            }
            result.Add(new ContinualTask($"classes {string.Join("/", group)}", train, Select(data.Test, group), group.Length, validation));
        }
        return result;
    }

    // Examples order[start], …, order[start + count − 1] of a data set.
    private static TensorDataset Pick(TensorDataset d, Tensor order, int start, int count)
    {
        var pick = order.Narrow(0, start, count);
        return new TensorDataset(d.X.IndexSelect(0, pick), d.Y.IndexSelect(0, pick));
    }

    // The same permutation of the pixels applied to every image; the labels stay.
    private static TensorDataset Permute(TensorDataset d, Tensor? permutation)
    {
        if (permutation is null) return d;
        int n = d.X.Size(0);
        return new TensorDataset(d.X.Reshape(n, -1).IndexSelect(1, permutation).Reshape(d.X.Shape.ToArray()), d.Y);
    }

    private static TensorDataset Select(TensorDataset d, int[] group)
    {
        var labels = d.Y.ToArray<int>();
        var index = new Dictionary<int, int>();
        for (int i = 0; i < group.Length; i++) index[group[i]] = i;
        var keep = Enumerable.Range(0, labels.Length).Where(i => index.ContainsKey(labels[i])).ToArray();
        var pick = Tensor.FromArray(keep);
        return new TensorDataset(d.X.IndexSelect(0, pick), Tensor.FromArray(keep.Select(i => index[labels[i]]).ToArray()));
    }
}

/// <summary>
/// A model with one output head per task, told which task its next forward pass is for
/// (task-incremental learning: the task is known at test time). <see cref="MultiHead"/> and
/// <see cref="HatMlp"/> are two; code that evaluates every task needs only this.
/// </summary>
public interface ITaskConditioned
{
    /// <summary>The task (0-based) the next forward pass is for.</summary>
    int ActiveTask { get; set; }
    /// <summary>Number of tasks the model has heads for.</summary>
    int Tasks { get; }
}

/// <summary>
/// A shared trunk with one output head per task; <see cref="ActiveTask"/> picks the head a forward pass
/// uses (task-incremental learning: the task is known at test time).
/// </summary>
public sealed class MultiHead : Module, ITaskConditioned
{
    private readonly Module _trunk;
    private readonly Module[] _heads;

    /// <summary>A trunk and its heads, one per task.</summary>
    public MultiHead(Module trunk, params Module[] heads)
    {
        if (heads.Length == 0) throw new ArgumentException("MultiHead: at least one head");
        _trunk = RegisterModule("trunk", trunk);
        _heads = heads;
        for (int i = 0; i < heads.Length; i++) RegisterModule($"head{i}", heads[i]);
    }

    /// <summary>The head the next forward pass uses (0-based).</summary>
    public int ActiveTask
    {
        get => _active;
        set => _active = (uint)value < (uint)_heads.Length ? value : throw new ArgumentOutOfRangeException(nameof(value), $"MultiHead: task {value} of {_heads.Length}");
    }
    private int _active;

    /// <inheritdoc/>
    public int Tasks => _heads.Length;

    /// <summary>The shared trunk.</summary>
    public Module Trunk => _trunk;
    /// <summary>The heads.</summary>
    public IReadOnlyList<Module> Heads => _heads;

    /// <inheritdoc/>
    protected override Tensor ForwardImpl(Tensor x) => _heads[_active].Forward(_trunk.Forward(x));

    /// <inheritdoc/>
    public override string Describe() => $"MultiHead({_heads.Length} heads)";
}

/// <summary>
/// Rehearsal memory (Robins 1995; Chaudhry et al. 2019): a fixed number of examples kept from each task
/// seen, chosen at random, to be mixed into the batches of later tasks.
/// </summary>
public sealed class ReplayBuffer(int perTask, Generator generator)
{
    private readonly List<(int Task, TensorDataset Data)> _stored = [];

    /// <summary>Examples kept per task.</summary>
    public int PerTask { get; } = perTask > 0 ? perTask : throw new ArgumentOutOfRangeException(nameof(perTask), $"ReplayBuffer: a positive number of examples per task, got {perTask}");

    /// <summary>Examples stored, over all tasks.</summary>
    public int Count => _stored.Sum(s => s.Data.Count);

    /// <summary>Stores <see cref="PerTask"/> random examples of <paramref name="data"/> (all of them when it has fewer).</summary>
    public void Add(int task, TensorDataset data)
    {
        if (task < 0) throw new ArgumentOutOfRangeException(nameof(task), $"ReplayBuffer.Add: task must be non-negative, got {task}");
        if (_stored.Any(s => s.Task == task))
            throw new ArgumentException($"ReplayBuffer.Add: task {task} is already stored (adding it again would give it twice the share of every replayed batch)");
        if (data.Count == 0) throw new ArgumentException($"ReplayBuffer.Add: task {task} has no examples");
        if (_stored.Count > 0)
        {
            var first = _stored[0].Data;
            // Checked here, not when a later batch is drawn, so the error names the task that does not fit.
            if (!data.X.Dims.AsSpan(1).SequenceEqual(first.X.Dims.AsSpan(1)) || data.X.DType != first.X.DType
                || !data.Y.Dims.AsSpan(1).SequenceEqual(first.Y.Dims.AsSpan(1)) || data.Y.DType != first.Y.DType)
                throw new ShapeMismatchException("ReplayBuffer.Add",
                    $"ReplayBuffer.Add: task {task}'s examples {data.X.Shape} {data.X.DType.Name()} and targets {data.Y.Shape} {data.Y.DType.Name()} do not match the stored ones {first.X.Shape} {first.X.DType.Name()} and {first.Y.Shape} {first.Y.DType.Name()} beyond axis 0");
        }
        int n = Math.Min(PerTask, data.Count);
        var pick = Tensor.RandPerm(data.Count, generator).Narrow(0, 0, n);
        _stored.Add((task, new TensorDataset(data.X.IndexSelect(0, pick), data.Y.IndexSelect(0, pick))));
        _joined = null;
    }

    private (Tensor X, Tensor Y, int[] Tasks)? _joined;

    /// <summary><paramref name="count"/> stored examples drawn uniformly with replacement, with their tasks; null when empty.</summary>
    public (Tensor X, Tensor Y, int[] Tasks)? Sample(int count)
    {
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count), $"ReplayBuffer.Sample: count must be non-negative, got {count}");
        int total = Count;
        if (total == 0) return null;
        _joined ??= (Tensor.Concat(_stored.Select(s => s.Data.X).ToList()), Tensor.Concat(_stored.Select(s => s.Data.Y).ToList()),
            _stored.SelectMany(s => Enumerable.Repeat(s.Task, s.Data.Count)).ToArray());
        var (all, labels, tasks) = _joined.Value;
        var draw = Tensor.Rand(new Shape(count), generator, dtype: DType.Float64).ToArray<double>().Select(u => Math.Min((int)(u * total), total - 1)).ToArray();
        var index = Tensor.FromArray(draw);
        return (all.IndexSelect(0, index), labels.IndexSelect(0, index), draw.Select(i => tasks[i]).ToArray());
    }
}
