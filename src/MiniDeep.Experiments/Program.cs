using System.CommandLine;
using MiniDeep.Experiments;
using MiniDeep.Experiments.Lab;
using MiniDeep.Experiments.Lab.Claims;

var seed = new Option<ulong>("--seed") { Description = "Seed of the one generator everything draws from", DefaultValueFactory = _ => 0 };
var steps = new Option<int>("--steps") { Description = "Full-batch training steps", DefaultValueFactory = _ => 500 };
var json = new Option<string?>("--json") { Description = "Also write the result as JSON to this file" };

var demo = new Command("demo", "Train a small MLP on three interleaved spirals with raw tensors and autograd") { seed, steps, json };
demo.SetAction(parse =>
{
    int n = parse.GetValue(steps);
    if (n < 10) { Console.Error.WriteLine("--steps must be at least 10"); return 2; }
    var result = SpiralDemo.Run(parse.GetValue(seed), n, Console.Out);
    if (parse.GetValue(json) is { } path) SpiralDemo.WriteJson(result, path);
    return 0;
});

var model = new Argument<string>("model") { Description = "mlp (784-256-128-10) or cnn (conv32-pool-conv64-pool-dropout-fc128-fc10)" };
model.AcceptOnlyFromAmong("mlp", "cnn");
var dataDir = new Option<string?>("--data") { Description = "Directory with the Fashion-MNIST IDX files (else MINIDEEP_DATA, else /usr/share/datasets/fashion-mnist, else SynthDigits)" };
var epochs = new Option<int?>("--epochs") { Description = "Epochs (default: 15 for mlp, 6 for cnn)" };
var batchSize = new Option<int?>("--batch-size") { Description = "Batch size (default: 128 for mlp, 64 for cnn)" };
var lr = new Option<double>("--lr") { Description = "Adam's initial learning rate (cosine decay to 0)", DefaultValueFactory = _ => 1e-3 };
var trainJson = new Option<string?>("--json") { Description = "Also write the results as JSON to this file" };
var trainSeed = new Option<ulong>("--seed") { Description = "Seed of initialization, shuffling and dropout", DefaultValueFactory = _ => 0 };
var dataset = new Option<string>("--dataset") { Description = "auto (Fashion-MNIST when found, else SynthDigits), fashion-mnist or synthdigits", DefaultValueFactory = _ => "auto" };
dataset.AcceptOnlyFromAmong("auto", "fashion-mnist", "synthdigits");
var trainDevice = new Option<string>("--device") { Description = "cpu, cuda (cuda:N) or ilgpu-cpu (the GPU kernels on ILGPU's CPU accelerator)", DefaultValueFactory = _ => "cpu" };
var trainSave = new Option<string?>("--save") { Description = "Write the trained model's state dict to this safetensors file" };
var trainOnnx = new Option<string?>("--onnx") { Description = "Export the trained model to this ONNX file (it takes raw pixels in [0, 1])" };
var trainCapture = new Option<bool>("--capture") { Description = "Capture the training step once and replay it (CPU; the same numbers, bit for bit)" };
var train = new Command("train", "Train the MLP or the CNN on Fashion-MNIST (or SynthDigits when it is not installed)") { model, dataDir, dataset, epochs, batchSize, lr, trainJson, trainSeed, trainDevice, trainSave, trainOnnx, trainCapture };
train.SetAction(parse =>
{
    try
    {
        return Train.Run(new TrainOptions(parse.GetValue(model)!, parse.GetValue(dataDir), parse.GetValue(epochs), parse.GetValue(trainSeed),
            parse.GetValue(trainJson), parse.GetValue(batchSize), parse.GetValue(lr), parse.GetValue(dataset)!, parse.GetValue(trainDevice)!,
            parse.GetValue(trainSave), parse.GetValue(trainOnnx), parse.GetValue(trainCapture)), Console.Out);
    }
    catch (Exception e) when (e is TrainOptionsException or MiniDeep.Data.DataNotFoundException or MiniDeep.Data.IdxFormatException or MiniDeep.Gpu.DeviceNotFoundException)
    {
        Console.Error.WriteLine(e.Message);
        return 2;
    }
});

var graphOut = new Option<string>("--out") { Description = "DOT file to write (a PNG beside it when Graphviz is installed)", DefaultValueFactory = _ => "docs/images/mlp-step.dot" };
var graph = new Command("graph", "Write the autograd graph of one MLP training step as Graphviz DOT") { graphOut };
graph.SetAction(parse => GraphCommand.Run(parse.GetValue(graphOut)!, Console.Out));

