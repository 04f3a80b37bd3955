namespace MiniDeep.Continual;

/// <summary>
/// The accuracy matrix of a task sequence, R[i, j] = test accuracy on task j after training on tasks
/// 0..i (Lopez-Paz &amp; Ranzato 2017), and the summaries drawn from it.
/// </summary>
public sealed class AccuracyMatrix
{
    private readonly double[,] _r;

    /// <summary>An empty matrix for <paramref name="tasks"/> tasks (entries NaN until set).</summary>
    public AccuracyMatrix(int tasks)
    {
        if (tasks < 1) throw new ArgumentOutOfRangeException(nameof(tasks), $"AccuracyMatrix: at least one task, got {tasks}");
        _r = new double[tasks, tasks];
        for (int i = 0; i < tasks; i++) for (int j = 0; j < tasks; j++) _r[i, j] = double.NaN;
    }

    /// <summary>Number of tasks.</summary>
    public int Tasks => _r.GetLength(0);

    /// <summary>Accuracy on task <paramref name="j"/> after training through task <paramref name="i"/>, a fraction in [0, 1].</summary>
    public double this[int i, int j]
    {
        get => _r[i, j];
        // A percentage (98.5) stored as if it were a fraction would make every summary, and the
        // forgetting ratio against a random classifier's fraction, wrong without any error.
        set => _r[i, j] = value is >= 0 and <= 1 ? value
            : throw new ArgumentOutOfRangeException(nameof(value), $"AccuracyMatrix[{i}, {j}]: an accuracy is a fraction in [0, 1], got {value}");
    }

    /// <summary>A copy of the matrix (rows: after training task i; columns: tested on task j).</summary>
    public double[,] ToArray() => (double[,])_r.Clone();

    /// <summary>Mean accuracy over all tasks at the end, (1/T) Σ_j R[T−1, j].</summary>
    public double AverageAccuracy => Enumerable.Range(0, Tasks).Average(j => _r[Tasks - 1, j]);

    /// <summary>
    /// Backward transfer, (1/(T−1)) Σ_{j&lt;T−1} (R[T−1, j] − R[j, j]): how much learning later tasks changed
    /// the earlier ones; negative is forgetting.
    /// </summary>
    public double BackwardTransfer => Tasks < 2 ? 0 : Enumerable.Range(0, Tasks - 1).Average(j => _r[Tasks - 1, j] - _r[j, j]);

    /// <summary>Accuracy on task <paramref name="j"/> lost between just after learning it and the end.</summary>
    public double Forgetting(int j) => _r[j, j] - _r[Tasks - 1, j];

    /// <summary>
    /// The forgetting ratio of Serrà, Surís, Miron &amp; Karatzoglou (2018) after the last task,
    /// ρ = (1/T) Σ_τ [(A_τ − A_R,τ) / (A_J,τ − A_R,τ) − 1], where A_τ is this matrix's final accuracy on
    /// task τ, A_J,τ the accuracy of a network trained on all tasks jointly, and A_R,τ that of a random
    /// stratified classifier (Σ_c p_c², p_c the class frequencies). ρ ≈ 0: as good as joint training;
    /// ρ ≈ −1: no better than chance.
    /// </summary>
    public double ForgettingRatio(IReadOnlyList<double> joint, IReadOnlyList<double> random) =>
        ForgettingRatio(Enumerable.Range(0, Tasks).Select(t => _r[Tasks - 1, t]).ToArray(), joint, random);

    /// <summary>
    /// The forgetting ratio ρ from the final accuracies alone, one per task (e.g. measured on validation
    /// images rather than on the test images of a whole matrix).
    /// </summary>
    public static double ForgettingRatio(IReadOnlyList<double> final, IReadOnlyList<double> joint, IReadOnlyList<double> random)
    {
        if (final.Count == 0 || joint.Count != final.Count || random.Count != final.Count)
            throw new ArgumentException($"AccuracyMatrix.ForgettingRatio: {joint.Count} joint and {random.Count} random accuracies for {final.Count} tasks");
        for (int t = 0; t < final.Count; t++)
        {
            foreach (var (name, value) in new[] { ("final", final[t]), ("joint", joint[t]), ("random", random[t]) })
                if (!(value is >= 0 and <= 1))
                    throw new ArgumentOutOfRangeException(name, $"AccuracyMatrix.ForgettingRatio: the {name} accuracy of task {t} must be a fraction in [0, 1], got {value}");
            // The ratio is measured against the gap joint training opens over chance; with no gap it is undefined.
            if (!(joint[t] > random[t]))
                throw new ArgumentException($"AccuracyMatrix.ForgettingRatio: task {t}'s joint accuracy {joint[t]} does not exceed the random classifier's {random[t]}, so the ratio is undefined");
        }
        return Enumerable.Range(0, final.Count).Average(t => (final[t] - random[t]) / (joint[t] - random[t]) - 1);
    }

    /// <summary>Accuracy of a random stratified classifier for these labels: Σ_c p_c².</summary>
    public static double RandomStratified(int[] labels)
    {
        if (labels.Length == 0) throw new ArgumentException("AccuracyMatrix.RandomStratified: no labels");
        return labels.GroupBy(l => l).Sum(g => Math.Pow(g.Count() / (double)labels.Length, 2));
    }
}
