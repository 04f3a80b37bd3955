using System.Text.Json.Nodes;
using MiniDeep.Experiments.Lab;
using MiniDeep.Experiments.Lab.Claims;
using MiniDeep.Nn;
using Xunit;

namespace MiniDeep.Tests.Lab;

/// <summary>
/// Every claim at the smoke budget (SynthDigits, about 30 s each): it must run, write its report,
/// plots and metrics, and reach its verdict. The smoke pass lines are stated in each claim.
/// </summary>
public class ClaimSmokeTests(ITestOutputHelper output)
{
    // Claims in progress too: a part that is in must run and reproduce at its smoke budget.
    public static TheoryData<string> Claims => new(LabRunner.All.Concat(LabRunner.InProgress).Select(c => c.Id));

    // A line that does not reproduce at the standard budget (issue 6; the report gives the measurements)
    // and whose smoke value is noise: the plain depth-20 network is still on its plateau there (training
    // loss about 2), and the ratio gave 1.11 with AVX2 kernels where the AVX-512 machine passed it. The
    // smoke test reports it and asserts every other line. (HAT against EWC, the other line short at the
    // standard budget, is asserted: at the smoke budget HAT is ahead by 0.06 in ρ.)
    private static readonly HashSet<string> NotAssertedAtSmoke = ["landscape_convexity_ratio"];

    [Theory]
    [MemberData(nameof(Claims))]
    public void Claim_ReproducesAtSmokeBudget_AndWritesItsReport(string id)
    {
        var root = Path.Combine(Path.GetTempPath(), $"minideep-lab-{id}-{Guid.NewGuid():N}");
        try
        {
            var json = Path.Combine(root, "run.json");
            var log = new StringWriter();
            int code = LabRunner.Run(new LabOptions([id], Budget.Smoke, 0, null, root, "cpu", json), log);
            var run = JsonNode.Parse(File.ReadAllText(json))!;
            var claim = run["claims"]![0]!;
            var checks = claim["checks"]!.AsArray().Select(c => c!).ToArray();
            var failed = checks.Where(c => !c["passed"]!.GetValue<bool>()).Select(c => c["name"]!.GetValue<string>()).ToArray();
            var unexpected = failed.Where(n => !NotAssertedAtSmoke.Contains(n)).ToArray();
            Assert.True(unexpected.Length == 0, $"{id} did not reproduce at smoke budget: {string.Join("; ", unexpected)}\n{log}");
            foreach (var c in checks.Where(c => NotAssertedAtSmoke.Contains(c["name"]!.GetValue<string>())))
                output.WriteLine($"{c["name"]} = {c["value"]} (pass line {c["threshold"]}): {(c["passed"]!.GetValue<bool>() ? "holds" : "fails")} at the smoke budget, not asserted");
            bool reproduced = failed.Length == 0;
            Assert.Equal(reproduced, claim["reproduced"]!.GetValue<bool>());
            Assert.Equal(reproduced ? 0 : 1, code);
            Assert.Equal(id, claim["id"]!.GetValue<string>());
            Assert.True(claim["seconds"]!.GetValue<double>() > 0);
            Assert.True(run["total_seconds"]!.GetValue<double>() >= claim["seconds"]!.GetValue<double>());

            var dir = Path.Combine(root, id);
            var report = File.ReadAllText(Path.Combine(dir, "report.md"));
            Assert.Contains(reproduced ? "**Verdict: reproduced**" : "**Verdict: NOT reproduced**", report);
            Assert.Contains("| check | we measured | pass line | the paper says | holds? |", report);
            var pngs = Directory.GetFiles(dir, "*.png");
            Assert.NotEmpty(pngs);
            foreach (var png in pngs)
            {
                Assert.Contains($"]({Path.GetFileName(png)})", report);
                var head = File.ReadAllBytes(png).AsSpan(0, 8).ToArray();
                Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }, head);
            }
            var metrics = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "metrics.json")))!;
            Assert.Equal("smoke", metrics["budget"]!.GetValue<string>());
            // Figures differ in their last bits between vector widths, so both files say which kernels ran.
            var machine = metrics["machine"]!.GetValue<string>();
            Assert.Equal(LabRunner.Machine(), machine);
            Assert.Contains(MiniDeep.Cpu.Gemm.VectorWidth switch { 16 => "512-bit SIMD", 8 => "256-bit SIMD", 4 => "128-bit SIMD", _ => "scalar kernels" }, machine);
            Assert.Contains($" s on {machine}.", report);
            Assert.Equal(claim["checks"]!.AsArray().Count, metrics["checks"]!.AsArray().Count);
            var table = File.ReadAllText(Path.Combine(root, "README.md"));
            Assert.Contains($"[{id}]({id}/report.md)", table);
        }
        finally
        {
            if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
        }
    }
}