var labList = new Command("list", "List the claims the lab can run");
labList.SetAction(_ =>
{
    foreach (var c in LabRunner.All) Console.WriteLine($"{c.Id,-14} {c.Statement}");
    foreach (var c in LabRunner.InProgress) Console.WriteLine($"{c.Id,-14} (in progress: runs when named, not part of 'all') {c.Statement}");
    return 0;
});
var claimIds = new Argument<string>("claims") { Description = "Comma-separated claim ids (see 'lab list'), or 'all'" };
var budget = new Option<string>("--budget") { Description = "smoke (SynthDigits, ~30 s a claim), standard (Fashion-MNIST, the committed reports) or full (closer to paper scale)", DefaultValueFactory = _ => "standard" };
budget.AcceptOnlyFromAmong("smoke", "standard", "full");
var labSeed = new Option<ulong>("--seed") { Description = "Lab seed: every initialization, order and attack draws from it", DefaultValueFactory = _ => 0 };
var labData = new Option<string?>("--data") { Description = "Directory with the Fashion-MNIST IDX files (else MINIDEEP_DATA, else /usr/share/datasets/fashion-mnist, else SynthDigits)" };
var labOut = new Option<string>("--out") { Description = "Root directory of the reports: <out>/<claim>/report.md, metrics.json, PNGs, and <out>/README.md", DefaultValueFactory = _ => "reports" };
var device = new Option<string>("--device") { Description = "Where to run: cpu", DefaultValueFactory = _ => "cpu" };
var labJson = new Option<string?>("--json") { Description = "Also write a JSON summary of this run to this file" };
var shardOption = new Option<string?>("--shard") { Description = "Run only part i of n of the claims (i/n, i from 0): for a cluster's job array; finish with 'lab merge'" };
var labRun = new Command("run", "Run claims and write their reports; exits 1 when a claim does not reproduce") { claimIds, budget, labSeed, labData, labOut, device, labJson, shardOption };
labRun.SetAction(parse =>
{
    try
    {
        var b = Enum.Parse<Budget>(parse.GetValue(budget)!, ignoreCase: true);
        var shard = parse.GetValue(shardOption) is { } spec ? MiniDeep.Sweeps.Shard.Parse(spec) : (MiniDeep.Sweeps.Shard?)null;
        return LabRunner.Run(new LabOptions([parse.GetValue(claimIds)!], b, parse.GetValue(labSeed), parse.GetValue(labData), parse.GetValue(labOut)!,
            parse.GetValue(device)!, parse.GetValue(labJson), shard), Console.Out);
    }
    catch (Exception e) when (e is ArgumentException or FormatException or InvalidDataException or MiniDeep.Data.DataNotFoundException or MiniDeep.Data.IdxFormatException)
    {
        Console.Error.WriteLine(e.Message);
        return 2;
    }
});
var mergeIds = new Argument<string>("claims") { Description = "The claim list the shards ran (the same as given to 'lab run --shard')" };
var mergeOut = new Option<string>("--out") { Description = "The root directory the shards wrote to", DefaultValueFactory = _ => "reports" };
var labMerge = new Command("merge", "After a sharded run: check every claim has a verdict and rebuild the summary table; exits 1 when a claim did not reproduce") { mergeIds, mergeOut };
labMerge.SetAction(parse =>
{
    try { return LabRunner.Merge([parse.GetValue(mergeIds)!], parse.GetValue(mergeOut)!, Console.Out); }
    catch (Exception e) when (e is ArgumentException or InvalidDataException or FileNotFoundException)
    {
        Console.Error.WriteLine(e.Message);
        return 2;
    }
});
var defaults = new LandscapeSetup();
var exSeed = new Option<ulong>("--seed") { Description = "Lab seed (the networks are its repetitions 0 … seeds−1, as in 'lab run')", DefaultValueFactory = _ => 0 };
var exBudget = new Option<string>("--budget") { Description = "smoke (SynthDigits) or standard (Fashion-MNIST, as the report's rows)", DefaultValueFactory = _ => "standard" };
exBudget.AcceptOnlyFromAmong("smoke", "standard");
var exData = new Option<string?>("--data") { Description = "Directory with the Fashion-MNIST IDX files" };
var exSeeds = new Option<int>("--seeds") { Description = "Networks of each kind", DefaultValueFactory = _ => defaults.Seeds };
var exEpochs = new Option<int>("--epochs") { Description = "Epochs over the 5,000-image subset", DefaultValueFactory = _ => defaults.Epochs };
var exOpt = new Option<string>("--optimizer") { Description = "sgd-momentum (0.9), sgd or adam", DefaultValueFactory = _ => "sgd-momentum" };
exOpt.AcceptOnlyFromAmong("sgd-momentum", "sgd", "adam");
var exLr = new Option<double>("--lr") { Description = "Initial learning rate", DefaultValueFactory = _ => defaults.Lr };
var exWd = new Option<double>("--weight-decay") { Description = "L2 weight decay", DefaultValueFactory = _ => defaults.WeightDecay };
var exSchedule = new Option<string>("--schedule") { Description = "cosine (decay to 0) or constant", DefaultValueFactory = _ => "cosine" };
exSchedule.AcceptOnlyFromAmong("cosine", "constant");
var exArch = new Option<string>("--arch") { Description = "post-activation (the lab's), pre-activation, scaled-branch (W₂ = He ÷ 3) or batch-norm", DefaultValueFactory = _ => "post-activation" };
exArch.AcceptOnlyFromAmong("post-activation", "pre-activation", "scaled-branch", "batch-norm");
var exInit = new Option<string>("--init") { Description = "he (the lab's) or default (Linear's own, PyTorch's)", DefaultValueFactory = _ => "he" };
exInit.AcceptOnlyFromAmong("he", "default");
var exHImages = new Option<int>("--hessian-images") { Description = "Training images the Hessian's loss is taken on", DefaultValueFactory = _ => defaults.HessianImages };
var exHMode = new Option<string>("--hessian-mode") { Description = "eval (running statistics, Li et al.'s code) or training (batch statistics); the same without batch norm", DefaultValueFactory = _ => "eval" };
exHMode.AcceptOnlyFromAmong("eval", "training");
var exHParams = new Option<string>("--hessian-params") { Description = "all or weights (the weight matrices only, Li et al.'s code)", DefaultValueFactory = _ => "all" };
exHParams.AcceptOnlyFromAmong("all", "weights");
var exLanczos = new Option<int>("--lanczos-steps") { Description = "Hessian-vector products per network", DefaultValueFactory = _ => defaults.LanczosSteps };
var exJson = new Option<string?>("--json") { Description = "Also write the results as JSON to this file" };
var exLandscape = new Command("landscape", "Run the solution-space claim's plain-against-residual landscape experiment alone, in one setup: how the report's other setups were measured")
    { exSeed, exBudget, exData, exSeeds, exEpochs, exOpt, exLr, exWd, exSchedule, exArch, exInit, exHImages, exHMode, exHParams, exLanczos, exJson };
