using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using MiniDeep.Data;
using MiniDeep.Experiments.Lab.Claims;
using MiniDeep.IO;

namespace MiniDeep.Experiments.Lab;

/// <summary>The settings of one `lab run`.</summary>
public sealed record LabOptions(IReadOnlyList<string> Ids, Budget Budget, ulong Seed, string? DataDir, string OutRoot, string Device, string? JsonPath,
    Sweeps.Shard? Shard = null);

/// <summary>
/// Runs claims and writes what they found: each claim's report under &lt;out&gt;/&lt;id&gt;/, the summary
/// table &lt;out&gt;/README.md (rebuilt from every claim directory present, so runs of single claims
/// add up), and optionally the JSON summary of this run.
/// </summary>
public static class LabRunner
{
    /// <summary>Every claim, in the essay's order.</summary>
    public static IReadOnlyList<IClaim> All { get; } =
        [new AdversarialClaim(), new SolutionSpaceClaim(), new MemorizationClaim(), new CompressionClaim(), new InitOrderClaim(), new ForgettingClaim(), new TricksClaim()];

    /// <summary>Claims being built: they run when named and in the smoke tests, and the summary table lists
    /// them when their reports are present, but they are not part of "all" until every part their issue
    /// names is in, reproduces, and fits the lab's time. (None at present.)</summary>
    public static IReadOnlyList<IClaim> InProgress { get; } = [];

    private static IEnumerable<IClaim> Known => All.Concat(InProgress);

    /// <summary>The claims named by a comma-separated list ("all" for every one), or an error naming the unknown ids.</summary>
    public static IReadOnlyList<IClaim> Resolve(string spec)
    {
        var ids = spec.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (ids.Length == 0) throw new ArgumentException("lab run: name at least one claim, or 'all'");
        if (ids.Contains("all")) return All;
        var unknown = ids.Where(id => Known.All(c => c.Id != id)).ToArray();
        if (unknown.Length > 0)
            throw new ArgumentException($"lab run: unknown claim {string.Join(", ", unknown.Select(u => $"'{u}'"))}; the claims are {string.Join(", ", All.Select(c => c.Id))}" +
                (InProgress.Count > 0 ? $" (in progress: {string.Join(", ", InProgress.Select(c => c.Id))})" : ""));
        return ids.Distinct().Select(id => Known.First(c => c.Id == id)).ToArray();
    }

    /// <summary>Loads the data the budget calls for: SynthDigits for smoke; Fashion-MNIST otherwise,
    /// falling back to SynthDigits (and saying so) when it is not installed and no --data was given.</summary>
    public static ImageClassification LoadData(Budget budget, ulong seed, string? dataDir, TextWriter log)
    {
        if (budget == Budget.Smoke)
        {
            var clock = Stopwatch.StartNew();
            var synth = SynthDigits.Load(seed, trainCount: 12_000, testCount: 2_000);
            log.WriteLine($"smoke budget: SynthDigits, {synth.Train.Count:N0} + {synth.Test.Count:N0} images generated in {clock.Elapsed.TotalSeconds:F1} s");
            return synth;
        }
        return Train.LoadData(dataDir, seed, log);
    }

    /// <summary>The context a <c>lab explore</c> command runs one part of a claim in: the budget's data and the lab seed's
    /// generators, as <c>lab run</c> would give the claim, with no report directory of its own.</summary>
    public static LabContext ExploreContext(Budget budget, ulong seed, string? dataDir, TextWriter log) =>
        new(budget, seed, LoadData(budget, seed, dataDir, log), Path.GetTempPath(), log);

