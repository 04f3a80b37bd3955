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
    public static int Run(string? jsonPath)
    {
        var total = Stopwatch.StartNew();
        var result = new JsonObject();
        int threads = Parallelism.MaxThreads;

        // Peak: 12 FMA chains on every core, sampled before and after the kernels (the figure reported
        // is the higher of the two medians: the machine's peak is what it can do at its best).
        double peak = MeasurePeak(threads);

        var sgemm = new JsonObject();
        foreach (int n in new[] { 64, 128, 256, 512, 1024, 2048 })
        {
            var op = new Workloads.GemmOperands(n);
            double s = MedianSeconds(op.Run, minSampleSeconds: 0.02, samples: n >= 2048 ? 5 : 9);
            sgemm[n.ToString()] = Math.Round(op.Flops / s / 1e9, 1);
        }

        var mlp = new JsonObject();
        foreach (int batch in new[] { 64, 256 })
        {
            var step = new Workloads.MlpStep(batch);
            mlp[batch.ToString()] = Math.Round(MedianSeconds(() => step.Run(), 0.05, 9) * 1e3, 3);
        }
        var cnn = new Workloads.CnnStep(64);
        double cnnMs = MedianSeconds(cnn.Run, 0.1, 7) * 1e3;

        var tiny = new Workloads.Tiny();
        double addUs = MedianSeconds(() => tiny.Add(), 0.02, 9) * 1e6;
        double backUs = MedianSeconds(tiny.MulSumBackward, 0.02, 9) * 1e6;

        // Managed allocation per MLP step (batch 64) after warm-up, on every thread (the kernels'
        // workers included): what BenchmarkDotNet's MemoryDiagnoser reports as "Allocated".
        var alloc = new Workloads.MlpStep(64);
        for (int i = 0; i < 20; i++) alloc.Run();
        const int allocSteps = 200;
        long before = GC.GetTotalAllocatedBytes(precise: true);
        for (int i = 0; i < allocSteps; i++) alloc.Run();
        long allocBytes = (GC.GetTotalAllocatedBytes(precise: true) - before) / allocSteps;

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
        result["tiny_add_us"] = Math.Round(addUs, 3);
        result["tiny_backward_us"] = Math.Round(backUs, 3);
        result["mlp_step_alloc_bytes"] = allocBytes;
        result["seconds"] = Math.Round(total.Elapsed.TotalSeconds, 1);

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

    /// <summary>Median seconds per call: warm up, pick a repetition count so that one sample lasts at
    /// least <paramref name="minSampleSeconds"/>, then time <paramref name="samples"/> samples.</summary>
    public static double MedianSeconds(Action action, double minSampleSeconds, int samples)
    {
        var sw = Stopwatch.StartNew();
        int warm = 0;
        while (warm < 3 || sw.Elapsed.TotalSeconds < 0.3) { action(); warm++; }
        double perCall = sw.Elapsed.TotalSeconds / warm;
        int reps = Math.Max(1, (int)Math.Ceiling(minSampleSeconds / perCall));
        var times = new List<double>();
        for (int s = 0; s < samples; s++)
        {
            sw.Restart();
            for (int r = 0; r < reps; r++) action();
            times.Add(sw.Elapsed.TotalSeconds / reps);
        }
        return Median(times);
    }

    private static double Median(List<double> xs)
    {
        xs.Sort();
        int n = xs.Count;
        return n % 2 == 1 ? xs[n / 2] : 0.5 * (xs[n / 2 - 1] + xs[n / 2]);
    }
}