exLandscape.SetAction(parse =>
{
    try
    {
        var setup = new LandscapeSetup
        {
            Seeds = parse.GetValue(exSeeds), Epochs = parse.GetValue(exEpochs), Lr = parse.GetValue(exLr), WeightDecay = parse.GetValue(exWd),
            Optimizer = parse.GetValue(exOpt) switch { "sgd" => LandscapeOptimizer.Sgd, "adam" => LandscapeOptimizer.Adam, _ => LandscapeOptimizer.SgdMomentum },
            Cosine = parse.GetValue(exSchedule) == "cosine",
            Arch = parse.GetValue(exArch) switch { "pre-activation" => LandscapeArch.PreActivation, "scaled-branch" => LandscapeArch.ScaledBranch, "batch-norm" => LandscapeArch.BatchNorm, _ => LandscapeArch.PostActivation },
            HeInit = parse.GetValue(exInit) == "he",
            HessianImages = parse.GetValue(exHImages),
            HessianMode = parse.GetValue(exHMode) == "training" ? HessianMode.Training : HessianMode.Eval,
            WeightsOnly = parse.GetValue(exHParams) == "weights",
            LanczosSteps = parse.GetValue(exLanczos),
        };
        LandscapeExplorer.Run(setup, Enum.Parse<Budget>(parse.GetValue(exBudget)!, ignoreCase: true), parse.GetValue(exSeed), parse.GetValue(exData), parse.GetValue(exJson), Console.Out);
        return 0;
    }
    catch (Exception e) when (e is ArgumentException or FormatException or InvalidDataException or MiniDeep.Data.DataNotFoundException or MiniDeep.Data.IdxFormatException)
    {
        Console.Error.WriteLine(e.Message);
        return 2;
    }
});
var spSeed = new Option<ulong>("--seed") { Description = "Lab seed (the tasks, initializations and orders, as in 'lab run')", DefaultValueFactory = _ => 0 };
var spBudget = new Option<string>("--budget") { Description = "smoke (SynthDigits, the smoke setup) or standard (Fashion-MNIST, as the report's rows)", DefaultValueFactory = _ => "standard" };
spBudget.AcceptOnlyFromAmong("smoke", "standard");
var spData = new Option<string?>("--data") { Description = "Directory with the Fashion-MNIST IDX files" };
var spEwc = new Option<string>("--ewc") { Description = "proximal (the lab's: the exact proximal step after each SGD step) or penalty (the penalty in the loss, the textbook form)", DefaultValueFactory = _ => "proximal" };
spEwc.AcceptOnlyFromAmong("proximal", "penalty");
var spLambdas = new Option<string?>("--lambdas") { Description = "EWC's λ sweep, comma-separated (the budget's by default: 1000,10000,100000 at standard)" };
var spEpochs = new Option<int?>("--epochs") { Description = "Epochs per task (5 at standard)" };
var spLr = new Option<double?>("--lr") { Description = "SGD's learning rate for every method (0.05)" };
var spBatch = new Option<int?>("--batch-size") { Description = "Batch size (32)" };
var spHidden = new Option<int?>("--hidden") { Description = "Width of both hidden layers (400)" };
var spC = new Option<double?>("--c") { Description = "HAT's regularizer weight c (0.75)" };
var spSMax = new Option<double?>("--s-max") { Description = "HAT's largest gate scale s_max (400)" };
var spPerTask = new Option<int?>("--per-task") { Description = "Training images per task (5,000 at standard)" };
var spFisher = new Option<int?>("--fisher-samples") { Description = "Images the Fisher information is estimated from (500)" };
var spJson = new Option<string?>("--json") { Description = "Also write the results as JSON to this file" };
var exSplit = new Command("split", "Run the forgetting claim's split-task experiment (HAT against EWC and SGD) alone, in one setup: how the report's other setups were measured")
    { spSeed, spBudget, spData, spEwc, spLambdas, spEpochs, spLr, spBatch, spHidden, spC, spSMax, spPerTask, spFisher, spJson };
