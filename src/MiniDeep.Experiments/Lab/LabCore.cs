using System.Globalization;
using MiniDeep.Data;

namespace MiniDeep.Experiments.Lab;

/// <summary>How much compute a claim may spend.</summary>
public enum Budget
{
    /// <summary>SynthDigits, at most about 30 s per claim, with its own pass lines: what the tests run.</summary>
    Smoke,
    /// <summary>Fashion-MNIST, the whole lab within 15 minutes on the reference machine: the committed reports.</summary>
    Standard,
    /// <summary>Closer to paper scale: more seeds, epochs and images.</summary>
    Full,
}

/// <summary>How a measured value is compared with its pass line.</summary>
public enum Comparison
{
    /// <summary>value ≥ threshold.</summary>
    AtLeast,
    /// <summary>value ≤ threshold.</summary>
    AtMost,
    /// <summary>value &lt; threshold.</summary>
    Below,
    /// <summary>value &gt; threshold.</summary>
    Above,
}

/// <summary>One pass line of a claim: what was measured, against what, and whether it held.</summary>
/// <param name="Name">Short identifier, e.g. "fgsm_error_softmax".</param>
/// <param name="Description">What the number is, in words, for the report.</param>
/// <param name="Value">The measured value.</param>
/// <param name="Op">How it is compared with <paramref name="Threshold"/>.</param>
/// <param name="Threshold">The pass line.</param>
/// <param name="Paper">The paper's own number for the same quantity, in words (it is often on other data).</param>
/// <param name="Format">How to print the value and threshold: "P1" for percentages, "G3" for plain numbers.</param>
public sealed record Check(string Name, string Description, double Value, Comparison Op, double Threshold, string Paper, string Format = "G3")
{
    /// <summary>Whether the value satisfies the pass line (NaN never does).</summary>
    public bool Passed => Op switch
    {
        Comparison.AtLeast => Value >= Threshold,
        Comparison.AtMost => Value <= Threshold,
        Comparison.Below => Value < Threshold,
        Comparison.Above => Value > Threshold,
        _ => false,
    };

    /// <summary>The comparison as a symbol.</summary>
    public string Symbol => Op switch { Comparison.AtLeast => "≥", Comparison.AtMost => "≤", Comparison.Above => ">", _ => "<" };

    /// <summary>The measured value, formatted.</summary>
    public string ValueText => Fmt(Value);

    /// <summary>The pass line, formatted, e.g. "≥ 95.0%".</summary>
    public string ThresholdText => $"{Symbol} {Fmt(Threshold)}";

    private string Fmt(double v) => Report.Format(v, Format);
}

/// <summary>A paper cited by a claim, with the headline number the claim compares against.</summary>
public sealed record Citation(string Authors, int Year, string Title, string Headline);

/// <summary>What running one claim produced.</summary>
public sealed record ClaimResult(string Id, string Title, IReadOnlyList<Check> Checks, double Seconds, string Dataset, Budget Budget, ulong Seed)
{
    /// <summary>A claim reproduces when every one of its pass lines holds.</summary>
    public bool Reproduced => Checks.Count > 0 && Checks.All(c => c.Passed);
}

/// <summary>
/// One claim of the essay as an experiment: it states the claim, cites the papers, runs at a budget,
/// and writes its report. Implementations are small classes in Claims/ that call Core's tools.
/// </summary>
public interface IClaim
{
    /// <summary>The id used on the command line, e.g. "adversarial".</summary>
    string Id { get; }
    /// <summary>A title for tables.</summary>
    string Title { get; }
    /// <summary>The claim in one sentence.</summary>
    string Statement { get; }
    /// <summary>The papers and their headline numbers.</summary>
    IReadOnlyList<Citation> Papers { get; }
    /// <summary>Runs the experiment, filling the report; returns the pass-line checks.</summary>
    IReadOnlyList<Check> Run(LabContext context, Report report);
}

/// <summary>Everything a claim needs from the lab: budget, seed, data, output, log, generators.</summary>
public sealed class LabContext
{
    /// <summary>Creates a context; <paramref name="data"/> is the data set the budget calls for.</summary>
    public LabContext(Budget budget, ulong seed, ImageClassification data, string outDir, TextWriter log)
    {
        Budget = budget;
        Seed = seed;
        Data = data;
        OutDir = outDir;
        Log = log;
    }

    /// <summary>The budget.</summary>
    public Budget Budget { get; }
    /// <summary>The lab seed; every generator of the run derives from it.</summary>
    public ulong Seed { get; }
    /// <summary>Images in [0, 1], (N, 1, 28, 28), and int32 labels.</summary>
    public ImageClassification Data { get; }
    /// <summary>The claim's output directory.</summary>
    public string OutDir { get; }
    /// <summary>Progress lines.</summary>
    public TextWriter Log { get; }

    /// <summary>A generator for one named purpose and repetition, derived from the lab seed so that
    /// adding a draw in one place does not shift the random numbers of another.</summary>
    public Generator Rng(string purpose, int repetition = 0)
    {
        ulong h = 14695981039346656037UL;
        foreach (char ch in purpose) h = (h ^ ch) * 1099511628211UL;
        var (a, b, _, _) = Philox.Block(Seed, h ^ (ulong)repetition, 0);
        return new Generator(((ulong)a << 32) | b);
    }

    /// <summary>Picks the value for the current budget.</summary>
    public T ByBudget<T>(T smoke, T standard, T full) => Budget switch { Budget.Smoke => smoke, Budget.Standard => standard, _ => full };

    /// <summary>Writes an indented progress line to the log (safe from concurrent runs).</summary>
    public void Say(string line)
    {
        lock (Log) Log.WriteLine($"  {line}");
    }

    /// <summary>
    /// Runs independent trainings <paramref name="body"/>(0 … count-1) side by side, one per core.
    /// Inside a run every kernel is serial (nested parallel regions run inline), and kernels give the
    /// same bits on any number of threads, so the results are exactly those of running the trainings
    /// one after another; only the wall time changes. Small models (an MLP at batch 128) keep two cores
    /// busier this way than by splitting each GEMM between them.
    /// </summary>
    public static void Concurrently(int count, Action<int> body) => Parallelism.For(count, body);
}
