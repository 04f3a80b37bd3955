using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using MiniDeep.Cpu;

namespace MiniDeep.Benchmarks;

/// <summary>
/// The quick mode: every headline number of the suite in one process and one run (so that the peak
/// and the kernels see the same machine state), each the median of repeated timed samples after
/// warm-up. Prints one JSON object; about a minute on the 2-core target.
/// </summary>
public static class Quick
{
    public static int Run(string? jsonPath, string? plotPath = null)
    {
        var total = Stopwatch.StartNew();
        var result = new JsonObject();
        int threads = Parallelism.MaxThreads;

        // Peak: 12 FMA chains on every core, sampled before and after the kernels (the figure reported
        // is the higher of the two medians: the machine's peak is what it can do at its best).
        double peak = MeasurePeak(threads);

        // The training steps. This VM runs in phases (the same code differs by a fifth from one minute
        // to the next), so the steps are not timed one after the other: after each has warmed up,
        // rounds take one sample of each, and each figure is the median over the rounds, every
        // workload having seen the same phases. Each phase starts after a full
        // collection, so that one phase's garbage does not cost the next one's collections.
        Settle();
        var mlp64 = Workloads.MlpStep(64);
        var mlp256 = Workloads.MlpStep(256);
        var cnnStep = Workloads.CnnStep(64);
        var captured64 = Workloads.CapturedMlpStep(64);
        var captured256 = Workloads.CapturedMlpStep(256);
        var capturedCnn = Workloads.CapturedCnnStep(64);
        var transformer = Workloads.TransformerStep(32);
        var steps = new (string Name, Action Run, double MinSample)[]
        {
            ("mlp64", mlp64.Run, 0.05), ("mlp256", mlp256.Run, 0.05), ("cnn64", cnnStep.Run, 0.1),
            ("captured64", captured64.Run, 0.05), ("captured256", captured256.Run, 0.05), ("capturedCnn64", capturedCnn.Run, 0.1),
            ("transformer32", transformer.Run, 0.1),
        };
        var reps = steps.Select(st => RepetitionsFor(st.Run, st.MinSample)).ToArray();
        var samples = steps.Select(_ => new List<double>()).ToArray();
        const int rounds = 15;
        for (int r = 0; r < rounds; r++)
            for (int k = 0; k < steps.Length; k++) samples[k].Add(TimePerCall(steps[k].Run, reps[k]));
        var mlp = new JsonObject
        {
            ["64"] = Math.Round(Median(samples[0]) * 1e3, 3),
            ["256"] = Math.Round(Median(samples[1]) * 1e3, 3),
        };
        double cnnMs = Median(samples[2]) * 1e3;
        var capturedMs = new JsonObject
        {
            ["64"] = Math.Round(Median(samples[3]) * 1e3, 3),
            ["256"] = Math.Round(Median(samples[4]) * 1e3, 3),
        };
        double capturedCnnMs = Median(samples[5]) * 1e3;
        double transformerMs = Median(samples[6]) * 1e3;

        var tiny = new Workloads.Tiny();
        double addUs = MedianSeconds(() => tiny.Add(), 0.02, 9) * 1e6;
        double backUs = MedianSeconds(tiny.MulSumBackward, 0.02, 9) * 1e6;

        // Managed allocation per MLP step (batch 64) after warm-up, on every thread (the kernels'
        // workers included): what BenchmarkDotNet's MemoryDiagnoser reports as "Allocated". The
        // captured step (replay + the eager optimizer step) and the eager step, each measured alone.
        long AllocationPerStep(Action run)
        {
            for (int i = 0; i < 200; i++) run();   // past the tiered JIT's recompilations
            const int allocSteps = 200;
            long before = GC.GetTotalAllocatedBytes(precise: true);
            for (int i = 0; i < allocSteps; i++) run();
            return (GC.GetTotalAllocatedBytes(precise: true) - before) / allocSteps;
        }
        long allocBytes = AllocationPerStep(Workloads.CapturedMlpStep(64).Run);
        long eagerAllocBytes = AllocationPerStep(Workloads.MlpStep(64).Run);

        Settle();
        var sgemm = new JsonObject();
        foreach (int n in new[] { 64, 128, 256, 512, 1024, 2048 })
        {
            var op = new Workloads.GemmOperands(n);
            double s = MedianSeconds(op.Run, minSampleSeconds: 0.02, samples: n >= 2048 ? 5 : 9, warmupSeconds: 0.5);
            sgemm[n.ToString()] = Math.Round(op.Flops / s / 1e9, 1);
        }


        peak = Math.Max(peak, MeasurePeak(threads));
        result["peak_gflops"] = Math.Round(peak, 1);
        result["threads"] = threads;
        result["vector_width"] = Gemm.VectorWidth;
        result["sgemm"] = sgemm;
        var pct = new JsonObject();
        foreach (var (k, v) in sgemm) pct[k] = Math.Round(100 * v!.GetValue<double>() / peak, 1);
        result["sgemm_percent_of_peak"] = pct;
        result["mlp_step_ms"] = mlp;
        result["cnn_step_ms"] = new JsonObject { ["64"] = Math.Round(cnnMs, 3) };
        result["transformer_step_ms"] = new JsonObject { ["32"] = Math.Round(transformerMs, 3) };
        result["tiny_add_us"] = Math.Round(addUs, 3);
        result["tiny_backward_us"] = Math.Round(backUs, 3);
        result["mlp_step_alloc_bytes"] = allocBytes;
        result["mlp_step_alloc_bytes_eager"] = eagerAllocBytes;
        result["mlp_step_captured_ms"] = capturedMs;
        result["cnn_step_captured_ms"] = new JsonObject { ["64"] = Math.Round(capturedCnnMs, 3) };
        result["seconds"] = Math.Round(total.Elapsed.TotalSeconds, 1);

        if (plotPath is not null) WritePlot(plotPath, sgemm, peak);
        string json = result.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
        Console.WriteLine(json);
        if (jsonPath is not null)
        {
            string tmp = jsonPath + ".tmp";
            File.WriteAllText(tmp, json + "\n");
            File.Move(tmp, jsonPath, overwrite: true);
        }
        return 0;
    }

