using System.Diagnostics;
using System.Text.Json;
using MiniDeep.Data;
using MiniDeep.Nn;
using MiniDeep.Optim;
using Spectre.Console;
using MiniDeep.IO;

namespace MiniDeep.Experiments;

/// <summary>The settings of one `train` run.</summary>
public sealed record TrainOptions(string Model, string? DataDir, int? Epochs, ulong Seed, string? JsonPath, int? BatchSize, double Lr, string Dataset = "auto", string Device = "cpu",
    string? SavePath = null, string? OnnxPath = null, bool Capture = false)
{
    /// <summary>Refuses options no training can run with, naming the command-line option.</summary>
    public void Validate()
    {
        if (Epochs is < 1) throw new TrainOptionsException($"--epochs must be at least 1, got {Epochs}");
        if (BatchSize is < 1) throw new TrainOptionsException($"--batch-size must be at least 1, got {BatchSize}");
        if (!(Lr > 0 && double.IsFinite(Lr))) throw new TrainOptionsException($"--lr must be positive and finite, got {Lr}");
        try
        {
            OutputPaths.WritableFile("--json", JsonPath);
            OutputPaths.WritableFile("--save", SavePath);
            OutputPaths.WritableFile("--onnx", OnnxPath);
        }
        catch (ArgumentException e) { throw new TrainOptionsException(e.Message); }
    }
}

/// <summary>An option of `train` that no training can run with; the message names it.</summary>
public sealed class TrainOptionsException(string message) : Exception(message);

/// <summary>
/// `train mlp|cnn`: the first real results. Trains the MLP 784-256-128-10 or the CNN
/// conv32-pool-conv64-pool-fc128-fc10 (with dropout 0.3 before fc128) with Adam and a cosine
/// learning-rate decay, on standardized Fashion-MNIST when it is installed, else on SynthDigits, and
/// reports test accuracy, time and throughput.
/// </summary>
public static class Train
{
    /// <summary>Default epochs per model: enough for the accuracy the field expects, within minutes here.</summary>
    public static int DefaultEpochs(string model) => model == "cnn" ? 6 : 15;

    /// <summary>Default batch size per model.</summary>
    public static int DefaultBatch(string model) => model == "cnn" ? 64 : 128;

    /// <summary>The two models of the training issue.</summary>
    public static Module Build(string model, Generator g) => model switch
    {
        "mlp" => new Sequential(
            new Flatten(),
            new Linear(784, 256, generator: g), Activations.ReLU(),
            new Linear(256, 128, generator: g), Activations.ReLU(),
            new Linear(128, 10, generator: g)),
        "cnn" => new Sequential(
            new Conv2d(1, 32, 3, padding: 1, generator: g), Activations.ReLU(), new MaxPool2d(2),
            new Conv2d(32, 64, 3, padding: 1, generator: g), Activations.ReLU(), new MaxPool2d(2),
            new Flatten(), new Dropout(0.3, g),
            new Linear(64 * 7 * 7, 128, generator: g), Activations.ReLU(),
            new Linear(128, 10, generator: g)),
        _ => throw new ArgumentException($"unknown model '{model}': use mlp or cnn"),
    };

    /// <summary>Fashion-MNIST if it can be found, else SynthDigits; says which on <paramref name="log"/>.</summary>
    public static ImageClassification LoadData(string? dataDir, ulong seed, TextWriter log, string dataset = "auto")
    {
        if (dataset == "synthdigits") return GenerateSynthDigits(seed, log);
        if (dataset == "fashion-mnist") return MnistFormat.LoadFashionMnist(dataDir);
        var dir = MnistFormat.Locate(dataDir, out var searched);
        if (dir is not null) return MnistFormat.Load(dir);
        if (dataDir is not null)
            throw new DataNotFoundException($"Fashion-MNIST not found in {dataDir} (--data): expected train-images-idx3-ubyte[.gz] and the other three IDX files there");
        log.WriteLine($"Fashion-MNIST not found (looked in {string.Join(", ", searched)}); using SynthDigits, the embedded synthetic digits.");
        return GenerateSynthDigits(seed, log);
    }

    private static ImageClassification GenerateSynthDigits(ulong seed, TextWriter log)
    {
        var clock = Stopwatch.StartNew();
        var data = SynthDigits.Load(seed);
        log.WriteLine($"SynthDigits: {data.Train.Count:N0} + {data.Test.Count:N0} images generated in {clock.Elapsed.TotalSeconds:F2} s");
        return data;
    }