exSplit.SetAction(parse =>
{
    try
    {
        var budget = Enum.Parse<Budget>(parse.GetValue(spBudget)!, ignoreCase: true);
        var b = SplitSetup.ForBudget(budget);
        var lambdas = parse.GetValue(spLambdas) is { } list
            ? list.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
                .Select(t => double.TryParse(t, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var v) ? v
                    : throw new FormatException($"split: --lambdas takes numbers separated by commas, got '{t}'")).ToArray()
            : b.Lambdas;
        var setup = b with
        {
            Ewc = parse.GetValue(spEwc) == "penalty" ? EwcUpdate.Penalty : EwcUpdate.Proximal,
            Lambdas = lambdas,
            Epochs = parse.GetValue(spEpochs) ?? b.Epochs,
            Lr = parse.GetValue(spLr) ?? b.Lr,
            Batch = parse.GetValue(spBatch) ?? b.Batch,
            Hidden = parse.GetValue(spHidden) ?? b.Hidden,
            C = parse.GetValue(spC) ?? b.C,
            SMax = parse.GetValue(spSMax) ?? b.SMax,
            PerTask = parse.GetValue(spPerTask) ?? b.PerTask,
            FisherSamples = parse.GetValue(spFisher) ?? b.FisherSamples,
        };
        SplitExplorer.Run(setup, budget, parse.GetValue(spSeed), parse.GetValue(spData), parse.GetValue(spJson), Console.Out);
        return 0;
    }
    catch (Exception e) when (e is ArgumentException or FormatException or InvalidDataException or MiniDeep.Data.DataNotFoundException or MiniDeep.Data.IdxFormatException)
    {
        Console.Error.WriteLine(e.Message);
        return 2;
    }
});
var labExplore = new Command("explore", "Run one part of a claim alone in another setup (exploration; no verdict)") { exLandscape, exSplit };
var lab = new Command("lab", "The claims lab: reproduce the essay's claims with MiniDeep's own engine") { labList, labRun, labMerge, labExplore };

var root = new RootCommand("MiniDeep experiments: a deep-learning engine written from scratch, and the lab that tests what it can show") { lab, train, demo, graph };
return root.Parse(args).Invoke();