public class LabRunnerTests
{
    // A sharded run writes its verdicts where the merge looks for them, and the merge refuses to
    // build the table while a shard is missing, naming the claim and the shard. (Shard 1 of 2 of a
    // one-claim list runs nothing, so this test trains nothing; the sweep's own tests cover the rest.)
    [Fact]
    public void ShardedRun_AndMerge_NameTheMissingShard()
    {
        var root = Path.Combine(Path.GetTempPath(), $"minideep-shards-{Guid.NewGuid():N}");
        try
        {
            var log = new StringWriter();
            int code = LabRunner.Run(new LabOptions(["tricks"], Budget.Smoke, 0, null, root, "cpu", null, MiniDeep.Sweeps.Shard.Parse("1/2")), log);
            Assert.Equal(0, code);
            Assert.Contains("shard 1/2: (no claims)", log.ToString());
            Assert.True(File.Exists(Path.Combine(root, "shards", "lab.shard-1-of-2.json")));
            var e = Assert.Throws<InvalidDataException>(() => LabRunner.Merge(["tricks"], root, new StringWriter()));
            Assert.Contains("tricks", e.Message);
            Assert.Contains("shards 0/2 wrote no file", e.Message);
        }
        finally
        {
            if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public void Resolve_KnowsAllAndEachClaim_AndNamesUnknownOnes()
    {
        Assert.Equal(LabRunner.All.Select(c => c.Id), LabRunner.Resolve("all").Select(c => c.Id));
        // The essay's order: dumb errors, the solution space, memorization, compression, initialization and
        // order, forgetting, the tricks.
        Assert.Equal(["adversarial", "solution-space", "memorization", "compression", "init-order", "forgetting", "tricks"], LabRunner.All.Select(c => c.Id));
        Assert.Equal("init-order", Assert.Single(LabRunner.Resolve("init-order")).Id);
        // A claim still being built runs when named, and is not part of "all".
        foreach (var c in LabRunner.InProgress)
        {
            Assert.Equal(c.Id, Assert.Single(LabRunner.Resolve(c.Id)).Id);
            Assert.DoesNotContain(LabRunner.Resolve("all"), a => a.Id == c.Id);
        }
        Assert.Equal(["tricks", "adversarial"], LabRunner.Resolve("tricks, adversarial").Select(c => c.Id));
        var ex = Assert.Throws<ArgumentException>(() => LabRunner.Resolve("adversarial,telepathy"));
        Assert.Contains("'telepathy'", ex.Message);
        Assert.Contains("memorization", ex.Message);
        Assert.Throws<ArgumentException>(() => LabRunner.Resolve(" , "));
    }

    [Fact]
    public void Run_RefusesADeviceItDoesNotHave()
    {
        var ex = Assert.Throws<ArgumentException>(() => LabRunner.Run(new LabOptions(["tricks"], Budget.Smoke, 0, null, Path.GetTempPath(), "cuda", null), TextWriter.Null));
        Assert.Contains("cuda", ex.Message);
    }

    [Fact]
    public void Run_RefusesAnOutputPathThatIsAFile_BeforeRunningAnyClaim()
    {
        var file = Path.GetTempFileName();
        var dir = Directory.CreateTempSubdirectory("minideep-json-dir").FullName;
        try
        {
            var log = new StringWriter();
            var ex = Assert.Throws<ArgumentException>(() => LabRunner.Run(new LabOptions(["tricks"], Budget.Smoke, 0, null, file, "cpu", null), log));
            Assert.Contains($"--out: '{file}' is a file, not a directory", ex.Message);
            Assert.Equal("", log.ToString());   // refused before the data was loaded or a claim ran
            ex = Assert.Throws<ArgumentException>(() => LabRunner.Run(new LabOptions(["tricks"], Budget.Smoke, 0, null, Path.GetTempPath(), "cpu", dir), log));
            Assert.Contains("--json", ex.Message);
        }
        finally
        {
            File.Delete(file);
            Directory.Delete(dir);
        }
    }

    [Fact]
    public void Check_ComparesAsStated_AndNaNNeverPasses()
    {
        Assert.True(new Check("a", "a", 0.95, Comparison.AtLeast, 0.95, "").Passed);
        Assert.False(new Check("a", "a", 0.949, Comparison.AtLeast, 0.95, "").Passed);
        Assert.True(new Check("a", "a", 0.04, Comparison.AtMost, 0.04, "").Passed);
        Assert.False(new Check("a", "a", 0.1, Comparison.Below, 0.1, "").Passed);
        Assert.False(new Check("a", "a", double.NaN, Comparison.AtMost, 1, "").Passed);
        Assert.False(new Check("a", "a", double.NaN, Comparison.AtLeast, 0, "").Passed);
        Assert.Equal("≥ 95.0%", new Check("a", "a", 1, Comparison.AtLeast, 0.95, "", "P1").ThresholdText);
        Assert.False(new ClaimResult("x", "x", [], 1, "d", Budget.Smoke, 0).Reproduced);
    }

    [Fact]
    public void ReportNumbers_NeverPrintANegativeZero()
    {
        Assert.Equal("0.0", Report.Num(-0.0004, "F1"));
        Assert.Equal("0.000", Report.Num(-1e-5, "F3"));
        Assert.Equal("-0.1", Report.Num(-0.1, "F1"));
        Assert.Equal("-0.0004", Report.Num(-0.0004, "F4"));
        Assert.Equal("-1.00E-005", Report.Num(-1e-5, "E2"));
        Assert.Equal("0.0%", Report.Pct(-1e-6));
        Assert.Equal("0.0%", Report.Format(-1e-6, "P1"));
        Assert.Equal("-5.0%", Report.Format(-0.05, "P1"));
    }

    [Fact]
    public void ReportSections_PrintOneProgressLineEach_AndNothingWithoutAWriter()
    {
        var log = new StringWriter();
        var report = new Report(log, "claim-x");
        report.Section("First part");
        report.Text("a paragraph");
        report.Section("Second part");
        var lines = log.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.Matches(@"^  \[claim-x\] First part: \d+ s$", lines[0].TrimEnd('\r'));
        Assert.Matches(@"^  \[claim-x\] Second part: \d+ s$", lines[1].TrimEnd('\r'));
        new Report().Section("silent");   // no writer: nothing to print to, and no exception
    }

    [Fact]
    public void Spearman_MatchesHandComputedRanks()
    {
        Assert.Equal(1, MemorizationClaim.Spearman([1, 2, 3, 4], [10, 20, 35, 100]), 12);
        Assert.Equal(-1, MemorizationClaim.Spearman([1, 2, 3, 4], [4, 3, 2, 1]), 12);
        // ranks (0, 1, 2, 3) against (1.5, 0, 1.5, 3) with a tie: ρ = 0.6324555320336759
        Assert.Equal(0.6324555320336759, MemorizationClaim.Spearman([1, 2, 3, 4], [5, 1, 5, 9]), 12);
    }

    [Fact]
    public void Shifts_MoveEveryImageByKPixels_WithZerosFillingIn()
    {
        var x = Tensor.Arange(16).Float().Reshape(1, 1, 4, 4);
        var s = TricksClaim.Shifts(x, 1);
        Assert.Equal(new float[] { 0, 0, 1, 2, 0, 4, 5, 6, 0, 8, 9, 10, 0, 12, 13, 14 }, s[0].ToArray<float>());   // right
        Assert.Equal(new float[] { 1, 2, 3, 0, 5, 6, 7, 0, 9, 10, 11, 0, 13, 14, 15, 0 }, s[1].ToArray<float>());   // left
        Assert.Equal(new float[] { 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 }, s[2].ToArray<float>());      // down
        Assert.Equal(new float[] { 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0, 0, 0, 0 }, s[3].ToArray<float>());  // up
    }
}

/// <summary>
/// <c>lab explore landscape</c>, which reruns the solution-space report's other setups: the options must
/// reach the networks and the Hessian (a switch that changed nothing would make the report's rows lie).
/// </summary>
public class LandscapeExplorerTests
{
    private static readonly Lazy<LabContext> Smoke = new(() =>
        LabRunner.ExploreContext(Budget.Smoke, 0, null, TextWriter.Null));

    private static readonly LandscapeSetup Quick = new() { Seeds = 1, Epochs = 1, LanczosSteps = 6 };

    [Fact]
    public void HessianMode_ChangesTheEigenvaluesWithBatchNormOnly()
    {
        // Without batch norm the two modes compute one function: the same bits.
        var eval = SolutionSpaceClaim.TrainLandscapeNetworks(Smoke.Value, Quick);
        var training = SolutionSpaceClaim.TrainLandscapeNetworks(Smoke.Value, Quick with { HessianMode = HessianMode.Training });
        Assert.Equal(eval.Extremes, training.Extremes);
        Assert.Equal(eval.Fit, training.Fit);

        var bn = Quick with { Arch = LandscapeArch.BatchNorm };
        var bnEval = SolutionSpaceClaim.TrainLandscapeNetworks(Smoke.Value, bn);
        var bnTraining = SolutionSpaceClaim.TrainLandscapeNetworks(Smoke.Value, bn with { HessianMode = HessianMode.Training });
        var bnWeights = SolutionSpaceClaim.TrainLandscapeNetworks(Smoke.Value, bn with { WeightsOnly = true });
        // Plain: 19 batch norms (one after each hidden layer); residual: 1 + 2 in each of 9 blocks.
        Assert.Equal(19, bnEval.Models[0].NamedModules().Count(m => m.Module is BatchNorm1d));
        Assert.Equal(19, bnEval.Models[1].NamedModules().Count(m => m.Module is BatchNorm1d));
        Assert.Equal(0, eval.Models[0].NamedModules().Count(m => m.Module is BatchNorm1d));
        // The same trained networks (the fit is measured before the Hessian), other Hessians.
        Assert.Equal(bnEval.Fit, bnTraining.Fit);
        Assert.Equal(bnEval.Fit, bnWeights.Fit);
        Assert.NotEqual(bnEval.Extremes[0].Max, bnTraining.Extremes[0].Max);
        Assert.NotEqual(bnEval.Extremes[0].Max, bnWeights.Extremes[0].Max);
        foreach (var (min, max) in bnEval.Extremes.Concat(bnTraining.Extremes).Concat(bnWeights.Extremes))
            Assert.True(double.IsFinite(min) && double.IsFinite(max) && min <= max && max > 0, $"λmin {min}, λmax {max}");
    }

    [Fact]
    public void Explore_WritesEveryNetworkAsJson_AndRefusesABadSetupByName()
    {
        var json = Path.Combine(Path.GetTempPath(), $"minideep-explore-{Guid.NewGuid():N}.json");
        try
        {
            var log = new StringWriter();
            var nets = LandscapeExplorer.Run(Quick with { Arch = LandscapeArch.PreActivation, Optimizer = LandscapeOptimizer.Adam, Lr = 1e-3 }, Budget.Smoke, 3, null, json, log);
            var doc = JsonNode.Parse(File.ReadAllText(json))!;
            Assert.Equal("PreActivation", (string?)doc["setup"]!["arch"]);
            Assert.Equal(3UL, (ulong)doc["lab_seed"]!);
            var networks = doc["networks"]!.AsArray();
            Assert.Equal(2, networks.Count);
            Assert.Equal(nets.Extremes[1].Max, (double)networks[1]!["lambda_max"]!);
            Assert.Equal(nets.RatioOfMedians, (double)doc["ratio_of_medians"]!);
            Assert.Contains("ratio", log.ToString());
        }
        finally
        {
            File.Delete(json);
        }
        var e = Assert.Throws<ArgumentException>(() => LandscapeExplorer.Run(Quick with { Seeds = 0 }, Budget.Smoke, 0, null, null, TextWriter.Null));
        Assert.Contains("seeds", e.Message);
        e = Assert.Throws<ArgumentException>(() => LandscapeExplorer.Run(Quick with { HessianImages = 6_000 }, Budget.Smoke, 0, null, null, TextWriter.Null));
        Assert.Contains("6000", e.Message);
    }
}

public class SplitExplorerTests
{
    private static readonly Lazy<LabContext> Smoke = new(() =>
        LabRunner.ExploreContext(Budget.Smoke, 0, null, TextWriter.Null));

    private static readonly SplitSetup Quick = new() { PerTask = 200, ValidationPerTask = 100, Epochs = 2, Batch = 8, Hidden = 32, FisherSamples = 50, Lambdas = [10, 1_000] };

    [Fact]
    public void EwcForm_ChangesTheEwcRunsOnly()
    {
        var proximal = ForgettingClaim.RunSplitTasks(Smoke.Value, Quick);
        var penalty = ForgettingClaim.RunSplitTasks(Smoke.Value, Quick with { Ewc = EwcUpdate.Penalty });
        Assert.Equal(["SGD", "EWC, λ = 10", "EWC, λ = 1E+03", "HAT", "joint"], proximal.Names);
        // SGD, HAT and the joint network never see the anchors: the same bits under either form.
        foreach (var m in new[] { 0, proximal.Hat, proximal.Names.Length - 1 })
        {
            Assert.Equal(proximal.Matrices[m].ToArray(), penalty.Matrices[m].ToArray());
            Assert.Equal(proximal.Kept[m], penalty.Kept[m]);
        }
        for (int m = 1; m <= Quick.Lambdas.Length; m++)
            Assert.NotEqual(proximal.Matrices[m].ToArray(), penalty.Matrices[m].ToArray());
        // The joint network is the reference of ρ; the chosen λ is the best on validation images.
        Assert.Equal(0, proximal.Rho[^1], 12);
        Assert.Equal(proximal.RhoValidation.Skip(1).Take(Quick.Lambdas.Length).Max(), proximal.RhoValidation[proximal.BestEwc]);
    }

    [Fact]
    public void Explore_WritesEveryMethodAsJson_AndRefusesABadSetupByName()
    {
        var json = Path.Combine(Path.GetTempPath(), $"minideep-explore-split-{Guid.NewGuid():N}.json");
        try
        {
            var log = new StringWriter();
            var r = SplitExplorer.Run(Quick with { Lambdas = [100] }, Budget.Smoke, 2, null, json, log);
            var doc = JsonNode.Parse(File.ReadAllText(json))!;
            Assert.Equal(2UL, (ulong)doc["lab_seed"]!);
            Assert.Equal("proximal", (string?)doc["setup"]!["ewc"]);
            var methods = doc["methods"]!.AsArray();
            Assert.Equal(r.Names, methods.Select(m => (string)m!["method"]!));
            Assert.Equal(r.Rho[r.Hat], (double)methods[r.Hat]!["rho"]!);
            Assert.Equal(100, (double)doc["chosen_lambda"]!);
            Assert.Equal(r.HatMinusEwc, (double)doc["hat_minus_ewc"]!);
            Assert.Contains("HAT − EWC in ρ", log.ToString());
        }
        finally
        {
            File.Delete(json);
        }
        var e = Assert.Throws<ArgumentException>(() => SplitExplorer.Run(Quick with { Lambdas = [] }, Budget.Smoke, 0, null, null, TextWriter.Null));
        Assert.Contains("λ", e.Message);
        e = Assert.Throws<ArgumentException>(() => SplitExplorer.Run(Quick with { Lambdas = [10, 10] }, Budget.Smoke, 0, null, null, TextWriter.Null));
        Assert.Contains("twice", e.Message);
        e = Assert.Throws<ArgumentException>(() => SplitExplorer.Run(Quick with { SMax = 1 }, Budget.Smoke, 0, null, null, TextWriter.Null));
        Assert.Contains("s_max", e.Message);
    }
}
