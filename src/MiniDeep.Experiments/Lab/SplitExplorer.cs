using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using MiniDeep.Experiments.Lab.Claims;
using MiniDeep.IO;

namespace MiniDeep.Experiments.Lab;

/// <summary>
/// <c>lab explore split</c>: one setup of the forgetting claim's split-task experiment (HAT against EWC
/// and plain SGD), run alone, with everything else as the lab runs it (the same tasks, seeds, kept
/// epochs and choice of λ). The report's table of other setups comes from this, so a reader can rerun
/// any row.
/// </summary>
public static class SplitExplorer
{
    /// <summary>Runs <paramref name="setup"/> under lab seed <paramref name="seed"/>; prints a row per method and HAT − EWC in ρ.</summary>
    public static SplitResults Run(SplitSetup setup, Budget budget, ulong seed, string? dataDir, string? json, TextWriter log)
    {
        setup.Validate();
        OutputPaths.WritableFile("--json", json);
        var clock = Stopwatch.StartNew();
        var ctx = LabRunner.ExploreContext(budget, seed, dataDir, log);
        var data = ctx.Data;
        log.WriteLine($"split tasks, lab seed {seed}, {data.Name}: {setup}");
        var r = ForgettingClaim.RunSplitTasks(ctx, setup);
        var inv = CultureInfo.InvariantCulture;
        log.WriteLine("method            | ρ (test)  | ρ (validation) | mean final accuracy | backward transfer | epoch kept, per task");
        for (int m = 0; m < r.Names.Length; m++)
            log.WriteLine(string.Format(inv, "{0,-17} | {1,9:F4} | {2,14:F4} | {3,18:F2}% | {4,11:F2} points | {5}",
                r.Names[m], r.Rho[m], r.RhoValidation[m], 100 * r.Matrices[m].AverageAccuracy, 100 * r.Matrices[m].BackwardTransfer, string.Join(", ", r.Kept[m])));
        log.WriteLine(string.Format(inv, "EWC's λ chosen on the validation images: {0:G3}; HAT − EWC in ρ {1:+0.0000;-0.0000;0.0000} (the claim's line: > 0); HAT − SGD {2:+0.0000;-0.0000;0.0000}; {3:F0} s",
            r.ChosenLambda, r.HatMinusEwc, r.Rho[r.Hat] - r.Rho[0], clock.Elapsed.TotalSeconds));
        if (json is not null)
        {
            var doc = new
            {
                setup = new
                {
                    per_task = setup.PerTask, validation_per_task = setup.ValidationPerTask, epochs = setup.Epochs, lr = setup.Lr, batch = setup.Batch,
                    hidden = setup.Hidden, c = setup.C, s_max = setup.SMax, fisher_samples = setup.FisherSamples, lambdas = setup.Lambdas,
                    ewc = setup.Ewc.ToString().ToLowerInvariant(),
                },
                lab_seed = seed,
                data = data.Name,
                machine = LabRunner.Machine(),
                methods = Enumerable.Range(0, r.Names.Length).Select(m => new
                {
                    method = r.Names[m], rho = r.Rho[m], rho_validation = r.RhoValidation[m], mean_final_accuracy = r.Matrices[m].AverageAccuracy,
                    backward_transfer = r.Matrices[m].BackwardTransfer, kept_epochs = r.Kept[m],
                }),
                chosen_lambda = r.ChosenLambda,
                hat_minus_ewc = r.HatMinusEwc,
                seconds = Math.Round(clock.Elapsed.TotalSeconds, 2),
            };
            AtomicFile.WriteAllText(json, JsonSerializer.Serialize(doc, new JsonSerializerOptions { WriteIndented = true }));
        }
        return r;
    }
}