    public static int Run(TrainOptions o, TextWriter log)
    {
        o.Validate();
        var clock = Stopwatch.StartNew();
        var device = MiniDeep.Gpu.GpuDevices.Get(o.Device);
        var raw = LoadData(o.DataDir, o.Seed, log, o.Dataset);
        var data = raw.Standardized();
        // The same model code on any device: the data and the model move, nothing else changes.
        if (device != MiniDeep.Device.Cpu)
            data = data with { Train = new TensorDataset(data.Train.X.To(device), data.Train.Y.To(device)), Test = new TensorDataset(data.Test.X.To(device), data.Test.Y.To(device)) };
        int epochs = o.Epochs ?? DefaultEpochs(o.Model);
        int batch = o.BatchSize ?? DefaultBatch(o.Model);
        var g = new Generator(o.Seed);
        var model = Build(o.Model, g).To(device);
        var optimizer = new Adam(model.Parameters(), o.Lr);
        var loader = new DataLoader(data.Train, batch, shuffle: true, seed: o.Seed, dropLast: true);
        if (loader.BatchesPerEpoch == 0)
            throw new TrainOptionsException($"--batch-size {batch} is larger than the {data.Train.Count:N0} training images (a short last batch is dropped, so an epoch would have none)");
        var schedule = new CosineLr(optimizer, epochs * loader.BatchesPerEpoch);
        log.WriteLine($"{o.Model}: {model.ParameterCount():N0} parameters; {data.Name}: {data.Train.Count:N0} train / {data.Test.Count:N0} test images; " +
                      $"Adam lr {o.Lr} with cosine decay, batch {batch}, {epochs} epochs, seed {o.Seed}, on {device}" +
                      (o.Capture ? ", the step captured and replayed" : ""));
        var history = Interactive
            ? AnsiConsole.Progress().AutoClear(false).Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                .Start(ctx => Trainer.Fit(model, optimizer, loader, epochs, data.Test, scheduler: schedule, reporter: new SpectreReporter(ctx), capture: o.Capture))
            : Trainer.Fit(model, optimizer, loader, epochs, data.Test, scheduler: schedule, reporter: new LineReporter(log), capture: o.Capture);
        var last = history[^1];
        double trainSeconds = history.Sum(h => h.Seconds);
        double samplesPerSecond = history.Sum(h => h.SamplesPerSecond * h.Seconds) / trainSeconds;
        log.WriteLine($"test accuracy {last.TestAccuracy:P2} on {data.Name} after {epochs} epochs; {trainSeconds:F1} s training, " +
                      $"{samplesPerSecond:F0} samples/s, {clock.Elapsed.TotalSeconds:F1} s in all");
        if (o.JsonPath is { } path)
        {
            var json = JsonSerializer.Serialize(new
            {
                model = o.Model,
                dataset = data.Name,
                test_accuracy = last.TestAccuracy,
                test_loss = last.TestLoss,
                seconds = clock.Elapsed.TotalSeconds,
                train_seconds = trainSeconds,
                samples_per_second = samplesPerSecond,
                epochs,
                batch_size = batch,
                seed = o.Seed,
                captured = o.Capture,
                parameters = model.ParameterCount(),
                history = history.Select(h => new
                {
                    epoch = h.Epoch, train_loss = h.TrainLoss, train_accuracy = h.TrainAccuracy,
                    test_loss = h.TestLoss, test_accuracy = h.TestAccuracy, seconds = h.Seconds, samples_per_second = h.SamplesPerSecond,
                }),
            }, new JsonSerializerOptions { WriteIndented = true });
            AtomicFile.WriteAllText(path, json);
        }
        if (o.SavePath is { } save)
        {
            SafeTensors.Save(save, model, new Dictionary<string, string> { ["model"] = o.Model, ["dataset"] = data.Name, ["test_accuracy"] = $"{last.TestAccuracy:R}" });
            log.WriteLine($"wrote {save}: the state dict as safetensors ({new FileInfo(save).Length:N0} bytes)");
        }
        if (o.OnnxPath is { } onnx)
        {
            // The model was trained on standardized pixels; the exported graph standardizes itself, so
            // that other tools feed it raw pixels in [0, 1].
            var deployed = new Sequential(Standardize.Fit(raw.Train.X), model.To(MiniDeep.Device.Cpu));
            var shape = raw.Test.X.Shape.ToArray();
            shape[0] = 1;
            Onnx.Export(deployed, shape, onnx);
            log.WriteLine($"wrote {onnx}: ONNX opset {Onnx.Opset} ({new FileInfo(onnx).Length:N0} bytes); input 'input' (batch, {string.Join(", ", shape[1..])}) " +
                          "raw pixels in [0, 1], output 'output' (batch, 10) logits");
        }
        return 0;
    }

    /// <summary>A terminal that can show a live progress bar (Spectre.Console prints nothing useful when redirected).</summary>
    public static bool Interactive => !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;
}

/// <summary>A Spectre.Console progress bar per epoch, with the running loss in its label.</summary>
public sealed class SpectreReporter(ProgressContext ctx) : ITrainingReporter
{
    private ProgressTask? _task;
    private double _lossSum;

    public void EpochStarted(int epoch, int epochs, int batches)
    {
        _task = ctx.AddTask($"epoch {epoch}/{epochs}", maxValue: batches);
        _lossSum = 0;
    }

    public void BatchDone(int batch, double loss)
    {
        _lossSum += loss;
        if (_task is null) return;
        _task.Value = batch;
        if (batch % 20 == 0) _task.Description = $"loss {_lossSum / batch:F4}";
    }

    public void EpochDone(EpochStats s, int epochs)
    {
        if (_task is null) return;
        _task.Description = $"epoch {s.Epoch}/{epochs}: loss {s.TrainLoss:F4}, test acc {s.TestAccuracy:P2}, {s.SamplesPerSecond:F0}/s";
        _task.StopTask();
    }
}