    private static void Settle()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
    }

    // libtorch 2.10 (MKL/oneDNN, 2 threads) on this machine, as quoted in the performance issue:
    // reference figures, not measured by this program.
    private static readonly (int N, double Gflops)[] Libtorch = [(64, 43), (128, 131), (256, 178), (512, 178), (1024, 178), (2048, 178)];

    private static void WritePlot(string path, JsonObject sgemm, double peak)
    {
        double[] ns = sgemm.Select(kv => double.Parse(kv.Key)).ToArray();
        double[] ours = sgemm.Select(kv => kv.Value!.GetValue<double>()).ToArray();
        var png = MiniDeep.Experiments.Lab.Plots.Lines($"SGEMM, n×n×n, {Parallelism.MaxThreads} threads", "log2 n  (6 = 64, 8 = 256, 10 = 1024, 11 = 2048)", "GFLOP/s",
        [
            new("MiniDeep (this run)", ns.Select(Math.Log2).ToArray(), ours),
            new("libtorch 2.10 (quoted figures)", Libtorch.Select(l => Math.Log2(l.N)).ToArray(), Libtorch.Select(l => l.Gflops).ToArray()),
        ], horizontal: (peak, $"FMA peak {peak:F0} GFLOP/s (this run)"), legend: ScottPlot.Alignment.LowerRight);
        string tmp = path + ".tmp";
        File.WriteAllBytes(tmp, png);
        File.Move(tmp, path, overwrite: true);
    }

    public static double MeasurePeak(int threads)
    {
        const long iters = 20_000_000;
        Workloads.PeakFma(threads, iters / 10);                 // warm-up: JIT and clocks
        var times = new List<double>();
        double flops = 0;
        for (int r = 0; r < 5; r++)
        {
            var sw = Stopwatch.StartNew();
            flops = Workloads.PeakFma(threads, iters);
            times.Add(sw.Elapsed.TotalSeconds);
        }
        return flops / Median(times) / 1e9;
    }

    // Warm-up long enough for tiered compilation to finish (a training step calls hundreds of methods,
    // and they reach optimized code only after their calls have been counted and the background
    // compiler has caught up: 0.3 s of warm-up measured steps 2-3x too slow), then the repetitions
    // that make one sample last minSampleSeconds.
    private static int RepetitionsFor(Action action, double minSampleSeconds, double warmupSeconds = 2)
    {
        var sw = Stopwatch.StartNew();
        int warm = 0;
        while (warm < 3 || sw.Elapsed.TotalSeconds < warmupSeconds) { action(); warm++; }
        return Math.Max(1, (int)Math.Ceiling(minSampleSeconds / (sw.Elapsed.TotalSeconds / warm)));
    }

    private static double TimePerCall(Action action, int reps)
    {
        var sw = Stopwatch.StartNew();
        for (int r = 0; r < reps; r++) action();
        return sw.Elapsed.TotalSeconds / reps;
    }

    /// <summary>Median seconds per call: warm up, pick a repetition count so that one sample lasts at
    /// least <paramref name="minSampleSeconds"/>, then time <paramref name="samples"/> samples.</summary>
    public static double MedianSeconds(Action action, double minSampleSeconds, int samples, double warmupSeconds = 2)
    {
        int reps = RepetitionsFor(action, minSampleSeconds, warmupSeconds);
        var times = new List<double>();
        for (int s = 0; s < samples; s++) times.Add(TimePerCall(action, reps));
        return Median(times);
    }

    private static double Median(List<double> xs)
    {
        xs.Sort();
        int n = xs.Count;
        return n % 2 == 1 ? xs[n / 2] : 0.5 * (xs[n / 2 - 1] + xs[n / 2]);
    }
}
