using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using MiniDeep.Experiments.Lab.Claims;
using MiniDeep.IO;

namespace MiniDeep.Experiments.Lab;

/// <summary>
/// <c>lab explore landscape</c>: one setup of the solution-space claim's plain-against-residual
/// landscape experiment, run alone, with everything else as the lab runs it (the same subset, seeds and
/// Lanczos). The report's tables of other setups come from this, so a reader can rerun any row.
/// </summary>
public static class LandscapeExplorer
{
    /// <summary>Runs <paramref name="setup"/> under lab seed <paramref name="seed"/>; prints a table per network and the ratio of medians.</summary>
    public static LandscapeNetworks Run(LandscapeSetup setup, Budget budget, ulong seed, string? dataDir, string? json, TextWriter log)
    {
        setup.Validate();
        OutputPaths.WritableFile("--json", json);
        var clock = Stopwatch.StartNew();
        var ctx = LabRunner.ExploreContext(budget, seed, dataDir, log);
        var data = ctx.Data;
        log.WriteLine($"landscape, lab seed {seed}, {data.Name}: {setup}");
        var nets = SolutionSpaceClaim.TrainLandscapeNetworks(ctx, setup);
        var ratios = nets.Ratios;
        var inv = CultureInfo.InvariantCulture;
        log.WriteLine("seed | network  | λmin      | λmax      | |λmin/λmax| | training loss | test accuracy");
        for (int k = 0; k < ratios.Length; k++)
            log.WriteLine(string.Format(inv, "{0,4} | {1,-8} | {2,9:0.000E+0} | {3,9:0.000E+0} | {4,11:F4} | {5,13:F3} | {6,12:P1}",
                k / 2, k % 2 == 0 ? "plain" : "residual", nets.Extremes[k].Min, nets.Extremes[k].Max, ratios[k], nets.Fit[k].Loss, nets.Fit[k].Accuracy));
        log.WriteLine(string.Format(inv, "medians: |λmin/λmax| plain {0:F4}, residual {1:F4}; ratio {2:F2}× (the claim's line: ≥ 1.3); training loss {3:F2} / {4:F2}; λmax {5:G3} / {6:G3}; {7:F0} s",
            nets.MedianRatio(residual: false), nets.MedianRatio(residual: true), nets.RatioOfMedians,
            nets.Median(false, k => nets.Fit[k].Loss), nets.Median(true, k => nets.Fit[k].Loss),
            nets.Median(false, k => nets.Extremes[k].Max), nets.Median(true, k => nets.Extremes[k].Max), clock.Elapsed.TotalSeconds));
        if (json is not null)
        {
            var doc = new
            {
                setup = new
                {
                    seeds = setup.Seeds, epochs = setup.Epochs, optimizer = setup.Optimizer.ToString(), lr = setup.Lr, weight_decay = setup.WeightDecay,
                    cosine = setup.Cosine, arch = setup.Arch.ToString(), he_init = setup.HeInit, hessian_images = setup.HessianImages,
                    hessian_mode = setup.HessianMode.ToString(), weights_only = setup.WeightsOnly, lanczos_steps = setup.LanczosSteps,
                },
                lab_seed = seed,
                data = data.Name,
                networks = Enumerable.Range(0, ratios.Length).Select(k => new
                {
                    seed = k / 2, residual = k % 2 == 1, lambda_min = nets.Extremes[k].Min, lambda_max = nets.Extremes[k].Max, ratio = ratios[k],
                    train_loss = nets.Fit[k].Loss, test_accuracy = nets.Fit[k].Accuracy,
                }),
                ratio_of_medians = nets.RatioOfMedians,
                seconds = Math.Round(clock.Elapsed.TotalSeconds, 2),
            };
            AtomicFile.WriteAllText(json, JsonSerializer.Serialize(doc, new JsonSerializerOptions { WriteIndented = true }));
        }
        return nets;
    }
}
