using BenchmarkDotNet.Running;
using MiniDeep.Benchmarks;

// `quick [--json FILE] [--plot FILE.png]`: the headline numbers in about a minute (CI, comparisons).
// Anything else goes to BenchmarkDotNet, e.g. `--filter '*Gemm*'` (without --filter it asks interactively).
if (args.Length > 0 && args[0] == "quick")
{
    string? json = null, plot = null;
    for (int i = 1; i < args.Length; i++)
    {
        if (args[i] == "--json" && i + 1 < args.Length) json = args[++i];
        else if (args[i] == "--plot" && i + 1 < args.Length) plot = args[++i];
        else { Console.Error.WriteLine($"quick: unknown argument '{args[i]}' (usage: quick [--json FILE] [--plot FILE.png])"); return 2; }
    }
    return Quick.Run(json, plot);
}
if (args.Length > 0 && args[0] == "gpu-check")
{
    // `gpu-check [--device cuda|ilgpu-cpu] [--json FILE]`: conformance, PTX and timings of the GPU backend (docs/gpu.md).
    string? device = null, json = null;
    for (int i = 1; i < args.Length; i++)
    {
        if (args[i] == "--device" && i + 1 < args.Length) device = args[++i];
        else if (args[i] == "--json" && i + 1 < args.Length) json = args[++i];
        else { Console.Error.WriteLine($"gpu-check: unknown argument '{args[i]}' (usage: gpu-check [--device cuda|ilgpu-cpu] [--json FILE])"); return 2; }
    }
    return GpuCheck.Run(device, json);
}
if (args.Length == 2 && args[0] == "kernels")
{
    // `kernels <mlp64|cnn64|transformer32>`: where a training step's time goes, kernel by kernel, timed in replays of
    // its capture (the optimizer step is not in it).
    var w = args[1] switch
    {
        "mlp64" => Workloads.CapturedMlpStep(64),
        "cnn64" => Workloads.CapturedCnnStep(64),
        "transformer32" => Workloads.CapturedTransformerStep(32),
        _ => throw new ArgumentException($"kernels: unknown workload '{args[1]}' (mlp64, cnn64, transformer32)"),
    };
    // Warm up for two seconds: the tiered JIT recompiles the kernels' loops well after their first calls.
    var warm = System.Diagnostics.Stopwatch.StartNew();
    while (warm.Elapsed.TotalSeconds < 2) w.Run();
    const int replays = 50;
    var times = w.Captured.Profile(replays);
    double total = times.Sum(t => t.Seconds);
    Console.WriteLine($"{args[1]}: {times.Length} kernels, {total * 1e3:F3} ms a replay");
    foreach (var (name, s) in times.Select((t, i) => ($"{i,3} {t.Kernel}", t.Seconds)).OrderByDescending(t => t.Seconds))
        Console.WriteLine($"{name,-40} {s * 1e3,8:F3} ms {100 * s / total,6:F1}%");
    return 0;
}
if (args.Length == 3 && args[0] == "loop")
{
    // `loop <mlp64|mlp256|cnn64|captured-mlp64|captured-cnn64> SECONDS`: runs one workload in a loop, for a profiler to attach to.
    Action step = args[1] switch
    {
        "mlp64" => Workloads.MlpStep(64).Run,
        "mlp256" => Workloads.MlpStep(256).Run,
        "cnn64" => Workloads.CnnStep(64).Run,
        "captured-mlp64" => Workloads.CapturedMlpStep(64).Run,
        "captured-cnn64" => Workloads.CapturedCnnStep(64).Run,
        _ => throw new ArgumentException($"loop: unknown workload '{args[1]}' (mlp64, mlp256, cnn64, captured-mlp64, captured-cnn64)"),
    };
    var sw = System.Diagnostics.Stopwatch.StartNew();
    int steps = 0;
    while (sw.Elapsed.TotalSeconds < double.Parse(args[2])) { step(); steps++; }
    Console.WriteLine($"{args[1]}: {steps} steps, {sw.Elapsed.TotalMilliseconds / steps:F3} ms/step, {MiniDeep.Cpu.BufferPool.Collections} pool collections, GC pauses {GC.GetTotalPauseDuration().TotalMilliseconds / steps:F3} ms/step, pool misses {MiniDeep.Cpu.BufferPool.Misses}");
    return 0;
}
if (args.Length is 1 or 2 && args[0] == "gemm-shapes")
    // `gemm-shapes [THREADS]`: the products of a batch-128 MLP training step, best and median of 5 rounds.
    return TrainingShapes.Loop(args.Length == 2 ? int.Parse(args[1]) : MiniDeep.Parallelism.MaxThreads);
// The GPU suite needs CUDA: say so up front, and leave it out of the run, rather than fail in its setup.
var types = typeof(Workloads).Assembly.GetTypes().Where(t => t.IsPublic && t.Namespace == "MiniDeep.Benchmarks.Suites" && t.GetMethods().Any(m => m.IsDefined(typeof(BenchmarkDotNet.Attributes.BenchmarkAttribute), false)));
if (MiniDeep.Benchmarks.Suites.GpuBenchmarks.Available() is { } skipped)
{
    Console.Error.WriteLine(skipped);
    types = types.Where(t => t != typeof(MiniDeep.Benchmarks.Suites.GpuBenchmarks));
}
BenchmarkSwitcher.FromTypes([.. types]).Run(args);
return 0;