    /// <summary>Runs the claims; returns the process exit code (0 when all reproduced, 1 otherwise). With
    /// a shard, runs only that shard's claims (see <see cref="RunShard"/>).</summary>
    public static int Run(LabOptions o, TextWriter log)
    {
        if (o.Device != "cpu")
            throw new ArgumentException($"lab run: device '{o.Device}' is not available in this build; the lab runs on 'cpu'");
        OutputPaths.WritableDirectory("--out", o.OutRoot);
        OutputPaths.WritableFile("--json", o.JsonPath);
        if (o.Shard is { } shard) return RunShard(o, shard, log);
        var total = Stopwatch.StartNew();
        var claims = Resolve(string.Join(',', o.Ids));
        var data = LoadData(o.Budget, o.Seed, o.DataDir, log);
        var results = claims.Select(claim => RunClaim(claim, o, data, log)).ToList();
        WriteSummaryTable(o.OutRoot);
        double seconds = total.Elapsed.TotalSeconds;
        if (o.JsonPath is { } path)
        {
            var json = new JsonObject
            {
                ["claims"] = new JsonArray(results.Select(r => (JsonNode)Report.ClaimJson(r)).ToArray()),
                ["total_seconds"] = Math.Round(seconds, 2),
            };
            AtomicFile.WriteAllText(path, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        }
        int reproduced = results.Count(r => r.Reproduced);
        log.WriteLine($"{reproduced} of {results.Count} claims reproduced in {seconds:F0} s; table: {Path.Combine(o.OutRoot, "README.md")}");
        return reproduced == results.Count ? 0 : 1;
    }

    private static ClaimResult RunClaim(IClaim claim, LabOptions o, ImageClassification data, TextWriter log)
    {
        log.WriteLine($"[{claim.Id}] {claim.Statement}");
        var clock = Stopwatch.StartNew();
        var dir = Path.Combine(o.OutRoot, claim.Id);
        var context = new LabContext(o.Budget, o.Seed, data, dir, log);
        var report = new Report(log, claim.Id);
        var checks = claim.Run(context, report);
        var result = new ClaimResult(claim.Id, claim.Title, checks, clock.Elapsed.TotalSeconds, data.Name, o.Budget, o.Seed);
        report.Write(dir, claim, result, Machine());
        foreach (var c in checks)
            log.WriteLine($"  {(c.Passed ? "pass" : "FAIL")}  {c.Description}: {c.ValueText} (pass line {c.ThresholdText})");
        log.WriteLine($"[{claim.Id}] {(result.Reproduced ? "reproduced" : "NOT reproduced")} in {result.Seconds:F0} s; report: {Path.Combine(dir, "report.md")}");
        log.WriteLine($"  (buffer pool so far: {Cpu.BufferPool.Hits:N0} hits, {Cpu.BufferPool.Misses:N0} misses, {Cpu.BufferPool.Evicted:N0} evicted, " +
                      $"{Cpu.BufferPool.PooledBytes >> 20:N0} MB idle, {Cpu.BufferPool.Collections:N0} collections asked for)");
        return result;
    }

    // The claims of one run as a sweep whose units are the claim ids: a job array runs
    // `lab run all --shard i/n --out DIR` with i = 0 … n−1 on a shared DIR, then `lab merge all --out DIR`.
    private static Sweeps.Sweep<JsonNode> ClaimSweep(IReadOnlyList<IClaim> claims, Func<string, JsonNode> run) =>
        new("lab", claims.Select(c => c.Id).ToList(), run);

    /// <summary>
    /// Runs the claims of one shard (claim k of the list when k mod n = i), each writing its report
    /// directory under the output root as usual, and records their verdicts in
    /// &lt;out&gt;/shards/lab.shard-i-of-n.json; a shard run again skips the claims it already finished.
    /// Returns 0 when its claims reproduced.
    /// </summary>
    public static int RunShard(LabOptions o, Sweeps.Shard shard, TextWriter log)
    {
        var claims = Resolve(string.Join(',', o.Ids));
        ImageClassification? data = null;
        var sweep = ClaimSweep(claims, id =>
        {
            data ??= LoadData(o.Budget, o.Seed, o.DataDir, log);
            return Report.ClaimJson(RunClaim(claims.First(c => c.Id == id), o, data, log));
        });
        log.WriteLine($"shard {shard}: {string.Join(", ", sweep.UnitsOf(shard).DefaultIfEmpty("(no claims)"))}");
        var results = sweep.Run(shard, Path.Combine(o.OutRoot, "shards"), log);
        return results.Values.All(r => r!["reproduced"]!.GetValue<bool>()) ? 0 : 1;
    }

    /// <summary>
    /// After every shard of a sharded run: checks that each claim has a verdict (naming the missing
    /// ones and the shards that wrote nothing), rebuilds the summary table, and returns 0 when every
    /// claim reproduced, 1 when one did not.
    /// </summary>
    public static int Merge(IReadOnlyList<string> ids, string outRoot, TextWriter log)
    {
        var claims = Resolve(string.Join(',', ids));
        var results = ClaimSweep(claims, _ => throw new InvalidOperationException("merge runs nothing")).Merge(Path.Combine(outRoot, "shards"));
        WriteSummaryTable(outRoot);
        foreach (var r in results)
            log.WriteLine($"[{r!["id"]}] {(r["reproduced"]!.GetValue<bool>() ? "reproduced" : "NOT reproduced")} in {r["seconds"]} s");
        int reproduced = results.Count(r => r!["reproduced"]!.GetValue<bool>());
        log.WriteLine($"{reproduced} of {results.Count} claims reproduced; table: {Path.Combine(outRoot, "README.md")}");
        return reproduced == results.Count ? 0 : 1;
    }

    /// <summary>Rebuilds &lt;root&gt;/README.md from the metrics.json of every claim directory under it.</summary>
    public static void WriteSummaryTable(string root)
    {
        var sb = new StringBuilder();
        sb.Append("# The claims lab: results\n\n");
        sb.Append("Each row is one pass line of a claim of J. Serrà's essay *When the state of the art is ahead of the state of understanding: ");
        sb.Append("unintuitive properties of deep neural networks*, measured by MiniDeep's own engine. A claim is reproduced when all its pass lines hold. ");
        sb.Append("The paper's numbers are often on other data (MNIST, CIFAR-10); each report says which.\n\n");
        sb.Append("| claim | check | the paper says | we measured | pass line | holds? |\n|---|---|---|---|---|---|\n");
        var runs = new List<string>();
        foreach (var claim in Known)
        {
            var file = Path.Combine(root, claim.Id, "metrics.json");
            if (!File.Exists(file)) continue;
            var m = JsonNode.Parse(File.ReadAllText(file))!;
            bool reproduced = m["reproduced"]!.GetValue<bool>();
            var checks = m["checks"]!.AsArray();
            bool first = true;
            foreach (var c in checks)
            {
                string head = first ? $"[{claim.Id}]({claim.Id}/report.md): **{(reproduced ? "reproduced" : "not reproduced")}**" : "";
                first = false;
                var v = c!["value"];
                string value = v is null ? "n/a" : Format(v.GetValue<double>(), c);
                sb.Append($"| {head} | {Report.Cell(c["description"]!.GetValue<string>())} | {Report.Cell(c["paper"]!.GetValue<string>())} | {value} | {c["comparison"]} {Format(c["threshold"]!.GetValue<double>(), c)} | {(c["passed"]!.GetValue<bool>() ? "yes" : "**no**")} |\n");
            }
            runs.Add($"| {claim.Id} | {m["dataset"]} | {m["seed"]} | {m["budget"]} | {m["seconds"]!.GetValue<double>():F0} s |");
        }
        sb.Append("\n| claim | data set | seed | budget | wall time |\n|---|---|---|---|---|\n");
        foreach (var r in runs) sb.Append(r).Append('\n');
        sb.Append($"\nMachine: {Machine()}. Run `dotnet run -c Release --project src/MiniDeep.Experiments -- lab run all` to regenerate.\n");
        AtomicFile.WriteAllText(Path.Combine(root, "README.md"), sb.ToString());
    }

    private static string Format(double value, JsonNode check) =>
        Report.Format(value, check["format"]?.GetValue<string>() ?? "G3");

    /// <summary>The machine in a few words, for reports.</summary>
    public static string Machine()
    {
        string cpu = "unknown CPU";
        try
        {
            var line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
            if (line is not null) cpu = line[(line.IndexOf(':') + 1)..].Trim();
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        // The kernels sum in an order that depends on the vector width, so the last bits of a report's
        // figures differ between an AVX-512 and an AVX2 machine of the same name ("AMD EPYC"): say which ran.
        string simd = MiniDeep.Cpu.Gemm.VectorWidth switch
        {
            16 => "512-bit SIMD",
            8 => "256-bit SIMD",
            4 => "128-bit SIMD",
            _ => "scalar kernels",
        };
        return $"{cpu}, {Environment.ProcessorCount} cores, {simd}, {RuntimeInformation.FrameworkDescription}";
    }
}
